"""A cache and a session store in database tables, for deployments with no Redis.

```py
db = app.install(Database(url))
cache = app.install(DatabaseCache(db))              # app.state.cache
sessions = app.install(DatabaseSessionStore(db))    # app.state.session_store

await cache.set("weather:paris", {"temp": 21.5, "sky": "clear"}, ttl=600)
await cache.get("weather:paris")                    # {"temp": 21.5, "sky": "clear"}
await cache.incr(f"hits:{ip}", ttl=60)              # atomic, even across processes
```

Installing a store adds the ``trellis_stores`` migration branch to the database: ``trellis db
upgrade`` creates the tables (``trellis_cache``, ``trellis_session``). The tables live on
their own ``MetaData``, so importing this module never adds them to your autogenerate.

Values are stored as JSON (orjson), never pickled: a value must be JSON-able and comes back
in its JSON form (a tuple as a list, a ``datetime`` as its ISO string). Expired entries are
invisible at once; they are deleted when read, every ``purge_interval`` seconds after a
write, and by ``purge_expired()`` (run it from a scheduled job for large tables). Expiry uses
the application's clock.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    Text,
    case,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator

from trellis.contrib.cache import CacheBackend
from trellis.contrib.cache._flight import BUSY, FOUND, FREE, LOCKED, MISSING, LockedGetOrSet
from trellis.contrib.db.database import Database
from trellis.contrib.db.models import NAMING_CONVENTION
from trellis.contrib.db.types import UTCDateTime
from trellis.exceptions import ConfigurationError
from trellis.sessions import SessionBackend

if TYPE_CHECKING:
    from trellis.app import App

__all__ = [
    "MIGRATIONS_DIRECTORY",
    "MIGRATION_BRANCH",
    "CacheBackend",
    "DatabaseCache",
    "DatabaseSessionStore",
    "SessionBackend",
]

T = TypeVar("T")

#: The label of the stores' migration branch, and the directory of its revision files.
MIGRATION_BRANCH = "trellis_stores"
MIGRATIONS_DIRECTORY = Path(__file__).parent / "store_migrations"

#: The longest key or session id, in characters.
MAX_KEY_LENGTH = 255

_MYSQL = ("mysql", "mariadb")
_ATTEMPTS = 3
_BIGINT = range(-(2**63), 2**63)
_CACHE_VALUES = ("value", "int_value", "expires_at")


class _TextAsBinary(mysql.VARBINARY):
    """A ``VARBINARY`` column that takes text parameters."""

    def bind_processor(self, dialect: Dialect) -> None:
        """None: aiomysql cannot send bytes with current PyMySQL; text converts as well."""
        return None


class _Key(TypeDecorator[str]):
    """A key compared byte for byte on every database.

    MariaDB's text collations ignore case and trailing spaces (``"Abc "`` would find
    ``"abc"``, a session id too): there the key is a ``VARBINARY`` of its UTF-8 bytes, bound
    as text (MariaDB compares binary with text byte for byte).
    """

    impl = String(MAX_KEY_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """``VARBINARY`` on MariaDB, ``VARCHAR`` elsewhere."""
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(_TextAsBinary(MAX_KEY_LENGTH * 4))
        return dialect.type_descriptor(String(MAX_KEY_LENGTH))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """The key as text."""
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode()
        return None if value is None else str(value)


def _json_text() -> Any:
    # TEXT stops at 64 KiB on MariaDB.
    return Text().with_variant(mysql.LONGTEXT(), *_MYSQL)


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise TypeError(
            f"the database stores keep JSON values and cannot store {type(value).__name__}"
            f" ({exc}): convert it to dicts, lists, strings and numbers first"
        ) from None


def _check_key(key: str) -> None:
    if not isinstance(key, str):
        raise TypeError(f"keys are strings, not {type(key).__name__}")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"key of {len(key)} characters: the longest is {MAX_KEY_LENGTH}; hash longer keys"
            " (hashlib.sha256(key.encode()).hexdigest())"
        )


def _insert(dialect: Dialect) -> Callable[[Table], Any]:
    """The INSERT construct of the dialect, which knows its upsert clause."""
    if dialect.name == "postgresql":
        return postgresql.insert
    if dialect.name == "sqlite":
        return sqlite.insert
    return mysql.insert


def _is_deadlock(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = orig.args[0] if orig is not None and orig.args else None
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code == 1213 or sqlstate in ("40P01", "40001")


class _TableStore(ABC):
    """What both stores share: the table, the clock, transactions, purging, installing."""

    #: Where ``install`` puts the store: ``app.state.<state_name>``.
    state_name = ""
    default_table = ""

    def __init__(
        self,
        database: Database,
        *,
        table: str,
        clock: Callable[[], float],
        purge_interval: float | None,
    ) -> None:
        self.database = database
        #: The store's own metadata: its table is not one of your models'.
        self.metadata = MetaData(naming_convention=NAMING_CONVENTION)
        self.table = self._define(table, self.metadata)
        self.clock = clock
        self.purge_interval = purge_interval
        self._last_purge = clock()

    @abstractmethod
    def _define(self, name: str, metadata: MetaData) -> Table:
        """The store's table, named ``name``, on ``metadata``."""

    def _info(self, name: str) -> dict[str, Any]:
        # The branch that creates the table (trellis.contrib.db.migrations.BRANCH_KEY).
        return {"migration_branch": MIGRATION_BRANCH} if name == self.default_table else {}

    def setup(self, app: App) -> None:
        """Install on ``app``: ``app.state.<name>`` and the migration branch of the tables.

        With a ``table`` name of your own, the shipped migrations (which create the default
        names) are not added: create that table in a migration of yours.
        """
        existing = getattr(app.state, self.state_name, None)
        if existing is not None and existing is not self:
            raise ConfigurationError(
                f"the application already has app.state.{self.state_name} ({existing!r})"
            )
        setattr(app.state, self.state_name, self)
        if self.table.name == self.default_table:
            self.database.add_migration_branch(MIGRATION_BRANCH, MIGRATIONS_DIRECTORY)

    async def create_table(self) -> None:
        """Create the table if it does not exist (tests, quick starts; else migrations)."""
        await self.database.create_all(self.metadata)

    async def drop_table(self) -> None:
        """Drop the table."""
        await self.database.drop_all(self.metadata)

    # -- running statements -----------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    @staticmethod
    def _expires(now: datetime, ttl: float | None) -> datetime | None:
        return None if ttl is None else now + timedelta(seconds=ttl)

    def _alive(self, now: datetime) -> ColumnElement[bool]:
        expires_at = self.table.c.expires_at
        return or_(expires_at.is_(None), expires_at > now)

    @contextlib.asynccontextmanager
    async def _connection(self, *, read: bool = False) -> AsyncIterator[AsyncConnection]:
        # Through a session, so that a test's rolled_back() transaction covers the store too;
        # a bare connection is always the primary, never a replica. A read takes no write
        # lock on SQLite, so it does not wait for a request that already wrote.
        async with self.database.session(sqlite_deferred=read) as session, session.begin():
            yield await session.connection()

    async def _run(self, work: Callable[[AsyncConnection, datetime], Awaitable[T]]) -> T:
        """Run ``work(connection, now)`` in a transaction, again if the database deadlocked."""
        for attempt in range(_ATTEMPTS):
            now = self._now()
            try:
                async with self._connection() as conn:
                    return await work(conn, now)
            except DBAPIError as exc:
                if attempt + 1 == _ATTEMPTS or not _is_deadlock(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _after_write(self, conn: AsyncConnection, now: datetime) -> None:
        # Lazy purge: at most once per purge_interval per process, after a write.
        if self.purge_interval is None or self.clock() - self._last_purge < self.purge_interval:
            return
        self._last_purge = self.clock()
        await conn.execute(delete(self.table).where(self.table.c.expires_at <= now))

    async def _forget_expired(self, keys: list[str], now: datetime) -> None:
        # In a short transaction of its own, after the read: reads stay plain reads.
        if not keys:
            return
        column = self.table.primary_key.columns[0]

        async def work(conn: AsyncConnection, _: datetime) -> None:
            await conn.execute(
                delete(self.table).where(column.in_(keys), self.table.c.expires_at <= now)
            )

        await self._run(work)

    def _upsert(self, dialect: Dialect, columns: Iterable[str]) -> Any:
        """An INSERT that overwrites ``columns`` of an existing row with the same key."""
        stmt = _insert(dialect)(self.table)
        if dialect.name in _MYSQL:
            return stmt.on_duplicate_key_update({name: stmt.inserted[name] for name in columns})
        return stmt.on_conflict_do_update(
            index_elements=list(self.table.primary_key.columns),
            set_={name: stmt.excluded[name] for name in columns},
        )

    async def purge_expired(self) -> int:
        """Delete the expired rows now; how many there were."""

        async def work(conn: AsyncConnection, now: datetime) -> int:
            self._last_purge = self.clock()
            result = await conn.execute(delete(self.table).where(self.table.c.expires_at <= now))
            return int(result.rowcount)

        return await self._run(work)


class DatabaseCache(LockedGetOrSet, _TableStore):
    """A cache in a database table: the cache backend for deployments with no Redis.

    Keys are strings of up to 255 characters, compared exactly (case and spaces count on
    every database). Values are JSON: see the module documentation. Integers (within 64
    bits) are kept in a number column, so that ``incr`` is one atomic statement.

    Args:
        database: The ``Database`` whose main database holds the table.
        table: The table name; the shipped migration creates ``trellis_cache``.
        clock: The time in seconds (``time.time``); tests pass a fake one.
        purge_interval: Seconds between the purges of expired rows that writes trigger;
            ``None`` purges only when you call ``purge_expired()``.
    """

    state_name = "cache"
    default_table = "trellis_cache"

    def __init__(
        self,
        database: Database,
        *,
        table: str = "trellis_cache",
        clock: Callable[[], float] = time.time,
        purge_interval: float | None = 300.0,
    ) -> None:
        super().__init__(database, table=table, clock=clock, purge_interval=purge_interval)

    def _define(self, name: str, metadata: MetaData) -> Table:
        return Table(
            name,
            metadata,
            Column("cache_key", _Key(), primary_key=True),
            # JSON, or NULL when the value is an integer (in int_value).
            Column("value", _json_text(), nullable=True),
            Column("int_value", BigInteger(), nullable=True),
            Column("expires_at", UTCDateTime(), nullable=True, index=True),
            info=self._info(name),
        )

    @staticmethod
    def _row(key: str, value: Any, expires_at: datetime | None) -> dict[str, Any]:
        # An integer goes to int_value, where incr can add to it.
        if isinstance(value, int) and not isinstance(value, bool) and value in _BIGINT:
            return {"cache_key": key, "value": None, "int_value": value, "expires_at": expires_at}
        return {
            "cache_key": key,
            "value": _dumps(value),
            "int_value": None,
            "expires_at": expires_at,
        }

    @staticmethod
    def _decode(value: str | None, int_value: int | None) -> Any:
        return int(int_value) if int_value is not None else orjson.loads(value or "null")

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is missing or expired."""
        found = await self.get_many([key])
        return found.get(key, default)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the ``keys`` that are present (missing and expired ones left out)."""
        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            _check_key(key)
        if not wanted:
            return {}
        table = self.table
        now = self._now()
        async with self._connection(read=True) as conn:
            rows = (
                await conn.execute(
                    select(
                        table.c.cache_key, table.c.value, table.c.int_value, table.c.expires_at
                    ).where(table.c.cache_key.in_(wanted))
                )
            ).all()
        found: dict[str, Any] = {}
        expired: list[str] = []
        for key, value, int_value, expires_at in rows:
            if expires_at is not None and expires_at <= now:
                expired.append(key)
            else:
                found[key] = self._decode(value, int_value)
        await self._forget_expired(expired, now)
        return found

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: until deleted)."""
        await self.set_many({key: value}, ttl)

    async def set_many(self, values: Mapping[str, Any], ttl: float | None = None) -> None:
        """Store every item of ``values``, all with the same ``ttl``."""
        if not values:
            return
        for key in values:
            _check_key(key)

        async def work(conn: AsyncConnection, now: datetime) -> None:
            expires_at = self._expires(now, ttl)
            # Sorted: concurrent calls lock the rows in the same order and cannot deadlock.
            rows = [self._row(key, values[key], expires_at) for key in sorted(values)]
            stmt = self._upsert(conn.dialect, _CACHE_VALUES)
            await conn.execute(stmt, rows)
            await self._after_write(conn, now)

        await self._run(work)

    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is missing (or expired); whether it was stored.

        Atomic: of concurrent ``add`` calls for one key, one returns ``True`` (a lock, a
        once-only job).
        """
        _check_key(key)
        table = self.table

        async def work(conn: AsyncConnection, now: datetime) -> bool:
            row = self._row(key, value, self._expires(now, ttl))
            expired = table.c.expires_at <= now
            if conn.dialect.name not in _MYSQL:
                upsert = _insert(conn.dialect)(table).values(row)
                stmt = upsert.on_conflict_do_update(
                    index_elements=[table.c.cache_key],
                    set_={name: upsert.excluded[name] for name in _CACHE_VALUES},
                    where=expired,  # replace an expired row only; else no row comes back
                ).returning(table.c.cache_key)
                return (await conn.execute(stmt)).first() is not None
            # MariaDB's upsert cannot say whether it inserted (FOUND_ROWS makes "unchanged"
            # and "inserted" both 1): look, then replace an expired row or insert.
            current = (
                await conn.execute(select(table.c.expires_at).where(table.c.cache_key == key))
            ).first()
            if current is not None and (current[0] is None or current[0] > now):
                return False
            if current is not None:
                replaced = await conn.execute(
                    update(table).where(table.c.cache_key == key, expired).values(row)
                )
                if replaced.rowcount:
                    return True
            await conn.execute(insert(table).values(row))
            return True

        try:
            return await self._run(work)
        except IntegrityError:
            return False  # inserted by someone else in the meantime

    async def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Add ``delta`` to the integer under ``key``; the new value. Atomic (an upsert).

        A missing (or expired) key counts as 0 and gets ``ttl`` (a rate limit's window);
        an existing key keeps its expiry.

        Raises:
            TypeError: the key holds a value that is not an integer.
        """
        _check_key(key)
        table = self.table

        async def work(conn: AsyncConnection, now: datetime) -> int | None:
            expires_at = self._expires(now, ttl)
            values = {"cache_key": key, "value": None, "int_value": delta, "expires_at": expires_at}
            expired = table.c.expires_at <= now
            if conn.dialect.name in _MYSQL:
                stmt = mysql.insert(table).values(values)
                # In order: MariaDB applies these one by one, and the expiry test reads
                # expires_at, so it changes last.
                stmt = stmt.on_duplicate_key_update(
                    [
                        (
                            "int_value",
                            case(
                                (expired, stmt.inserted.int_value),
                                (table.c.int_value.is_(None), None),
                                else_=table.c.int_value + delta,
                            ),
                        ),
                        ("value", case((expired, None), else_=table.c.value)),
                        (
                            "expires_at",
                            case((expired, stmt.inserted.expires_at), else_=table.c.expires_at),
                        ),
                    ]
                )
                await conn.execute(stmt)
                # The row is locked by this transaction until it commits: this reads our write.
                result = await conn.execute(
                    select(table.c.int_value).where(table.c.cache_key == key)
                )
                return result.scalar()
            upsert = _insert(conn.dialect)(table).values(values)
            stmt = upsert.on_conflict_do_update(
                index_elements=[table.c.cache_key],
                set_={
                    "int_value": case(
                        (expired, upsert.excluded.int_value), else_=table.c.int_value + delta
                    ),
                    "value": None,
                    "expires_at": case(
                        (expired, upsert.excluded.expires_at), else_=table.c.expires_at
                    ),
                },
                # An integer, or expired: otherwise leave the row alone (and return no row).
                where=or_(table.c.int_value.is_not(None), expired),
            ).returning(table.c.int_value)
            return (await conn.execute(stmt)).scalar()

        result = await self._run(work)
        if result is None:
            raise TypeError(f"cache key {key!r} holds a value that is not an integer")
        return int(result)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there (an expired key was not)."""
        _check_key(key)
        table = self.table

        async def work(conn: AsyncConnection, now: datetime) -> bool:
            mine = table.c.cache_key == key
            removed = await conn.execute(delete(table).where(mine, self._alive(now)))
            if removed.rowcount:
                return True
            await conn.execute(delete(table).where(mine))
            return False

        return await self._run(work)

    async def clear(self) -> None:
        """Remove every key (the whole table: give each cache a table of its own)."""

        async def work(conn: AsyncConnection, now: datetime) -> None:
            await conn.execute(delete(self.table))

        await self._run(work)

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires; ``None`` when it has no expiry.

        Raises:
            KeyError: the key is missing or expired.
        """
        _check_key(key)
        table = self.table
        now = self._now()
        async with self._connection(read=True) as conn:
            row = (
                await conn.execute(select(table.c.expires_at).where(table.c.cache_key == key))
            ).first()
        if row is None:
            raise KeyError(key)
        expires_at: datetime | None = row[0]
        if expires_at is None:
            return None
        if expires_at <= now:
            await self._forget_expired([key], now)
            raise KeyError(key)
        return (expires_at - now).total_seconds()

    async def touch(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new expiry, keeping its value; whether the key was there.

        ``ttl=None`` keeps it until deleted; zero or less expires it at once.
        """
        _check_key(key)
        table = self.table
        if ttl is not None and ttl <= 0:
            return await self.delete(key)

        async def work(conn: AsyncConnection, now: datetime) -> bool:
            changed = await conn.execute(
                update(table)
                .where(table.c.cache_key == key, self._alive(now))
                .values(expires_at=self._expires(now, ttl))
            )
            return bool(changed.rowcount)

        return await self._run(work)

    async def _get_or_lock(
        self, key: str, lock: str, token: str, lock_timeout: float, take: bool
    ) -> tuple[int, Any]:
        found = await self.get_many([key, lock])
        if key in found:
            return FOUND, found[key]
        if not take:
            return (BUSY if lock in found else FREE), None
        if lock in found or not await self.add(lock, token, lock_timeout):
            return BUSY, None
        # The holder may have stored the value and let go between our read and our add.
        value = await self.get(key, MISSING)
        if value is not MISSING:
            await self._unlock(lock, token)
            return FOUND, value
        return LOCKED, None

    async def _unlock(self, lock: str, token: str) -> None:
        table = self.table

        async def work(conn: AsyncConnection, now: datetime) -> None:
            await conn.execute(
                delete(table).where(table.c.cache_key == lock, table.c.value == _dumps(token))
            )

        await self._run(work)

    def _json_form(self, value: Any) -> Any:
        return orjson.loads(_dumps(value))

    def __repr__(self) -> str:
        return f"<DatabaseCache {self.table.name} on {self.database!r}>"


class DatabaseSessionStore(_TableStore):
    """Session data in a database table: the session backend for deployments with no Redis.

    Session ids are the caller's opaque strings (up to 255 characters, compared exactly);
    the data is a JSON object.

    Args:
        database: The ``Database`` whose main database holds the table.
        table: The table name; the shipped migration creates ``trellis_session``.
        clock: The time in seconds (``time.time``); tests pass a fake one.
        purge_interval: Seconds between the purges of expired sessions that saves trigger;
            ``None`` purges only when you call ``purge_expired()``.
    """

    state_name = "session_store"
    default_table = "trellis_session"

    def __init__(
        self,
        database: Database,
        *,
        table: str = "trellis_session",
        clock: Callable[[], float] = time.time,
        purge_interval: float | None = 300.0,
    ) -> None:
        super().__init__(database, table=table, clock=clock, purge_interval=purge_interval)

    def _define(self, name: str, metadata: MetaData) -> Table:
        return Table(
            name,
            metadata,
            Column("session_id", _Key(), primary_key=True),
            Column("data", _json_text(), nullable=False),
            Column("expires_at", UTCDateTime(), nullable=False, index=True),
            info=self._info(name),
        )

    async def load(self, session_id: str) -> dict[str, Any] | None:
        """The data of a session, or ``None`` when it is unknown or expired."""
        _check_key(session_id)
        table = self.table
        now = self._now()
        async with self._connection(read=True) as conn:
            row = (
                await conn.execute(
                    select(table.c.data, table.c.expires_at).where(table.c.session_id == session_id)
                )
            ).first()
        if row is None:
            return None
        data, expires_at = row
        if expires_at <= now:
            await self._forget_expired([session_id], now)
            return None
        loaded = orjson.loads(data)
        return loaded if isinstance(loaded, dict) else None

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        """Store a session's data for ``ttl`` seconds (replacing what it had)."""
        _check_key(session_id)
        if not isinstance(data, dict):
            raise TypeError(f"session data is a dict, not {type(data).__name__}")
        text = _dumps(data)

        async def work(conn: AsyncConnection, now: datetime) -> None:
            row = {"session_id": session_id, "data": text, "expires_at": self._expires(now, ttl)}
            await conn.execute(self._upsert(conn.dialect, ("data", "expires_at")), [row])
            await self._after_write(conn, now)

        await self._run(work)

    async def delete(self, session_id: str) -> None:
        """Forget a session (nothing happens for an unknown one)."""
        _check_key(session_id)

        async def work(conn: AsyncConnection, now: datetime) -> None:
            await conn.execute(delete(self.table).where(self.table.c.session_id == session_id))

        await self._run(work)

    def __repr__(self) -> str:
        return f"<DatabaseSessionStore {self.table.name} on {self.database!r}>"
