"""model_schema: read/create/update schemas derived from models, and apply()."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import ValidationError
from sqlalchemy import JSON, DateTime, Integer, Numeric, String, Text, func, select
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from trellis import App
from trellis.contrib.db.schemas import apply, model_schema, python_type
from trellis.contrib.db.urls import async_url
from trellis.exceptions import ConfigurationError
from trellis.handlers.params import Depends
from trellis.testing import TestClient


class Base(DeclarativeBase):
    pass


class Status(enum.Enum):
    draft = "draft"
    live = "live"


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Article(Base):
    __tablename__ = "schema_article"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(20), comment="The headline")
    body: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    status: Mapped[Status] = mapped_column(SAEnum(Status), default=Status.draft)
    kind: Mapped[str] = mapped_column(SAEnum("post", "page", name="article_kind"))
    token: Mapped[str] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    views: Mapped[int] = mapped_column(server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)
    title_length = column_property(func.length(title))


class Code(Base):
    """A natural (non-autoincrement) primary key."""

    __tablename__ = "schema_code"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    label: Mapped[str] = mapped_column(String(50))


ArticleRead = model_schema(Article)
ArticleCreate = model_schema(Article, "create")
ArticleUpdate = model_schema(Article, "update")

VALID = {"title": "Hello", "price": "9.99", "kind": "post"}


def test_read_schema_has_every_column_and_validates_orm_objects() -> None:
    article = Article(
        id=7,
        title="Hello",
        body=None,
        price=Decimal("9.99"),
        status=Status.live,
        kind="post",
        token="t",
        meta={"a": [1]},
        views=3,
        created_at=datetime(2024, 1, 2),
        updated_at=datetime(2024, 1, 3),
    )
    read = ArticleRead.model_validate(article)
    assert read.model_dump(exclude={"title_length"}) == {
        "id": 7,
        "title": "Hello",
        "body": None,
        "price": Decimal("9.99"),
        "status": Status.live,
        "kind": "post",
        "token": "t",
        "meta": {"a": [1]},
        "views": 3,
        "created_at": datetime(2024, 1, 2),
        "updated_at": datetime(2024, 1, 3),
    }
    assert ArticleRead.__name__ == "ArticleRead"
    assert set(ArticleRead.model_json_schema()["required"]) == set(ArticleRead.model_fields)


def test_read_schema_types_follow_the_sql_types() -> None:
    props = ArticleRead.model_json_schema()["properties"]
    assert props["title"] == {
        "type": "string",
        "maxLength": 20,
        "title": "Title",
        "description": "The headline",
    }
    assert {"type": "null"} in props["body"]["anyOf"]
    assert props["kind"]["enum"] == ["post", "page"]
    assert props["meta"]["anyOf"][0] == {}  # JSON: any value (or null)
    fields = ArticleRead.model_fields
    assert fields["created_at"].annotation is datetime
    assert fields["status"].annotation is Status
    with pytest.raises(ValidationError, match="at most 20 characters"):
        ArticleRead.model_validate({**_read_values(), "title": "x" * 21})


def _read_values() -> dict[str, Any]:
    return {
        "id": 1,
        "title": "t",
        "body": None,
        "price": "1.00",
        "status": "draft",
        "kind": "page",
        "token": "x",
        "meta": None,
        "views": 0,
        "created_at": "2024-01-01T00:00:00",
        "updated_at": "2024-01-01T00:00:00",
        "title_length": 1,
    }


def test_create_schema_leaves_out_what_the_database_fills_in() -> None:
    fields = ArticleCreate.model_fields
    # id (autoincrement), views (server default), timestamps, computed column_property
    assert list(fields) == ["title", "body", "price", "status", "kind", "token", "meta"]
    assert {name for name, f in fields.items() if f.is_required()} == {"title", "price", "kind"}
    assert fields["status"].default is Status.draft
    data = ArticleCreate.model_validate(VALID)
    assert data.model_dump(exclude_unset=True) == {
        "title": "Hello",
        "price": Decimal("9.99"),
        "kind": "post",
    }


def test_create_schema_rejects_bad_and_unknown_input() -> None:
    with pytest.raises(ValidationError) as info:
        ArticleCreate.model_validate(
            {"title": "x" * 21, "price": "12345.678", "kind": "blog", "id": 3}
        )
    wrong = {e["loc"][0]: e["type"] for e in info.value.errors()}
    assert wrong == {
        "title": "string_too_long",
        "price": "decimal_max_digits",
        "kind": "literal_error",
        "id": "extra_forbidden",
    }


def test_create_schema_keeps_a_natural_primary_key() -> None:
    CodeCreate = model_schema(Code, "create")
    assert list(CodeCreate.model_fields) == ["code", "label"]
    assert CodeCreate.model_fields["code"].is_required()
    assert "code" not in model_schema(Code, "update").model_fields


def test_update_schema_makes_every_field_optional_and_keeps_only_what_was_sent() -> None:
    fields = ArticleUpdate.model_fields
    assert "id" not in fields and "created_at" not in fields
    assert not any(f.is_required() for f in fields.values())
    patch = ArticleUpdate.model_validate({"body": None, "title": "New"})
    assert patch.model_dump(exclude_unset=True) == {"body": None, "title": "New"}
    with pytest.raises(ValidationError, match="title"):
        ArticleUpdate.model_validate({"title": None})  # the column is NOT NULL


def test_schemas_are_cached_and_include_exclude_make_new_ones() -> None:
    assert model_schema(Article) is ArticleRead
    assert model_schema(Article, "read", exclude=["token"]) is model_schema(
        Article, "read", exclude=("token",)
    )
    public = model_schema(Article, exclude=["token", "meta"], name="ArticlePublic")
    assert public.__name__ == "ArticlePublic"
    assert "token" not in public.model_fields and "title" in public.model_fields
    only = model_schema(Article, "read", include=["id", "title"])
    assert list(only.model_fields) == ["id", "title"]
    # Naming a field that "create" would leave out brings it back, as optional.
    stamped = model_schema(Article, "create", include=["title", "created_at"], name="Stamped")
    assert list(stamped.model_fields) == ["title", "created_at"]
    assert not stamped.model_fields["created_at"].is_required()


def test_unknown_field_names_and_modes_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="'titel' is not a column attribute of Article"):
        model_schema(Article, exclude=["titel"])
    with pytest.raises(ConfigurationError, match="'read', 'create' or 'update'"):
        model_schema(Article, "delete")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not a mapped class"):
        model_schema(dict)


class UTCStamp(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True


class JSONText(TypeDecorator[Any]):
    impl = Text
    cache_ok = True


def test_python_type_mapping() -> None:
    assert python_type(Integer()) is int
    assert python_type(Numeric(10, 2, asdecimal=False)) is float
    assert python_type(UTCStamp()) is datetime  # from the decorator's impl
    assert python_type(JSONText()) is Any  # text may hold anything serialised
    assert python_type(JSON()) is Any
    assert python_type(ARRAY(Integer())) == list[int]
    assert python_type(String(5)) == Annotated[str, *python_type(String(5)).__metadata__]
    assert python_type(Text()) is str


def test_apply_sets_only_the_fields_that_were_sent() -> None:
    article = Article(title="Old", body="Body", price=Decimal(1))
    assert apply(article, ArticleUpdate.model_validate({"title": "New"})) is article
    assert (article.title, article.body) == ("New", "Body")
    apply(article, {"body": None})
    assert article.body is None
    with pytest.raises(ValueError, match="Article has no attribute 'nope'"):
        apply(article, {"nope": 1, "title": "Again"})
    assert article.title == "New"


# -- through a database and an app ---------------------------------------------------------------


@pytest.mark.anyio
async def test_create_and_update_schemas_round_trip_through_the_database(db_url: str) -> None:
    engine = create_async_engine(async_url(db_url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            data = ArticleCreate.model_validate(VALID)
            # model_dump() without exclude_unset: unset fields are None, and the defaults apply.
            article = Article(**data.model_dump())
            session.add(article)
            await session.commit()
            await session.refresh(article)
            read = ArticleRead.model_validate(article).model_dump()
            assert read["id"] == article.id
            assert read["status"] is Status.draft and read["views"] == 0
            assert len(read["token"]) == 32  # the callable default ran
            apply(article, ArticleUpdate.model_validate({"price": "3.50"}))
            await session.commit()
        async with AsyncSession(engine) as session:
            stored = await session.scalar(select(Article))
            assert stored is not None
            assert (stored.title, stored.price) == ("Hello", Decimal("3.50"))
    finally:
        await engine.dispose()


@pytest.mark.anyio
async def test_schemas_as_body_and_response_types_of_an_app(db_url: str) -> None:
    # NullPool: the client runs the app on a loop of its own; no connection crosses loops.
    engine = create_async_engine(async_url(db_url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessions = async_sessionmaker(engine, expire_on_commit=False)

        async def get_session() -> AsyncIterator[AsyncSession]:
            async with sessions.begin() as session:
                yield session

        app = App(debug=True)

        @app.post("/articles", status_code=201)
        async def create(
            data: ArticleCreate,  # type: ignore[valid-type]
            db: Annotated[AsyncSession, Depends(get_session)],
        ) -> ArticleRead:  # type: ignore[valid-type]
            article = apply(Article(), data)
            db.add(article)
            await db.flush()
            await db.refresh(article)
            return article

        with TestClient(app) as client:
            created = client.post("/articles", json={**VALID, "body": "Text"})
            bad = client.post("/articles", json={"title": "x" * 30, "price": 1, "kind": "post"})
        assert created.status_code == 201, created.text
        assert created.json()["title"] == "Hello" and created.json()["status"] == "draft"
        assert created.json()["price"] == "9.99"
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["loc"] == ["body", "title"]
        spec = app.openapi()
        schemas = spec["components"]["schemas"]
        assert "id" not in schemas["ArticleCreate"]["properties"]
        assert schemas["ArticleCreate"]["required"] == ["title", "price", "kind"]
    finally:
        await engine.dispose()


def test_the_openapi_document_of_an_app_using_the_schemas_is_valid() -> None:
    from openapi_spec_validator import validate

    app = App(debug=True)

    @app.post("/articles", status_code=201)
    async def create(data: ArticleCreate) -> ArticleRead:  # type: ignore[valid-type]
        raise NotImplementedError

    @app.patch("/articles/{id:int}")
    async def edit(id: int, data: ArticleUpdate) -> ArticleRead:  # type: ignore[valid-type]
        raise NotImplementedError

    spec = app.openapi()
    validate(spec)
    schemas = spec["components"]["schemas"]
    update, create_ = schemas["ArticleUpdate"]["properties"], schemas["ArticleCreate"]["properties"]
    # Optional, not null-able (NOT NULL columns): no default at all rather than null.
    assert "default" not in update["title"] and "default" not in create_["token"]
    assert update["body"]["default"] is None  # null-able: null is the default
    assert create_["status"]["default"] == "draft"
