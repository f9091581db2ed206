"""The admin in a real browser: chromium (Playwright) against the admin demo under uvicorn.

The demo (``examples/admin_demo/app.py``) runs in production mode (a secret key, no debug,
``allowed_hosts=127.0.0.1``, a strict Content-Security-Policy) on a SQLite file, its tables
made by the migrations on the first start. One journey signs in, searches, filters, adds a
book (after a validation error), edits it, deletes it, runs a bulk action, switches to
French and opens the error ticket of a crash.

A screenshot is taken at each step into ``$TRELLIS_TEST_ARTIFACTS/admin`` (default
``test-artifacts/admin`` at the repository root). With ``TRELLIS_UPDATE_DOCS_IMAGES=1`` the
ones the docs show are copied to ``docs/img/admin-*.png`` as well.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import (
    ROOT,
    artifacts,
    chromium,
    free_port,
    needs_chromium,
    needs_playwright,
    new_page,
    serve,
    uvicorn,
)

PASSWORD = "a demo password, long enough"
#: Screenshots the docs page shows: step -> docs/img/admin-<name>.png.
DOCS_IMAGES = {
    "dashboard-after": "dashboard",
    "book-list": "book-list",
    "validation-error": "validation-error",
    "ticket": "ticket",
}

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - playwright is a dev dependency
    pass

pytestmark = [pytest.mark.server, needs_chromium, needs_playwright]


class Demo:
    """The demo served by uvicorn, and its database file."""

    def __init__(self, url: str, database: Path) -> None:
        self.url = url
        self.database = database

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database) as conn:
            return list(conn.execute(sql, params))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("admin_demo")
    database = folder / "admin_demo.db"
    port = free_port()
    env = {
        **os.environ,
        "TRELLIS_SECRET_KEY": "admin-browser-test-" + "k" * 40,
        "TRELLIS_ALLOWED_HOSTS": "127.0.0.1",
        "TRELLIS_DATABASE_URL": f"sqlite:///{database}",
        "ADMIN_DEMO_PASSWORD": PASSWORD,
    }
    env.pop("TRELLIS_DEBUG", None)
    command = uvicorn(port, app_dir=ROOT / "examples" / "admin_demo")
    with serve(command, port=port, env=env, cwd=folder, name="the admin demo", timeout=30) as url:
        yield Demo(url, database)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


class Shots:
    """Numbered screenshots of one journey."""

    def __init__(self, page: Page) -> None:
        self.directory = artifacts("admin")
        self.page = page
        self.count = 0
        self.taken: dict[str, Path] = {}

    def __call__(self, name: str) -> None:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken[name] = path

    def publish(self) -> None:
        """Copy the docs' images to docs/img (only when asked: they are committed)."""
        if os.environ.get("TRELLIS_UPDATE_DOCS_IMAGES") != "1":
            return
        target = ROOT / "docs" / "img"
        target.mkdir(exist_ok=True)
        for step, name in DOCS_IMAGES.items():
            shutil.copyfile(self.taken[step], target / f"admin-{name}.png")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser, viewport={"width": 1280, "height": 800}, locale="en-US") as opened:
        yield opened


