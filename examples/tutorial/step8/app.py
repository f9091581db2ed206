from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis import App, Query, RedirectResponse, Request, Response, Router
from trellis.contrib.admin import Admin, ModelAdmin
from trellis.contrib.auth import Auth, CurrentUser, OptionalUser, User
from trellis.contrib.db import Database, IdMixin, Model, Session, TimestampMixin, get_or_404
from trellis.contrib.forms import ModelForm
from trellis.templating import render

HERE = Path(__file__).resolve().parent


# --- the model ------------------------------------------------------------------------------


class Note(IdMixin, TimestampMixin, Model):
    __tablename__ = "notes_note"

    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text, default="")
    # Nullable: the notes written before there were users have no author.
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("auth_user.id", ondelete="SET NULL"), default=None, index=True
    )
    author: Mapped[User | None] = relationship(lazy="joined")


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    body: str = ""


class NoteOut(NoteIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    author_id: int | None


class NoteForm(ModelForm):
    class Meta:
        model = Note
        fields = ["title", "body"]


class NoteAdmin(ModelAdmin):
    list_display = ("title", "author", "created_at")
    search_fields = ("title", "body")
    ordering = ("-created_at",)


# --- pages ----------------------------------------------------------------------------------

routes = Router()


@routes.get("/", name="home")
async def home(db: Session, user: OptionalUser) -> Response:
    notes = await db.scalars(select(Note).order_by(Note.id))
    return render("notes.html", notes=list(notes), user=user)


@routes.route("/new", methods=["GET", "POST"], name="new_note")
async def new_note(request: Request, db: Session, user: CurrentUser) -> Response:
    form = await NoteForm.from_request(request, db=db)
    if form.is_valid:
        note = await form.save()  # committed when the handler returns
        note.author_id = user.id
        return RedirectResponse(request.url_for("home"), 303)
    return render("new.html", form=form, user=user, status_code=422 if form.is_bound else 200)


# --- the JSON API ---------------------------------------------------------------------------


@routes.get("/notes")
async def list_notes(db: Session, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[NoteOut]:
    notes = await db.scalars(select(Note).order_by(Note.id.desc()).limit(limit))
    return [NoteOut.model_validate(note) for note in notes]


@routes.get("/notes/{note_id:int}")
async def show_note(note_id: int, db: Session) -> NoteOut:
    return NoteOut.model_validate(await get_or_404(db, Note, note_id))


@routes.post("/notes", status_code=201)
async def create_note(data: NoteIn, db: Session, user: CurrentUser) -> NoteOut:
    note = Note(title=data.title, body=data.body, author_id=user.id)
    db.add(note)
    await db.flush()  # gives the note its id
    return NoteOut.model_validate(note)


# --- the application ------------------------------------------------------------------------


def create_app(**settings: Any) -> App:
    """The app; ``settings`` override the ``TRELLIS_*`` ones (tests pass ``database_url``)."""
    app = App(templates_dir=HERE / "templates", **settings)
    app.install(Database())  # TRELLIS_DATABASE_URL, default sqlite:///app.db
    app.install(Auth())  # users, sign-in pages under /auth, CurrentUser
    admin = app.install(Admin(title="Notes admin"))  # pages under /admin
    admin.register(Note, NoteAdmin)
    app.include(routes)
    return app


app = create_app()

if __name__ == "__main__":
    app.run()
