"""The Trellis showcase: a notes board on the full stack, in one file.

Run it with ``python examples/showcase/app.py`` and open http://127.0.0.1:8000. On a fresh
machine it needs nothing else: notes go to ``showcase.db`` (SQLite) in the current directory,
sessions to signed cookies, the cache to memory. On the first start in development it applies
its migrations and makes demo data: a few notes and three accounts, whose password the home
page shows.

- Pages from templates, and a form of the forms battery (errors next to the field).
- Accounts and roles from the auth battery: anyone signed in may post; authors delete their
  own notes; the ``editor`` group (made by the migration) may pin and delete any note.
- The admin for the notes (and the accounts), under ``/admin``.
- A typed JSON API on a router, with a class-based view, described at ``/docs``.
- Live updates: a new note appears at once on every open page, over server-sent events fed
  by channels (through Redis when ``TRELLIS_REDIS_URL`` is set, so across worker processes).
- English and French: the links at the top (``/fr/...``); the batteries' pages follow.
- ``/healthz``, ``/readyz`` and ``/metrics`` for the machinery around it; error tickets;
  OpenTelemetry spans for the tracer provider the deployment configures (none: no cost).
- A background task after each new note, which e-mails the editors (mail battery: printed to
  the console in development, SMTP when ``TRELLIS_SMTP_URL`` is set); a rate limit on posting;
  and in development the inspector (``/_inspector``: each request's SQL, templates and timings).

Production (PostgreSQL, Redis, two workers) is in README.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import anyio.to_thread
from pydantic import BaseModel, Field
from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis import App, HTTPError, Query, RedirectResponse, Request, Response, Router, View
from trellis.channels import Channels
from trellis.config import Settings, load_settings
from trellis.contrib.admin import Admin, ModelAdmin
from trellis.contrib.auth import (
    Auth,
    CurrentUser,
    Group,
    OptionalUser,
    PasswordHasher,
    User,
    current_user,
    requires,
)
from trellis.contrib.cache import MemoryCache
from trellis.contrib.db import Database, IdMixin, Model, Session, TimestampMixin
from trellis.contrib.db.migrations import Migrations
from trellis.contrib.forms import Form, TextField
from trellis.contrib.i18n import I18n
from trellis.contrib.inspector import Inspector
from trellis.contrib.mail import ConsoleEmailBackend, EmailBackend, EmailMessage, SMTPEmailBackend
from trellis.contrib.ops import Health, Metrics
from trellis.contrib.otel import OpenTelemetry
from trellis.contrib.tickets import Tickets
from trellis.exceptions import ConfigurationError
from trellis.http.sse import EventSourceResponse, ServerSentEvent
from trellis.i18n import gettext as _
from trellis.i18n import lazy_gettext
from trellis.openapi import APIDocs
from trellis.ratelimit import RateLimit, user_or_ip
from trellis.sessions import flash
from trellis.templating import render

HERE = Path(__file__).resolve().parent
log = logging.getLogger("showcase")

TEXT_MAX = 500
#: Pages load scripts, styles and images from this site only (the admin's charts: data: URLs).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
#: How many notes one user (or, before signing in, one address) may post in a minute.
POST_RATE = "20/minute"
#: The channel group every page listens to for new and deleted notes.
LIVE = "notes"
#: Development's demo password (production makes demo accounts only with TRELLIS_DEMO_PASSWORD).
DEV_DEMO_PASSWORD = "trellis-demo"
#: The demo accounts: e-mail address, user name, groups, superuser.
DEMO_ACCOUNTS = (
    ("demo@example.com", "demo", (), False),
    ("editor@example.com", "editor", ("editor",), False),
    ("admin@example.com", "admin", (), True),
)
WELCOME = (
    "Welcome to Trellis! Sign in and post a note: every open page shows it at once.",
    "Notes live in a database (SQLite here, PostgreSQL in production) with migrations.",
    "Editors pin and delete notes; the admin at /admin manages them all.",
)


class ShowcaseSettings(Settings):
    """Trellis's settings and the showcase's own, each read from ``TRELLIS_<NAME>``."""

    database_url: str = Field(
        default="sqlite:///showcase.db",
        description="The database; PostgreSQL in production (postgresql://user:pw@host/db).",
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis for sessions, the cache and live updates, shared by every worker process."
            " Unset: signed-cookie sessions, a cache in memory, live updates in one process."
        ),
    )
    redis_prefix: str = Field(
        default="showcase:", description="Put before every Redis key and channel name."
    )
    smtp_url: str | None = Field(
        default=None,
        description=(
            "The mail server: smtp://user:password@host:587 (STARTTLS) or smtps://...:465 (TLS)."
            " Unset: e-mails are printed in development, sent to localhost:25 in production."
        ),
    )
    mail_from: str = Field(
        default="Trellis showcase <showcase@localhost>", description="The sender of e-mails."
    )
    demo_password: str | None = Field(
        default=None,
        description=(
            f"Make the demo accounts with this password on the first start (in debug mode:"
            f" {DEV_DEMO_PASSWORD!r}, shown on the home page)."
        ),
    )


# --- the model ------------------------------------------------------------------------------


class Note(IdMixin, TimestampMixin, Model):
    """A note on the board."""

    __tablename__ = "showcase_note"
    # The board lists pinned notes first, newest first: one index serves it.
    __table_args__ = (Index("ix_showcase_note_pinned_id", "pinned", "id"),)

    text: Mapped[str] = mapped_column(String(TEXT_MAX))
    author_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), index=True
    )
    # Loaded with the note (one join): async code cannot load it lazily later.
    author: Mapped[User] = relationship(User, lazy="joined")
    pinned: Mapped[bool] = mapped_column(default=False)

    def __str__(self) -> str:
        return self.text if len(self.text) <= 60 else self.text[:59] + "…"


class NoteAdmin(ModelAdmin):
    """Notes in the admin: searched by text, filtered by pin."""

    list_display = ("text", "author", "pinned", "created_at")
    search_fields = ("text",)
    list_filter = ("pinned",)
    readonly_fields = ("created_at", "updated_at")


class NoteForm(Form):
    """A new note: the page's form, and the body of ``POST /api/notes``."""

    text = TextField(lazy_gettext("Note"), max_length=TEXT_MAX)


