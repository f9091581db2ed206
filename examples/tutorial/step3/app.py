from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from trellis import App, NotFoundError, Query, RedirectResponse, Request, Response
from trellis.contrib.forms import Form, StringField, TextField
from trellis.templating import render

HERE = Path(__file__).resolve().parent
app = App(templates_dir=HERE / "templates")


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    body: str = ""


class Note(NoteIn):
    id: int


class NoteForm(Form):
    title = StringField(max_length=100)
    body = TextField(required=False)


NOTES: dict[int, Note] = {}


def add_note(data: NoteIn) -> Note:
    note = Note(id=len(NOTES) + 1, **data.model_dump())
    NOTES[note.id] = note
    return note


# --- pages ----------------------------------------------------------------------------------


@app.get("/", name="home")
async def home() -> Response:
    return render("notes.html", notes=list(NOTES.values()))


@app.route("/new", methods=["GET", "POST"], name="new_note")
async def new_note(request: Request) -> Response:
    form = await NoteForm.from_request(request)
    if form.is_valid:
        add_note(NoteIn(title=form.data["title"], body=form.data["body"] or ""))
        return RedirectResponse(request.url_for("home"), 303)
    return render("new.html", form=form, status_code=422 if form.is_bound else 200)


# --- the JSON API ---------------------------------------------------------------------------


@app.get("/notes")
async def list_notes(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[Note]:
    return list(NOTES.values())[-limit:]


@app.get("/notes/{note_id:int}")
async def show_note(note_id: int) -> Note:
    if note_id not in NOTES:
        raise NotFoundError(f"No note {note_id}")
    return NOTES[note_id]


@app.post("/notes", status_code=201)
async def create_note(data: NoteIn) -> Note:
    return add_note(data)


if __name__ == "__main__":
    app.run()
