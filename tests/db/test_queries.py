"""get_or_404 and first_or_404, directly and through an app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload
from sqlalchemy.pool import NullPool

from trellis import App
from trellis.contrib.db.queries import first_or_404, get_or_404
from trellis.contrib.db.urls import async_url
from trellis.exceptions import NotFoundError
from trellis.handlers.params import Depends
from trellis.testing import TestClient


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "query_author"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    articles: Mapped[list[Article]] = relationship(back_populates="author")


class Article(Base):
    __tablename__ = "query_article"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("query_author.id"))
    author: Mapped[Author] = relationship(back_populates="articles")


class Line(Base):
    """A composite primary key."""

    __tablename__ = "query_line"

    order_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(async_url(db_url), poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with maker.begin() as session:
        ada = Author(name="Ada")
        session.add_all([ada, Article(slug="hello", author=ada), Article(slug="world", author=ada)])
        session.add(Line(order_id=1, number=2))
    try:
        yield maker
    finally:
        await engine.dispose()


@pytest.mark.anyio
async def test_get_or_404_returns_the_row_or_raises_not_found(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        article = await get_or_404(session, Article, 1)
        assert article.slug == "hello"
        with pytest.raises(NotFoundError) as info:
            await get_or_404(session, Article, 42)
        assert info.value.status == 404
        assert info.value.detail == "Article 42 not found"
        with pytest.raises(NotFoundError, match="No such post"):
            await get_or_404(session, Article, 42, detail="No such post")


@pytest.mark.anyio
async def test_get_or_404_with_a_composite_key_and_loader_options(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        assert (await get_or_404(session, Line, (1, 2))).number == 2
        with pytest.raises(NotFoundError) as info:
            await get_or_404(session, Line, {"order_id": 1, "number": 3})
        assert info.value.detail == "Line order_id=1, number=3 not found"
        with pytest.raises(NotFoundError, match=r"Line \(9, 9\) not found"):
            await get_or_404(session, Line, (9, 9))
        author = await get_or_404(session, Author, 1, options=[selectinload(Author.articles)])
    # Loaded eagerly: readable after the session closed, no lazy load in async code.
    assert sorted(a.slug for a in author.articles) == ["hello", "world"]


@pytest.mark.anyio
async def test_first_or_404_returns_the_entity_a_value_or_a_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        newest = await first_or_404(session, select(Article).order_by(Article.id.desc()))
        assert isinstance(newest, Article) and newest.slug == "world"
        assert await first_or_404(session, select(Article.slug).order_by(Article.slug)) == "hello"
        row = await first_or_404(
            session, select(Article.id, Article.slug).where(Article.slug == "world")
        )
        assert (row.id, row.slug) == (2, "world")
        with pytest.raises(NotFoundError) as info:
            await first_or_404(session, select(Article).where(Article.slug == "nope"))
        assert info.value.detail == "Article not found"
        with pytest.raises(NotFoundError, match="No article 'nope'"):
            await first_or_404(
                session, select(Article).where(Article.slug == "nope"), detail="No article 'nope'"
            )


@pytest.mark.anyio
async def test_not_found_becomes_a_404_problem_through_an_app(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def get_session() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    Session = Annotated[AsyncSession, Depends(get_session)]
    app = App(debug=True)

    @app.get("/articles/{id:int}")
    async def show(id: int, db: Session) -> dict[str, str]:
        return {"slug": (await get_or_404(db, Article, id)).slug}

    @app.get("/by-slug/{slug}")
    async def by_slug(slug: str, db: Session) -> dict[str, int]:
        article = await first_or_404(db, select(Article).where(Article.slug == slug))
        return {"id": article.id}

    with TestClient(app) as client:
        found = client.get("/articles/2")
        missing = client.get("/articles/99", headers={"accept": "application/json"})
        by_slug_found = client.get("/by-slug/hello")
        by_slug_missing = client.get("/by-slug/nope", headers={"accept": "application/json"})
    assert found.json() == {"slug": "world"}
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["detail"] == "Article 99 not found"
    assert by_slug_found.json() == {"id": 1}
    assert by_slug_missing.status_code == 404
    assert by_slug_missing.json()["detail"] == "Article not found"
