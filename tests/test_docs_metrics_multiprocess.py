"""docs/operations.md's gunicorn.conf.py for Prometheus multi-process mode, run for real.

The page includes ``examples/metrics_multiprocess/gunicorn.conf.py``; here gunicorn serves
``examples/metrics_multiprocess/app.py`` with it, and a scrape answered by any one worker
counts the requests of every worker. A worker killed with SIGKILL is marked dead by the
file's ``child_exit``, and what it counted stays in the sum.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from docs_blocks import ROOT, blocks
from server_helpers import TIMEOUT, ServerProcess, clean_env, free_port

EXAMPLE = ROOT / "examples" / "metrics_multiprocess"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.server


def test_the_page_shows_the_file() -> None:
    included = {name for block in blocks("operations.md") for name in block.includes}
    assert "examples/metrics_multiprocess/gunicorn.conf.py" in included


def requests_counted(url: str) -> float:
    """The requests to ``/`` that the scrape reports, all workers together."""
    text = httpx.get(f"{url}/metrics", timeout=TIMEOUT).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "trellis_requests_total" and sample.labels["route"] == "/"
    )


def test_every_worker_is_counted(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_stale.db").write_bytes(b"")  # a previous run's: removed at start
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        str(BIN / "gunicorn"),
        "--config", str(EXAMPLE / "gunicorn.conf.py"),
        "--workers", "2",  # the command line wins over the file
        "--bind", f"127.0.0.1:{port}",
        "--chdir", str(EXAMPLE),
        "app:app",
    ]  # fmt: skip
    env = clean_env(PROMETHEUS_MULTIPROC_DIR=str(directory))
    with ServerProcess(args, tmp_path, env) as server:
        server.get("/", url=url)
        pids, sent = set(), 1
        deadline = time.monotonic() + TIMEOUT
        while len(pids) < 2:  # until both workers have answered
            assert time.monotonic() < deadline, f"only {pids} answered:\n{server.stderr}"
            with httpx.Client() as client:  # a new connection: the other worker may take it
                pids.add(client.get(f"{url}/").json()["pid"])
            sent += 1
        assert not (directory / "counter_stale.db").exists()
        assert requests_counted(url) == sent  # whichever worker answers the scrape

        victim = pids.pop()
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        while True:  # gunicorn replaces the worker; its files stay, its count too
            assert time.monotonic() < deadline, server.stderr
            answered = httpx.get(f"{url}/", timeout=TIMEOUT).json()["pid"]
            sent += 1
            if answered not in (victim, *pids):
                break
        assert requests_counted(url) == sent
