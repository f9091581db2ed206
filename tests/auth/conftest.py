"""Fixtures of the auth battery's tests: databases (the data battery's), apps, users.

The database fixtures are tests/db/conftest.py's (``db_url`` runs a test on SQLite,
PostgreSQL and MariaDB), loaded from that file: conftest modules cannot import each other.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from auth_helpers import create_auth_tables

from trellis.contrib.db import Database

_spec = importlib.util.spec_from_file_location(
    "_trellis_db_test_fixtures", Path(__file__).parents[1] / "db" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_db_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_db_fixtures)

server_databases = _db_fixtures.server_databases
backend = _db_fixtures.backend
db_url = _db_fixtures.db_url


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    """A ``Database`` on ``db_url`` with the auth tables (few connections: servers are shared)."""
    db = Database(db_url, pool_size=2, max_overflow=3)
    await create_auth_tables(db)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def sync_database(db_url: str) -> Iterator[Database]:
    """``database`` for sync tests (``TestClient``): the tables made, no connection left open.

    The app's own event loop (the client's) opens the connections it needs.
    """
    import anyio

    db = Database(db_url, pool_size=2, max_overflow=3)

    async def prepare() -> None:
        try:
            await create_auth_tables(db)
        finally:
            await db.dispose()  # on this loop: its connections die with it

    anyio.run(prepare)
    try:
        yield db
    finally:
        anyio.run(db.dispose)
