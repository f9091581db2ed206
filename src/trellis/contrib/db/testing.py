"""Pytest fixtures for applications with a database: each test's changes rolled back.

Enable them in your ``conftest.py`` (they are not loaded for every pytest user)::

    pytest_plugins = ["trellis.contrib.db.testing"]

    @pytest.fixture
    def app() -> App:
        return create_app(database_url=os.environ["TEST_DATABASE_URL"])

Then ask for ``db_rollback`` next to the ``client`` fixtures of Trellis's pytest plugin::

    def test_create(client: TestClient, db_rollback: Database) -> None:
        client.post("/articles", json={"title": "Hello"})      # committed by the handler...
        assert client.get("/articles").json()["total"] == 1

    def test_empty(client: TestClient, db_rollback: Database) -> None:
        assert client.get("/articles").json()["total"] == 0    # ...rolled back after the test

    @pytest.mark.anyio
    async def test_direct(db_rollback: Database) -> None:
        async with db_rollback.transaction() as session:
            session.add(Article(title="Hello"))                  # rolled back as well

The fixtures:

- ``database``: the app's ``Database``, its schema brought up to date once per test session.
- ``db_rollback``: the same, with everything the test does through its sessions (the
  handlers' too) rolled back at the end.
- ``db_migrate`` (session scope): the function that brings a database's schema up to date;
  override it to do something else (seed data, ``create_all`` for a prototype).

How it works: ``Database.rolled_back()`` makes the app's start-up open one connection per
database and one transaction on it; every session joins that transaction through savepoints,
so a handler's commit is visible to the rest of the test, and the app's shut-down rolls it
back. The transaction is opened by the app's own start-up because a connection belongs to
the event loop that opened it, and ``TestClient`` runs the app on a loop of its own. In an
``async`` test without a client, the fixture opens it on the test's loop. Notes:

- Requests of one test share the test's connection: requests sent at the same time run one
  after the other. Test real concurrency without ``db_rollback``.
- Sync sessions (``SyncSession`` handlers, ``db.sync_session()``) cannot join the test's
  transaction: they raise ``ConfigurationError`` inside it. Test sync handlers against a
  database the test creates and drops.
- DDL in a test commits on MariaDB (it always does there): make tables in ``db_migrate``.
- In an ``async`` test, use the ``async_client`` fixture (on the test's loop), not ``client``.
- The migrations directory is the ``trellis_migrations`` ini setting (default
  ``migrations``, under the rootdir).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from trellis.contrib.db.database import Database, database_of

__all__ = ["database", "db_migrate", "db_rollback", "migrate"]

_MIGRATIONS_INI = "trellis_migrations"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``trellis_migrations`` ini setting: the migrations directory."""
    parser.addini(
        _MIGRATIONS_INI,
        "Trellis: the migrations directory the tests' databases are brought up to date with"
        " (relative to the rootdir)",
        default="migrations",
    )


def _run(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    # A thread and a loop of their own: nothing the coroutine opens outlives them, and no
    # loop of the test (anyio's) is disturbed.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, make()).result()


def migrate(database: Database, directory: str | Path = "migrations") -> None:
    """Bring ``database``'s schema up to date: ``upgrade`` to every head, once.

    With no migrations in ``directory`` (no ``env.py``), the models' tables are created
    (``Database.create_all()``) instead; batteries' tables then need a ``db_migrate`` of
    your own.
    """
    if (Path(directory) / "env.py").is_file():
        from trellis.contrib.db.migrations import Migrations

        Migrations(database, directory).upgrade()
        return

    async def create() -> None:
        try:
            await database.create_all()
        finally:
            await database.dispose()  # its pooled connections belong to this loop

    _run(create)


@pytest.fixture(scope="session")
def db_migrate(pytestconfig: pytest.Config) -> Callable[[Database], None]:
    """How a database's schema is made, called once per database and test session.

    The default applies the migrations of the ``trellis_migrations`` directory (``migrations``
    under the rootdir) with ``migrate()``. Override it in your ``conftest.py``::

        @pytest.fixture(scope="session")
        def db_migrate() -> Callable[[Database], None]:
            def make(database: Database) -> None:
                migrate(database)
                seed(database)
            return make
    """
    directory = pytestconfig.rootpath / str(pytestconfig.getini(_MIGRATIONS_INI))
    return lambda database: migrate(database, directory)


@pytest.fixture(scope="session")
def _trellis_db_migrated() -> set[str]:
    """The databases migrated in this test session (by their URLs)."""
    return set()


@pytest.fixture
def database(
    app: Any,
    db_migrate: Callable[[Database], None],
    _trellis_db_migrated: set[str],
) -> Database:
    """The ``Database`` of the ``app`` fixture, its schema up to date.

    The schema is made once per test session and database URL, whatever the scope of
    ``app``; nothing is rolled back (ask for ``db_rollback`` for that).
    """
    db = database_of(app)
    key = " ".join(url.render_as_string(hide_password=False) for url in db.urls.values())
    if key not in _trellis_db_migrated:
        db_migrate(db)
        _trellis_db_migrated.add(key)
    return db


@pytest.fixture
def db_rollback(database: Database, request: pytest.FixtureRequest) -> Iterator[Database]:
    """The app's ``Database``, everything the test does with it rolled back at the end.

    The ``client`` and ``async_client`` fixtures open the test's transaction when their app
    starts and roll it back when it stops; an ``async`` test that uses no client gets it
    opened on its own loop.
    """
    with database.rolled_back():
        if _is_async(request) and not {"client", "async_client"} & set(request.fixturenames):
            request.getfixturevalue("_trellis_db_async_rollback")
        yield database


@pytest.fixture
async def _trellis_db_async_rollback(database: Database) -> AsyncIterator[None]:
    """The test's transaction on the test's own loop (an async test with no client)."""
    began = not database.in_test_transaction
    if began:
        await database.begin_rollback()
    try:
        yield
    finally:
        # async_client's shut-down may have rolled back already: then this is a no-op.
        await database.end_rollback()
        if began:
            await database.dispose()  # the engines' connections belong to this loop


@pytest.fixture(autouse=True)
def _trellis_db_rollback_first(request: pytest.FixtureRequest) -> None:
    """Set ``db_rollback`` up before the client fixtures, whatever order the test names them.

    The app must start inside ``rolled_back()``, and autouse fixtures come first.
    """
    if "db_rollback" in request.fixturenames:
        request.getfixturevalue("db_rollback")


def _is_async(request: pytest.FixtureRequest) -> bool:
    function = getattr(request, "function", None)
    return (
        function is not None
        and inspect.iscoroutinefunction(function)
        and "anyio_backend" in request.fixturenames
    )
