"""Server-sent events: ``text/event-stream`` responses fed by a (async) generator.

``EventSourceResponse`` encodes each item as an event, sends a ``: ping`` comment when nothing
was sent for a while (so proxies keep the connection open and dead clients are found), and
stops the generator, running its ``finally``, when the client goes away.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator
from typing import Any, cast

from trellis.http import _json
from trellis.http.response import HeadersInit, StreamingResponse
from trellis.types import Receive, Scope, Send

__all__ = ["EventSourceResponse", "ServerSentEvent"]

_LINES = re.compile(r"\r\n|\r|\n")  # the three line ends an EventSource parser accepts
_PING = b": ping\n\n"
_END = object()


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSentEvent:
    r"""One event of a ``text/event-stream``.

    Args:
        data: The payload: a ``str`` is sent as it is (each of its lines as a ``data:``
            line, which the browser joins back with ``\n``); ``bytes`` are decoded as UTF-8;
            anything else (dicts, lists, pydantic models, numbers ...) is encoded as JSON.
            ``None`` sends no ``data:`` line.
        event: The event type (``addEventListener(type, ...)`` in the browser); ``None`` for
            the default ``message``.
        id: The event id the browser sends back as ``Last-Event-ID`` when it reconnects.
        retry: How long the browser waits before reconnecting, in milliseconds.
        comment: A comment line (ignored by browsers; keeps connections alive).

    Raises:
        ValueError: ``event`` or ``id`` holds CR or LF (they would end the field and let the
            rest inject other fields), ``id`` holds NUL, or ``retry`` is negative.

    Example:
        ```python
        ServerSentEvent({"price": 12.5}, event="tick", id="42").encode()
        # b'event: tick\nid: 42\ndata: {"price":12.5}\n\n'
        ```
    """

    data: Any = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        if self.event is not None and ("\r" in self.event or "\n" in self.event):
            raise ValueError(f"event type must not contain CR or LF: {self.event!r}")
        if self.id is not None and any(c in self.id for c in "\r\n\0"):
            raise ValueError(f"event id must not contain CR, LF or NUL: {self.id!r}")
        if self.retry is not None and (
            not isinstance(self.retry, int) or isinstance(self.retry, bool) or self.retry < 0
        ):
            raise ValueError(f"retry must be a non-negative int (milliseconds): {self.retry!r}")

    def encode(self) -> bytes:
        """Return the event in the wire format, ending with the blank line that dispatches it.

        An event with no field at all encodes to ``b""``.
        """
        lines: list[str] = []
        if self.comment is not None:
            lines.extend(": " + line for line in _LINES.split(self.comment))
        if self.event is not None:
            lines.append("event: " + self.event)
        if self.id is not None:
            lines.append("id: " + self.id)
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        data = self.data
        if data is not None:
            if isinstance(data, bytes):
                data = data.decode("utf-8")
            elif not isinstance(data, str):
                data = _json.dumps(data).decode("utf-8")
            # "data: " with its space: the parser drops exactly one, so a leading space in
            # the payload survives.
            lines.extend("data: " + line for line in _LINES.split(data))
        if not lines:
            return b""
        return ("\n".join(lines) + "\n\n").encode("utf-8")


def _encode(item: Any) -> bytes:
    if isinstance(item, ServerSentEvent):
        return item.encode()
    if isinstance(item, bytes):
        return item  # already in the wire format
    return ServerSentEvent(item).encode()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class EventSourceResponse(StreamingResponse):
    """A ``text/event-stream`` response that sends events as an iterable produces them.

    Each item becomes one event: a ``ServerSentEvent`` is encoded as it says; ``bytes`` are
    sent verbatim (already encoded); anything else is the ``data`` of an event (a ``str`` as
    it is, dicts, lists and models as JSON). Sync iterables run in the thread pool.

    When the client disconnects, the iterable is stopped: an async generator gets
    ``CancelledError`` at its current ``await`` or is closed at its ``yield``, so its
    ``finally`` runs (release subscriptions there).

    Args:
        events: The events, usually an async generator.
        ping: Seconds without an event after which a ``: ping`` comment is sent, so proxies
            do not close an idle connection and a dead client is noticed; ``None`` to never
            ping.
        headers: Extra headers (they replace the defaults of the same name).
        status_code: The HTTP status.

    Sends ``Cache-Control: no-store`` and ``X-Accel-Buffering: no`` (nginx would otherwise
    buffer the stream) unless ``headers`` sets them.

    Example:
        ```python
        @app.get("/events")
        async def events():
            async def gen():
                for i in range(10):
                    yield ServerSentEvent({"n": i}, event="count", id=str(i))
                    await asyncio.sleep(1)

            return EventSourceResponse(gen())
        ```
    """

    __slots__ = ("_body", "events", "ping")

    def __init__(
        self,
        events: AsyncIterable[Any] | Iterable[Any],
        *,
        ping: float | None = 15.0,
        headers: HeadersInit = None,
        status_code: int = 200,
    ) -> None:
        if ping is not None and ping <= 0:
            raise ValueError(f"ping must be a positive number of seconds or None, got {ping!r}")
        self.events = events
        self.ping = ping
        self._body = self._generate()
        super().__init__(self._body, status_code, headers, "text/event-stream")
        h = self.headers
        h.setdefault("cache-control", "no-store")
        h.setdefault("x-accel-buffering", "no")

    async def _produce(self, queue: asyncio.Queue[object]) -> None:
        # Runs the whole iterable in one task, so contextvars it sets persist between items.
        gen = self._iterate()
        try:
            async for data in gen:
                await queue.put(data)
        except Exception as exc:
            await queue.put(_Failure(exc))
        else:
            await queue.put(_END)
        finally:
            await gen.aclose()  # cancelled at `put`: close the generators now

    async def _iterate(self) -> AsyncGenerator[bytes, None]:
        events = self.events
        if isinstance(events, AsyncIterable):
            it = aiter(events)
            try:
                async for item in it:
                    yield _encode(item)
            finally:
                # `async for` does not close what it iterates when it is interrupted.
                aclose = getattr(it, "aclose", None)
                if aclose is not None:
                    await aclose()
            return
        loop = asyncio.get_running_loop()
        sync_it: Iterator[Any] = iter(events)
        try:
            while True:
                item = await loop.run_in_executor(None, next, sync_it, _END)
                if item is _END:
                    return
                yield _encode(item)
        finally:
            close = getattr(sync_it, "close", None)
            if close is not None:
                try:
                    # In the pool too: the generator's `finally` may block.
                    await loop.run_in_executor(None, close)
                except ValueError:
                    pass  # still running in its thread; closed when collected

    async def _generate(self) -> AsyncGenerator[bytes, None]:
        # The events come through a queue from a producer task so that waiting for the next
        # one can time out (to ping) without cancelling the producer.
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1)
        producer = asyncio.ensure_future(self._produce(queue))
        ping = self.ping
        try:
            while True:
                if ping is None:
                    item = await queue.get()
                else:
                    try:
                        async with asyncio.timeout(ping):
                            item = await queue.get()
                    except TimeoutError:
                        yield _PING
                        continue
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield cast(bytes, item)
        finally:
            if not producer.done():
                producer.cancel()
                await asyncio.wait((producer,))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the events until they end or the client disconnects."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A disconnect can stop the stream while it waits on `send`, leaving the
            # generators suspended at a `yield`: close them now, not when garbage collected.
            await self._body.aclose()
