"""The table-backed cache and session store, on SQLite, PostgreSQL and MariaDB.

Time is a fake clock the test moves; concurrency is real (tasks on their own connections).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, func, inspect, select
from sqlalchemy.exc import OperationalError

from trellis import App
from trellis.contrib.db import Database
from trellis.contrib.db.stores import (
    MIGRATION_BRANCH,
    MIGRATIONS_DIRECTORY,
    CacheBackend,
    DatabaseCache,
    DatabaseSessionStore,
    SessionBackend,
)
from trellis.exceptions import ConfigurationError

UNICODE = 'héllo wörld ✓ 日本語 🎉 \u0000 "quoted" \\ back'


class Clock:
    """A clock that only moves when told."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url, pool_size=10, max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def cache(database: Database, clock: Clock) -> DatabaseCache:
    store = DatabaseCache(database, clock=clock)
    await store.create_table()
    return store


@pytest.fixture
async def sessions(database: Database, clock: Clock) -> DatabaseSessionStore:
    store = DatabaseSessionStore(database, clock=clock)
    await store.create_table()
    return store


async def rows(store: DatabaseCache | DatabaseSessionStore) -> int:
    async with store.database.session() as session:
        return int(
            (await session.execute(select(func.count()).select_from(store.table))).scalar_one()
        )


# -- cache --------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value",
    [
        {"text": UNICODE, "nested": {"list": [1, 2.5, None, True, "x"]}},
        [UNICODE, {"a": []}],
        UNICODE,
        "",
        3.25,
        0,
        -17,
        2**63 - 1,
        -(2**63),
        2**63,  # beyond BIGINT: kept as JSON
        True,
        False,
        None,
        {},
        [],
    ],
    ids=repr,
)
async def test_json_round_trip(cache: DatabaseCache, value: Any) -> None:
    await cache.set("k", value)
    result = await cache.get("k", default="missing")
    assert result == value
    assert type(result) is type(value)


@pytest.mark.anyio
async def test_missing_key_gives_the_default(cache: DatabaseCache) -> None:
    assert await cache.get("nope") is None
    assert await cache.get("nope", 42) == 42


@pytest.mark.anyio
async def test_tuples_come_back_as_lists_and_non_json_is_refused(cache: DatabaseCache) -> None:
    await cache.set("t", (1, "two"))
    assert await cache.get("t") == [1, "two"]
    with pytest.raises(TypeError, match="JSON values and cannot store object"):
        await cache.set("bad", object())
    with pytest.raises(TypeError, match="JSON"):
        await cache.set("bad", {1: "non-string key"})
    assert await cache.get("bad") is None


@pytest.mark.anyio
async def test_set_overwrites_value_and_expiry(cache: DatabaseCache, clock: Clock) -> None:
    await cache.set("k", "first", ttl=10)
    await cache.set("k", 7)  # an integer now, and no expiry
    clock.advance(3600)
    assert await cache.get("k") == 7
    await cache.set("k", {"x": 1}, ttl=5)
    assert await cache.get("k") == {"x": 1}


@pytest.mark.anyio
async def test_ttl_expiry_hides_then_deletes_the_row(cache: DatabaseCache, clock: Clock) -> None:
    await cache.set("k", "v", ttl=10)
    clock.advance(9.9)
    assert await cache.get("k") == "v"
    assert await rows(cache) == 1
    clock.advance(0.1)
    assert await cache.get("k", "gone") == "gone"
    assert await rows(cache) == 0  # the read removed it


@pytest.mark.anyio
async def test_zero_ttl_is_expired_at_once(cache: DatabaseCache) -> None:
    await cache.set("k", "v", ttl=0)
    assert await cache.get("k") is None


@pytest.mark.anyio
async def test_keys_are_exact(cache: DatabaseCache) -> None:
    # MariaDB's default collation would make these one key.
    keys = ["key", "Key", "KEY", "key ", "kéy", "ключ", "🔑"]
    await cache.set_many({key: index for index, key in enumerate(keys)})
    assert await cache.get_many(keys) == {key: index for index, key in enumerate(keys)}
    assert await cache.get("key") == 0
    assert await cache.get("key ") == 3


