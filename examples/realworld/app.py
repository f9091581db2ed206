"""Conduit: the RealWorld API (https://realworld-docs.netlify.app) on Trellis.

Run it with ``cd examples/realworld && trellis run app.py``: the API answers under
http://127.0.0.1:8000/api, on a SQLite file ``conduit.db`` in the current directory
(``TRELLIS_DATABASE_URL`` chooses another database, such as PostgreSQL), with the migrations
applied on start-up. See README.md.

- Accounts are the auth battery's users (argon2id passwords); the RealWorld profile (the user
  name as typed, bio, image) is a ``Profile`` row next to each one.
- ``Authorization: Token <jwt>``: JWTs signed with a key derived from the secret key, checked
  by the auth battery's ``JWTConfig``.
- Every error, the framework's validation errors included, is the RealWorld shape
  ``{"errors": {"<field or resource>": ["message"]}}``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import ForeignKey, Select, String, Text, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from trellis import App, Depends, HTTPError, JSONResponse, Query, Request, Router
from trellis.contrib.auth import Auth, JWTConfig, User
from trellis.contrib.auth.hashing import MAX_PASSWORD_LENGTH
from trellis.contrib.auth.jwt import InvalidJWTError
from trellis.contrib.auth.models import has_control_characters, normalize_email, normalize_username
from trellis.contrib.auth.throttle import LoginThrottle, ThrottledError
from trellis.contrib.db import Database, IdMixin, Model, Session, TimestampMixin
from trellis.contrib.db.migrations import Migrations
from trellis.exceptions import RequestValidationError
from trellis.middleware import CORSMiddleware
from trellis.openapi import APIDocs
from trellis.security import APIKeyHeader

HERE = Path(__file__).resolve().parent

#: The database when neither ``create_app(database_url=...)`` nor ``TRELLIS_DATABASE_URL``
#: names one: a file in the current directory.
DEFAULT_DATABASE_URL = "sqlite:///conduit.db"
#: What the tokens say about themselves, and how long they last (seconds).
JWT_ISSUER = "conduit"
JWT_AUDIENCE = "conduit-api"
TOKEN_LIFETIME = 3600
#: Passwords: at least this long (the auth battery's hasher takes up to 4096 characters).
PASSWORD_MIN = 8
TITLE_MAX = 255
USERNAME_MAX = 150
TAG_MAX = 100
#: ``limit`` beyond this is served as this many.
LIMIT_MAX = 1000

BLANK = "can't be blank"
TAKEN = "has already been taken"
INVALID = "is invalid"
NOT_FOUND = "not found"
FORBIDDEN = "forbidden"


# --- the models -----------------------------------------------------------------------------


class Profile(Model):
    """The RealWorld side of an account: the user name as typed, a bio and an image.

    ``auth_user.username`` holds the same name lower-cased, which keeps names unique whatever
    their case (and lets ``trellis user show <name>`` find the account).
    """

    __tablename__ = "conduit_profile"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(String(USERNAME_MAX))
    bio: Mapped[str | None] = mapped_column(Text, default=None)
    image: Mapped[str | None] = mapped_column(Text, default=None)


class Follow(Model):
    """``follower`` follows ``followed``."""

    __tablename__ = "conduit_follow"

    follower_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), primary_key=True
    )
    followed_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Article(IdMixin, TimestampMixin, Model):
    """An article; ``slug`` names it in URLs."""

    __tablename__ = "conduit_article"

    slug: Mapped[str] = mapped_column(String(TITLE_MAX), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), index=True
    )


class Tag(IdMixin, Model):
    """A tag name, shared by the articles that carry it."""

    __tablename__ = "conduit_tag"

    name: Mapped[str] = mapped_column(String(TAG_MAX), unique=True)


class ArticleTag(Model):
    """A tag of an article, at its place in the article's ``tagList``."""

    __tablename__ = "conduit_article_tag"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_article.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_tag.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int]


class Favorite(Model):
    """``user`` favorited ``article``."""

    __tablename__ = "conduit_favorite"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("auth_user.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_article.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Comment(IdMixin, TimestampMixin, Model):
    """A comment on an article."""

    __tablename__ = "conduit_comment"

    body: Mapped[str] = mapped_column(Text)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_article.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("auth_user.id", ondelete="CASCADE"))


# --- what comes in --------------------------------------------------------------------------
# Validators raise PydanticCustomError with a "conduit" type: its message is the RealWorld one,
# passed to the client as is (every other validation error becomes "can't be blank").


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("conduit", message)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _fail(BLANK)
    return value


