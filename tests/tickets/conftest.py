"""Fixtures of the tickets battery: every store test runs on files and on each database.

``where`` is ``"file"`` or the URL of an empty database (SQLite, PostgreSQL, MariaDB; the
servers come from tests/db/conftest.py, loaded from that file: conftest modules cannot import
each other). ``new_store()`` makes a store there, its table created.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tickets_helpers import run

from trellis.contrib.db import Database
from trellis.contrib.tickets import DatabaseTicketStore, FileTicketStore, TicketStore

_spec = importlib.util.spec_from_file_location(
    "_trellis_db_test_fixtures", Path(__file__).parents[1] / "db" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_db_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_db_fixtures)

server_databases = _db_fixtures.server_databases
backend = _db_fixtures.backend
db_url = _db_fixtures.db_url
BACKENDS: tuple[str, ...] = _db_fixtures.BACKENDS
_ENV: dict[str, str] = _db_fixtures._ENV


@pytest.fixture(params=("file", *BACKENDS))
def where(
    request: pytest.FixtureRequest, server_databases: dict[str, Any], tmp_path: Path
) -> Iterator[str]:
    """``"file"``, or the URL of an empty database on each backend."""
    kind = str(request.param)
    if kind == "file":
        yield "file"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'tickets.db'}"
    else:
        database = server_databases.get(kind)
        if database is None:
            pytest.skip(f"{_ENV[kind]} is not set: no {kind} server to test against")
        try:
            yield database.url
        finally:
            database.empty()


@pytest.fixture
def new_store(where: str, tmp_path: Path) -> Callable[[], TicketStore]:
    """Make a store at ``where`` (a new ``Database`` each time, few connections)."""

    def make() -> TicketStore:
        if where == "file":
            return FileTicketStore(tmp_path / "tickets")
        store = DatabaseTicketStore(Database(where, pool_size=2, max_overflow=3))
        run(store, store.create_table)
        return store

    return make
