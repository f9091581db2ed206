"""Admin demo: a bookshop's catalogue (authors, books, tags) managed in the Trellis admin.

Run it with ``ADMIN_DEMO_PASSWORD=a-long-password python examples/admin_demo/app.py``
(debug mode, a SQLite file ``admin_demo.db`` in the current directory, tables and sample data
made on the first start, a superuser ``admin`` with that password) and open
http://127.0.0.1:8000/admin. See README.md for production settings.

- ``Author``, ``Book`` (a foreign key to its author, many-to-many tags) and ``Tag`` are
  registered with the admin: lists with search, filters and sorting, forms with selects,
  bulk actions (delete, and "Mark as published"), the action log, and the JSON API under
  ``/admin/api`` (described at ``/openapi.json`` and ``/docs``).
- Accounts come from the auth battery (its login page, shown in the admin's style through
  ``templates/auth/base.html``); permissions from ``trellis user grant``.
- Error tickets: ``/crash`` fails on purpose; in production its ticket shows up on the
  admin's dashboard.
- English and French: the language switch is at the top of every admin page.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy import Column, Enum, ForeignKey, Numeric, String, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis import App, HTMLResponse, Request
from trellis.contrib.admin import Admin, ModelAdmin, action
from trellis.contrib.auth import Auth, PasswordHasher, User
from trellis.contrib.db import Database, IdMixin, Model, TimestampMixin
from trellis.contrib.db.migrations import Migrations
from trellis.contrib.i18n import I18n
from trellis.contrib.tickets import Tickets
from trellis.openapi import APIDocs

HERE = Path(__file__).resolve().parent

#: The database when neither ``create_app(database_url=...)`` nor ``TRELLIS_DATABASE_URL``
#: names one: a file in the current directory.
DEFAULT_DATABASE_URL = "sqlite:///admin_demo.db"
#: Pages may load scripts, styles, images and forms from this site only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)


# --- the models -----------------------------------------------------------------------------


class Genre(enum.Enum):
    """What shelf a book goes on."""

    novel = "novel"
    science_fiction = "science fiction"
    fantasy = "fantasy"
    essay = "essay"


book_tag = Table(
    "demo_book_tag",
    Model.metadata,
    Column("book_id", ForeignKey("demo_book.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("demo_tag.id", ondelete="CASCADE"), primary_key=True),
)


class Author(IdMixin, Model):
    """Someone who wrote books."""

    __tablename__ = "demo_author"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    born: Mapped[date | None] = mapped_column(default=None)
    biography: Mapped[str] = mapped_column(Text, default="")
    books: Mapped[list[Book]] = relationship(back_populates="author")

    def __str__(self) -> str:
        return self.name


class Tag(IdMixin, Model):
    """A label put on books."""

    __tablename__ = "demo_tag"

    name: Mapped[str] = mapped_column(String(50), unique=True)

    def __str__(self) -> str:
        return self.name


class Book(IdMixin, TimestampMixin, Model):
    """A book in the catalogue."""

    __tablename__ = "demo_book"

    title: Mapped[str] = mapped_column(String(200))
    isbn: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    author_id: Mapped[int] = mapped_column(ForeignKey("demo_author.id"), index=True)
    author: Mapped[Author] = relationship(back_populates="books")
    genre: Mapped[Genre] = mapped_column(
        Enum(Genre, native_enum=False, length=30), default=Genre.novel
    )
    pages: Mapped[int] = mapped_column(default=0)
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2), default=Decimal("0"))
    published: Mapped[bool] = mapped_column(default=False, index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[Tag]] = relationship(secondary=book_tag)

    def __str__(self) -> str:
        return self.title


# --- the admin ------------------------------------------------------------------------------


class BookAdmin(ModelAdmin):
    """Books: searched by title and ISBN, filtered by shelf, author and status."""

    list_display = ("title", "author", "genre", "price", "published", "updated_at")
    search_fields = ("title", "isbn")
    list_filter = ("published", "genre", "author_id")
    ordering = ("title",)
    readonly_fields = ("created_at", "updated_at")
    list_per_page = 10

    @action(label="Mark as published")
    async def publish(self, request: Request, db: AsyncSession, books: Sequence[Book]) -> str:
        """Publish the selected books."""
        for book in books:
            book.published = True
        return f"{len(books)} book(s) published."


class AuthorAdmin(ModelAdmin):
    """Authors, with how many books each has."""

    list_display = ("name", "born", "book_count")
    search_fields = ("name",)
    ordering = ("name",)

    def book_count(self, author: Author) -> int:
        """The number of the author's books (loaded with the list)."""
        return len(author.__dict__.get("books") or ())

    book_count.label = "Books"  # type: ignore[attr-defined]

    def get_queryset(self, request: Request) -> Any:
        """Authors with their books (for the count)."""
        from sqlalchemy.orm import selectinload

        return select(Author).options(selectinload(Author.books))


class TagAdmin(ModelAdmin):
    """Tags."""

    search_fields = ("name",)
    ordering = ("name",)


# --- sample data ----------------------------------------------------------------------------

