"""The database plugin: engines, sessions and transactions for an application.

```py
app = App()
db = app.install(Database("postgresql://app@localhost/app"))

@app.post("/articles")
async def create(data: ArticleIn, db: Session) -> ArticleOut:
    article = Article(**data.model_dump())
    db.add(article)
    await db.flush()          # the id is known; the commit comes when the handler returns
    return article
```

Without a URL the plugin reads the settings (``TRELLIS_DATABASE_URL``, ``trellis.toml``...),
whose default is the SQLite file ``app.db`` in the working directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine, create_engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session as SyncSession

from trellis.contrib.db.models import Model
from trellis.contrib.db.routing import DEFAULT_BIND, Binds, RoutingSession
from trellis.contrib.db.urls import async_url, backend_of, redact, sync_url
from trellis.exceptions import ConfigurationError, ConflictError, HTTPError, TrellisError

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.http.connection import HTTPConnection
    from trellis.http.request import Request
    from trellis.http.response import Response

__all__ = ["Database", "DatabaseUnavailableError", "database_of"]

log = logging.getLogger("trellis.db")

#: A function of the connection that names the database of this request (tenant routing).
Router = Callable[["HTTPConnection"], str | None]

#: The execution option of ``session(sqlite_deferred=True)``, read by the SQLite begin hook.
_SQLITE_DEFERRED = "trellis_sqlite_deferred"


class DatabaseUnavailableError(TrellisError):
    """A database could not be reached (at start-up, or by the readiness check)."""


def database_of(app: App) -> Database:
    """The ``Database`` installed on ``app``.

    Raises:
        ConfigurationError: no ``Database`` is installed.
    """
    database = getattr(app.state, "database", None)
    if not isinstance(database, Database):
        raise ConfigurationError(
            "this handler asks for a database session but the application has no database:"
            " app.install(Database(url)) first"
        )
    return database


def conflict_detail(exc: IntegrityError) -> str:
    """A message for a constraint violation that names the constraint when the driver says."""
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None) or getattr(orig, "constraint_name", None)
    if name is None:
        # MariaDB: "Duplicate entry 'x' for key 'uq_user_email'"; SQLite: "UNIQUE constraint
        # failed: user.email".
        message = str(orig)
        if "for key '" in message:
            name = message.rsplit("for key '", 1)[1].split("'", 1)[0]
        elif "constraint failed: " in message:
            name = message.rsplit("constraint failed: ", 1)[1].strip()
    if name:
        return f"The change conflicts with existing data (constraint {name})."
    return "The change conflicts with existing data (a database constraint was violated)."


class Database:
    """The data battery's plugin: ``app.install(Database(url))``.

    Args:
        url: The main database, ``sqlite:///app.db``, ``postgresql://user:pw@host/db`` or
            ``mysql://user:pw@host/db``. ``None`` reads ``database_url`` from the settings.
        binds: More databases by name; models with ``__bind_key__ = name`` live there.
            ``None`` reads ``database_binds``.
        replicas: Read replicas by database name (``{"default": url}``): plain reads outside
            a writing transaction go there. ``None`` reads ``database_replicas``.
        echo: Log every statement (``trellis.db`` logger through SQLAlchemy's).
        pool_size: Connections kept per database and process (PostgreSQL, MariaDB).
        max_overflow: Connections opened beyond ``pool_size`` under load.
        pool_timeout: Seconds to wait for a free connection; then the request gets 503.
        pool_recycle: Seconds after which a connection is replaced (MariaDB default 3600).
        pool_pre_ping: Test each connection as it leaves the pool (survives server restarts).
        connect_timeout: Seconds the start-up check waits for each database.
        router: ``router(request) -> name``: the database of models without a bind key for
            this request (one database per tenant or shard); ``None`` keeps ``"default"``.
        engine_options: Further keyword arguments for every engine.
        check_on_startup: Connect to every database at start-up and refuse to start when one
            cannot be reached (the default).
        lazy_transactions: On PostgreSQL (asyncpg, READ COMMITTED), a request's reads before
            its first write run outside a transaction, saving two round trips for requests
            that only read; the first write opens the transaction (``trellis.contrib.db.lazy``).
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        binds: Mapping[str, str | URL] | None = None,
        replicas: Mapping[str, str | URL] | None = None,
        echo: bool | None = None,
        pool_size: int | None = None,
        max_overflow: int | None = None,
        pool_timeout: float | None = None,
        pool_recycle: int | None = None,
        pool_pre_ping: bool = False,
        connect_timeout: float | None = None,
        router: Router | None = None,
        engine_options: Mapping[str, Any] | None = None,
        check_on_startup: bool = True,
        lazy_transactions: bool = True,
    ) -> None:
        self._url = url
        self._binds_arg = binds
        self._replicas_arg = replicas
        self._echo = echo
        self._pool_size = pool_size
        self._max_overflow = max_overflow
        self._pool_timeout = pool_timeout
        self._pool_recycle = pool_recycle
        self._pool_pre_ping = pool_pre_ping
        self._connect_timeout = connect_timeout
        self.router = router
        self._engine_options = dict(engine_options or {})
        self.check_on_startup = check_on_startup
        self.lazy_transactions = lazy_transactions
        self.app: App | None = None
        self.urls: dict[str, URL] = {}
        self.replica_urls: dict[str, URL] = {}
        self._engines: dict[str, AsyncEngine] = {}
        self._replica_engines: dict[str, AsyncEngine] = {}
        self._sync_engines: dict[str, Engine] = {}
        self._sync_replica_engines: dict[str, Engine] = {}
        #: Migration branches of batteries: label -> directory of Alembic revision files.
        self.migration_branches: dict[str, Path] = {}
        self._routes: Binds | None = None
        self._rollback_requested = False
        self._test_connections: dict[str, AsyncConnection] = {}
        self._test_transactions: list[Any] = []
        #: Inside a rolled-back test, requests take turns on the one shared connection.
        self.test_lock: asyncio.Lock | None = None
        if url is not None:
            self._configure(None)

    # -- configuration ---------------------------------------------------------------------

    def _configure(self, app: App | None) -> None:
        settings = app.settings if app is not None else None
        url = self._url if self._url is not None else settings.database_url if settings else None
        if url is None:
            raise ConfigurationError("Database() needs a URL or the database_url setting")
        binds = dict(self._binds_arg) if self._binds_arg is not None else {}
        if self._binds_arg is None and settings is not None:
            binds = dict(settings.database_binds)
        replicas = dict(self._replicas_arg) if self._replicas_arg is not None else {}
        if self._replicas_arg is None and settings is not None:
            replicas = dict(settings.database_replicas)
        if "default" in binds:
            raise ConfigurationError(
                "binds={'default': ...}: the main database is the url argument"
            )
        urls: dict[str, URL] = {"default": async_url(url)}
        for name, bind_url in binds.items():
            urls[name] = async_url(bind_url)
        for name in replicas:
            if name not in urls:
                raise ConfigurationError(
                    f"replicas names {name!r}, which is not one of the databases:"
                    f" {', '.join(sorted(urls))}"
                )
        self.urls = urls
        self.replica_urls = {name: async_url(u) for name, u in replicas.items()}
        if settings is not None:
            if self._echo is None:
                self._echo = settings.database_echo
            if self._pool_size is None:
                self._pool_size = settings.database_pool_size
            if self._max_overflow is None:
                self._max_overflow = settings.database_max_overflow
            if self._pool_timeout is None:
                self._pool_timeout = settings.database_pool_timeout
            if self._pool_recycle is None:
                self._pool_recycle = settings.database_pool_recycle
            if self._connect_timeout is None:
                self._connect_timeout = settings.database_connect_timeout

    def setup(self, app: App) -> None:
        """Install on ``app``: engines at start-up, disposal at shut-down, error mapping."""
        existing = getattr(app.state, "database", None)
        if existing is not None and existing is not self:
            raise ConfigurationError(
                "the application already has a Database; add more databases with"
                " Database(url, binds={name: url})"
            )
        self._configure(app)
        self.app = app
        app.state.database = self
        app.on_startup(self.connect)
        app.on_shutdown(self.dispose)
        app.exception_handler(IntegrityError)(_integrity_error)
        app.exception_handler(PoolTimeoutError)(_unavailable)
        from trellis.contrib.db.cli import db_command  # click only: alembic loads on use

        app.add_command(db_command(self))

    @property
    def url(self) -> URL:
        """The main database's URL (with the driver Trellis uses)."""
        if not self.urls:
            raise ConfigurationError("the Database is not configured yet: app.install() it")
        return self.urls["default"]

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the databases: ``"default"`` first, then the binds."""
        return tuple(self.urls)

    def backend(self, name: str = "default") -> str:
        """The family of a database: ``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
        return backend_of(self._url_of(name))

    def _url_of(self, name: str) -> URL:
        try:
            return self.urls[name]
        except KeyError:
            raise LookupError(
                f"no database named {name!r}; known: {', '.join(self.urls) or 'none'}"
            ) from None

    # -- engines ------------------------------------------------------------------------------

    def _options(self, url: URL) -> tuple[URL, dict[str, Any]]:
        backend = backend_of(url)
        options: dict[str, Any] = {"echo": bool(self._echo), "pool_pre_ping": self._pool_pre_ping}
        timeout = self._connect_timeout or 10.0
        memory = backend == "sqlite" and url.database in (None, "", ":memory:")
        if not memory:
            if self._pool_size is not None:
                options["pool_size"] = self._pool_size
            if self._max_overflow is not None:
                options["max_overflow"] = self._max_overflow
            if self._pool_timeout is not None:
                options["pool_timeout"] = self._pool_timeout
        recycle = self._pool_recycle
        if backend in ("mysql", "mariadb"):
            if recycle is None:
                recycle = 3600  # under MariaDB's wait_timeout: no connection dies in the pool
            if "charset" not in url.query:
                url = url.update_query_dict({"charset": "utf8mb4"})
        if recycle is not None:
            options["pool_recycle"] = recycle
        driver = url.get_driver_name()
        connect_args: dict[str, Any] = {}
        if driver == "asyncpg":
            connect_args["timeout"] = timeout
        elif driver in ("aiomysql", "pymysql", "asyncmy", "psycopg", "psycopg_async"):
            connect_args["connect_timeout"] = max(1, int(timeout))
        elif backend == "sqlite":
            connect_args["timeout"] = 30.0  # wait for a writer instead of "database is locked"
            if memory:
                connect_args["check_same_thread"] = False
        options["connect_args"] = connect_args
        options.update(self._engine_options)
        return url, options

    def _make_async(self, url: URL) -> AsyncEngine:
        url, options = self._options(url)
        try:
            engine = create_async_engine(url, **options)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"the driver for {redact(url)} is not installed ({exc.name}):"
                " pip install 'trellis[db]'"
            ) from None
        if backend_of(url) == "sqlite":
            _sqlite_events(engine.sync_engine, url)
        if self.lazy_transactions and url.get_driver_name() == "asyncpg":
            from trellis.contrib.db import lazy

            lazy.install(engine.sync_engine)
        return engine

    def _make_sync(self, url: URL) -> Engine:
        url, options = self._options(sync_url(url))
        try:
            engine = create_engine(url, **options)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"the driver for {redact(url)} is not installed ({exc.name}):"
                " pip install 'trellis[db]'"
            ) from None
        if backend_of(url) == "sqlite":
            _sqlite_events(engine, url)
        return engine

    @staticmethod
    def _cached(
        store: dict[str, Any], name: str, url: URL | None, make: Callable[[URL], Any]
    ) -> Any:
        if url is None:
            return None
        engine = store.get(name)
        if engine is None:
            engine = store[name] = make(url)
        return engine

    def engine_for(self, name: str = "default") -> AsyncEngine:
        """The async engine of a database (made on first use)."""
        engine: AsyncEngine = self._cached(
            self._engines, name, self._url_of(name), self._make_async
        )
        return engine

    @property
    def engine(self) -> AsyncEngine:
        """The main database's async engine."""
        return self.engine_for("default")

    def sync_engine_for(self, name: str = "default") -> Engine:
        """The sync engine of a database, for sync handlers and scripts (made on first use)."""
        engine: Engine = self._cached(self._sync_engines, name, self._url_of(name), self._make_sync)
        return engine

    def _replica(self, name: str) -> AsyncEngine | None:
        url = self.replica_urls.get(name)
        replica: AsyncEngine | None = self._cached(
            self._replica_engines, name, url, self._make_async
        )
        return replica

    def _sync_replica(self, name: str) -> Engine | None:
        url = self.replica_urls.get(name)
        replica: Engine | None = self._cached(
            self._sync_replica_engines, name, url, self._make_sync
        )
        return replica

    def _binds(self) -> Binds:
        # PERF: made once per set of engines, not per session.
        routes = self._routes
        if routes is None:
            routes = self._routes = self._make_binds()
        return routes

    def _make_binds(self) -> Binds:
        primaries = {name: self.engine_for(name).sync_engine for name in self.urls}
        replicas: dict[str, Engine] = {}
        for name in self.replica_urls:
            replica = self._replica(name)
            if replica is not None:
                replicas[name] = replica.sync_engine
        return Binds(primaries, replicas)

    def _sync_binds(self) -> Binds:
        primaries = {name: self.sync_engine_for(name) for name in self.urls}
        replicas: dict[str, Engine] = {}
        for name in self.replica_urls:
            replica = self._sync_replica(name)
            if replica is not None:
                replicas[name] = replica
        return Binds(primaries, replicas)

    # -- lifespan -----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Make the engines and, unless ``check_on_startup=False``, reach every database.

        Raises:
            DatabaseUnavailableError: a database cannot be reached; the message names it
                (password hidden) and gives the driver's reason.
        """
        if self._test_connections:
            return  # a test transaction is open already (it holds SQLite's write lock)
        if self.check_on_startup:
            problems = await self.check()
            failed = {name: problem for name, problem in problems.items() if problem != "ok"}
            if failed:
                await self.dispose()
                lines = "; ".join(f"{name}: {problem}" for name, problem in failed.items())
                raise DatabaseUnavailableError(f"cannot connect to the database ({lines})")
        if self._rollback_requested and not self._test_connections:
            await self.begin_rollback()

    def add_migration_branch(self, label: str, directory: str | Path) -> None:
        """Add a battery's migrations (an Alembic branch) to the application's.

        ``trellis db upgrade`` applies every branch; a battery calls this in its ``setup``.
        """
        path = Path(directory)
        if not path.is_dir():
            raise ConfigurationError(f"migration branch {label!r}: {path} is not a directory")
        self.migration_branches[label] = path

    # -- tests: one transaction per test, rolled back -----------------------------------------

    @property
    def in_test_transaction(self) -> bool:
        """Whether a rolled-back test transaction is open (``rolled_back()``)."""
        return bool(self._test_connections)

    @contextlib.contextmanager
    def rolled_back(self) -> Iterator[Database]:
        """Inside the block, everything the sessions do is rolled back when the app stops.

        At start-up each database gets one connection and one open transaction; every session
        (requests included) joins it through savepoints, so a handler's commit is seen by the
        next request of the test but never reaches the database. The app stops (the test
        client's block ends) and it is all rolled back. ``trellis.contrib.db.testing`` wraps
        this in a pytest fixture. Sync sessions have connections of their own: they do not
        see, and are not rolled back with, the test's transaction.
        """
        self._rollback_requested = True
        try:
            yield self
        finally:
            self._rollback_requested = False

    async def begin_rollback(self) -> None:
        """Open the test transaction now (``rolled_back()`` does it at start-up)."""
        self.test_lock = asyncio.Lock()
        for name in self.urls:
            conn = await self.engine_for(name).connect()
            self._test_transactions.append(await conn.begin())
            self._test_connections[name] = conn

    async def end_rollback(self) -> None:
        """Roll the test transaction back and give its connections back."""
        for transaction in self._test_transactions:
            if transaction.is_active:
                await transaction.rollback()
        for conn in self._test_connections.values():
            await conn.close()
        self._test_transactions.clear()
        self._test_connections.clear()

    async def check(self) -> dict[str, str]:
        """Reach every database (replicas too): ``{"default": "ok", "replica:default": ...}``.

        A value other than ``"ok"`` says why that database cannot be used (for a readiness
        check). Never raises for a database that is down.
        """
        engines: list[tuple[str, AsyncEngine]] = [
            (name, self.engine_for(name)) for name in self.urls
        ]
        for name in self.replica_urls:
            replica = self._replica(name)
            if replica is not None:
                engines.append((f"replica:{name}", replica))
        results = await asyncio.gather(
            *(self._ping(engine, self._test_connections.get(name)) for name, engine in engines)
        )
        return {name: result for (name, _), result in zip(engines, results, strict=True)}

    async def _ping(self, engine: AsyncEngine, test_conn: AsyncConnection | None = None) -> str:
        timeout = self._connect_timeout or 10.0
        where = redact(engine.url)
        try:
            async with asyncio.timeout(timeout):
                if test_conn is not None:
                    # Inside rolled_back() the test's connection may be the pool's only one: a
                    # new connection would wait for it until the timeout.
                    assert self.test_lock is not None
                    async with self.test_lock:
                        await test_conn.execute(text("SELECT 1"))
                else:
                    async with engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
        except TimeoutError:
            return f"{where}: no answer within {timeout:g} s"
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            return f"{where}: {reason}"
        except (OSError, ConnectionError) as exc:
            return f"{where}: {exc}"
        return "ok"

    async def dispose(self) -> None:
        """Close every connection; the engines are made again on next use (a new loop)."""
        if self._test_connections:
            await self.end_rollback()
        engines = [*self._engines.values(), *self._replica_engines.values()]
        sync_engines = [*self._sync_engines.values(), *self._sync_replica_engines.values()]
        self._routes = None
        self._engines.clear()
        self._replica_engines.clear()
        self._sync_engines.clear()
        self._sync_replica_engines.clear()
        for engine in engines:
            await engine.dispose()
        for sync_engine in sync_engines:
            sync_engine.dispose()

    # -- sessions -----------------------------------------------------------------------------

    def session(
        self, *, bind: str | None = None, sqlite_deferred: bool = False, **options: Any
    ) -> AsyncSession:
        """A new async session (``async with db.session() as s:``); it commits only when told.

        Args:
            bind: The database for models without a bind key (a tenant); default ``"default"``.
            sqlite_deferred: On SQLite, begin its transactions ``DEFERRED`` instead of
                ``IMMEDIATE``: they take no write lock until they write. For reads on a
                session of their own while a request may hold the lock (which an
                ``IMMEDIATE`` begin would wait for until the busy timeout); a deferred
                transaction that then writes may fail with "database is locked". Other
                databases ignore it.
            options: Further ``AsyncSession`` options.
        """
        options.setdefault("expire_on_commit", False)
        routes = self._binds()
        if sqlite_deferred and not self._test_connections:
            # (A rolled-back test's connection has begun already: nothing to defer.)
            execution_options = dict(options.get("execution_options") or {})
            options["execution_options"] = {**execution_options, _SQLITE_DEFERRED: True}
        if self._test_connections:
            # A test transaction is open (rolled_back()): every session runs on its connection,
            # its commits and rollbacks become savepoints; no replica, which could not see it.
            connections = {
                name: conn.sync_connection for name, conn in self._test_connections.items()
            }
            routes = Binds(cast("dict[str, Engine]", connections), {})
            options.setdefault("join_transaction_mode", "create_savepoint")
        session = AsyncSession(sync_session_class=RoutingSession, routes=routes, **options)
        if bind is not None:
            self._url_of(bind)
            session.info[DEFAULT_BIND] = bind
        return session

    def sync_session(self, *, bind: str | None = None, **options: Any) -> SyncSession:
        """A new sync session (``with db.sync_session() as s:``), for sync code and scripts.

        Raises:
            ConfigurationError: inside ``rolled_back()``: a sync session cannot join the
                test's transaction (it would not be rolled back, and on SQLite it would wait
                for the test's write lock).
        """
        if self._test_connections:
            raise ConfigurationError(
                "sync sessions cannot join a rolled-back test transaction: test sync"
                " handlers against a database the test creates and drops"
            )
        options.setdefault("expire_on_commit", False)
        session = RoutingSession(routes=self._sync_binds(), **options)
        if bind is not None:
            self._url_of(bind)
            session.info[DEFAULT_BIND] = bind
        return session

    @contextlib.asynccontextmanager
    async def transaction(self, *, bind: str | None = None) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed when the block ends, rolled back on error.

        ```python
        import asyncio

        from sqlalchemy import func, select
        from sqlalchemy.orm import Mapped

        from trellis.contrib.db import Database, IdMixin, Model


        class Article(IdMixin, Model):
            title: Mapped[str]


        async def main() -> None:
            db = Database("sqlite:///app.db")  # in an app: db = app.install(Database(...))
            await db.create_all()
            async with db.transaction() as session:
                session.add(Article(title="Hello"))
            async with db.transaction() as session:
                assert await session.scalar(select(func.count()).select_from(Article)) == 1
            await db.dispose()


        asyncio.run(main())
        ```
        """
        async with self.session(bind=bind) as session, session.begin():
            yield session

    @contextlib.contextmanager
    def sync_transaction(self, *, bind: str | None = None) -> Iterator[SyncSession]:
        """The sync twin of ``transaction()``."""
        with self.sync_session(bind=bind) as session, session.begin():
            yield session

    # -- schema -------------------------------------------------------------------------------

    def tables_for(self, name: str = "default", metadata: Any = None) -> list[Any]:
        """The tables of ``metadata`` (default: ``Model.metadata``) that live in ``name``."""
        metadata = Model.metadata if metadata is None else metadata
        self._url_of(name)
        return [
            table
            for table in metadata.sorted_tables
            if (table.info.get("bind_key") or "default") == name
        ]

    async def create_all(self, metadata: Any = None) -> None:
        """Create the models' tables that do not exist yet, each in its own database.

        For tests and quick starts; applications use migrations (``trellis db upgrade``).
        """
        for name in self.urls:
            tables = self.tables_for(name, metadata)
            if tables:
                meta = Model.metadata if metadata is None else metadata
                async with self.engine_for(name).begin() as conn:
                    await conn.run_sync(meta.create_all, tables=tables)

    async def drop_all(self, metadata: Any = None) -> None:
        """Drop the models' tables (each in its own database)."""
        for name in self.urls:
            tables = self.tables_for(name, metadata)
            if tables:
                meta = Model.metadata if metadata is None else metadata
                async with self.engine_for(name).begin() as conn:
                    await conn.run_sync(meta.drop_all, tables=tables)

    def __repr__(self) -> str:
        names = ", ".join(f"{name}={redact(url)}" for name, url in self.urls.items())
        return f"<Database {names or 'unconfigured'}>"


def _sqlite_events(engine: Engine, url: URL) -> None:
    memory = url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling hides SAVEPOINT and BEGIN: emit them here
        # (SQLAlchemy's documented recipe), so nested transactions work as on other databases.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: a transaction that read and then writes
        # can never be refused half-way ("database is locked" on upgrade) or lose an update;
        # SQLite runs one writer at a time anyway. A session(sqlite_deferred=True) only reads.
        if conn.get_execution_options().get(_SQLITE_DEFERRED):
            conn.exec_driver_sql("BEGIN DEFERRED")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


# -- error mapping -------------------------------------------------------------------------------


def _response(request: Request, exc: HTTPError) -> Response:
    from trellis.http.errors import error_response, wants_html

    return error_response(
        exc, html_page=wants_html(request.headers.get("accept")), instance=request.path
    )


def _integrity_error(request: Request, exc: IntegrityError) -> Response:
    return _response(request, ConflictError(conflict_detail(exc)))


def unavailable_error() -> HTTPError:
    """The 503 a request gets when its database cannot be reached."""
    return HTTPError(503, "The database is unavailable; try again shortly.", {"Retry-After": "5"})


def _unavailable(request: Request, exc: Exception) -> Response:
    log.error("database unavailable in %s %s", request.method, request.path, exc_info=exc)
    return _response(request, unavailable_error())
