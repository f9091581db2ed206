"""Drive an ASGI application's lifespan protocol, as a server does.

The test clients run the application under test with it, and an ``App`` runs the lifespan of
every application mounted in it (``app.mount("/legacy", other)``), so their start-up and
shut-down happen with the app's own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from trellis.types import ASGIApp, Message

__all__ = ["Lifespan", "LifespanError"]

log = logging.getLogger("trellis")


class LifespanError(RuntimeError):
    """The app reported that its start-up or shut-down failed."""


class Lifespan:
    """The lifespan of one ASGI application: ``await startup()``, later ``await shutdown()``.

    An application that does not speak the protocol (it returns, or raises, before answering
    ``lifespan.startup``, or answers with something else than a lifespan message) is taken as
    not needing it, as servers do: ``supported`` is then false and ``shutdown()`` does nothing.

    Args:
        app: The application.
        state: The ``scope["state"]`` it may fill at start-up (a fresh dict by default).
    """

    def __init__(self, app: ASGIApp, state: dict[str, Any] | None = None) -> None:
        self.app = app
        self.state: dict[str, Any] = {} if state is None else state
        self.supported = True
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        try:
            await self.app(scope, self._to_app.get, self._from_app.put)
        finally:
            await self._from_app.put(None)  # the app is done: whoever waits stops waiting

    async def _finished(self) -> BaseException | None:
        """Wait for the app's call to end; what it raised, if anything."""
        assert self._task is not None
        await asyncio.wait([self._task])
        return None if self._task.cancelled() else self._task.exception()

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises:
            LifespanError: the app answered ``lifespan.startup.failed``.
        """
        self._task = asyncio.ensure_future(self._run())
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        if message is None or not message["type"].startswith("lifespan."):
            # It returned, raised, or answered as if the scope were a request (some raw apps
            # answer every scope alike): it has no lifespan.
            self.supported = False
            if message is not None:
                self._task.cancel()
            error = await self._finished()
            log.debug("%r does not use the ASGI lifespan protocol (%r)", self.app, error)
            return
        if message["type"] != "lifespan.startup.complete":
            await self._finished()
            raise LifespanError(message.get("message") or message["type"])

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait until the app has shut down.

        Raises:
            LifespanError: the app answered ``lifespan.shutdown.failed``, or stopped without
                answering (what it raised is the cause).
        """
        if not self.supported or self._task is None:
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        message = await self._from_app.get()
        error = await self._finished()
        if message is None:
            raise LifespanError(
                f"the application stopped during its shut-down: {error!r}"
            ) from error
        if message["type"] != "lifespan.shutdown.complete":
            raise LifespanError(message.get("message") or message["type"])