def _title(value: str) -> str:
    value = _not_blank(value).strip()
    if len(value) > TITLE_MAX:
        raise _fail(f"is too long (maximum is {TITLE_MAX} characters)")
    return value


def _username(value: str) -> str:
    value = _not_blank(value).strip()
    if len(value) > USERNAME_MAX:
        raise _fail(f"is too long (maximum is {USERNAME_MAX} characters)")
    if "/" in value or has_control_characters(value):  # the name is a URL path segment
        raise _fail(INVALID)
    return value


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def _email(value: str) -> str:
    value = _not_blank(value).strip()
    if len(value) > 320 or not _EMAIL.fullmatch(value) or has_control_characters(value):
        raise _fail(INVALID)
    return value


def _password(value: str) -> str:
    _not_blank(value)
    if len(value) < PASSWORD_MIN:
        raise _fail(f"is too short (minimum is {PASSWORD_MIN} characters)")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise _fail(f"is too long (maximum is {MAX_PASSWORD_LENGTH} characters)")
    return value


def _tags(values: list[str]) -> list[str]:
    """Blank names dropped, each name once, in the order given."""
    tags: list[str] = []
    for value in values:
        name = value.strip()
        if len(name) > TAG_MAX or has_control_characters(name):
            raise _fail(INVALID)
        if name and name not in tags:
            tags.append(name)
    return tags


def _blank_is_none(value: str | None) -> str | None:
    return value if value else None  # "" clears the bio or the image


NonBlank = Annotated[str, AfterValidator(_not_blank)]
Title = Annotated[str, AfterValidator(_title)]
Username = Annotated[str, AfterValidator(_username)]
Email = Annotated[str, AfterValidator(_email)]
Password = Annotated[str, AfterValidator(_password)]
TagList = Annotated[list[str], AfterValidator(_tags)]
Clearable = Annotated[str | None, AfterValidator(_blank_is_none)]


class NewUser(BaseModel):
    username: Username
    email: Email
    password: Password


class NewUserRequest(BaseModel):
    """``POST /api/users``."""

    user: NewUser


class LoginUser(BaseModel):
    email: NonBlank
    password: NonBlank


class LoginUserRequest(BaseModel):
    """``POST /api/users/login``."""

    user: LoginUser


class UpdateUser(BaseModel):
    """The fields to change; ``null`` or ``""`` clears ``bio`` and ``image``."""

    # Defaults are never validated: a field left out is told apart with model_fields_set,
    # and `null` for a required field fails its type (422).
    email: Email = ""
    username: Username = ""
    password: Password = ""
    bio: Clearable = None
    image: Clearable = None


class UpdateUserRequest(BaseModel):
    """``PUT /api/user``."""

    user: UpdateUser


class NewArticle(BaseModel):
    title: Title
    description: NonBlank
    body: NonBlank
    tagList: TagList = Field(default_factory=list)


class NewArticleRequest(BaseModel):
    """``POST /api/articles``."""

    article: NewArticle


class UpdateArticle(BaseModel):
    """The fields to change; ``"tagList": []`` removes every tag."""

    title: Title = ""
    description: NonBlank = ""
    body: NonBlank = ""
    tagList: TagList = Field(default_factory=list)


class UpdateArticleRequest(BaseModel):
    """``PUT /api/articles/{slug}``."""

    article: UpdateArticle


class NewComment(BaseModel):
    body: NonBlank


class NewCommentRequest(BaseModel):
    """``POST /api/articles/{slug}/comments``."""

    comment: NewComment


# --- what goes out --------------------------------------------------------------------------


class UserOut(BaseModel):
    email: str
    token: str
    username: str
    bio: str | None
    image: str | None


class UserResponse(BaseModel):
    user: UserOut


class ProfileOut(BaseModel):
    username: str
    bio: str | None
    image: str | None
    following: bool


class ProfileResponse(BaseModel):
    profile: ProfileOut


class ArticleSummary(BaseModel):
    """An article in a list: everything but the body."""

    slug: str
    title: str
    description: str
    tagList: list[str]
    createdAt: str
    updatedAt: str
    favorited: bool
    favoritesCount: int
    author: ProfileOut


class ArticleOut(ArticleSummary):
    body: str


class SingleArticleResponse(BaseModel):
    article: ArticleOut


