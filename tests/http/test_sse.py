from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from trellis.http.sse import EventSourceResponse, ServerSentEvent
from trellis.testing import TestClient
from trellis.types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


def wrap(resp: EventSourceResponse) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await resp(scope, receive, send)

    return app


async def fetch(resp: EventSourceResponse, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=wrap(resp))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, "/events")


SCOPE: Scope = {
    "type": "http",
    "method": "GET",
    "path": "/events",
    "root_path": "",
    "scheme": "http",
    "query_string": b"",
    "headers": [],
}


# --- encoding -------------------------------------------------------------------------------


def test_encode_data() -> None:
    assert ServerSentEvent("hello").encode() == b"data: hello\n\n"


def test_encode_every_field() -> None:
    event = ServerSentEvent("x", event="tick", id="7", retry=3000, comment="note")
    assert event.encode() == b": note\nevent: tick\nid: 7\nretry: 3000\ndata: x\n\n"


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        ("a\nb", ["a", "b"]),
        ("a\r\nb\rc\n", ["a", "b", "c", ""]),
        ("", [""]),
        ("\n", ["", ""]),
        (" leading space", [" leading space"]),
    ],
)
def test_multiline_data(data: str, lines: list[str]) -> None:
    expected = "".join(f"data: {line}\n" for line in lines) + "\n"
    assert ServerSentEvent(data).encode() == expected.encode()


def test_json_data() -> None:
    assert ServerSentEvent({"a": [1, "é"]}).encode() == 'data: {"a":[1,"é"]}\n\n'.encode()
    assert ServerSentEvent([1, 2]).encode() == b"data: [1,2]\n\n"
    assert ServerSentEvent(5).encode() == b"data: 5\n\n"

    @dataclasses.dataclass
    class Point:
        x: int

    assert ServerSentEvent(Point(1)).encode() == b'data: {"x":1}\n\n'
    # JSON never holds a raw newline, so a JSON payload is always one data line.
    assert ServerSentEvent({"t": "a\nb"}).encode() == b'data: {"t":"a\\nb"}\n\n'


def test_bytes_data_is_utf8() -> None:
    assert ServerSentEvent("é\nx".encode()).encode() == "data: é\ndata: x\n\n".encode()


def test_comment_lines() -> None:
    assert ServerSentEvent(comment="a\nb").encode() == b": a\n: b\n\n"


def test_empty_event() -> None:
    assert ServerSentEvent().encode() == b""


def test_empty_id_resets() -> None:
    assert ServerSentEvent("x", id="").encode() == b"id: \ndata: x\n\n"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\rdata: injected"},
        {"id": "1\n"},
        {"id": "1\r"},
        {"id": "1\0"},
        {"retry": -1},
        {"retry": 1.5},
        {"retry": True},
    ],
)
def test_invalid_fields(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ServerSentEvent("x", **kwargs)


# --- streaming ------------------------------------------------------------------------------


async def test_headers() -> None:
    r = await fetch(EventSourceResponse(iter(())))
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-accel-buffering"] == "no"
    assert "content-length" not in r.headers
    assert r.content == b""


async def test_headers_override_defaults() -> None:
    resp = EventSourceResponse(
        iter(()), headers={"cache-control": "no-cache", "x-a": "1"}, status_code=201
    )
    r = await fetch(resp)
    assert r.status_code == 201
    assert r.headers.get_list("cache-control") == ["no-cache"]
    assert r.headers["x-a"] == "1"


async def test_events_in_order() -> None:
    async def gen() -> AsyncIterator[Any]:
        yield ServerSentEvent("one", event="first", id="1")
        await asyncio.sleep(0)
        yield "two"
        yield {"n": 3}
        yield b"data: four\n\n"
        yield ServerSentEvent()  # encodes to nothing: skipped

    r = await fetch(EventSourceResponse(gen(), ping=None))
    assert r.content == (
        b'event: first\nid: 1\ndata: one\n\ndata: two\n\ndata: {"n":3}\n\ndata: four\n\n'
    )


async def test_sync_iterable() -> None:
    def gen() -> Iterator[str]:
        yield "a"
        yield "b"

    r = await fetch(EventSourceResponse(gen()))
    assert r.content == b"data: a\n\ndata: b\n\n"
    r = await fetch(EventSourceResponse(["x", {"y": 1}]))
    assert r.content == b'data: x\n\ndata: {"y":1}\n\n'


async def test_ping_when_idle() -> None:
    async def gen() -> AsyncIterator[str]:
        yield "a"
        await asyncio.sleep(0.3)
        yield "b"

    r = await fetch(EventSourceResponse(gen(), ping=0.05))
    body = r.content
    assert body.startswith(b"data: a\n\n: ping\n\n")
    assert body.endswith(b": ping\n\ndata: b\n\n")
    assert 2 <= body.count(b": ping\n\n") <= 8


async def test_no_ping_while_busy_or_disabled() -> None:
    async def gen() -> AsyncIterator[str]:
        for i in range(5):
            await asyncio.sleep(0.01)
            yield str(i)

    r = await fetch(EventSourceResponse(gen(), ping=5))
    assert b"ping" not in r.content

    async def slow() -> AsyncIterator[str]:
        await asyncio.sleep(0.15)
        yield "late"

    r = await fetch(EventSourceResponse(slow(), ping=None))
    assert r.content == b"data: late\n\n"


def test_bad_ping() -> None:
    with pytest.raises(ValueError, match="ping"):
        EventSourceResponse(iter(()), ping=0)


async def test_head_does_not_start_the_generator() -> None:
    started = False

    async def gen() -> AsyncIterator[str]:
        nonlocal started
        started = True
        yield "x"

    r = await fetch(EventSourceResponse(gen()), "HEAD")
    assert r.status_code == 200
    assert r.content == b""
    assert not started


async def test_error_in_generator_propagates() -> None:
    async def gen() -> AsyncIterator[str]:
        yield "a"
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await fetch(EventSourceResponse(gen()))


async def test_unencodable_item_propagates() -> None:
    with pytest.raises(TypeError):
        await fetch(EventSourceResponse([object()]))


async def test_contextvars_persist_between_events() -> None:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=0)

    async def gen() -> AsyncIterator[str]:
        var.set(1)
        yield "a"
        yield str(var.get())

    r = await fetch(EventSourceResponse(gen(), ping=0.01))
    assert r.content.endswith(b"data: 1\n\n")


