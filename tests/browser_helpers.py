"""What the tests with a server process or a browser share (``from browser_helpers import serve``).

Importable from every test folder: pytest puts ``tests/`` on ``sys.path`` for tests/conftest.py
(as it puts ``tests/auth/`` there for ``auth_helpers``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    sync_playwright = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# No sandbox (containers), no GPU, nothing fetched from the network behind the test's back.
# Playwright adds --headless itself; a bare ``chromium`` needs it as well.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
)
needs_playwright = pytest.mark.skipif(
    sync_playwright is None, reason="needs playwright (a dev dependency)"
)


def free_port() -> int:
    """A port on loopback that nothing listens on (for the moment)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uvicorn(port: int, target: str = "app:app", app_dir: Path | None = None) -> list[str]:
    """The command that serves ``target`` with uvicorn on ``port`` (from ``app_dir``)."""
    where = [] if app_dir is None else ["--app-dir", str(app_dir)]
    return [sys.executable, "-m", "uvicorn", *where, "--port", str(port), target]


@contextmanager
def serve(
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    cwd: Path,
    name: str,
    ready: str = "/openapi.json",
    timeout: float = 20,
) -> Iterator[str]:
    """Run ``command`` (a server on ``port``) until ``ready`` answers 200; yield its URL.

    The process's output goes to a file rather than a pipe (a full pipe would stall the
    server); a test fails with its tail when the process exits before it is ready.
    """
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            list(command), env=dict(env), cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(url + ready, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    output.seek(0)
                    pytest.fail(f"{name} exited:\n" + output.read().decode()[-3000:])
                assert time.monotonic() < deadline, f"{name} did not start in {timeout:g} s"
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium driven by Playwright."""
    assert sync_playwright is not None and CHROMIUM is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Browser, **context_options: Any) -> Iterator[Page]:
    """A page in a browser context of its own, waiting 10 s at most for anything."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def artifacts(folder: str = "") -> Path:
    """Where screenshots go: ``$TRELLIS_TEST_ARTIFACTS`` (default ``test-artifacts/``)."""
    base = os.environ.get("TRELLIS_TEST_ARTIFACTS") or str(ROOT / "test-artifacts")
    directory = Path(base) / folder
    directory.mkdir(parents=True, exist_ok=True)
    return directory
