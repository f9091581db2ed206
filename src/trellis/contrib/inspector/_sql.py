"""SQL statements through SQLAlchemy's engine events, for the request being recorded.

The listeners are attached to the ``Engine`` class, so they see every engine of the
application's ``Database`` (the async engines run on a sync ``Engine`` underneath), including
those it makes again after a restart. Outside a recorded request they return at once: a context
variable lookup per statement. They are attached while at least one inspector is started and
removed when the last one stops.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from trellis.contrib.inspector._context import current_record

__all__ = ["install", "uninstall"]

_START = "trellis.inspector.start"
_lock = threading.Lock()
_users = 0


def _database(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def _before(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if current_record.get() is None:
        return
    # One statement at a time runs on a connection: one slot is enough.
    conn.info[_START] = time.perf_counter()


def _after(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    started = conn.info.pop(_START, None)
    record = current_record.get()
    if record is None or started is None:
        return
    record.add_query(
        statement,
        parameters,
        started=started,
        ended=time.perf_counter(),
        database=_database(conn),
        executemany=executemany,
    )


def _error(context: ExceptionContext) -> None:
    record = current_record.get()
    conn = context.connection
    if record is None or conn is None or context.statement is None:
        return
    # An exception raised here would replace the application's own: never let one out (a
    # connection lost mid-statement may refuse even to show its info).
    try:
        started = conn.info.pop(_START, None)
        if started is None:
            return
        execution = context.execution_context
        record.add_query(
            context.statement,
            context.parameters,
            started=started,
            ended=time.perf_counter(),
            database=_database(conn),
            executemany=bool(execution is not None and execution.executemany),
            error=f"{type(context.original_exception).__name__}: {context.original_exception}",
        )
    except Exception:  # pragma: no cover - defensive
        return


def install() -> None:
    """Attach the listeners (counted: each ``install`` needs an ``uninstall``)."""
    global _users
    with _lock:
        _users += 1
        if _users == 1:
            event.listen(Engine, "before_cursor_execute", _before)
            event.listen(Engine, "after_cursor_execute", _after)
            event.listen(Engine, "handle_error", _error)


def uninstall() -> None:
    """Detach the listeners when no inspector needs them any more."""
    global _users
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0:
            event.remove(Engine, "before_cursor_execute", _before)
            event.remove(Engine, "after_cursor_execute", _after)
            event.remove(Engine, "handle_error", _error)


def installed() -> bool:
    """Whether the listeners are attached (for tests)."""
    return event.contains(Engine, "before_cursor_execute", _before)
