"""A database that is down when the server starts: refused by default, or served and reported.

The server's database URL points at a port where, later in the test, a small TCP relay to the
real PostgreSQL starts listening: the database "comes up" under the running server.
"""

from __future__ import annotations

import os
import socket
import socketserver
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from deploy_helpers import Process, free_port, server_env, trellis, wait_for

pytestmark = pytest.mark.server

POSTGRES_ENV = "TRELLIS_TEST_POSTGRES_URL"
PASSWORD = "db-pass-never-shown"

APP = """
    import os

    from trellis import App
    from trellis.contrib.db import Database
    from trellis.contrib.ops import Health

    app = App()
    app.install(
        Database(
            os.environ["DOWN_DATABASE_URL"],
            check_on_startup=os.environ["CHECK_ON_STARTUP"] == "1",
            pool_size=1,
            max_overflow=0,
            connect_timeout=2,
        )
    )
    app.install(Health(timeout=3.0))


    @app.get("/plain")
    async def plain() -> str:
        return "served"
"""


class _Pipe(socketserver.BaseRequestHandler):
    """Relay one connection to the real PostgreSQL, both ways, until either side closes."""

    target: tuple[str, int]

    def handle(self) -> None:
        with socket.create_connection(self.target, timeout=10) as upstream:
            upstream.settimeout(None)

            def pump(source: socket.socket, sink: socket.socket) -> None:
                try:
                    while data := source.recv(65536):
                        sink.sendall(data)
                except OSError:
                    pass
                finally:
                    for sock in (source, sink):
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

            back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
            back.start()
            pump(self.request, upstream)
            back.join(timeout=10)


class Relay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def postgres() -> tuple[str, int, str]:
    """Host, port and database of the test PostgreSQL."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against")
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432, parts.path.lstrip("/") or "test"


@pytest.fixture
def relay_port() -> Iterator[int]:
    yield free_port()


def start(tmp_path: Path, url: str, *, check: bool) -> tuple[Process, int]:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    env = server_env(DOWN_DATABASE_URL=url, CHECK_ON_STARTUP="1" if check else "0")
    command = trellis("run", "app:app", "--port", str(port))
    return Process(command, cwd=tmp_path, name="trellis", env=env), port


def test_a_database_down_at_start_is_reported_and_picked_up_when_it_comes(
    tmp_path: Path, postgres: tuple[str, int, str], relay_port: int
) -> None:
    host, port, database = postgres
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{relay_port}/{database}"
    server, http_port = start(tmp_path, url, check=False)
    relay: Relay | None = None
    try:
        server.wait_listening(http_port)
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as client:
            assert client.get("/healthz").status_code == 200  # alive: no restart wanted
            assert client.get("/plain").text == "served"
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["failed"] == ["database"]
            assert PASSWORD not in ready.text and "5432" not in ready.text

            # The database comes up: a relay to the real PostgreSQL on the URL's port.
            _Pipe.target = (host, port)
            relay = Relay(("127.0.0.1", relay_port), _Pipe)
            threading.Thread(target=relay.serve_forever, daemon=True).start()

            deadline = time.monotonic() + 15
            while (ready := client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, f"not ready 15 s after: {ready.text}"
                time.sleep(0.2)
            assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
        wait_for(lambda: "passes again" in server.output, "the recovery in the log", 10)
    finally:
        server.stop()
        if relay is not None:
            relay.shutdown()
            relay.server_close()
    output = server.output
    # Once when it starts failing (naming the database, not its password), once when it passes.
    assert "readiness check 'database': failed (" in output
    assert f"postgres:***@127.0.0.1:{relay_port}/{database}" in output
    assert "readiness check 'database' passes again" in output
    assert PASSWORD not in output


def test_by_default_a_server_without_its_database_does_not_start(
    tmp_path: Path, postgres: tuple[str, int, str], relay_port: int
) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{relay_port}/test"
    server, _ = start(tmp_path, url, check=True)
    with server:
        code = server.proc.wait(timeout=60)
    assert code != 0
    output = server.output
    assert (
        "Trellis could not start: DatabaseUnavailableError: cannot connect to the database"
        f" (default: postgresql+asyncpg://postgres:***@127.0.0.1:{relay_port}/test:"
        " [Errno 111] Connection refused)"
    ) in output
    assert "Application startup complete" not in output
    assert PASSWORD not in output
