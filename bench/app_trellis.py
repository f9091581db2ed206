"""Trellis: typed handlers, as a user writes them.

``user_id`` and ``limit`` are read from the path and the query string and validated from the
type hints (``/users/abc`` and ``?limit=x`` answer 422); the body is validated into ``Item``
straight from the raw bytes, and the return type serialises the answer.
"""

from pydantic import BaseModel

from trellis import App

SECRET_KEY = "bench-" + "x" * 40  # production mode (debug off) requires a secret key


class Item(BaseModel):
    name: str
    price: float
    tags: list[str]


app = App(debug=False, secret_key=SECRET_KEY)


@app.get("/plaintext")
async def plaintext() -> str:
    return "Hello, World!"


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/users/{user_id}")
async def users(user_id: int, limit: int = 10) -> dict[str, int]:
    return {"user_id": user_id, "limit": limit}


@app.post("/items")
async def items(item: Item) -> Item:
    return item
