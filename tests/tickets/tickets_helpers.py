"""Helpers of the tickets tests: run store calls, build apps, read what a store holds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from trellis import App
from trellis.contrib.tickets import DatabaseTicketStore, FileTicketStore, Tickets, TicketStore

SECRET_KEY = "k" * 40
T = TypeVar("T")


def run(store: TicketStore, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()`` on an event loop of its own, then close the store's connections."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await store.close()

    return anyio.run(main)


def ticket_app(store: TicketStore, **options: Any) -> tuple[App, Tickets]:
    """A production app with ``Tickets(store)`` (and the store's ``Database``)."""
    app = App(secret_key=SECRET_KEY, debug=options.pop("debug", False))
    if isinstance(store, DatabaseTicketStore):
        app.install(store.database)
    tickets = app.install(Tickets(store, **options))
    return app, tickets


def stored_text(store: TicketStore) -> str:
    """Everything the store holds, as text: the files, or every column of every row."""
    if isinstance(store, FileTicketStore):
        if not store.directory.is_dir():
            return ""
        return "\n".join(p.read_text(encoding="utf-8") for p in store.directory.iterdir())
    assert isinstance(store, DatabaseTicketStore)

    async def rows() -> str:
        from sqlalchemy import select

        async with store.database.engine.connect() as conn:
            result = await conn.execute(select(store.table))
            return "\n".join(repr(tuple(row)) for row in result)

    return run(store, rows)
