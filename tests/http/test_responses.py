"""Responses: plain, text, HTML, JSON, redirect and streaming, sent through an App."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from markupsafe import Markup
from pydantic import BaseModel

from trellis import (
    URL,
    App,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
)
from trellis.testing import TestClient
from trellis.types import Message, Scope


def make_app() -> App:
    return App(debug=True)


def serve(make: Callable[[], Any], path: str = "/", **client_options: Any) -> httpx.Response:
    """GET ``path`` from an app whose handler returns ``make()``."""
    app = make_app()

    @app.get("/{rest:path}")
    async def handler() -> Any:
        return make()

    with TestClient(app, **client_options) as client:
        return client.get(path)


# --- Response -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "body"),
    [
        (b"\x89PNG\x00", b"\x89PNG\x00"),
        ("héllo ☃", "héllo ☃".encode()),
        (None, b""),
        (bytearray(b"ab"), b"ab"),
        (memoryview(b"cd"), b"cd"),
    ],
)
def test_response_content(content: Any, body: bytes) -> None:
    response = serve(lambda: Response(content))
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-length"] == str(len(body))
    assert "content-type" not in response.headers


@pytest.mark.parametrize("content", [5, 1.5, ["a"], {"a": 1}, object()])
def test_response_refuses_content_that_is_not_bytes_or_text(content: Any) -> None:
    with pytest.raises(TypeError, match="must be bytes or str"):
        Response(content)
    response = serve(lambda: Response(content))
    assert response.status_code == 500
    assert "must be bytes or str" in response.json()["exception"]


@pytest.mark.parametrize(
    ("media_type", "content_type"),
    [
        ("image/png", "image/png"),
        ("text/csv", "text/csv; charset=utf-8"),
        ("text/plain; charset=latin-1", "text/plain; charset=latin-1"),
        ("application/json", "application/json"),
    ],
)
def test_response_media_type(media_type: str, content_type: str) -> None:
    response = serve(lambda: Response(b"x", media_type=media_type))
    assert response.headers["content-type"] == content_type


def test_response_status_and_headers() -> None:
    response = serve(
        lambda: Response(
            "made", 201, headers=[("X-Tag", "a"), ("x-tag", "b"), ("Location", "/things/1")]
        )
    )
    assert response.status_code == 201
    assert response.headers.get_list("x-tag") == ["a", "b"]
    assert response.headers["location"] == "/things/1"


def test_explicit_content_type_and_length_are_not_duplicated() -> None:
    response = serve(
        lambda: PlainTextResponse(
            "abc", headers={"Content-Type": "text/x-custom", "Content-Length": "3"}
        )
    )
    raw = response.headers.raw
    assert [v for k, v in raw if k.lower() == b"content-type"] == [b"text/x-custom"]
    assert [v for k, v in raw if k.lower() == b"content-length"] == [b"3"]


@pytest.mark.parametrize("status", [204, 304])
def test_no_content_length_without_a_body(status: int) -> None:
    response = serve(lambda: Response(None, status))
    assert response.status_code == status
    assert "content-length" not in response.headers
    assert response.content == b""


def test_headers_changed_after_creation_are_sent() -> None:
    def make() -> Response:
        response = Response("x")
        response.headers["x-frame-options"] = "DENY"
        response.headers.append("vary", "Accept")
        response.headers.add_vary("Origin")
        del response.headers["content-length"]
        response.headers["content-length"] = "1"
        return response

    response = serve(make)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["vary"] == "Accept, Origin"
    assert response.headers["content-length"] == "1"


@pytest.mark.parametrize(
    ("cls", "content_type"),
    [
        (PlainTextResponse, "text/plain; charset=utf-8"),
        (HTMLResponse, "text/html; charset=utf-8"),
        (JSONResponse, "application/json"),
    ],
)
def test_subclass_content_types(cls: type[Response], content_type: str) -> None:
    response = serve(lambda: cls("é"))
    assert response.headers["content-type"] == content_type
    assert response.content == ('"é"' if cls is JSONResponse else "é").encode()


def test_repr() -> None:
    assert repr(Response()) == "<Response 200>"
    assert repr(JSONResponse([], 201)) == "<JSONResponse 201>"
    assert repr(RedirectResponse("/")) == "<RedirectResponse 302>"


def test_head_request_gets_headers_without_body() -> None:
    app = make_app()

    @app.get("/")
    async def index() -> Response:
        return PlainTextResponse("hello")

    with TestClient(app) as client:
        response = client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "5"


# --- header injection -----------------------------------------------------------------------

INJECTIONS = ["a\r\nSet-Cookie: evil=1", "a\nX-Evil: 1", "a\rb", "a\x00b"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_header_injection_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="refused"):
        Response("x", headers={"x-test": value})
    with pytest.raises(ValueError, match="refused"):
        Response("x", headers=[("x-test", value)])
    response = Response("x")
    with pytest.raises(ValueError, match="refused"):
        response.headers["x-test"] = value
    with pytest.raises(ValueError, match="refused"):
        response.headers.append("x-test", value)
    assert "x-test" not in response.headers


@pytest.mark.parametrize("name", ["x-a\r\nx-b", "x y", "x:y", ""])
def test_header_name_injection_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid header name"):
        Response("x", headers={name: "v"})


@pytest.mark.parametrize("value", INJECTIONS)
def test_header_injection_in_a_handler_is_a_500(value: str) -> None:
    app = App(secret_key="k" * 40)

    @app.get("/")
    async def index(request: Request) -> Response:
        response = Response("ok")
        response.headers["x-echo"] = request.query["v"]
        return response

    with TestClient(app) as client:
        response = client.get("/", params={"v": value})
    assert response.status_code == 500
    assert "x-echo" not in response.headers
    assert "set-cookie" not in response.headers
    assert "x-evil" not in response.headers


# --- return values become responses ---------------------------------------------------------


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("value", "status", "content_type", "body"),
    [
        ("text", 200, "text/plain; charset=utf-8", b"text"),
        ({"a": 1}, 200, "application/json", b'{"a":1}'),
        ([1, "x"], 200, "application/json", b'[1,"x"]'),
        (None, 204, None, b""),
        (b"\x00\x01", 200, "application/octet-stream", b"\x00\x01"),
        (Markup("<b>hi</b>"), 200, "text/html; charset=utf-8", b"<b>hi</b>"),
        ((1, 2), 200, "application/json", b"[1,2]"),
        (3.5, 200, "application/json", b"3.5"),
    ],
)
def test_return_values(
    sync: bool, value: Any, status: int, content_type: str | None, body: bytes
) -> None:
    app = make_app()
    if sync:

        @app.get("/")
        def sync_handler() -> Any:
            return value

    else:

        @app.get("/")
        async def async_handler() -> Any:
            return value

    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == status
    assert response.headers.get("content-type") == content_type
    assert response.content == body


def test_route_status_code() -> None:
    app = make_app()

    @app.post("/", status_code=201)
    async def create() -> dict[str, int]:
        return {"id": 1}

    with TestClient(app) as client:
        response = client.post("/")
    assert response.status_code == 201
    assert response.json() == {"id": 1}


# --- JSONResponse ---------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    L = 3


@dataclasses.dataclass
class Point:
    x: int
    y: Decimal


class User(BaseModel):
    id: uuid.UUID
    name: str
    joined: datetime
    tags: set[str]
    price: Decimal


UID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": [1, None, True, 1.5]}, {"a": [1, None, True, 1.5]}),
        (datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), "2024-05-06T07:08:09+00:00"),
        (datetime(2024, 5, 6, 7, 8, 9, 123456), "2024-05-06T07:08:09.123456"),
        (date(2024, 5, 6), "2024-05-06"),
        (dtime(7, 8, 9), "07:08:09"),
        (UID, "12345678-1234-5678-1234-567812345678"),
        (Decimal("1.10"), "1.10"),  # exact, as a string
        (
            Decimal("123456789012345678901234567890.000000001"),
            "123456789012345678901234567890.000000001",
        ),
        ({1, 2, 3}, [1, 2, 3]),
        (frozenset({"a"}), ["a"]),
        ((1, "b"), [1, "b"]),
        (Color.RED, "red"),
        (Size.L, 3),
        (b"bytes", "bytes"),
        (Point(1, Decimal("2.5")), {"x": 1, "y": "2.5"}),
        ({1: "int key", None: "none key"}, {"1": "int key", "null": "none key"}),
        (Markup("<i>x</i>"), "<i>x</i>"),
        ("☃", "☃"),
        ([], []),
        (None, None),
    ],
)
def test_json_response_types(value: Any, expected: Any) -> None:
    response = serve(lambda: JSONResponse(value))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    if isinstance(value, set | frozenset):
        data = sorted(data)
    assert data == expected


def test_json_response_pydantic_model() -> None:
    user = User(
        id=UID,
        name="Ann",
        joined=datetime(2024, 1, 2, tzinfo=UTC),
        tags={"admin"},
        price=Decimal("9.99"),
    )
    expected = {
        "id": str(UID),
        "name": "Ann",
        "joined": "2024-01-02T00:00:00Z",
        "tags": ["admin"],
        "price": "9.99",
    }
    assert serve(lambda: JSONResponse(user)).json() == expected
    assert serve(lambda: JSONResponse({"users": [user]})).json() == {"users": [expected]}
    assert serve(lambda: user).json() == expected  # returned as is


def test_json_response_is_compact_utf8() -> None:
    response = serve(lambda: JSONResponse({"k": "é", "n": [1, 2]}))
    assert response.content == '{"k":"é","n":[1,2]}'.encode()
    assert response.headers["content-length"] == str(len(response.content))


def test_json_response_status_and_headers() -> None:
    response = serve(lambda: JSONResponse({"e": 1}, 422, headers={"x-a": "b"}))
    assert response.status_code == 422
    assert response.headers["x-a"] == "b"


@pytest.mark.parametrize("value", [object(), {"a": object()}, 2**70, timedelta(seconds=1)])
def test_json_response_unserialisable_is_a_500(value: Any) -> None:
    with pytest.raises(TypeError):
        JSONResponse(value)
    response = serve(lambda: {"wrapped": value})
    assert response.status_code == 500


# --- RedirectResponse -----------------------------------------------------------------------


def test_redirect_defaults() -> None:
    response = serve(lambda: RedirectResponse("/next"))
    assert response.status_code == 302
    assert response.headers["location"] == "/next"
    assert response.headers["content-length"] == "0"
    assert response.content == b""
    assert not response.is_error


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_redirect_status(status: int) -> None:
    assert serve(lambda: RedirectResponse("/n", status)).status_code == status


def test_redirect_to_a_url_object() -> None:
    target = URL("https://example.com/a b?x=1")
    assert serve(lambda: RedirectResponse(target)).headers["location"] == (
        "https://example.com/a%20b?x=1"
    )


def test_redirect_to_the_request_url() -> None:
    app = make_app()

    @app.get("/here")
    async def here(request: Request) -> RedirectResponse:
        return RedirectResponse(request.url.include_query_params(seen=1), 307)

    with TestClient(app) as client:
        response = client.get("/here?a=b")
    assert response.headers["location"] == "http://testserver/here?a=b&seen=1"


def test_redirect_extra_headers() -> None:
    response = serve(lambda: RedirectResponse("/n", headers={"cache-control": "no-store"}))
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/search?q=café & more", "/search?q=caf%C3%A9%20&%20more"),
        ("https://example.com/a b#top", "https://example.com/a%20b#top"),
        ("/already%20encoded%2F", "/already%20encoded%2F"),
        ("/über/日本", "/%C3%BCber/%E6%97%A5%E6%9C%AC"),
        ('/x"<script>', "/x%22%3Cscript%3E"),
        ("/\\evil.example", "/%5Cevil.example"),
        ("/a\tb", "/a%09b"),
        ("https://[::1]:8000/p?a=1&b=2;c", "https://[::1]:8000/p?a=1&b=2;c"),
    ],
)
def test_redirect_location_is_percent_encoded(url: str, location: str) -> None:
    response = serve(lambda: RedirectResponse(url))
    assert response.headers["location"] == location


@pytest.mark.parametrize(
    "url",
    [
        "/x\r\nSet-Cookie: evil=1",
        "/x\nSet-Cookie: evil=1",
        "/x\rSet-Cookie: evil=1",
        "/x\x00",
        "/x%0d%0a\r\n",
    ],
)
def test_redirect_header_injection_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        RedirectResponse(url)
    response = serve(lambda: RedirectResponse(url))
    assert response.status_code == 500
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers


def test_redirect_target_from_user_input_is_safe() -> None:
    app = App(secret_key="k" * 40)

    @app.get("/go")
    async def go(request: Request) -> Response:
        return RedirectResponse(request.query["to"])

    with TestClient(app) as client:
        ok = client.get("/go", params={"to": "/home?x=1"})
        bad = client.get("/go", params={"to": "/home\r\nSet-Cookie: evil=1"})
    assert (ok.status_code, ok.headers["location"]) == (302, "/home?x=1")
    assert bad.status_code == 500
    assert "set-cookie" not in bad.headers


def test_redirects_are_not_followed_by_default() -> None:
    app = make_app()

    @app.post("/form")
    async def form() -> Response:
        return RedirectResponse("/done", 303)

    @app.get("/done")
    async def done() -> str:
        return "done"

    with TestClient(app) as client:
        assert client.post("/form").status_code == 303
    with TestClient(app, follow_redirects=True) as client:
        followed = client.post("/form")
    assert (followed.status_code, followed.text) == (200, "done")
    assert followed.history[0].status_code == 303


# --- StreamingResponse ----------------------------------------------------------------------


def test_streaming_async_iterator() -> None:
    async def numbers() -> AsyncIterator[str | bytes]:
        for i in range(3):
            yield f"{i},"
            await asyncio.sleep(0)
        yield b""  # empty chunks are skipped
        yield b"end"

    response = serve(lambda: StreamingResponse(numbers(), media_type="text/csv"))
    assert response.status_code == 200
    assert response.text == "0,1,2,end"
    assert response.headers["content-type"] == "text/csv; charset=utf-8"


def test_streaming_sync_iterator_runs_off_the_loop_thread() -> None:
    threads: list[int] = []
    loop_thread: list[int] = []

    def lines() -> Iterator[str]:
        for i in range(3):
            threads.append(threading.get_ident())
            time.sleep(0.001)  # blocking is fine here
            yield f"line {i}\n"

    app = make_app()

    @app.get("/")
    async def index() -> StreamingResponse:
        loop_thread.append(threading.get_ident())
        return StreamingResponse(lines(), headers={"x-kind": "lines"})

    with TestClient(app) as client:
        response = client.get("/")
    assert response.text == "line 0\nline 1\nline 2\n"
    assert response.headers["x-kind"] == "lines"
    assert len(threads) == 3
    assert loop_thread[0] not in threads


@pytest.mark.parametrize("content", [[b"a", "b", b"c"], (b"x" for _ in range(2)), iter([b"i"])])
def test_streaming_plain_iterables(content: Any) -> None:
    expected = b"".join(c if isinstance(c, bytes) else c.encode() for c in list(content))
    if not isinstance(content, list):
        content = [expected]  # generators were consumed by the line above
    response = serve(lambda: StreamingResponse(content))
    assert response.content == expected


@pytest.mark.parametrize("chunks", [[b"a", None, b"b"], [1]])
def test_streaming_chunk_that_is_not_bytes_or_text_is_an_error(chunks: list[Any]) -> None:
    # None is not a chunk (nor the end of the stream): the headers are out, so the error
    # goes to the server, which drops the connection.
    with pytest.raises(TypeError, match="chunks must be bytes or str, got"):
        serve(lambda: StreamingResponse(chunks))
    with pytest.raises(TypeError, match="chunks must be bytes or str, got"):

        async def agen() -> AsyncIterator[Any]:
            for chunk in chunks:
                yield chunk

        serve(lambda: StreamingResponse(agen()))


def test_streaming_bytearray_and_memoryview_chunks() -> None:
    chunks: list[Any] = [bytearray(b"a"), memoryview(b"b")]
    response = serve(lambda: StreamingResponse(chunks))
    assert response.content == b"ab"


def test_streaming_status_and_head() -> None:
    closed: list[bool] = []

    def body() -> Iterator[bytes]:
        try:
            yield b"data"
        finally:
            closed.append(True)

    app = make_app()

    @app.get("/")
    async def index() -> StreamingResponse:
        return StreamingResponse(body(), 206)

    with TestClient(app) as client:
        assert client.get("/").content == b"data"
        head = client.head("/")
    assert head.status_code == 206
    assert head.content == b""


@dataclasses.dataclass
class Streamed:
    messages: list[Message]
    finished: list[str]


async def stream_until_disconnect(
    app: App,
    *,
    chunks_before_disconnect: int = 2,
    method: str = "GET",
    leave: Callable[[], Awaitable[object]] | None = None,
) -> list[Message]:
    """Call ``app``; the client goes away after a few body chunks, or once ``leave()`` returns."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    messages: list[Message] = []
    gone = asyncio.Event()
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await (gone.wait() if leave is None else leave())
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)
        if sum(m["type"] == "http.response.body" for m in messages) >= chunks_before_disconnect:
            gone.set()

    await asyncio.wait_for(app(scope, receive, send), 5)
    return messages