@pytest.mark.anyio
async def test_key_rules(cache: DatabaseCache) -> None:
    longest = "k" * 255
    await cache.set(longest, 1)
    assert await cache.get(longest) == 1
    with pytest.raises(ValueError, match="the longest is 255; hash longer keys"):
        await cache.set("k" * 256, 1)
    with pytest.raises(TypeError, match="keys are strings"):
        await cache.get(b"bytes")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_large_values(cache: DatabaseCache) -> None:
    big = {"blob": UNICODE * 50_000, "numbers": list(range(50_000))}  # about 3 MB of JSON
    await cache.set("big", big)
    assert await cache.get("big") == big


@pytest.mark.anyio
async def test_add_only_when_missing_or_expired(cache: DatabaseCache, clock: Clock) -> None:
    assert await cache.add("k", "first", ttl=10) is True
    assert await cache.add("k", "second", ttl=10) is False
    assert await cache.get("k") == "first"
    clock.advance(10)
    assert await cache.add("k", "third") is True
    assert await cache.get("k") == "third"
    clock.advance(10**6)
    assert await cache.add("k", "fourth") is False  # no expiry: still there


@pytest.mark.anyio
async def test_concurrent_add_has_one_winner(cache: DatabaseCache, clock: Clock) -> None:
    results: list[bool] = []

    async def add(n: int) -> None:
        results.append(await cache.add("lock", n, ttl=30))

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(add, n)
    assert results.count(True) == 1
    winner = results.index(True)
    assert isinstance(await cache.get("lock"), int)
    assert len(results) == 20 and winner >= 0

    # Once it expired, concurrent adds race for it again: still one winner.
    clock.advance(30)
    results.clear()
    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(add, n)
    assert results.count(True) == 1


@pytest.mark.anyio
async def test_incr(cache: DatabaseCache) -> None:
    assert await cache.incr("n") == 1
    assert await cache.incr("n") == 2
    assert await cache.incr("n", 10) == 12
    assert await cache.incr("n", -20) == -8
    assert await cache.get("n") == -8
    await cache.set("m", 41)
    assert await cache.incr("m") == 42


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["41", 4.5, True, None, [1]], ids=repr)
async def test_incr_refuses_values_that_are_not_integers(cache: DatabaseCache, value: Any) -> None:
    await cache.set("k", value, ttl=100)
    with pytest.raises(TypeError, match="holds a value that is not an integer"):
        await cache.incr("k")
    assert await cache.get("k", "missing") == value  # untouched


@pytest.mark.anyio
async def test_incr_ttl_is_set_when_the_counter_starts(cache: DatabaseCache, clock: Clock) -> None:
    assert await cache.incr("hits", ttl=60) == 1
    clock.advance(30)
    assert await cache.incr("hits", ttl=60) == 2  # the window does not slide
    clock.advance(30)
    assert await cache.get("hits") is None
    assert await cache.incr("hits", ttl=60) == 1  # a new window
    await cache.set("text", "not a number", ttl=5)
    clock.advance(5)
    assert await cache.incr("text", 3) == 3  # expired: counts as missing


@pytest.mark.anyio
async def test_concurrent_incr_loses_no_update(cache: DatabaseCache) -> None:
    async def bump() -> None:
        await cache.incr("counter")

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(bump)
    assert await cache.get("counter") == 50

    # On an existing key too.
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(bump)
    assert await cache.get("counter") == 100