# --- disconnects ----------------------------------------------------------------------------


class Client:
    """A raw ASGI client that disconnects after ``after`` body messages."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.bodies: list[bytes] = []
        self.gone = asyncio.Event()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.bodies.append(message["body"])
            if len(self.bodies) >= self.after:
                self.gone.set()
            await asyncio.sleep(0)  # a real server yields to the loop here


async def test_generator_finally_runs_on_disconnect_while_streaming() -> None:
    closed = asyncio.Event()

    async def gen() -> AsyncIterator[str]:
        try:
            i = 0
            while True:
                yield str(i)
                i += 1
                await asyncio.sleep(0)
        finally:
            closed.set()

    client = Client(after=3)
    await asyncio.wait_for(EventSourceResponse(gen())(SCOPE, client.receive, client.send), 2)
    assert closed.is_set()
    assert client.bodies[:3] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]


async def test_generator_finally_runs_on_disconnect_while_waiting() -> None:
    closed = asyncio.Event()
    cancelled = False

    async def gen() -> AsyncIterator[str]:
        nonlocal cancelled
        try:
            yield "first"
            await asyncio.sleep(3600)
            yield "never"
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            closed.set()

    client = Client(after=1)
    await asyncio.wait_for(EventSourceResponse(gen())(SCOPE, client.receive, client.send), 2)
    assert closed.is_set()
    assert cancelled
    assert client.bodies == [b"data: first\n\n"]


async def test_generator_finally_runs_on_disconnect_during_pings() -> None:
    closed = asyncio.Event()

    async def gen() -> AsyncIterator[str]:
        try:
            await asyncio.sleep(3600)
            yield "never"
        finally:
            closed.set()

    client = Client(after=2)
    await asyncio.wait_for(
        EventSourceResponse(gen(), ping=0.01)(SCOPE, client.receive, client.send), 2
    )
    assert closed.is_set()
    assert client.bodies == [b": ping\n\n", b": ping\n\n"]


async def test_sync_generator_closed_on_disconnect() -> None:
    closed = False

    def gen() -> Iterator[str]:
        nonlocal closed
        try:
            while True:
                yield "x"
        finally:
            closed = True

    client = Client(after=2)
    await asyncio.wait_for(EventSourceResponse(gen())(SCOPE, client.receive, client.send), 2)
    assert client.bodies[:2] == [b"data: x\n\n", b"data: x\n\n"]
    for _ in range(100):  # the last `next` may still be finishing in its thread
        if closed:
            break
        await asyncio.sleep(0.01)
    assert closed


# --- the examples of docs/sse.md ------------------------------------------------------------

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "sse.md"


@pytest.fixture
def docs_namespace(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("TRELLIS_DEBUG", "1")
    blocks = re.findall(r"```python\n(.*?)```", DOCS_PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 4
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for block in blocks:
        # dont_inherit: this module's `from __future__ import annotations` must not leak in.
        exec(compile(block, str(DOCS_PAGE), "exec", dont_inherit=True), namespace)
    return namespace


def test_docs_examples_run(docs_namespace: dict[str, Any]) -> None:
    docs_namespace["test_events"]()
    with TestClient(docs_namespace["app"]) as client:
        r = client.get("/events")
        assert r.text.endswith("event: end\ndata: done\n\n")
        r = client.get("/feed", headers={"last-event-id": "5"})
        assert r.text == (
            'id: 6\ndata: {"n":6}\n\nid: 7\ndata: {"n":7}\n\nid: 8\ndata: {"n":8}\n\n'
        )


async def test_docs_subscription_is_released_on_disconnect(
    docs_namespace: dict[str, Any],
) -> None:
    listeners: dict[str, set[asyncio.Queue[str]]] = docs_namespace["listeners"]
    client = Client(after=1)
    scope = dict(SCOPE, path="/rooms/lobby/events", raw_path=b"/rooms/lobby/events")
    task = asyncio.ensure_future(docs_namespace["app"](scope, client.receive, client.send))
    while not listeners.get("lobby"):
        await asyncio.sleep(0.01)
    for queue in listeners["lobby"]:
        queue.put_nowait("hello")
    await asyncio.wait_for(task, 2)
    assert client.bodies[0] == b"data: hello\n\n"
    assert listeners["lobby"] == set()
