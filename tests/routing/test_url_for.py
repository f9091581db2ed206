"""Building URLs back from route names: ``app.url_for``, ``request.url_for`` and templates."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

import jinja2
import pytest

from trellis import App, Request, Router, View
from trellis.exceptions import URLBuildError
from trellis.routing import Converter, register_converter
from trellis.templating import Templates
from trellis.testing import TestClient
from trellis.types import Receive, Scope, Send


class IsoDateConverter(Converter):
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> date:
        return date.fromisoformat(value)

    def to_url(self, value: date) -> str:
        return value.isoformat()


register_converter("test_url_for_date", IsoDateConverter)

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")


async def _asgi(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


def make_app() -> App:
    app = App(debug=True)

    @app.get("/")
    async def index() -> str:
        return "home"

    @app.get("/users/{id:int}")
    async def user(id: int) -> int:
        return id

    @app.get("/users/{id:int}/posts/{slug:slug}")
    async def user_post(id: int, slug: str) -> str:
        return slug

    @app.get("/things/{key:uuid}")
    async def thing(key: uuid.UUID) -> str:
        return str(key)

    @app.get("/files/{path:path}")
    async def files(path: str) -> str:
        return path

    @app.get("/tags/{tag}")
    async def tag(tag: str) -> str:
        return tag

    @app.get("/prices/{amount:float}")
    async def price(amount: float) -> float:
        return amount

    @app.get("/days/{day:test_url_for_date}")
    async def day(day: date) -> str:
        return day.isoformat()

    @app.get("/assets/{name}.{ext}")
    async def asset(name: str, ext: str) -> str:
        return f"{name}.{ext}"

    api = Router("/api", name="api")
    v1 = Router("/v1", name="v1")

    @v1.get("/items/{id:int}")
    async def item(id: int) -> int:
        return id

    @api.get("/")
    async def api_root() -> str:
        return "api"

    api.include(v1)
    app.include(api)
    app.mount("/legacy", _asgi, name="legacy")
    return app


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("index", {}, "/"),
        ("user", {"id": 5}, "/users/5"),
        ("user", {"id": "7"}, "/users/7"),
        ("user_post", {"id": 1, "slug": "hello-world"}, "/users/1/posts/hello-world"),
        ("thing", {"key": UID}, f"/things/{UID}"),
        ("files", {"path": "css/site main.css"}, "/files/css/site%20main.css"),
        ("tag", {"tag": "a b&c?d#e"}, "/tags/a%20b&c%3Fd%23e"),
        ("tag", {"tag": "café"}, "/tags/caf%C3%A9"),
        ("price", {"amount": 2.5}, "/prices/2.5"),
        ("day", {"day": date(2024, 2, 29)}, "/days/2024-02-29"),
        ("asset", {"name": "logo", "ext": "png"}, "/assets/logo.png"),
        ("api.api_root", {}, "/api"),
        ("api.v1.item", {"id": 3}, "/api/v1/items/3"),
        ("legacy", {"path": "old/page.html"}, "/legacy/old/page.html"),
        ("legacy", {}, "/legacy/"),
    ],
)
def test_url_for_paths(name: str, params: dict[str, Any], expected: str) -> None:
    assert make_app().url_for(name, **params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"page": 2}, "/users/5?page=2"),
        ({"q": "two words", "lang": "fr"}, "/users/5?q=two+words&lang=fr"),
        ({"tag": ["a", "b"]}, "/users/5?tag=a&tag=b"),
        ({"tag": ("x",)}, "/users/5?tag=x"),
        ({"skip": None}, "/users/5"),
        ({"_anchor": "top"}, "/users/5#top"),
        ({"page": 1, "_anchor": "sec 2"}, "/users/5?page=1#sec%202"),
        ({"amp": "a&b=c"}, "/users/5?amp=a%26b%3Dc"),
    ],
)
def test_url_for_query_and_anchor(params: dict[str, Any], expected: str) -> None:
    assert make_app().url_for("user", id=5, **params) == expected


def test_url_for_round_trips_through_the_router() -> None:
    app = make_app()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("tag", {"tag": "a b&c?d#e"}, "a b&c?d#e"),
        ("tag", {"tag": "naïve ☃"}, "naïve ☃"),
        ("files", {"path": "dir/with space/ü.txt"}, "dir/with space/ü.txt"),
        ("day", {"day": date(2020, 1, 2)}, "2020-01-02"),
        ("thing", {"key": UID}, str(UID)),
    ]
    with TestClient(app) as client:
        for name, params, text in cases:
            response = client.get(app.url_for(name, **params))
            assert response.status_code == 200, (name, params)
            assert response.text == text


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nope", {}, "no route is named 'nope'"),
        ("api.nope", {}, "no route is named 'api.nope'"),
        ("user", {}, "needs the parameter(s) id"),
        ("user_post", {"id": 1}, "needs the parameter(s) slug"),
        ("user", {"id": "abc"}, "bad value for 'id'"),
        ("user", {"id": -1}, "bad value for 'id'"),
        ("tag", {"tag": "a/b"}, "bad value for 'tag'"),
        ("tag", {"tag": ""}, "bad value for 'tag'"),
        ("user_post", {"id": 1, "slug": "not a slug"}, "does not match"),
        ("thing", {"key": "nope"}, "does not match"),
        ("price", {"amount": float("inf")}, "bad value for 'amount'"),
        ("day", {"day": "2024-01-01"}, "bad value for 'day'"),  # to_url calls .isoformat()
    ],
)
def test_url_for_errors(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(URLBuildError, match=re.escape(message)):
        make_app().url_for(name, **params)


def test_url_build_error_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        make_app().url_for("missing")


def test_request_url_for_inside_a_handler() -> None:
    app = App(debug=True)

    @app.get("/posts/{id:int}")
    async def post(id: int) -> str:
        return str(id)

    @app.get("/links")
    async def links(request: Request) -> dict[str, str]:
        return {"post": request.url_for("post", id=9, ref="links")}

    with TestClient(app) as client:
        assert client.get("/links").json() == {"post": "/posts/9?ref=links"}


def test_one_handler_on_two_paths_is_chosen_by_the_parameters_given() -> None:
    app = App(debug=True)

    @app.get("/archive", name="archive")
    @app.get("/archive/{year:int}", name="archive")
    async def archive(year: int = 0) -> int:
        return year

    assert app.url_for("archive") == "/archive"
    assert app.url_for("archive", year=2024) == "/archive/2024"
    assert app.url_for("archive", page=2) == "/archive?page=2"
    with TestClient(app) as client:
        assert client.get("/archive").json() == 0
        assert client.get("/archive/1999").json() == 1999


def test_url_for_a_view_class_and_a_host_route() -> None:
    app = App(debug=True)

    @app.route("/widgets/{id:int}")
    class WidgetView(View):
        async def get(self, id: int) -> int:
            return id

        async def delete(self, id: int) -> None:
            return None

    tenants = Router(host="{tenant}.example.com", name="tenant")

    @tenants.get("/dashboard")
    async def dashboard(tenant: str) -> str:
        return tenant

    app.include(tenants)
    assert app.url_for("WidgetView", id=4) == "/widgets/4"
    # host parameters are not part of the path and do not leak into the query
    assert app.url_for("tenant.dashboard", tenant="acme") == "/dashboard"


def test_url_for_builds_the_app_so_it_is_frozen_afterwards() -> None:
    app = make_app()
    app.url_for("index")
    with pytest.raises(Exception, match=r"App\.get\(\)"):
        app.get("/late")


# -- templates -------------------------------------------------------------------------------------


def test_url_for_in_templates() -> None:
    app = make_app()
    templates = Templates(
        jinja2.DictLoader(
            {
                "links.html": (
                    "<a href=\"{{ url_for('user', id=5, tab='posts') }}\">u</a>"
                    "<a href=\"{{ url_for('api.v1.item', id=2, _anchor='top') }}\">i</a>"
                )
            }
        ),
        app=app,
    )
    html = templates.render_string("links.html")
    assert html == '<a href="/users/5?tab=posts">u</a><a href="/api/v1/items/2#top">i</a>'
    with pytest.raises(URLBuildError):
        templates.env.from_string("{{ url_for('nope') }}").render()


def test_url_for_in_a_template_rendered_in_a_handler_keeps_the_root_path() -> None:
    app = App(debug=True)
    app.templates = Templates(
        jinja2.DictLoader({"page.html": "{{ url_for('page', id=3) }}"}), app=app
    )

    @app.get("/pages/{id:int}")
    async def page(request: Request, id: int) -> object:
        return app.templates.render("page.html", request)

    with TestClient(app, root_path="/site") as client:
        assert client.get("/pages/1").text == "/site/pages/3"


def test_request_url_for_keeps_the_root_path() -> None:
    app = App(debug=True)

    @app.get("/pages/{id:int}")
    async def page(request: Request, id: int) -> str:
        return request.url_for("page", id=id + 1)

    with TestClient(app, root_path="/site") as client:
        assert client.get("/pages/1").text == "/site/pages/2"
