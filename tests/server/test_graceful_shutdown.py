"""Graceful shut-down of ``trellis run``, with one process and with two workers.

On SIGTERM the server stops accepting connections at once, lets requests in flight finish
(up to ``--graceful-timeout``), closes websockets with code 1012, runs the shut-down hooks
and exits with status 0. Real processes, real sockets.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server_helpers import (
    SERVED_APP_DIR,
    TIMEOUT,
    ServerProcess,
    clean_env,
    free_port,
    refused,
    trellis,
)

pytestmark = [pytest.mark.server, pytest.mark.parametrize("workers", [1, 2])]


@contextmanager
def running(
    tmp_path: Path, workers: int, graceful_timeout: float
) -> Iterator[tuple[ServerProcess, int]]:
    """``trellis run`` serving ``served_app``; yields it and its port once all workers answer."""
    port = free_port()
    args = trellis(
        "run",
        "served_app:app",
        "--app-dir",
        str(SERVED_APP_DIR),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--graceful-timeout",
        str(graceful_timeout),
    )
    env = clean_env(SERVED_APP_EVENTS=str(tmp_path / "events"))
    with ServerProcess(args, tmp_path, env) as server:
        pids = set()
        deadline = time.monotonic() + TIMEOUT
        while len(pids) < workers:  # every worker has started: all can be asked to stop
            assert time.monotonic() < deadline, server.stderr
            pids.add(server.get("/info", url=f"http://127.0.0.1:{port}").json()["pid"])
        yield server, port


def events(tmp_path: Path, pid: str | None = None) -> list[str]:
    """What the application recorded (in the process ``pid``, if given), in order."""
    lines = [line.split() for line in (tmp_path / "events").read_text().splitlines()]
    return [event for event, by in lines if pid in (None, by)]


def in_flight(
    pool: ThreadPoolExecutor, port: int, tmp_path: Path, seconds: float
) -> Future[httpx.Response]:
    """GET /slow in a thread; return once the handler runs."""
    before = events(tmp_path).count("slow-start")
    url = f"http://127.0.0.1:{port}/slow?seconds={seconds}"
    future = pool.submit(httpx.get, url, timeout=TIMEOUT + seconds)
    deadline = time.monotonic() + TIMEOUT
    while events(tmp_path).count("slow-start") == before:
        assert time.monotonic() < deadline and not future.done()
        time.sleep(0.02)
    return future


def wait_refused(port: int) -> None:
    """Wait until new connections are refused (the supervisor looks at signals twice a second)."""
    start = time.monotonic()
    while not refused("127.0.0.1", port):
        assert time.monotonic() - start < 5, "new connections are still accepted"
        time.sleep(0.05)


def test_a_request_in_flight_finishes(tmp_path: Path, workers: int) -> None:
    with running(tmp_path, workers, 20) as (server, port), ThreadPoolExecutor() as pool:
        slow = in_flight(pool, port, tmp_path, seconds=3)
        server.proc.send_signal(signal.SIGTERM)
        wait_refused(port)
        assert not slow.done()  # refused while the request still runs
        response = slow.result()
        assert response.status_code == 200
        assert response.json() == {"slept": 3.0}
        assert server.wait_exit() == 0
    # The shut-down hooks ran in every worker; in the one that served the request, after it.
    assert events(tmp_path).count("shutdown") == workers
    [pid] = [
        line.split()[1]
        for line in (tmp_path / "events").read_text().splitlines()
        if line.startswith("slow-end")
    ]
    assert events(tmp_path, pid)[-2:] == ["slow-end", "shutdown"]
    assert "Traceback" not in server.stderr


def test_websockets_are_closed_with_1012(tmp_path: Path, workers: int) -> None:
    with running(tmp_path, workers, 20) as (server, port):
        with connect(f"ws://127.0.0.1:{port}/ws", proxy=None, open_timeout=TIMEOUT) as websocket:
            assert websocket.recv(timeout=TIMEOUT) == "hello"
            websocket.send("still there?")
            assert websocket.recv(timeout=TIMEOUT) == "still there?"
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                websocket.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012  # "service restart": clients reconnect
        assert server.wait_exit() == 0
        assert time.monotonic() - started < 10  # not held until the graceful timeout
    assert events(tmp_path).count("shutdown") == workers


def test_requests_longer_than_the_timeout_are_cut(tmp_path: Path, workers: int) -> None:
    with running(tmp_path, workers, 1) as (server, port), ThreadPoolExecutor() as pool:
        slow = in_flight(pool, port, tmp_path, seconds=60)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        assert time.monotonic() - started < 1 + 8  # the timeout, and a margin for a busy machine
        try:
            cut = slow.result(timeout=TIMEOUT).status_code
        except httpx.TransportError as exc:
            cut = type(exc).__name__
        assert cut != 200
    happened = events(tmp_path)
    assert "slow-end" not in happened
    assert happened.count("shutdown") == workers  # the hooks still ran
    assert "timeout graceful shutdown exceeded" in server.stderr
