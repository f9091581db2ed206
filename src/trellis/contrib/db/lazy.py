"""Lazy transactions on PostgreSQL: a request that only reads sends no BEGIN and no ROLLBACK.

A request session's transaction normally costs two extra round trips (``BEGIN`` before the
first statement, ``COMMIT`` or ``ROLLBACK`` at the end). Under PostgreSQL's default isolation,
READ COMMITTED, every statement sees the data committed before it started whether or not it
runs in a transaction, so plain reads gain nothing from one. With asyncpg, the request's
connection therefore starts in autocommit; the first statement that is not a plain ``SELECT``
(a write, ``SELECT ... FOR UPDATE``, a savepoint, text SQL) turns it back, and the driver opens
the transaction right before that statement. From there on everything, reads included, is in
the transaction, committed or rolled back with the request as usual.

It applies only to the per-request sessions, only on asyncpg, and only when the server's
isolation level is READ COMMITTED (``Database(lazy_transactions=False)`` turns it off). The
connection is restored when it goes back to the pool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

__all__ = ["defer_begin", "install"]

_KEY = "trellis.lazy"


def _supported(connection: Connection) -> bool:
    dialect = connection.dialect
    return (
        dialect.name == "postgresql"
        and dialect.driver == "asyncpg"
        and getattr(dialect, "default_isolation_level", None) == "READ COMMITTED"
        and "isolation_level" not in connection.get_execution_options()
    )


def defer_begin(connection: Connection) -> None:
    """Put ``connection`` in autocommit until its first statement that is not a plain read."""
    if not _supported(connection):
        return
    fairy = connection.connection
    dbapi = fairy.dbapi_connection
    if dbapi is None or getattr(dbapi, "_transaction", True) is not None:
        return  # already in a transaction (a test's outer one, say): leave it
    dbapi.autocommit = True
    fairy.info[_KEY] = True


def _plain_read(context: Any) -> bool:
    compiled = getattr(context, "compiled", None)
    statement = getattr(compiled, "statement", None)
    return (
        isinstance(statement, Select)
        and statement._for_update_arg is None
        and not statement._independent_ctes  # a CTE may hide an INSERT/UPDATE
    )


def install(engine: Engine) -> None:
    """Add the statement check and the pool reset to an engine (once per engine)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _begin_before_writes(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        fairy = conn.connection
        if fairy.info.get(_KEY) and not _plain_read(context):
            # The driver sends BEGIN right before this statement.
            fairy.dbapi_connection.autocommit = False  # type: ignore[union-attr]
            fairy.info[_KEY] = False

    @event.listens_for(engine, "checkin")
    def _restore(dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(_KEY, None) is not None and dbapi_connection is not None:
            dbapi_connection.autocommit = False
