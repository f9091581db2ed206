"""The auth battery's plugin: ``app.install(Auth())``.

```py
app = App()
db = app.install(Database(url))
auth = app.install(Auth(jwt=JWTConfig(keys={"k1": os.environ["JWT_KEY"]})))
```

It puts itself on ``app.state.auth``, adds the ``trellis_auth`` migration branch (``trellis
db upgrade`` creates the tables), the ``trellis user`` commands, the redirect of anonymous
browsers to the login page, and the auth pages and JSON API when asked (``pages``, ``api``,
``oauth``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_object_session

from trellis.contrib.auth import tokens as _tokens
from trellis.contrib.auth.dependencies import LoginRequiredError
from trellis.contrib.auth.hashing import PasswordHasher
from trellis.contrib.auth.jwt import JWTConfig
from trellis.contrib.auth.models import (
    MIGRATION_BRANCH,
    User,
    has_control_characters,
    normalize_email,
    normalize_username,
)
from trellis.contrib.auth.permissions import (
    ObjectRule,
    ObjectRules,
    declare_permission,
    forbidden,
    user_has_perm,
)
from trellis.contrib.db.database import Database
from trellis.contrib.db.types import utcnow
from trellis.exceptions import ConfigurationError, UnauthorizedError

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.http.request import Request
    from trellis.http.response import Response

__all__ = ["MIGRATIONS_DIRECTORY", "Auth"]


#: The directory of the ``trellis_auth`` branch's revision files.
MIGRATIONS_DIRECTORY = Path(__file__).parent / "migrations"


class Auth:
    """The auth battery: users, sessions, tokens, JWTs and permissions for an application.

    Args:
        db: The ``Database`` (default: the one installed on the app; install it first).
        jwt: Accept (and issue, with ``create_jwt``) JWTs as bearer tokens.
        hasher: The password hasher (default: argon2id with argon2-cffi's parameters).
        permissions: Codenames the application uses, with descriptions
            (``{"articles.publish": "Publish articles"}``); ``trellis user grant`` creates
            known ones on first use. ``requires()`` declares its codenames itself.
        email: The mail backend of the account e-mails (``trellis.contrib.mail``).
        throttle: Limits failed sign-ins and reset e-mails: ``None`` (the default) for a
            default ``LoginThrottle()``, a ``trellis.contrib.auth.throttle.LoginThrottle`` of
            your own, or ``False`` to turn the limits off.
        oauth: Sign-in providers (``trellis.contrib.auth.oauth``).
        pages: Add the HTML pages (login, logout, register, password change and reset).
        api: Add the JSON API (login, logout, tokens, register, password).
        prefix: Where the pages live.
        api_prefix: Where the JSON API lives.
        login_url: Where anonymous browsers are sent (default: ``{prefix}/login``).
        registration: Let visitors create accounts (pages and API).
        password_policy: The rules new passwords must meet (``flows.PasswordPolicy``).
        password_reset_max_age: Seconds a password reset link works.
        site_url: The scheme and host the links in e-mails start with
            (``"https://example.com"``); default: the request's, from its ``Host`` header.
        password_reset_url: The reset link of the e-mails, with ``{token}`` where the token
            goes (``"https://app.example.com/reset?token={token}"``, a single-page app's own
            page); default: the reset page under ``site_url``.
        login_redirect_url: Where the pages send the browser after a sign-in without
            ``next`` (default ``"/"``).
        logout_redirect_url: Where the pages send the browser after a sign-out (default:
            ``login_url``).
        login_token_lifetime: Seconds a bearer token from the API's ``/login`` (with
            ``"token": true``) works (default 30 days; ``None``: until revoked).

    Raises:
        ConfigurationError: ``site_url`` is not an ``http(s)://`` URL, or
            ``password_reset_url`` has no ``{token}``.
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        jwt: JWTConfig | None = None,
        hasher: PasswordHasher | None = None,
        permissions: Mapping[str, str] | None = None,
        email: Any = None,
        throttle: Any = None,
        oauth: Sequence[Any] = (),
        pages: bool = True,
        api: bool = True,
        prefix: str = "/auth",
        api_prefix: str = "/api/auth",
        login_url: str | None = None,
        registration: bool = True,
        password_policy: Any = None,
        password_reset_max_age: int | None = None,
        site_url: str | None = None,
        password_reset_url: str | None = None,
        login_redirect_url: str | None = None,
        logout_redirect_url: str | None = None,
        login_token_lifetime: float | None = 30 * 86400,
    ) -> None:
        if site_url is not None and not _is_http_url(site_url):
            raise ConfigurationError(
                f"Auth(site_url={site_url!r}): give the scheme and host the e-mailed links"
                " start with, such as 'https://example.com'"
            )
        if password_reset_url is not None and "{token}" not in password_reset_url:
            raise ConfigurationError(
                f"Auth(password_reset_url={password_reset_url!r}) needs '{{token}}' where the"
                " token goes, such as 'https://app.example.com/reset?token={token}'"
            )
        self._db = db
        self.jwt = jwt
        self.login_token_lifetime = login_token_lifetime
        self.hasher = hasher if hasher is not None else PasswordHasher()
        self.email = email
        self.throttle = throttle
        self.oauth = tuple(oauth)
        self.pages = pages
        self.api = api
        self.prefix = prefix
        self.api_prefix = api_prefix
        self.login_url = login_url if login_url is not None else f"{prefix}/login"
        self.registration = registration
        self.password_policy = password_policy
        self.password_reset_max_age = password_reset_max_age
        self.site_url = site_url
        self.password_reset_url = password_reset_url
        self.login_redirect_url = login_redirect_url
        self.logout_redirect_url = logout_redirect_url
        self.app: App | None = None
        self.object_rules = ObjectRules()
        for codename, description in (permissions or {}).items():
            declare_permission(codename, description)

    # -- installation -------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        """The ``Database`` the users live in."""
        if self._db is None:
            raise ConfigurationError("Auth is not installed yet: app.install(Auth())")
        return self._db

    def setup(self, app: App) -> None:
        """Install on ``app``: state, migrations, CLI, the login redirect, the routes."""
        existing = getattr(app.state, "auth", None)
        if existing is not None and existing is not self:
            raise ConfigurationError("the application already has an Auth installed")
        if self._db is None:
            database = getattr(app.state, "database", None)
            if not isinstance(database, Database):
                raise ConfigurationError(
                    "Auth() needs a database: app.install(Database(url)) before"
                    " app.install(Auth()), or pass Auth(db=...)"
                )
            self._db = database
        self.app = app
        app.state.auth = self
        self.db.add_migration_branch(MIGRATION_BRANCH, MIGRATIONS_DIRECTORY)
        app.exception_handler(LoginRequiredError)(_login_required_response)
        from trellis.contrib.auth.cli import user_command

        app.add_command(user_command(self))
        self._include_routes(app)

    def _include_routes(self, app: App) -> None:
        if self.pages or self.api:
            from trellis.contrib.auth import routes

            if self.pages:
                app.include(routes.pages_router(self))
            if self.api:
                app.include(routes.api_router(self))
        if self.oauth:
            from trellis.contrib.auth.oauth.routes import oauth_router

            app.include(oauth_router(self))

    # -- passwords ----------------------------------------------------------------------------

    def set_password(self, user: User, password: str | None) -> None:
        """Hash and set ``user``'s password (``None``: no password, OAuth sign-in only).

        Also sets ``password_changed_at``: the user's other sessions stop working (their
        password fingerprint no longer matches) and JWTs issued before are refused.
        Hashing takes tens of milliseconds: in async code prefer ``aset_password``.
        """
        user.password_hash = None if password is None else self.hasher.hash(password)
        user.password_changed_at = utcnow()

    async def aset_password(self, user: User, password: str | None) -> None:
        """``set_password`` with the hashing in a worker thread."""
        user.password_hash = None if password is None else await self.hasher.ahash(password)
        user.password_changed_at = utcnow()

    async def find_user(self, db: AsyncSession, email_or_username: str) -> User | None:
        """The user with this e-mail address or user name (case-insensitive), or ``None``.

        A value no account can have (empty, too long, with control characters such as a NUL
        byte, which PostgreSQL refuses outright) is ``None`` without asking the database.
        """
        value = email_or_username.strip()
        if not value or len(value) > 320 or has_control_characters(value):
            return None
        if "@" in value:
            where = User.email == normalize_email(value)
        else:
            where = User.username == normalize_username(value)
        return (await db.execute(select(User).where(where))).scalar_one_or_none()

    async def authenticate(
        self, db: AsyncSession, email_or_username: str, password: str
    ) -> User | None:
        """The active user with these credentials, or ``None``.

        Takes the same time whether the account exists or not (an unknown user still costs
        one hash verification), and rehashes the password when the hasher's parameters
        changed since it was set (the new hash is committed with ``db``).
        """
        user = await self.find_user(db, email_or_username)
        hash = user.password_hash if user is not None else None
        ok = await self.hasher.averify(hash, password)
        if user is None or not ok or not user.is_active:
            return None
        if hash is not None and self.hasher.needs_rehash(hash):
            # The fingerprint of other sessions changes with the hash: they sign in again.
            user.password_hash = await self.hasher.ahash(password)
        return user

    # -- tokens -------------------------------------------------------------------------------

    async def issue_token(
        self,
        db: AsyncSession,
        user: User,
        *,
        kind: _tokens.TokenKind = "bearer",
        name: str = "",
        expires_in: float | timedelta | None = None,
        scopes: Iterable[str] = (),
    ) -> str:
        """Make an opaque bearer token or API key; the token is returned this once.

        See ``trellis.contrib.auth.tokens.issue_token``.
        """
        return await _tokens.issue_token(
            db, user, kind=kind, name=name, expires_in=expires_in, scopes=scopes
        )

    async def revoke_token(self, db: AsyncSession, token_or_id: str | int) -> bool:
        """Revoke a token (given in clear, or by id); whether a live one was revoked."""
        return await _tokens.revoke_token(db, token_or_id)

    def create_jwt(self, user: User, **claims: Any) -> str:
        """A signed JWT for ``user`` (``sub`` is the user's id), valid ``jwt.lifetime`` seconds.

        Extra ``claims`` are added (``scope="articles.read"`` limits what it may do).

        Raises:
            ConfigurationError: ``Auth(jwt=...)`` is not configured or has no signing key.
        """
        if self.jwt is None:
            raise ConfigurationError("create_jwt() needs Auth(jwt=JWTConfig(...))")
        return self.jwt.encode({"sub": str(user.id), **claims})

    async def user_for_claims(self, db: AsyncSession, claims: Mapping[str, Any]) -> User | None:
        """The active user a verified JWT's claims name, or ``None``.

        ``None`` also when the token was issued before the user's last password change.
        """
        subject = claims.get("sub")
        # ASCII digits only: "²" is a digit to str.isdigit() and an error to int().
        if not isinstance(subject, str) or not subject.isascii() or not subject.isdigit():
            return None
        if len(subject) > 18:  # more than a BIGINT holds
            return None
        user = await db.get(User, int(subject))
        if user is None or not user.is_active:
            return None
        changed = user.password_changed_at
        issued = claims.get("iat")
        if changed is not None and (
            not isinstance(issued, int | float) or issued < int(changed.timestamp())
        ):
            return None
        return user

    # -- permissions --------------------------------------------------------------------------

    def object_permission(self, codename: str) -> Callable[[ObjectRule], ObjectRule]:
        """Decorator: a rule ``rule(user, obj) -> bool`` (or async) granting ``codename``.

        Example:
            ```python
            from sqlalchemy.orm import Mapped

            from trellis.contrib.auth import Auth, User
            from trellis.contrib.db import IdMixin, Model

            auth = Auth()


            class Article(IdMixin, Model):
                author_id: Mapped[int]


            @auth.object_permission("articles.edit")
            def author_edits(user: User, article: Article) -> bool:
                return article.author_id == user.id


            # the decorator registers the rule and returns it unchanged
            assert author_edits(User(id=3), Article(author_id=3))
            ```
        """
        return self.object_rules.register(codename)

    async def has_perm(
        self, user: User | None, codename: str, obj: Any = None, *, db: AsyncSession | None = None
    ) -> bool:
        """Whether ``user`` may ``codename`` (on ``obj`` when given).

        Superusers may; so may a user with the permission itself (directly or through a
        group); for an object, so may a user one of the object rules of ``codename`` allows.

        Args:
            user: The user (``None``: anonymous, who may nothing).
            codename: The permission.
            obj: The object, for the object-level rules.
            db: The session to read permissions with (default: the one ``user`` is in).
        """
        if user is None or not user.is_active:
            return False
        if user.is_superuser:
            return True
        session = db if db is not None else async_object_session(user)
        if session is None:
            async with self.db.session() as fresh:
                if await user_has_perm(fresh, user, codename):
                    return True
        elif await user_has_perm(session, user, codename):
            return True
        return obj is not None and await self.object_rules.allows(user, codename, obj)

    async def authorize(
        self, user: User | None, codename: str, obj: Any = None, *, db: AsyncSession | None = None
    ) -> None:
        """Raise unless ``user`` may ``codename`` (on ``obj``): see ``has_perm``.

        Raises:
            UnauthorizedError: ``user`` is ``None`` (401).
            ForbiddenError: the user may not (403, naming nothing).
        """
        if user is None:
            raise UnauthorizedError("Authentication required.", {"WWW-Authenticate": "Bearer"})
        if not await self.has_perm(user, codename, obj, db=db):
            raise forbidden()

    # -- deployment -----------------------------------------------------------------------------

    def deploy_checks(self, app: App) -> list[Any]:
        """Problems of this configuration in production (``trellis check --deploy``)."""
        from trellis.checks import DeployProblem

        problems: list[Any] = []
        if self.jwt is not None and self.jwt.lifetime > 3600:
            problems.append(
                DeployProblem(
                    id="auth.W001",
                    message=(
                        f"JWTs live {self.jwt.lifetime:g} s: a stolen token works that long"
                        " and cannot be revoked."
                    ),
                    fix="Keep JWTConfig(lifetime=...) at 15 minutes to an hour.",
                )
            )
        plain = [p.name for p in self.oauth if _is_plain_http(getattr(p, "redirect_uri", None))]
        if plain:
            problems.append(
                DeployProblem(
                    id="auth.W002",
                    message=(
                        f"The OAuth redirect_uri of {', '.join(plain)} is plain http://: the"
                        " provider sends the authorization code back unencrypted, for anyone"
                        " on the network to sign in with."
                    ),
                    fix="Register and configure an https:// redirect_uri with the provider.",
                )
            )
        links = [
            name
            for name in ("site_url", "password_reset_url")
            if _is_plain_http(getattr(self, name))
        ]
        if links:
            problems.append(
                DeployProblem(
                    id="auth.W003",
                    message=(
                        f"Auth({', '.join(links)}) is plain http://: the password reset links"
                        " in e-mails carry their token unencrypted."
                    ),
                    fix="Give https:// URLs to Auth(site_url=..., password_reset_url=...).",
                )
            )
        if (self.pages or self.api) and _prints_email(
            self.email or getattr(app.state, "email", None)
        ):
            problems.append(
                DeployProblem(
                    id="auth.W004",
                    message=(
                        "Password reset e-mails go to the ConsoleEmailBackend, which prints them:"
                        " whoever reads the logs can use their links to take over the accounts,"
                        " and the users get no e-mail."
                    ),
                    fix=(
                        "Install a backend that sends, such as SMTPEmailBackend(...) from"
                        " trellis.contrib.mail (without one, production sends through the"
                        " mail server on localhost:25)."
                    ),
                )
            )
        return problems

    def __repr__(self) -> str:
        return f"<Auth db={self._db!r} jwt={self.jwt!r}>"


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _prints_email(backend: Any) -> bool:
    # The mail module is stdlib only; importing it here costs nothing when Auth is installed.
    from trellis.contrib.mail import ConsoleEmailBackend

    return isinstance(backend, ConsoleEmailBackend)


def _is_plain_http(url: Any) -> bool:
    return isinstance(url, str) and url[:7].lower() == "http://"


def _login_required_response(
    request: Request, exc: LoginRequiredError
) -> Response | Awaitable[Response]:
    from trellis.http.errors import error_response, wants_html
    from trellis.http.response import RedirectResponse

    if exc.redirect_to is not None:
        return RedirectResponse(exc.redirect_to, 303)
    return error_response(
        exc, html_page=wants_html(request.headers.get("accept")), instance=request.path
    )
