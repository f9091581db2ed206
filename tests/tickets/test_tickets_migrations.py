"""The ``trellis_tickets`` migration branch creates exactly what ``DatabaseTicketStore`` uses."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from types import ModuleType

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect
from tickets_helpers import SECRET_KEY

from trellis import App
from trellis.contrib.db import Database
from trellis.contrib.tickets import DatabaseTicketStore, Tickets
from trellis.contrib.tickets.database import MIGRATION_BRANCH, MIGRATIONS_DIRECTORY, TABLE


def load_revision() -> ModuleType:
    path = MIGRATIONS_DIRECTORY / "0001_trellis_tickets.py"
    spec = importlib.util.spec_from_file_location("trellis_tickets_0001", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_branch_is_an_alembic_branch() -> None:
    scripts = ScriptDirectory(
        str(MIGRATIONS_DIRECTORY), version_locations=[str(MIGRATIONS_DIRECTORY)]
    )
    head = scripts.get_revision(f"{MIGRATION_BRANCH}@head")
    assert head is not None
    assert head.revision == "trellis_tickets_0001"
    assert head.branch_labels == {MIGRATION_BRANCH}
    assert head.down_revision is None


def test_installing_adds_the_branch_and_no_model() -> None:
    app = App(secret_key=SECRET_KEY)
    db = app.install(Database("sqlite://"))
    store = DatabaseTicketStore(db)
    app.install(Tickets(store))
    assert db.migration_branches == {MIGRATION_BRANCH: MIGRATIONS_DIRECTORY}
    assert store.table.info == {"migration_branch": MIGRATION_BRANCH}
    assert TABLE not in [t.name for t in db.tables_for()]  # not one of the models
    assert repr(store).startswith("<DatabaseTicketStore trellis_ticket on <Database default=")


def test_a_custom_table_brings_no_migrations() -> None:
    app = App(secret_key=SECRET_KEY)
    db = app.install(Database("sqlite://"))
    app.install(Tickets(DatabaseTicketStore(db, table="my_tickets")))
    assert db.migration_branches == {}


@pytest.fixture
def sync_database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    try:
        yield db
    finally:
        db.sync_engine_for().dispose()


def test_the_revision_creates_what_the_store_defines(sync_database: Database) -> None:
    revision = load_revision()
    expected = MetaData()
    DatabaseTicketStore(sync_database).table.to_metadata(expected)
    engine = sync_database.sync_engine_for()
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        revision.upgrade()
    with engine.connect() as conn:
        inspector = inspect(conn)
        assert TABLE in inspector.get_table_names()
        assert "ix_trellis_ticket_created_at" in {ix["name"] for ix in inspector.get_indexes(TABLE)}
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, expected) == []
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        revision.downgrade()
    with engine.connect() as conn:
        assert TABLE not in inspect(conn).get_table_names()