AUTHORS = {
    "Ursula K. Le Guin": date(1929, 10, 21),
    "Ann Leckie": date(1966, 3, 2),
    "Italo Calvino": date(1923, 10, 15),
    "Rebecca Solnit": date(1961, 6, 24),
}
SF, FANTASY, NOVEL, ESSAY = Genre.science_fiction, Genre.fantasy, Genre.novel, Genre.essay
# title, author, genre, pages, price, published, tags
BOOKS = [
    ("The Left Hand of Darkness", "Ursula K. Le Guin", SF, 304, "9.99", True, "classic,award"),
    ("The Dispossessed", "Ursula K. Le Guin", SF, 387, "10.50", True, "classic"),
    ("A Wizard of Earthsea", "Ursula K. Le Guin", FANTASY, 183, "8.00", True, "classic,young"),
    ("The Lathe of Heaven", "Ursula K. Le Guin", SF, 184, "9.00", False, ""),
    ("Ancillary Justice", "Ann Leckie", SF, 386, "11.00", True, "award"),
    ("Ancillary Sword", "Ann Leckie", SF, 356, "11.00", False, ""),
    ("Invisible Cities", "Italo Calvino", NOVEL, 165, "12.00", True, "classic"),
    ("If on a Winter's Night a Traveler", "Italo Calvino", NOVEL, 260, "12.50", False, ""),
    ("A Field Guide to Getting Lost", "Rebecca Solnit", ESSAY, 209, "14.00", True, ""),
]


async def seed(db: Database) -> None:
    """The sample catalogue, when the database has no author yet."""
    async with db.transaction() as session:
        if await session.scalar(select(func.count()).select_from(Author)):
            return
        authors = {name: Author(name=name, born=born) for name, born in AUTHORS.items()}
        tags: dict[str, Tag] = {}
        for title, author, genre, pages, price, published, tag_names in BOOKS:
            session.add(
                Book(
                    title=title,
                    author=authors[author],
                    genre=genre,
                    pages=pages,
                    price=Decimal(price),
                    published=published,
                    tags=[tags.setdefault(t, Tag(name=t)) for t in tag_names.split(",") if t],
                )
            )


async def ensure_superuser(db: Database, auth: Auth, username: str, password: str) -> None:
    """Create the superuser ``username`` unless it exists (``ADMIN_DEMO_PASSWORD`` set)."""
    async with db.transaction() as session:
        if await auth.find_user(session, username) is not None:
            return
        user = User(email=f"{username}@example.com", username=username, is_superuser=True)
        await auth.aset_password(user, password)
        session.add(user)


# --- the application ------------------------------------------------------------------------


def create_app(
    database_url: str | None = None,
    *,
    hasher: PasswordHasher | None = None,
    superuser: tuple[str, str] | None = None,
    **settings: Any,
) -> App:
    """Build the demo.

    Args:
        database_url: The database (default: ``TRELLIS_DATABASE_URL``, else
            ``sqlite:///admin_demo.db``).
        hasher: The password hasher (default: argon2id; tests pass a cheap one).
        superuser: ``(username, password)`` of a superuser made at start-up when missing;
            default: ``("admin", ADMIN_DEMO_PASSWORD)`` when that variable is set.
        **settings: ``TRELLIS_*`` settings to override (``debug=True``, ``secret_key=...``).
    """
    settings.setdefault("templates_dir", str(HERE / "templates"))
    settings.setdefault("content_security_policy", CONTENT_SECURITY_POLICY)
    app = App(**settings)
    app.openapi_info = {"title": "Bookshop admin API", "version": "1.0.0"}
    if database_url is None and "database_url" not in app.settings.model_fields_set:
        database_url = DEFAULT_DATABASE_URL
    db: Database = app.install(Database(database_url))
    auth: Auth = app.install(Auth(hasher=hasher, registration=False))
    auth.login_redirect_url = "/admin"
    auth.logout_redirect_url = "/auth/login"
    app.install(Tickets())  # in the database: the trellis_ticket table
    app.install(I18n(default_locale="en", locales=("en", "fr"), directory=HERE / "locale"))
    admin: Admin = app.install(Admin(title="Bookshop admin"))
    admin.register(Book, BookAdmin)
    admin.register(Author, AuthorAdmin)
    admin.register(Tag, TagAdmin)
    app.install(APIDocs())

    # The project's migrations live next to this file; the batteries' (auth, admin log,
    # tickets) come with them: `trellis --app examples/admin_demo/app.py db upgrade`.
    migrations = Migrations(db, HERE / "migrations")
    app.state.migrations = migrations

    @app.on_startup
    async def migrate_and_seed() -> None:
        """On the first start: the tables, the sample catalogue, the demo superuser."""

        def upgrade_if_empty() -> None:
            if not any(migrations.current().values()):
                migrations.upgrade()

        await anyio.to_thread.run_sync(upgrade_if_empty)
        await seed(db)
        wanted = superuser
        if wanted is None and os.environ.get("ADMIN_DEMO_PASSWORD"):
            wanted = ("admin", os.environ["ADMIN_DEMO_PASSWORD"])
        if wanted is not None:
            await ensure_superuser(db, auth, *wanted)

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><title>Bookshop</title><h1>Bookshop</h1>"
            '<p><a href="/admin">The admin</a> · <a href="/docs">The API</a></p>'
        )

    @app.get("/crash", include_in_schema=False)
    async def crash() -> None:
        """Fails on purpose: in production the failure becomes an error ticket."""
        raise RuntimeError("the stock service did not answer (a demo crash)")

    return app


app = create_app()

if __name__ == "__main__":
    app.run()