@pytest.mark.anyio
async def test_get_many_and_set_many(cache: DatabaseCache, clock: Clock) -> None:
    assert await cache.get_many([]) == {}
    await cache.set_many({})
    await cache.set_many({"a": 1, "b": {"x": UNICODE}, "c": None}, ttl=10)
    await cache.set("d", "long", ttl=100)
    assert await cache.get_many(["a", "b", "c", "d", "missing", "a"]) == {
        "a": 1,
        "b": {"x": UNICODE},
        "c": None,
        "d": "long",
    }
    clock.advance(10)
    assert await cache.get_many(["a", "b", "c", "d"]) == {"d": "long"}
    assert await rows(cache) == 1


@pytest.mark.anyio
async def test_delete(cache: DatabaseCache, clock: Clock) -> None:
    await cache.set("k", "v")
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert await cache.get("k") is None
    await cache.set("e", "v", ttl=1)
    clock.advance(1)
    assert await cache.delete("e") is False  # expired: was not there
    assert await rows(cache) == 0


@pytest.mark.anyio
async def test_clear(cache: DatabaseCache) -> None:
    await cache.set_many({"a": 1, "b": 2})
    await cache.clear()
    assert await cache.get_many(["a", "b"]) == {}


@pytest.mark.anyio
async def test_purge_expired(cache: DatabaseCache, clock: Clock) -> None:
    await cache.set_many({"a": 1, "b": 2}, ttl=10)
    await cache.set("c", 3, ttl=20)
    await cache.set("d", 4)
    clock.advance(10)
    assert await cache.purge_expired() == 2
    assert await rows(cache) == 2
    assert await cache.purge_expired() == 0


@pytest.mark.anyio
async def test_writes_purge_every_purge_interval(database: Database, clock: Clock) -> None:
    cache = DatabaseCache(database, clock=clock, purge_interval=60)
    await cache.create_table()
    await cache.set_many({"a": 1, "b": 2}, ttl=10)
    clock.advance(30)
    await cache.set("c", 3)  # too soon to purge
    assert await rows(cache) == 3
    clock.advance(30)
    await cache.set("d", 4)  # a minute since: this write purges
    assert await rows(cache) == 2
    never = DatabaseCache(database, clock=clock, purge_interval=None)
    await never.set("e", 5, ttl=1)
    clock.advance(10**6)
    await never.set("f", 6)
    assert await rows(never) == 4


@pytest.mark.anyio
async def test_custom_table_name(database: Database) -> None:
    cache = DatabaseCache(database, table="my_cache")
    await cache.create_table()
    await cache.set("k", "v")
    assert await cache.get("k") == "v"
    assert "my_cache" in await table_names(database)
    await cache.drop_table()
    assert "my_cache" not in await table_names(database)


async def table_names(database: Database) -> list[str]:
    async with database.engine.connect() as conn:
        return await conn.run_sync(lambda sync: inspect(sync).get_table_names())


@pytest.mark.anyio
async def test_the_stores_follow_a_rolled_back_test(cache: DatabaseCache) -> None:
    database = cache.database
    await cache.set("kept", 1)
    await database.begin_rollback()
    try:
        await cache.set("dropped", 2)
        assert await cache.incr("kept") == 2
        assert await cache.add("dropped", 3) is False
        assert await cache.get_many(["kept", "dropped"]) == {"kept": 2, "dropped": 2}
    finally:
        await database.end_rollback()
    assert await cache.get_many(["kept", "dropped"]) == {"kept": 1}


