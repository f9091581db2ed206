"""A ``trellis.channels`` backend on Redis pub/sub: broadcast groups across processes.

```py
from trellis.channels import Channels
from trellis.contrib.redis import RedisChannels

channels = app.install(Channels(RedisChannels("redis://localhost:6379/0")))
```

Each process holds one subscriber connection, subscribed to the Redis channel of every group
that has listeners in the process; ``Channels`` fans each message out to them locally. A
publish is one ``PUBLISH`` on the client's pool.

When the subscriber connection is lost (Redis restarted), every stream fails: ``Channels``
cuts the listeners off (websockets closed with 1011) so that clients reconnect and catch up
rather than silently miss what was published meanwhile. The next subscription connects
again; while Redis stays unreachable, attempts are spaced out (0.5 s doubling up to 30 s)
and fail at once with ``RedisUnavailableError`` in between.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from trellis.contrib.redis._client import (
    RedisStore,
    RedisUnavailableError,
    install_outage_handler,
)
from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    from trellis.app import App

__all__ = ["RedisChannels"]

log = logging.getLogger("trellis.channels.redis")

# A message keeps its type across Redis, which carries bytes only: one tag byte in front.
_TEXT = b"t"
_BINARY = b"b"

_FIRST_DELAY = 0.5
_MAX_DELAY = 30.0


class _Stream:
    """One subscription to a group: an async iterator over a queue that may end in an error."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        # Unbounded: Channels drains it at once into its bounded listener queues.
        self._queue: asyncio.Queue[str | bytes | BaseException | None] = asyncio.Queue()

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> str | bytes:
        item = await self._queue.get()
        if item is None or isinstance(item, BaseException):
            self._queue.put_nowait(item)  # stay ended
            if item is None:
                raise StopAsyncIteration
            raise item
        return item


