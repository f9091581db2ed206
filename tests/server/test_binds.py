"""Several addresses at once: ``trellis run --bind ...`` and ``serve(app, binds=[...])``."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from server_helpers import (
    SERVED_APP_DIR,
    TIMEOUT,
    ServerProcess,
    clean_env,
    free_port,
    refused,
    trellis,
    write,
)
from trellis.cli import main

pytestmark = pytest.mark.server


def ipv6_loopback() -> bool:
    """Whether this machine can listen on [::1] (IPv6 may be off in a container)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
            return True
    except OSError:
        return False


SCRIPT = f"""
    import sys

    sys.path.insert(0, {str(SERVED_APP_DIR)!r})
    from served_app import app
    from trellis.server import serve

    if sys.argv[1] == "app.run":
        app.run(binds=sys.argv[2:])
    else:
        serve(app, binds=sys.argv[2:])
"""


@pytest.mark.parametrize("how", ["serve", "app.run", "trellis run --workers 2"])
def test_one_server_answers_on_every_address(tmp_path: Path, how: str) -> None:
    port = free_port()
    path = tmp_path / "web.sock"
    binds = [f"127.0.0.1:{port}", f"unix:{path}"]
    if ipv6_loopback():
        binds.append(f"[::1]:{port}")
    if how in ("serve", "app.run"):
        script = write(tmp_path / "script.py", SCRIPT)
        args = [sys.executable, str(script), how, *binds]
    else:
        target = ["served_app:app", "--app-dir", str(SERVED_APP_DIR), "--workers", "2"]
        args = trellis("run", *target, *[arg for bind in binds for arg in ("--bind", bind)])
    with ServerProcess(args, tmp_path) as server:
        over_tcp = server.get("/info", url=f"http://127.0.0.1:{port}").json()
        server.wait_for_socket(path)
        assert path.stat().st_mode & 0o777 == 0o666
        unix = httpx.HTTPTransport(uds=str(path))
        over_unix = server.get("/info", url="http://localhost", transport=unix).json()
        assert over_tcp["started"] and over_unix["started"]
        assert over_tcp["client"] == "127.0.0.1"
        if len(binds) == 3:
            over_ipv6 = server.get("/info", url=f"http://[::1]:{port}").json()
            assert over_ipv6["client"] == "::1"
        assert f"running on http://127.0.0.1:{port} " in server.stderr
        assert f"running on unix socket {path} " in server.stderr
        assert len(binds) == 2 or f"running on http://[::1]:{port} " in server.stderr
        assert server.stop(signal.SIGTERM) == 0
    assert not path.exists()  # the socket file is removed on the way out
    assert "Traceback" not in server.stderr


def test_an_address_in_use_stops_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "web.sock"
        args = trellis(
            "run", "served_app:app", "--app-dir", str(SERVED_APP_DIR),
            "--bind", f"unix:{path}", "--bind", f"127.0.0.1:{port}",
        )  # fmt: skip
        done = subprocess.run(
            args, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=TIMEOUT
        )
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: cannot listen on 127.0.0.1:{port}: the address is already in use (another "
        "server is running there?); stop it or choose another port\n"
    )
    assert not path.exists()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--bind", "localhost"], 1, "Error: bind 'localhost' is not an address: write HOST:PORT"),
        (["--bind", "unix:"], 1, "Error: bind 'unix:' has no socket path"),
        (["--bind", "127.0.0.1:0", "--port", "8000"], 2, "--bind cannot be combined with"),
        (["--graceful-timeout", "-1"], 2, "-1.0 is not in the range x>=0"),
    ],
)
def test_bad_options_are_refused(
    monkeypatch: pytest.MonkeyPatch, args: list[str], status: int, message: str
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # --app-dir adds to it
    monkeypatch.delitem(sys.modules, "served_app", raising=False)
    target = ["served_app:app", "--app-dir", str(SERVED_APP_DIR)]
    result = CliRunner().invoke(main, ["run", *target, *args], env=clean_env())
    assert result.exit_code == status, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


SLOW_START = """
    import asyncio
    from pathlib import Path

    from trellis import App

    app = App()


    @app.on_startup
    async def warm_up() -> None:
        await asyncio.sleep(1.5)  # loading caches, checking the database ...
        Path("started").touch()


    @app.get("/")
    def home() -> str:
        return "ready"
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_connections_wait_while_the_app_starts(tmp_path: Path, workers: str) -> None:
    """The sockets listen before start-up: a proxy connecting during a restart is not refused."""
    write(tmp_path / "slow.py", SLOW_START)
    port = free_port()
    args = trellis("run", "slow:app", "--bind", f"127.0.0.1:{port}", "--workers", workers)
    with ServerProcess(args, tmp_path) as server:
        while refused("127.0.0.1", port):
            assert server.proc.poll() is None, server.stderr
            time.sleep(0.02)
        # accepted while the start-up hook still runs, then answered once it is done
        assert not (tmp_path / "started").exists()
        with httpx.Client(timeout=TIMEOUT) as client:
            answer = client.get(f"http://127.0.0.1:{port}/")
        assert (answer.status_code, answer.text) == (200, "ready")
        assert (tmp_path / "started").exists()
        assert server.stop(signal.SIGTERM) == 0
