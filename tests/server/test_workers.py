"""``trellis run --workers N``: N processes answer, a dead one is replaced, SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from server_helpers import SERVED_APP_DIR, TIMEOUT, ServerProcess, free_port, trellis

pytestmark = pytest.mark.server


def workers_of(supervisor: int) -> set[int]:
    """The worker processes of ``supervisor`` (not multiprocessing's resource tracker)."""
    workers = set()
    for child in psutil.Process(supervisor).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                workers.add(child.pid)
        except psutil.ZombieProcess:  # dead, not yet reaped by the supervisor
            pass
    return workers


def pids_answering(url: str, wanted: set[int] | int, seconds: float = TIMEOUT) -> set[int]:
    """Ask /info (a new connection each time) until the pids ``wanted`` (or that many) answer.

    Every request must succeed.
    """
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    while (len(seen) < wanted) if isinstance(wanted, int) else not wanted <= seen:
        assert time.monotonic() < deadline, f"only {seen} answered"
        response = httpx.get(f"{url}/info", timeout=5)
        assert response.status_code == 200
        seen.add(response.json()["pid"])
    return seen


def test_workers_answer_are_replaced_and_stop(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = trellis(
        "run", "served_app:app", "--app-dir", str(SERVED_APP_DIR), "--port", str(port),
        "--workers", "3",
    )  # fmt: skip
    with ServerProcess(args, tmp_path) as server:
        server.get("/info", url=url)
        # Three distinct worker processes answer; the supervisor itself serves nothing.
        answering = pids_answering(url, 3)
        workers = workers_of(server.pid)
        assert answering == workers and server.pid not in answering

        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        # The other workers serve on, with no failed request, while the supervisor notices...
        for _ in range(20):
            response = httpx.get(f"{url}/info", timeout=5)
            assert response.status_code == 200
            assert response.json()["pid"] != killed
        # ... and starts a replacement, which serves too.
        deadline = time.monotonic() + TIMEOUT
        while len(replacement := workers_of(server.pid) - workers) < 1:
            assert time.monotonic() < deadline, server.stderr
            time.sleep(0.1)
        assert workers_of(server.pid) == workers - {killed} | replacement
        pids_answering(url, replacement)
        assert f"Child process [{killed}] died" in server.stderr

        final = workers_of(server.pid)
        assert server.stop(signal.SIGTERM) == 0
        assert not any(psutil.pid_exists(pid) for pid in final)