@pytest.mark.anyio
async def test_async_generator_is_closed_when_the_client_disconnects() -> None:
    events: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"tick"
                await asyncio.sleep(0)
        finally:
            events.append("finally")

    app = make_app()

    @app.get("/")
    async def index() -> StreamingResponse:
        return StreamingResponse(endless())

    messages = await stream_until_disconnect(app)
    assert events == ["finally"]  # already, not later when garbage collected
    assert messages[0]["type"] == "http.response.start"
    assert all(m.get("more_body") for m in messages[1:])  # never finished: the client left


@pytest.mark.anyio
async def test_async_generator_blocked_in_an_await_is_closed_on_disconnect() -> None:
    events: list[str] = []

    async def slow() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            yield b"second"
            await asyncio.sleep(60)
            yield b"never"
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        finally:
            events.append("finally")

    app = make_app()

    @app.get("/")
    async def index() -> StreamingResponse:
        return StreamingResponse(slow())

    messages = await stream_until_disconnect(app, chunks_before_disconnect=2)
    assert events == ["cancelled", "finally"]
    assert [m.get("body") for m in messages[1:]] == [b"first", b"second"]


@pytest.mark.anyio
async def test_sync_generator_is_closed_in_a_worker_thread_when_the_client_disconnects() -> None:
    events: list[tuple[str, int]] = []

    def endless() -> Iterator[bytes]:
        try:
            while True:
                time.sleep(0.001)
                yield b"tick"
        finally:
            events.append(("finally", threading.get_ident()))

    app = make_app()

    @app.get("/")
    async def index() -> StreamingResponse:
        return StreamingResponse(endless())

    await stream_until_disconnect(app, chunks_before_disconnect=3)
    assert len(events) == 1
    assert events[0][1] != threading.get_ident()


