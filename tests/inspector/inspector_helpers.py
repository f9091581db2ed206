"""Helpers of the inspector tests: an app in debug mode with a SQLite database, templates,
sessions and the inspector, and readers of its records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trellis import App, Request
from trellis.contrib.db import NAMING_CONVENTION, Database, Session, SyncSession
from trellis.contrib.inspector import Inspector
from trellis.http.response import HTMLResponse
from trellis.templating import render
from trellis.testing import TestClient

SECRET = "inspector-test-secret-key-0123456789abcdef"

PAGE = """<!doctype html>
<html><head><title>{{ title }}</title></head>
<body><h1>{{ title }}</h1>
<ul>{% for book in books %}<li>{{ book.title }}</li>{% endfor %}</ul>
</body></html>
"""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {str: String(255)}


class Book(Base):
    __tablename__ = "inspector_book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]


class FakeUser:
    def __init__(self, id: int, username: str) -> None:
        self.id = id
        self.username = username


def make_app(tmp_path: Path, *, database: bool = True, **options: Any) -> App:
    """A debug app: ``/books`` (2 queries, a template), ``/api/books`` (JSON) and friends."""
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "books.html").write_text(PAGE, encoding="utf-8")
    (templates / "broken.html").write_text("{{ missing.attribute }}", encoding="utf-8")
    app = App(debug=True, secret_key=SECRET, templates_dir=str(templates))
    if database:
        db = app.install(Database(f"sqlite:///{tmp_path / 'books.db'}"))

        @app.on_startup
        async def tables() -> None:
            await db.create_all(Base.metadata)
            async with db.session() as session:
                session.add_all([Book(title="Dune"), Book(title="Emma")])
                await session.commit()

        @app.get("/books")
        async def books(request: Request, db: Session) -> HTMLResponse:
            request.session["cart"] = ["dune"]
            request.session["visits"] = request.session.get("visits", 0) + 1
            found = (await db.scalars(select(Book).order_by(Book.id))).all()
            first = await db.scalar(select(Book).where(Book.title == "Dune"))
            assert first is not None
            return render("books.html", title="Books", books=found)

        @app.get("/api/books")
        async def api_books(db: Session) -> list[str]:
            return list((await db.scalars(select(Book.title).order_by(Book.id))).all())

        @app.get("/sync-books")
        def sync_books(db: SyncSession) -> list[str]:
            return list(db.scalars(select(Book.title).order_by(Book.id)).all())

        @app.get("/twice")
        async def twice(db: Session) -> dict[str, int]:
            for _ in range(2):
                await db.scalar(select(Book.id).where(Book.title == "Emma"))
            await db.scalar(select(Book.id).where(Book.title == "Dune"))
            return {"ok": 1}

    @app.get("/page")
    async def page(request: Request) -> HTMLResponse:
        return render("books.html", title="Plain", books=[])

    @app.get("/me")
    async def me(request: Request) -> HTMLResponse:
        request.state.user = FakeUser(7, "ada")
        return HTMLResponse("<html><body>hello ada</body></html>")

    app.install(Inspector(**options))
    return app


def record_id(response: Any) -> str:
    """The id of the record named by a response's ``X-Trellis-Inspector`` header."""
    link: str = response.headers["x-trellis-inspector"]
    return link.rsplit("/", 1)[1]


def record_json(client: TestClient, response: Any) -> dict[str, Any]:
    """The JSON record of the request that gave ``response``."""
    answer = client.get(f"/_inspector/api/requests/{record_id(response)}")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data