class RedisChannels(RedisStore):
    """A ``Backend`` of ``trellis.channels.Channels`` on Redis pub/sub, for many processes.

    Args:
        url_or_client: A Redis URL (``redis://host:6379/0``) or a ``redis.asyncio.Redis``
            client of yours (not one with ``decode_responses=True``: messages may be bytes).
        prefix: Put before every group name to make the Redis channel name (default
            ``trellis:channels:``), so that several applications share one Redis.
        connect_timeout: Seconds to wait for a connection to Redis.
        timeout: Seconds to wait for the answer to a command (the subscriber connection
            itself waits for messages without a limit).
        options: More options of ``redis.asyncio.Redis.from_url``, with a URL only.

    Example:
        ```python
        # needs: redis
        import os

        from trellis import App
        from trellis.channels import Channels
        from trellis.contrib.redis import RedisChannels
        from trellis.testing import TestClient

        app = App()
        prefix = os.environ["REDIS_PREFIX"] + ":channels:"  # default "trellis:channels:"
        channels = app.install(Channels(RedisChannels(os.environ["REDIS_URL"], prefix=prefix)))


        async def roundtrip() -> str | bytes:
            async with channels.subscribe("lobby") as sub:
                await channels.publish("lobby", {"text": "hello"})  # to every process, as JSON
                async for message in sub:
                    return message


        with TestClient(app) as client:
            assert client.call(roundtrip) == '{"text":"hello"}'
        ```
    """

    default_prefix = "trellis:channels:"

    def __init__(
        self,
        url_or_client: str | Redis,
        prefix: str | None = None,
        *,
        connect_timeout: float = 5.0,
        timeout: float | None = 5.0,
        **options: Any,
    ) -> None:
        super().__init__(
            url_or_client,
            prefix=prefix,
            connect_timeout=connect_timeout,
            timeout=timeout,
            **options,
        )
        if self.client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ConfigurationError(
                "RedisChannels needs a client without decode_responses=True: binary messages"
                " must come back as bytes"
            )
        self._timeout = connect_timeout if timeout is None else max(connect_timeout, timeout)
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._streams: dict[str, set[_Stream]] = {}
        self._pending: dict[bytes, asyncio.Future[None]] = {}
        self._lock: asyncio.Lock | None = None
        self._retry_at = 0.0
        self._delay = _FIRST_DELAY

    def setup(self, app: App) -> None:
        """Not a plugin by itself: it is the backend of a ``Channels``, which is one."""
        raise ConfigurationError(
            "RedisChannels is a backend: install app.install(Channels(RedisChannels(url)))"
        )

    def attach(self, app: App) -> None:
        """Called by ``Channels.setup``: Redis outages in ``app`` become 503 answers."""
        install_outage_handler(app, self.client)

    # -- Backend -------------------------------------------------------------------------------

    async def publish(self, group: str, message: str | bytes) -> None:
        """Send ``message`` to every subscriber of ``group``, in every process.

        Raises:
            RedisUnavailableError: Redis did not take the message (it is down, or too slow).
        """
        if isinstance(message, str):
            payload = _TEXT + message.encode("utf-8", "surrogatepass")
        else:
            payload = _BINARY + bytes(message)
        try:
            await self.client.publish(self._channel(group), payload)
        except (RedisError, OSError) as exc:
            raise RedisUnavailableError(
                f"cannot publish to channel group {group!r}: Redis at {self.url} failed:"
                f" {exc or type(exc).__name__}"
            ) from exc

    async def subscribe(self, group: str) -> AsyncIterator[str | bytes]:
        """Start listening to ``group``; active (in Redis) when this returns.

        Raises:
            RedisUnavailableError: Redis cannot be reached now.
        """
        stream = _Stream()
        async with self._get_lock():
            streams = self._streams.get(group)
            if streams:
                streams.add(stream)
                return stream
            pubsub = await self._connection()
            channel = self._channel(group)
            confirmed = asyncio.get_running_loop().create_future()
            self._pending[channel] = confirmed
            try:
                await pubsub.subscribe(channel)
                if self._reader is None:
                    self._reader = asyncio.create_task(
                        self._read(pubsub), name="trellis.channels redis reader"
                    )
                async with asyncio.timeout(self._timeout):
                    await confirmed
            except (RedisError, OSError, TimeoutError) as exc:
                await self._drop_connection(exc)
                raise RedisUnavailableError(
                    f"cannot subscribe to channel group {group!r}: Redis at {self.url}"
                    f" failed: {exc or type(exc).__name__}"
                ) from exc
            finally:
                self._pending.pop(channel, None)
            self._streams[group] = {stream}
        return stream

    async def unsubscribe(self, group: str, stream: AsyncIterator[str | bytes]) -> None:
        """Stop ``stream``; the process leaves the Redis channel with its last subscriber."""
        streams = self._streams.get(group)
        if streams is None or not isinstance(stream, _Stream) or stream not in streams:
            return
        streams.discard(stream)
        stream._queue.put_nowait(None)
        if streams:
            return
        del self._streams[group]
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                await pubsub.unsubscribe(self._channel(group))
            except (RedisError, OSError) as exc:
                # The reader sees the broken connection too and cuts the others off.
                log.warning("channels: unsubscribing from %r failed: %s", group, exc)

    async def close(self) -> None:
        """End every subscription, close the subscriber connection (and a client it made)."""
        streams, self._streams = self._streams, {}
        for group_streams in streams.values():
            for stream in group_streams:
                stream._queue.put_nowait(None)
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await _close_quietly(pubsub)
        self._lock = None
        self._retry_at, self._delay = 0.0, _FIRST_DELAY
        await super().close()

    # -- machinery -----------------------------------------------------------------------------

    def _channel(self, group: str) -> bytes:
        return (self.prefix + group).encode("utf-8", "surrogatepass")

    def _get_lock(self) -> asyncio.Lock:
        # Made on first use, so that it belongs to the loop that runs the app.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _connection(self) -> PubSub:
        """The subscriber connection, made now if there is none (spaced out while Redis is down)."""
        if self._pubsub is not None:
            return self._pubsub
        now = time.monotonic()
        if now < self._retry_at:
            raise RedisUnavailableError(
                f"Redis at {self.url} is unreachable; the next attempt to reconnect is in"
                f" {self._retry_at - now:.1f} s"
            )
        pubsub = self.client.pubsub()
        try:
            async with asyncio.timeout(self._timeout):
                await pubsub.connect()  # type: ignore[no-untyped-call]
        except (RedisError, OSError, TimeoutError) as exc:
            await _close_quietly(pubsub)
            self._retry_at = now + self._delay
            log.warning(
                "channels: cannot connect to Redis at %s (%s); next attempt in %.1f s",
                self.url,
                exc or type(exc).__name__,
                self._delay,
            )
            self._delay = min(self._delay * 2, _MAX_DELAY)
            raise RedisUnavailableError(
                f"cannot connect to Redis at {self.url}: {exc or type(exc).__name__}"
            ) from exc
        connection: Any = pubsub.connection  # typed as None by redis-py, set by connect()
        if connection is not None:
            # The client's retry would reconnect the subscriber behind our back, and its
            # listeners would never learn that they missed messages: a lost connection must
            # reach _read and cut them off.
            connection.retry = Retry(NoBackoff(), 0)
        if self._delay > _FIRST_DELAY:
            log.info("channels: connected to Redis at %s again", self.url)
        self._retry_at, self._delay = 0.0, _FIRST_DELAY
        self._pubsub = pubsub
        return pubsub

    async def _read(self, pubsub: PubSub) -> None:
        prefix = len(self.prefix.encode("utf-8", "surrogatepass"))
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = message["type"]
                channel: bytes = message["channel"]
                if kind == "message":
                    data: bytes = message["data"]
                    group = channel[prefix:].decode("utf-8", "surrogatepass")
                    value: str | bytes = (
                        data[1:].decode("utf-8", "surrogatepass") if data[:1] == _TEXT else data[1:]
                    )
                    for stream in self._streams.get(group, ()):
                        stream._queue.put_nowait(value)
                elif kind == "subscribe":
                    confirmed = self._pending.get(channel)
                    if confirmed is not None and not confirmed.done():
                        confirmed.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._reader is asyncio.current_task():
                self._reader = None
            await self._drop_connection(exc)

    async def _drop_connection(self, exc: BaseException) -> None:
        """Forget the subscriber connection and fail every stream: their listeners reconnect."""
        pubsub, self._pubsub = self._pubsub, None
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        streams, self._streams = self._streams, {}
        if streams:
            log.warning(
                "channels: lost the subscriber connection to Redis at %s (%s); cutting off"
                " the listeners of %d group(s) so that they reconnect",
                self.url,
                exc or type(exc).__name__,
                len(streams),
            )
        error = RedisUnavailableError(
            f"lost the connection to Redis at {self.url}: {exc or type(exc).__name__}"
        )
        for group_streams in streams.values():
            for stream in group_streams:
                stream._queue.put_nowait(error)
        for confirmed in self._pending.values():
            if not confirmed.done():
                confirmed.set_exception(error)
        if pubsub is not None:
            await _close_quietly(pubsub)


async def _close_quietly(pubsub: PubSub) -> None:
    connection: Any = pubsub.connection
    try:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    except (RedisError, OSError):
        pass
    if connection is not None:
        # Back in the pool: commands on it retry as the client's other connections do.
        retry = pubsub.connection_pool.connection_kwargs.get("retry")
        connection.retry = copy.deepcopy(retry) if retry is not None else Retry(NoBackoff(), 0)
