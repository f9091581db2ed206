"""Routers (blueprints), mounted ASGI apps and host routing, through the public API."""

from __future__ import annotations

import re
from typing import Any

import pytest

from trellis import App, ForbiddenError, HTTPError, Request, Response, Router
from trellis.exceptions import AppFrozenError, ConfigurationError
from trellis.routing.router import flatten
from trellis.testing import TestClient
from trellis.types import ASGIApp, Message, Receive, Scope, Send


class Tag:
    """Pure ASGI middleware: appends ``name`` to the ``x-trail`` response header."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for i, (key, value) in enumerate(headers):
                    if key == b"x-trail":
                        headers[i] = (key, value + b"," + self.name.encode())
                        break
                else:
                    headers.append((b"x-trail", self.name.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, tagged)


def tag(name: str) -> tuple[type[Tag], dict[str, Any]]:
    return (Tag, {"name": name})


class Recorder:
    """A raw ASGI app that answers with what it saw of the scope."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # no lifespan, as many raw apps: the App starts it and moves on
        self.scopes.append(scope)
        body = (
            f"root_path={scope.get('root_path', '')} path={scope['path']}"
            f" params={scope.get('path_params', {})}"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# -- routers: prefix, name, tags -------------------------------------------------------------------


def test_router_prefix_and_name_prefix() -> None:
    api = Router("/api", name="api")

    @api.get("/users/{id:int}")
    async def get_user(id: int) -> dict[str, int]:
        return {"id": id}

    @api.get("/")
    async def api_index() -> str:
        return "api index"

    app = App(debug=True)
    app.include(api)
    with TestClient(app) as client:
        assert client.get("/api/users/3").json() == {"id": 3}
        assert client.get("/api").text == "api index"  # "/" in a router is its prefix
        assert client.get("/api/").status_code == 308
        assert client.get("/users/3").status_code == 404
    assert app.url_for("api.get_user", id=3) == "/api/users/3"
    assert app.url_for("api.api_index") == "/api"


def test_router_prefix_with_a_parameter() -> None:
    org = Router("/orgs/{org:slug}", name="org")

    @org.get("/members/{member:int}")
    async def member(org: str, member: int) -> list[Any]:
        return [org, member]

    app = App(debug=True)
    app.include(org)
    with TestClient(app) as client:
        assert client.get("/orgs/acme/members/4").json() == ["acme", 4]
    assert app.url_for("org.member", org="acme", member=4) == "/orgs/acme/members/4"


@pytest.mark.parametrize("prefix", ["api", "/api/", "/"])
def test_bad_router_prefix(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="must start with '/' and not end with '/'"):
        Router(prefix)


def test_tags_are_stored_on_the_flattened_routes() -> None:
    outer = Router("/o", tags=["outer", "shared"])
    inner = Router("/i", tags=["inner", "shared"])

    @inner.get("/x", tags=["route", "inner"])
    async def x() -> str:
        return "x"

    @outer.get("/y")
    async def y() -> str:
        return "y"

    outer.include(inner)
    app = App(debug=True)
    app.include(outer)
    routes, _ = flatten(app)
    by_path = {r.path: r for r in routes}
    assert by_path["/o/i/x"].tags == ("outer", "shared", "inner", "route")
    assert by_path["/o/y"].tags == ("outer", "shared")
    assert inner.routes[0].tags == ("route", "inner")
    assert outer.tags == ("outer", "shared")


# -- routers: middleware ---------------------------------------------------------------------------


def test_router_middleware_applies_only_to_that_routers_routes() -> None:
    admin = Router("/admin", middleware=[tag("admin")])

    @admin.get("/panel")
    async def panel() -> str:
        return "panel"

    @admin.get("/special", middleware=[tag("route")])
    async def special() -> str:
        return "special"

    app = App(debug=True)

    @app.get("/public")
    async def public() -> str:
        return "public"

    app.include(admin)
    with TestClient(app) as client:
        assert client.get("/admin/panel").headers["x-trail"] == "admin"
        # the route's own middleware is inside the router's: it sees the response first
        assert client.get("/admin/special").headers["x-trail"] == "route,admin"
        assert "x-trail" not in client.get("/public").headers
        assert "x-trail" not in client.get("/admin/missing").headers  # 404: no route, no mw
        assert client.head("/admin/panel").headers["x-trail"] == "admin"


def test_nested_router_middleware_runs_outer_first() -> None:
    outer = Router("/o", middleware=[tag("outer")])
    inner = Router("/i", middleware=[tag("inner1"), tag("inner2")])

    @inner.get("/x")
    async def x() -> str:
        return "x"

    outer.include(inner)
    app = App(debug=True)
    app.include(outer)
    with TestClient(app) as client:
        # outermost first on the way in, so the header is appended innermost first
        assert client.get("/o/i/x").headers["x-trail"] == "inner2,inner1,outer"


def test_a_router_middleware_that_crashes_gives_a_500() -> None:
    class Broken:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            raise RuntimeError("middleware broke")

    r = Router("/r", middleware=[Broken])

    @r.get("/x")
    async def x() -> str:
        return "x"

    app = App(debug=True)
    app.include(r)
    with TestClient(app) as client:
        response = client.get("/r/x")
        assert response.status_code == 500
        assert "middleware broke" in response.json()["exception"]


# -- routers: dependencies -------------------------------------------------------------------------


def test_dependencies_run_before_the_handler_outer_first() -> None:
    calls: list[str] = []

    def outer_dep() -> None:
        calls.append("outer")

    async def router_dep(request: Request) -> None:
        calls.append(f"router {request.path}")

    def route_dep(request: Request) -> None:
        calls.append("route")

    r = Router("/r", dependencies=[router_dep])

    @r.get("/x", dependencies=[route_dep])
    async def x() -> str:
        calls.append("handler")
        return "x"

    outer = Router(dependencies=[outer_dep])
    outer.include(r)
    app = App(debug=True)
    app.include(outer)
    with TestClient(app) as client:
        assert client.get("/r/x").text == "x"
    assert calls == ["outer", "router /r/x", "route", "handler"]


@pytest.mark.parametrize("is_async", [True, False])
def test_a_dependency_raising_http_error_blocks_the_handler(is_async: bool) -> None:
    called: list[str] = []

    async def deny_async(request: Request) -> None:
        if request.headers.get("x-token") != "secret":
            raise ForbiddenError("token required", headers={"x-reason": "token"})

    def deny_sync(request: Request) -> None:
        if request.headers.get("x-token") != "secret":
            raise HTTPError(403, "token required", headers={"x-reason": "token"})

    private = Router("/private", dependencies=[deny_async if is_async else deny_sync])

    @private.get("/data")
    async def data() -> str:
        called.append("data")
        return "secret data"

    app = App(debug=True)
    app.include(private)
    with TestClient(app) as client:
        response = client.get("/private/data")
        assert response.status_code == 403
        assert response.headers["x-reason"] == "token"
        assert response.json()["detail"] == "token required"
        assert called == []
        assert client.get("/private/data", headers={"x-token": "secret"}).text == "secret data"
        assert called == ["data"]


# -- routers: hooks --------------------------------------------------------------------------------


def test_before_and_after_hooks_app_and_router_level_order() -> None:
    calls: list[str] = []
    app = App(debug=True)
    r = Router("/r")

    @app.before_request
    def app_before(request: Request) -> None:
        calls.append("app before")

    @app.after_request
    async def app_after(request: Request, response: Response) -> Response:
        calls.append("app after")
        response.headers["x-app"] = "1"
        return response

    @r.before_request
    async def router_before(request: Request) -> None:
        calls.append("router before")

    @r.after_request
    def router_after(request: Request, response: Response) -> None:
        calls.append("router after")
        response.headers["x-router"] = "1"

    @r.get("/x")
    async def x() -> str:
        calls.append("handler")
        return "x"

    @app.get("/top")
    async def top() -> str:
        calls.append("top")
        return "top"

    app.include(r)
    with TestClient(app) as client:
        response = client.get("/r/x")
        assert response.text == "x"
        assert response.headers["x-app"] == response.headers["x-router"] == "1"
        assert calls == ["app before", "router before", "handler", "router after", "app after"]
        calls.clear()
        response = client.get("/top")
        assert "x-router" not in response.headers and response.headers["x-app"] == "1"
        assert calls == ["app before", "top", "app after"]


def test_before_hook_returning_a_value_short_circuits() -> None:
    calls: list[str] = []
    r = Router("/cached")

    @r.before_request
    def from_cache(request: Request) -> Any:
        if "hit" in request.query:
            return {"from": "cache"}
        return None

    @r.before_request
    def second(request: Request) -> None:
        calls.append("second hook")

    @r.get("/item", dependencies=[lambda: calls.append("dependency")])
    async def item() -> dict[str, str]:
        calls.append("handler")
        return {"from": "handler"}

    @r.after_request
    def after(request: Request, response: Response) -> Response:
        return Response(response.body, 203, {"content-type": "application/json"})

    app = App(debug=True)
    app.include(r)
    with TestClient(app) as client:
        response = client.get("/cached/item?hit")
        assert response.status_code == 203  # after hooks still see the short-cut response
        assert response.json() == {"from": "cache"}
        assert calls == []
        assert client.get("/cached/item").json() == {"from": "handler"}
        assert calls == ["second hook", "dependency", "handler"]


def test_a_before_hook_can_refuse_with_http_error() -> None:
    r = Router("/admin")

    @r.before_request
    async def only_admins(request: Request) -> None:
        raise HTTPError(401, "log in", headers={"www-authenticate": "Bearer"})

    @r.get("/")
    async def admin() -> str:
        raise AssertionError("not reached")

    app = App(debug=True)
    app.include(r)
    with TestClient(app) as client:
        response = client.get("/admin")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


# -- routers: nesting and include ------------------------------------------------------------------


def test_nested_routers_concatenate_prefixes_names_and_hooks() -> None:
    calls: list[str] = []
    api = Router("/api", name="api")
    v1 = Router("/v1", name="v1")
    users = Router("/users", name="users")

    @api.before_request
    def api_hook(request: Request) -> None:
        calls.append("api")

    @users.before_request
    def users_hook(request: Request) -> None:
        calls.append("users")

    @users.get("/{id:int}")
    async def show(id: int) -> int:
        return id

    v1.include(users)
    api.include(v1)
    app = App(debug=True)
    app.include(api)
    with TestClient(app) as client:
        assert client.get("/api/v1/users/8").json() == 8
    assert calls == ["api", "users"]
    assert app.url_for("api.v1.users.show", id=8) == "/api/v1/users/8"


def test_include_with_an_extra_prefix_and_twice() -> None:
    items = Router("/items")

    @items.get("/{id:int}")
    async def item(request: Request, id: int) -> str:
        return f"{request.path} {id}"

    app = App(debug=True)
    app.include(items, prefix="/v1")
    app.include(items, prefix="/v2")
    with TestClient(app) as client:
        assert client.get("/v1/items/1").text == "/v1/items/1 1"
        assert client.get("/v2/items/2").text == "/v2/items/2 2"
        assert client.get("/items/1").status_code == 404
    # the same handler twice under one name: url_for takes the first
    assert app.url_for("item", id=1) == "/v1/items/1"


@pytest.mark.parametrize("prefix", ["v1", "/v1/"])
def test_bad_include_prefix(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="include prefix"):
        App(debug=True).include(Router(), prefix=prefix)


def test_include_refuses_itself_cycles_and_apps() -> None:
    a, b = Router("/a"), Router("/b")
    with pytest.raises(ConfigurationError, match="cannot include itself"):
        a.include(a)
    a.include(b)
    b.include(a)
    app = App(debug=True)
    app.include(a)
    with pytest.raises(ConfigurationError, match="cycle"):
        app.build()
    with pytest.raises(ConfigurationError, match=r"mount\(path, app\)"):
        App(debug=True).include(App(debug=True))
    with pytest.raises(ConfigurationError, match="takes a Router"):
        App(debug=True).include(object())  # type: ignore[arg-type]


def test_router_changes_after_the_app_is_built_are_refused() -> None:
    child = Router("/c")
    grandchild = Router("/g")
    child.include(grandchild)

    @grandchild.get("/x")
    async def x() -> str:
        return "x"

    app = App(debug=True)
    app.include(child)
    spare = Router("/spare")
    spare.get("/ok")(x)  # not part of a built app: still open
    with TestClient(app) as client:
        assert client.get("/c/g/x").text == "x"
    for router in (child, grandchild):
        with pytest.raises(AppFrozenError, match=re.escape("Router.get()")):
            router.get("/late")
        with pytest.raises(AppFrozenError, match=re.escape("Router.include()")):
            router.include(Router())
        with pytest.raises(AppFrozenError, match=re.escape("Router.before_request()")):
            router.before_request(lambda request: None)
    spare.get("/still-ok")(x)


# -- mounts ----------------------------------------------------------------------------------------


def test_mount_a_raw_asgi_app_sees_root_path_and_full_path() -> None:
    legacy = Recorder()
    app = App(debug=True)
    app.mount("/legacy", legacy)

    @app.get("/legacy-page")
    async def page() -> str:
        return "not the mount"

    with TestClient(app) as client:
        assert client.get("/legacy/x/y?q=1").text == (
            "root_path=/legacy path=/legacy/x/y params={}"
        )
        assert client.post("/legacy").text == "root_path=/legacy path=/legacy params={}"
        assert client.get("/legacy-page").text == "not the mount"
        assert client.get("/legacyx").status_code == 404
    assert legacy.scopes[0]["query_string"] == b"q=1"
    assert legacy.scopes[0]["method"] == "GET"
    assert legacy.scopes[1]["method"] == "POST"


def test_mount_under_a_root_path_and_inside_a_prefixed_router() -> None:
    legacy = Recorder()
    api = Router("/api")
    api.mount("/old", legacy, name="old")
    app = App(debug=True)
    app.include(api)
    with TestClient(app, root_path="/site") as client:
        assert client.get("/api/old/a").text == (
            "root_path=/site/api/old path=/site/api/old/a params={}"
        )
    assert app.url_for("old", path="a b") == "/api/old/a%20b"


def test_routes_win_over_a_mount_at_the_same_prefix_and_longest_mount_wins() -> None:
    outer, inner = Recorder(), Recorder()
    app = App(debug=True)
    app.mount("/m", outer)
    app.mount("/m/deep", inner)

    @app.get("/m/route")
    async def route() -> str:
        return "route"

    with TestClient(app) as client:
        assert client.get("/m/route").text == "route"
        assert client.get("/m/other").text.startswith("root_path=/m ")
        assert client.get("/m/deep/x").text.startswith("root_path=/m/deep ")


def test_mount_a_trellis_app() -> None:
    sub = App(debug=True)

    @sub.get("/hello/{name}")
    async def hello(request: Request, name: str) -> dict[str, str]:
        return {"hello": name, "root": request.scope["root_path"], "path": request.path}

    app = App(debug=True)
    app.mount("/sub", sub)
    with TestClient(app) as client:
        assert client.get("/sub/hello/bob").json() == {
            "hello": "bob",
            "root": "/sub",
            "path": "/sub/hello/bob",
        }
        assert client.get("/sub/nope").status_code == 404
        assert client.get("/sub/hello/bob/").headers["location"] == "/sub/hello/bob"


@pytest.mark.parametrize("path", ["legacy", "/legacy/"])
def test_bad_mount_path(path: str) -> None:
    with pytest.raises(ConfigurationError, match="mount path"):
        App(debug=True).mount(path, Recorder())


def test_mount_needs_an_asgi_app() -> None:
    with pytest.raises(ConfigurationError, match="not an ASGI application"):
        App(debug=True).mount("/x", "nope")  # type: ignore[arg-type]


# -- host routing ----------------------------------------------------------------------------------


def _host_app() -> App:
    app = App(debug=True)
    tenants = Router(host="{tenant}.example.com", name="tenant")

    @tenants.get("/")
    async def home(tenant: str) -> str:
        return f"home of {tenant}"

    @tenants.get("/items/{id:int}")
    async def item(request: Request, tenant: str, id: int) -> dict[str, Any]:
        return {"tenant": tenant, "id": id, "params": request.path_params}

    @tenants.get("/shared")
    async def shared_tenant(tenant: str) -> str:
        return f"tenant shared {tenant}"

    @app.get("/shared")
    async def shared() -> str:
        return "main shared"

    @app.get("/only-main")
    async def only_main() -> str:
        return "only main"

    app.include(tenants)
    return app


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("acme.example.com", "/", "home of acme"),
        ("ACME.Example.COM", "/", "home of acme"),
        ("acme.example.com:8443", "/", "home of acme"),
        ("acme.example.com", "/shared", "tenant shared acme"),
        ("example.com", "/shared", "main shared"),
        ("a.b.example.com", "/shared", "main shared"),
        ("acme.example.com", "/only-main", "only main"),
        ("acme.example.org", "/shared", "main shared"),
    ],
)
def test_host_routing(host: str, path: str, expected: str) -> None:
    with TestClient(_host_app()) as client:
        response = client.get(path, headers={"host": host})
        assert response.status_code == 200
        assert response.text == expected


