"""FastAPI + SQLAlchemy 2 async ORM, like the TFB entry frameworks/Python/fastapi/app_orm.py.

``create_async_engine("postgresql+asyncpg://...", pool_size=BENCH_POOL_SIZE, max_overflow=0)``
made at startup (lifespan), an ``async_sessionmaker``; /db is ``AsyncSession.get(World, id)``,
/fortunes ``select(Fortune.id, Fortune.message)`` plus the added fortune, sorted in Python and
rendered by ``Jinja2Templates`` (autoescape on for ``.html``). Changes from the entry: the 2.0
declarative style (``DeclarativeBase``, ``Mapped``), a lifespan instead of the deprecated
``on_event``, and a ``-> dict[str, int]`` return instead of the deprecated UJSONResponse.
"""

from contextlib import asynccontextmanager
from operator import attrgetter
from random import randint

from dbcommon import ADDITIONAL_FORTUNE, DATABASE_URL, POOL_SIZE, TEMPLATES, with_driver
from fastapi import FastAPI, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class World(Base):
    __tablename__ = "world"
    id: Mapped[int] = mapped_column(primary_key=True)
    randomnumber: Mapped[int]

    def __json__(self):
        return {"id": self.id, "randomNumber": self.randomnumber}


class Fortune(Base):
    __tablename__ = "fortune"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]


ADDITIONAL = Fortune(id=0, message=ADDITIONAL_FORTUNE)
sort_key = attrgetter("message")
templates = Jinja2Templates(directory=TEMPLATES)
sessions = None


@asynccontextmanager
async def lifespan(app):
    global sessions
    engine = create_async_engine(
        with_driver(DATABASE_URL, "asyncpg"),
        pool_size=POOL_SIZE,
        max_overflow=0,
        connect_args={"ssl": False},
    )
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/db")
async def single_database_query() -> dict[str, int]:
    async with sessions() as sess:
        world = await sess.get(World, randint(1, 10000))
    return world.__json__()


@app.get("/fortunes")
async def fortunes(request: Request):
    async with sessions() as sess:
        result = await sess.execute(select(Fortune.id, Fortune.message))
        data = result.all()
    data.append(ADDITIONAL)
    data.sort(key=sort_key)
    return templates.TemplateResponse(request, "fortune.html", {"fortunes": data})