class MultipleArticlesResponse(BaseModel):
    articles: list[ArticleSummary]
    articlesCount: int = Field(description="How many articles match, on every page.")


class CommentOut(BaseModel):
    id: int
    createdAt: str
    updatedAt: str
    body: str
    author: ProfileOut


class SingleCommentResponse(BaseModel):
    comment: CommentOut


class MultipleCommentsResponse(BaseModel):
    comments: list[CommentOut]


class TagsResponse(BaseModel):
    tags: list[str]


# --- errors ---------------------------------------------------------------------------------


class ConduitError(HTTPError):
    """An error in the RealWorld shape: ``{"errors": {key: [message, ...]}}``."""

    def __init__(
        self, status: int, key: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, f"{key} {message}", headers)
        self.errors: dict[str, list[str]] = {key: [message]}


def _validation_errors(exc: RequestValidationError) -> dict[str, list[str]]:
    """The framework's validation errors, by field: ``["body", "user", "email"]`` is email."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        loc = [part for part in error["loc"] if isinstance(part, str)]
        if loc and loc[0] == "body":
            # ["body", "<wrapper>", "<field>", ...]: the field, else the wrapper itself.
            key = loc[2] if len(loc) > 2 else loc[1] if len(loc) > 1 else "body"
            message = error["msg"] if error["type"] == "conduit" else BLANK
        else:  # a query parameter: limit=abc
            key = loc[-1] if loc else "request"
            message = INVALID
        if message not in errors.setdefault(key, []):
            errors[key].append(message)
    return errors


def error_response(request: Request, exc: HTTPError) -> JSONResponse:
    """Every error of the API as ``{"errors": {...}}``."""
    status = exc.status
    if isinstance(exc, ConduitError):
        errors = exc.errors
    elif isinstance(exc, RequestValidationError):
        errors = _validation_errors(exc)
    elif status == 400:  # a body that is not JSON
        status, errors = 422, {"body": [INVALID]}
    elif status == 404:
        errors = {"path": [NOT_FOUND]}
    elif isinstance(exc, ThrottledError):
        errors = {"credentials": [f"too many attempts: try again in {exc.retry_after} s"]}
    else:
        errors = {"request": [(exc.detail or exc.title).rstrip(".")]}
    return JSONResponse({"errors": errors}, status_code=status, headers=dict(exc.headers))


def not_found(resource: str) -> ConduitError:
    return ConduitError(404, resource, NOT_FOUND)


def forbidden(resource: str) -> ConduitError:
    return ConduitError(403, resource, FORBIDDEN)


# --- who is asking --------------------------------------------------------------------------

#: ``Authorization: Token <jwt>``; described as the RealWorld spec does (an API key).
token_header = APIKeyHeader(
    "Authorization",
    scheme_name="Token",
    auto_error=False,
    description='"Token " followed by the token of `POST /api/users/login` or `POST /api/users`',
)


def _token(header: str | None) -> str | None:
    """The JWT in ``Authorization: Token <jwt>`` (``Bearer`` works too), ``None`` without one.

    Raises:
        ConduitError: the header holds something else (401).
    """
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer"):
        raise ConduitError(401, "token", INVALID, {"WWW-Authenticate": "Token"})
    return token.strip() or None


async def optional_user(
    request: Request,
    db: Session,
    header: Annotated[str | None, Depends(token_header)],
) -> User | None:
    """The user the token names; ``None`` without a token, 401 for a bad one."""
    token = _token(header)
    if token is None:
        return None
    auth: Auth = request.app.state.auth
    assert auth.jwt is not None  # set at start-up
    try:
        claims = auth.jwt.decode(token)
    except InvalidJWTError:  # expired ones included
        raise ConduitError(401, "token", INVALID, {"WWW-Authenticate": "Token"}) from None
    user = await auth.user_for_claims(db, claims)
    if user is None:  # deleted or deactivated since
        raise ConduitError(401, "token", INVALID, {"WWW-Authenticate": "Token"})
    request.state.user = user
    return user


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    """The user the token names; 401 ``token: is missing`` without one."""
    if user is None:
        raise ConduitError(401, "token", "is missing", {"WWW-Authenticate": "Token"})
    return user


#: Put first in a handler's signature: the token is checked before the body and any lookup.
Viewer = Annotated[User | None, Depends(optional_user)]
Me = Annotated[User, Depends(current_user)]
Limit = Annotated[int, Query(ge=0, description="At most this many (20 by default).")]
Offset = Annotated[int, Query(ge=0, description="Skip this many first.")]


# --- reading and writing --------------------------------------------------------------------


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds: ``2026-05-01T12:00:00.123Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def slugify(title: str) -> str:
    """``"Hello, World!"`` -> ``"hello-world"``; letters of every script are kept."""
    text = unicodedata.normalize("NFKC", title).lower()
    slug = re.sub(r"[\W_]+", "-", text).strip("-")
    return slug[: TITLE_MAX - 7].rstrip("-") or "article"  # room for a suffix


async def unique_slug(db: AsyncSession, title: str, article_id: int | None = None) -> str:
    """The title's slug, with a random suffix when another article has it."""
    base = slugify(title)
    slug = base
    while True:
        other = await db.scalar(select(Article.id).where(Article.slug == slug))
        if other is None or other == article_id:
            return slug
        slug = f"{base}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Person:
    """What a profile shows of a user."""

    id: int
    username: str
    bio: str | None
    image: str | None


