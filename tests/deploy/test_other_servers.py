"""``examples/deploy/gunicorn.conf.py`` and ``examples/deploy/granian.sh``, run for real.

Each serves ``tests/server/served_app.py`` as the files are written, but for the addresses: a
free port on loopback (and a Unix socket in the test's directory) instead of the production
ones.
"""

from __future__ import annotations

import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from server_helpers import (
    SERVED_APP_DIR,
    TIMEOUT,
    ServerProcess,
    clean_env,
    free_port,
    refused,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.server


def check_serves(server: ServerProcess, url: str, workers: int) -> None:
    """``workers`` processes answer /info, their start-up hook run; a websocket echoes."""
    pids = set()
    deadline = time.monotonic() + TIMEOUT
    while len(pids) < workers:
        assert time.monotonic() < deadline, f"only {pids} answered:\n{server.stderr}"
        info = server.get("/info", url=url).json()
        assert info["started"] is True
        pids.add(info["pid"])
    assert server.pid not in pids
    with connect(url.replace("http", "ws") + "/ws", proxy=None, open_timeout=TIMEOUT) as ws:
        assert ws.recv(timeout=TIMEOUT) == "hello"
        ws.send("über")
        assert ws.recv(timeout=TIMEOUT) == "über"


def test_gunicorn_with_uvicorn_workers(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    path = tmp_path / "web.sock"
    args = [
        str(BIN / "gunicorn"),
        "--config", str(DEPLOY / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}",
        "--bind", f"unix:{path}",
        "--chdir", str(SERVED_APP_DIR),
        "served_app:app",
    ]  # fmt: skip
    env = clean_env(WEB_CONCURRENCY="2", SERVED_APP_EVENTS=str(tmp_path / "events"))
    with ServerProcess(args, tmp_path, env) as server, ThreadPoolExecutor() as pool:
        check_serves(server, url, workers=2)
        unix = httpx.HTTPTransport(uds=str(path))
        assert server.get("/info", url="http://localhost", transport=unix).json()["started"]
        # forwarded_allow_ips = "": uvicorn leaves the client address alone; Trellis trusts
        # no proxy (TRELLIS_TRUSTED_PROXIES is not set), so the header changes nothing.
        forged = {"X-Forwarded-For": "203.0.113.9"}
        assert httpx.get(f"{url}/info", headers=forged).json()["client"] == "127.0.0.1"

        # SIGTERM: the request in flight finishes, new connections are refused.
        slow = pool.submit(httpx.get, f"{url}/slow?seconds=2", timeout=TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while "slow-start" not in (tmp_path / "events").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not refused("127.0.0.1", port):
            assert time.monotonic() < deadline, "new connections are still accepted"
            time.sleep(0.05)
        assert not slow.done()
        assert slow.result().json() == {"slept": 2.0}
        assert server.wait_exit() == 0
    events = (tmp_path / "events").read_text()
    assert events.count("startup") == events.count("shutdown") == 2
    assert not path.exists()


def test_granian(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        "sh",
        str(DEPLOY / "granian.sh"),
        "--working-dir",
        str(SERVED_APP_DIR),
        "served_app:app",
    ]
    env = clean_env(
        GRANIAN_PORT=str(port),
        GRANIAN_WORKERS="2",
        SERVED_APP_EVENTS=str(tmp_path / "events"),
        PATH=f"{BIN}:{clean_env()['PATH']}",
    )
    with ServerProcess(args, tmp_path, env) as server:
        check_serves(server, url, workers=2)
        assert server.stop(signal.SIGTERM) == 0
    events = (tmp_path / "events").read_text()
    assert events.count("startup") == 2
