"""Background tasks: work that runs after the response has been sent.

Declare a parameter of type ``BackgroundTasks`` and add tasks to it; they run in order once the
client has its response, before the request's dependencies clean up (so a task may still use
them). A task that fails is logged on ``trellis.error`` with the request id, and the next task
still runs: errors are reported, never swallowed silently, and never reach the client.

Example:
    ```python
    from trellis import App
    from trellis.background import BackgroundTasks

    app = App()

    def send_welcome(address: str) -> None: ...

    @app.post("/signup")
    async def signup(address: str, tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(send_welcome, address)
        return {"ok": True}
    ```
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

__all__ = ["BackgroundTasks"]

log = logging.getLogger("trellis.error")


class BackgroundTasks:
    """The tasks to run after this request's response is sent."""

    __slots__ = ("_executor", "_tasks")

    def __init__(self, executor: Executor | None = None) -> None:
        self._tasks: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self._executor = executor

    def add_task(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` after the response (sync functions in the thread pool)."""
        if not callable(fn):
            raise TypeError(f"add_task() needs a callable, got {fn!r}")
        self._tasks.append((fn, args, kwargs))

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, request_id: str | None = None) -> None:
        """Run every task in order; a failing task is logged and the next one still runs."""
        loop = asyncio.get_running_loop()
        while self._tasks:
            fn, args, kwargs = self._tasks.pop(0)
            try:
                if inspect.iscoroutinefunction(fn):
                    await fn(*args, **kwargs)
                else:
                    ctx = contextvars.copy_context()
                    call = functools.partial(ctx.run, fn, *args, **kwargs)
                    result = await loop.run_in_executor(self._executor, call)
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                name = getattr(fn, "__qualname__", repr(fn))
                log.error(
                    "background task %s failed (request id %s)",
                    name,
                    request_id,
                    exc_info=exc,
                    extra={"request_id": request_id},
                )