class NoteOut(BaseModel):
    """A note as the API shows it."""

    id: int
    text: str
    author: str = Field(description="The author's user name.")
    pinned: bool
    created: datetime

    @classmethod
    def of(cls, note: Note) -> NoteOut:
        """The API's view of ``note`` (its author loaded)."""
        author = note.author.username or f"user {note.author_id}"
        return cls(
            id=note.id, text=note.text, author=author, pinned=note.pinned, created=note.created_at
        )


class NotePatch(BaseModel):
    """What an editor may change."""

    pinned: bool


async def board(db: AsyncSession, *, limit: int = 50, offset: int = 0) -> list[Note]:
    """The notes, pinned ones first, newest first."""
    query = select(Note).order_by(Note.pinned.desc(), Note.id.desc()).limit(limit).offset(offset)
    return list((await db.scalars(query)).unique())


# --- the application ------------------------------------------------------------------------


def mail_backend(config: ShowcaseSettings) -> EmailBackend:
    """Where e-mails go: ``smtp_url``'s server; else the console in development, else the
    mail server of this machine."""
    if not config.smtp_url:
        if config.debug:
            return ConsoleEmailBackend(from_email=config.mail_from)
        return SMTPEmailBackend(from_email=config.mail_from)
    url = urlsplit(config.smtp_url)
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise ConfigurationError("smtp_url: give smtp://user:password@host:port or smtps://...")
    return SMTPEmailBackend(
        url.hostname,
        url.port,
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_starttls=url.scheme == "smtp",
        use_ssl=url.scheme == "smtps",
        from_email=config.mail_from,
    )


