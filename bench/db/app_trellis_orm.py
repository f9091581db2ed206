"""Trellis through its ORM battery (trellis.contrib.db), the way a user writes it.

``Database(url, pool_size=BENCH_POOL_SIZE, max_overflow=0)`` installed on the app; handlers take
the per-request session by type (``db: Session``: committed when the handler returns). /db is
``await db.get(World, id)``; /fortunes ``select(Fortune.id, Fortune.message)`` (as the TFB
fastapi ORM entry) plus an unsaved ``Fortune(id=0, ...)``, sorted in Python and rendered with
``render()`` (Trellis templates: Jinja2, autoescape on).
"""

from operator import attrgetter
from random import randint

from dbcommon import ADDITIONAL_FORTUNE, DATABASE_URL, POOL_SIZE, TEMPLATES
from sqlalchemy import select
from sqlalchemy.orm import Mapped, mapped_column

from trellis import App
from trellis.contrib.db import Database, Model, Session
from trellis.templating import render

app = App(debug=False, secret_key="bench-" + "x" * 40, templates_dir=str(TEMPLATES))
app.install(Database(DATABASE_URL, pool_size=POOL_SIZE, max_overflow=0))


class World(Model):
    __tablename__ = "world"
    id: Mapped[int] = mapped_column(primary_key=True)
    randomnumber: Mapped[int]


class Fortune(Model):
    __tablename__ = "fortune"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]


sort_key = attrgetter("message")


@app.get("/db")
async def single(db: Session) -> dict[str, int]:
    world = await db.get(World, randint(1, 10000))
    return {"id": world.id, "randomNumber": world.randomnumber}


@app.get("/fortunes")
async def fortunes(db: Session) -> object:
    rows = (await db.execute(select(Fortune.id, Fortune.message))).all()
    rows.append(Fortune(id=0, message=ADDITIONAL_FORTUNE))
    rows.sort(key=sort_key)
    return render("fortune.html", fortunes=rows)
