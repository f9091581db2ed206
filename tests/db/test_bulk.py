"""bulk_insert and bulk_update: ORM bulk statements, chunked, with checked rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import String, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trellis.contrib.db.bulk import bulk_insert, bulk_update
from trellis.contrib.db.urls import async_url


class Base(DeclarativeBase):
    pass


class Tag(Base):
    __tablename__ = "bulk_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30))
    uses: Mapped[int] = mapped_column(default=0)
    note: Mapped[str | None] = mapped_column(String(30))


class Pair(Base):
    __tablename__ = "bulk_pair"

    left: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    right: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(30))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_url(db_url))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()


def _count_inserts(engine: AsyncEngine) -> list[int]:
    """The number of statements that write, as the driver receives them."""
    calls: list[int] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            calls.append(1)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return calls


@pytest.mark.anyio
async def test_bulk_insert_applies_defaults_and_chunks_large_inputs(engine: AsyncEngine) -> None:
    writes = _count_inserts(engine)
    rows = [{"name": f"tag{i}"} for i in range(25)] + [{"name": "used", "uses": 7}]
    async with AsyncSession(engine) as session:
        await bulk_insert(session, Tag, rows, chunk_size=10)
        await session.commit()
        stored = (await session.execute(select(Tag.name, Tag.uses).order_by(Tag.id))).all()
    assert len(stored) == 26
    assert stored[0] == ("tag0", 0)  # the Python default filled in
    assert stored[-1] == ("used", 7)
    assert len(writes) >= 3  # 26 rows in chunks of 10: at least one statement per chunk


@pytest.mark.anyio
async def test_bulk_insert_returning_gives_the_new_objects_in_order(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        tags = await bulk_insert(
            session,
            Tag,
            [{"name": "b"}, {"name": "a", "note": "n"}, {"name": "c"}],
            returning=True,
            chunk_size=2,
        )
        assert [t.name for t in tags] == ["b", "a", "c"]
        assert all(isinstance(t.id, int) for t in tags)
        assert len({t.id for t in tags}) == 3
        assert tags[1].note == "n" and tags[0].uses == 0
        await session.commit()
        assert await session.scalar(select(func.count()).select_from(Tag)) == 3


@pytest.mark.anyio
async def test_bulk_insert_refuses_unknown_attributes(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        with pytest.raises(ValueError, match="row 1 names 'colour', which is not a column"):
            await bulk_insert(session, Tag, [{"name": "a"}, {"name": "b", "colour": "red"}])
        assert await session.scalar(select(func.count()).select_from(Tag)) == 0
        await bulk_insert(session, Tag, [])  # nothing to do


@pytest.mark.anyio
async def test_bulk_update_by_primary_key_touches_only_the_given_values(
    engine: AsyncEngine,
) -> None:
    async with AsyncSession(engine) as session:
        await bulk_insert(session, Tag, [{"name": f"t{i}", "note": "keep"} for i in range(1, 6)])
        await session.commit()
        await bulk_update(
            session,
            Tag,
            [{"id": 1, "name": "one"}, {"id": 3, "uses": 3}, {"id": 5, "name": "five", "uses": 5}],
            chunk_size=2,
        )
        await session.commit()
        rows = (await session.execute(select(Tag.id, Tag.name, Tag.uses, Tag.note))).all()
    assert sorted(rows) == [
        (1, "one", 0, "keep"),
        (2, "t2", 0, "keep"),
        (3, "t3", 3, "keep"),
        (4, "t4", 0, "keep"),
        (5, "five", 5, "keep"),
    ]


@pytest.mark.anyio
async def test_bulk_update_with_a_composite_key(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        await bulk_insert(
            session,
            Pair,
            [{"left": 1, "right": 1, "label": "a"}, {"left": 1, "right": 2, "label": "b"}],
        )
        await bulk_update(session, Pair, [{"left": 1, "right": 2, "label": "B"}])
        await session.commit()
        labels = (await session.scalars(select(Pair.label).order_by(Pair.right))).all()
    assert labels == ["a", "B"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": 1, "name": "x"}, {"name": "y"}], "row 1 has no value for the primary key 'id'"),
        ([{"id": None, "name": "y"}], "row 0 has no value for the primary key 'id' of Tag"),
        ([{"id": 1, "nam": "x"}], "row 0 names 'nam', which is not a column attribute of Tag"),
        ([{"id": 1}], "row 0 has no value to update, only its key"),
    ],
)
async def test_bulk_update_checks_every_row_before_writing(
    engine: AsyncEngine, rows: list[dict[str, Any]], message: str
) -> None:
    async with AsyncSession(engine) as session:
        await bulk_insert(session, Tag, [{"name": "before"}])
        with pytest.raises(ValueError, match=message):
            await bulk_update(session, Tag, rows)
        assert await session.scalar(select(Tag.name)) == "before"


@pytest.mark.anyio
async def test_a_composite_key_needs_every_part(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        with pytest.raises(ValueError, match="no value for the primary key 'right' of Pair"):
            await bulk_update(session, Pair, [{"left": 1, "label": "x"}])
        with pytest.raises(ValueError, match="chunk_size must be at least 1"):
            await bulk_update(session, Pair, [], chunk_size=0)
