"""Signing in and out of the session: ``login(request, user)`` and ``logout(request)``.

```py
@app.post("/login")
async def sign_in(request: Request, form: LoginForm, db: Session) -> Response:
    auth = auth_of(request.app)
    user = await auth.authenticate(db, form.email, form.password)
    if user is None:
        raise UnauthorizedError("Wrong email or password.")
    await login(request, user)
    return RedirectResponse("/", 303)
```

``login()`` rotates the session (a new id and a new CSRF secret: an id an attacker planted
before the sign-in is worth nothing after it; the data of another user signed in before is
dropped) and stores the user's id with a *fingerprint* of the password hash, an HMAC keyed
with the secret key. Each request compares the fingerprint with the user's current hash:
changing the password signs out every other session, as in Django. ``logout()`` invalidates
the session: data, server-side record and cookie.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from trellis.contrib.auth.models import User
from trellis.contrib.db.types import utcnow
from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from trellis.contrib.auth.plugin import Auth
    from trellis.http.connection import HTTPConnection
    from trellis.sessions import Session

__all__ = [
    "SESSION_HASH_KEY",
    "SESSION_USER_KEY",
    "login",
    "logout",
    "session_fingerprint",
    "session_user",
]

#: Session keys: the signed-in user's id, and the fingerprint of their password hash.
SESSION_USER_KEY = "_auth_user_id"
SESSION_HASH_KEY = "_auth_user_hash"

_FINGERPRINT_SALT = b"trellis.contrib.auth.session"


def auth_of(conn_or_app: Any) -> Auth:
    """The ``Auth`` installed on the application of a connection (or on an app).

    Raises:
        ConfigurationError: no ``Auth`` is installed.
    """
    from trellis.contrib.auth.plugin import Auth

    app = getattr(conn_or_app, "app", conn_or_app)
    auth = getattr(getattr(app, "state", None), "auth", None)
    if not isinstance(auth, Auth):
        raise ConfigurationError(
            "the auth battery is not installed: app.install(Auth()) (after the Database)"
        )
    return auth


def session_fingerprint(secret_key: str, user: User) -> str:
    """The HMAC of the user's password hash, keyed with ``secret_key`` (hex)."""
    key = hashlib.sha256(_FINGERPRINT_SALT + secret_key.encode()).digest()
    message = f"{user.id}:{user.password_hash or ''}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _secret(conn: HTTPConnection) -> str:
    return str(conn.app.settings.effective_secret_key())


async def login(request: HTTPConnection, user: User) -> None:
    """Sign ``user`` in on this request's session.

    Rotates the session (and empties it first when another user was signed in on it), stores
    the user's id and password fingerprint, sets ``request.state.user`` and updates
    ``user.last_login`` (committed with the request's database session when ``user`` belongs
    to it, else at once in a transaction of its own).

    Raises:
        ValueError: the user is inactive or not saved yet.
    """
    if user.id is None:
        raise ValueError("login(): the user is not saved yet (flush it first)")
    if not user.is_active:
        raise ValueError(f"login(): user {user.id} is inactive")
    session: Session = request.session
    previous = session.get(SESSION_USER_KEY)
    if previous is not None and previous != user.id:
        # Someone else was signed in on this browser (a shared computer): nothing of their
        # session (data, flashed messages) carries over to the new user.
        session.invalidate()
    session.rotate()
    session[SESSION_USER_KEY] = user.id
    session[SESSION_HASH_KEY] = session_fingerprint(_secret(request), user)
    now = utcnow()
    user.last_login = now
    request.state.user = user
    request.state.auth_method = "session"
    request.state.auth_scopes = None
    if sa_inspect(user).session is None:  # detached: write it ourselves
        auth = auth_of(request)
        async with auth.db.transaction() as db:
            await db.execute(update(User).where(User.id == user.id).values(last_login=now))


async def logout(request: HTTPConnection) -> None:
    """Sign out: invalidate the session (data, server-side record and cookie)."""
    request.session.invalidate()
    request.state.user = None
    request.state.auth_method = None
    request.state.auth_scopes = None


async def session_user(conn: HTTPConnection, db: AsyncSession) -> User | None:
    """The user signed in on the session of ``conn``, or ``None``.

    A session whose user is gone or inactive, or whose password fingerprint no longer
    matches (the password changed), is invalidated.
    """
    session = _existing_session(conn)
    if session is None:
        return None
    user_id = session.get(SESSION_USER_KEY)
    if user_id is None:
        return None
    user = await db.get(User, user_id) if type(user_id) is int else None
    if user is not None and user.is_active:
        expected = session_fingerprint(_secret(conn), user)
        if hmac.compare_digest(str(session.get(SESSION_HASH_KEY, "")), expected):
            return user
    if conn.scope["type"] == "http":
        session.invalidate()
    return None


def _existing_session(conn: HTTPConnection) -> Session | None:
    """The connection's session when it has one; ``None`` without opening a new one."""
    from trellis.sessions import SCOPE_KEY, config_for

    scope = conn.scope
    session: Session | None = scope.get(SCOPE_KEY)
    if session is not None:
        return session
    try:
        config = config_for(scope)
    except ConfigurationError:
        return None  # sessions are off
    # PERF: no cookie, no session to read: an API request never opens one.
    if config.cookie_name not in conn.cookies:
        return None
    opened: Session = conn.session
    return opened
