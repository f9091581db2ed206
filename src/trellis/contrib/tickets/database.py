"""``DatabaseTicketStore``: tickets in the ``trellis_ticket`` table.

The table has its own ``MetaData`` (it is never part of your models' autogenerate) and its
own migration branch, ``trellis_tickets``, added to the database when the store is set up:
``trellis db upgrade`` creates it.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Column, MetaData, String, Table, Text, delete, func, select
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncConnection

from trellis.contrib.db.database import Database
from trellis.contrib.db.models import NAMING_CONVENTION
from trellis.contrib.db.types import UTCDateTime
from trellis.contrib.tickets.models import Ticket
from trellis.contrib.tickets.stores import TicketStore, _check_page, cutoff, log, valid_id

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["MIGRATIONS_DIRECTORY", "MIGRATION_BRANCH", "TABLE", "DatabaseTicketStore"]

#: The label of the tickets' migration branch, and the directory of its revision files.
MIGRATION_BRANCH = "trellis_tickets"
MIGRATIONS_DIRECTORY = Path(__file__).parent / "migrations"
#: The table the shipped migration creates.
TABLE = "trellis_ticket"

_MYSQL = ("mysql", "mariadb")


def _define(name: str, metadata: MetaData) -> Table:
    info = {"migration_branch": MIGRATION_BRANCH} if name == TABLE else {}
    return Table(
        name,
        metadata,
        Column("ticket_id", String(64), primary_key=True),
        Column("created_at", UTCDateTime(), nullable=False, index=True),
        Column("exception_type", String(255), nullable=False),
        Column("path", Text(), nullable=False),
        # The whole ticket as JSON (TEXT stops at 64 KiB on MariaDB).
        Column("data", Text().with_variant(mysql.LONGTEXT(), *_MYSQL), nullable=False),
        info=info,
    )


class DatabaseTicketStore(TicketStore):
    """Tickets in a database table, ``trellis_ticket`` (one row per ticket).

    Besides the ticket as JSON (``data``) a row has the columns you may query yourself:
    ``ticket_id``, ``created_at`` (indexed), ``exception_type`` and ``path``.

    Args:
        database: The ``Database`` whose main database holds the table.
        table: The table name; the shipped migration creates ``trellis_ticket`` (with another
            name, create the table in a migration of yours: the branch is not added).
    """

    def __init__(self, database: Database, *, table: str = TABLE) -> None:
        self.database = database
        #: The store's own metadata: its table is not one of your models'.
        self.metadata = MetaData(naming_convention=NAMING_CONVENTION)
        self.table = _define(table, self.metadata)

    def setup(self, app: App) -> None:
        """Add the ``trellis_tickets`` migration branch (for the default table name)."""
        if self.table.name == TABLE:
            self.database.add_migration_branch(MIGRATION_BRANCH, MIGRATIONS_DIRECTORY)

    async def create_table(self) -> None:
        """Create the table if it does not exist (tests, quick starts; else migrations)."""
        await self.database.create_all(self.metadata)

    async def drop_table(self) -> None:
        """Drop the table."""
        await self.database.drop_all(self.metadata)

    @contextlib.asynccontextmanager
    async def _connection(self, *, read: bool = False) -> AsyncIterator[AsyncConnection]:
        # Through a session: a test's rolled_back() transaction covers the store too, and it
        # is always the primary database, never a replica. Reads take no write lock on SQLite:
        # they may run while the request reading them holds it on its own connection.
        async with self.database.session(sqlite_deferred=read) as session, session.begin():
            yield await session.connection()

    def _ticket(self, data: str) -> Ticket | None:
        try:
            return Ticket.from_dict(orjson.loads(data))
        except ValueError as exc:
            log.warning("unreadable ticket row in %s: %s", self.table.name, exc)
            return None

    async def save(self, ticket: Ticket) -> None:
        """Insert the ticket's row (one plain INSERT: ids are new and random)."""
        if not valid_id(ticket.id):
            raise ValueError(f"ticket id {ticket.id!r}: 1-64 characters of [A-Za-z0-9_-]")
        row: dict[str, Any] = {
            "ticket_id": ticket.id,
            "created_at": ticket.created_at,
            "exception_type": ticket.exception_type[:255],
            "path": ticket.path,
            "data": orjson.dumps(ticket.as_dict()).decode(),
        }
        table = self.table
        # No upsert: on MariaDB a DELETE of a missing row takes a gap lock, and concurrent
        # saves then deadlock.
        async with self._connection() as conn:
            await conn.execute(table.insert().values(row))

    async def get(self, ticket_id: str) -> Ticket | None:
        """The ticket ``ticket_id``, or ``None``."""
        if not valid_id(ticket_id):
            return None
        table = self.table
        async with self._connection(read=True) as conn:
            data = (
                await conn.execute(select(table.c.data).where(table.c.ticket_id == ticket_id))
            ).scalar()
        return None if data is None else self._ticket(data)

    async def list(
        self, limit: int = 50, offset: int = 0, since: datetime | None = None
    ) -> builtins.list[Ticket]:
        """Tickets, newest first (see ``TicketStore.list``)."""
        _check_page(limit, offset)
        table = self.table
        query = select(table.c.data).order_by(table.c.created_at.desc(), table.c.ticket_id.desc())
        if since is not None:
            query = query.where(table.c.created_at >= since)
        query = query.limit(limit).offset(offset)
        async with self._connection(read=True) as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [ticket for ticket in map(self._ticket, rows) if ticket is not None]

    async def count(self, since: datetime | None = None) -> int:
        """How many rows there are (created at or after ``since``)."""
        table = self.table
        query = select(func.count()).select_from(table)
        if since is not None:
            query = query.where(table.c.created_at >= since)
        async with self._connection(read=True) as conn:
            return int((await conn.execute(query)).scalar_one())

    async def delete(self, ticket_id: str) -> bool:
        """Delete one row; whether it was there."""
        if not valid_id(ticket_id):
            return False
        table = self.table
        async with self._connection() as conn:
            result = await conn.execute(delete(table).where(table.c.ticket_id == ticket_id))
        return bool(result.rowcount)

    async def purge(self, older_than: timedelta | datetime) -> int:
        """Delete the rows created before the cutoff; how many."""
        before = cutoff(older_than)
        table = self.table
        async with self._connection() as conn:
            result = await conn.execute(delete(table).where(table.c.created_at < before))
        return int(result.rowcount)

    async def close(self) -> None:
        """Close the database's connections (for the CLI's short-lived event loop)."""
        await self.database.dispose()

    def __repr__(self) -> str:
        return f"<DatabaseTicketStore {self.table.name} on {self.database!r}>"