async def people(db: AsyncSession, user_ids: Iterable[int]) -> dict[int, Person]:
    """The profiles of these users, by id (one query)."""
    ids = set(user_ids)
    if not ids:
        return {}
    rows = await db.execute(
        select(User.id, User.username, User.email, Profile.username, Profile.bio, Profile.image)
        .outerjoin(Profile, Profile.user_id == User.id)
        .where(User.id.in_(ids))
    )
    found: dict[int, Person] = {}
    for user_id, login_name, email, name, bio, image in rows:
        # Accounts made outside the API (`trellis user create`) have no profile row yet.
        found[user_id] = Person(user_id, name or login_name or email.split("@")[0], bio, image)
    return found


async def followed_among(
    db: AsyncSession, viewer: User | None, user_ids: Iterable[int]
) -> set[int]:
    """Which of these users ``viewer`` follows."""
    ids = set(user_ids)
    if viewer is None or not ids:
        return set()
    rows = await db.scalars(
        select(Follow.followed_id).where(
            Follow.follower_id == viewer.id, Follow.followed_id.in_(ids)
        )
    )
    return set(rows)


def profile_out(person: Person, following: bool) -> ProfileOut:
    return ProfileOut(
        username=person.username, bio=person.bio, image=person.image, following=following
    )


async def find_person(db: AsyncSession, username: str) -> Person:
    """The profile named ``username`` (case-insensitive), else 404 ``profile: not found``."""
    name = normalize_username(username)
    if not name or has_control_characters(name):
        raise not_found("profile")
    user_id = await db.scalar(select(User.id).where(User.username == name))
    if user_id is None:
        raise not_found("profile")
    return (await people(db, [user_id]))[user_id]


async def find_article(db: AsyncSession, slug: str) -> Article:
    article = await db.scalar(select(Article).where(Article.slug == slug))
    if article is None:
        raise not_found("article")
    return article


async def articles_out(
    db: AsyncSession, articles: Sequence[Article], viewer: User | None
) -> list[ArticleOut]:
    """The API's view of ``articles`` for ``viewer``: five queries, however many articles."""
    ids = [article.id for article in articles]
    if not ids:
        return []
    tags: dict[int, list[str]] = {i: [] for i in ids}
    rows = await db.execute(
        select(ArticleTag.article_id, Tag.name)
        .join(Tag, Tag.id == ArticleTag.tag_id)
        .where(ArticleTag.article_id.in_(ids))
        .order_by(ArticleTag.article_id, ArticleTag.position)
    )
    for article_id, name in rows:
        tags[article_id].append(name)
    favorites = await db.execute(
        select(Favorite.article_id, func.count())
        .where(Favorite.article_id.in_(ids))
        .group_by(Favorite.article_id)
    )
    counts: dict[int, int] = {row[0]: row[1] for row in favorites}
    mine: set[int] = set()
    if viewer is not None:
        mine = set(
            await db.scalars(
                select(Favorite.article_id).where(
                    Favorite.user_id == viewer.id, Favorite.article_id.in_(ids)
                )
            )
        )
    authors = await people(db, (article.author_id for article in articles))
    following = await followed_among(db, viewer, authors)
    return [
        ArticleOut(
            slug=article.slug,
            title=article.title,
            description=article.description,
            body=article.body,
            tagList=tags[article.id],
            createdAt=timestamp(article.created_at),
            updatedAt=timestamp(article.updated_at),
            favorited=article.id in mine,
            favoritesCount=counts.get(article.id, 0),
            author=profile_out(authors[article.author_id], article.author_id in following),
        )
        for article in articles
    ]