def create_app(
    *,
    hasher: PasswordHasher | None = None,
    email: EmailBackend | None = None,
    tracer_provider: Any = None,
    **settings: Any,
) -> App:
    """Build the showcase.

    Args:
        hasher: The password hasher (default: argon2id; tests pass a cheap one).
        email: The e-mail backend (default: from ``smtp_url``; tests pass a memory one).
        tracer_provider: Where the request spans go (default: OpenTelemetry's global one,
            which the deployment sets up with its exporter; unset, spans cost nothing).
        **settings: Settings to override (``database_url=...``, ``redis_url=...``,
            ``debug=True``, ``secret_key=...``); the others come from ``TRELLIS_*``.
    """
    settings.setdefault("templates_dir", HERE / "templates")
    settings.setdefault("content_security_policy", CONTENT_SECURITY_POLICY)
    config = load_settings(ShowcaseSettings, **settings)
    app = App(settings=config)
    app.openapi_info = {"title": "Trellis showcase", "version": "0.2.0"}
    app.static("/static", str(HERE / "static"))

    database: Database = app.install(Database())
    if config.redis_url:
        from trellis.contrib.redis import RedisCache, RedisChannels, RedisSessionStore

        prefix = config.redis_prefix
        app.install(RedisCache(config.redis_url, prefix=prefix + "cache:"))
        app.install(RedisSessionStore(config.redis_url, prefix=prefix + "session:"))
        channels = app.install(Channels(RedisChannels(config.redis_url, prefix=prefix + "live:")))
    else:
        app.install(MemoryCache())  # the sign-in limits count here
        channels = app.install(Channels())
    # The editors' notices and the auth battery's password reset e-mails go through it.
    app.install(email if email is not None else mail_backend(config))
    auth: Auth = app.install(Auth(hasher=hasher, logout_redirect_url="/"))
    app.install(I18n(locales=("en", "fr"), directory=HERE / "locale", url_prefix=True))
    admin: Admin = app.install(Admin(title="Showcase admin"))
    admin.register(Note, NoteAdmin)  # declares showcase_note.view, .add, .change, .delete
    app.install(Tickets())
    app.install(Health())
    app.install(Metrics())
    # A span per request, named after its route ("GET /api/notes/{id}"); JSON log lines get
    # its trace and span ids. The probes and the live stream would only be noise.
    quiet = ("/healthz", "/readyz", "/metrics", "/events")
    app.install(OpenTelemetry(tracer_provider, excluded_paths=quiet))
    app.install(APIDocs())  # /openapi.json, /docs and /redoc, served without any network
    if app.debug:  # never in production, where it refuses to be installed
        app.install(Inspector(ignore=("/static", "/events")))

    # `trellis --app examples/showcase/app.py db upgrade` finds the migrations next to this file.
    migrations = Migrations(database, HERE / "migrations")
    app.state.migrations = migrations

    @app.on_startup
    async def first_start() -> None:
        """In development: apply the migrations. Then the demo data, once per database."""
        if app.settings.debug:
            await anyio.to_thread.run_sync(migrations.upgrade)
        password = config.demo_password or (DEV_DEMO_PASSWORD if app.settings.debug else None)
        await create_demo_data(database, auth, password)

    @auth.object_permission("showcase_note.delete")
    def authors_delete_their_notes(user: User, note: Note) -> bool:
        return note.author_id == user.id

    async def publish(event: str, data: object) -> None:
        await channels.publish(LIVE, {"event": event, "data": data})

    # Jobs run in the process that sent them (the in-process backend), with Redis too: this one
    # is cheap. RedisTasks and `trellis worker` would move them to worker processes unchanged.
    @app.task
    async def note_posted(note_id: int, board_url: str) -> None:
        """After a new note: log its size, and e-mail the editors (but its author) about it."""
        async with database.session() as session:
            note = await session.get(Note, note_id)
            if note is None:
                return  # deleted before the job ran
            words = len(note.text.split())
            log.info("note %d by %s: %d words", note.id, note.author.username, words)
            editors = await session.scalars(
                select(User.email)
                .join(User.groups)
                .where(Group.name == "editor", User.is_active, User.id != note.author_id)
            )
            author = note.author.username or note.author.email
            notices = [
                EmailMessage(
                    address,
                    f"New note from {author}",
                    f"{author} posted a note:\n\n{note.text}\n\nThe board: {board_url}\n",
                )
                for address in editors
            ]
        if notices:  # sent after the session is closed: no connection held on the network
            await app.state.email.send(*notices)

    # One budget for the page's form and the API, counted in the app's cache: with Redis, the
    # limit holds across every worker process.
    posting_limit = RateLimit(POST_RATE, key=user_or_ip, name="showcase:post_note")
    app.state.posting_limit = posting_limit  # tests set its clock

    async def find(db: AsyncSession, id: int) -> Note:
        note = await db.get(Note, id)
        if note is None:
            raise HTTPError(404, _("No note with id %(id)s", id=id))
        return note

    async def add_note(request: Request, db: AsyncSession, user: User, text: str) -> Note:
        note = Note(text=text, author=user)
        db.add(note)
        await db.commit()  # committed before the others hear of it
        await publish("note", NoteOut.of(note))
        board_url = str(request.url.replace(path=request.url_for("home"), query=""))
        await note_posted.send(note.id, board_url)  # after the commit: the job finds the row
        return note

    async def remove_note(db: AsyncSession, user: User, note: Note) -> None:
        await auth.authorize(user, "showcase_note.delete", note)
        await db.delete(note)
        await db.commit()
        await publish("deleted", {"id": note.id})

    # --- pages --------------------------------------------------------------------------------

    async def home_page(
        request: Request,
        user: User | None,
        db: AsyncSession,
        form: NoteForm | None = None,
        *,
        status_code: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        if user is not None and form is None:
            form = await NoteForm.from_request(request)
        # Only signed-in visitors get a form, hence a CSRF token: an anonymous visit opens no
        # session, so it costs no cookie and no session record in Redis.
        return render(
            "home.html",
            status_code=status_code or (422 if form is not None and form.is_bound else 200),
            headers=headers,
            user=user,
            notes=await board(db),
            form=form,
            may_pin=await auth.has_perm(user, "showcase_note.change"),
            may_delete_any=await auth.has_perm(user, "showcase_note.delete"),
            demo_password=(
                (config.demo_password or DEV_DEMO_PASSWORD) if app.settings.debug else None
            ),
            demo_accounts=DEMO_ACCOUNTS,
        )

    @app.get("/", name="home", include_in_schema=False)
    async def home(request: Request, user: OptionalUser, db: Session) -> Response:
        return await home_page(request, user, db)

    @app.post("/notes", name="post_note", include_in_schema=False)
    async def post_note(request: Request, user: CurrentUser, db: Session) -> Response:
        form = await NoteForm.from_request(request)
        usage = await posting_limit.hit(request)  # the API's RateLimit, answered on the page
        if usage is not None and usage.exceeded:
            wait = _("You are posting too fast: try again in %(seconds)s s.", seconds=usage.reset)
            form.add_error(None, wait, code="rate_limited")
            return await home_page(
                request, user, db, form, status_code=429, headers=usage.headers()
            )
        if not form.is_valid:
            return await home_page(request, user, db, form)
        await add_note(request, db, user, form.data["text"])
        flash(request, _("Your note is on the board."), "success")
        return RedirectResponse(request.url_for("home"), 303)

    @app.post("/notes/{id:int}/delete", name="delete_note", include_in_schema=False)
    async def delete_note(id: int, request: Request, user: CurrentUser, db: Session) -> Response:
        await remove_note(db, user, await find(db, id))
        flash(request, _("The note was deleted."), "success")
        return RedirectResponse(request.url_for("home"), 303)

    @app.post(
        "/notes/{id:int}/pin",
        name="pin_note",
        include_in_schema=False,
        dependencies=[requires("showcase_note.change")],
    )
    async def pin_note(id: int, request: Request, db: Session) -> Response:
        note = await find(db, id)
        note.pinned = not note.pinned
        return RedirectResponse(request.url_for("home"), 303)

    @app.get("/events", include_in_schema=False)
    async def events() -> EventSourceResponse:
        async def stream() -> AsyncIterator[ServerSentEvent]:
            # Ends when the listener falls too far behind or Redis goes away: the browser's
            # EventSource then reconnects by itself.
            async with channels.subscribe(LIVE) as updates:
                async for message in updates:
                    update = json.loads(message)
                    yield ServerSentEvent(update["data"], event=update["event"])

        return EventSourceResponse(stream())

    # --- the JSON API -------------------------------------------------------------------------

    api = Router("/api", name="api", tags=["notes"])
    signed_in = {401: {"description": "Not signed in"}}
    found = {404: {"description": "No such note"}}

    @api.get("/notes")
    async def list_notes(
        db: Session,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[NoteOut]:
        """The notes, pinned ones first, newest first."""
        return [NoteOut.of(note) for note in await board(db, limit=limit, offset=offset)]

    # The user first: the limit counts per user, and an anonymous request gets its 401 uncounted.
    @api.post(
        "/notes",
        status_code=201,
        responses=signed_in,
        dependencies=[current_user, posting_limit],
    )
    async def create_note(
        request: Request,
        form: Annotated[NoteForm, NoteForm.as_dependency()],
        user: CurrentUser,
        db: Session,
    ) -> NoteOut:
        """Post a note as the signed-in user.

        With the session cookie, send the token of `GET /api/auth/csrf` as `X-CSRF-Token`;
        or sign in with `POST /api/auth/login` and `"token": true` for a bearer token.
        """
        return NoteOut.of(await add_note(request, db, user, form.data["text"]))

    @api.route("/notes/{id:int}", responses=found)
    class NoteView(View):
        async def get(self, id: int, db: Session) -> NoteOut:
            """One note."""
            return NoteOut.of(await find(db, id))

        async def patch(
            self,
            id: int,
            patch: NotePatch,
            db: Session,
            user: Annotated[User, requires("showcase_note.change")],
        ) -> NoteOut:
            """Pin or unpin a note (editors)."""
            note = await find(db, id)
            note.pinned = patch.pinned
            await db.flush()
            return NoteOut.of(note)

        async def delete(self, id: int, user: CurrentUser, db: Session) -> None:
            """Delete a note (its author, or an editor)."""
            await remove_note(db, user, await find(db, id))

    app.include(api)
    return app


async def create_demo_data(database: Database, auth: Auth, password: str | None) -> None:
    """The welcome notes, and the demo accounts when there is a password; once per database.

    The notes' author, ``trellis``, has no password (nobody signs in as it). Its unique e-mail
    address makes the first start happen once: a second worker starting at the same moment
    fails to add it and leaves the rest to the first.
    """
    accounts = []
    if password:
        for email, username, groups, superuser in DEMO_ACCOUNTS:
            user = User(email=email, username=username, is_superuser=superuser)
            await auth.aset_password(user, password)  # slow on purpose: outside the transaction
            accounts.append((user, groups))
    try:
        async with database.transaction() as session:
            if await auth.find_user(session, "trellis") is not None:
                return
            author = User(email="trellis@example.com", username="trellis")
            session.add(author)
            await session.flush()
            session.add_all(Note(text=text, author=author) for text in reversed(WELCOME))
            for user, groups in accounts:
                user.groups = list(
                    await session.scalars(select(Group).where(Group.name.in_(groups)))
                )
                session.add(user)
    except IntegrityError:
        return  # another process made them


app = create_app()

if __name__ == "__main__":
    # `python app.py` is the development server: like app.run(), debug mode unless TRELLIS_DEBUG
    # says otherwise; built again in it, since the inspector is installed while building.
    if "debug" not in app.settings.model_fields_set:
        app = create_app(debug=True)
    app.run()
