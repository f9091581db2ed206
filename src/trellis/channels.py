"""Broadcast groups: send one message to every websocket (or stream) listening to a group.

``Channels`` keeps, per process, who listens to which group; a backend carries the messages
between processes. ``InMemoryBackend`` (the default) serves one process;
``trellis.contrib.redis.RedisChannels`` serves many with the same API.

Example:
    ```py
    channels = app.install(Channels())

    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await channels.join(room, websocket)
        async for text in websocket.iter_text():
            await channels.publish(room, {"room": room, "text": text})
    ```

Delivery: each listener has a bounded queue (``max_queue`` messages). A listener that falls
that far behind is cut off rather than silently missing messages: a websocket is closed with
1013 (try again later) so its client reconnects and catches up; a ``Subscription`` stops
iterating with ``overflowed`` set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from trellis.http import _json
from trellis.websockets import WebSocket, WebSocketClose, WebSocketState

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["Backend", "Channels", "InMemoryBackend", "Subscription"]

log = logging.getLogger("trellis.channels")

DEFAULT_MAX_QUEUE = 100


class Backend(Protocol):
    """Carries messages between every ``Channels`` that share it (processes, machines).

    Messages are ``str`` or ``bytes`` and must come out as they went in (a ``str`` stays a
    ``str``): ``Channels`` sends a ``str`` as a text frame and ``bytes`` as a binary one.
    """

    async def publish(self, group: str, message: str | bytes) -> None:
        """Send ``message`` to every current subscription to ``group``."""
        ...

    async def subscribe(self, group: str) -> AsyncIterator[str | bytes]:
        """Start listening to ``group``; the iterator yields what is published from now on.

        The subscription is active when this returns: a message published afterwards is
        delivered. The iterator ends after ``unsubscribe`` or ``close``.
        """
        ...

    async def unsubscribe(self, group: str, stream: AsyncIterator[str | bytes]) -> None:
        """Stop ``stream`` (returned by ``subscribe(group)``) and release what it holds."""
        ...

    async def close(self) -> None:
        """End every subscription and release connections."""
        ...


class _Stream:
    """One in-memory subscription: an async iterator over a queue."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        # Unbounded on purpose: Channels drains it at once into the bounded listener queues.
        self._queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> str | bytes:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # stay ended
            raise StopAsyncIteration
        return item


class InMemoryBackend:
    """A backend for one process and one event loop: messages never leave the process.

    Several ``Channels`` may share one instance (in tests, to stand for several processes).
    """

    def __init__(self) -> None:
        self._streams: dict[str, set[_Stream]] = {}

    async def publish(self, group: str, message: str | bytes) -> None:
        """Hand ``message`` to every subscription to ``group``."""
        for stream in self._streams.get(group, ()):
            stream._queue.put_nowait(message)

    async def subscribe(self, group: str) -> AsyncIterator[str | bytes]:
        """Start listening to ``group``."""
        stream = _Stream()
        self._streams.setdefault(group, set()).add(stream)
        return stream

    async def unsubscribe(self, group: str, stream: AsyncIterator[str | bytes]) -> None:
        """Stop ``stream``."""
        streams = self._streams.get(group)
        if streams is not None and isinstance(stream, _Stream) and stream in streams:
            streams.discard(stream)
            if not streams:
                del self._streams[group]
            stream._queue.put_nowait(None)

    async def close(self) -> None:
        """End every subscription."""
        streams, self._streams = self._streams, {}
        for group_streams in streams.values():
            for stream in group_streams:
                stream._queue.put_nowait(None)


class _SocketMember:
    """A websocket in one or more groups, with its queue and the task that sends from it."""

    __slots__ = ("channels", "groups", "queue", "task", "websocket")

    def __init__(self, channels: Channels, websocket: WebSocket) -> None:
        self.channels = channels
        self.websocket = websocket
        self.groups: set[str] = set()
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(channels.max_queue)
        self.task = asyncio.create_task(self._run(), name=f"trellis.channels sender {websocket!r}")

    def offer(self, message: str | bytes) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.channels._overflow(self)

    async def _run(self) -> None:
        websocket = self.websocket
        while True:
            message = await self.queue.get()
            try:
                if isinstance(message, str):
                    await websocket.send_text(message)
                else:
                    await websocket.send_bytes(message)
            except Exception:  # the client is gone or the socket closed: stop sending to it
                self.channels._forget(self)
                return