def test_an_admin_journey(page: Page, demo: Demo) -> None:
    problems: list[str] = []

    def on_console(message: Any) -> None:
        # Statuses the journey causes on purpose (a 422 form, the 500 of /crash, no favicon)
        # are logged as "Failed to load resource"; anything else is a problem. The core's
        # error page of /crash is not the admin's: its CSP report is not counted here.
        if message.type != "error" or message.text.startswith("Failed to load resource"):
            return
        if page.url.endswith("/crash"):
            return
        problems.append(f"console on {page.url}: {message.text}")

    page.on("pageerror", lambda error: problems.append(f"page error on {page.url}: {error}"))
    page.on("console", on_console)
    shot = Shots(page)
    url = demo.url

    # -- signing in: the auth battery's login page, and back to the admin --------------------
    page.goto(url + "/admin")
    assert page.url == url + "/auth/login?next=%2Fadmin"
    shot("login")
    page.fill("#id_login", "admin")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url == url + "/admin"
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#chart-requests svg")).to_be_visible()
    expect(page.locator("nav.sidebar")).to_contain_text("Books")
    shot("dashboard")

    # -- the list: search, filter, sort ------------------------------------------------------
    page.click("nav.sidebar >> text=Books")
    page.wait_for_url(url + "/admin/demo_book")
    rows = page.locator("#result-list tbody tr")
    expect(rows).to_have_count(9)
    expect(page.locator("#result-count")).to_contain_text("9 results")
    shot("book-list")
    page.fill("#search", "ancillary")
    with page.expect_navigation():
        page.press("#search", "Enter")
    expect(rows).to_have_count(2)
    expect(page.locator("#result-list")).to_contain_text("Ancillary Justice")
    shot("search")
    page.goto(url + "/admin/demo_book")
    page.click("aside.filters >> text=fantasy")
    page.wait_for_url(re.compile(r".*genre=fantasy.*"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("A Wizard of Earthsea")
    shot("filter")
    page.goto(url + "/admin/demo_book")
    page.click("#result-list thead >> text=Price")
    page.wait_for_url(re.compile(r".*sort=price.*"))
    titles = page.locator("#result-list tbody th").all_text_contents()
    assert titles[0] == "A Wizard of Earthsea"

    # -- a new book: a validation error first --------------------------------------------------
    page.goto(url + "/admin/demo_book")
    page.click("text=Add book")
    page.wait_for_url(url + "/admin/demo_book/add")
    page.fill("#id_title", "")
    page.fill("#id_price", "12.345")  # two decimal places at most
    page.select_option("#id_author_id", label="Italo Calvino")
    with page.expect_navigation():
        page.click("button[name=_save]")
    expect(page.locator("#form-errors-summary")).to_be_visible()
    expect(page.locator("#id_title")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_title_errors")).to_be_visible()
    expect(page.locator("#id_price_errors")).to_be_visible()
    shot("validation-error")
    page.fill("#id_title", "The Baron in the Trees")
    page.fill("#id_pages", "217")
    page.fill("#id_price", "10.90")
    page.select_option("#id_genre", label="Novel")
    page.select_option("#id_tags", label=["classic"])
    with page.expect_navigation():
        page.click("button[name=_save]")
    assert re.fullmatch(url + r"/admin/demo_book/\d+", page.url), page.url
    expect(page.locator(".flash-success")).to_contain_text("was added")
    expect(page.locator("#field-author")).to_have_text("Italo Calvino")
    expect(page.locator("#field-tags")).to_have_text("classic")
    book_url = page.url
    shot("created")

    # -- edit it --------------------------------------------------------------------------
    page.click(".tools >> text=Edit")
    page.wait_for_url(book_url + "/edit")
    expect(page.locator("#id_title")).to_have_value("The Baron in the Trees")
    page.fill("#id_price", "11.50")
    page.check("#id_published")
    with page.expect_navigation():
        page.click("button[name=_save]")
    expect(page.locator(".flash-success")).to_contain_text("was changed")
    expect(page.locator("#field-price")).to_have_text("11.50")
    expect(page.locator(".history")).to_contain_text("price, published")
    shot("edited")

    # -- delete it, after the confirmation --------------------------------------------------
    page.click(".tools >> text=Delete")
    page.wait_for_url(book_url + "/delete")
    expect(page.locator(".confirm")).to_contain_text("The Baron in the Trees")
    shot("delete-confirm")
    with page.expect_navigation():
        page.click("#confirm-delete")
    assert page.url == url + "/admin/demo_book"
    expect(page.locator(".flash-success")).to_contain_text("was deleted")
    assert demo.query("SELECT id FROM demo_book WHERE title = 'The Baron in the Trees'") == []

    # -- a bulk action on two selected rows ---------------------------------------------------
    run = page.locator("#run-action")
    expect(run).to_be_disabled()  # nothing selected yet (admin.js)
    page.locator("#result-list tbody tr", has_text="Ancillary Sword").locator(
        "input[name=selected]"
    ).check()
    page.locator("#result-list tbody tr", has_text="The Lathe of Heaven").locator(
        "input[name=selected]"
    ).check()
    expect(page.locator("[data-selection-count]")).to_have_text("2 / 9")
    page.select_option("#action", "publish")
    shot("bulk-action")
    with page.expect_navigation():
        run.click()
    expect(page.locator(".flash-success")).to_contain_text("2 book(s) published.")
    assert demo.query(
        "SELECT published FROM demo_book WHERE title IN ('Ancillary Sword', 'The Lathe of Heaven')"
    ) == [(1,), (1,)]

    # -- the action log --------------------------------------------------------------------
    page.click("nav.sidebar >> text=Action log")
    page.wait_for_url(url + "/admin/log")
    expect(page.locator("table.log tbody tr")).to_have_count(5)  # add, change, delete, 2 x publish
    shot("log")

    # -- switch the language -----------------------------------------------------------------
    page.select_option("#locale-switcher", "fr")
    with page.expect_navigation():
        page.click("form.locale-switcher button")
    assert page.url == url + "/admin/log"
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("nav.sidebar")).to_contain_text("Tableau de bord")
    expect(page.locator("h1")).to_have_text("Journal des actions")
    shot("french")
    page.select_option("#locale-switcher", "en")
    with page.expect_navigation():
        page.click("form.locale-switcher button")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # -- a crash becomes an error ticket, shown in the admin ----------------------------------
    crash = page.goto(url + "/crash")
    assert crash is not None and crash.status == 500
    ticket_id = crash.headers["x-error-ticket"]
    assert ticket_id in page.content()
    page.goto(url + "/admin")
    expect(page.locator("#latest-tickets")).to_contain_text(ticket_id)
    page.click(f"#latest-tickets >> text={ticket_id}")
    page.wait_for_url(url + f"/admin/tickets/{ticket_id}")
    expect(page.locator("#ticket-title")).to_contain_text("RuntimeError")
    expect(page.locator("#traceback")).to_contain_text("the stock service did not answer")
    shot("ticket")

    # -- the dashboard has counted all of it ----------------------------------------------------
    page.goto(url + "/admin")
    expect(page.locator(".card-alert")).to_be_visible()  # the crash: a server error
    shot("dashboard-after")

    assert problems == [], problems  # no script error, no CSP violation
    shot.publish()
