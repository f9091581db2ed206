"""``trellis.server`` and ``trellis run``: real servers in subprocesses, on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from trellis import App, ConfigurationError
from trellis.server import RUN_FROM_CLI_ENV, serve

TIMEOUT = 20.0
SECRET = "a-test-secret-key-that-is-long-enough-for-production"

APP = """
    import os
    from trellis import App

    app = App()

    @app.get("/")
    async def index() -> str:
        return "Hello from trellis run"

    @app.get("/pid")
    async def pid() -> dict[str, int]:
        return {"pid": os.getpid()}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env["TRELLIS_SECRET_KEY"] = SECRET
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServerProcess:
    """A server subprocess whose output goes to files; always killed on the way out."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.out_path = cwd / "server.out"
        self.err_path = cwd / "server.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                args, cwd=cwd, env=env or clean_env(), stdout=out, stderr=err
            )

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def get(self, path: str = "/", *, url: str, transport: Any = None) -> httpx.Response:
        """GET ``url + path``, retrying until the server answers or ``TIMEOUT`` passes."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.stderr}")
            try:
                with httpx.Client(transport=transport, timeout=2.0) as client:
                    return client.get(url + path)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not answer in {TIMEOUT}s:\n{self.stderr}")
                time.sleep(0.05)

    def wait_for_socket(self, path: Path) -> None:
        """Wait until the server accepts connections on the Unix socket ``path``.

        Probed with a plain socket: httpx leaks a socket for each refused Unix connection.
        """
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.stderr}")
            with socket.socket(socket.AF_UNIX) as sock:
                try:
                    sock.connect(str(path))
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"server did not listen in {TIMEOUT}s:\n{self.stderr}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=TIMEOUT)

    def wait_exit(self) -> int:
        return self.proc.wait(timeout=TIMEOUT)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def trellis(*args: str) -> list[str]:
    return [sys.executable, "-m", "trellis.cli", *args]


# -- trellis run ----------------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_serves_http_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    write(tmp_path / "web.py", APP)
    port = free_port()
    with ServerProcess(trellis("run", "web.py", "--port", str(port)), tmp_path) as server:
        response = server.get(url=f"http://127.0.0.1:{port}")
        assert response.status_code == 200
        assert response.text == "Hello from trellis run"
        assert "server" not in response.headers  # no Server header by default
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the process reports it.
        assert server.stop(sig) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.stderr
    assert f"running on http://127.0.0.1:{port}" in server.stderr
    assert '"GET / HTTP/1.1" 200' in server.stdout  # the access log


@pytest.mark.server
def test_run_json_logs(tmp_path: Path) -> None:
    write(tmp_path / "web.py", APP)
    port = free_port()
    args = trellis("run", "web:app", "--port", str(port), "--log-format", "json")
    with ServerProcess(args, tmp_path) as server:
        assert server.get("/pid", url=f"http://127.0.0.1:{port}").status_code == 200
        assert server.stop() == 0
    access = [json.loads(line) for line in server.stdout.splitlines()]
    assert access[-1]["logger"] == "uvicorn.access"
    assert access[-1]["method"] == "GET"
    assert access[-1]["path"] == "/pid"
    assert access[-1]["status"] == 200
    for line in server.stderr.splitlines():
        record = json.loads(line)
        assert {"time", "level", "logger", "message", "request_id"} <= record.keys()


@pytest.mark.server
def test_run_on_a_unix_socket(tmp_path: Path) -> None:
    write(tmp_path / "web.py", APP)
    path = tmp_path / "web.sock"
    with ServerProcess(trellis("run", "web.py", "--uds", str(path)), tmp_path) as server:
        server.wait_for_socket(path)
        transport = httpx.HTTPTransport(uds=str(path))
        response = server.get(url="http://localhost", transport=transport)
        assert response.text == "Hello from trellis run"
        assert server.stop() == 0
    assert not path.exists()  # removed on shut-down