async def article_response(
    db: AsyncSession, article: Article, viewer: User | None
) -> SingleArticleResponse:
    await db.flush()  # the timestamps and ids of a new or changed article
    return SingleArticleResponse(article=(await articles_out(db, [article], viewer))[0])


async def set_tags(db: AsyncSession, article: Article, names: list[str]) -> None:
    """Replace the article's tags with ``names``, in this order."""
    await db.execute(delete(ArticleTag).where(ArticleTag.article_id == article.id))
    if not names:
        return
    known = {
        name: tag_id
        for tag_id, name in await db.execute(select(Tag.id, Tag.name).where(Tag.name.in_(names)))
    }
    for name in names:
        if name not in known:
            tag = Tag(name=name)
            db.add(tag)
            await db.flush()
            known[name] = tag.id
    db.add_all(
        ArticleTag(article_id=article.id, tag_id=known[name], position=position)
        for position, name in enumerate(names)
    )


async def page(
    db: AsyncSession, query: Select[Article], limit: int, offset: int, viewer: User | None
) -> MultipleArticlesResponse:
    """One page of ``query``'s articles, newest first, and how many match in all."""
    total = await db.scalar(select(func.count()).select_from(query.subquery()))
    rows = await db.scalars(
        query.order_by(Article.created_at.desc(), Article.id.desc())
        .limit(min(limit, LIMIT_MAX))
        .offset(offset)
    )
    articles = await articles_out(db, list(rows), viewer)
    return MultipleArticlesResponse(
        articles=[ArticleSummary.model_validate(a, from_attributes=True) for a in articles],
        articlesCount=total or 0,
    )


def _user_named(username: str) -> Any:
    """A subquery: the id of the user named ``username`` (case-insensitive)."""
    return select(User.id).where(User.username == normalize_username(username)).scalar_subquery()


def jwt_key(secret_key: str) -> str:
    """The HMAC key of the tokens, derived from the app's secret key (never the key itself)."""
    return hmac.new(secret_key.encode(), b"conduit.jwt", hashlib.sha256).hexdigest()


# --- the application ------------------------------------------------------------------------


