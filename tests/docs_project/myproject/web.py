"""``myproject.web:app``: the application the docs' shell commands run.

One app with what the commands expect of it: the data battery (``trellis db``), auth
(``trellis user``), the admin with a ``Book`` model (``book.change``), i18n (``trellis i18n``),
error tickets (``trellis tickets``), a task queue on Redis when ``REDIS_URL`` is set
(``trellis worker``), the ``seed-db`` command and the ``hello`` and ``user`` routes.
"""

import os
from pathlib import Path

import click
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from trellis import App
from trellis.contrib.admin import Admin
from trellis.contrib.auth import Auth
from trellis.contrib.db import Database, IdMixin, Model
from trellis.contrib.i18n import I18n
from trellis.contrib.i18n import gettext as _
from trellis.contrib.tickets import Tickets


class Author(IdMixin, Model):
    name: Mapped[str] = mapped_column(String(100))


class Book(IdMixin, Model):
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))


class Note(IdMixin, Model):
    text: Mapped[str] = mapped_column(String(500))


def create_app() -> App:
    app = App()
    app.install(Database("sqlite:///myproject.db"))
    app.install(Auth())
    admin = app.install(Admin())
    admin.register(Book)
    admin.register(Author)
    app.install(I18n(locales=("en", "fr")))
    app.install(Tickets())  # on the Database: `trellis db upgrade` makes its table
    if "REDIS_URL" in os.environ:
        from trellis.contrib.tasks import RedisTasks

        queue = os.environ.get("REDIS_PREFIX", "trellis")
        app.install(RedisTasks(os.environ["REDIS_URL"], queue=queue))

        @app.task
        async def touch(path: str) -> None:
            Path(path).touch()

        @app.post("/touch")
        async def send_touch(path: str) -> dict[str, str]:
            return {"job": (await touch.send(path)).id}

    @app.get("/")
    def hello() -> str:
        return _("Hello, world!")

    @app.get("/users/{id:int}")
    def user(id: int) -> dict[str, int]:
        return {"id": id}

    @app.command()
    @click.argument("count", type=int)
    def seed_db(count: int) -> None:
        """Fill the database with COUNT users."""
        click.echo(f"created {count} users")

    return app


app = create_app()
