"""Newsroom: writers keep drafts, editors publish them. The auth and data batteries at work.

Run it with ``python examples/newsroom/app.py`` (debug mode, a SQLite file ``newsroom.db`` in
the current directory, tables made on the first start) and open http://127.0.0.1:8000.
See README.md for production settings, the ``trellis db`` and ``trellis user`` commands, and
the API.

- Accounts come from the auth battery: sign-in, registration, password change and reset
  pages (``/auth/...``) and the same flows as a JSON API (``/api/auth/...``); reset e-mails
  go to the console unless a mail backend is installed.
- An ``Article`` belongs to its author (a foreign key to ``auth_user``); its table comes with
  the migration in ``migrations/versions``, which also creates the ``editor`` group with the
  ``articles.publish`` permission.
- Only the author may edit an article (an object-level rule, ``articles.edit``); only editors
  may publish (``requires("articles.publish")``).
- The JSON API under ``/api/articles`` takes the session cookie (with its CSRF token), an
  opaque bearer token (``POST /api/auth/login`` with ``"token": true``) or a JWT
  (``POST /api/token``), and is described at ``/openapi.json`` and ``/docs``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String, Text, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from trellis import App, HTTPError, Query, RedirectResponse, Request, Response, Router
from trellis.contrib.auth import (
    Auth,
    CurrentUser,
    JWTConfig,
    OptionalUser,
    PasswordHasher,
    User,
    requires,
)
from trellis.contrib.auth.throttle import LoginThrottle
from trellis.contrib.db import Database, IdMixin, Model, Session, TimestampMixin, utcnow
from trellis.contrib.db.migrations import Migrations
from trellis.exceptions import UnauthorizedError
from trellis.openapi import APIDocs
from trellis.sessions import SessionBackend, flash
from trellis.templating import render

HERE = Path(__file__).resolve().parent

#: The database when neither ``create_app(database_url=...)`` nor ``TRELLIS_DATABASE_URL``
#: (or ``database_url`` in trellis.toml) names one: a file in the current directory.
DEFAULT_DATABASE_URL = "sqlite:///newsroom.db"
#: Failed sign-ins allowed per account and per client address, in 15-minute windows.
PER_ACCOUNT = (5, 900)
PER_IP = (50, 900)
#: What the JWTs of ``POST /api/token`` say about themselves, and how long they last.
JWT_ISSUER = "newsroom"
JWT_AUDIENCE = "newsroom-api"
JWT_LIFETIME = 900
#: Pages may load scripts, styles, images and forms from this site only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)

TITLE_MAX = 200
BODY_MAX = 20_000


# --- the model ------------------------------------------------------------------------------


class Article(IdMixin, TimestampMixin, Model):
    """A story: a draft until an editor publishes it."""

    __tablename__ = "newsroom_article"

    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    body: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), index=True
    )
    # Loaded with the article (one join): async code cannot load it lazily later.
    author: Mapped[User] = relationship(User, lazy="joined")
    published: Mapped[bool] = mapped_column(default=False, index=True)
    published_at: Mapped[datetime | None] = mapped_column(default=None)


def author_name(user: User) -> str:
    """How an author is shown: the user name, never the e-mail address."""
    return user.username or f"user {user.id}"


# --- the API's models -----------------------------------------------------------------------


class ArticleIn(BaseModel):
    """A new draft."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=TITLE_MAX, examples=["Council votes on budget"])
    body: str = Field(default="", max_length=BODY_MAX)


class ArticlePatch(BaseModel):
    """The fields to change; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    body: str | None = Field(default=None, max_length=BODY_MAX)


class ArticleOut(BaseModel):
    """An article as the API shows it."""

    id: int
    title: str
    body: str
    author: str = Field(description="The author's user name.")
    author_id: int
    published: bool
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, article: Article) -> ArticleOut:
        """The API's view of ``article`` (its author loaded)."""
        return cls(
            id=article.id,
            title=article.title,
            body=article.body,
            author=author_name(article.author),
            author_id=article.author_id,
            published=article.published,
            published_at=article.published_at,
            created_at=article.created_at,
            updated_at=article.updated_at,
        )


class TokenIn(BaseModel):
    """Credentials for a JWT: ``login`` is the e-mail address or the user name."""

    login: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=4096)


