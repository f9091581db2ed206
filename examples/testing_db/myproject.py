"""A small project with a database, tested with the rollback fixtures (see its tests)."""

from sqlalchemy import select
from sqlalchemy.orm import Mapped

from trellis import App
from trellis.contrib.db import Database, IdMixin, Model, Session


class Note(IdMixin, Model):
    text: Mapped[str]


def create_app(database_url: str) -> App:
    app = App(csrf=False)  # a JSON API
    app.install(Database(database_url))

    @app.get("/notes")
    async def notes(db: Session) -> list[str]:
        return list(await db.scalars(select(Note.text).order_by(Note.id)))

    @app.post("/notes", status_code=201)
    async def add_note(note: dict[str, str], db: Session) -> None:
        db.add(Note(text=note["text"]))

    return app
