"""The toolbar and the pages in a real browser, under a strict Content-Security-Policy.

A small debug app (SQLite, a template, ``default-src 'self'``) served by uvicorn; chromium
(Playwright) opens a page, sees the toolbar styled by its stylesheet (so the CSP let it
through), follows it to the request's page and finds the SQL there. No console error, no CSP
violation. Screenshots go to ``$TRELLIS_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator

import pytest

from browser_helpers import (
    artifacts,
    chromium,
    free_port,
    needs_chromium,
    needs_playwright,
    new_page,
    serve,
    uvicorn,
)

pytestmark = [pytest.mark.server, needs_chromium, needs_playwright]

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("inspector_browser")
    (folder / "inspector_browser_app.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    (folder / "templates").mkdir()
    (folder / "templates" / "home.html").write_text(TEMPLATE, encoding="utf-8")
    port = free_port()
    env = {**os.environ, "TRELLIS_SECRET_KEY": "inspector-browser-" + "k" * 40}
    for name in ("TRELLIS_DEBUG", "TRELLIS_DATABASE_URL", "TRELLIS_TEMPLATES_DIR"):
        env.pop(name, None)
    command = uvicorn(port, "inspector_browser_app:app")
    with serve(command, port=port, env=env, cwd=folder, name="the app", ready="/_inspector") as url:
        yield url


def test_the_toolbar_leads_to_the_request_page_under_a_strict_csp(server: str) -> None:
    screenshots = artifacts()
    with chromium() as browser, new_page(browser) as page:
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
        page.screenshot(path=str(screenshots / "inspector-toolbar.png"))

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
        page.screenshot(path=str(screenshots / "inspector-request.png"), full_page=True)

        page.goto(server + "/_inspector")
        assert page.locator("table.ti-table tbody tr").count() >= 1
        page.screenshot(path=str(screenshots / "inspector-index.png"), full_page=True)
    assert failed == []
    # The only console complaint allowed: the app has no /favicon.ico (a 404).
    assert [p for p in problems if "404" not in p] == []