class Deadlock(Exception):
    """What the drivers raise: MariaDB's error 1213, PostgreSQL's SQLSTATE 40P01."""

    def __init__(self, *args: Any, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        self.sqlstate = sqlstate


@pytest.mark.anyio
@pytest.mark.parametrize(
    "orig",
    [Deadlock(1213, "Deadlock found"), Deadlock("deadlock detected", sqlstate="40P01")],
    ids=["mariadb", "postgresql"],
)
async def test_a_deadlock_is_tried_again(
    cache: DatabaseCache, monkeypatch: pytest.MonkeyPatch, orig: Exception
) -> None:
    real = cache._connection
    failures = 2

    @contextlib.asynccontextmanager
    async def flaky(*, read: bool = False) -> AsyncIterator[Any]:
        nonlocal failures
        if failures:
            failures -= 1
            raise OperationalError("INSERT ...", {}, orig)
        async with real(read=read) as conn:
            yield conn

    monkeypatch.setattr(cache, "_connection", flaky)
    await cache.set("k", 1)  # the third attempt succeeds
    assert await cache.get("k") == 1
    failures = 3
    with pytest.raises(OperationalError):
        await cache.set("k", 2)  # three deadlocks: given up
    failures = 1
    monkeypatch.setattr(orig, "args", ("something else",))
    monkeypatch.setattr(orig, "sqlstate", None)
    with pytest.raises(OperationalError):
        await cache.set("k", 3)  # not a deadlock: not tried again
    assert await cache.get("k") == 1


# -- session store -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_session_save_load_delete(sessions: DatabaseSessionStore) -> None:
    data = {"user_id": 7, "flash": [UNICODE], "csrf": "t0k3n", "cart": {"sku-1": 2}}
    assert await sessions.load("s1") is None
    await sessions.save("s1", data, ttl=3600)
    assert await sessions.load("s1") == data
    assert await sessions.load("S1") is None  # ids are exact
    await sessions.save("s1", {"user_id": 8}, ttl=3600)
    assert await sessions.load("s1") == {"user_id": 8}
    await sessions.delete("s1")
    assert await sessions.load("s1") is None
    await sessions.delete("s1")  # unknown: nothing happens


@pytest.mark.anyio
async def test_session_expiry(sessions: DatabaseSessionStore, clock: Clock) -> None:
    await sessions.save("short", {"n": 1}, ttl=60)
    await sessions.save("long", {"n": 2}, ttl=120)
    clock.advance(59)
    assert await sessions.load("short") == {"n": 1}
    await sessions.save("short", {"n": 1}, ttl=60)  # saving again extends it
    clock.advance(59)
    assert await sessions.load("short") == {"n": 1}
    clock.advance(2)
    assert await sessions.load("long") is None
    assert await rows(sessions) == 1  # the read removed it
    clock.advance(60)
    assert await sessions.purge_expired() == 1
    assert await rows(sessions) == 0


@pytest.mark.anyio
async def test_session_data_rules(sessions: DatabaseSessionStore) -> None:
    with pytest.raises(TypeError, match="session data is a dict"):
        await sessions.save("s", ["not", "a", "dict"], ttl=60)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON"):
        await sessions.save("s", {"when": object()}, ttl=60)
    with pytest.raises(ValueError, match="the longest is 255"):
        await sessions.load("s" * 256)
    big = {"blob": UNICODE * 20_000}
    await sessions.save("s", big, ttl=60)
    assert await sessions.load("s") == big


# -- installing -----------------------------------------------------------------------------------


def test_install_puts_the_stores_on_the_app_and_adds_the_branch() -> None:
    app = App()
    db = app.install(Database("sqlite://"))
    cache = app.install(DatabaseCache(db))
    store = app.install(DatabaseSessionStore(db))
    assert app.state.cache is cache
    assert app.state.session_store is store
    assert db.migration_branches == {MIGRATION_BRANCH: MIGRATIONS_DIRECTORY}
    assert isinstance(cache, CacheBackend)
    assert isinstance(store, SessionBackend)
    # the stores' tables are not models (other batteries' models may be loaded by other tests)
    assert not {"trellis_cache", "trellis_session"} & {t.name for t in db.tables_for()}
    assert repr(cache).startswith("<DatabaseCache trellis_cache on <Database default=sqlite")
    assert repr(store).startswith("<DatabaseSessionStore trellis_session on <Database")


def test_a_custom_table_brings_no_migrations() -> None:
    app = App()
    db = app.install(Database("sqlite://"))
    app.install(DatabaseCache(db, table="my_cache"))
    assert db.migration_branches == {}


def test_one_cache_per_app() -> None:
    app = App()
    db = app.install(Database("sqlite://"))
    app.install(DatabaseCache(db))
    with pytest.raises(ConfigurationError, match=r"already has app.state.cache"):
        app.install(DatabaseCache(db, table="other"))


# -- the migration branch --------------------------------------------------------------------------


def load_revision() -> ModuleType:
    path = MIGRATIONS_DIRECTORY / "0001_trellis_stores.py"
    spec = importlib.util.spec_from_file_location("trellis_stores_0001", path)
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
    assert head.revision == "trellis_stores_0001"
    assert head.branch_labels == {MIGRATION_BRANCH}
    assert head.down_revision is None


@pytest.fixture
def sync_database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    try:
        yield db
    finally:
        db.sync_engine_for().dispose()


def test_the_revision_creates_what_the_stores_define(sync_database: Database) -> None:
    revision = load_revision()
    expected = MetaData()
    for store in (DatabaseCache(sync_database), DatabaseSessionStore(sync_database)):
        store.table.to_metadata(expected)
    engine = sync_database.sync_engine_for()
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        revision.upgrade()
    with engine.connect() as conn:
        inspector = inspect(conn)
        assert {"trellis_cache", "trellis_session"} <= set(inspector.get_table_names())
        indexes = {ix["name"] for ix in inspector.get_indexes("trellis_cache")}
        assert "ix_trellis_cache_expires_at" in indexes
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, expected) == []
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        revision.downgrade()
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    assert not names & {"trellis_cache", "trellis_session"}


