"""Migrations: Alembic behind ``Migrations``, on SQLite, PostgreSQL and MariaDB.

Each test has its own ``MetaData`` (never ``Model.metadata``, which every test module shares)
and its own migrations directory in ``tmp_path``; what is in the database is read with
SQLAlchemy's inspector on a connection of its own.
"""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from trellis.contrib.db import NAMING_CONVENTION, Database, UTCDateTime
from trellis.contrib.db.migrations import (
    BRANCH_KEY,
    MigrationCheckError,
    Migrations,
    MigrationsError,
)
from trellis.contrib.db.urls import sync_url


class Status(enum.Enum):
    draft = "draft"
    published = "published"


class Level(enum.Enum):
    low = "low"
    high = "high"


def schema(*, v2: bool = False) -> MetaData:
    """The models of a small project; ``v2`` adds a table, and columns with an enum type."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table(
        "author",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("email", String(255), nullable=False, unique=True),
        Column("name", String(255), nullable=False, index=True),
        Column("joined", UTCDateTime(), nullable=False),
        Column("status", Enum(Status), nullable=False),
    )
    Table(
        "note",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("body", Text, nullable=False),
        Column("author_id", ForeignKey("author.id"), nullable=False, index=True),
        Column("price", Numeric(10, 2)),
        Column("done", Boolean, nullable=False, default=False),
        *([Column("level", Enum(Level)), Column("rating", Integer)] if v2 else []),
    )
    if v2:
        Table(
            "tag",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("label", String(50), nullable=False, unique=True),
        )
    return metadata


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A sync engine of its own on the test's database, to look at the schema."""
    engine = create_engine(sync_url(db_url), poolclass=NullPool)
    yield engine
    engine.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def columns(engine: Engine, table: str) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in inspect(engine).get_columns(table)}


def migrations(url: str, directory: Path, metadata: MetaData, **options: object) -> Migrations:
    database = Database(url, check_on_startup=False, **options)  # type: ignore[arg-type]
    return Migrations(database, directory, metadata=metadata)