@pytest.mark.anyio
async def test_sync_generator_blocked_in_its_thread_does_not_hold_up_the_disconnect() -> None:
    release = threading.Event()
    events: list[str] = []

    blocked = threading.Event()

    def waiting() -> Iterator[bytes]:
        try:
            yield b"first"
            blocked.set()
            release.wait(5)  # waits for the next item, in its worker thread
            yield b"late"
        finally:
            events.append("finally")

    class QuickToGiveUp(StreamingResponse):
        close_timeout = 0.05

    app = make_app()

    @app.get("/")
    async def index() -> StreamingResponse:
        return QuickToGiveUp(waiting())

    started = time.monotonic()
    messages = await stream_until_disconnect(app, leave=lambda: asyncio.to_thread(blocked.wait, 5))
    assert time.monotonic() - started < 1
    assert [m.get("body") for m in messages[1:]] == [b"first"]
    assert events == []  # still waiting in its thread
    release.set()
    for _ in range(200):  # then it is closed there, right after its next() returns
        if events:
            break
        await asyncio.sleep(0.01)
    assert events == ["finally"]


@pytest.mark.anyio
async def test_error_while_closing_a_sync_iterator_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Rows:
        def __iter__(self) -> Rows:
            return self

        def __next__(self) -> bytes:
            return b"row"

        def close(self) -> None:
            raise OSError("cursor already closed")

    app = make_app()

    @app.get("/")
    async def index() -> StreamingResponse:
        return StreamingResponse(Rows())

    await stream_until_disconnect(app, chunks_before_disconnect=2)
    await asyncio.sleep(0.05)
    assert "closing a StreamingResponse iterator failed" in caplog.text
    assert "cursor already closed" in caplog.text