def create_app(
    database_url: str | None = None,
    *,
    hasher: Any = None,
    throttle: LoginThrottle | None = None,
    token_lifetime: int = TOKEN_LIFETIME,
    migrate: bool = True,
    **settings: Any,
) -> App:
    """Build the Conduit API.

    Args:
        database_url: The database (default: ``TRELLIS_DATABASE_URL``, else
            ``sqlite:///conduit.db``).
        hasher: The password hasher (default: argon2id; tests pass a cheap one).
        throttle: The sign-in limits (default: 5 failures per account and 50 per address in
            15 minutes).
        token_lifetime: Seconds a token is valid.
        migrate: Apply the migrations not applied yet on start-up.
        **settings: ``TRELLIS_*`` settings to override (``debug=True``, ``secret_key=...``).
    """
    app = App(**settings)
    app.openapi_info = {
        "title": "Conduit API",
        "version": "1.0.0",
        "description": "The RealWorld API: articles, comments, profiles, follows and favorites.",
    }
    if database_url is None and "database_url" not in app.settings.model_fields_set:
        database_url = DEFAULT_DATABASE_URL
    database: Database = app.install(Database(database_url))
    login_throttle = throttle or LoginThrottle()
    # The battery's own pages and /api/auth routes are not part of the RealWorld API.
    auth: Auth = app.install(Auth(hasher=hasher, throttle=login_throttle, pages=False, api=False))
    # Tokens travel in a header, never in a cookie: any origin may call the API.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
    )

    @app.on_startup
    def accept_tokens() -> None:
        # The secret key is known for sure only now (debug mode makes one per process).
        auth.jwt = JWTConfig(
            keys={"conduit-1": jwt_key(app.settings.effective_secret_key())},
            issuer=JWT_ISSUER,
            audience=JWT_AUDIENCE,
            lifetime=token_lifetime,
        )

    # Next to this file, whatever the current directory: `trellis --app .../app.py db upgrade`.
    migrations = Migrations(database, HERE / "migrations")
    app.state.migrations = migrations

    if migrate:

        @app.on_startup
        async def apply_migrations() -> None:
            """A fresh checkout serves at once: the tables are made on the first start."""
            await anyio.to_thread.run_sync(migrations.upgrade)

    app.exception_handler(HTTPError)(error_response)

    def user_out(user: User, person: Person) -> UserResponse:
        return UserResponse(
            user=UserOut(
                email=user.email,
                token=auth.create_jwt(user),
                username=person.username,
                bio=person.bio,
                image=person.image,
            )
        )

    async def name_taken(db: AsyncSession, username: str, user: User | None = None) -> bool:
        other = await db.scalar(
            select(User.id).where(User.username == normalize_username(username))
        )
        return other is not None and (user is None or other != user.id)

    async def email_taken(db: AsyncSession, email: str, user: User | None = None) -> bool:
        other = await db.scalar(select(User.id).where(User.email == normalize_email(email)))
        return other is not None and (user is None or other != user.id)

    async def flush_unique(db: AsyncSession) -> None:
        """Flush; a unique value taken meanwhile by another request is a 409 too."""
        try:
            await db.flush()
        except IntegrityError:
            raise ConduitError(409, "username", TAKEN) from None

    api = Router("/api", name="api")
    unauthorized = {401: {"description": '`{"errors": {"token": ["is missing"]}}`'}}
    invalid = {422: {"description": '`{"errors": {"<field>": ["can\'t be blank"]}}`'}}

    # --- users ----------------------------------------------------------------------------

    @api.post(
        "/users",
        name="register",
        status_code=201,
        tags=["User and Authentication"],
        responses={**invalid, 409: {"description": "E-mail address or user name taken"}},
    )
    async def register(payload: NewUserRequest, db: Session) -> UserResponse:
        """Register a new user; the answer carries their token."""
        data = payload.user
        if await email_taken(db, data.email):
            raise ConduitError(409, "email", TAKEN)
        if await name_taken(db, data.username):
            raise ConduitError(409, "username", TAKEN)
        user = User(email=data.email, username=data.username)
        await auth.aset_password(user, data.password)
        db.add(user)
        await flush_unique(db)
        profile = Profile(user_id=user.id, username=data.username)
        db.add(profile)
        await db.flush()
        return user_out(user, Person(user.id, profile.username, None, None))

    @api.post(
        "/users/login",
        name="login",
        tags=["User and Authentication"],
        responses={**invalid, 401: {"description": '`{"errors": {"credentials": ["invalid"]}}`'}},
    )
    async def login(request: Request, payload: LoginUserRequest, db: Session) -> UserResponse:
        """Sign in with an e-mail address and a password."""
        data = payload.user
        ticket = await login_throttle.attempt(request, data.email)
        user = None
        if "@" in data.email:  # the battery would take a user name: RealWorld wants an e-mail
            user = await auth.authenticate(db, data.email, data.password)
        else:
            await auth.hasher.averify(None, data.password)  # the same time either way
        if user is None:
            await login_throttle.failure(ticket)
            raise ConduitError(401, "credentials", "invalid")
        await login_throttle.success(ticket, user.username)
        return user_out(user, (await people(db, [user.id]))[user.id])

    @api.get("/user", name="current_user", tags=["User and Authentication"], responses=unauthorized)
    async def get_user(me: Me, db: Session) -> UserResponse:
        """The user the token belongs to, with a fresh token."""
        return user_out(me, (await people(db, [me.id]))[me.id])

    @api.put(
        "/user",
        name="update_user",
        tags=["User and Authentication"],
        responses={**unauthorized, **invalid, 409: {"description": "E-mail or user name taken"}},
    )
    async def update_user(me: Me, payload: UpdateUserRequest, db: Session) -> UserResponse:
        """Change the fields given: e-mail, user name, password, bio, image."""
        data = payload.user
        given = data.model_fields_set
        if "email" in given and await email_taken(db, data.email, me):
            raise ConduitError(409, "email", TAKEN)
        if "username" in given and await name_taken(db, data.username, me):
            raise ConduitError(409, "username", TAKEN)
        profile = await db.get(Profile, me.id)
        if profile is None:
            person = (await people(db, [me.id]))[me.id]
            profile = Profile(user_id=me.id, username=person.username)
            db.add(profile)
        if "email" in given:
            me.email = data.email
        if "username" in given:
            me.username = profile.username = data.username
        if "password" in given:
            # Not auth.aset_password: it would end the tokens issued before, and RealWorld
            # clients keep using the one they hold (tokens expire within the hour anyway).
            me.password_hash = await auth.hasher.ahash(data.password)
        if "bio" in given:
            profile.bio = data.bio
        if "image" in given:
            profile.image = data.image
        await flush_unique(db)
        return user_out(me, Person(me.id, profile.username, profile.bio, profile.image))

    # --- profiles -------------------------------------------------------------------------

    @api.get("/profiles/{username}", name="profile", tags=["Profile"])
    async def get_profile(viewer: Viewer, username: str, db: Session) -> ProfileResponse:
        """A user's profile; ``following`` says whether the caller follows them."""
        person = await find_person(db, username)
        following = await followed_among(db, viewer, [person.id])
        return ProfileResponse(profile=profile_out(person, person.id in following))

    @api.post(
        "/profiles/{username}/follow", name="follow", tags=["Profile"], responses=unauthorized
    )
    async def follow(me: Me, username: str, db: Session) -> ProfileResponse:
        """Follow a user (following twice changes nothing)."""
        person = await find_person(db, username)
        if await db.get(Follow, (me.id, person.id)) is None:
            db.add(Follow(follower_id=me.id, followed_id=person.id))
            await db.flush()
        return ProfileResponse(profile=profile_out(person, True))

    @api.delete(
        "/profiles/{username}/follow", name="unfollow", tags=["Profile"], responses=unauthorized
    )
    async def unfollow(me: Me, username: str, db: Session) -> ProfileResponse:
        """Stop following a user."""
        person = await find_person(db, username)
        await db.execute(
            delete(Follow).where(Follow.follower_id == me.id, Follow.followed_id == person.id)
        )
        return ProfileResponse(profile=profile_out(person, False))

    # --- articles -------------------------------------------------------------------------

    @api.get("/articles", name="articles", tags=["Articles"])
    async def list_articles(
        viewer: Viewer,
        db: Session,
        tag: str | None = None,
        author: str | None = None,
        favorited: str | None = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> MultipleArticlesResponse:
        """Articles, newest first: with a tag, by an author, favorited by a user."""
        query = select(Article)
        if tag is not None:
            query = query.where(
                Article.id.in_(
                    select(ArticleTag.article_id)
                    .join(Tag, Tag.id == ArticleTag.tag_id)
                    .where(Tag.name == tag)
                )
            )
        if author is not None:
            query = query.where(Article.author_id == _user_named(author))
        if favorited is not None:
            query = query.where(
                Article.id.in_(
                    select(Favorite.article_id).where(Favorite.user_id == _user_named(favorited))
                )
            )
        return await page(db, query, limit, offset, viewer)

    @api.get("/articles/feed", name="feed", tags=["Articles"], responses=unauthorized)
    async def feed(
        me: Me, db: Session, limit: Limit = 20, offset: Offset = 0
    ) -> MultipleArticlesResponse:
        """Articles by the users the caller follows, newest first."""
        followed = select(Follow.followed_id).where(Follow.follower_id == me.id)
        return await page(
            db, select(Article).where(Article.author_id.in_(followed)), limit, offset, me
        )

    @api.post(
        "/articles",
        name="create_article",
        status_code=201,
        tags=["Articles"],
        responses={**unauthorized, **invalid},
    )
    async def create_article(
        me: Me, payload: NewArticleRequest, db: Session
    ) -> SingleArticleResponse:
        """Write an article; a title another article has gets a slug of its own."""
        data = payload.article
        article = Article(
            slug=await unique_slug(db, data.title),
            title=data.title,
            description=data.description,
            body=data.body,
            author_id=me.id,
        )
        db.add(article)
        await db.flush()
        await set_tags(db, article, data.tagList)
        return await article_response(db, article, me)

    @api.get("/articles/{slug}", name="article", tags=["Articles"])
    async def get_article(viewer: Viewer, slug: str, db: Session) -> SingleArticleResponse:
        """One article, with its body."""
        return await article_response(db, await find_article(db, slug), viewer)

    @api.put(
        "/articles/{slug}",
        name="update_article",
        tags=["Articles"],
        responses={**unauthorized, **invalid, 403: {"description": "Not the author"}},
    )
    async def update_article(
        me: Me, slug: str, payload: UpdateArticleRequest, db: Session
    ) -> SingleArticleResponse:
        """Change the fields given; a new title makes a new slug."""
        article = await find_article(db, slug)
        if article.author_id != me.id:
            raise forbidden("article")
        data = payload.article
        given = data.model_fields_set
        if "title" in given and data.title != article.title:
            article.title = data.title
            article.slug = await unique_slug(db, data.title, article.id)
        if "description" in given:
            article.description = data.description
        if "body" in given:
            article.body = data.body
        if "tagList" in given:
            await set_tags(db, article, data.tagList)
        return await article_response(db, article, me)

    @api.delete(
        "/articles/{slug}",
        name="delete_article",
        status_code=204,
        tags=["Articles"],
        responses={**unauthorized, 403: {"description": "Not the author"}},
    )
    async def delete_article(me: Me, slug: str, db: Session) -> None:
        """Delete an article, its comments and its favorites."""
        article = await find_article(db, slug)
        if article.author_id != me.id:
            raise forbidden("article")
        await db.delete(article)

    # --- favorites ------------------------------------------------------------------------

    @api.post(
        "/articles/{slug}/favorite", name="favorite", tags=["Favorites"], responses=unauthorized
    )
    async def favorite(me: Me, slug: str, db: Session) -> SingleArticleResponse:
        """Favorite an article (twice changes nothing)."""
        article = await find_article(db, slug)
        if await db.get(Favorite, (me.id, article.id)) is None:
            db.add(Favorite(user_id=me.id, article_id=article.id))
        return await article_response(db, article, me)

    @api.delete(
        "/articles/{slug}/favorite", name="unfavorite", tags=["Favorites"], responses=unauthorized
    )
    async def unfavorite(me: Me, slug: str, db: Session) -> SingleArticleResponse:
        """Take an article out of the caller's favorites."""
        article = await find_article(db, slug)
        await db.execute(
            delete(Favorite).where(Favorite.user_id == me.id, Favorite.article_id == article.id)
        )
        return await article_response(db, article, me)

    # --- comments -------------------------------------------------------------------------

    async def comments_out(
        db: AsyncSession, comments: Sequence[Comment], viewer: User | None
    ) -> list[CommentOut]:
        authors = await people(db, (comment.author_id for comment in comments))
        following = await followed_among(db, viewer, authors)
        return [
            CommentOut(
                id=comment.id,
                createdAt=timestamp(comment.created_at),
                updatedAt=timestamp(comment.updated_at),
                body=comment.body,
                author=profile_out(authors[comment.author_id], comment.author_id in following),
            )
            for comment in comments
        ]

    @api.post(
        "/articles/{slug}/comments",
        name="create_comment",
        status_code=201,
        tags=["Comments"],
        responses={**unauthorized, **invalid},
    )
    async def create_comment(
        me: Me, slug: str, payload: NewCommentRequest, db: Session
    ) -> SingleCommentResponse:
        """Comment on an article."""
        article = await find_article(db, slug)
        comment = Comment(body=payload.comment.body, article_id=article.id, author_id=me.id)
        db.add(comment)
        await db.flush()
        return SingleCommentResponse(comment=(await comments_out(db, [comment], me))[0])

    @api.get("/articles/{slug}/comments", name="comments", tags=["Comments"])
    async def list_comments(viewer: Viewer, slug: str, db: Session) -> MultipleCommentsResponse:
        """An article's comments, newest first."""
        article = await find_article(db, slug)
        comments = await db.scalars(
            select(Comment)
            .where(Comment.article_id == article.id)
            .order_by(Comment.created_at.desc(), Comment.id.desc())
        )
        return MultipleCommentsResponse(comments=await comments_out(db, list(comments), viewer))

    @api.delete(
        "/articles/{slug}/comments/{id:int}",
        name="delete_comment",
        status_code=204,
        tags=["Comments"],
        responses={**unauthorized, 403: {"description": "Not the comment's author"}},
    )
    async def delete_comment(me: Me, slug: str, id: int, db: Session) -> None:
        """Delete one of the caller's comments."""
        article = await find_article(db, slug)
        comment = await db.get(Comment, id)
        if comment is None or comment.article_id != article.id:
            raise not_found("comment")
        if comment.author_id != me.id:
            raise forbidden("comment")
        await db.delete(comment)

    # --- tags -----------------------------------------------------------------------------

    @api.get("/tags", name="tags", tags=["Tags"])
    async def list_tags(db: Session) -> TagsResponse:
        """The tags in use, most used first."""
        count = func.count(ArticleTag.article_id)
        rows = await db.scalars(
            select(Tag.name)
            .join(ArticleTag, ArticleTag.tag_id == Tag.id)
            .group_by(Tag.id, Tag.name)
            .order_by(count.desc(), Tag.name)
        )
        return TagsResponse(tags=list(rows))

    app.include(api)
    app.install(APIDocs())
    return app


app = create_app()
