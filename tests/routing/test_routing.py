"""Routing through the public API: methods, converters, priority, 404/405, HEAD, OPTIONS,
trailing slashes, clashes and bad input."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from trellis import App, Request, Response
from trellis.exceptions import ConfigurationError, RouteConflictError
from trellis.routing import Converter, register_converter
from trellis.testing import TestClient
from trellis.types import Message, Receive, Scope, Send


class DateConverter(Converter):
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> date:
        return date.fromisoformat(value)  # ValueError for 2024-13-45: the route does not match

    def to_url(self, value: date) -> str:
        return value.isoformat()


class YearMonthConverter(Converter):
    # Capture groups of its own: must not confuse composite segments.
    regex = r"(\d{4})-(\d{2})"


register_converter("test_routing_date", DateConverter)
register_converter("test_routing_ym", YearMonthConverter)


def client_for(app: App, **kwargs: Any) -> TestClient:
    return TestClient(app, **kwargs)


def single_route(path: str, method: str = "GET") -> App:
    """An app with one route at ``path`` that echoes its path parameters with their types."""
    app = App(debug=True)

    async def echo(request: Request) -> dict[str, Any]:
        return {k: [type(v).__name__, str(v)] for k, v in request.path_params.items()}

    app.add_route(path, echo, [method])
    return app


# -- methods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_method_decorators(method: str) -> None:
    app = App(debug=True)
    decorator: Callable[[str], Callable[[Any], Any]] = getattr(app, method)

    @decorator("/thing")
    async def handler() -> str:
        return f"did {method}"

    with client_for(app) as client:
        response = client.request(method.upper(), "/thing")
        assert response.status_code == 200
        assert response.text == f"did {method}"
        other = "POST" if method != "post" else "PUT"
        assert client.request(other, "/thing").status_code == 405


def test_route_with_several_methods_lower_case_accepted() -> None:
    app = App(debug=True)

    @app.route("/multi", methods=["get", "Post"])
    async def multi(request: Request) -> str:
        return request.method

    with client_for(app) as client:
        assert client.get("/multi").text == "GET"
        assert client.post("/multi").text == "POST"
        response = client.put("/multi")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


def test_methods_may_be_a_single_string() -> None:
    app = App(debug=True)
    app.add_route("/one", lambda: "posted", "post")
    with client_for(app) as client:
        assert client.post("/one").text == "posted"
        assert client.get("/one").status_code == 405


def test_route_defaults_to_get() -> None:
    app = App(debug=True)

    @app.route("/only-get")
    async def only_get() -> str:
        return "ok"

    with client_for(app) as client:
        assert client.get("/only-get").text == "ok"
        assert client.post("/only-get").status_code == 405


def test_add_route_without_decorator_and_one_handler_for_two_routes() -> None:
    app = App(debug=True)

    def hello(request: Request) -> str:
        return request.path

    app.add_route("/a", hello)
    app.add_route("/b", hello, ["GET", "POST"])
    with client_for(app) as client:
        assert client.get("/a").text == "/a"
        assert client.post("/b").text == "/b"


@pytest.mark.parametrize(
    ("methods", "message"),
    [(["FETCH"], "unknown HTTP method(s) FETCH"), ([], "no methods given")],
)
def test_bad_methods_are_refused_at_registration(methods: list[str], message: str) -> None:
    app = App(debug=True)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        app.add_route("/x", lambda: "x", methods)


def test_handler_must_be_callable() -> None:
    app = App(debug=True)
    with pytest.raises(ConfigurationError, match="not callable"):
        app.add_route("/x", "not a function")  # type: ignore[arg-type]


# -- converters ------------------------------------------------------------------------------------

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("template", "url", "expected"),
    [
        ("/v/{x}", "/v/hello", ["str", "hello"]),
        ("/v/{x:str}", "/v/h%C3%A9llo%20w", ["str", "héllo w"]),
        ("/v/{x:int}", "/v/42", ["int", "42"]),
        ("/v/{x:int}", "/v/007", ["int", "7"]),
        ("/v/{x:float}", "/v/3.25", ["float", "3.25"]),
        ("/v/{x:float}", "/v/3", ["float", "3.0"]),
        ("/v/{x:slug}", "/v/hello-world_2", ["str", "hello-world_2"]),
        ("/v/{x:uuid}", f"/v/{UID}", ["UUID", str(UID)]),
        ("/v/{x:uuid}", f"/v/{str(UID).upper()}", ["UUID", str(UID)]),
        ("/v/{x:path}", "/v/a/b/c.txt", ["str", "a/b/c.txt"]),
        ("/v/{x:path}", "/v/", ["str", ""]),
        ("/v/{x:test_routing_date}", "/v/2024-02-29", ["date", "2024-02-29"]),
    ],
)
def test_converters_match_and_convert(template: str, url: str, expected: list[str]) -> None:
    with client_for(single_route(template)) as client:
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert response.json() == {"x": expected}


@pytest.mark.parametrize(
    ("template", "url"),
    [
        ("/v/{x}", "/v/a/b"),
        ("/v/{x}", "/v/"),
        ("/v/{x:int}", "/v/abc"),
        ("/v/{x:int}", "/v/-1"),
        ("/v/{x:int}", "/v/1.5"),
        ("/v/{x:int}", "/v/" + "9" * 5000),  # int() refuses this many digits: no match, no 500
        ("/v/{x:float}", "/v/1e5"),
        ("/v/{x:float}", "/v/nan"),
        ("/v/{x:float}", "/v/.5"),
        ("/v/{x:slug}", "/v/h%C3%A9llo"),
        ("/v/{x:slug}", "/v/a.b"),
        ("/v/{x:uuid}", "/v/12345678-1234-5678-1234-56781234567"),
        ("/v/{x:uuid}", "/v/not-a-uuid"),
        ("/v/{x:path}", "/w/a/b"),
        ("/v/{x:test_routing_date}", "/v/2024-13-45"),  # regex matches, to_python refuses
        ("/v/{x:test_routing_date}", "/v/yesterday"),
    ],
)
def test_converters_refuse(template: str, url: str) -> None:
    with client_for(single_route(template)) as client:
        response = client.get(url)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def test_custom_converter_in_a_composite_segment_with_groups_of_its_own() -> None:
    with client_for(single_route("/reports/report-{x:test_routing_ym}.csv")) as client:
        assert client.get("/reports/report-2024-05.csv").json() == {"x": ["str", "2024-05"]}
        assert client.get("/reports/report-2024-5.csv").status_code == 404
    app = single_route("/r/{a:test_routing_ym}_{b:int}")
    with client_for(app) as client:
        response = client.get("/r/2024-05_7")
        assert response.json() == {"a": ["str", "2024-05"], "b": ["int", "7"]}


def test_register_converter_needs_an_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        register_converter("not-valid", DateConverter)


def test_multiple_parameters_and_mixed_static_segments() -> None:
    app = single_route("/orgs/{org:slug}/repos/{repo}/issues/{number:int}")
    with client_for(app) as client:
        assert client.get("/orgs/acme/repos/web/issues/12").json() == {
            "org": ["str", "acme"],
            "repo": ["str", "web"],
            "number": ["int", "12"],
        }
        assert client.get("/orgs/acme/repos/web/issues/x").status_code == 404
        assert client.get("/orgs/acme/repos/web/issues").status_code == 404


# -- static dict, dynamic tree, priority -----------------------------------------------------------


def test_many_static_and_dynamic_routes_each_reach_their_handler() -> None:
    app = App(debug=True)
    for i in range(30):
        app.add_route(f"/static/{i}", lambda i=i: f"static {i}", name=f"s{i}")
        app.add_route(f"/dyn{i}/{{x:int}}", lambda x, i=i: f"dyn {i} {x}", name=f"d{i}")
    with client_for(app) as client:
        for i in (0, 7, 29):
            assert client.get(f"/static/{i}").text == f"static {i}"
            assert client.get(f"/dyn{i}/{i * 3}").text == f"dyn {i} {i * 3}"
        assert client.get("/static/30").status_code == 404
        assert client.get("/dyn30/1").status_code == 404


@pytest.mark.parametrize("static_first", [True, False])
def test_static_beats_parameter_whatever_the_order(static_first: bool) -> None:
    app = App(debug=True)

    async def me() -> str:
        return "me"

    async def user(id: str) -> str:
        return f"user {id}"

    routes: list[tuple[str, Callable[..., Any]]] = [("/users/me", me), ("/users/{id}", user)]
    for path, fn in routes if static_first else reversed(routes):
        app.add_route(path, fn)
    with client_for(app) as client:
        assert client.get("/users/me").text == "me"
        assert client.get("/users/you").text == "user you"


@pytest.mark.parametrize("int_first", [True, False])
def test_int_beats_str_and_uuid_beats_str_whatever_the_order(int_first: bool) -> None:
    app = App(debug=True)

    async def by_int(key: int) -> str:
        return f"int {key}"

    async def by_str(key: str) -> str:
        return f"str {key}"

    async def by_uuid(key: uuid.UUID) -> str:
        return f"uuid {key}"

    routes: list[tuple[str, Callable[..., Any]]] = [
        ("/k/{key:int}", by_int),
        ("/k/{key:uuid}", by_uuid),
        ("/k/{key}", by_str),
    ]
    for path, fn in routes if int_first else reversed(routes):
        app.add_route(path, fn)
    with client_for(app) as client:
        assert client.get("/k/5").text == "int 5"
        assert client.get("/k/five").text == "str five"
        assert client.get(f"/k/{UID}").text == f"uuid {UID}"


def test_int_beats_float_and_float_beats_str() -> None:
    app = App(debug=True)
    app.add_route("/n/{v}", lambda v: f"str {v}", name="s")
    app.add_route("/n/{v:float}", lambda v: f"float {v}", name="f")
    app.add_route("/n/{v:int}", lambda v: f"int {v}", name="i")
    with client_for(app) as client:
        assert client.get("/n/5").text == "int 5"
        assert client.get("/n/5.5").text == "float 5.5"
        assert client.get("/n/5.5.5").text == "str 5.5.5"


def test_matcher_backtracks_when_a_static_branch_dead_ends() -> None:
    app = App(debug=True)
    app.add_route("/new/{id:int}", lambda id: f"new {id}", name="new")
    app.add_route("/{section}/edit", lambda section: f"edit {section}", name="edit")
    app.add_route("/a/b/{rest:path}", lambda rest: f"rest {rest}", name="rest")
    app.add_route("/a/{x}/c", lambda x: f"x {x}", name="x")
    with client_for(app) as client:
        assert client.get("/new/3").text == "new 3"
        assert client.get("/new/edit").text == "edit new"
        assert client.get("/a/b/c").text == "rest c"
        assert client.get("/a/z/c").text == "x z"
        assert client.get("/a/b/c/d").text == "rest c/d"


def test_composite_segments() -> None:
    app = App(debug=True)

    @app.get("/files/{name}.{ext}")
    async def file(name: str, ext: str) -> dict[str, str]:
        return {"name": name, "ext": ext}

    @app.get("/files/{anything}")
    async def anything(anything: str) -> str:
        return f"plain {anything}"

    @app.get("/v{major:int}.{minor:int}/status")
    async def version(major: int, minor: int) -> list[int]:
        return [major, minor]

    with client_for(app) as client:
        assert client.get("/files/report.pdf").json() == {"name": "report", "ext": "pdf"}
        # the last dot separates: the str converter is greedy
        assert client.get("/files/archive.tar.gz").json() == {"name": "archive.tar", "ext": "gz"}
        assert client.get("/files/README").text == "plain README"
        assert client.get("/v1.12/status").json() == [1, 12]
        assert client.get("/v1.x/status").status_code == 404


@pytest.mark.parametrize("generic_first", [True, False])
def test_composite_with_more_literal_text_wins(generic_first: bool) -> None:
    app = App(debug=True)

    async def generic(name: str, ext: str) -> str:
        return f"generic {name} {ext}"

    async def tarball(name: str) -> str:
        return f"tarball {name}"

    routes: list[tuple[str, Callable[..., Any]]] = [
        ("/dl/{name}.{ext}", generic),
        ("/dl/{name}.tar.gz", tarball),
    ]
    for path, fn in routes if generic_first else reversed(routes):
        app.add_route(path, fn)
    with client_for(app) as client:
        assert client.get("/dl/src.tar.gz").text == "tarball src"
        assert client.get("/dl/src.zip").text == "generic src zip"


# -- 404 and 405 -----------------------------------------------------------------------------------


def test_unknown_path_is_a_problem_json_404() -> None:
    app = single_route("/known")
    with client_for(app) as client:
        response = client.get("/unknown", headers={"accept": "application/json"})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "instance": "/unknown",
        }
        assert client.get("/known/").status_code == 308  # the canonical form exists
        assert client.get("//known").status_code == 404
        assert client.get("/KNOWN").status_code == 404  # paths are case-sensitive


def test_405_lists_allowed_methods() -> None:
    app = App(debug=True)

    @app.get("/items/{id:int}")
    async def read(id: int) -> int:
        return id

    @app.put("/items/{id:int}")
    async def replace(id: int) -> int:
        return id

    with client_for(app) as client:
        response = client.delete("/items/1")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, OPTIONS, PUT"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 405
        assert client.post("/items/1").headers["allow"] == "GET, HEAD, OPTIONS, PUT"


def test_405_for_a_static_path() -> None:
    app = App(debug=True)
    app.add_route("/form", lambda: "form", ["POST"])
    with client_for(app) as client:
        response = client.get("/form")
        assert response.status_code == 405
        assert response.headers["allow"] == "OPTIONS, POST"
        assert client.head("/form").status_code == 405


def test_a_route_for_the_method_is_found_past_a_leaf_without_it() -> None:
    app = App(debug=True)
    app.add_route("/users/me", lambda: "me")
    app.add_route("/users/{id}", lambda id: f"deleted {id}", ["DELETE"], name="delete_user")
    app.add_route("/items/{id:int}", lambda id: f"item {id}", name="item")
    app.add_route("/items/{name}", lambda name: f"created {name}", ["POST"], name="new")
    with client_for(app) as client:
        assert client.delete("/users/me").text == "deleted me"
        assert client.post("/items/5").text == "created 5"
        assert client.get("/items/5").text == "item 5"
        assert client.put("/items/5").status_code == 405


# -- HEAD ------------------------------------------------------------------------------------------


def _head_app() -> App:
    app = App(debug=True)

    @app.get("/text")
    async def text() -> str:
        return "hello"

    @app.get("/json")
    def json_() -> dict[str, int]:
        return {"a": 1}

    @app.get("/bytes/{n:int}")
    async def raw(n: int) -> bytes:
        return b"x" * n

    @app.get("/custom")
    async def custom() -> Response:
        return Response("<b>hi</b>", 201, {"x-custom": "yes"}, media_type="text/html")

    @app.get("/empty")
    async def empty() -> None:
        return None

    @app.get("/with-request")
    async def with_request(request: Request) -> str:
        return f"{request.method} seen"

    return app


@pytest.mark.parametrize("path", ["/text", "/json", "/bytes/7", "/custom", "/empty"])
def test_head_answers_every_get_with_the_same_headers_and_no_body(path: str) -> None:
    with client_for(_head_app()) as client:
        same_id = {"X-Request-ID": "head-vs-get"}  # otherwise each gets an id of its own
        get = client.get(path, headers=same_id)
        head = client.head(path, headers=same_id)
        assert head.status_code == get.status_code
        assert head.content == b""
        assert dict(head.headers) == dict(get.headers)
        if get.status_code != 204:
            assert int(head.headers["content-length"]) == len(get.content) > 0


def test_head_runs_the_get_handler_with_method_head() -> None:
    with client_for(_head_app()) as client:
        head = client.head("/with-request")
        assert head.headers["content-length"] == str(len("HEAD seen"))
        assert head.content == b""


def test_explicit_head_route_replaces_the_automatic_one() -> None:
    app = App(debug=True)
    app.add_route("/doc", lambda: "body")
    app.add_route(
        "/doc", lambda: Response(b"", headers={"x-head": "explicit"}), ["HEAD"], name="doc_head"
    )
    with client_for(app) as client:
        assert client.head("/doc").headers["x-head"] == "explicit"
        assert client.get("/doc").text == "body"


def test_head_for_a_post_only_route_is_405() -> None:
    app = App(debug=True)
    app.add_route("/submit/{id:int}", lambda id: id, ["POST"])
    with client_for(app) as client:
        response = client.head("/submit/1")
        assert response.status_code == 405
        assert response.headers["allow"] == "OPTIONS, POST"


# -- OPTIONS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "url"), [("/static", "/static"), ("/dyn/{x:int}", "/dyn/3")])
def test_automatic_options(path: str, url: str) -> None:
    app = App(debug=True)
    app.add_route(path, lambda request: "x", ["GET", "PATCH"])
    with client_for(app) as client:
        response = client.options(url)
        assert response.status_code == 204
        assert response.headers["allow"] == "GET, HEAD, OPTIONS, PATCH"
        assert response.content == b""
        assert client.options("/nowhere").status_code == 404


def test_explicit_options_route_replaces_the_automatic_one() -> None:
    app = App(debug=True)
    app.add_route("/cors", lambda: "get")

    @app.options("/cors")
    async def preflight() -> Response:
        return Response(None, 200, {"x-preflight": "1"})

    with client_for(app) as client:
        response = client.options("/cors")
        assert response.status_code == 200
        assert response.headers["x-preflight"] == "1"
        assert client.post("/cors").headers["allow"] == "GET, HEAD, OPTIONS"


# -- trailing slash --------------------------------------------------------------------------------


def _slash_app() -> App:
    app = App(debug=True)
    app.add_route("/about", lambda: "about", ["GET", "POST"], name="about")
    app.add_route("/dir/", lambda: "dir", name="dir")
    app.add_route("/users/{id:int}", lambda id: f"user {id}", name="user")
    app.add_route("/", lambda: "home", name="home")
    return app


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/about/", "/about"),
        ("/dir", "/dir/"),
        ("/users/5/", "/users/5"),
        ("/about/?a=1&b=two%20words", "/about?a=1&b=two%20words"),
        ("/dir?x=%zz", "/dir/?x=%zz"),
    ],
)
def test_trailing_slash_redirects_308_to_the_canonical_url(url: str, location: str) -> None:
    with client_for(_slash_app()) as client:
        response = client.get(url)
        assert response.status_code == 308
        assert response.headers["location"] == location


def test_trailing_slash_redirect_keeps_the_method_and_is_followed() -> None:
    with client_for(_slash_app(), follow_redirects=True) as client:
        response = client.post("/about/", content=b"data")
        assert response.status_code == 200
        assert response.text == "about"
        assert [r.status_code for r in response.history] == [308]


def test_trailing_slash_redirect_includes_the_root_path() -> None:
    with client_for(_slash_app(), root_path="/app") as client:
        response = client.get("/about/?q=1")
        assert response.status_code == 308
        assert response.headers["location"] == "/app/about?q=1"


def test_no_redirect_when_neither_form_exists() -> None:
    with client_for(_slash_app()) as client:
        assert client.get("/users/x/").status_code == 404
        assert client.get("/nothing/").status_code == 404
        assert client.get("/").text == "home"


def test_trailing_slash_redirect_keeps_encoded_characters_encoded() -> None:
    app = App(debug=True)
    app.add_route("/t/{name}", lambda name: name)
    with client_for(app, follow_redirects=True) as client:
        response = client.get("/t/a%3Fb/")
        assert response.history[0].headers["location"] == "/t/a%3Fb"
        assert response.text == "a?b"


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/items/%zz", "/items/%", "/items/%2", "/items/%%41"])
def test_malformed_percent_encoding_in_the_path_is_not_a_500(url: str) -> None:
    app = App(debug=True)
    app.add_route("/items/{id:int}", lambda id: {"id": id}, name="item")
    app.add_route("/names/{name}", lambda name: {"name": name}, name="names")
    with client_for(app) as client:
        assert client.get(url).status_code == 404
        # in a str parameter the text is kept as it came
        response = client.get(url.replace("/items/", "/names/"))
        assert response.status_code == 200
        assert response.json()["name"].startswith("%")


def test_malformed_percent_encoding_in_the_query_is_kept_literally() -> None:
    app = App(debug=True)

    @app.get("/search")
    async def search(request: Request) -> dict[str, list[str]]:
        return {k: request.query.getlist(k) for k in request.query}

    with client_for(app) as client:
        response = client.get("/search?q=%zz&x=%&y=%E2%82&z=ok%20")
        assert response.status_code == 200
        assert response.json() == {"q": ["%zz"], "x": ["%"], "y": ["\ufffd"], "z": ["ok "]}


async def _call_raw(app: App, path: str, query: bytes = b"") -> tuple[int, bytes]:
    """Call ``app`` with a scope as a server builds it (the server decodes the path)."""
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "replace"),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return messages[0]["status"], body


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path", ["/names/%zz", "/names/%", "/names/\ufffd", "/names/caf\u00e9", "/names/a b"]
)
async def test_raw_scope_paths_as_a_server_decodes_them(path: str) -> None:
    app = App(debug=True)
    app.add_route("/names/{name}", lambda name: name)
    status, body = await _call_raw(app, path, b"q=%zz&x=%")
    assert status == 200
    assert body.decode() == path.removeprefix("/names/")
    status, _ = await _call_raw(app, "/elsewhere/%zz")
    assert status == 404


def test_invalid_utf8_in_the_path_through_the_test_client() -> None:
    app = App(debug=True)
    app.add_route("/names/{name}", lambda name: name)
    with client_for(app) as client:
        response = client.get("/names/%ff")
        assert response.status_code == 200
        assert response.text == "\ufffd"


# -- path templates that are wrong -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no-slash", "must start with '/'"),
        ("/a/{b", "unbalanced brace"),
        ("/a/b}", "unbalanced brace"),
        ("/a/{b}.{c", "unbalanced brace"),
        ("/a/{}", "valid identifier"),
        ("/a/{1x}", "valid identifier"),
        ("/a/{x}/{x}", "uses the parameter 'x' twice"),
        ("/a/{x:path}/b", "must be the last segment"),
        ("/a/{x:path}.txt", "must fill its whole segment"),
        ("/a/{x:nope}", "unknown path converter 'nope'"),
    ],
)
def test_bad_path_templates_fail_the_build_naming_the_handler(path: str, message: str) -> None:
    app = App(debug=True)

    def the_handler() -> str:
        return ""

    app.add_route(path, the_handler)
    with pytest.raises(ConfigurationError, match=re.escape(message)) as info:
        app.build()
    assert "the_handler" in str(info.value)


# -- clashes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/same", "/same"),
        ("/u/{id:int}", "/u/{num:int}"),
        ("/u/{a}", "/u/{b:str}"),
        ("/f/{n}.{e}", "/f/{name}.{ext}"),
        ("/p/{rest:path}", "/p/{other:path}"),
    ],
)
def test_routes_that_clash_fail_the_build_naming_both_handlers(first: str, second: str) -> None:
    app = App(debug=True)

    def first_handler() -> str:
        return ""

    def second_handler() -> str:
        return ""

    app.add_route(first, first_handler, ["GET", "POST"])
    app.add_route(second, second_handler, ["POST"])
    with pytest.raises(RouteConflictError) as info:
        app.build()
    message = str(info.value)
    assert "first_handler" in message and "second_handler" in message
    assert "POST" in message


def test_same_shape_with_other_methods_or_other_converters_does_not_clash() -> None:
    app = App(debug=True)
    app.add_route("/u/{id:int}", lambda id: f"get {id}", name="a")
    app.add_route("/u/{id:int}", lambda id: f"put {id}", ["PUT"], name="b")
    app.add_route("/u/{name}", lambda name: f"str {name}", name="c")
    with client_for(app) as client:
        assert client.get("/u/1").text == "get 1"
        assert client.put("/u/1").text == "put 1"
        assert client.get("/u/x").text == "str x"


def test_duplicate_route_names_fail_the_build_naming_both() -> None:
    app = App(debug=True)

    @app.get("/a", name="thing")
    async def first() -> str:
        return "a"

    @app.get("/b", name="thing")
    async def second() -> str:
        return "b"

    with pytest.raises(RouteConflictError, match="'thing'") as info:
        app.build()
    assert "first" in str(info.value) and "second" in str(info.value)


def test_two_functions_with_the_same_name_clash_by_default_name() -> None:
    app = App(debug=True)

    def make() -> Callable[[], str]:
        def index() -> str:
            return "x"

        return index

    app.add_route("/one", make())
    app.add_route("/two", make())
    with pytest.raises(RouteConflictError, match="two routes are named 'index'"):
        app.build()


def test_a_mount_name_used_by_a_route_is_a_conflict() -> None:
    app = App(debug=True)

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not called")

    app.add_route("/x", lambda: "x", name="legacy")
    app.mount("/legacy", asgi, name="legacy")
    with pytest.raises(RouteConflictError, match="'legacy'"):
        app.build()