@pytest.mark.anyio
async def test_the_stores_work_on_the_migrated_tables(database: Database, clock: Clock) -> None:
    revision = load_revision()
    engine = database.sync_engine_for()
    try:
        with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            revision.upgrade()
    finally:
        engine.dispose()
    cache = DatabaseCache(database, clock=clock)
    sessions = DatabaseSessionStore(database, clock=clock)
    await cache.set("Key", {"v": UNICODE}, ttl=5)
    assert await cache.incr("n", 2) == 2
    assert await cache.add("Key", 1) is False
    assert await cache.get("Key") == {"v": UNICODE}
    assert await cache.get("key") is None
    await sessions.save("abc", {"user": 1}, ttl=5)
    assert await sessions.load("abc") == {"user": 1}
    clock.advance(5)
    assert await cache.get("Key") is None
    assert await sessions.load("abc") is None


def test_reads_do_not_wait_for_a_request_that_already_wrote(db_url: str) -> None:
    from trellis.contrib.db import Session
    from trellis.testing import TestClient

    # A short busy timeout: a read that waits for the request's write lock fails fast.
    options = {"connect_args": {"timeout": 0.2}} if db_url.startswith("sqlite") else {}
    app = App(debug=True)
    db = app.install(Database(db_url, pool_size=3, max_overflow=2, engine_options=options))
    cache = app.install(DatabaseCache(db))
    sessions = app.install(DatabaseSessionStore(db))

    @app.post("/write-then-read")
    async def write_then_read(session: Session) -> dict[str, Any]:
        # The request's transaction writes (on SQLite it now holds the write lock) ...
        await session.execute(cache.table.insert().values(cache_key="mine", value='"x"'))
        # ... and the stores read on their own connections, at once: what was committed.
        return {
            "cached": await cache.get("kept"),
            "many": await cache.get_many(["kept", "mine"]),
            "ttl": await cache.ttl("kept"),
            "session": await sessions.load("sid"),
        }

    with TestClient(app) as client:
        client.call(cache.create_table)
        client.call(sessions.create_table)
        client.call(lambda: cache.set("kept", 1))
        client.call(lambda: sessions.save("sid", {"user": "ada"}, 600))
        response = client.post("/write-then-read")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "cached": 1,
            "many": {"kept": 1},
            "ttl": None,
            "session": {"user": "ada"},
        }
        assert client.call(lambda: cache.get("mine")) == "x"  # committed after the handler
