"""The per-request session, injected by type: ``db: Session`` (async) or ``db: SyncSession``.

The session belongs to one request. When the handler returns, it commits (a session that only
read just ends its transaction); when the handler
raises (an ``HTTPError`` too), it rolls back; both happen before the response is sent, so a
commit that fails (a unique constraint, say) still answers with an error: 409 for a
constraint, 503 when the database went away. Nested work uses savepoints
(``async with db.begin_nested():``); ``async with db.begin():`` opens the transaction
explicitly (before any other statement of the request).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, NoReturn

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as _SyncSession

from trellis.contrib.db.database import (
    Database,
    conflict_detail,
    database_of,
    unavailable_error,
)
from trellis.contrib.db.routing import LAZY_READS, has_writes
from trellis.exceptions import ConflictError
from trellis.handlers.params import Depends
from trellis.http.connection import HTTPConnection

__all__ = ["Session", "SyncSession", "request_session", "sync_request_session"]

log = logging.getLogger("trellis.db")


def _tenant(database: Database, conn: HTTPConnection) -> str | None:
    if database.router is None:
        return None
    return database.router(conn)


def _reraise(exc: BaseException) -> NoReturn:
    # The errors the client can do something about get their status; the rest stay 500s.
    if isinstance(exc, IntegrityError):
        raise ConflictError(conflict_detail(exc)) from exc
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        log.error("lost the database connection", exc_info=exc)
        raise unavailable_error() from exc
    raise exc


async def request_session(conn: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """Provide the request's async session; commit on success, roll back on error."""
    database = database_of(conn.app)
    session = database.session(bind=_tenant(database, conn))  # may refuse: before the lock
    if database.lazy_transactions:
        session.info[LAZY_READS] = True
    lock = database.test_lock if database.in_test_transaction else None
    if lock is not None:
        # A rolled-back test: concurrent requests would interleave savepoints on the one
        # connection, so they run one after the other.
        await lock.acquire()
    try:
        try:
            yield session
            if has_writes(session.sync_session):
                await session.commit()
        except BaseException as exc:
            await session.rollback()
            _reraise(exc)
    finally:
        await session.close()
        if lock is not None:
            lock.release()


def sync_request_session(conn: HTTPConnection) -> Iterator[_SyncSession]:
    """Provide the request's sync session (sync handlers); commit or roll back like the async."""
    database = database_of(conn.app)
    session = database.sync_session(bind=_tenant(database, conn))
    try:
        try:
            yield session
            if has_writes(session):
                session.commit()
        except BaseException as exc:
            session.rollback()
            _reraise(exc)
    finally:
        session.close()


#: The request's async session: ``async def handler(db: Session)``.
Session = Annotated[AsyncSession, Depends(request_session, scope="handler")]
#: The request's sync session, for sync handlers: ``def handler(db: SyncSession)``.
SyncSession = Annotated[_SyncSession, Depends(sync_request_session, scope="handler")]
