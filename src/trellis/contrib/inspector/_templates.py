"""Template renders, through the template class of the application's Jinja2 environment.

Jinja2 makes every template of an environment from ``env.template_class``; the inspector
swaps in a subclass of the class the environment had, whose ``render`` and ``render_async``
note the name, the time taken and the context's names when a request is being recorded. Other
code sees the same templates, rendering the same way; nothing else of the environment changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import jinja2

from trellis.contrib.inspector._context import current_record

if TYPE_CHECKING:
    from trellis.contrib.inspector.records import RequestRecord

__all__ = ["instrument", "is_instrumented"]

_MARK = "_trellis_inspector"


def _keys(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    # Template.render takes what dict() takes.
    try:
        return [str(key) for key in dict(*args, **kwargs)]
    except (TypeError, ValueError):
        return []


@contextmanager
def _noted(
    template: jinja2.Template, record: RequestRecord, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Iterator[None]:
    """Tell ``record`` of the render this block does: its time, and its error if it fails."""
    started = time.perf_counter()
    error: str | None = None
    try:
        yield
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record.add_template(
            template.name or "<string>",
            _keys(args, kwargs),
            started=started,
            ended=time.perf_counter(),
            error=error,
        )


class _RecordingTemplate(jinja2.Template):
    """A template that tells the request's record when it is rendered."""

    _trellis_inspector = True

    def render(self, *args: Any, **kwargs: Any) -> str:
        record = current_record.get()
        if record is None:
            return super().render(*args, **kwargs)
        with _noted(self, record, args, kwargs):
            return super().render(*args, **kwargs)

    async def render_async(self, *args: Any, **kwargs: Any) -> str:
        record = current_record.get()
        if record is None:
            return await super().render_async(*args, **kwargs)
        with _noted(self, record, args, kwargs):
            return await super().render_async(*args, **kwargs)


def is_instrumented(env: jinja2.Environment) -> bool:
    """Whether ``env``'s renders are recorded already."""
    return bool(getattr(env.template_class, _MARK, False))


def instrument(env: jinja2.Environment) -> None:
    """Record the renders of ``env``'s templates (idempotent).

    The new class derives from the environment's own (``NativeTemplate`` stays native); the
    template cache is emptied so templates loaded before come back with the new class.
    """
    if is_instrumented(env):
        return
    base = env.template_class
    env.template_class = type(f"Recording{base.__name__}", (_RecordingTemplate, base), {})
    if env.cache is not None:
        env.cache.clear()
