"""The I18n plugin: locale selection, catalogs, templates, time zones, checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from i18n_helpers import write_catalog

from trellis import App, Request
from trellis.checks import deploy_problems
from trellis.contrib.i18n import I18n, format_datetime, get_locale, get_timezone
from trellis.exceptions import ConfigurationError
from trellis.http.connection import HTTPConnection
from trellis.i18n import gettext, lazy_gettext, ngettext, pgettext
from trellis.templating import render
from trellis.testing import TestClient
from trellis.websockets import WebSocket

FRENCH = {
    "Hello": "Bonjour",
    "Hello %(name)s": "Bonjour %(name)s",
    ("%(num)d file", "%(num)d files"): ("%(num)d fichier", "%(num)d fichiers"),
    "month\x04May": "mai",
    "A block of %(what)s": "Un bloc de %(what)s",
    "Field required": "Ce champ manque",  # overrides the battery's "Champ obligatoire"
}
GERMAN = {"Hello": "Hallo"}

PAGE = """\
<p>{{ _("Hello") }}|{{ _("Hello %(name)s", name=name) }}|\
{{ ngettext("%(num)d file", "%(num)d files", n) }}|\
{{ pgettext("month", "May") }}|{% trans what=name %}A block of {{ what }}{% endtrans %}|\
{{ get_locale() }}|{{ url_for("page") }}|{{ 1234.5|format_decimal }}|\
{{ when|format_datetime("short") }}</p>
"""

MOMENT = dt.datetime(2024, 7, 1, 2, 30, tzinfo=dt.UTC)


@pytest.fixture
def locale_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "locale"
    write_catalog(folder, "fr", FRENCH)
    write_catalog(folder, "de", GERMAN)
    return folder


def make_app(tmp_path: Path, locale_dir: Path, **options: Any) -> tuple[App, I18n]:
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "page.html").write_text(PAGE, encoding="utf-8")
    app = App(debug=True, secret_key="s" * 40, templates_dir=str(templates))
    options.setdefault("locales", ("en", "fr", "de"))
    i18n = app.install(I18n(directory=locale_dir, **options))

    @app.get("/page", name="page")
    async def page(request: Request, n: int = 2) -> object:
        return render("page.html", name="<Ada>", n=n, when=MOMENT)

    @app.get("/api")
    async def api() -> dict[str, Any]:
        return {
            "locale": get_locale(),
            "hello": gettext("Hello"),
            "files": ngettext("%(num)d file", "%(num)d files", 1),
            "may": pgettext("month", "May"),
            "lazy": lazy_gettext("Hello"),
            "link": i18n.url_for("page"),
            "timezone": str(get_timezone()),
        }

    @app.get("/sync")
    def sync_handler(request: Request) -> dict[str, str]:
        return {"hello": gettext("Hello"), "link": request.url_for("page")}

    return app, i18n


@pytest.fixture
def client(tmp_path: Path, locale_dir: Path) -> TestClient:
    app, _ = make_app(tmp_path, locale_dir)
    return TestClient(app)


def api(client: TestClient, path: str = "/api", **headers: str) -> dict[str, Any]:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# -- locale selection ---------------------------------------------------------------------


def test_the_default_locale_without_any_hint(client: TestClient) -> None:
    data = api(client)
    assert data["locale"] == "en"
    assert data["hello"] == "Hello"
    assert data["files"] == "1 file"


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("fr", "fr"),
        ("fr-CA,fr;q=0.9", "fr"),
        ("de;q=0.4, fr;q=0.8, en;q=0.1", "fr"),
        ("es, de;q=0.5", "de"),
        ("es, it", "en"),  # nothing supported: the default
        ("fr;q=0, de;q=0.2", "de"),
        ("*", "en"),
    ],
)
def test_accept_language_with_q_values(client: TestClient, header: str, locale: str) -> None:
    assert api(client, **{"accept-language": header})["locale"] == locale


def test_the_cookie_wins_over_the_header(client: TestClient) -> None:
    client.cookies.set("locale", "de")
    data = api(client, **{"accept-language": "fr"})
    assert data["locale"] == "de"
    assert data["hello"] == "Hallo"


def test_an_unknown_cookie_value_falls_through(client: TestClient) -> None:
    client.cookies.set("locale", "xx-evil")
    assert api(client, **{"accept-language": "fr"})["locale"] == "fr"


def test_a_locale_selector_comes_before_the_cookie(tmp_path: Path, locale_dir: Path) -> None:
    seen: list[str] = []

    async def from_user(conn: HTTPConnection) -> str | None:
        seen.append(conn.url.path)
        return conn.headers.get("x-user-locale")

    app, _ = make_app(tmp_path, locale_dir, locale_selector=from_user)
    client = TestClient(app)
    client.cookies.set("locale", "de")
    assert api(client, **{"x-user-locale": "fr"})["locale"] == "fr"
    assert api(client, **{"x-user-locale": "zz"})["locale"] == "de"  # unsupported: next
    assert api(client)["locale"] == "de"
    assert seen == ["/api", "/api", "/api"]


def test_a_sync_locale_selector(tmp_path: Path, locale_dir: Path) -> None:
    app, _ = make_app(tmp_path, locale_dir, locale_selector=lambda conn: "de")
    assert api(TestClient(app), **{"accept-language": "fr"})["locale"] == "de"


def test_responses_say_their_language_and_what_they_vary_on(client: TestClient) -> None:
    response = client.get("/api", headers={"accept-language": "fr"})
    assert response.headers["content-language"] == "fr"
    vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
    assert {"accept-language", "cookie"} <= vary


def test_one_locale_needs_no_negotiation(tmp_path: Path, locale_dir: Path) -> None:
    app, _ = make_app(tmp_path, locale_dir, default_locale="fr", locales=("fr",))
    response = TestClient(app).get("/api", headers={"accept-language": "de"})
    assert response.json()["hello"] == "Bonjour"
    assert "accept-language" not in response.headers.get("vary", "").lower()
    assert response.headers["content-language"] == "fr"


# -- URL prefixes ---------------------------------------------------------------------------


@pytest.fixture
def prefixed(tmp_path: Path, locale_dir: Path) -> TestClient:
    app, _ = make_app(tmp_path, locale_dir, url_prefix=True, locales=("en", "fr", "de", "pt_BR"))
    return TestClient(app)


def test_the_url_prefix_wins(prefixed: TestClient) -> None:
    prefixed.cookies.set("locale", "de")
    data = api(prefixed, "/fr/api", **{"accept-language": "de"})
    assert data["locale"] == "fr"
    assert data["hello"] == "Bonjour"
    assert data["link"] == "/fr/page"
    response = prefixed.get("/fr/api")
    assert "accept-language" not in response.headers.get("vary", "").lower()


def test_links_keep_the_prefix(prefixed: TestClient) -> None:
    assert api(prefixed, "/de/sync") == {"hello": "Hallo", "link": "/de/page"}
    page = prefixed.get("/fr/page").text
    assert "|/fr/page|" in page
    assert api(prefixed, "/pt-BR/api")["locale"] == "pt_BR"
    assert api(prefixed, "/pt-br/api")["link"] == "/pt-BR/page"


def test_paths_without_a_prefix_still_work(prefixed: TestClient) -> None:
    data = api(prefixed, "/api", **{"accept-language": "de"})
    assert data["locale"] == "de"
    assert data["link"] == "/de/page"  # i18n.url_for adds the current locale's prefix
    assert api(prefixed, "/sync")["link"] == "/page"


def test_an_unsupported_prefix_is_just_a_path(prefixed: TestClient) -> None:
    assert prefixed.get("/es/api").status_code == 404
    assert prefixed.get("/fr").status_code == 404  # "/" has no route here


def test_prefixes_are_off_by_default(client: TestClient) -> None:
    assert client.get("/fr/api").status_code == 404


def test_url_for_and_switch_path(tmp_path: Path, locale_dir: Path) -> None:
    app, i18n = make_app(tmp_path, locale_dir, url_prefix=True)
    app.build()
    assert i18n.url_for("page", locale="de") == "/de/page"
    assert i18n.switch_path("/fr/page?x=1", "de") == "/de/page?x=1"
    assert i18n.switch_path("/page", "fr") == "/fr/page"
    assert i18n.switch_path("/fr", "de") == "/de/"
    assert i18n.switch_path("/", "de") == "/de/"
    assert i18n.switch_path("/fr?x=1", "de") == "/de/?x=1"
    assert i18n.prefix_of("pt_BR") == "pt-BR"
    plain = I18n(locales=("en", "fr"))
    assert plain.switch_path("/fr/page", "de") == "/fr/page"


def test_url_for_needs_the_plugin_installed() -> None:
    with pytest.raises(ConfigurationError, match="not installed"):
        I18n().url_for("page")


# -- translations ---------------------------------------------------------------------------


def test_python_messages_in_async_and_sync_handlers(client: TestClient) -> None:
    data = api(client, **{"accept-language": "fr"})
    assert data["hello"] == "Bonjour"
    assert data["files"] == "1 fichier"
    assert data["may"] == "mai"
    assert data["lazy"] == "Bonjour"  # a lazy string, encoded in the request's locale
    assert api(client, "/sync", **{"accept-language": "de"})["hello"] == "Hallo"


def test_templates_in_each_locale(client: TestClient) -> None:
    english = client.get("/page?n=1").text
    assert english == (
        "<p>Hello|Hello &lt;Ada&gt;|1 file|May|A block of &lt;Ada&gt;|en|/page|1,234.5|"
        "7/1/24, 2:30\u202fAM</p>"
    )
    french = client.get("/page?n=0", headers={"accept-language": "fr"}).text
    assert french == (
        "<p>Bonjour|Bonjour &lt;Ada&gt;|0 fichier|mai|Un bloc de &lt;Ada&gt;|fr|/page|"
        "1\u202f234,5|01/07/2024 02:30</p>"
    )
    assert "|2 fichiers|" in client.get("/page", headers={"accept-language": "fr"}).text
    # A message the catalog lacks stays in English.
    assert "|May|" in client.get("/page", headers={"accept-language": "de"}).text


def test_the_time_zone_of_the_user(tmp_path: Path, locale_dir: Path) -> None:
    app, _ = make_app(tmp_path, locale_dir, timezone="Europe/Paris")
    client = TestClient(app)
    headers = {"accept-language": "fr"}
    assert client.get("/page", headers=headers).text.endswith("|01/07/2024 04:30</p>")
    client.cookies.set("timezone", "America/New_York")
    assert client.get("/page", headers=headers).text.endswith("|30/06/2024 22:30</p>")
    assert api(client)["timezone"] == "America/New_York"
    client.cookies.set("timezone", "Not/AZone")
    assert api(client)["timezone"] == "Europe/Paris"


def test_a_timezone_selector(tmp_path: Path, locale_dir: Path) -> None:
    async def tz(conn: HTTPConnection) -> str | None:
        return conn.headers.get("x-tz")

    app, _ = make_app(tmp_path, locale_dir, timezone_selector=tz)
    client = TestClient(app)
    assert api(client, **{"x-tz": "Asia/Tokyo"})["timezone"] == "Asia/Tokyo"
    assert api(client, **{"x-tz": "nowhere"})["timezone"] == "UTC"
    app2, _ = make_app(
        tmp_path, locale_dir, timezone_selector=lambda conn: dt.timezone(dt.timedelta(hours=2))
    )
    assert api(TestClient(app2))["timezone"] == "UTC+02:00"


def test_catalog_priority(tmp_path: Path, locale_dir: Path) -> None:
    _, i18n = make_app(tmp_path, locale_dir)
    with i18n.activate("fr"):
        assert gettext("Field required") == "Ce champ manque"  # the app's
        assert gettext("Language") == "Langue"  # the i18n battery's
    bare = I18n(locales=("en", "fr"), directory=locale_dir, batteries=False)
    with bare.activate("fr"):
        assert gettext("Language") == "Language"
        assert gettext("Hello") == "Bonjour"


def test_a_po_without_mo_is_compiled_in_memory(tmp_path: Path) -> None:
    folder = tmp_path / "locale"
    write_catalog(folder, "fr", {"Hello": "Salut"}, compiled=False)
    app = App(debug=False, secret_key="k3Jx9-Q2vLr8TzWm5NpYd4HsBcF7gUaE", allowed_hosts=["x.io"])
    i18n = app.install(I18n(locales=("en", "fr"), directory=folder))
    with i18n.activate("fr"):
        assert gettext("Hello") == "Salut"
    problems = [p for p in deploy_problems(app) if p.id == "i18n.W001"]
    assert len(problems) == 1
    assert "messages.po" in problems[0].message
    write_catalog(folder, "fr", {"Hello": "Salut"})
    assert not [p for p in deploy_problems(app) if p.id == "i18n.W001"]


def test_a_regional_locale_falls_back_to_the_language_catalog(locale_dir: Path) -> None:
    i18n = I18n(locales=("en", "fr_CA"), directory=locale_dir)
    with i18n.activate("fr-CA") as locale:
        assert locale == "fr_CA"
        assert gettext("Hello") == "Bonjour"


def test_activate(locale_dir: Path) -> None:
    i18n = I18n(locales=("en", "fr"), directory=locale_dir, timezone="Asia/Tokyo")
    with i18n.activate() as locale:
        assert locale == "en"
        assert format_datetime(MOMENT, "HH:mm") == "11:30"
    with i18n.activate("fr", timezone="UTC"):
        assert gettext("Hello") == "Bonjour"
        assert format_datetime(MOMENT, "HH:mm") == "02:30"
    assert get_locale() == "en"
    with pytest.raises(ValueError, match="not one of the supported locales"), i18n.activate("de"):
        pass


def test_reload_reads_the_catalogs_again(tmp_path: Path) -> None:
    folder = tmp_path / "locale"
    write_catalog(folder, "fr", {"Hello": "Salut"})
    i18n = I18n(locales=("en", "fr"), directory=folder)
    i18n.load()
    write_catalog(folder, "fr", {"Hello": "Coucou"})
    with i18n.activate("fr"):
        assert gettext("Hello") == "Salut"
    i18n.load(reload=True)
    with i18n.activate("fr"):
        assert gettext("Hello") == "Coucou"


def test_a_plugin_can_bring_its_catalog(tmp_path: Path) -> None:
    folder = tmp_path / "plugin_locale"
    write_catalog(folder, "fr", {"Widget": "Gadget"})

    class WidgetPlugin:
        locale_directory = folder

        def setup(self, app: App) -> None:
            pass

    app = App()
    app.install(WidgetPlugin())
    i18n = app.install(I18n(locales=("en", "fr"), directory=tmp_path / "none"))
    with i18n.activate("fr"):
        assert gettext("Widget") == "Gadget"


def test_websockets_get_the_locale(client: TestClient) -> None:
    @client.app.websocket("/ws")  # type: ignore[attr-defined]
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(gettext("Hello"))
        await websocket.close()

    with client, client.websocket_connect("/ws", headers={"accept-language": "fr"}) as session:
        assert session.receive_text() == "Bonjour"


def test_an_app_without_templates(locale_dir: Path) -> None:
    app = App(debug=True)
    app.install(I18n(locales=("en", "fr"), directory=locale_dir))

    @app.get("/")
    async def index() -> str:
        return gettext("Hello")

    assert TestClient(app).get("/", headers={"accept-language": "fr"}).text == "Bonjour"


# -- configuration --------------------------------------------------------------------------


def test_locales_are_canonical_and_include_the_default() -> None:
    i18n = I18n(default_locale="fr", locales=("pt-br", "en", "EN"))
    assert i18n.locales == ("fr", "pt_BR", "en")
    assert i18n.default_locale == "fr"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"default_locale": "xx_nowhere"}, "unknown locale 'xx_nowhere'"),
        ({"locales": ("en", "klingon!")}, "unknown locale 'klingon!'"),
        ({"timezone": "Moon/Base"}, "I18n\\(timezone='Moon/Base'\\)"),
    ],
)
def test_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        I18n(**options)


def test_installed_once() -> None:
    app = App()
    app.install(I18n())
    with pytest.raises(ConfigurationError, match="already has an I18n"):
        app.install(I18n())


def test_vary_is_merged_with_the_handlers(locale_dir: Path) -> None:
    from trellis.http.response import Response

    app = App(debug=True)
    app.install(I18n(locales=("en", "fr"), directory=locale_dir))

    @app.get("/")
    async def index() -> Response:
        return Response(b"x", headers={"vary": "Origin", "content-language": "en-GB"})

    response = TestClient(app).get("/", headers={"accept-language": "fr"})
    assert response.headers["vary"] == "Origin, Accept-Language, Cookie"
    assert response.headers["content-language"] == "en-GB"  # the handler knows best
