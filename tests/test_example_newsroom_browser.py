"""The newsroom example in a real browser: chromium (Playwright) against uvicorn.

The app runs in production mode (a secret key, no debug, ``allowed_hosts=127.0.0.1``) on a
SQLite file. One journey signs up, in and out and writes a draft whose title is a script;
the other lets a page from another origin post a form to the app, as a CSRF attack would.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from browser_helpers import (
    ROOT,
    chromium,
    free_port,
    needs_chromium,
    needs_playwright,
    new_page,
    serve,
    uvicorn,
)

PASSWORD = "correct horse battery"
XSS_TITLE = "<img src=x onerror=alert(1)><script>alert(2)</script>"
XSS_BODY = '"><svg onload=alert(3)>'
FORGED_TITLE = "Forged by another site"

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.server, needs_chromium, needs_playwright]


class Newsroom:
    """The example served by uvicorn, and its database file."""

    def __init__(self, url: str, database: Path) -> None:
        self.url = url
        self.database = database

    def titles(self) -> list[str]:
        with sqlite3.connect(self.database) as conn:
            return [row[0] for row in conn.execute("SELECT title FROM newsroom_article")]


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newsroom]:
    database = tmp_path_factory.mktemp("newsroom") / "newsroom.db"
    port = free_port()
    env = {
        **os.environ,
        "TRELLIS_SECRET_KEY": "browser-test-" + "k" * 40,
        "TRELLIS_ALLOWED_HOSTS": "127.0.0.1",
        "TRELLIS_DATABASE_URL": f"sqlite:///{database}",
    }
    env.pop("TRELLIS_DEBUG", None)
    command = uvicorn(port, app_dir=ROOT / "examples" / "newsroom")
    with serve(command, port=port, env=env, cwd=ROOT, name="the newsroom") as url:
        yield Newsroom(url, database)


@pytest.fixture(scope="module")
def attacker(newsroom: Newsroom) -> Iterator[str]:
    """Another origin (same host, another port) whose page posts a form to the newsroom."""
    page = f"""<!doctype html>
<title>Win a prize</title>
<form id="f" method="post" action="{newsroom.url}/articles">
<input name="title" value="{FORGED_TITLE}"><input name="body" value="gotcha">
</form>
<script>document.getElementById("f").submit()</script>
""".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser) as opened:
        yield opened


def register(page: Page, newsroom: Newsroom, username: str) -> None:
    page.goto(newsroom.url + "/auth/register")
    page.fill("#id_email", f"{username}@example.com")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == newsroom.url + "/drafts", page.content()


def sign_out(page: Page, newsroom: Newsroom) -> None:
    with page.expect_navigation():
        page.click("text=Sign out")
    assert page.url == newsroom.url + "/"
    assert page.locator("header >> text=Sign in").count() == 1


def test_a_script_in_a_title_stays_text(page: Page, newsroom: Newsroom) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    register(page, newsroom, "ann")
    sign_out(page, newsroom)

    page.goto(newsroom.url + "/drafts")  # signed out: to the login page, and back after
    assert page.url == newsroom.url + "/auth/login?next=%2Fdrafts"
    page.fill("#id_login", "ann")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == newsroom.url + "/drafts"

    page.click("text=New article")
    page.wait_for_url(newsroom.url + "/articles/new")
    page.fill("#id_title", XSS_TITLE)
    page.fill("#id_body", XSS_BODY)
    with page.expect_navigation():
        page.click("text=Save draft")
    assert page.url.startswith(newsroom.url + "/articles/")
    page.wait_for_load_state("load")
    assert page.text_content("#article-title") == XSS_TITLE  # the text itself, not markup
    assert page.text_content("#article-body") == XSS_BODY
    assert page.locator("main img, main script, main svg").count() == 0
    assert page.title() == f"{XSS_TITLE} · Newsroom"

    page.goto(newsroom.url + "/drafts")
    assert page.locator("#my-drafts a", has_text=XSS_TITLE).count() == 1
    sign_out(page, newsroom)
    assert dialogs == []
    assert XSS_TITLE in newsroom.titles()


def test_a_form_posted_from_another_site_writes_nothing(
    page: Page, newsroom: Newsroom, attacker: str
) -> None:
    register(page, newsroom, "bob")  # signed in: the browser holds bob's session cookie

    # Same host, another port: the same *site*, so the (SameSite=Lax) cookie goes along;
    # the origin check refuses the request.
    with page.expect_response(lambda r: r.url == newsroom.url + "/articles") as same_site:
        page.goto(attacker)
    assert same_site.value.request.method == "POST"
    assert same_site.value.status == 403

    # Another site altogether (served by the browser itself): the cookie stays home.
    page.route(
        "http://evil.example/**",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body=httpx.get(attacker, timeout=5).text,
        ),
    )
    with page.expect_response(lambda r: r.url == newsroom.url + "/articles") as cross_site:
        page.goto("http://evil.example/prize")
    assert cross_site.value.status in (401, 403)

    assert FORGED_TITLE not in newsroom.titles()
    page.goto(newsroom.url + "/drafts")  # still signed in, and still no such draft
    assert page.url == newsroom.url + "/drafts"
    assert page.locator("#my-drafts", has_text=FORGED_TITLE).count() == 0
