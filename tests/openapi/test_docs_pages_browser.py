"""The API docs pages render in a real browser with no network but the app's own server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
    ),
]


def _serve(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "the showcase exited"
            assert time.monotonic() < deadline, "the showcase did not start in 20 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def showcase_url() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "TRELLIS_SERVER_PORT": str(port)}
    env.pop("TRELLIS_DEBUG", None)
    command = [sys.executable, str(ROOT / "examples" / "showcase" / "app.py")]
    yield from _serve(command, env, port)


@pytest.fixture(scope="module")
def todo_api_url() -> Iterator[str]:
    """The typed example API, in production mode under uvicorn."""
    port = _free_port()
    env = {**os.environ, "TRELLIS_SECRET_KEY": "browser-test-" + "k" * 40}
    env.pop("TRELLIS_DEBUG", None)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(ROOT / "examples" / "todo_api"),
        "--port",
        str(port),
        "app:app",
    ]
    yield from _serve(command, env, port)


def _rendered_dom(url: str) -> str:
    """The page's DOM after its scripts ran, from headless chromium."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_swagger_ui_renders_every_operation(showcase_url: str) -> None:
    dom = _rendered_dom(showcase_url + "/docs")
    assert "swagger-ui" in dom
    assert "Trellis showcase" in dom
    for operation in ("List Notes", "Create Note", "/api/notes/{id}"):
        assert operation in dom, operation


def test_redoc_renders_every_operation(showcase_url: str) -> None:
    dom = _rendered_dom(showcase_url + "/redoc")
    assert "Trellis showcase" in dom
    for operation in ("List Notes", "Create Note"):
        assert operation in dom, operation


def test_the_example_api_docs_render_offline(todo_api_url: str) -> None:
    document = httpx.get(todo_api_url + "/openapi.json", timeout=5).json()
    title = document["info"]["title"]
    swagger = _rendered_dom(todo_api_url + "/docs")
    redoc = _rendered_dom(todo_api_url + "/redoc")
    for dom in (swagger, redoc):
        assert title in dom
        assert "/todos/{todo_id}" in dom or "todo_id" in dom
