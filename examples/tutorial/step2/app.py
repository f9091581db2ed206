from typing import Annotated

from pydantic import BaseModel, Field

from trellis import App, NotFoundError, Query

app = App()


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    body: str = ""


class Note(NoteIn):
    id: int


NOTES: dict[int, Note] = {}


@app.get("/")
async def hello() -> str:
    return "Hello, notes!"


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
    note = Note(id=len(NOTES) + 1, **data.model_dump())
    NOTES[note.id] = note
    return note


if __name__ == "__main__":
    app.run()
