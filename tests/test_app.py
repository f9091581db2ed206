"""The application: build and freeze, lifespan, state, hooks, exception handlers, plugins and
the middleware chain."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from trellis import App, HTMLResponse, HTTPError, NotFoundError, Request, Response, Router
from trellis.exceptions import AppFrozenError, ConfigurationError, RouteConflictError
from trellis.middleware import Middleware
from trellis.testing import AsyncTestClient, LifespanError, TestClient
from trellis.types import ASGIApp, Message, Receive, Scope, Send

SECRET = "s" * 40


# -- build and freeze ------------------------------------------------------------------------------


def test_build_is_idempotent_and_describes_routes() -> None:
    app = App(debug=True)

    @app.get("/a/{id:int}", name="a")
    async def a(id: int) -> int:
        return id

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError

    app.mount("/m", asgi, name="m")
    app.build()
    app.build()
    rows = app.describe_routes()
    assert {"method": "GET", "path": "/a/{id:int}", "name": "a", "host": None}.items() <= rows[
        0
    ].items()
    assert rows[0]["handler"].endswith("a")
    assert rows[-1]["path"] == "/m/..." and rows[-1]["method"] == "*"


async def _asgi_noop(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError


class _Plugin:
    def setup(self, app: App) -> None:
        pass


def _noop(*args: Any) -> None:
    return None


REGISTRATIONS: list[tuple[str, Callable[[App], Any]]] = [
    ("get", lambda app: app.get("/late")),
    ("post", lambda app: app.post("/late")),
    ("put", lambda app: app.put("/late")),
    ("patch", lambda app: app.patch("/late")),
    ("delete", lambda app: app.delete("/late")),
    ("options", lambda app: app.options("/late")),
    ("route", lambda app: app.route("/late", methods=["GET"])),
    ("add_route", lambda app: app.add_route("/late", _noop)),
    ("include", lambda app: app.include(Router("/late"))),
    ("mount", lambda app: app.mount("/late", _asgi_noop)),
    ("before_request", lambda app: app.before_request(_noop)),
    ("after_request", lambda app: app.after_request(_noop)),
    ("add_middleware", lambda app: app.add_middleware(_Passthrough)),
    ("exception_handler", lambda app: app.exception_handler(404)),
    ("on_startup", lambda app: app.on_startup(_noop)),
    ("on_shutdown", lambda app: app.on_shutdown(_noop)),
    ("install", lambda app: app.install(_Plugin())),
]


@pytest.mark.parametrize(("method", "register"), REGISTRATIONS, ids=[m for m, _ in REGISTRATIONS])
def test_registering_after_build_raises_app_frozen_error_naming_the_method(
    method: str, register: Callable[[App], Any]
) -> None:
    app = App(debug=True)
    app.get("/")(_noop)
    app.build()
    with pytest.raises(AppFrozenError, match=re.escape(f"App.{method}()")) as info:
        register(app)
    assert "before the first request" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_the_first_request_builds_and_freezes_the_app() -> None:
    app = App(debug=True)
    app.get("/")(lambda: "hi")
    client = TestClient(app)  # no lifespan: the first request builds
    try:
        assert client.get("/").text == "hi"
    finally:
        client.close()
    with pytest.raises(AppFrozenError):
        app.get("/more")


def test_build_errors_stop_start_up() -> None:
    app = App(debug=True)
    app.get("/x")(lambda: "a")
    app.add_route("/x", lambda: "b", name="other")
    with pytest.raises(LifespanError, match="RouteConflictError"), TestClient(app):
        pass
    client = TestClient(app)
    try:
        with pytest.raises(RouteConflictError):
            client.get("/x")  # without a lifespan the first request reports it
    finally:
        client.close()


def test_production_start_up_needs_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRELLIS_SECRET_KEY", raising=False)
    monkeypatch.delenv("TRELLIS_DEBUG", raising=False)
    app = App(debug=False)
    app.get("/")(lambda: "x")
    with pytest.raises(LifespanError, match="secret"), TestClient(app):
        pass
    ok = App(debug=False, secret_key=SECRET)
    ok.get("/")(lambda: "x")
    with TestClient(ok) as client:
        assert client.get("/").text == "x"
    assert ok.debug is False


# -- lifespan --------------------------------------------------------------------------------------


def test_startup_and_shutdown_hooks_and_lifespan_order() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append("lifespan enter")
        yield {"db": "connection"}
        events.append("lifespan exit")

    app = App(debug=True, lifespan=lifespan)

    @app.on_startup
    def first() -> None:
        events.append("startup 1 (sync)")

    @app.on_startup
    async def second() -> None:
        events.append("startup 2 (async)")

    @app.on_shutdown
    async def stop_first() -> None:
        events.append("shutdown 1 (async)")

    @app.on_shutdown
    def stop_second() -> None:
        events.append("shutdown 2 (sync)")

    @app.get("/")
    async def index(request: Request) -> dict[str, Any]:
        events.append("request")
        return {"app": request.app.state.db, "request": request.state.db}

    with TestClient(app) as client:
        assert events == ["startup 1 (sync)", "startup 2 (async)", "lifespan enter"]
        assert app.state.db == "connection"
        assert client.get("/").json() == {"app": "connection", "request": "connection"}
    assert events == [
        "startup 1 (sync)",
        "startup 2 (async)",
        "lifespan enter",
        "request",
        "lifespan exit",
        "shutdown 1 (async)",
        "shutdown 2 (sync)",
    ]


def test_lifespan_yielding_nothing() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        app.state.ready = True
        yield

    app = App(debug=True, lifespan=lifespan)
    app.get("/")(lambda request: request.app.state.ready)
    with TestClient(app) as client:
        assert client.get("/").json() is True


def test_startup_hook_error_raises_lifespan_error_with_the_message() -> None:
    entered: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        entered.append("lifespan")
        yield

    app = App(debug=True, lifespan=lifespan)

    @app.on_startup
    def connect() -> None:
        raise RuntimeError("database unreachable")

    with pytest.raises(LifespanError) as info, TestClient(app):
        pass
    assert str(info.value) == "Trellis could not start: RuntimeError: database unreachable"
    assert entered == []


def test_lifespan_enter_error_raises_lifespan_error() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        if not getattr(app.state, "configured", False):
            raise ValueError("bad config")
        yield

    app = App(debug=True, lifespan=lifespan)
    with pytest.raises(LifespanError, match="ValueError: bad config"), TestClient(app):
        pass


def test_shutdown_errors_are_reported_after_every_hook_ran() -> None:
    ran: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        ran.append("lifespan exit")
        raise RuntimeError("close failed")

    app = App(debug=True, lifespan=lifespan)

    @app.on_shutdown
    def a() -> None:
        ran.append("a")
        raise RuntimeError("a failed")

    @app.on_shutdown
    def b() -> None:
        ran.append("b")

    expected = "shut down with an error: RuntimeError: close failed"
    with pytest.raises(LifespanError, match=expected), TestClient(app):
        pass
    assert ran == ["lifespan exit", "a", "b"]


@pytest.mark.anyio
async def test_async_test_client_runs_the_lifespan() -> None:
    events: list[str] = []
    app = App(debug=True)
    app.on_startup(lambda: events.append("up"))
    app.on_shutdown(lambda: events.append("down"))

    @app.get("/")
    async def index() -> list[str]:
        return events

    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).json() == ["up"]
    assert events == ["up", "down"]


def test_the_app_serves_again_after_a_second_start_up() -> None:
    app = App(debug=True)

    @app.get("/")
    def index() -> str:
        return "sync"

    for _ in range(2):
        with TestClient(app) as client:
            assert client.get("/").text == "sync"


def test_app_state_is_shared_and_copied_into_each_request() -> None:
    app = App(debug=True)
    app.state.counter = 0

    @app.on_startup
    def setup() -> None:
        app.state.greeting = "hello"

    @app.get("/")
    async def index(request: Request) -> dict[str, Any]:
        request.state.mine = "only this request"
        return {"greeting": request.state.greeting, "counter": request.app.state.counter}

    with TestClient(app) as client:
        assert client.get("/").json() == {"greeting": "hello", "counter": 0}
    assert not hasattr(app.state, "mine")


# -- exception handlers ----------------------------------------------------------------------------


class AppError(Exception):
    pass


class PaymentError(AppError):
    pass


def test_exception_handler_by_class_matches_subclasses_most_specific_first() -> None:
    app = App(debug=True)

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        return Response(f"app error: {exc}", 400)

    @app.exception_handler(LookupError)
    def lookup(request: Request, exc: LookupError) -> Response:
        return Response(f"lookup: {type(exc).__name__}", 409)

    @app.exception_handler(KeyError)
    def key(request: Request, exc: KeyError) -> Response:
        return Response("key", 410)

    @app.get("/pay")
    async def pay() -> None:
        raise PaymentError("card declined")

    @app.get("/index")
    def index() -> None:
        raise IndexError

    @app.get("/key")
    def key_route() -> None:
        raise KeyError("k")

    with TestClient(app) as client:
        response = client.get("/pay")
        assert (response.status_code, response.text) == (400, "app error: card declined")
        assert (client.get("/index").status_code, client.get("/index").text) == (
            409,
            "lookup: IndexError",
        )
        assert client.get("/key").status_code == 410


def test_exception_handler_by_status_for_unknown_routes_and_raised_errors() -> None:
    app = App(debug=True)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: HTTPError) -> HTMLResponse:
        return HTMLResponse(f"<h1>Nothing at {request.path}</h1><p>{exc.detail}</p>", 404)

    @app.exception_handler(405)
    def not_allowed(request: Request, exc: HTTPError) -> dict[str, Any]:
        return {"allowed": exc.headers}  # a plain value keeps the error's status

    @app.get("/users/{id:int}")
    async def user(id: int) -> None:
        raise NotFoundError(f"no user {id}")

    with TestClient(app) as client:
        response = client.get("/nowhere")
        assert response.status_code == 404
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.text == "<h1>Nothing at /nowhere</h1><p>None</p>"
        assert client.get("/users/3").text == "<h1>Nothing at /users/3</h1><p>no user 3</p>"
        response = client.post("/users/3")
        assert response.status_code == 405
        assert response.json() == {"allowed": [["allow", "GET, HEAD, OPTIONS"]]}


def test_exception_handler_for_http_error_class_catches_every_status() -> None:
    app = App(debug=True)

    @app.exception_handler(HTTPError)
    def any_http(request: Request, exc: HTTPError) -> str:
        return f"{exc.status} handled"

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPError(418)

    with TestClient(app) as client:
        assert (client.get("/teapot").status_code, client.get("/teapot").text) == (
            418,
            "418 handled",
        )
        assert client.get("/missing").text == "404 handled"


def test_status_handler_wins_over_a_catch_all_exception_handler() -> None:
    app = App(debug=True)

    @app.exception_handler(Exception)
    def crash(request: Request, exc: Exception) -> Response:
        return Response("crash page", 500)

    @app.exception_handler(404)
    def not_found(request: Request, exc: HTTPError) -> Response:
        return Response("404 page", 404)

    with TestClient(app) as client:
        assert client.get("/missing").text == "404 page"


def test_an_exception_handler_that_raises_gives_a_500_and_logs_both(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(debug=True)

    @app.exception_handler(AppError)
    def broken(request: Request, exc: AppError) -> Response:
        raise RuntimeError("handler broke too")

    @app.get("/")
    async def index() -> None:
        raise AppError("original")

    with caplog.at_level(logging.ERROR, logger="trellis.error"), TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert response.json()["exception"] == "RuntimeError: handler broke too"
    assert "AppError: original" in "\n".join(response.json()["traceback"])
    assert any(r.name == "trellis.error" for r in caplog.records)


def test_an_exception_handler_may_raise_an_http_error() -> None:
    app = App(debug=True)

    @app.exception_handler(PermissionError)
    def forbid(request: Request, exc: PermissionError) -> None:
        raise HTTPError(403, "not yours")

    @app.get("/")
    async def index() -> None:
        raise PermissionError

    with TestClient(app) as client:
        response = client.get("/")
        assert response.status_code == 403
        assert response.json()["detail"] == "not yours"


def test_exception_handler_sees_errors_from_app_middleware() -> None:
    class Exploding:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            raise AppError("from middleware")

    app = App(debug=True)
    app.add_middleware(Exploding)
    app.exception_handler(AppError)(lambda request, exc: Response(str(exc), 503))
    app.get("/")(lambda: "x")
    with TestClient(app) as client:
        response = client.get("/")
        assert (response.status_code, response.text) == (503, "from middleware")


# -- plugins ---------------------------------------------------------------------------------------


class HealthPlugin:
    """A plugin adds routes, middleware, hooks and handlers in ``setup``."""

    def __init__(self, path: str = "/health") -> None:
        self.path = path
        self.setups = 0
        self.started = False

    def setup(self, app: App) -> None:
        self.setups += 1
        app.get(self.path, name="health")(self.health)
        app.add_middleware(_Header, name="x-plugin", value="health")
        app.on_startup(self.start)

    def start(self) -> None:
        self.started = True

    async def health(self) -> dict[str, bool]:
        return {"ok": self.started}


def test_install_a_plugin() -> None:
    app = App(debug=True)
    plugin = app.install(HealthPlugin("/healthz"))
    assert isinstance(plugin, HealthPlugin)
    assert plugin.setups == 1
    assert app.plugins == (plugin,)
    with TestClient(app) as client:
        response = client.get("/healthz")
        assert response.json() == {"ok": True}
        assert response.headers["x-plugin"] == "health"
    assert app.url_for("health") == "/healthz"


def test_install_refuses_objects_without_setup() -> None:
    app = App(debug=True)
    with pytest.raises(ConfigurationError, match="has no setup"):
        app.install(object())

    class NotCallable:
        setup = "nope"

    with pytest.raises(ConfigurationError, match="not a plugin"):
        app.install(NotCallable())
    assert app.plugins == ()


# -- middleware ------------------------------------------------------------------------------------


class _Passthrough:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class _Header:
    def __init__(self, app: ASGIApp, *, name: str, value: str) -> None:
        self.app = app
        self.name = name.encode()
        self.value = value.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (self.name, self.value)]}
            await send(message)

        await self.app(scope, receive, with_header)


class _Trace:
    """Records when it is entered and left, in a list shared through ``log``."""

    def __init__(self, app: ASGIApp, *, label: str, log: list[str]) -> None:
        self.app = app
        self.label = label
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.log.append(f"{self.label} in")
        await self.app(scope, receive, send)
        self.log.append(f"{self.label} out")


def test_add_middleware_last_added_is_outermost() -> None:
    log: list[str] = []
    app = App(debug=True)
    app.add_middleware(_Trace, label="first", log=log)
    app.add_middleware(_Trace, label="second", log=log)

    @app.get("/")
    async def index() -> str:
        log.append("handler")
        return "x"

    with TestClient(app) as client:
        client.get("/")
    assert log == ["second in", "first in", "handler", "first out", "second out"]


def test_constructor_middleware_is_outermost_first_and_inside_added_middleware() -> None:
    log: list[str] = []
    app = App(
        debug=True,
        middleware=[
            (_Trace, {"label": "ctor outer", "log": log}),
            Middleware(_Trace, label="ctor inner", log=log),
        ],
    )
    app.add_middleware(_Trace, label="added", log=log)
    app.get("/")(lambda: log.append("handler"))
    with TestClient(app) as client:
        client.get("/")
    assert log == [
        "added in",
        "ctor outer in",
        "ctor inner in",
        "handler",
        "ctor inner out",
        "ctor outer out",
        "added out",
    ]


def test_app_middleware_wraps_route_middleware_hooks_and_errors() -> None:
    log: list[str] = []
    app = App(debug=True)
    app.add_middleware(_Trace, label="app", log=log)
    app.before_request(lambda request: log.append("before"))

    @app.get("/", middleware=[(_Trace, {"label": "route", "log": log})])
    async def index() -> str:
        log.append("handler")
        return "x"

    with TestClient(app) as client:
        client.get("/")
        assert log == ["app in", "route in", "before", "handler", "route out", "app out"]
        log.clear()
        assert client.get("/missing").status_code == 404
        assert log == ["app in", "app out"]


def test_middleware_can_answer_on_its_own() -> None:
    class Maintenance:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await Response("down for maintenance", 503)(scope, receive, send)

    app = App(debug=True)
    app.add_middleware(Maintenance)
    app.get("/")(lambda: "never")
    with TestClient(app) as client:
        response = client.get("/")
        assert (response.status_code, response.text) == (503, "down for maintenance")


def test_a_crashing_app_middleware_gives_a_500() -> None:
    class Broken:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            raise RuntimeError("broken middleware")

    app = App(secret_key=SECRET)
    app.add_middleware(Broken)
    app.get("/")(lambda: "x")
    with TestClient(app) as client:
        response = client.get("/")
        assert response.status_code == 500
        assert "broken middleware" not in response.text


def test_middleware_that_is_not_middleware_fails_the_build() -> None:
    app = App(debug=True, middleware=[42])
    with pytest.raises(ConfigurationError, match="is not middleware"):
        app.build()
