"""A typed to-do API: CRUD, query filters, headers, dependencies, uploads and API docs.

Run it with ``TRELLIS_DEBUG=1 python examples/todo_api/app.py`` and open
http://127.0.0.1:8000/docs (Swagger UI) or http://127.0.0.1:8000/redoc. Every request needs
``Authorization: Bearer <token>`` with one of the tokens in ``TOKENS`` ("Authorize" in /docs).

Each user sees only their own to-dos. The data lives in memory, one ``TodoStore`` per app.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from trellis import App, HTTPError, Request, Response
from trellis.handlers.params import Depends, File, Header, Query
from trellis.http.forms import UploadFile
from trellis.openapi import APIDocs
from trellis.security import HTTPBearer

#: Bearer tokens and the user each one stands for. A real app checks a JWT or a session.
TOKENS = {"ann-secret-token": "ann", "bob-secret-token": "bob"}

#: Largest attachment, in bytes.
MAX_ATTACHMENT_SIZE = 64 * 1024


# --- models ---------------------------------------------------------------------------------


class TodoIn(BaseModel):
    """A new to-do, or a full replacement of one."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, examples=["Buy milk"])
    notes: str = Field(default="", max_length=2000)
    done: bool = False
    priority: int = Field(default=3, ge=1, le=5, description="1 is the most urgent.")
    tags: list[Annotated[str, Field(min_length=1, max_length=30)]] = Field(
        default=[], max_length=10
    )


class TodoPatch(BaseModel):
    """The fields to change; the ones left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    notes: str | None = Field(default=None, max_length=2000)
    done: bool | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    tags: list[Annotated[str, Field(min_length=1, max_length=30)]] | None = Field(
        default=None, max_length=10
    )


class Attachment(BaseModel):
    """A file attached to a to-do."""

    filename: str
    content_type: str
    size: int


class TodoOut(BaseModel):
    """A stored to-do, as the API returns it."""

    id: int
    title: str
    notes: str
    done: bool
    priority: int
    tags: list[str]
    version: int = Field(description="Goes up by one on every change; send it as If-Match.")
    source: str | None = Field(description="The X-Request-Source the to-do was created from.")
    created_at: datetime
    attachment: Attachment | None = None


class _Todo(TodoOut):
    """What the store keeps: a ``TodoOut`` plus fields that never leave the server."""

    owner: str
    content: bytes = b""


# --- the store ------------------------------------------------------------------------------


class TodoStore:
    """The to-dos, in memory."""

    def __init__(self) -> None:
        self.todos: dict[int, _Todo] = {}
        self._ids = itertools.count(1)

    def list(
        self, owner: str, *, done: bool | None, q: str | None, limit: int, offset: int
    ) -> list[TodoOut]:
        found: list[TodoOut] = [
            t
            for t in self.todos.values()
            if t.owner == owner
            and (done is None or t.done == done)
            and (not q or q.casefold() in (t.title + " " + t.notes).casefold())
        ]
        return found[offset : offset + limit]

    def add(self, owner: str, data: TodoIn, source: str | None) -> _Todo:
        todo = _Todo(
            id=next(self._ids),
            owner=owner,
            version=1,
            source=source,
            created_at=datetime.now(UTC),
            **data.model_dump(),
        )
        self.todos[todo.id] = todo
        return todo

    def get(self, owner: str, todo_id: int) -> _Todo:
        todo = self.todos.get(todo_id)
        if todo is None or todo.owner != owner:  # another user's to-do does not exist for you
            raise HTTPError(404, f"No to-do with id {todo_id}")
        return todo

    def update(
        self, owner: str, todo_id: int, changes: dict[str, Any], if_match: str | None
    ) -> _Todo:
        todo = self.get(owner, todo_id)
        wanted = None if if_match is None else if_match.strip().strip('"')
        if wanted not in (None, "*", str(todo.version)):
            raise HTTPError(412, f"The to-do is at version {todo.version}, not {wanted}")
        updated = todo.model_copy(update={**changes, "version": todo.version + 1})
        self.todos[todo_id] = updated
        return updated

    def delete(self, owner: str, todo_id: int) -> None:
        self.get(owner, todo_id)
        del self.todos[todo_id]


# --- dependencies ---------------------------------------------------------------------------


def get_store(request: Request) -> Iterator[TodoStore]:
    """The application's store (a generator, as a database session would be)."""
    yield request.app.state.todo_store


bearer = HTTPBearer(description="A token from `TOKENS` (a real app would issue JWTs).")


def current_user(token: Annotated[str, Depends(bearer)]) -> str:
    """The user the bearer token stands for; 401 for a token nobody was given."""
    user = TOKENS.get(token)
    if user is None:
        raise HTTPError(401, "Unknown bearer token", headers={"WWW-Authenticate": "Bearer"})
    return user


