"""The toolbar and the pages in a real browser, under a strict Content-Security-Policy.

A small debug app (SQLite, a template, ``default-src 'self'``) served by uvicorn; chromium
(Playwright) opens a page, sees the toolbar styled by its stylesheet (so the CSP let it
through), follows it to the request's page and finds the SQL there. No console error, no CSP
violation. Screenshots go to ``$TRELLIS_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(os.environ.get("TRELLIS_TEST_ARTIFACTS") or ROOT / "test-artifacts")

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(sync_playwright is None, reason="needs playwright (a dev dependency)"),
]

APP = """
from sqlalchemy import text

from trellis import App, Request
from trellis.contrib.db import Database, Session
from trellis.contrib.inspector import Inspector
from trellis.templating import render

app = App(
    debug=True,
    templates_dir="templates",
    content_security_policy="default-src 'self'; style-src 'self'; script-src 'none'",
)
app.install(Database("sqlite:///browser.db"))
if app.debug:
    app.install(Inspector())


@app.get("/")
async def home(request: Request, db: Session) -> object:
    request.session["theme"] = "dark"
    first = await db.scalar(text("SELECT 'inspector-first-query'"))
    second = await db.scalar(text("SELECT 'inspector-second-query'"))
    return render("home.html", first=first, second=second)
"""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Home</title></head>
<body><main><h1>Home</h1><p>{{ first }} / {{ second }}</p></main></body></html>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("inspector_browser")
    (folder / "inspector_browser_app.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    (folder / "templates").mkdir()
    (folder / "templates" / "home.html").write_text(TEMPLATE, encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "TRELLIS_SECRET_KEY": "inspector-browser-" + "k" * 40}
    for name in ("TRELLIS_DEBUG", "TRELLIS_DATABASE_URL", "TRELLIS_TEMPLATES_DIR"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--port", str(port), "inspector_browser_app:app"],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/_inspector", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                assert proc.stderr is not None
                pytest.fail("the app exited:\n" + proc.stderr.read().decode()[-3000:])
            assert time.monotonic() < deadline, "the app did not start in 20 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_the_toolbar_leads_to_the_request_page_under_a_strict_csp(server: str) -> None:
    assert sync_playwright is not None and CHROMIUM is not None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(10_000)
            page = context.new_page()
            problems: list[str] = []
            page.on(
                "console",
                lambda message: (
                    problems.append(message.text) if message.type in ("error", "warning") else None
                ),
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            failed: list[str] = []
            page.on(
                "response",
                lambda answer: (
                    failed.append(answer.url)
                    if answer.status >= 400 and not answer.url.endswith("/favicon.ico")
                    else None
                ),
            )

            response = page.goto(server + "/")
            assert response is not None and response.status == 200
            assert "style-src 'self'" in response.headers["content-security-policy"]
            toolbar = page.locator("#trellis-inspector a")
            toolbar.wait_for()
            label = toolbar.inner_text()
            assert label.startswith("Inspector: ")
            assert "2 queries" in label and "1 template" in label
            # Styled by toolbar.css: the stylesheet was allowed and loaded.
            position = toolbar.evaluate("a => getComputedStyle(a.parentElement).position")
            assert position == "fixed"
            page.screenshot(path=str(ARTIFACTS / "inspector-toolbar.png"))

            with page.expect_navigation():
                toolbar.click()
            assert "/_inspector/" in page.url
            assert page.locator("h1").inner_text() == "GET /"
            sql = page.locator("#sql").inner_text()
            assert "inspector-first-query" in sql and "inspector-second-query" in sql
            assert "home.html" in page.locator("#templates").inner_text()
            assert "theme" in page.locator("#session").inner_text()
            header = page.locator(".ti-header")
            background = header.evaluate("h => getComputedStyle(h).backgroundColor")
            assert background == "rgb(31, 41, 51)"  # inspector.css loaded too
            page.screenshot(path=str(ARTIFACTS / "inspector-request.png"), full_page=True)

            page.goto(server + "/_inspector")
            assert page.locator("table.ti-table tbody tr").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "inspector-index.png"), full_page=True)
            context.close()
        finally:
            browser.close()
    assert failed == []
    # The only console complaint allowed: the app has no /favicon.ico (a 404).
    assert [p for p in problems if "404" not in p] == []