class TokenOut(BaseModel):
    """A JWT for ``Authorization: Bearer``."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the token is valid.")


# --- queries --------------------------------------------------------------------------------


def _search(q: str | None) -> list[ColumnElement[bool]]:
    """``WHERE`` clauses for a search: every word in the title or the body.

    The words are bound parameters (never SQL), and ``%`` and ``_`` in them match literally.
    """
    clauses: list[ColumnElement[bool]] = []
    for word in (q or "").split()[:10]:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(
            or_(
                Article.title.ilike(pattern, escape="\\"),
                Article.body.ilike(pattern, escape="\\"),
            )
        )
    return clauses


async def published_articles(
    db: AsyncSession, q: str | None = None, *, limit: int = 50, offset: int = 0
) -> list[Article]:
    """Published articles, newest first, matching the search ``q``."""
    query = (
        select(Article)
        .where(Article.published.is_(True), *_search(q))
        .order_by(Article.published_at.desc(), Article.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await db.scalars(query)).unique())


async def drafts(db: AsyncSession, author: User | None = None) -> list[Article]:
    """Unpublished articles (of ``author``, or everyone's), newest first."""
    query = select(Article).where(Article.published.is_(False))
    if author is not None:
        query = query.where(Article.author_id == author.id)
    query = query.order_by(Article.updated_at.desc(), Article.id.desc())
    return list((await db.scalars(query)).unique())


# --- the application ------------------------------------------------------------------------


def jwt_key(secret_key: str) -> str:
    """The HMAC key of the JWTs, derived from the app's secret key (never the key itself)."""
    return hmac.new(secret_key.encode(), b"newsroom.jwt", hashlib.sha256).hexdigest()


def create_app(
    database_url: str | None = None,
    *,
    session_store: str | SessionBackend | None = None,
    email: Any = None,
    hasher: PasswordHasher | None = None,
    throttle: LoginThrottle | None = None,
    **settings: Any,
) -> App:
    """Build the newsroom.

    Args:
        database_url: The database (default: ``TRELLIS_DATABASE_URL``, else
            ``sqlite:///newsroom.db``).
        session_store: Where session data lives: ``"cookie"`` (signed cookies, the default),
            ``"database"`` (the ``trellis_session`` table, so signing out ends every copy of
            the cookie) or a ``SessionBackend``. Default: ``NEWSROOM_SESSION_STORE``, else
            ``"cookie"``.
        email: The mail backend of the password reset e-mails (default: the console).
        hasher: The password hasher (default: argon2id; tests pass a cheap one).
        throttle: The sign-in limits (default: ``PER_ACCOUNT`` and ``PER_IP``).
        **settings: ``TRELLIS_*`` settings to override (``debug=True``, ``secret_key=...``).
    """
    settings.setdefault("templates_dir", str(HERE / "templates"))
    settings.setdefault("content_security_policy", CONTENT_SECURITY_POLICY)
    app = App(**settings)
    app.openapi_info = {
        "title": "Newsroom API",
        "version": "1.0.0",
        "description": "Articles written by authors and published by editors.",
    }
    app.static("/static", str(HERE / "static"))

    if database_url is None and "database_url" not in app.settings.model_fields_set:
        database_url = DEFAULT_DATABASE_URL
    database: Database = app.install(Database(database_url))
    if session_store is None:
        session_store = os.environ.get("NEWSROOM_SESSION_STORE", "cookie")
    if session_store == "database":
        from trellis.contrib.db.stores import DatabaseSessionStore

        app.install(DatabaseSessionStore(database))
    elif isinstance(session_store, str):
        if session_store != "cookie":
            raise ValueError(
                f"session_store: 'cookie', 'database' or a backend, not {session_store!r}"
            )
    else:
        app.state.session_store = session_store

    login_throttle = throttle or LoginThrottle(per_account=PER_ACCOUNT, per_ip=PER_IP)
    auth: Auth = app.install(
        Auth(
            hasher=hasher,
            email=email,
            throttle=login_throttle,
            permissions={
                "articles.publish": "Publish articles",
                "articles.edit": "Edit anyone's articles",
            },
        )
    )
    auth.login_redirect_url = "/drafts"  # after signing in, when there is no (safe) next
    auth.logout_redirect_url = "/"

    @app.on_startup
    def accept_jwts() -> None:
        # The key comes from the secret key, which is known for sure only now (`app.run()`
        # turns debug on, and production refuses to start without a key).
        auth.jwt = JWTConfig(
            keys={"newsroom-1": jwt_key(app.settings.effective_secret_key())},
            issuer=JWT_ISSUER,
            audience=JWT_AUDIENCE,
            lifetime=JWT_LIFETIME,
        )

    # The project's migrations live next to this file, whatever the current directory:
    # `trellis --app examples/newsroom/app.py db upgrade` finds them.
    migrations = Migrations(database, HERE / "migrations")
    app.state.migrations = migrations

    @app.on_startup
    async def migrate_empty_database() -> None:
        """Create the tables on the first start (a database with no revision applied).

        Later revisions are applied with `trellis db upgrade`, as in any deployment.
        """

        def upgrade_if_empty() -> None:
            if not any(migrations.current().values()):
                migrations.upgrade()

        await anyio.to_thread.run_sync(upgrade_if_empty)

    @auth.object_permission("articles.edit")
    def authors_edit_their_articles(user: User, article: Article) -> bool:
        return article.author_id == user.id

    async def may_see(user: User | None, article: Article) -> bool:
        """Published articles are public; a draft is its author's and the editors'."""
        if article.published:
            return True
        return await auth.has_perm(user, "articles.edit", article) or await auth.has_perm(
            user, "articles.publish"
        )

    async def find(db: AsyncSession, article_id: int, user: User | None) -> Article:
        """The article, if it exists and ``user`` may see it: else 404 (a draft is secret)."""
        article = await db.get(Article, article_id)
        if article is None or not await may_see(user, article):
            raise HTTPError(404, f"No article with id {article_id}")
        return article

    # --- pages --------------------------------------------------------------------------------

    @app.get("/", name="home", include_in_schema=False)
    async def home(
        user: OptionalUser,
        db: Session,
        q: Annotated[str, Query(max_length=200)] = "",
    ) -> Response:
        articles = await published_articles(db, q)
        return render("home.html", user=user, articles=articles, q=q)

    @app.get("/articles/{article_id:int}", name="article", include_in_schema=False)
    async def article_page(article_id: int, user: OptionalUser, db: Session) -> Response:
        article = await find(db, article_id, user)
        return render(
            "article.html",
            user=user,
            article=article,
            can_edit=await auth.has_perm(user, "articles.edit", article),
            can_publish=await auth.has_perm(user, "articles.publish"),
        )

    @app.get("/drafts", name="drafts", include_in_schema=False)
    async def drafts_page(user: CurrentUser, db: Session) -> Response:
        editor = await auth.has_perm(user, "articles.publish")
        waiting = [a for a in await drafts(db) if a.author_id != user.id] if editor else []
        return render(
            "drafts.html", user=user, mine=await drafts(db, user), waiting=waiting, editor=editor
        )

    @app.get("/articles/new", name="new_article", include_in_schema=False)
    async def new_article_page(user: CurrentUser) -> Response:
        return render("edit.html", user=user, article=None, form={}, errors={})

    @app.post("/articles", name="create_article", include_in_schema=False)
    async def create_article(request: Request, user: CurrentUser, db: Session) -> Response:
        form, errors = await _article_form(request)
        if errors:
            return render(
                "edit.html", status_code=422, user=user, article=None, form=form, errors=errors
            )
        article = Article(title=form["title"], body=form["body"], author=user)
        db.add(article)
        await db.flush()
        flash(request, "Draft saved.", "success")
        return RedirectResponse(request.url_for("article", article_id=article.id), 303)

    @app.get("/articles/{article_id:int}/edit", name="edit_article", include_in_schema=False)
    async def edit_article_page(article_id: int, user: CurrentUser, db: Session) -> Response:
        article = await find(db, article_id, user)
        await auth.authorize(user, "articles.edit", article)
        form = {"title": article.title, "body": article.body}
        return render("edit.html", user=user, article=article, form=form, errors={})

    @app.post("/articles/{article_id:int}/edit", name="update_article", include_in_schema=False)
    async def update_article(
        article_id: int, request: Request, user: CurrentUser, db: Session
    ) -> Response:
        article = await find(db, article_id, user)
        await auth.authorize(user, "articles.edit", article)
        form, errors = await _article_form(request)
        if errors:
            return render(
                "edit.html", status_code=422, user=user, article=article, form=form, errors=errors
            )
        article.title, article.body = form["title"], form["body"]
        flash(request, "Saved.", "success")
        return RedirectResponse(request.url_for("article", article_id=article.id), 303)

    @app.post(
        "/articles/{article_id:int}/publish",
        name="publish_article",
        include_in_schema=False,
        dependencies=[requires("articles.publish")],
    )
    async def publish_article(
        article_id: int, request: Request, user: CurrentUser, db: Session
    ) -> Response:
        article = await find(db, article_id, user)
        _publish(article)
        flash(request, "Published.", "success")
        return RedirectResponse(request.url_for("article", article_id=article.id), 303)

    # --- the JSON API -------------------------------------------------------------------------

    api = Router("/api", name="api", tags=["articles"])
    found = {404: {"description": "No such article (or a draft you may not see)"}}
    signed_in = {401: {"description": "No valid credentials"}}

    @api.get("/articles", name="articles")
    async def list_articles(
        db: Session,
        q: Annotated[
            str | None, Query(max_length=200, description="Words in the title or the body.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[ArticleOut]:
        """The published articles, newest first."""
        return [
            ArticleOut.of(a) for a in await published_articles(db, q, limit=limit, offset=offset)
        ]

    @api.get("/articles/mine", name="my_articles", responses=signed_in)
    async def my_articles(user: CurrentUser, db: Session) -> list[ArticleOut]:
        """Your articles, drafts and published, newest first."""
        query = (
            select(Article)
            .where(Article.author_id == user.id)
            .order_by(Article.updated_at.desc(), Article.id.desc())
        )
        return [ArticleOut.of(a) for a in (await db.scalars(query)).unique()]

    @api.get("/articles/{article_id:int}", name="article", responses=found)
    async def get_article(article_id: int, user: OptionalUser, db: Session) -> ArticleOut:
        """One article: a published one, or a draft of yours (editors see every draft)."""
        return ArticleOut.of(await find(db, article_id, user))

    @api.post("/articles", name="create_article", status_code=201, responses=signed_in)
    async def api_create_article(data: ArticleIn, user: CurrentUser, db: Session) -> ArticleOut:
        """Write a draft.

        With the session cookie, send the token of `GET /api/auth/csrf` as `X-CSRF-Token`.
        """
        article = Article(title=data.title, body=data.body, author=user)
        db.add(article)
        await db.flush()
        return ArticleOut.of(article)

    @api.patch(
        "/articles/{article_id:int}",
        name="update_article",
        responses={**signed_in, **found, 403: {"description": "Not your article"}},
    )
    async def api_update_article(
        article_id: int, patch: ArticlePatch, user: CurrentUser, db: Session
    ) -> ArticleOut:
        """Change your article (403 for someone else's)."""
        article = await find(db, article_id, user)
        await auth.authorize(user, "articles.edit", article)
        for field, value in patch.model_dump(exclude_none=True).items():
            setattr(article, field, value)
        await db.flush()
        return ArticleOut.of(article)

    @api.post(
        "/articles/{article_id:int}/publish",
        name="publish_article",
        dependencies=[requires("articles.publish")],
        responses={**signed_in, **found, 403: {"description": "Editors only"}},
    )
    async def api_publish_article(article_id: int, user: CurrentUser, db: Session) -> ArticleOut:
        """Publish an article (editors: the `articles.publish` permission)."""
        article = await find(db, article_id, user)
        _publish(article)
        await db.flush()
        return ArticleOut.of(article)

    @api.post(
        "/token",
        name="token",
        tags=["auth"],
        responses={
            401: {"description": "Wrong e-mail, user name or password"},
            429: {"description": "Too many failed attempts: see Retry-After"},
        },
    )
    async def issue_jwt(request: Request, body: TokenIn, db: Session) -> TokenOut:
        """A JWT for `Authorization: Bearer`, valid 15 minutes (it cannot be revoked).

        Failed attempts count against the same limits as the sign-in page.
        """
        ticket = await login_throttle.attempt(request, body.login)
        user = await auth.authenticate(db, body.login, body.password)
        if user is None:
            await login_throttle.failure(ticket)  # ThrottledError (429) on the last one
            raise UnauthorizedError("Wrong e-mail, user name or password.")
        await login_throttle.success(ticket, user.email, user.username)
        return TokenOut(access_token=auth.create_jwt(user), expires_in=JWT_LIFETIME)

    app.include(api)
    app.install(APIDocs())
    return app


def _publish(article: Article) -> None:
    if not article.published:
        article.published = True
        article.published_at = utcnow()


async def _article_form(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The title and body of a submitted form, and what is wrong with them."""
    data: Mapping[str, Any] = await request.form()
    title, body = data.get("title"), data.get("body")
    form = {
        "title": title.strip() if isinstance(title, str) else "",
        "body": body.replace("\r\n", "\n") if isinstance(body, str) else "",
    }
    errors: dict[str, list[str]] = {}
    if not form["title"]:
        errors["title"] = ["A title is needed."]
    elif len(form["title"]) > TITLE_MAX:
        errors["title"] = [f"At most {TITLE_MAX} characters."]
    if len(form["body"]) > BODY_MAX:
        errors["body"] = [f"At most {BODY_MAX} characters."]
    return form, errors


app = create_app()

if __name__ == "__main__":
    app.run()
