"""The showcase in a real browser: the README's first command, walked through in chromium.

The acceptance test of the showcase: from a fresh directory, ``python
examples/showcase/app.py`` (the README's first command, debug mode, SQLite in the current
directory) serves the notes board; chromium (Playwright) signs in with the demo account the
home page shows, posts a note, sees it appear on a second page without a reload (server-sent
events), switches to French and opens the API docs. Any script error, console error or
Content-Security-Policy violation fails it.

Screenshots go to ``$TRELLIS_TEST_ARTIFACTS/showcase`` (default ``test-artifacts/showcase``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
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
)

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, expect
except ImportError:  # pragma: no cover - playwright is a dev dependency
    pass

pytestmark = [pytest.mark.server, needs_chromium, needs_playwright]

README_COMMAND = [sys.executable, str(ROOT / "examples" / "showcase" / "app.py")]
NOTE = "Posted from chromium: live on every page"
API_DOCS_FR = "Documentation de l\N{RIGHT SINGLE QUOTATION MARK}API"  # the catalog's typography


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The README's command, run from an empty directory on a free port."""
    folder = tmp_path_factory.mktemp("showcase")
    port = free_port()
    env = {**os.environ, "TRELLIS_SERVER_PORT": str(port)}
    # Nothing but the embedded defaults, as on a fresh clone.
    for name in ("TRELLIS_DEBUG", "TRELLIS_DATABASE_URL", "TRELLIS_REDIS_URL"):
        env.pop(name, None)
    # The first start migrates and hashes three demo passwords: slow on a loaded machine.
    with serve(
        README_COMMAND, port=port, env=env, cwd=folder, name="the showcase", ready="/", timeout=60
    ) as url:
        assert (folder / "showcase.db").exists()
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


class Watch:
    """Problems a page reports: script errors, console errors (CSP violations among them)."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __call__(self, page: Page, name: str) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type not in ("error", "warning"):
                return
            # The only resource the site does not have: the browser asks for it by itself.
            source = message.location.get("url", "")
            if message.text.startswith("Failed to load resource") and source.endswith(
                "/favicon.ico"
            ):
                return
            self.problems.append(f"{name}: console {message.type} on {page.url}: {message.text}")

        def on_page_error(error: Any) -> None:
            self.problems.append(f"{name}: script error on {page.url}: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        # Chromium logs CSP violations to the console too; this catches them even if not.
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', (e) =>"
            " console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));"
        )
        return page


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=str(artifacts("showcase") / f"{name}.png"), full_page=True)


def test_sign_in_post_see_it_live_switch_language_open_api_docs(
    browser: Browser, showcase: str
) -> None:
    watch = Watch()
    options: dict[str, Any] = {"viewport": {"width": 1100, "height": 800}, "locale": "en-US"}
    with new_page(browser, **options) as a, new_page(browser, **options) as b:
        watch(a, "page A")
        watch(b, "page B")

        # -- both pages on the board; B stays on it, anonymous, from here to the end ----------
        b.goto(showcase + "/")
        expect(b.locator("h1")).to_have_text("Notes")
        expect(b.locator("#notes")).to_contain_text("Welcome to Trellis!")
        expect(b.locator("#notes")).not_to_contain_text(NOTE)
        b.evaluate("window.sameDocument = true")  # gone if the page ever reloads

        a.goto(showcase + "/")
        demo = a.locator("aside.demo")
        expect(demo).to_contain_text("demo@example.com")
        password = re.search(r"password (\S+?)\.", demo.inner_text())
        assert password is not None, demo.inner_text()
        shoot(a, "01-home")

        # -- sign in with the demo account shown on the home page -----------------------------
        with a.expect_navigation():
            a.click("text=Sign in to post a note.")
        assert a.url.startswith(showcase + "/auth/login"), a.url
        a.fill("#id_login", "demo@example.com")
        a.fill("#id_password", password.group(1))
        shoot(a, "02-sign-in")
        with a.expect_navigation():
            a.click("main button[type=submit]")
        assert a.url == showcase + "/", a.url
        expect(a.locator("header .who")).to_have_text("demo")

        # -- post a note through the form -------------------------------------------------------
        a.fill("#id_text", NOTE)
        with a.expect_navigation():
            a.click("form.new-note button[type=submit]")
        expect(a.locator(".flash-success")).to_have_text("Your note is on the board.")
        expect(a.locator("#notes li").first).to_contain_text(NOTE)
        shoot(a, "03-posted")

        # -- page B shows it without reloading (server-sent events) ---------------------------
        arrived = b.locator("#notes li", has_text=NOTE)
        expect(arrived).to_have_count(1)
        expect(arrived).to_contain_text("demo")
        assert b.evaluate("window.sameDocument") is True
        shoot(b, "04-live-on-page-b")

        # -- switch to French --------------------------------------------------------------------
        with a.expect_navigation():
            a.click("header .languages a[hreflang=fr]")
        assert a.url == showcase + "/fr/", a.url
        expect(a.locator("html")).to_have_attribute("lang", "fr")
        expect(a.locator("header")).to_contain_text("Se déconnecter")
        expect(a.locator("header")).to_contain_text(API_DOCS_FR)
        expect(a.locator("form.new-note button[type=submit]")).to_have_text("Publier")
        expect(a.locator("#notes")).to_contain_text(NOTE)
        shoot(a, "05-french")

        # -- the API docs: the operations rendered from the OpenAPI document -------------------
        with a.expect_navigation():
            a.click(f"header >> text={API_DOCS_FR}")
        assert a.url == showcase + "/docs", a.url
        operations = a.locator(".opblock-summary")
        expect(operations.filter(has_text="/api/notes").first).to_be_visible()
        summaries = " ".join(operations.all_inner_texts())
        for method in ("GET", "POST", "PATCH", "DELETE"):
            assert method in summaries, summaries
        shoot(a, "06-api-docs")

    assert watch.problems == [], "\n".join(watch.problems)
