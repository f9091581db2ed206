"""The Database plugin: URLs and settings, start-up checks, named binds, replicas, tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import MetaData, String, inspect, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trellis import App
from trellis.contrib.db import (
    NAMING_CONVENTION,
    Database,
    DatabaseUnavailableError,
    Session,
    database_of,
)
from trellis.exceptions import ConfigurationError, NotFoundError
from trellis.http.connection import HTTPConnection
from trellis.testing import LifespanError, TestClient


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {str: String(255)}


class Note(Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


class AuditEvent(Base):
    """Kept in the "audit" database."""

    __tablename__ = "audit_event"
    __table_args__ = {"info": {"bind_key": "audit"}}
    id: Mapped[int] = mapped_column(primary_key=True)
    what: Mapped[str]


# -- configuration ---------------------------------------------------------------------------


def test_plain_urls_get_the_async_driver() -> None:
    assert Database("sqlite:///x.db").url.drivername == "sqlite+aiosqlite"
    assert Database("postgresql://u@h/d").url.drivername == "postgresql+asyncpg"
    assert Database("postgres://u@h/d").url.drivername == "postgresql+asyncpg"
    assert Database("mysql://root@h/d").url.drivername == "mysql+aiomysql"
    assert Database("mariadb://root@h/d").url.drivername == "mariadb+aiomysql"


def test_a_bad_url_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ConfigurationError, match="is not a database URL"):
        Database("not a url")
    with pytest.raises(ConfigurationError, match="unsupported database 'oracle'"):
        Database("oracle://scott:tiger@h/orcl")
    with pytest.raises(ConfigurationError, match="sync driver 'pymysql'"):
        Database("mysql+pymysql://root@h/d")


def test_the_url_comes_from_the_settings(tmp_path: Path) -> None:
    app = App(database_url=f"sqlite:///{tmp_path}/from-settings.db")
    db = app.install(Database())
    assert db.url.database == f"{tmp_path}/from-settings.db"
    assert database_of(app) is db


def test_the_default_database_is_a_sqlite_file() -> None:
    app = App()
    db = app.install(Database())
    assert db.backend() == "sqlite"
    assert db.url.database == "app.db"


def test_one_database_plugin_per_app() -> None:
    app = App()
    app.install(Database("sqlite://"))
    with pytest.raises(ConfigurationError, match="binds"):
        app.install(Database("sqlite://"))


def test_replicas_must_name_a_database() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="'reporting', which is not one of"):
        app.install(Database("sqlite://", replicas={"reporting": "sqlite://"}))


def test_a_session_without_the_plugin_says_what_to_do() -> None:
    app = App(debug=True)

    @app.get("/")
    async def index(db: Session) -> str:
        return "never"

    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert "app.install(Database(url))" in response.text


# -- start-up -------------------------------------------------------------------------------------


def test_an_unreachable_server_stops_start_up_with_the_reason() -> None:
    app = App(debug=True)
    app.install(Database("postgresql://postgres:s3cret@127.0.0.1:1/test", connect_timeout=3))
    with pytest.raises(LifespanError) as info, TestClient(app):
        pass
    message = str(info.value)
    assert "cannot connect to the database" in message
    assert "127.0.0.1:1/test" in message
    assert "s3cret" not in message  # the password is hidden


def test_a_missing_database_is_reported(db_url: str) -> None:
    url = db_url.rsplit("/", 1)[0] + "/no_such_database_here"
    if db_url.startswith("sqlite"):
        url = "sqlite:////no/such/dir/app.db"
    app = App(debug=True)
    app.install(Database(url, connect_timeout=5))
    with pytest.raises(LifespanError, match=r"no_such_database_here|/no/such/dir"), TestClient(app):
        pass


@pytest.mark.anyio
async def test_check_reports_each_database(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url, binds={"audit": f"sqlite:///{tmp_path}/audit.db"})
    try:
        assert await db.check() == {"default": "ok", "audit": "ok"}
    finally:
        await db.dispose()
    down = Database("postgresql://postgres@127.0.0.1:1/x", connect_timeout=2)
    result = await down.check()
    await down.dispose()
    assert result["default"] != "ok"
    assert "127.0.0.1:1" in result["default"]


@pytest.mark.anyio
async def test_connect_raises_for_a_database_that_is_down() -> None:
    db = Database("sqlite://", binds={"gone": "mysql://root@127.0.0.1:1/x"}, connect_timeout=2)
    with pytest.raises(DatabaseUnavailableError, match="gone: "):
        await db.connect()


# -- SQLite transactions ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_deferred_sqlite_session_reads_while_another_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    from sqlalchemy.exc import OperationalError

    # A short busy timeout: a session that waits for the lock fails fast.
    db = Database(f"sqlite:///{tmp_path}/app.db", engine_options={"connect_args": {"timeout": 0.2}})
    await db.create_all(Base.metadata)
    try:
        async with db.transaction() as writer:
            writer.add(Note(text="not committed yet"))
            await writer.flush()  # BEGIN IMMEDIATE: this transaction holds the write lock
            async with db.session(sqlite_deferred=True) as reader, reader.begin():
                assert (await reader.scalars(select(Note))).all() == []
            with pytest.raises(OperationalError, match="locked"):
                async with db.session() as other, other.begin():
                    await other.scalars(select(Note))
        async with db.session(sqlite_deferred=True) as reader, reader.begin():
            assert len((await reader.scalars(select(Note))).all()) == 1
            reader.add(Note(text="a deferred transaction may write"))
        await db.begin_rollback()  # a rolled-back test's connection has begun already
        try:
            async with db.session(sqlite_deferred=True) as reader:
                assert len((await reader.scalars(select(Note))).all()) == 2
        finally:
            await db.end_rollback()
    finally:
        await db.dispose()


# -- named binds -----------------------------------------------------------------------------------


def make_bound_app(url: str, audit_url: str) -> tuple[App, Database]:
    app = App(debug=True)
    db = app.install(Database(url, binds={"audit": audit_url}))

    @app.on_startup
    async def tables() -> None:
        await db.create_all(Base.metadata)

    @app.post("/notes")
    async def add(text: str, db: Session, fail: bool = False) -> dict[str, str]:
        db.add(Note(text=text))
        db.add(AuditEvent(what=f"added {text}"))
        await db.flush()
        if fail:
            raise NotFoundError("refused")
        return {"status": "ok"}

    @app.get("/counts")
    async def counts(db: Session) -> dict[str, list[str]]:
        notes = list(await db.scalars(select(Note.text)))
        events = list(await db.scalars(select(AuditEvent.what)))
        return {"notes": notes, "events": events}

    return app, db


def test_models_go_to_their_database(db_url: str, tmp_path: Path) -> None:
    audit_url = f"sqlite:///{tmp_path}/audit.db"
    app, db = make_bound_app(db_url, audit_url)
    with TestClient(app) as client:
        assert client.post("/notes", params={"text": "a"}).json() == {"status": "ok"}
        assert client.post("/notes", params={"text": "b", "fail": "1"}).status_code == 404
        assert client.get("/counts").json() == {"notes": ["a"], "events": ["added a"]}

        async def tables_where() -> tuple[list[str], list[str]]:
            names = []
            for bind in ("default", "audit"):
                async with db.engine_for(bind).connect() as conn:
                    names.append(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            return names[0], names[1]

        main, audit = client.call(tables_where)
    assert "note" in main and "audit_event" not in main
    assert audit == ["audit_event"]


# -- replicas --------------------------------------------------------------------------------------


def make_replicated_app(url: str, replica_url: str) -> tuple[App, Database]:
    app = App(debug=True)
    db = app.install(Database(url, replicas={"default": replica_url}))

    @app.on_startup
    async def tables() -> None:
        await db.create_all(Base.metadata)
        # A stand-in replica: same table, one row the primary does not have.
        async with db._replica("default").begin() as conn:  # type: ignore[union-attr]
            await conn.run_sync(Base.metadata.create_all, tables=[Note.__table__])
            await conn.execute(text("INSERT INTO note (id, text) VALUES (1000, 'replica')"))

    @app.get("/notes")
    async def read(db: Session) -> list[str]:
        return list(await db.scalars(select(Note.text).order_by(Note.id)))

    @app.post("/notes")
    async def write_then_read(text: str, db: Session) -> list[str]:
        before = list(await db.scalars(select(Note.text).order_by(Note.id)))
        db.add(Note(text=text))
        await db.flush()
        after = list(await db.scalars(select(Note.text).order_by(Note.id)))
        return [*before, "|", *after]

    @app.get("/locked")
    async def locked(db: Session) -> list[str]:
        return list(await db.scalars(select(Note.text).with_for_update()))

    return app, db


def test_reads_go_to_the_replica_until_the_request_writes(db_url: str, tmp_path: Path) -> None:
    app, _ = make_replicated_app(db_url, f"sqlite:///{tmp_path}/replica.db")
    with TestClient(app) as client:
        assert client.get("/notes").json() == ["replica"]
        # The first read is a plain read: replica. After the write, reads see the write.
        assert client.post("/notes", params={"text": "new"}).json() == ["replica", "|", "new"]
        # Locking reads belong to the primary.
        assert client.get("/locked").json() == ["new"]
        assert client.get("/notes").json() == ["replica"]


# -- tenants ---------------------------------------------------------------------------------------


def test_the_router_picks_the_database_per_request(tmp_path: Path) -> None:
    def tenant(conn: HTTPConnection) -> str:
        name = conn.headers.get("x-tenant", "")
        if name not in ("acme", "globex"):
            raise NotFoundError(f"no tenant {name!r}")
        return name

    app = App(debug=True)
    db = app.install(
        Database(
            f"sqlite:///{tmp_path}/main.db",
            binds={
                "acme": f"sqlite:///{tmp_path}/acme.db",
                "globex": f"sqlite:///{tmp_path}/globex.db",
            },
            router=tenant,
        )
    )

    @app.on_startup
    async def tables() -> None:
        for name in ("acme", "globex"):
            async with db.engine_for(name).begin() as conn:
                await conn.run_sync(Base.metadata.create_all, tables=[Note.__table__])

    @app.post("/notes")
    async def add(text: str, db: Session) -> list[str]:
        db.add(Note(text=text))
        await db.flush()
        return list(await db.scalars(select(Note.text)))

    with TestClient(app) as client:
        assert client.post("/notes?text=a1", headers={"x-tenant": "acme"}).json() == ["a1"]
        assert client.post("/notes?text=g1", headers={"x-tenant": "globex"}).json() == ["g1"]
        assert client.post("/notes?text=a2", headers={"x-tenant": "acme"}).json() == ["a1", "a2"]
        assert client.post("/notes?text=x", headers={"x-tenant": "initech"}).status_code == 404