def test_host_parameters_join_the_path_parameters() -> None:
    with TestClient(_host_app()) as client:
        response = client.get("/items/5", headers={"host": "shop.example.com"})
        assert response.json() == {
            "tenant": "shop",
            "id": 5,
            "params": {"id": 5, "tenant": "shop"},
        }
        assert client.get("/items/5", headers={"host": "example.com"}).status_code == 404
        assert client.get("/", headers={"host": "example.com"}).status_code == 404


def test_host_with_a_converter_and_a_mount() -> None:
    recorder = Recorder()
    shard = Router(host="db{n:int}.internal")
    shard.mount("/raw", recorder)

    @shard.get("/n")
    async def number(n: int) -> dict[str, Any]:
        return {"n": n, "type": type(n).__name__}

    app = App(debug=True)
    app.include(shard)
    with TestClient(app) as client:
        assert client.get("/n", headers={"host": "db12.internal"}).json() == {
            "n": 12,
            "type": "int",
        }
        assert client.get("/n", headers={"host": "dbx.internal"}).status_code == 404
        assert client.get("/raw/q", headers={"host": "db3.internal"}).text == (
            "root_path=/raw path=/raw/q params={'n': 3}"
        )


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("{t:nope}.example.com", "unknown path converter 'nope'"),
        ("{1t}.example.com", "bad name"),
        ("{t}.{t}.example.com", "twice"),
        ("{t.example.com", "unbalanced brace"),
    ],
)
def test_bad_host_patterns_fail_the_build(host: str, message: str) -> None:
    r = Router(host=host)
    r.get("/")(lambda: "x")
    app = App(debug=True)
    app.include(r)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        app.build()


def test_nested_routers_with_different_hosts_are_refused() -> None:
    outer = Router(host="a.example.com")
    inner = Router(host="b.example.com")
    inner.get("/")(lambda: "x")
    outer.include(inner)
    app = App(debug=True)
    app.include(outer)
    with pytest.raises(ConfigurationError, match="inside a router with host"):
        app.build()


def test_trailing_slash_redirect_for_host_routes() -> None:
    tenants = Router(host="{tenant}.example.com")
    tenants.get("/dashboard")(lambda tenant: tenant)
    app = App(debug=True)
    app.include(tenants)
    with TestClient(app) as client:
        response = client.get("/dashboard/", headers={"host": "acme.example.com"})
        assert response.status_code == 308
        assert response.headers["location"] == "/dashboard"


def test_a_host_parameter_named_like_a_path_parameter_fails_the_build() -> None:
    shards = Router(host="{id}.example.com")
    shards.get("/items/{id:int}")(lambda id: id)
    app = App(debug=True)
    app.include(shards)
    with pytest.raises(ConfigurationError, match="'id'"):
        app.build()
