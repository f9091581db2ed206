"""FilterSet: whitelisted filters and sorting from typed query parameters."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from sqlalchemy import DateTime, Numeric, String, select
from sqlalchemy import Enum as SAEnum
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool

from trellis import App
from trellis.contrib.db.filters import Filters, FilterSet
from trellis.contrib.db.pagination import paginate_keyset
from trellis.contrib.db.urls import async_url
from trellis.exceptions import ConfigurationError, RequestValidationError
from trellis.handlers.params import Depends
from trellis.testing import TestClient


class Base(DeclarativeBase):
    pass


class Status(enum.Enum):
    draft = "draft"
    live = "live"
    gone = "gone"


class Product(Base):
    __tablename__ = "filter_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(50))
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    status: Mapped[Status] = mapped_column(SAEnum(Status))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)
    secret: Mapped[str] = mapped_column(String(20), default="x")


PRODUCTS = [
    # id, title, price, status, day of January, deleted
    (1, "Blue Shirt", "20.00", Status.live, 1, False),
    (2, "blue hat", "15.50", Status.draft, 2, False),
    (3, "50% OFF socks", "5.00", Status.live, 3, True),
    (4, "500 socks", "50.00", Status.gone, 4, False),
    (5, "a_b poster", "9.99", Status.live, 5, False),
    (6, "axb poster", "9.99", Status.draft, 6, False),
]

products = FilterSet(
    Product,
    fields={
        "title": ["eq", "contains", "startswith", "endswith"],
        "price": ["gte", "lte", "ne"],
        "status": "in",
        "created_at": ["gt", "lt"],
        "deleted_at": ["isnull"],
    },
    sort=["price", "title", "created_at"],
    default_sort="-created_at",
)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(async_url(db_url), poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker.begin() as session:
        session.add_all(
            Product(
                id=id,
                title=title,
                price=Decimal(price),
                status=status,
                created_at=datetime(2024, 1, day),
                deleted_at=datetime(2024, 2, 1) if deleted else None,
            )
            for id, title, price, status, day, deleted in PRODUCTS
        )
    try:
        yield maker
    finally:
        await engine.dispose()


async def _ids(sessions: async_sessionmaker[AsyncSession], values: Mapping[str, Any]) -> list[int]:
    filters = products.filters(values)
    async with sessions() as session:
        return list(await session.scalars(filters.apply(select(Product.id))))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, [6, 5, 4, 3, 2, 1]),  # the default sort: newest first
        ({"title": "blue hat"}, [2]),
        ({"title__contains": "BLUE"}, [2, 1]),  # case-insensitive
        ({"title__contains": "50%"}, [3]),  # % is a literal percent sign, not a wildcard
        ({"title__contains": "a_b"}, [5]),  # and _ a literal underscore
        ({"title__startswith": "50"}, [4, 3]),
        ({"title__endswith": "SOCKS"}, [4, 3]),
        ({"price__gte": Decimal("9.99"), "price__lte": Decimal(20)}, [6, 5, 2, 1]),
        ({"price__ne": Decimal("9.99")}, [4, 3, 2, 1]),
        ({"status__in": [Status.draft, Status.gone]}, [6, 4, 2]),
        ({"created_at__gt": datetime(2024, 1, 2), "created_at__lt": datetime(2024, 1, 5)}, [4, 3]),
        ({"deleted_at__isnull": True, "price__lte": 10}, [6, 5]),
        ({"deleted_at__isnull": False}, [3]),
    ],
)
async def test_filters(
    sessions: async_sessionmaker[AsyncSession], values: dict[str, Any], expected: list[int]
) -> None:
    assert await _ids(sessions, values) == expected


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("price", [3, 5, 6, 2, 1, 4]),  # 5 and 6 cost the same: the primary key breaks the tie
        ("-price", [4, 1, 2, 5, 6, 3]),
        ("-price,title", [4, 1, 2, 5, 6, 3]),
        (" -price , -title ", [4, 1, 2, 6, 5, 3]),
        ("created_at,created_at", [1, 2, 3, 4, 5, 6]),  # a repeated field counts once
    ],
)
async def test_sorting(
    sessions: async_sessionmaker[AsyncSession], sort: str, expected: list[int]
) -> None:
    assert await _ids(sessions, {"sort": sort}) == expected


def test_a_sort_on_a_field_that_is_not_allowed_is_a_422_naming_the_allowed_ones() -> None:
    with pytest.raises(RequestValidationError) as info:
        products.filters({"sort": "-secret,price,nope"})
    assert info.value.status == 422
    [error] = info.value.errors
    assert error["loc"] == ["query", "sort"]
    assert "cannot sort by 'secret', 'nope'" in error["msg"]
    assert "sort by price, title, created_at" in error["msg"]


def test_filters_report_what_the_request_asked_for() -> None:
    filters = products.filters({"title__contains": "x", "price__lte": None, "sort": "-price"})
    assert filters.values == {"title__contains": "x"}
    assert filters.sort == ("-price",)
    assert len(filters.conditions) == 1
    assert [str(c) for c in filters.order_by] == [
        "filter_product.price DESC",
        "filter_product.id",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": {"titel": ["eq"]}}, "fields names 'titel', which is not a column attribute"),
        ({"fields": {"title": ["like"]}}, "unknown operator 'like' for 'title'"),
        ({"fields": {"price": ["contains"]}}, "'price' is not a text column"),
        ({"fields": {"status": ["startswith"]}}, "'status' is not a text column"),
        ({"sort": ["nope"]}, "sort names 'nope'"),
        ({"default_sort": "-nope"}, "default_sort names 'nope'"),
        ({"fields": {"title": "eq"}, "sort": ["price"], "sort_param": "title"}, "'title'"),
    ],
)
def test_mistakes_in_a_filter_set_are_found_at_start_up(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        FilterSet(Product, **kwargs)


def test_a_filter_set_needs_a_model() -> None:
    with pytest.raises(ConfigurationError, match="needs a mapped class"):
        FilterSet(dict)


@pytest.mark.anyio
async def test_keyset_pages_follow_the_requested_sort(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    filters = products.filters({"sort": "-price", "price__lte": 20})
    seen: list[int] = []
    after = None
    async with sessions() as session:
        while True:
            page = await paginate_keyset(
                session,
                filters.where(select(Product)),
                order_by=filters.order_by,
                limit=2,
                after=after,
            )
            seen += [p.id for p in page.items]
            if page.next_cursor is None:
                break
            after = page.next_cursor
    assert seen == [1, 2, 5, 6, 3]


# -- through an app ------------------------------------------------------------------------------


def _app(sessions: async_sessionmaker[AsyncSession]) -> App:
    async def get_session() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    app = App(debug=True)

    @app.get("/products")
    async def index(
        filters: Annotated[Filters, Depends(products)],
        db: Annotated[AsyncSession, Depends(get_session)],
    ) -> list[int]:
        return list(await db.scalars(filters.apply(select(Product.id))))

    return app


@pytest.mark.anyio
async def test_filter_parameters_are_typed_query_parameters_in_the_api_docs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    operation = _app(sessions).openapi()["paths"]["/products"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert list(params) == [
        "title",
        "title__contains",
        "title__startswith",
        "title__endswith",
        "price__gte",
        "price__lte",
        "price__ne",
        "status__in",
        "created_at__gt",
        "created_at__lt",
        "deleted_at__isnull",
        "sort",
    ]
    assert all(p["in"] == "query" and not p["required"] for p in params.values())
    assert params["title__contains"]["description"] == "Filter: title contains (case-insensitive)."
    assert params["deleted_at__isnull"]["schema"]["anyOf"][0] == {"type": "boolean"}
    assert params["created_at__gt"]["schema"]["anyOf"][0]["format"] == "date-time"
    status_in = params["status__in"]["schema"]["anyOf"][0]
    assert status_in["type"] == "array"
    assert params["sort"]["description"].startswith("Sort by price, title, created_at")
    assert params["sort"]["description"].endswith("default -created_at.")


@pytest.mark.anyio
async def test_filters_through_the_app(sessions: async_sessionmaker[AsyncSession]) -> None:
    with TestClient(_app(sessions)) as client:
        live_cheap = client.get(
            "/products",
            params=[("status__in", "live"), ("status__in", "gone"), ("price__lte", "20")],
        )
        sorted_ = client.get("/products?sort=-price&unknown=ignored&title__contains=SOCKS")
        bad_value = client.get("/products?price__gte=cheap&status__in=sold")
        bad_sort = client.get("/products?sort=secret")
    assert live_cheap.json() == [5, 3, 1]
    assert sorted_.json() == [4, 3]
    assert bad_value.status_code == 422
    assert sorted(e["loc"][1] for e in bad_value.json()["errors"]) == ["price__gte", "status__in"]
    assert bad_sort.status_code == 422
    assert bad_sort.headers["content-type"].startswith("application/problem+json")
    [error] = bad_sort.json()["errors"]
    assert error["loc"] == ["query", "sort"]
    assert "cannot sort by 'secret'; sort by price, title, created_at" in error["msg"]