@pytest.mark.anyio
async def test_iterator_is_closed_for_head() -> None:
    events: list[str] = []

    async def agen() -> AsyncGenerator[bytes, None]:
        try:
            yield b"x"
        finally:
            events.append("async closed")

    def sgen() -> Iterator[bytes]:
        try:
            yield b"x"
        finally:
            events.append("sync closed")

    app = make_app()

    @app.get("/a")
    async def a() -> StreamingResponse:
        gen = agen()
        await gen.asend(None)  # started: closing it runs its finally
        return StreamingResponse(gen)

    @app.get("/s")
    async def s() -> StreamingResponse:
        gen = sgen()
        next(gen)
        return StreamingResponse(gen)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        assert (await client.head("/a")).content == b""
        assert (await client.head("/s")).content == b""
    assert events == ["async closed", "sync closed"]


@pytest.mark.anyio
async def test_error_in_the_middle_of_a_stream_is_raised_to_the_server() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("database went away")

    app = make_app()

    @app.get("/")
    async def index() -> StreamingResponse:
        return StreamingResponse(broken())

    # The status line is out: all Trellis can do is stop; the server drops the connection.
    with pytest.raises(RuntimeError, match="database went away"):
        await stream_until_disconnect(app, chunks_before_disconnect=99)


@pytest.mark.anyio
async def test_streaming_response_alone_over_asgi() -> None:
    messages: list[Message] = []

    async def receive() -> Message:
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)

    scope: Scope = {"type": "http", "method": "GET", "scheme": "http", "headers": []}
    await StreamingResponse(iter([b"a", b"b"]), media_type="text/plain")(scope, receive, send)
    assert messages == [
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        },
        {"type": "http.response.body", "body": b"a", "more_body": True},
        {"type": "http.response.body", "body": b"b", "more_body": True},
        {"type": "http.response.body", "body": b""},
    ]


