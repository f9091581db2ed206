"""The language switch: POST /i18n/locale with the CSRF token, a cookie, a safe redirect."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import jinja2
import pytest

from trellis import App, Request
from trellis.contrib.i18n import I18n, get_locale
from trellis.templating import Templates, render
from trellis.testing import TestClient

PAGE = "<main>{{ get_locale() }}</main>{{ locale_switcher() }}"


def make_app(**options: Any) -> App:
    app = App(debug=True, secret_key="s" * 40)
    app.templates = Templates(jinja2.DictLoader({"page.html": PAGE}), app=app)
    options.setdefault("locales", ("en", "fr", "de"))
    app.install(I18n(directory="no-such-folder", **options))

    @app.get("/articles", name="articles")
    async def articles(request: Request) -> object:
        return render("page.html")

    @app.get("/whoami")
    async def whoami() -> str:
        return get_locale()

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def form_of(response: httpx.Response) -> dict[str, str]:
    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', response.text)
    )
    return {name: html.unescape(value) for name, value in fields.items()}


def test_the_switcher_form(client: TestClient) -> None:
    page = client.get("/articles?page=2", headers={"accept-language": "fr"})
    text = page.text
    assert '<form method="post" action="/i18n/locale" class="locale-switcher">' in text
    assert '<label for="locale-switcher">Langue</label>' in text
    assert '<option value="fr" lang="fr" selected>Français</option>' in text
    assert '<option value="de" lang="de">Deutsch</option>' in text
    assert '<button type="submit">Changer</button>' in text
    fields = form_of(page)
    assert fields["next"] == "/articles?page=2"
    assert fields["csrf_token"]


def test_switching_sets_the_cookie_and_goes_back(client: TestClient) -> None:
    fields = form_of(client.get("/articles?page=2"))
    response = client.post("/i18n/locale", data={**fields, "locale": "de"})
    assert response.status_code == 303
    assert response.headers["location"] == "/articles?page=2"
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("locale=de;")
    assert "Max-Age=31536000" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert client.get("/whoami", headers={"accept-language": "fr"}).text == "de"
    assert "<main>de</main>" in client.get("/articles").text


def test_the_csrf_token_is_required(client: TestClient) -> None:
    client.get("/articles")  # a session exists
    response = client.post("/i18n/locale", data={"locale": "de", "next": "/articles"})
    assert response.status_code == 403
    assert "set-cookie" not in response.headers or "locale=" not in response.headers["set-cookie"]
    # Also without a session cookie: no cross-site switching.
    fresh = TestClient(make_app())
    assert fresh.post("/i18n/locale", data={"locale": "de"}).status_code == 403


def test_another_site_cannot_switch(client: TestClient) -> None:
    fields = form_of(client.get("/articles"))
    response = client.post(
        "/i18n/locale",
        data={**fields, "locale": "de"},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("next_value", "referer", "expected"),
    [
        ("/articles", None, "/articles"),
        ("https://evil.example/x", None, "/"),
        ("//evil.example/x", None, "/"),
        ("/\\evil.example", None, "/"),
        ("/%2F%2Fevil.example", None, "/"),
        ("javascript:alert(1)", None, "/"),
        ("", "http://testserver/articles?x=1", "/articles?x=1"),
        ("http://testserver/articles", None, "/articles"),
        ("/a b", None, "/"),
    ],
)
def test_only_safe_redirects(
    client: TestClient, next_value: str, referer: str | None, expected: str
) -> None:
    fields = form_of(client.get("/articles"))
    headers = {"referer": referer} if referer else {}
    response = client.post(
        "/i18n/locale", data={**fields, "next": next_value, "locale": "fr"}, headers=headers
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == expected


def test_an_unsupported_locale_is_refused(client: TestClient) -> None:
    fields = form_of(client.get("/articles"))
    response = client.post("/i18n/locale", data={**fields, "locale": "xx"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "locale"]
    assert "en, fr, de" in response.json()["errors"][0]["msg"]


def test_json_clients_get_204(client: TestClient) -> None:
    fields = form_of(client.get("/articles"))
    response = client.post(
        "/i18n/locale", json={"locale": "fr-CA"}, headers={"x-csrf-token": fields["csrf_token"]}
    )
    assert response.status_code == 204
    assert response.headers["set-cookie"].startswith("locale=fr;")


def test_with_prefixes_the_redirect_moves_to_the_new_locale() -> None:
    client = TestClient(make_app(url_prefix=True))
    page = client.get("/fr/articles?page=2")
    assert "<main>fr</main>" in page.text
    fields = form_of(page)
    assert fields["next"] == "/fr/articles?page=2"
    response = client.post("/i18n/locale", data={**fields, "locale": "de"})
    assert response.headers["location"] == "/de/articles?page=2"
    # Posted under a prefix, too.
    response = client.post("/fr/i18n/locale", data={**fields, "locale": "en"})
    assert response.headers["location"] == "/en/articles?page=2"


def test_the_switcher_under_a_prefix_posts_outside_it() -> None:
    client = TestClient(make_app(url_prefix=True))
    assert 'action="/i18n/locale"' in client.get("/de/articles").text


def test_no_cookie_when_turned_off() -> None:
    client = TestClient(make_app(cookie_name=None))
    fields = form_of(client.get("/articles"))
    response = client.post("/i18n/locale", data={**fields, "locale": "de"})
    assert response.status_code == 303
    assert "locale=" not in response.headers.get("set-cookie", "")


def test_the_route_can_be_left_out() -> None:
    client = TestClient(make_app(switch_route=False))
    assert client.post("/i18n/locale", data={"locale": "de"}).status_code in (403, 404, 405)


def test_without_sessions_the_origin_is_still_checked() -> None:
    app = App(debug=True, sessions=False)
    app.install(I18n(locales=("en", "fr")))
    client = TestClient(app)
    ok = client.post("/i18n/locale", data={"locale": "fr", "next": "/x"})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/x"
    refused = client.post(
        "/i18n/locale", data={"locale": "fr"}, headers={"origin": "https://evil.example"}
    )
    assert refused.status_code == 403


def test_template_globals_for_language_links() -> None:
    app = App(debug=True)
    source = (
        '{% for code in locales %}<a href="{{ locale_url(code) }}" hreflang="{{ code }}">'
        "{{ locale_name(code) }}</a>{% endfor %}|{{ get_timezone() }}"
    )
    app.templates = Templates(jinja2.DictLoader({"links.html": source}), app=app)
    app.install(I18n(locales=("en", "fr", "pt_BR"), url_prefix=True, timezone="Europe/Paris"))

    @app.get("/docs/{page}")
    async def docs(page: str) -> object:
        return render("links.html")

    text = TestClient(app).get("/fr/docs/intro?x=1").text
    assert text == (
        '<a href="/en/docs/intro?x=1" hreflang="en">English</a>'
        '<a href="/fr/docs/intro?x=1" hreflang="fr">Français</a>'
        '<a href="/pt-BR/docs/intro?x=1" hreflang="pt_BR">Português (Brasil)</a>|Europe/Paris'
    )
    templates = app.templates
    assert templates.env.from_string("{{ locale_url('fr') }}").render() == "/fr/"
