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
from typing import Any

import httpx
import pytest
import uvicorn

from server_helpers import TIMEOUT, ServerProcess, clean_env, free_port, trellis, write
from trellis import App, ConfigurationError
from trellis.server import RUN_FROM_CLI_ENV, serve

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
        # A graceful shut-down on SIGINT or SIGTERM exits with status 0.
        assert server.stop(sig) == 0
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


class Served:
    """What ``serve()`` handed to uvicorn, with ``uvicorn.Server.run`` and ``uvicorn.run`` faked."""

    def __init__(self) -> None:
        self.configs: list[uvicorn.Config] = []
        self.addresses: list[list[Any]] = []  # the sockets' names, for each Server.run
        self.runs: list[tuple[Any, dict[str, Any]]] = []  # the calls of uvicorn.run

    @property
    def config(self) -> uvicorn.Config:
        [config] = self.configs
        return config


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    record = Served()

    def fake_server_run(self: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        record.configs.append(self.config)
        record.addresses.append([sock.getsockname() for sock in sockets or []])
        self.started = True

    def fake_run(app: Any, **options: Any) -> None:
        record.runs.append((app, options))

    monkeypatch.setattr(uvicorn.Server, "run", fake_server_run)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    # uvicorn.Config applies its log_config when built: it would stop the trellis loggers
    # from propagating to the root, where later tests' caplog listens.
    monkeypatch.setattr(uvicorn.Config, "configure_logging", lambda self: None)
    monkeypatch.delenv(RUN_FROM_CLI_ENV, raising=False)
    yield record
    os.environ.pop(RUN_FROM_CLI_ENV, None)


def test_serve_options_for_uvicorn(served: Served) -> None:
    app = App(debug=True, server_port=0, log_format="json", access_log=False)
    serve(app)
    config = served.config
    assert config.app is app
    [[(host, port)]] = served.addresses
    assert host == "127.0.0.1" and port > 0
    assert config.proxy_headers is False
    assert config.server_header is False
    assert config.lifespan == "on"
    assert config.loop == "auto"
    assert config.http == "auto"
    assert config.access_log is False
    assert config.log_level == "info"
    assert config.timeout_graceful_shutdown == 30  # the server_graceful_timeout setting
    assert isinstance(config.log_config, dict)
    assert config.log_config["formatters"]["default"]["()"] == "trellis.logging.JSONFormatter"
    assert config.log_config["loggers"]["uvicorn.access"]["handlers"] == []


def test_serve_arguments_win(served: Served) -> None:
    custom = {"version": 1}
    serve(
        App(debug=True, server_graceful_timeout=5),
        "127.0.0.1",
        0,
        log_level="DEBUG",
        proxy_headers=True,
        root_path="/api",
        log_config=custom,
        timeout_keep_alive=9,
        graceful_timeout=2.5,
    )
    config = served.config
    assert config.log_level == "debug"
    assert config.proxy_headers is True
    assert config.root_path == "/api"
    assert config.log_config is custom
    assert config.timeout_keep_alive == 9
    assert config.timeout_graceful_shutdown == 2.5


def test_serve_binds_every_address(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    serve(App(debug=True), binds=["127.0.0.1:0", f"unix:{path}", "localhost:0"])
    [names] = served.addresses
    assert names[0][0] == "127.0.0.1"
    assert names[1] == str(path)
    assert all(name[0] in ("127.0.0.1", "::1") for name in names[2:])
    assert not path.exists()  # removed when the server stopped


def test_serve_reload_with_one_bind(served: Served) -> None:
    serve("pkg.web:app", binds=["[::1]:8123"], reload=True)
    [(app, options)] = served.runs
    assert app == "pkg.web:app"
    assert (options["host"], options["port"], options["reload"]) == ("::1", 8123, True)
    del os.environ[RUN_FROM_CLI_ENV]  # set by the first call, for the reloaded process
    with pytest.raises(ConfigurationError, match="--reload listens on one address"):
        serve("pkg.web:app", binds=["127.0.0.1:8123", "unix:web.sock"], reload=True)


def test_serve_import_string(served: Served) -> None:
    serve("pkg.web:app", port=0)
    assert served.config.app == "pkg.web:app"
    assert served.config.lifespan == "auto"
    # The workers import the module: an app.run() in it must not serve again.
    assert os.environ[RUN_FROM_CLI_ENV] == "1"


@pytest.mark.parametrize(("options", "word"), [({"reload": True}, "reload"), ({"workers": 2}, "")])
def test_serve_refuses_reload_and_workers_with_an_app_object(
    served: Served, options: dict[str, Any], word: str
) -> None:
    with pytest.raises(ConfigurationError, match="import string") as info:
        serve(App(debug=True), **options)
    assert "trellis run module:app" in str(info.value)
    assert served.configs == [] and served.runs == []


def test_serve_refuses_bad_values(served: Served) -> None:
    with pytest.raises(ConfigurationError, match="workers=0"):
        serve("m:app", workers=0)
    with pytest.raises(ConfigurationError, match="log_format='xml'"):
        serve(App(debug=True), log_format="xml")
    with pytest.raises(ConfigurationError, match="graceful_timeout=-1"):
        serve(App(debug=True), graceful_timeout=-1)
    with pytest.raises(ConfigurationError, match="not both"):
        serve(App(debug=True), port=8000, binds=["127.0.0.1:8000"])
    with pytest.raises(ConfigurationError, match="binds is empty"):
        serve(App(debug=True), binds=[])
    assert served.configs == []


@pytest.mark.parametrize(
    ("bind", "message"),
    [
        ("8000", "is not an address"),
        (":8000", "is not an address"),
        ("127.0.0.1", "is not an address"),
        ("::1:8000", "is not an address"),
        ("127.0.0.1:http", "the port must be a number"),
        ("127.0.0.1:70000", "the port must be a number"),
        ("[localhost]:8000", "is not an IPv6 address"),
        ("unix:", "has no socket path"),
        ("no-such-host.invalid:8000", "cannot listen on no-such-host.invalid:8000"),
        ("192.0.2.1:8000", "no network interface of this machine has that address"),
    ],
)
def test_serve_refuses_a_bad_bind(served: Served, bind: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        serve(App(debug=True), binds=["127.0.0.1:0", bind])
    assert served.configs == []


def test_serve_refuses_an_address_in_use(served: Served, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "web.sock"
        with pytest.raises(ConfigurationError, match="already in use"):
            serve(App(debug=True), binds=[f"unix:{path}", f"127.0.0.1:{port}"])
    assert not path.exists()  # what was bound before the failure is undone
    assert served.configs == []


def test_serve_replaces_a_stale_unix_socket_but_not_a_live_one(
    served: Served, tmp_path: Path
) -> None:
    path = tmp_path / "web.sock"
    with socket.socket(socket.AF_UNIX) as dead:  # a server that died without cleaning up
        dead.bind(str(path))
    assert path.exists()
    serve(App(debug=True), binds=[f"unix:{path}"])
    assert len(served.configs) == 1
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(ConfigurationError, match="another server is listening"):
            serve(App(debug=True), binds=[f"unix:{path}"])
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(ConfigurationError, match="exists and is not a socket"):
        serve(App(debug=True), binds=[f"unix:{path}"])
    assert path.read_text() == "not a socket"
    assert len(served.configs) == 1


def test_serve_does_nothing_while_the_cli_imports(
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(RUN_FROM_CLI_ENV, "1")
    serve(App(debug=True))
    assert served.configs == [] and served.runs == []
    assert "ignoring app.run()" in capsys.readouterr().err


def test_docs_examples_run(monkeypatch: pytest.MonkeyPatch, served: Served) -> None:
    # As under the trellis command, app.run() and serve() return at once.
    monkeypatch.setenv(RUN_FROM_CLI_ENV, "1")
    page = Path(__file__).resolve().parents[1] / "docs" / "server.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for block in blocks:
        exec(compile(block, str(page), "exec", dont_inherit=True), namespace)
    assert served.configs == [] and served.runs == []