class Subscription:
    """Messages published to one group, for code that is not a websocket (an SSE stream).

    Use it as ``async with channels.subscribe(group) as sub: async for message in sub: ...``;
    messages are ``str`` (JSON for anything that was not ``str`` or ``bytes``) or ``bytes``.

    Attributes:
        group: The group listened to.
        overflowed: Set when the subscriber fell ``max_queue`` messages behind and was cut
            off: iteration ended early and later messages were not kept.
    """

    __slots__ = ("_active", "_channels", "_queue", "group", "overflowed")

    def __init__(self, channels: Channels, group: str) -> None:
        self._channels = channels
        self.group = group
        self.overflowed = False
        self._active = False
        self._queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()

    def offer(self, message: str | bytes) -> None:
        """Queue ``message`` for the subscriber (``Channels`` calls this)."""
        # The queue is unbounded so that the end marker always fits; the bound is checked here.
        if not self._active:
            return
        if self._queue.qsize() >= self._channels.max_queue:
            self.overflowed = True
            self._channels._drop_subscription(self)
            return
        self._queue.put_nowait(message)

    def _end(self) -> None:
        if self._active:
            self._active = False
            self._queue.put_nowait(None)

    async def __aenter__(self) -> Subscription:
        self._active = True
        try:
            await self._channels._add(self.group, self)
        except BaseException:
            self._active = False
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end()
        await self._channels._remove(self.group, self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> str | bytes:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # stay ended
            raise StopAsyncIteration
        return item

    async def get(self, timeout: float | None = None) -> str | bytes:
        """Wait for the next message (at most ``timeout`` seconds).

        Raises:
            StopAsyncIteration: the subscription has ended.
            TimeoutError: nothing arrived in time.
        """
        async with asyncio.timeout(timeout):
            return await self.__anext__()


_Listener = _SocketMember | Subscription


class _Group:
    __slots__ = ("listeners", "pump", "stream")

    def __init__(self, stream: AsyncIterator[str | bytes]) -> None:
        self.stream = stream
        self.listeners: set[_Listener] = set()
        self.pump: asyncio.Task[None] | None = None


class Channels:
    """Broadcast groups over a pluggable backend; a plugin (``app.install(Channels())``).

    Args:
        backend: Carries messages between processes; ``InMemoryBackend()`` by default.
        max_queue: How many messages a listener may fall behind before it is cut off (a
            websocket is closed with 1013, a ``Subscription`` ends with ``overflowed``).

    Example:
        ```py
        channels = Channels()
        await channels.join("lobby", websocket)
        await channels.publish("lobby", {"text": "hello"})  # JSON, sent as a text message
        async with channels.subscribe("lobby") as sub:
            async for message in sub:
                ...
        ```
    """

    def __init__(self, backend: Backend | None = None, *, max_queue: int = DEFAULT_MAX_QUEUE):
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.backend: Backend = backend if backend is not None else InMemoryBackend()
        self.max_queue = max_queue
        self._groups: dict[str, _Group] = {}
        self._sockets: dict[WebSocket, _SocketMember] = {}
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- plugin ------------------------------------------------------------------------------

    def setup(self, app: App) -> None:
        """Make the channels reachable as ``app.state.channels``; close them on shut-down.

        A backend with a ``connect()`` method (``RedisChannels``) is connected at start-up,
        so that an unreachable server stops the app from starting; one with an
        ``attach(app)`` method is given the app first (``RedisChannels`` makes Redis outages
        503 answers there, as the Redis stores do).
        """
        app.state.channels = self
        attach = getattr(self.backend, "attach", None)
        if callable(attach):
            attach(app)
        connect = getattr(self.backend, "connect", None)
        if callable(connect):
            app.on_startup(connect)
        app.on_shutdown(self.close)

    # -- public API --------------------------------------------------------------------------

    async def publish(self, group: str, message: Any) -> None:
        """Send ``message`` to every listener of ``group``, in every process.

        ``str`` goes out as a text message, ``bytes`` as a binary one, anything else as JSON
        text (orjson, as ``JSONResponse``: dicts, lists, pydantic models, dataclasses...).
        A listener that fails (its client is gone) is removed; ``publish`` never raises for it.
        """
        _check_group(group)
        wire: str | bytes
        if isinstance(message, str):
            wire = message
        elif isinstance(message, bytes | bytearray | memoryview):
            wire = bytes(message)
        else:
            wire = _json.dumps(message).decode("utf-8")
        await self.backend.publish(group, wire)

    async def join(self, group: str, websocket: WebSocket) -> None:
        """Add an accepted ``websocket`` to ``group``: it gets every message published there.

        Joining twice does nothing. The websocket leaves its groups by itself when its
        connection closes.

        Raises:
            RuntimeError: the websocket is not accepted, or already closed.
        """
        _check_group(group)
        if websocket.application_state is not WebSocketState.CONNECTED:
            raise RuntimeError(
                "join() needs an accepted websocket: call await websocket.accept() first"
            )
        if websocket.client_state is WebSocketState.DISCONNECTED:
            raise RuntimeError("join() was given a websocket whose client has gone away")
        member = self._sockets.get(websocket)
        if member is not None and group in member.groups:
            return
        async with self._get_lock():
            member = self._sockets.get(websocket)
            if member is None:
                member = _SocketMember(self, websocket)
                self._sockets[websocket] = member
                websocket._add_disconnect_callback(self._on_disconnect)
            if group in member.groups:
                return
            entry = await self._ensure(group)
            entry.listeners.add(member)
            member.groups.add(group)

    async def leave(self, group: str, websocket: WebSocket) -> None:
        """Remove ``websocket`` from ``group`` (nothing happens if it is not a member)."""
        member = self._sockets.get(websocket)
        if member is None or group not in member.groups:
            return
        member.groups.discard(group)
        if not member.groups:
            self._release_socket(member)
        await self._remove(group, member)

    async def leave_all(self, websocket: WebSocket) -> None:
        """Remove ``websocket`` from every group it joined."""
        member = self._sockets.get(websocket)
        if member is None:
            return
        groups = set(member.groups)
        member.groups.clear()
        self._release_socket(member)
        for group in groups:
            await self._remove(group, member)

    def subscribe(self, group: str) -> Subscription:
        """Listen to ``group`` from code that is not a websocket (an SSE stream, a worker).

        Returns a ``Subscription``: an async context manager that is also an async iterator
        of the messages (``str`` or ``bytes``).
        """
        _check_group(group)
        return Subscription(self, group)

    def groups(self, websocket: WebSocket) -> frozenset[str]:
        """The groups ``websocket`` has joined."""
        member = self._sockets.get(websocket)
        return frozenset(member.groups) if member is not None else frozenset()

    def count(self, group: str) -> int:
        """How many listeners (websockets and subscriptions) ``group`` has in this process."""
        entry = self._groups.get(group)
        return len(entry.listeners) if entry is not None else 0

    async def close(self) -> None:
        """End every membership and subscription and close the backend.

        The websockets themselves stay open. The object can be used again afterwards (the app
        starting again, a new test).
        """
        groups, self._groups = self._groups, {}
        sockets, self._sockets = self._sockets, {}
        tasks: list[asyncio.Task[Any]] = []
        for member in sockets.values():
            member.websocket._remove_disconnect_callback(self._on_disconnect)
            member.task.cancel()
            tasks.append(member.task)
        for group, entry in groups.items():
            for listener in entry.listeners:
                if isinstance(listener, Subscription):
                    listener._end()
            if entry.pump is not None:
                entry.pump.cancel()
                tasks.append(entry.pump)
            try:
                await self.backend.unsubscribe(group, entry.stream)
            except Exception:
                log.exception("channels: unsubscribing from %r failed", group)
        tasks.extend(self._tasks)
        self._tasks.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lock = None
        await self.backend.close()

    # -- machinery ---------------------------------------------------------------------------

    def _get_lock(self) -> asyncio.Lock:
        # Made on first use, so that it belongs to the loop that runs the app.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _ensure(self, group: str) -> _Group:
        # Called with the lock held.
        entry = self._groups.get(group)
        if entry is None:
            stream = await self.backend.subscribe(group)
            entry = _Group(stream)
            entry.pump = asyncio.create_task(
                self._pump(group, entry), name=f"trellis.channels pump {group!r}"
            )
            self._groups[group] = entry
        return entry

    async def _add(self, group: str, listener: _Listener) -> None:
        async with self._get_lock():
            entry = await self._ensure(group)
            entry.listeners.add(listener)

    async def _remove(self, group: str, listener: _Listener) -> None:
        entry = self._groups.get(group)
        if entry is None:
            return
        entry.listeners.discard(listener)
        if not entry.listeners:
            await self._release_group(group)

    async def _release_group(self, group: str) -> None:
        async with self._get_lock():
            entry = self._groups.get(group)
            if entry is None or entry.listeners:
                return  # someone joined meanwhile
            del self._groups[group]
            if entry.pump is not None and entry.pump is not asyncio.current_task():
                entry.pump.cancel()
            await self.backend.unsubscribe(group, entry.stream)

    async def _pump(self, group: str, entry: _Group) -> None:
        try:
            async for message in entry.stream:
                for listener in list(entry.listeners):
                    listener.offer(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("channels: the backend failed while listening to %r", group)
            # Cut every listener off: clients reconnect and rejoin, which subscribes again.
            if self._groups.get(group) is entry:
                del self._groups[group]
            for listener in list(entry.listeners):
                if isinstance(listener, Subscription):
                    listener._end()
                else:
                    self._cut_off(listener, WebSocketClose.INTERNAL_ERROR, "channel backend failed")
            entry.listeners.clear()

    def _release_socket(self, member: _SocketMember) -> None:
        if self._sockets.get(member.websocket) is member:
            del self._sockets[member.websocket]
        member.websocket._remove_disconnect_callback(self._on_disconnect)
        if member.task is not asyncio.current_task():
            member.task.cancel()

    def _forget(self, member: _SocketMember) -> None:
        # Synchronous removal (a disconnect, a failed send); empty groups are released later.
        groups = set(member.groups)
        member.groups.clear()
        self._release_socket(member)
        for group in groups:
            entry = self._groups.get(group)
            if entry is None:
                continue
            entry.listeners.discard(member)
            if not entry.listeners:
                self._spawn(self._release_group(group))

    def _on_disconnect(self, websocket: WebSocket) -> None:
        member = self._sockets.get(websocket)
        if member is not None:
            self._forget(member)

    def _overflow(self, member: _SocketMember) -> None:
        log.warning(
            "channels: %r fell %d messages behind; closing it with 1013",
            member.websocket,
            self.max_queue,
        )
        self._cut_off(member, WebSocketClose.TRY_AGAIN_LATER, "too slow: messages were dropped")

    def _cut_off(self, member: _SocketMember, code: int, reason: str) -> None:
        self._forget(member)

        async def close() -> None:
            try:
                await member.websocket.close(code, reason)
            except Exception:
                pass  # already gone

        self._spawn(close())

    def _drop_subscription(self, subscription: Subscription) -> None:
        subscription._end()
        entry = self._groups.get(subscription.group)
        if entry is not None:
            entry.listeners.discard(subscription)
            if not entry.listeners:
                self._spawn(self._release_group(subscription.group))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _check_group(group: str) -> None:
    if not isinstance(group, str) or not group:
        raise ValueError(f"a group name must be a non-empty str, got {group!r}")
