"""Concurrent requests through the ORM lose no update, on every database."""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import pytest
from sqlalchemy import MetaData, String, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trellis import App
from trellis.contrib.db import NAMING_CONVENTION, Database, Session
from trellis.testing import AsyncTestClient

REQUESTS = 50


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {str: String(255)}


class Counter(Base):
    __tablename__ = "counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


def make_app(url: str) -> tuple[App, Database]:
    app = App(debug=True)
    # Fewer connections than requests: requests also wait for each other at the pool.
    db = app.install(Database(url, pool_size=10, max_overflow=0))

    @app.on_startup
    async def tables() -> None:
        await db.create_all(Base.metadata)
        async with db.transaction() as session:
            session.add(Counter(id=1, value=0))

    @app.post("/locked")
    async def locked(db: Session) -> dict[str, int]:
        # Read, change in Python, write back: the row lock makes it safe.
        counter = await db.get(Counter, 1, with_for_update=True)
        assert counter is not None
        await anyio.sleep(0)  # let the other requests run in between
        counter.value += 1
        return {"value": counter.value}

    @app.post("/atomic")
    async def atomic(db: Session) -> dict[str, str]:
        await db.execute(update(Counter).where(Counter.id == 1).values(value=Counter.value + 1))
        return {"status": "ok"}

    @app.get("/value")
    async def value(db: Session) -> dict[str, int]:
        counter = await db.get(Counter, 1)
        assert counter is not None
        return {"value": counter.value}

    return app, db


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/locked", "/atomic"])
async def test_concurrent_increments_lose_nothing(db_url: str, path: str) -> None:
    app, _ = make_app(db_url)
    statuses: list[int] = []
    async with AsyncTestClient(app) as client:

        async def hit() -> None:
            statuses.append((await client.post(path)).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(REQUESTS):
                tg.start_soon(hit)
        assert statuses == [200] * REQUESTS
        assert (await client.get("/value")).json() == {"value": REQUESTS}
