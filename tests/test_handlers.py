"""Handlers: where they run (sync in the thread pool, async on the loop), how their return
values become responses, and the signature mistakes reported at start-up."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import functools
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from trellis import App, HTMLResponse, JSONResponse, Request, Response, Router
from trellis.exceptions import ConfigurationError
from trellis.testing import LifespanError, TestClient
from trellis.types import ASGIApp, Receive, Scope, Send

# -- where handlers run ----------------------------------------------------------------------------


def test_sync_handlers_run_in_a_worker_thread_and_async_ones_on_the_loop() -> None:
    seen: dict[str, threading.Thread] = {}
    app = App(debug=True)

    @app.get("/async")
    async def on_loop() -> str:
        seen["async"] = threading.current_thread()
        asyncio.get_running_loop()  # there is a running loop here
        return "async"

    @app.get("/sync/{n:int}")
    def in_thread(n: int) -> str:
        seen["sync"] = threading.current_thread()
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()  # no loop in a worker thread: blocking is fine here
        return f"sync {n}"

    with TestClient(app) as client:
        assert client.get("/async").text == "async"
        assert client.get("/sync/1").text == "sync 1"
    assert seen["sync"] is not seen["async"]
    assert seen["sync"].name.startswith("trellis-worker")
    assert seen["sync"] is not threading.main_thread()


def test_sync_hooks_and_dependencies_run_in_the_thread_pool_too() -> None:
    threads: dict[str, str] = {}
    r = Router(dependencies=[lambda: threads.__setitem__("dep", threading.current_thread().name)])

    @r.before_request
    def before(request: Request) -> None:
        threads["before"] = threading.current_thread().name

    @r.after_request
    async def after(request: Request, response: Response) -> None:
        threads["after (async)"] = threading.current_thread().name

    @r.get("/")
    async def index() -> str:
        threads["handler (async)"] = threading.current_thread().name
        return "x"

    app = App(debug=True)
    app.include(r)
    with TestClient(app) as client:
        client.get("/")
    assert threads["dep"].startswith("trellis-worker")
    assert threads["before"].startswith("trellis-worker")
    assert not threads["after (async)"].startswith("trellis-worker")
    assert threads["after (async)"] == threads["handler (async)"]


request_user: contextvars.ContextVar[str] = contextvars.ContextVar("request_user", default="-")


class SetUser:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = request_user.set("alice")
        try:
            await self.app(scope, receive, send)
        finally:
            request_user.reset(token)


def test_context_variables_reach_sync_handlers() -> None:
    app = App(debug=True)
    app.add_middleware(SetUser)
    app.get("/")(lambda: request_user.get())
    with TestClient(app) as client:
        assert client.get("/").text == "alice"


def test_sync_handlers_do_not_block_each_other() -> None:
    barrier = threading.Barrier(2, timeout=5)
    app = App(debug=True)

    @app.get("/wait")
    def wait() -> str:
        barrier.wait()  # both requests must be inside a handler at once
        return "done"

    @app.get("/both")
    async def both(request: Request) -> list[str]:
        from trellis.testing import AsyncTestClient

        async with AsyncTestClient(request.app) as inner:
            responses = await asyncio.gather(inner.get("/wait"), inner.get("/wait"))
        return [r.text for r in responses]

    with TestClient(app) as client:
        assert client.get("/both").json() == ["done", "done"]


# -- return values ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: int
    when: date


class Color(enum.Enum):
    RED = "red"


class User(BaseModel):
    id: int
    name: str
    joined: datetime


class Markup(str):
    """What Jinja2's ``Markup`` looks like to Trellis: a str with ``__html__``."""

    def __html__(self) -> str:
        return str(self)


UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
WHEN = datetime(2024, 5, 17, 12, 30, tzinfo=UTC)


@dataclasses.dataclass
class Case:
    value: Any
    status: int
    content_type: str | None
    body: bytes


