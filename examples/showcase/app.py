"""The Trellis showcase: a small notes board that shows the micro core at work.

Run it with ``python examples/showcase/app.py`` and open http://127.0.0.1:8000.

It uses pages rendered from templates, a form that posts and redirects, a JSON API on a router,
a class-based view, static files, server-sent events for live updates, cookies and error pages.
Notes live in memory; the database battery replaces that in a later version.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

from trellis import App, HTMLResponse, HTTPError, RedirectResponse, Request, Router, View
from trellis.http.sse import EventSourceResponse, ServerSentEvent
from trellis.openapi import APIDocs
from trellis.templating import render

HERE = Path(__file__).parent


@dataclass
class Note:
    id: int
    text: str
    author: str
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


class Board:
    """The notes, and the listeners waiting for new ones."""

    def __init__(self) -> None:
        self.notes: dict[int, Note] = {}
        self._ids = itertools.count(1)
        self._listeners: set[asyncio.Queue[Note]] = set()

    def add(self, text: str, author: str) -> Note:
        text, author = text.strip(), author.strip() or "anonymous"
        if not text:
            raise HTTPError(422, "A note needs some text")
        if len(text) > 500:
            raise HTTPError(422, "A note has at most 500 characters")
        note = Note(next(self._ids), text, author[:40])
        self.notes[note.id] = note
        for queue in self._listeners:
            queue.put_nowait(note)
        return note

    async def follow(self) -> AsyncIterator[Note]:
        queue: asyncio.Queue[Note] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)


board = Board()
app = App(templates_dir=str(HERE / "templates"))
app.static("/static", str(HERE / "static"))


@app.on_startup
def seed() -> None:
    if not board.notes:
        board.add("Welcome to Trellis! Post a note below; other tabs see it live.", "trellis")


@app.get("/", include_in_schema=False)
async def home(request: Request) -> HTMLResponse:
    notes = sorted(board.notes.values(), key=lambda n: n.id, reverse=True)
    name = unquote(request.cookies.get("name", ""))
    return render("home.html", notes=notes, name=name)


@app.post("/notes", include_in_schema=False)
async def post_note(request: Request) -> RedirectResponse:
    form = await request.form()
    author = str(form.get("author", ""))
    board.add(str(form.get("text", "")), author)
    response = RedirectResponse(app.url_for("home"), status_code=303)
    response.set_cookie("name", _cookie_safe(author), max_age=30 * 24 * 3600)
    return response


@app.get("/events", include_in_schema=False)
async def events() -> EventSourceResponse:
    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for note in board.follow():
            yield ServerSentEvent(_public(note), event="note", id=str(note.id))

    return EventSourceResponse(stream())


api = Router("/api", name="api", tags=["notes"])


@api.get("/notes")
async def list_notes() -> list[dict[str, object]]:
    return [_public(n) for n in sorted(board.notes.values(), key=lambda n: n.id)]


@api.route("/notes/{id:int}")
class NoteView(View):
    async def get(self, id: int) -> dict[str, object]:
        return _public(_find(id))

    async def delete(self, id: int) -> None:
        _find(id)
        del board.notes[id]


@api.post("/notes", status_code=201)
async def create_note(request: Request) -> dict[str, object]:
    data = await request.json()
    if not isinstance(data, dict):
        raise HTTPError(422, 'Send a JSON object: {"text": "...", "author": "..."}')
    return _public(board.add(str(data.get("text", "")), str(data.get("author", ""))))


app.include(api)
app.openapi_info = {"title": "Trellis showcase", "version": "0.1.0"}
app.install(APIDocs())  # /openapi.json, /docs and /redoc, served without any network


def _find(id: int) -> Note:
    note = board.notes.get(id)
    if note is None:
        raise HTTPError(404, f"No note with id {id}")
    return note


def _public(note: Note) -> dict[str, object]:
    data = asdict(note)
    data["created"] = note.created.isoformat()
    return data


def _cookie_safe(value: str) -> str:
    # Cookie values cannot carry spaces, commas or non-ASCII: store the name percent-encoded.
    return quote(value[:40], safe="")


if __name__ == "__main__":
    app.run()