def test_json_body_of_streamed_lines() -> None:
    async def rows() -> AsyncIterator[bytes]:
        for i in range(3):
            yield json.dumps({"i": i}).encode() + b"\n"

    response = serve(lambda: StreamingResponse(rows(), media_type="application/x-ndjson"))
    assert [json.loads(line) for line in response.text.splitlines()] == [
        {"i": 0},
        {"i": 1},
        {"i": 2},
    ]


# --- the error path and the thread pool ---------------------------------------------------


def test_http_error_with_an_injected_header_is_a_500() -> None:
    from trellis import HTTPError

    app = App(secret_key="k" * 40)

    @app.get("/")
    async def index(request: Request) -> str:
        raise HTTPError(400, "bad", headers={"x-echo": request.query["v"]})

    with TestClient(app) as client:
        response = client.get("/", params={"v": "a\r\nSet-Cookie: evil=1"})
    assert response.status_code == 500
    assert "x-request-id" in response.headers
    assert "set-cookie" not in response.headers


def test_sync_stream_runs_in_the_app_thread_pool() -> None:
    names: list[str] = []

    def body() -> Iterator[bytes]:
        names.append(threading.current_thread().name)
        yield b"x"

    response = serve(lambda: StreamingResponse(body()))
    assert response.content == b"x"
    assert names[0].startswith("trellis-worker")