CASES: dict[str, Case] = {
    "dict": Case({"a": 1, "b": [True, None]}, 200, "application/json", b'{"a":1,"b":[true,null]}'),
    "list": Case([1, "two"], 200, "application/json", b'[1,"two"]'),
    "tuple": Case((1, 2), 200, "application/json", b"[1,2]"),
    "int": Case(42, 200, "application/json", b"42"),
    "bool": Case(False, 200, "application/json", b"false"),
    "str": Case("héllo", 200, "text/plain; charset=utf-8", "héllo".encode()),
    "empty str": Case("", 200, "text/plain; charset=utf-8", b""),
    "markup": Case(Markup("<b>hi</b>"), 200, "text/html; charset=utf-8", b"<b>hi</b>"),
    "bytes": Case(b"\x00\x01", 200, "application/octet-stream", b"\x00\x01"),
    "bytearray": Case(bytearray(b"ab"), 200, "application/octet-stream", b"ab"),
    "none": Case(None, 204, None, b""),
    "response": Case(
        Response("<p>x</p>", 202, {"x-own": "1"}, media_type="text/html"),
        202,
        "text/html; charset=utf-8",
        b"<p>x</p>",
    ),
    "pydantic": Case(
        User(id=1, name="Ann", joined=WHEN),
        200,
        "application/json",
        b'{"id":1,"name":"Ann","joined":"2024-05-17T12:30:00Z"}',
    ),
    "dataclass": Case(
        Point(1, 2, date(2024, 1, 2)), 200, "application/json", b'{"x":1,"y":2,"when":"2024-01-02"}'
    ),
    "datetime uuid decimal enum": Case(
        {"at": WHEN, "id": UID, "price": Decimal("19.990"), "color": Color.RED},
        200,
        "application/json",
        b'{"at":"2024-05-17T12:30:00+00:00","id":"12345678-1234-5678-1234-567812345678",'
        b'"price":"19.990","color":"red"}',
    ),
    "models in a list": Case(
        [User(id=2, name="Bo", joined=WHEN)],
        200,
        "application/json",
        b'[{"id":2,"name":"Bo","joined":"2024-05-17T12:30:00Z"}]',
    ),
}


def _handler(value: Any, is_async: bool, with_request: bool) -> Callable[..., Any]:
    async def async_plain() -> Any:
        return value

    async def async_request(request: Request) -> Any:
        return value

    def sync_plain() -> Any:
        return value

    def sync_request(request: Request) -> Any:
        return value

    if is_async:
        return async_request if with_request else async_plain
    return sync_request if with_request else sync_plain


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_return_value_coercion(case: str) -> None:
    expected = CASES[case]
    app = App(debug=True)
    urls = []
    for is_async in (True, False):
        for with_request in (True, False):
            url = f"/{'async' if is_async else 'sync'}/{'request' if with_request else 'plain'}"
            app.add_route(url, _handler(expected.value, is_async, with_request), name=url)
            urls.append(url)
    with TestClient(app) as client:
        for url in urls:
            response = client.get(url)
            assert response.status_code == expected.status, url
            assert response.headers.get("content-type") == expected.content_type, url
            assert response.content == expected.body, url
            if expected.status != 204:
                assert response.headers["content-length"] == str(len(expected.body)), url


@pytest.mark.parametrize("is_async", [True, False], ids=["async", "sync"])
@pytest.mark.parametrize(
    ("value", "status", "body"),
    [
        ({"created": True}, 201, b'{"created":true}'),
        ("created", 201, b"created"),
        (b"raw", 201, b"raw"),
        (None, 201, b""),
    ],
)
def test_status_code_route_option(value: Any, status: int, body: bytes, is_async: bool) -> None:
    app = App(debug=True)
    app.add_route("/", _handler(value, is_async, False), ["POST"], status_code=status)
    app.add_route("/r", _handler(value, is_async, True), ["POST"], status_code=status, name="r")
    with TestClient(app) as client:
        for url in ("/", "/r"):
            response = client.post(url)
            assert (response.status_code, response.content) == (status, body)


def test_status_code_option_does_not_change_a_returned_response() -> None:
    app = App(debug=True)
    app.post("/", status_code=201, name="json")(lambda: JSONResponse({"ok": 1}, 200))
    app.post("/html", status_code=201, name="html")(lambda: HTMLResponse("<p>", 418))
    with TestClient(app) as client:
        assert client.post("/").status_code == 200
        assert client.post("/html").status_code == 418


