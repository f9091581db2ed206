"""PostgreSQL: a request that only reads opens no transaction; the first write opens one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from sqlalchemy import MetaData, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trellis import App
from trellis.contrib.db import NAMING_CONVENTION, Database, Session
from trellis.testing import TestClient


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {str: String(255)}


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


# now() is when the transaction began: two statements in one transaction see the same.
NOW = select(func.now())


def make_app(url: str, **options: Any) -> tuple[App, Database]:
    app = App(debug=True)
    db = app.install(Database(url, pool_size=1, max_overflow=0, **options))

    @app.on_startup
    async def tables() -> None:
        await db.create_all(Base.metadata)

    async def in_transaction(db: Any) -> bool:
        first = await db.scalar(NOW)
        await asyncio.sleep(0.01)
        return bool(first == await db.scalar(NOW))

    @app.get("/read")
    async def read(db: Session) -> dict[str, Any]:
        names = list(await db.scalars(select(Item.name)))
        return {"names": names, "in_transaction": await in_transaction(db)}

    @app.post("/write")
    async def write(name: str, db: Session, fail: bool = False) -> dict[str, Any]:
        names = list(await db.scalars(select(Item.name)))
        db.add(Item(name=name))
        await db.flush()
        result = {"before": names, "in_transaction": await in_transaction(db)}
        if fail:
            raise RuntimeError("after the write")
        return result

    @app.get("/locked")
    async def locked(db: Session) -> bool:
        await db.scalars(select(Item).with_for_update())
        return await in_transaction(db)

    return app, db


@pytest.fixture
def client(pg_url: str) -> Iterator[tuple[TestClient, Database]]:
    app, db = make_app(pg_url)
    with TestClient(app) as client:
        yield client, db


def test_reads_run_without_a_transaction(client: tuple[TestClient, Database]) -> None:
    http, _ = client
    assert http.get("/read").json() == {"names": [], "in_transaction": False}


def test_the_first_write_opens_the_transaction(client: tuple[TestClient, Database]) -> None:
    http, _ = client
    assert http.post("/write?name=a").json() == {"before": [], "in_transaction": True}
    assert http.post("/write?name=b&fail=1").status_code == 500
    assert http.get("/read").json()["names"] == ["a"]  # the failed request left nothing
    assert http.get("/locked").json() is True  # a locking read needs the transaction


def test_the_connection_is_transactional_again_outside_requests(
    client: tuple[TestClient, Database],
) -> None:
    http, db = client
    http.get("/read")  # the pool's only connection was lazy for this request

    async def script() -> bool:
        async with db.transaction() as session:
            first = await session.scalar(NOW)
            await asyncio.sleep(0.01)
            return bool(first == await session.scalar(NOW))

    assert http.call(script) is True


def test_lazy_transactions_can_be_turned_off(pg_url: str) -> None:
    app, _ = make_app(pg_url, lazy_transactions=False)
    with TestClient(app) as http:
        assert http.get("/read").json() == {"names": [], "in_transaction": True}
