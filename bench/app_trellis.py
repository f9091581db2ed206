"""Trellis: path/query params converted by hand (like Falcon/Starlette), pydantic body.

The typed-parameter layer (``limit: int = 10`` in the signature) is not used yet: ``user_id``
is a plain ``{user_id}`` segment converted with ``int()`` so that ``/users/abc`` answers 422
(``{user_id:int}`` would not match it and answer 404, like Litestar's and Sanic's typed routes).
"""

from pydantic import BaseModel, ValidationError

from trellis import App, HTTPError, Request

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
async def users(user_id: str, request: Request) -> dict[str, int]:
    raw_limit = request.query.get("limit")
    try:
        uid = int(user_id)
        limit = 10 if raw_limit is None else int(raw_limit)
    except ValueError:
        raise HTTPError(422, "user_id and limit must be integers") from None
    return {"user_id": uid, "limit": limit}


@app.post("/items")
async def items(request: Request) -> dict[str, object]:
    try:
        item = Item.model_validate_json(await request.body())
    except ValidationError as exc:
        raise HTTPError(
            422,
            "invalid item",
            extra={
                "errors": exc.errors(include_url=False, include_context=False, include_input=False)
            },
        ) from None
    return item.model_dump()