def revisions(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.py"))


# -- round trip -------------------------------------------------------------------------------


def test_upgrade_downgrade_base_upgrade_round_trip(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    m = migrations(db_url, tmp_path / "migrations", schema())
    made = m.init()
    assert {p.name for p in made} == {"env.py", "script.py.mako", "README.md", "versions"}
    assert m.upgrade() == {"default": []}  # no revision yet: nothing to do
    written = m.makemigrations("initial")
    path = written["default"]
    assert path.parent == tmp_path / "migrations" / "versions"
    assert path.name.endswith("_initial.py")
    source = path.read_text()
    assert "trellis.contrib.db.types.UTCDateTime()" in source
    assert "import trellis.contrib.db.types" in source
    assert "branch_labels: str | Sequence[str] | None = ('app',)" in source
    assert tables(engine) == set()

    applied = m.upgrade()["default"]
    assert [(r.message, r.branches, r.is_head) for r in applied] == [("initial", ("app",), True)]
    assert tables(engine) == {"author", "note"}
    assert m.current() == {"default": (applied[0].id,)}
    assert {i["name"] for i in inspect(engine).get_indexes("note")} >= {"ix_note_author_id"}

    reverted = m.downgrade("base")["default"]
    assert [r.id for r in reverted] == [applied[0].id]
    assert tables(engine) == set()
    assert m.current() == {"default": ()}

    m.upgrade()
    assert tables(engine) == {"author", "note"}
    m.check()  # and right after upgrade, the models and the database agree


def test_makemigrations_on_unchanged_models_writes_nothing(db_url: str, tmp_path: Path) -> None:
    m = migrations(db_url, tmp_path / "migrations", schema())
    m.init()
    m.makemigrations("initial")
    m.upgrade()
    assert m.makemigrations() == {}
    assert m.makemigrations("again") == {}
    assert len(revisions(tmp_path / "migrations" / "versions")) == 1
    m.check()


def test_check_fails_after_a_model_change_and_passes_after_makemigrations(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    first = migrations(db_url, directory, schema())
    first.init()
    first.makemigrations("initial")
    first.upgrade()

    m = migrations(db_url, directory, schema(v2=True))
    with pytest.raises(MigrationCheckError) as caught:
        m.check()
    problems = caught.value.differences["default"]
    assert "add table tag" in problems
    assert any(line.startswith("add column note.level") for line in problems)
    assert any(line.startswith("add column note.rating") for line in problems)
    assert "trellis db makemigrations" in str(caught.value)

    path = m.makemigrations()["default"]
    assert m.history()["default"][0].message == "create tag, add note.level, add note.rating"
    assert "_create_tag_add_note_level_" in path.name  # the slug is cut at 40 characters
    with pytest.raises(MigrationCheckError) as caught:  # written, not applied yet
        m.check()
    assert caught.value.differences["default"][0].endswith(
        "is not applied (run `trellis db upgrade`)"
    )

    m.upgrade()
    m.check()
    assert set(columns(engine, "note")) >= {"level", "rating"}
    # The new enum column goes and comes back: its type (PostgreSQL) is dropped and re-created.
    m.downgrade("-1")
    assert "level" not in columns(engine, "note")
    assert tables(engine) == {"author", "note"}
    m.upgrade()
    m.check()
    m.downgrade("base")
    assert tables(engine) == set()
    m.upgrade()
    m.check()


def test_an_enum_type_shared_by_two_tables_outlives_one_of_them(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    def shared(*names: str) -> MetaData:
        metadata = MetaData(naming_convention=NAMING_CONVENTION)
        for name in names:
            Table(name, metadata, Column("id", Integer, primary_key=True), Column("s", Enum(Level)))
        return metadata

    directory = tmp_path / "migrations"
    both = migrations(db_url, directory, shared("one", "two"))
    both.init()
    both.makemigrations("both")
    both.upgrade()
    m = migrations(db_url, directory, shared("one"))
    source = m.makemigrations("drop two")["default"].read_text()
    if engine.dialect.name == "postgresql":  # elsewhere the type is the column's own
        assert "drop_enum('level')" in source
    m.upgrade()  # "one" still uses the type: kept
    m.check()
    m.downgrade("-1")  # "two" again, on the type that is there
    assert tables(engine) == {"one", "two"}
    m.downgrade("base")  # the type goes with its last table...
    m.upgrade()  # ...and comes back
    assert tables(engine) == {"one"}
    m.check()


def test_makemigrations_needs_an_up_to_date_database(db_url: str, tmp_path: Path) -> None:
    m = migrations(db_url, tmp_path / "migrations", schema())
    m.init()
    m.makemigrations("initial")
    with pytest.raises(MigrationsError, match=r"not up to date .* run `trellis db upgrade`"):
        m.makemigrations("more")


# -- SQLite batch mode ------------------------------------------------------------------------


def item_schema(*, v2: bool = False) -> MetaData:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table(
        "item",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(100) if v2 else String(50), nullable=v2),
        *([] if v2 else [Column("legacy", Integer)]),
    )
    Table(
        "part",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("item_id", ForeignKey("item.id", ondelete="CASCADE"), nullable=False),
    )
    return metadata


def test_sqlite_batch_mode_drops_and_alters_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'batch.db'}"
    directory = tmp_path / "migrations"
    first = migrations(url, directory, item_schema())
    first.init()
    first.makemigrations("initial")
    first.upgrade()
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO item (id, name, legacy) VALUES (1, 'bolt', 7)"))
            conn.execute(text("INSERT INTO part (id, item_id) VALUES (1, 1)"))

        m = migrations(url, directory, item_schema(v2=True))
        with pytest.raises(MigrationCheckError) as caught:
            m.check()
        assert sorted(caught.value.differences["default"]) == [
            "change type of item.name: VARCHAR(50) -> VARCHAR(100);"
            " change nullable of item.name: False -> True",
            "remove column item.legacy (INTEGER)",
        ]
        path = m.makemigrations("widen name, drop legacy")["default"]
        source = path.read_text()
        assert "with op.batch_alter_table('item'" in source
        assert "batch_op.drop_column('legacy')" in source
        assert "batch_op.alter_column('name'" in source
        m.upgrade()
        m.check()
        item = columns(engine, "item")
        assert set(item) == {"id", "name"}
        assert item["name"]["nullable"] is True
        assert getattr(item["name"]["type"], "length", None) == 100
        with engine.connect() as conn:  # the table was copied: rows kept, the part's too
            assert conn.execute(text("SELECT id, name FROM item")).all() == [(1, "bolt")]
            assert conn.execute(text("SELECT item_id FROM part")).all() == [(1,)]

        m.downgrade("-1")
        assert set(columns(engine, "item")) == {"id", "name", "legacy"}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM part")).scalar() == 1
    finally:
        engine.dispose()


# -- battery branches -------------------------------------------------------------------------

FAKE_BRANCH = '''
    """The fake battery's table."""

    import sqlalchemy as sa
    from alembic import op

    revision = "fake_0001"
    down_revision = None
    branch_labels = ("fake",)
    depends_on = None


    def upgrade() -> None:
        op.create_table(
            "fake_store",
            sa.Column("key", sa.String(100), primary_key=True),
            sa.Column("value", sa.Text()),
        )


    def downgrade() -> None:
        op.drop_table("fake_store")
'''


@pytest.mark.parametrize("declared", [False, True], ids=["own-metadata", "marked-table"])
def test_a_battery_branch_is_applied_and_never_regenerated(
    db_url: str, engine: Engine, tmp_path: Path, declared: bool
) -> None:
    branch = tmp_path / "fake_migrations"
    branch.mkdir()
    (branch / "0001_fake.py").write_text(textwrap.dedent(FAKE_BRANCH))
    metadata = schema()
    if declared:  # the battery's model is on the project's metadata, marked as the branch's
        Table(
            "fake_store",
            metadata,
            Column("key", String(200), primary_key=True),  # differs: still not ours to alter
            info={BRANCH_KEY: "fake"},
        )
    m = migrations(db_url, tmp_path / "migrations", metadata)
    m.database.add_migration_branch("fake", branch)
    m.init()

    applied = m.upgrade()["default"]
    assert [(r.id, r.branches) for r in applied] == [("fake_0001", ("fake",))]
    assert tables(engine) == {"fake_store"}

    path = m.makemigrations("initial")["default"]
    source = path.read_text()
    assert "fake_store" not in source
    assert "down_revision: str | Sequence[str] | None = None" in source  # a base of its own
    m.upgrade()
    assert tables(engine) == {"fake_store", "author", "note"}
    assert m.makemigrations() == {}
    m.check()
    assert sorted(m.current()["default"]) == sorted(["fake_0001", path.name.split("_")[2]])
    history = m.history()["default"]
    assert {r.id: r.branches for r in history}["fake_0001"] == ("fake",)

    m.downgrade("base")
    assert tables(engine) == set()


# -- what autogenerate drops ------------------------------------------------------------------


def test_tables_of_removed_models_are_dropped_and_unknown_tables_left(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'drop.db'}"
    directory = tmp_path / "migrations"
    first = migrations(url, directory, schema(v2=True))
    first.init()
    first.makemigrations("initial")
    first.upgrade()
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE legacy (id INTEGER PRIMARY KEY)"))
        smaller = schema(v2=True)
        smaller.remove(smaller.tables["tag"])
        m = migrations(url, directory, smaller)
        with pytest.raises(MigrationCheckError, match="remove table tag"):
            m.check()
        source = m.makemigrations()["default"].read_text()
        assert "op.drop_table('tag')" in source
        assert "legacy" not in source
        m.upgrade()
        assert tables(engine) == {"author", "note", "legacy"}
        m.check()
    finally:
        engine.dispose()


# -- several databases ------------------------------------------------------------------------


def test_each_database_has_its_own_history(tmp_path: Path) -> None:
    main_url = f"sqlite:///{tmp_path / 'main.db'}"
    events_url = f"sqlite:///{tmp_path / 'events.db'}"
    metadata = schema()
    Table(
        "event",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime(), nullable=False),
        info={"bind_key": "events"},
    )
    directory = tmp_path / "migrations"
    m = migrations(main_url, directory, metadata, binds={"events": events_url})
    made = m.init()
    assert directory / "events" / "versions" in made
    written = m.makemigrations("initial")
    assert written["default"].parent == directory / "versions"
    assert written["events"].parent == directory / "events" / "versions"
    assert "event" not in written["default"].read_text()
    assert "author" not in written["events"].read_text()
    m.upgrade()
    engines = {
        name: create_engine(sync_url(url), poolclass=NullPool)
        for name, url in (("default", main_url), ("events", events_url))
    }
    try:
        assert tables(engines["default"]) == {"author", "note"}
        assert tables(engines["events"]) == {"event"}
        assert m.makemigrations() == {}
        m.check()
        with pytest.raises(MigrationsError, match="is for one database"):
            m.downgrade("-1")
        m.downgrade("-1", bind="events")
        assert tables(engines["events"]) == set()
        assert tables(engines["default"]) == {"author", "note"}
        with pytest.raises(MigrationCheckError) as caught:
            m.check()
        assert list(caught.value.differences) == ["events"]
        assert m.upgrade(bind="events")["events"][0].message == "initial"
        with pytest.raises(MigrationsError, match="no database named 'nope'"):
            m.current(bind="nope")
    finally:
        for engine in engines.values():
            engine.dispose()


# -- errors -----------------------------------------------------------------------------------


def test_without_init_the_error_says_to_run_init(tmp_path: Path) -> None:
    m = migrations(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "migrations", schema())
    for call in (m.upgrade, m.current, m.check, m.makemigrations, m.history):
        with pytest.raises(MigrationsError, match="run `trellis db init` first"):
            call()


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://app:s3cret@127.0.0.1:9/nowhere"
    m = migrations(url, tmp_path / "migrations", schema(), connect_timeout=2)
    m.init()
    with pytest.raises(MigrationsError) as caught:
        m.upgrade()
    message = str(caught.value)
    assert "cannot connect to the database 'default' at postgresql+asyncpg://app:***@" in message
    assert "s3cret" not in message


def test_a_database_at_a_revision_no_file_has(tmp_path: Path) -> None:
    m = migrations(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "migrations", schema())
    m.init()
    m.makemigrations("initial")["default"].unlink()
    m.upgrade()
    assert m.current()["default"] == ()
    m.makemigrations("again")
    m.upgrade()
    revisions(tmp_path / "migrations" / "versions")[0].unlink()
    for call in (m.check, m.upgrade, m.makemigrations):
        with pytest.raises(MigrationsError, match="database 'default': Can't locate revision"):
            call()


def test_an_empty_revision_is_written_on_request(tmp_path: Path) -> None:
    m = migrations(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "migrations", schema())
    m.init()
    path = m.makemigrations("data fix", autogenerate=False)["default"]
    assert path.name.endswith("_data_fix.py")
    assert "def upgrade() -> None:" in path.read_text()
    assert m.history()["default"][0].message == "data fix"


def test_env_py_refuses_to_run_outside_trellis(tmp_path: Path) -> None:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    m = migrations(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "migrations", schema())
    m.init()
    config = Config()
    config.set_main_option("script_location", str(tmp_path / "migrations"))
    script = ScriptDirectory.from_config(config)
    with EnvironmentContext(config, script), pytest.raises(MigrationsError, match="trellis db"):
        script.run_env()


@pytest.mark.anyio
async def test_runs_from_async_code(tmp_path: Path) -> None:
    # A running event loop: the async engine gets a loop of its own in a worker thread.
    m = migrations(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "migrations", schema())
    m.init()
    m.makemigrations("initial")
    assert m.upgrade()["default"][0].message == "initial"
