"""Trellis + raw asyncpg: the pool is made in ``on_startup`` like the TFB raw entries'.

min_size = max_size = BENCH_POOL_SIZE; statements as in the TFB fastapi entry (asyncpg's
statement cache prepares each once per connection). Fortunes through Trellis's templates
(``render``: Jinja2, autoescape on).
"""

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

from trellis import App
from trellis.templating import render

app = App(debug=False, secret_key="bench-" + "x" * 40, templates_dir=str(TEMPLATES))
sort_key = itemgetter("message")
pool = None


@app.on_startup
async def open_pool() -> None:
    global pool
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=POOL_SIZE, max_size=POOL_SIZE)


@app.on_shutdown
async def close_pool() -> None:
    await pool.close()


@app.get("/db")
async def single() -> dict[str, int]:
    row_id = randint(1, 10000)
    async with pool.acquire() as connection:
        number = await connection.fetchval(READ_ROW_SQL, row_id)
    return {"id": row_id, "randomNumber": number}


@app.get("/fortunes")
async def fortunes() -> object:
    async with pool.acquire() as connection:
        rows = await connection.fetch(FORTUNES_SQL)
    rows.append({"id": 0, "message": ADDITIONAL_FORTUNE})
    rows.sort(key=sort_key)
    return render("fortune.html", fortunes=rows)
