"""Model factories: declared values, sequences, lazy and related attributes, saving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar, TypeVar

import pytest
from sqlalchemy import ForeignKey, MetaData, String, func, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from trellis.contrib.db import NAMING_CONVENTION, Database
from trellis.contrib.db.factories import Factory, LazyAttribute, Sequence, SubFactory


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {str: String(255)}


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    email: Mapped[str] = mapped_column(unique=True)
    articles: Mapped[list[Article]] = relationship(back_populates="author")


class Article(Base):
    __tablename__ = "article"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    slug: Mapped[str]
    status: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    author: Mapped[User] = relationship(back_populates="articles")


class UserFactory(Factory[User]):
    name = "Ann"
    email = Sequence(lambda n: f"user{n}@example.com")


class ArticleFactory(Factory[Article]):
    # The slug is declared before the title it is made from: order does not matter.
    slug = LazyAttribute(lambda a: a.title.lower().replace(" ", "-"))
    title = Sequence(lambda n: f"Article {n}")
    status = "draft"
    author = SubFactory(UserFactory, name="Writer")

    @classmethod
    def published(cls, **overrides: Any) -> Article:
        return cls.build(status="published", **overrides)


@pytest.fixture(autouse=True)
def fresh_sequences() -> None:
    UserFactory.reset_sequence()
    ArticleFactory.reset_sequence()


def test_build_makes_an_unsaved_object() -> None:
    article: Article = ArticleFactory.build()
    assert isinstance(article, Article)
    assert inspect(article).transient  # in no session
    assert (article.title, article.slug, article.status) == ("Article 1", "article-1", "draft")
    assert isinstance(article.author, User)
    assert (article.author.name, article.author.email) == ("Writer", "user1@example.com")


def test_sequences_count_up_per_factory() -> None:
    assert [u.email for u in UserFactory.build_batch(3)] == [
        "user1@example.com",
        "user2@example.com",
        "user3@example.com",
    ]
    assert ArticleFactory.build().title == "Article 1"  # its own counter...
    assert ArticleFactory.build().author.email == "user5@example.com"  # ...users share one
    UserFactory.reset_sequence(100)
    assert UserFactory.build().email == "user100@example.com"


def test_every_sequence_of_one_object_gets_the_same_number() -> None:
    class TicketFactory(Factory[User]):
        name = Sequence(lambda n: f"Ticket {n}")
        email = Sequence(lambda n: f"ticket{n}@example.com")

    TicketFactory.build()
    user = TicketFactory.build()
    assert (user.name, user.email) == ("Ticket 2", "ticket2@example.com")


def test_overrides_win_and_lazy_attributes_see_them() -> None:
    article = ArticleFactory.build(title="Hello World", status="published")
    assert (article.title, article.slug, article.status) == (
        "Hello World",
        "hello-world",
        "published",
    )
    assert ArticleFactory.build(slug="custom").slug == "custom"
    assert ArticleFactory.published().status == "published"  # methods are not attributes


def test_related_objects() -> None:
    ann = UserFactory.build(name="Ann")
    assert ArticleFactory.build(author=ann).author is ann
    article = ArticleFactory.build(author__name="Bob", author__email="bob@example.com")
    assert (article.author.name, article.author.email) == ("Bob", "bob@example.com")
    with pytest.raises(TypeError, match="title__x= sets a field of title, which is not a Sub"):
        ArticleFactory.build(title__x=1)


def test_attributes_without_an_object() -> None:
    values = UserFactory.attributes(name="Cy")
    assert values == {"name": "Cy", "email": "user1@example.com"}


def test_subclasses_inherit_and_override() -> None:
    class AdminFactory(UserFactory):
        name = "Admin"

    admin = AdminFactory.build()
    assert isinstance(admin, User)
    assert (admin.name, admin.email) == ("Admin", "user1@example.com")
    assert UserFactory.build().name == "Ann"


def test_the_model_can_be_an_attribute_and_a_generic_base_has_none() -> None:
    M = TypeVar("M")

    class NamedFactory(Factory[M]):
        name = "Named"

    class NamedUserFactory(NamedFactory[User]):
        email = "named@example.com"

    class ExplicitFactory(NamedFactory[Any]):
        model = User
        email = "explicit@example.com"

    assert NamedUserFactory.build().name == "Named"
    assert ExplicitFactory.build().email == "explicit@example.com"
    with pytest.raises(TypeError, match=r"NamedFactory has no model: class NamedFactory\("):
        NamedFactory.build()


def test_errors() -> None:
    class LoopFactory(Factory[User]):
        name = LazyAttribute(lambda u: u.email)
        email = LazyAttribute(lambda u: u.name)

    with pytest.raises(ValueError, match="attributes depend on each other: name -> email -> name"):
        LoopFactory.build()

    class TypoFactory(Factory[User]):
        name = LazyAttribute(lambda u: u.nmae)

    with pytest.raises(AttributeError, match="TypoFactory has no attribute 'nmae'"):
        TypoFactory.build()
    with pytest.raises(TypeError, match=r"UserFactory.build\(\) or .create\(\) makes objects"):
        UserFactory()


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.create_all(Base.metadata)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.mark.anyio
async def test_create_adds_and_flushes(database: Database) -> None:
    async with database.session() as session:
        article = await ArticleFactory.create(session, title="Saved")
        assert article.id is not None and article.author.id is not None
        assert article.author_id == article.author.id
        batch = await ArticleFactory.create_batch(session, 3, author=article.author)
        assert len({a.id for a in batch}) == 3
        users = await UserFactory.create_batch(session, 2)
        assert all(u.id is not None for u in users)
        assert await session.scalar(select(func.count()).select_from(Article)) == 4
        await session.rollback()  # flushed, never committed
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