@pytest.mark.server
def test_run_with_workers(tmp_path: Path) -> None:
    write(
        tmp_path / "factory.py",
        """
        import os
        from trellis import App

        def create_app() -> App:
            app = App()

            @app.get("/pid")
            async def pid() -> dict[str, int]:
                return {"pid": os.getpid()}

            return app
        """,
    )
    port = free_port()
    args = trellis("run", "factory:create_app()", "--port", str(port), "--workers", "2")
    with ServerProcess(args, tmp_path) as server:
        url = f"http://127.0.0.1:{port}"
        pids = {server.get("/pid", url=url).json()["pid"] for _ in range(5)}
        assert server.proc.pid not in pids  # answered by worker processes
        assert server.stop() == 0


@pytest.mark.server
def test_run_with_reload(tmp_path: Path) -> None:
    source = write(tmp_path / "web.py", APP)
    port = free_port()
    args = trellis("run", "web.py", "--port", str(port), "--reload")
    with ServerProcess(args, tmp_path) as server:
        url = f"http://127.0.0.1:{port}"
        assert server.get(url=url).text == "Hello from trellis run"
        changed = source.read_text().replace("from trellis run", "after a reload")
        deadline = time.monotonic() + TIMEOUT
        attempt = 0
        while server.get(url=url).text != "Hello after a reload":
            assert time.monotonic() < deadline, server.stderr
            # The watcher may start after the first write or miss it within one mtime tick:
            # write again (each time a different comment) until the reload happens.
            if attempt % 10 == 0:
                source.write_text(changed + f"\n# change {attempt}\n")
            attempt += 1
            time.sleep(0.1)
        assert server.stop() == 0


@pytest.mark.server
def test_start_up_failure_exits_with_the_error(tmp_path: Path) -> None:
    write(
        tmp_path / "failing.py",
        """
        from trellis import App

        app = App()

        @app.on_startup
        async def connect() -> None:
            raise RuntimeError("the database is down")
        """,
    )
    port = free_port()
    with ServerProcess(trellis("run", "failing.py", "--port", str(port)), tmp_path) as server:
        assert server.wait_exit() != 0
    assert "the database is down" in server.stderr


@pytest.mark.server
def test_production_app_without_secret_key_does_not_start(tmp_path: Path) -> None:
    write(tmp_path / "web.py", APP)
    env = clean_env()
    del env["TRELLIS_SECRET_KEY"]
    args = trellis("run", "web.py", "--port", str(free_port()))
    with ServerProcess(args, tmp_path, env) as server:
        assert server.wait_exit() != 0
    assert "TRELLIS_SECRET_KEY is not set" in server.stderr


# -- app.run() ------------------------------------------------------------------------------


@pytest.mark.server
def test_app_run_in_a_script_logs_json(tmp_path: Path) -> None:
    write(
        tmp_path / "script.py",
        textwrap.dedent(APP) + "\nif __name__ == '__main__':\n    app.run()\n",
    )
    port = free_port()
    env = clean_env(TRELLIS_SERVER_PORT=str(port), TRELLIS_LOG_FORMAT="json")
    with ServerProcess([sys.executable, "script.py"], tmp_path, env) as server:
        assert server.get(url=f"http://127.0.0.1:{port}").status_code == 200
        assert server.stop() == 0
    lines = [line for line in server.stderr.splitlines() if line.startswith("{")]
    assert any("running on" in json.loads(line)["message"] for line in lines)


@pytest.mark.server
def test_generated_single_file_app_runs_with_python(tmp_path: Path) -> None:
    created = subprocess.run(
        trellis("new", "blog"), cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    env = clean_env(TRELLIS_SERVER_PORT=str(port))
    del env["TRELLIS_SECRET_KEY"]  # the generated .env provides it
    with ServerProcess([sys.executable, "app.py"], tmp_path / "blog", env) as server:
        response = server.get("/hello/Ada", url=f"http://127.0.0.1:{port}")
        assert response.text == "Hello, Ada!"
        assert server.stop() == 0


# -- serve() without a server ---------------------------------------------------------------


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, dict[str, Any]]]]:
    calls: list[tuple[Any, dict[str, Any]]] = []

    def fake_run(app: Any, **options: Any) -> None:
        calls.append((app, options))

    monkeypatch.setattr("uvicorn.run", fake_run)
    monkeypatch.delenv(RUN_FROM_CLI_ENV, raising=False)
    yield calls
    os.environ.pop(RUN_FROM_CLI_ENV, None)


