"""The done-means of the micro core: `python hello.py` serves the five-line app."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello" / "hello.py"
TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_hello_is_the_five_line_app() -> None:
    statements = [
        line.strip()
        for line in HELLO.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert statements == [
        "from trellis import App",
        "app = App()",
        '@app.get("/")',
        "async def hello() -> str:",
        'return "Hello, World!"',
        "app.run()",
    ]


@pytest.mark.server
def test_python_hello_py_serves_hello_world(tmp_path: Path) -> None:
    port = free_port()
    # No secret key and no debug setting: app.run() is the development server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env["TRELLIS_SERVER_PORT"] = str(port)
    log = tmp_path / "server.log"
    with log.open("w") as output:
        proc = subprocess.Popen(
            [sys.executable, str(HELLO)], cwd=tmp_path, env=env, stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert proc.poll() is None, f"hello.py exited early:\n{log.read_text()}"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"no answer in {TIMEOUT}s:\n{log.read_text()}"
                time.sleep(0.05)
        assert response.status_code == 200
        assert response.text == "Hello, World!"
        assert response.headers["content-type"].startswith("text/plain")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
    assert "Application shutdown complete" in log.read_text()
