"""FastAPI + raw asyncpg, written like the TFB fastapi entry (frameworks/Python/fastapi/app.py).

The pool is made in the lifespan (min_size = max_size = BENCH_POOL_SIZE, so every app holds the
same number of connections); statements are the entry's, run through asyncpg's statement cache
(prepared once per connection). JSON from a ``-> dict[str, int]`` return (FastAPI 0.165
deprecates the entry's UJSONResponse and serialises return values itself); fortunes through
``Jinja2Templates`` (autoescape on for ``.html``).
"""

from contextlib import asynccontextmanager
from operator import itemgetter
from random import randint

import asyncpg
from dbcommon import (
    ADDITIONAL_FORTUNE,
    DATABASE_URL,
    FORTUNES_SQL,
    POOL_SIZE,
    READ_ROW_SQL,
    TEMPLATES,
)
from fastapi import FastAPI, Request
from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=TEMPLATES)
sort_key = itemgetter("message")
pool = None


@asynccontextmanager
async def lifespan(app):
    global pool
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=POOL_SIZE, max_size=POOL_SIZE)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/db")
async def single_database_query() -> dict[str, int]:
    row_id = randint(1, 10000)
    async with pool.acquire() as connection:
        number = await connection.fetchval(READ_ROW_SQL, row_id)
    return {"id": row_id, "randomNumber": number}


@app.get("/fortunes")
async def fortunes(request: Request):
    async with pool.acquire() as connection:
        rows = await connection.fetch(FORTUNES_SQL)
    rows.append({"id": 0, "message": ADDITIONAL_FORTUNE})
    rows.sort(key=sort_key)
    return templates.TemplateResponse(request, "fortune.html", {"fortunes": rows})