Store = Annotated[TodoStore, Depends(get_store)]
User = Annotated[str, Depends(current_user)]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The version the change is based on (412 if stale)."),
]

_AUTH = {401: {"description": "No valid bearer token"}}
_FOUND = {**_AUTH, 404: {"description": "No such to-do"}}
_CHANGE = {**_FOUND, 412: {"description": "If-Match does not name the current version"}}


# --- the application ------------------------------------------------------------------------


def create_app(**settings: Any) -> App:
    """Build the API; ``settings`` override the ``TRELLIS_*`` environment (for tests)."""
    app = App(**settings)
    app.openapi_info = {
        "title": "To-do API",
        "version": "1.0.0",
        "description": "A typed CRUD API built with Trellis.",
    }
    app.state.todo_store = TodoStore()

    @app.get("/todos", tags=["todos"], responses=_AUTH)
    async def list_todos(
        store: Store,
        user: User,
        done: Annotated[bool | None, Query(description="Only done (or not done) to-dos.")] = None,
        q: Annotated[
            str | None, Query(max_length=100, description="Text in the title or notes.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[TodoOut]:
        """List your to-dos, oldest first, filtered and a page at a time."""
        return store.list(user, done=done, q=q, limit=limit, offset=offset)

    @app.post("/todos", status_code=201, tags=["todos"], responses=_AUTH)
    async def create_todo(
        todo: TodoIn,
        store: Store,
        user: User,
        source: Annotated[
            str | None,
            Header(alias="X-Request-Source", max_length=50, description="Which client sent it."),
        ] = None,
    ) -> TodoOut:
        """Create a to-do."""
        return store.add(user, todo, source)

    @app.get("/todos/{todo_id:int}", tags=["todos"], responses=_FOUND)
    async def get_todo(todo_id: int, store: Store, user: User) -> TodoOut:
        """Return one to-do."""
        return store.get(user, todo_id)

    @app.put("/todos/{todo_id:int}", tags=["todos"], responses=_CHANGE)
    async def replace_todo(
        todo_id: int, todo: TodoIn, store: Store, user: User, if_match: IfMatch = None
    ) -> TodoOut:
        """Replace a to-do: fields left out get their defaults."""
        return store.update(user, todo_id, todo.model_dump(), if_match)

    @app.patch("/todos/{todo_id:int}", tags=["todos"], responses=_CHANGE)
    async def update_todo(
        todo_id: int, patch: TodoPatch, store: Store, user: User, if_match: IfMatch = None
    ) -> TodoOut:
        """Change some fields of a to-do; `null` or a missing field leaves it as it is."""
        changes = patch.model_dump(exclude_none=True)
        return store.update(user, todo_id, changes, if_match)

    @app.delete("/todos/{todo_id:int}", tags=["todos"], responses=_FOUND)
    async def delete_todo(todo_id: int, store: Store, user: User) -> None:
        """Delete a to-do."""
        store.delete(user, todo_id)

    @app.post(
        "/todos/{todo_id:int}/attachment",
        tags=["attachments"],
        responses={**_FOUND, 413: {"description": "The file is too large"}},
        # Refuse a large upload while it arrives, not after: the body may hold a little more
        # than the file (the multipart framing).
        max_upload_size=MAX_ATTACHMENT_SIZE + 4096,
    )
    async def attach_file(
        todo_id: int,
        file: Annotated[UploadFile, File(description="Any file, at most 64 KiB.")],
        store: Store,
        user: User,
    ) -> TodoOut:
        """Attach a file to a to-do, replacing the one it had."""
        store.get(user, todo_id)
        content = await file.read(MAX_ATTACHMENT_SIZE + 1)
        if len(content) > MAX_ATTACHMENT_SIZE:
            raise HTTPError(413, f"An attachment has at most {MAX_ATTACHMENT_SIZE} bytes")
        attachment = Attachment(
            filename=file.filename or "attachment",
            content_type=file.content_type,
            size=len(content),
        )
        return store.update(user, todo_id, {"attachment": attachment, "content": content}, None)

    @app.get("/todos/{todo_id:int}/attachment", tags=["attachments"], responses=_FOUND)
    async def download_attachment(todo_id: int, store: Store, user: User) -> Response:
        """Download the file attached to a to-do."""
        todo = store.get(user, todo_id)
        if todo.attachment is None:
            raise HTTPError(404, "This to-do has no attachment")
        # Served as a download, never rendered: the file and its type come from a client.
        name = quote(todo.attachment.filename, safe="")
        return Response(
            todo.content,
            media_type="application/octet-stream",
            headers={
                "content-disposition": f"attachment; filename*=UTF-8''{name}",
                "x-content-type-options": "nosniff",
            },
        )

    app.install(APIDocs())
    return app


app = create_app()

if __name__ == "__main__":
    app.run()
