"""Who is asking: ``CurrentUser`` and ``OptionalUser``, injected by type.

```py
@app.get("/me")
async def me(user: CurrentUser) -> dict[str, str]:
    return {"email": user.email}

@app.get("/")
async def home(user: OptionalUser) -> str:
    return f"Hello, {user.display_name}" if user else "Hello, stranger"
```

How a request is authenticated, in order:

1. ``Authorization: Bearer <token>``: an opaque token (``auth.issue_token``) or, when
   ``Auth(jwt=...)`` is configured, a JWT. A request with an ``Authorization`` header is
   never authenticated by its session cookie: CSRF protection is skipped for such requests,
   so the cookie must not count for them.
2. The session (``login(request, user)``).
3. ``X-API-Key: <key>`` (``auth.issue_token(..., kind="api_key")``).

Credentials that are sent but wrong (unknown, expired, revoked token; bad JWT) are refused
with 401 even for ``OptionalUser``: the client should know its token stopped working.
Without credentials, ``CurrentUser`` answers 401 with a ``WWW-Authenticate`` challenge, or,
for a browser navigating (a ``GET`` that prefers HTML, with no ``Authorization``), 303 to
``login_url?next=<path>``.

On websocket routes the handshake is authenticated the same way; the database connection
used for it goes back to the pool before the handler runs.

The user is also in ``request.state.user`` (``None`` when anonymous), how they came in in
``request.state.auth_method`` (``"session"``, ``"bearer"``, ``"jwt"``, ``"api_key"``), and
the scopes their token is limited to in ``request.state.auth_scopes`` (``None``: not
limited).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from trellis.contrib.auth.jwt import ExpiredJWTError, InvalidJWTError
from trellis.contrib.auth.login import auth_of, session_user
from trellis.contrib.auth.models import User
from trellis.contrib.auth.tokens import find_token
from trellis.contrib.db.dependencies import Session
from trellis.exceptions import UnauthorizedError
from trellis.handlers.params import Depends
from trellis.http.connection import HTTPConnection
from trellis.http.errors import wants_html
from trellis.security import APIKeyHeader, HTTPBearer

__all__ = [
    "CurrentUser",
    "LoginRequiredError",
    "OptionalUser",
    "api_key_scheme",
    "bearer_scheme",
    "current_user",
    "login_required",
    "optional_user",
]

#: ``Authorization: Bearer``: an opaque token or a JWT (optional: sessions work without it).
bearer_scheme = HTTPBearer(
    scheme_name="authBearer",
    auto_error=False,
    description="An access token: an opaque token, or a JWT when the application issues them.",
)
#: ``X-API-Key``: a key made with ``auth.issue_token(..., kind="api_key")``.
api_key_scheme = APIKeyHeader(
    "X-API-Key",
    scheme_name="authApiKey",
    auto_error=False,
    description="An API key.",
)


class LoginRequiredError(UnauthorizedError):
    """401: the request needs a signed-in user and has none.

    ``Auth`` answers it with a 303 to the login page when ``redirect_to`` is set (a browser
    navigating), else with the 401 problem.

    Attributes:
        redirect_to: The login URL with ``next``, or ``None``.
    """

    def __init__(self, detail: str, *, redirect_to: str | None = None) -> None:
        super().__init__(detail, {"WWW-Authenticate": "Bearer"})
        self.redirect_to = redirect_to


def _invalid_token(detail: str) -> UnauthorizedError:
    return UnauthorizedError(detail, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def login_required(conn: HTTPConnection) -> LoginRequiredError:
    """The error for a request that needs a user: a redirect for browsers, else a 401."""
    redirect_to = None
    if (
        conn.scope["type"] == "http"
        and conn.scope.get("method") in ("GET", "HEAD")
        and "authorization" not in conn.headers
        and wants_html(conn.headers.get("accept"))
    ):
        login_url = auth_of(conn).login_url
        root = conn.scope.get("root_path", "")
        if root and login_url.startswith("/") and not login_url.startswith("//"):
            login_url = root.rstrip("/") + login_url  # the app is mounted: the browser's path
        target = conn.path  # the root path included
        query = conn.scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        separator = "&" if "?" in login_url else "?"
        redirect_to = f"{login_url}{separator}{urlencode({'next': target})}"
    return LoginRequiredError("Authentication required.", redirect_to=redirect_to)


async def _from_bearer(conn: HTTPConnection, db: AsyncSession, token: str) -> User:
    auth = auth_of(conn)
    state = conn.state
    if "." in token:  # a JWT (opaque tokens never contain a dot)
        if auth.jwt is None:
            raise _invalid_token("The access token is invalid.")
        try:
            claims = auth.jwt.decode(token)
        except ExpiredJWTError:
            raise _invalid_token("The access token has expired.") from None
        except InvalidJWTError:
            raise _invalid_token("The access token is invalid.") from None
        user = await auth.user_for_claims(db, claims)
        if user is None:
            raise _invalid_token("The access token is invalid.")
        scope = claims.get("scope")
        state.auth_method = "jwt"
        state.auth_scopes = frozenset(scope.split()) if isinstance(scope, str) else None
        state.auth_token = claims
        return user
    found = await find_token(db, token, "bearer")
    if found is None:
        raise _invalid_token("The access token is invalid, expired or revoked.")
    row, user = found
    state.auth_method = "bearer"
    state.auth_scopes = row.scope_set or None
    state.auth_token = row
    return user


async def _from_api_key(conn: HTTPConnection, db: AsyncSession, key: str) -> User:
    found = await find_token(db, key, "api_key")
    if found is None:
        raise UnauthorizedError(
            "The API key is invalid, expired or revoked.", {"WWW-Authenticate": "APIKey"}
        )
    row, user = found
    state = conn.state
    state.auth_method = "api_key"
    state.auth_scopes = row.scope_set or None
    state.auth_token = row
    return user


async def optional_user(
    conn: HTTPConnection,
    db: Session,
    token: Annotated[str | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> User | None:
    """The user the request is authenticated as, or ``None`` when it sent no credentials.

    Raises:
        UnauthorizedError: credentials were sent and are wrong (401).
    """
    state = conn.state
    state.auth_method = None
    state.auth_scopes = None
    state.auth_token = None
    user: User | None = None
    if token is not None:
        user = await _from_bearer(conn, db, token)
    elif "authorization" not in conn.headers:
        user = await session_user(conn, db)
        if user is not None:
            state.auth_method = "session"
    if user is None and api_key is not None:
        user = await _from_api_key(conn, db, api_key)
    state.user = user
    if conn.scope["type"] == "websocket":
        # A websocket lives long: give its connection back to the pool now (and keep the
        # token's last use) rather than hold a transaction open until it closes.
        await db.commit()
    return user


async def current_user(
    conn: HTTPConnection, user: Annotated[User | None, Depends(optional_user)]
) -> User:
    """The authenticated user; anonymous requests get 401 (or 303 to the login page).

    Raises:
        LoginRequiredError: no credentials.
        UnauthorizedError: wrong credentials.
    """
    if user is None:
        raise login_required(conn)
    return user


#: The signed-in user, required: ``async def handler(user: CurrentUser)``.
CurrentUser = Annotated[User, Depends(current_user)]
#: The signed-in user or ``None``: ``async def handler(user: OptionalUser)``.
OptionalUser = Annotated[User | None, Depends(optional_user)]
