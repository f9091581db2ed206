"""Helpers of the admin's tests (``from admin_helpers import make_app``).

The models live on a declarative base of their own (like tests/db's), so that the docs
examples, which reset the shared ``Model``, never take them away from these tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Column, ForeignKey, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from trellis import App, Request
from trellis.contrib.admin import Admin, AdminLogEntry, ModelAdmin, action
from trellis.contrib.auth import Auth, Group, PasswordHasher, Permission, User
from trellis.contrib.db import NAMING_CONVENTION, Database, Model, UTCDateTime, utcnow
from trellis.testing import TestClient

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"
SECRET_KEY = "admin-tests-" + "k" * 40


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {str: String(255), datetime: UTCDateTime()}


book_tag = Table(
    "book_tag",
    Base.metadata,
    Column("book_id", ForeignKey("book.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
)


class Author(Base):
    __tablename__ = "author"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    books: Mapped[list[Book]] = relationship(back_populates="author")

    def __str__(self) -> str:
        return self.name


class Tag(Base):
    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class Book(Base):
    __tablename__ = "book"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    isbn: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    summary: Mapped[str] = mapped_column(Text, default="")
    pages: Mapped[int] = mapped_column(default=0)
    published: Mapped[bool] = mapped_column(default=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="books")
    tags: Mapped[list[Tag]] = relationship(secondary=book_tag)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Secret(Base):
    """A model with a column that must never show."""

    __tablename__ = "secret_thing"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(50))
    api_token: Mapped[str] = mapped_column(String(100), default="")


class BookAdmin(ModelAdmin):
    list_display = ("title", "author", "published", "pages")
    search_fields = ("title", "isbn")
    list_filter = ("published", "author_id")
    ordering = ("title",)
    list_per_page = 3
    readonly_fields = ("created_at",)

    @action(label="Mark as published")
    async def publish(self, request: Request, db: AsyncSession, books: Sequence[Book]) -> str:
        for book in books:
            book.published = True
        return f"Published {len(books)}."

    @action(label="Withdraw", permission="book.withdraw", confirm=True)
    async def withdraw(
        self, request: Request, db: AsyncSession, books: Sequence[Book]
    ) -> str | None:
        for book in books:
            book.published = False
        return None

    @action(label="Explode", permission="change")
    async def explode(self, request: Request, db: AsyncSession, books: Sequence[Book]) -> None:
        for book in books:
            book.title = "changed before the crash"
        await db.flush()
        raise RuntimeError("the action failed half-way")


class AuthorAdmin(ModelAdmin):
    search_fields = ("name",)


#: The auth and admin tables (the batteries' migrations are tested elsewhere).
BATTERY_TABLES = [
    table
    for table in Model.metadata.sorted_tables
    if table.info.get("migration_branch") in ("trellis_auth", "trellis_admin")
]
assert AdminLogEntry.__table__ in BATTERY_TABLES


def make_app(
    database_url: str,
    *,
    register: bool = True,
    engine_options: dict[str, Any] | None = None,
    **admin_options: Any,
) -> App:
    """An app with the data, auth (pages and API) and admin batteries, and the tables."""
    app = App(debug=True, secret_key=SECRET_KEY)
    db = app.install(
        Database(database_url, pool_size=2, max_overflow=3, engine_options=engine_options)
    )
    app.install(Auth(hasher=FAST_HASHER, throttle=False))
    admin = app.install(Admin(**admin_options))
    if register:
        admin.register(Book, BookAdmin)
        admin.register(Author, AuthorAdmin)
        admin.register(Tag)
        admin.register(Secret)

    @app.on_startup
    async def tables() -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(Model.metadata.create_all, tables=BATTERY_TABLES)
            await conn.run_sync(Base.metadata.create_all)

    return app


async def seed(db: Database) -> None:
    """Users with different rights, and a few books."""
    async with db.transaction() as session:
        perms = {
            codename: Permission(codename=codename)
            for codename in (
                "book.view",
                "book.add",
                "book.change",
                "book.delete",
                "author.view",
                "tag.view",
            )
        }
        editors = Group(
            name="editors",
            permissions=[perms[c] for c in ("book.view", "book.add", "book.change", "book.delete")],
        )
        users = [
            User(email="root@example.com", username="root", is_superuser=True),
            User(email="viewer@example.com", username="viewer", permissions=[perms["book.view"]]),
            User(email="editor@example.com", username="editor", groups=[editors]),
            User(email="nobody@example.com", username="nobody"),
            User(email="tagger@example.com", username="tagger", permissions=[perms["tag.view"]]),
        ]
        for user in users:
            user.password_hash = FAST_HASHER.hash(PASSWORD)
        session.add_all(users)
        ann = Author(name="Ann Leckie")
        ursula = Author(name="Ursula K. Le Guin")
        sf, classic = Tag(name="sf"), Tag(name="classic")
        session.add_all(
            [
                Book(title="Ancillary Justice", pages=386, author=ann, tags=[sf]),
                Book(title="Ancillary Sword", pages=356, author=ann, tags=[sf]),
                Book(
                    title="The Left Hand of Darkness",
                    pages=304,
                    author=ursula,
                    published=True,
                    tags=[sf, classic],
                ),
                Book(title="The Dispossessed", pages=387, author=ursula, published=True),
                Book(title="A Wizard of Earthsea", pages=183, author=ursula, isbn="978-0"),
            ]
        )
        session.add(Secret(label="launch codes", api_token="tok-SUPERSECRET"))


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:2000]
    return found.group(1)


def login(client: TestClient, username: str) -> None:
    """Sign in through the auth battery's login page."""
    page = client.get("/auth/login")
    response = client.post(
        "/auth/login",
        data={"csrf_token": csrf_of(page.text), "login": username, "password": PASSWORD},
    )
    assert response.status_code == 303, response.text


def log_entries(client: TestClient, db: Database) -> list[AdminLogEntry]:
    async def read() -> list[AdminLogEntry]:
        async with db.session() as session:
            return list(
                (await session.scalars(select(AdminLogEntry).order_by(AdminLogEntry.id))).all()
            )

    return client.call(read)
