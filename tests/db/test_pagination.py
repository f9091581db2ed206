"""Offset and keyset pagination, their query-parameter dependencies, and Page schemas."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, Numeric, String, event, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool

from trellis import App
from trellis.contrib.db.pagination import (
    CursorPage,
    CursorParams,
    Page,
    PageParams,
    cursor_params,
    page_params,
    paginate,
    paginate_keyset,
)
from trellis.contrib.db.urls import async_url
from trellis.exceptions import BadRequestError, ConfigurationError
from trellis.handlers.params import Depends
from trellis.testing import TestClient


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "page_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))
    score: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    secret: Mapped[str] = mapped_column(String(20), default="hidden")


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


START = datetime(2024, 1, 1)
COUNT = 25


def _rows() -> list[Item]:
    # Scores repeat (0..4) and so do prices and times: keys tie, the id breaks the ties.
    return [
        Item(
            id=i,
            name=f"item{i:02}",
            score=i % 5,
            price=Decimal(i % 3) + Decimal("0.50"),
            created_at=START + timedelta(hours=i % 4),
        )
        for i in range(1, COUNT + 1)
    ]


class Setup:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.statements: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Setup]:
    engine = create_async_engine(async_url(db_url), poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    setup = Setup(engine)
    async with setup.sessions.begin() as session:
        session.add_all(_rows())
    setup.statements.clear()
    try:
        yield setup
    finally:
        await engine.dispose()


def _ids(items: list[Any]) -> list[int]:
    return [item.id for item in items]


# -- offset pages --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_paginate_gives_the_page_and_the_total(db: Setup) -> None:
    statement = select(Item).order_by(Item.id)
    async with db.sessions() as session:
        page = await paginate(session, statement, limit=10, offset=10)
        assert _ids(page.items) == list(range(11, 21))
        assert (page.total, page.limit, page.offset) == (COUNT, 10, 10)
        assert len(db.statements) == 2  # the page, then the count
        db.statements.clear()
        last = await paginate(session, statement, limit=10, offset=20)
        assert _ids(last.items) == list(range(21, 26))
        assert last.total == COUNT
        assert len(db.statements) == 1  # a short page shows where the list ends: no count
        beyond = await paginate(session, statement, limit=10, offset=100)
        assert beyond.items == [] and beyond.total == COUNT


@pytest.mark.anyio
async def test_paginate_counts_the_filtered_statement_or_not_at_all(db: Setup) -> None:
    statement = select(Item).where(Item.score == 0).order_by(Item.id)
    async with db.sessions() as session:
        page = await paginate(session, statement, limit=2)
        assert _ids(page.items) == [5, 10] and page.total == 5
        uncounted = await paginate(session, statement, limit=2, count=False)
        assert uncounted.total is None and _ids(uncounted.items) == [5, 10]
        with pytest.raises(ValueError, match="limit >= 1"):
            await paginate(session, statement, limit=0)


@pytest.mark.anyio
async def test_paginate_several_columns_gives_rows(db: Setup) -> None:
    async with db.sessions() as session:
        page = await paginate(session, select(Item.id, Item.name).order_by(Item.id), limit=2)
    assert [(row.id, row.name) for row in page.items] == [(1, "item01"), (2, "item02")]
    assert Page[ItemRead].model_validate(page).items[1] == ItemRead(id=2, name="item02")


@pytest.mark.anyio
async def test_a_page_of_orm_objects_validates_into_a_read_schema(db: Setup) -> None:
    async with db.sessions() as session:
        page = await paginate(session, select(Item).order_by(Item.id), limit=2)
    typed = Page[ItemRead].model_validate(page)
    assert typed.items == [ItemRead(id=1, name="item01"), ItemRead(id=2, name="item02")]
    assert typed.model_dump() == {
        "items": [{"id": 1, "name": "item01"}, {"id": 2, "name": "item02"}],
        "total": COUNT,
        "limit": 2,
        "offset": 0,
    }


# -- keyset pages --------------------------------------------------------------------------------


async def _walk(
    session: AsyncSession, order_by: list[Any], limit: int, statement: Any = None
) -> list[CursorPage[Any]]:
    pages: list[CursorPage[Any]] = []
    after = None
    while True:
        page = await paginate_keyset(
            session,
            statement if statement is not None else select(Item),
            order_by=order_by,
            limit=limit,
            after=after,
        )
        pages.append(page)
        if page.next_cursor is None:
            return pages
        after = page.next_cursor
        assert len(pages) < 20, "the cursor does not advance"


@pytest.mark.anyio
async def test_keyset_pages_cover_every_row_once_with_mixed_directions(db: Setup) -> None:
    expected = sorted(_rows(), key=lambda i: (-i.score, i.id))
    async with db.sessions() as session:
        pages = await _walk(session, [Item.score.desc(), Item.id], limit=4)
    assert [len(p.items) for p in pages] == [4, 4, 4, 4, 4, 4, 1]
    assert [i.id for p in pages for i in p.items] == [i.id for i in expected]
    assert pages[-1].next_cursor is None and pages[0].limit == 4


@pytest.mark.anyio
async def test_keyset_pages_on_datetime_and_decimal_keys(db: Setup) -> None:
    by_time = sorted(_rows(), key=lambda i: (i.created_at, -i.id))
    by_price = sorted(_rows(), key=lambda i: (-i.price, i.created_at, i.id))
    async with db.sessions() as session:
        pages = await _walk(session, [Item.created_at, Item.id.desc()], limit=6)
        assert [i.id for p in pages for i in p.items] == [i.id for i in by_time]
        pages = await _walk(session, [Item.price.desc(), Item.created_at, Item.id], limit=7)
        assert [i.id for p in pages for i in p.items] == [i.id for i in by_price]


@pytest.mark.anyio
async def test_keyset_page_that_ends_exactly_has_no_next_cursor(db: Setup) -> None:
    async with db.sessions() as session:
        pages = await _walk(session, [Item.id], limit=5)
    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 5]


@pytest.mark.anyio
async def test_keyset_pages_stay_stable_when_rows_are_added_in_front(db: Setup) -> None:
    async with db.sessions() as session:
        first = await paginate_keyset(session, select(Item), order_by=[Item.id.desc()], limit=5)
        session.add(Item(id=100, name="new", score=1, price=1, created_at=START))
        await session.flush()
        second = await paginate_keyset(
            session, select(Item), order_by=[Item.id.desc()], limit=5, after=first.next_cursor
        )
    assert _ids(first.items) == [25, 24, 23, 22, 21]
    assert _ids(second.items) == [20, 19, 18, 17, 16]


@pytest.mark.anyio
async def test_keyset_with_several_columns_and_a_filter(db: Setup) -> None:
    statement = select(Item.id, Item.name).where(Item.score == 2)
    async with db.sessions() as session:
        pages = await _walk(session, [Item.name.desc(), Item.id], limit=2, statement=statement)
    rows = [row for page in pages for row in page.items]
    assert [row.name for row in rows] == ["item22", "item17", "item12", "item07", "item02"]
    assert CursorPage[ItemRead].model_validate(pages[0]).items[0] == ItemRead(id=22, name="item22")


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        _cursor(b"{not json"),
        _cursor(b"[1]"),  # one value for two keys
        _cursor(b'["x", 1]'),  # a string where the score (an int) goes
        _cursor(b"[null, 1]"),
    ],
)
async def test_a_bad_cursor_is_a_400(db: Setup, cursor: str) -> None:
    async with db.sessions() as session:
        with pytest.raises(BadRequestError, match="invalid cursor") as info:
            await paginate_keyset(
                session, select(Item), order_by=[Item.score, Item.id], limit=3, after=cursor
            )
    assert info.value.status == 400
    assert db.statements == []  # refused before any query


@pytest.mark.anyio
async def test_keyset_refuses_orderings_it_cannot_page() -> None:
    session: Any = None  # refused before the session is used
    with pytest.raises(ValueError, match="NULLS FIRST/LAST"):
        await paginate_keyset(
            session, select(Item), order_by=[Item.score.desc().nulls_last()], limit=1
        )
    with pytest.raises(ValueError, match="needs order_by"):
        await paginate_keyset(session, select(Item), order_by=[], limit=1)


# -- dependencies and the app ----------------------------------------------------------------------


def test_limits_are_checked_when_the_dependency_is_made() -> None:
    with pytest.raises(ConfigurationError, match="default_limit <= max_limit"):
        page_params(default_limit=50, max_limit=10)
    with pytest.raises(ConfigurationError, match="1 <= default_limit"):
        cursor_params(default_limit=0)


def _app(db: Setup) -> App:
    async def get_session() -> AsyncIterator[AsyncSession]:
        async with db.sessions() as session:
            yield session

    Session = Annotated[AsyncSession, Depends(get_session)]
    Pagination = Annotated[PageParams, Depends(page_params(default_limit=5, max_limit=10))]
    Cursor = Annotated[CursorParams, Depends(cursor_params(max_limit=10))]
    app = App(debug=True)

    @app.get("/items")
    async def items(page: Pagination, db: Session) -> Page[ItemRead]:
        statement = select(Item).order_by(Item.id)
        return await paginate(db, statement, limit=page.limit, offset=page.offset)

    @app.get("/feed")
    async def feed(cursor: Cursor, db: Session) -> CursorPage[ItemRead]:
        return await paginate_keyset(
            db, select(Item), order_by=[Item.id.desc()], limit=cursor.limit, after=cursor.after
        )

    return app


@pytest.mark.anyio
async def test_page_params_are_documented_and_validated(db: Setup) -> None:
    app = _app(db)
    params = {p["name"]: p for p in app.openapi()["paths"]["/items"]["get"]["parameters"]}
    assert params["limit"]["in"] == "query"
    assert params["limit"]["schema"]["maximum"] == 10
    assert params["limit"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"]["default"] == 5
    assert params["offset"]["schema"]["minimum"] == 0
    feed = {p["name"] for p in app.openapi()["paths"]["/feed"]["get"]["parameters"]}
    assert feed == {"limit", "after"}
    with TestClient(app) as client:
        page = client.get("/items?offset=3&limit=2")
        default = client.get("/items")
        too_many = client.get("/items?limit=11")
        negative = client.get("/items?offset=-1")
    assert page.json() == {
        "items": [{"id": 4, "name": "item04"}, {"id": 5, "name": "item05"}],
        "total": COUNT,
        "limit": 2,
        "offset": 3,
    }
    assert "secret" not in page.text  # the read schema decides what leaves the server
    assert len(default.json()["items"]) == 5
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["loc"] == ["query", "limit"]
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["loc"] == ["query", "offset"]


@pytest.mark.anyio
async def test_cursor_pages_through_the_app(db: Setup) -> None:
    app = _app(db)
    seen: list[int] = []
    with TestClient(app) as client:
        url = "/feed?limit=10"
        while True:
            body = client.get(url).json()
            seen += [item["id"] for item in body["items"]]
            if body["next_cursor"] is None:
                break
            url = f"/feed?limit=10&after={body['next_cursor']}"
        bad = client.get("/feed?after=garbage", headers={"accept": "application/json"})
    assert seen == list(range(COUNT, 0, -1))
    assert bad.status_code == 400
    assert "invalid cursor" in bad.json()["detail"]