def test_a_value_that_is_not_json_is_a_500() -> None:
    app = App(debug=True)
    app.get("/")(lambda: {"obj": object()})
    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert "not JSON serializable" in response.json()["exception"]


# -- parameters ------------------------------------------------------------------------------------


class MyRequest(Request):
    pass


def test_handler_parameters_from_the_path_and_the_request() -> None:
    app = App(debug=True)

    @app.get("/a/{x:int}/{y}")
    async def both(y: str, x: int) -> list[Any]:  # any order, by name
        return [x, y]

    @app.get("/b/{x:int}")
    def with_request(request, x: int, unused: str = "default") -> list[Any]:  # type: ignore[no-untyped-def]
        return [x, request.path_params, request.method, unused]

    @app.get("/c/{x}")
    async def annotated(req: MyRequest, *args: Any, x: str, **kwargs: Any) -> list[Any]:
        return [x, type(req).__name__, args, kwargs]

    @app.get("/d")
    @app.get("/d/{page:int}", name="d_page")
    async def optional(page: int = 1) -> int:
        return page

    with TestClient(app) as client:
        assert client.get("/a/1/two").json() == [1, "two"]
        assert client.get("/b/5").json() == [5, {"x": 5}, "GET", "default"]
        # the handler is given a Request; annotating a subclass does not build one
        assert client.get("/c/q").json() == ["q", "Request", [], {}]
        assert client.get("/d").json() == 1
        assert client.get("/d/4").json() == 4


def test_a_parameter_not_in_the_path_is_a_required_query_parameter() -> None:
    app = App(debug=True)

    @app.get("/users/{id:int}")
    async def show_user(id: int, verbose: bool) -> dict[str, object]:
        return {"id": id, "verbose": verbose}

    with TestClient(app) as client:
        assert client.get("/users/3?verbose=yes").json() == {"id": 3, "verbose": True}
        missing = client.get("/users/3")
    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {"loc": ["query", "verbose"], "msg": "Field required", "type": "missing"}
    ]


class Opaque:
    """A type Trellis has no way to read from a request."""


def test_an_annotation_that_cannot_be_validated_fails_start_up() -> None:
    app = App(debug=True)

    @app.get("/things")
    async def things(thing: Opaque) -> None:
        return None

    with pytest.raises(ConfigurationError) as info:
        app.build()
    message = str(info.value)
    assert "things" in message
    assert "'thing'" in message


def test_signature_errors_surface_at_start_up_not_at_the_first_request() -> None:
    app = App(debug=True)

    def index(missing: Opaque) -> None:
        return None

    app.get("/")(index)
    with pytest.raises(LifespanError, match="parameter 'missing'"), TestClient(app):
        pass


def test_an_unresolvable_annotation_fails_start_up_naming_the_handler() -> None:
    app = App(debug=True)

    def broken(item: NoSuchType) -> str:  # type: ignore[name-defined]  # noqa: F821
        return ""

    app.add_route("/items/{item}", broken)
    with pytest.raises(ConfigurationError) as info:
        app.build()
    message = str(info.value)
    assert "test_handlers" in message and "broken" in message
    assert "NoSuchType" in message
    assert "cannot resolve its type annotations" in message


def test_router_handlers_are_checked_too() -> None:
    r = Router("/r")

    def nope_handler(nope: Opaque) -> None:
        return None

    r.get("/x")(nope_handler)
    app = App(debug=True)
    app.include(r)
    with pytest.raises(ConfigurationError, match="'nope'"):
        app.build()


def greet(greeting: str, name: str) -> str:
    return f"{greeting}, {name}"


class Greeter:
    def __call__(self, name: str) -> str:
        return f"hi {name}"


class AsyncGreeter:
    async def __call__(self, name: str) -> str:
        return f"async hi {name}"


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (functools.partial(greet, "hello"), "hello, bob"),
        (Greeter(), "hi bob"),
        (AsyncGreeter(), "async hi bob"),
    ],
    ids=["partial", "callable object", "async callable object"],
)
def test_partials_and_callable_objects_as_handlers(handler: Any, expected: str) -> None:
    app = App(debug=True)
    app.add_route("/greet/{name}", handler)
    with TestClient(app) as client:
        assert client.get("/greet/bob").text == expected