def test_serve_options_for_uvicorn(uvicorn_calls: list[tuple[Any, dict[str, Any]]]) -> None:
    app = App(debug=True, server_port=9321, log_format="json", access_log=False)
    serve(app)
    [(served, options)] = uvicorn_calls
    assert served is app
    assert options["host"] == "127.0.0.1"
    assert options["port"] == 9321
    assert options["proxy_headers"] is False
    assert options["server_header"] is False
    assert options["lifespan"] == "on"
    assert options["loop"] == "auto"
    assert options["http"] == "auto"
    assert options["access_log"] is False
    assert options["log_level"] == "info"
    config = options["log_config"]
    assert config["formatters"]["default"]["()"] == "trellis.logging.JSONFormatter"
    assert config["loggers"]["uvicorn.access"]["handlers"] == []


def test_serve_arguments_win(uvicorn_calls: list[tuple[Any, dict[str, Any]]]) -> None:
    custom = {"version": 1}
    serve(
        App(debug=True),
        "0.0.0.0",
        8001,
        log_level="DEBUG",
        proxy_headers=True,
        root_path="/api",
        log_config=custom,
        timeout_keep_alive=9,
    )
    [(_, options)] = uvicorn_calls
    assert (options["host"], options["port"], options["log_level"]) == ("0.0.0.0", 8001, "debug")
    assert options["proxy_headers"] is True
    assert options["root_path"] == "/api"
    assert options["log_config"] is custom
    assert options["timeout_keep_alive"] == 9


def test_serve_import_string_for_workers(uvicorn_calls: list[tuple[Any, dict[str, Any]]]) -> None:
    serve("pkg.web:app", workers=4)
    [(served, options)] = uvicorn_calls
    assert served == "pkg.web:app"
    assert options["workers"] == 4
    assert "lifespan" not in options
    # The workers import the module: an app.run() in it must not serve again.
    assert os.environ[RUN_FROM_CLI_ENV] == "1"


@pytest.mark.parametrize(("options", "word"), [({"reload": True}, "reload"), ({"workers": 2}, "")])
def test_serve_refuses_reload_and_workers_with_an_app_object(
    uvicorn_calls: list[tuple[Any, dict[str, Any]]], options: dict[str, Any], word: str
) -> None:
    with pytest.raises(ConfigurationError, match="import string") as info:
        serve(App(debug=True), **options)
    assert "trellis run module:app" in str(info.value)
    assert uvicorn_calls == []


def test_serve_refuses_bad_values(uvicorn_calls: list[tuple[Any, dict[str, Any]]]) -> None:
    with pytest.raises(ConfigurationError, match="workers=0"):
        serve("m:app", workers=0)
    with pytest.raises(ConfigurationError, match="log_format='xml'"):
        serve(App(debug=True), log_format="xml")


def test_serve_does_nothing_while_the_cli_imports(
    uvicorn_calls: list[tuple[Any, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(RUN_FROM_CLI_ENV, "1")
    serve(App(debug=True))
    assert uvicorn_calls == []
    assert "ignoring app.run()" in capsys.readouterr().err


def test_docs_examples_run(
    monkeypatch: pytest.MonkeyPatch, uvicorn_calls: list[tuple[Any, dict[str, Any]]]
) -> None:
    # As under the trellis command, app.run() and serve() return at once.
    monkeypatch.setenv(RUN_FROM_CLI_ENV, "1")
    page = Path(__file__).resolve().parents[1] / "docs" / "server.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for block in blocks:
        exec(compile(block, str(page), "exec", dont_inherit=True), namespace)
    assert uvicorn_calls == []
