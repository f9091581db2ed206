"""Sessions: per-visitor data kept between requests, and flash messages.

Sessions are on by default (the ``sessions`` setting). ``request.session`` (also
``websocket.session``) is a ``Session``: a dict-like mapping of JSON values. Where the data
lives depends on what the application has at start-up:

- nothing configured: the data travels in a cookie signed with the application's secret key
  (itsdangerous). The client can read it but not change it; keep it small (a cookie holds about
  4 KB) and put no secret in it.
- a session store in ``app.state.session_store`` (a ``SessionBackend``: ``DatabaseSessionStore``,
  ``RedisSessionStore``, ``MemorySessionBackend`` ...): the cookie holds only a random 256-bit
  id and the data stays on the server.

Nothing is done for a request that neither carries the session cookie nor touches
``request.session``; a ``Set-Cookie`` is only sent when the session changed, was renewed,
rotated or invalidated.

Example:
    ```python
    from trellis import App, Request
    from trellis.testing import TestClient

    app = App()

    @app.post("/visit")
    async def visit(request: Request) -> dict[str, int]:
        request.session["visits"] = request.session.get("visits", 0) + 1
        return {"visits": request.session["visits"]}

    with TestClient(app) as client:
        assert client.post("/visit").json() == {"visits": 1}
    ```
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import orjson

from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from trellis.http.connection import HTTPConnection
    from trellis.types import Scope

__all__ = [
    "MemorySessionBackend",
    "Session",
    "SessionBackend",
    "flash",
    "get_flashed_messages",
]

#: The scope key that holds the session once it is opened (or preloaded).
SCOPE_KEY = "trellis.session"
#: The scope key of the session settings a standalone ``SessionMiddleware`` serves.
CONFIG_KEY = "trellis.session_config"
#: The scope key of the error the session store raised while preloading (raised on use).
LOAD_ERROR_KEY = "trellis.session_error"

# A server-side session id: 32 random bytes, URL-safe base64 without padding.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# Browsers drop a cookie whose name and value together pass 4096 bytes.
_MAX_COOKIE = 4093


def _now() -> float:
    """The clock sessions use (tests replace it to travel in time)."""
    return time.time()


@runtime_checkable
class SessionBackend(Protocol):
    """What a session store does (in memory, Redis or ``DatabaseSessionStore``): all async."""

    async def load(self, session_id: str) -> dict[str, Any] | None:
        """The data of a session, or ``None`` when it is unknown or expired."""

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        """Store a session's data for ``ttl`` seconds."""

    async def delete(self, session_id: str) -> None:
        """Forget a session."""


class MemorySessionBackend:
    """Sessions in this process's memory: for tests and single-process development.

    Data is stored as JSON (so it comes back as a real store returns it) and expires after its
    ``ttl``. Every worker process has its own: use a database or Redis store in production.

    Args:
        clock: The time in seconds (``time.time``); tests pass a fake one.

    Example:
        ```python
        from trellis import App
        from trellis.sessions import MemorySessionBackend

        app = App()
        app.state.session_store = MemorySessionBackend()
        ```
    """

    _PURGE_EVERY = 256

    def __init__(self, *, clock: Any = None) -> None:
        self._clock = clock
        self._data: dict[str, tuple[float, bytes]] = {}
        self._saves = 0

    def _time(self) -> float:
        return float(self._clock()) if self._clock is not None else _now()

    async def load(self, session_id: str) -> dict[str, Any] | None:
        """The data of a session, or ``None`` when it is unknown or expired."""
        entry = self._data.get(session_id)
        if entry is None:
            return None
        expires, raw = entry
        if expires <= self._time():
            del self._data[session_id]
            return None
        data = orjson.loads(raw)
        return data if isinstance(data, dict) else None

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        """Store a session's data for ``ttl`` seconds (replacing what it had)."""
        now = self._time()
        self._data[session_id] = (now + ttl, orjson.dumps(data))
        self._saves += 1
        if self._saves % self._PURGE_EVERY == 0:
            for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
                del self._data[key]

    async def delete(self, session_id: str) -> None:
        """Forget a session (nothing happens for an unknown one)."""
        self._data.pop(session_id, None)

    def __len__(self) -> int:
        """The number of sessions held, expired ones not yet purged included."""
        return len(self._data)


def _check_json(key: str, value: Any) -> None:
    try:
        orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(
            f"session[{key!r}]: {type(value).__name__} values cannot be stored in a session"
            f" ({exc}); store JSON data: str, int, float, bool, None, lists and dicts with str"
            " keys (datetimes, UUIDs and dataclasses are stored in their JSON form)"
        ) from None


class Session(MutableMapping[str, Any]):
    """The session of one visitor: a mutable mapping of JSON values.

    Read it as ``request.session`` (or ``websocket.session``). Assigning a value that is not
    JSON raises ``TypeError`` at once; a value changed in place inside a list or dict
    (``session["cart"].append(item)``) is not noticed: assign the key again, or set
    ``session.modified = True``.

    On a websocket connection the session is read-only: there is no response to carry a
    cookie, so changing it raises ``RuntimeError``.

    Attributes:
        id: The server-side id (the cookie value) when a session store is used; ``None`` for
            signed-cookie sessions and for a new session not saved yet.
        new: True when the request brought no valid session (none, expired or tampered
            with), and after ``invalidate()``.
        modified: True when the data changed during this request; the session is saved (and
            the cookie set) at the end of the request.
    """

    __slots__ = (
        "_csrf",
        "_data",
        "_expire_cookie",
        "_flashes",
        "_had_cookie",
        "_old_ids",
        "_readonly",
        "_renew",
        "_renewed_at",
        "_saved",
        "id",
        "modified",
        "new",
    )

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        new: bool = True,
    ) -> None:
        self._data: dict[str, Any] = data if data is not None else {}
        self.id = id
        self.new = new
        self.modified = False
        self._csrf: str | None = None
        self._flashes: list[list[str]] | None = None
        self._renewed_at: float = int(_now())
        self._renew = False
        self._old_ids: list[str] = []
        self._expire_cookie = False
        self._had_cookie = False
        self._readonly = False
        self._saved = False

    # -- mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._writable()
        if not isinstance(key, str):
            raise TypeError(f"session keys are strings, not {type(key).__name__}")
        _check_json(key, value)
        self._data[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        self._writable()
        del self._data[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        return self._data.get(key, default)

    def clear(self) -> None:
        """Remove every value (the session itself, its id and CSRF secret stay)."""
        self._writable()
        if self._data:
            self._data.clear()
            self.modified = True

    def __repr__(self) -> str:
        return f"<Session id={self.id!r} new={self.new} modified={self.modified} {self._data!r}>"

    # -- life cycle ------------------------------------------------------------------------

    def rotate(self) -> None:
        """Give the session a new id and a new CSRF secret, keeping its data.

        Call it when the visitor logs in or gains privileges: an id an attacker planted or
        saw before (session fixation) stops working. With a session store the old record is
        deleted when the session is saved; a signed cookie is signed again (the old cookie
        cannot be revoked: it stays valid until it expires, with its old data).
        """
        self._writable()
        if self.id is not None:
            self._old_ids.append(self.id)
            self.id = None
        self._csrf = _new_secret()
        self._renewed_at = int(_now())
        self.modified = True

    def invalidate(self) -> None:
        """Forget the session: clear its data, delete its record and expire the cookie.

        Call it when the visitor logs out. The object stays usable as a new, empty session:
        anything stored afterwards (a flash message) is saved under a new id.
        """
        self._writable()
        if self.id is not None:
            self._old_ids.append(self.id)
            self.id = None
        self._data.clear()
        self._csrf = None
        self._flashes = None
        self._renewed_at = int(_now())
        self._renew = False
        self._expire_cookie = True
        self.new = True
        self.modified = True

    # -- internals ---------------------------------------------------------------------------

    def _writable(self) -> None:
        if self._readonly:
            raise RuntimeError(
                "the session is read-only on a websocket connection: there is no response to"
                " carry the cookie; change it in an HTTP request instead"
            )

    def _csrf_secret(self, create: bool) -> str | None:
        if self._csrf is None and create:
            self._writable()
            self._csrf = _new_secret()
            self.modified = True
        return self._csrf

    def _empty(self) -> bool:
        return not self._data and self._csrf is None and not self._flashes

    def _envelope(self) -> dict[str, Any]:
        envelope: dict[str, Any] = {"d": self._data, "t": int(self._renewed_at)}
        if self._csrf is not None:
            envelope["c"] = self._csrf
        if self._flashes:
            envelope["f"] = self._flashes
        return envelope


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _from_envelope(envelope: Any, *, id: str | None) -> Session | None:
    """A session from stored data, or ``None`` when the data is not a session envelope."""
    if not isinstance(envelope, dict):
        return None
    data = envelope.get("d")
    renewed = envelope.get("t")
    csrf = envelope.get("c")
    flashes = envelope.get("f")
    if (
        not isinstance(data, dict)
        or not isinstance(renewed, int | float)
        or isinstance(renewed, bool)
        or not (csrf is None or isinstance(csrf, str))
        or not (flashes is None or isinstance(flashes, list))
    ):
        return None
    session = Session(data, id=id, new=False)
    session._renewed_at = float(renewed)
    session._csrf = csrf
    if flashes:
        session._flashes = [
            [str(f[0]), str(f[1])] for f in flashes if isinstance(f, list) and len(f) == 2
        ]
    return session


class SessionConfig:
    """How sessions are kept: the cookie, the lifetime and the store (built from settings).

    Args:
        secret_key: The key that signs cookies (a callable is called on first use).
        cookie_name: The session cookie's name.
        max_age: Idle lifetime in seconds.
        sliding: Renew the lifetime while the session is used.
        secure: ``Secure`` cookie: always, never, or (``None``) on HTTPS requests.
        samesite: The cookie's ``SameSite``.
        domain: The cookie's ``Domain`` (``None``: this host only).
        path: The cookie's ``Path``.
        store: A ``SessionBackend`` for server-side sessions; ``None`` for signed cookies.
    """

    __slots__ = (
        "_marker",
        "_secret_key",
        "_signer",
        "cookie_name",
        "domain",
        "max_age",
        "path",
        "renew_after",
        "samesite",
        "secure",
        "sliding",
        "store",
    )

    def __init__(
        self,
        secret_key: str | Any,
        *,
        cookie_name: str = "session",
        max_age: int = 14 * 24 * 3600,
        sliding: bool = True,
        secure: bool | None = None,
        samesite: Literal["lax", "strict", "none"] = "lax",
        domain: str | None = None,
        path: str = "/",
        store: SessionBackend | None = None,
    ) -> None:
        from trellis.http.cookies import format_set_cookie

        if max_age < 1:
            raise ConfigurationError(f"session max_age must be at least 1 second, got {max_age}")
        try:  # refuse a bad name or domain now, not on the first response
            format_set_cookie(cookie_name, "x", domain=domain, path=path, samesite=samesite)
        except ValueError as exc:
            raise ConfigurationError(f"session cookie settings: {exc}") from None
        self._secret_key = secret_key
        self._signer: Any = None
        self.cookie_name = cookie_name
        self._marker = cookie_name.encode("latin-1") + b"="
        self.max_age = max_age
        self.sliding = sliding
        # Renewing costs a cookie (and a store write), so it happens at most once per interval:
        # a tenth of the lifetime, capped at an hour. A session then expires between
        # max_age - renew_after and max_age after its last use.
        self.renew_after = min(max_age / 10, 3600.0)
        self.secure = secure
        self.samesite = samesite
        self.domain = domain
        self.path = path
        self.store: SessionBackend | None = None
        self.set_store(store)

    def set_store(self, store: Any) -> None:
        """Use ``store`` for server-side sessions (``None``: signed cookies).

        Raises:
            ConfigurationError: ``store`` is not a ``SessionBackend``.
        """
        if store is not None and not isinstance(store, SessionBackend):
            raise ConfigurationError(
                f"app.state.session_store is {store!r}, which is not a session store: it needs"
                " async load(session_id), save(session_id, data, ttl) and delete(session_id)"
                " (see trellis.sessions.SessionBackend)"
            )
        self.store = store

    # -- signing -----------------------------------------------------------------------------

    def _get_signer(self) -> Any:
        signer = self._signer
        if signer is None:
            import hashlib

            from itsdangerous import TimestampSigner

            class _Signer(TimestampSigner):
                def get_timestamp(self) -> int:
                    return int(_now())

            key = self._secret_key
            if callable(key):
                key = key()
            signer = self._signer = _Signer(
                key, salt="trellis.session", digest_method=hashlib.sha256
            )
        return signer

    # -- opening -----------------------------------------------------------------------------

    def open_cookie(self, conn: HTTPConnection) -> Session:
        """Open the session from the signed cookie of ``conn`` (a new one when invalid)."""
        raw = conn.cookies.get(self.cookie_name)
        session: Session | None = None
        if raw:
            from itsdangerous import BadSignature

            try:
                payload = self._get_signer().unsign(raw, max_age=self.max_age)
                padded = payload + b"=" * (-len(payload) % 4)
                envelope = orjson.loads(base64.urlsafe_b64decode(padded))
            except (BadSignature, ValueError):
                envelope = None
            session = _from_envelope(envelope, id=None)
        return self._opened(session, had_cookie=bool(raw), readonly=conn.scope["type"] != "http")

    def may_carry_cookie(self, scope: Scope) -> bool:
        """Whether the request may carry the session cookie (a look at the raw headers)."""
        marker = self._marker
        # PERF: a plain loop; any() over a generator costs twice as much per request.
        for key, value in scope["headers"]:  # noqa: SIM110
            if key == b"cookie" and marker in value:
                return True
        return False

    async def preload(self, scope: Scope) -> None:
        """Load the server-side session named by the request's cookie into ``scope``."""
        from trellis.http.connection import HTTPConnection

        store = self.store
        assert store is not None
        raw = HTTPConnection(scope).cookies.get(self.cookie_name)
        if not raw:
            return
        session: Session | None = None
        if _ID_RE.fullmatch(raw):
            session = _from_envelope(await store.load(raw), id=raw)
        opened = self._opened(session, had_cookie=True, readonly=scope["type"] != "http")
        if session is not None and opened is not session:
            await store.delete(raw)  # expired by our clock though the store still had it
        scope[SCOPE_KEY] = opened

    def _opened(self, session: Session | None, *, had_cookie: bool, readonly: bool) -> Session:
        now = int(_now())
        if session is not None and now - session._renewed_at > self.max_age:
            session = None
        if session is None:
            session = Session()
        elif self.sliding and now - session._renewed_at >= self.renew_after:
            session._renew = True
            session._renewed_at = now
        session._had_cookie = had_cookie
        session._readonly = readonly
        return session

    # -- saving ------------------------------------------------------------------------------

    async def commit(self, session: Session, scope: Scope) -> bytes | None:
        """Save ``session`` and return the ``Set-Cookie`` value to send (``None``: none).

        Raises:
            TypeError: A value is not JSON.
            ValueError: A signed-cookie session is too large for a cookie.
        """
        if session._readonly or session._saved:
            return None
        session._saved = True
        store = self.store
        if store is not None and session._old_ids:
            for old in session._old_ids:
                await store.delete(old)
            session._old_ids.clear()
        if session._empty():
            if session.modified or session._expire_cookie:
                if store is not None and session.id is not None:
                    await store.delete(session.id)
                    session.id = None
                if session._had_cookie or session._expire_cookie:
                    return self._cookie(scope, "", 0)
            return None
        if not (session.modified or session._renew):
            return None
        if session.new or session._renew:
            # Begun or renewed by this request: the whole lifetime (not one second less when a
            # second ticked between the start of the request and now).
            remaining = self.max_age
        else:
            remaining = max(1, int(session._renewed_at) + self.max_age - int(_now()))
        try:
            encoded = orjson.dumps(session._envelope())
        except TypeError as exc:
            bad = [k for k, v in session._data.items() if not _is_json(v)]
            raise TypeError(
                f"the session cannot be saved: {exc} (in {', '.join(map(repr, bad)) or 'it'});"
                " session values must be JSON: str, int, float, bool, None, lists and dicts"
                " with str keys"
            ) from None
        if store is not None:
            fresh = session.id is None
            if fresh:
                session.id = secrets.token_urlsafe(32)
            assert session.id is not None
            await store.save(session.id, orjson.loads(encoded), remaining)
            if not (fresh or session._renew or session._expire_cookie):
                return None
            value = session.id
        else:
            payload = base64.urlsafe_b64encode(encoded).rstrip(b"=")
            value = self._get_signer().sign(payload).decode("ascii")
            if len(self.cookie_name) + len(value) + 1 > _MAX_COOKIE:
                raise ValueError(
                    f"the session is too large for a cookie ({len(value)} bytes signed; browsers"
                    f" drop cookies over {_MAX_COOKIE}): keep less in it, or configure a"
                    " server-side session store (app.state.session_store)"
                )
        return self._cookie(scope, value, remaining)

    def _cookie(self, scope: Scope, value: str, max_age: int) -> bytes:
        from trellis.http.cookies import format_set_cookie

        secure = self.secure
        if secure is None:
            from trellis.http.connection import HTTPConnection

            secure = HTTPConnection(scope).scheme in ("https", "wss")
        return format_set_cookie(
            self.cookie_name,
            value,
            max_age=max_age,
            expires=int(_now()) + max_age if max_age else 0,
            path=self.path,
            domain=self.domain,
            secure=secure,
            httponly=True,
            samesite=self.samesite,
        ).encode("latin-1")


def _is_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def config_for(scope: Scope) -> SessionConfig:
    """The session settings that serve ``scope``.

    Raises:
        ConfigurationError: sessions are turned off for this application.
    """
    config: SessionConfig | None = scope.get(CONFIG_KEY)
    if config is not None:
        return config
    app = scope.get("app")
    from_app: SessionConfig | None = getattr(app, "_session_config", None)
    if from_app is not None:
        return from_app
    settings = getattr(app, "settings", None)
    if settings is not None and not getattr(settings, "sessions", True):
        raise ConfigurationError(
            "request.session: sessions are turned off (the sessions setting is False); turn"
            " them on (App(sessions=True) or TRELLIS_SESSIONS=1) or add"
            " trellis.middleware.SessionMiddleware"
        )
    raise ConfigurationError(
        "request.session: this connection is not served by a Trellis app with sessions; wrap"
        " the ASGI app in trellis.middleware.SessionMiddleware"
    )


def open_session(conn: HTTPConnection) -> Session:
    """Return the session of ``conn``, opening it on first use (``conn.session`` calls this).

    Raises:
        Exception: What the session store raised when it failed to load this request's
            session (it is down): the request cannot be served without its session.
    """
    scope = conn.scope
    session: Session | None = scope.get(SCOPE_KEY)
    if session is not None:
        return session
    error: Exception | None = scope.get(LOAD_ERROR_KEY)
    if error is not None:
        # The store failed to load it: a request that needs its session cannot be served.
        raise error
    config = config_for(scope)
    if config.store is None:
        session = config.open_cookie(conn)
    elif conn.cookies.get(config.cookie_name):
        raise RuntimeError(
            "request.session: the server-side session was not loaded for this connection (only"
            " the application's session layer loads it); do not build Request objects of your"
            " own for code that reads the session"
        )
    else:
        session = Session()
        session._readonly = scope["type"] != "http"
    scope[SCOPE_KEY] = session
    return session


# -- flash messages ------------------------------------------------------------------------------


def flash(conn: HTTPConnection, message: str, category: str = "info") -> None:
    """Keep ``message`` in the session until a later request reads it.

    The usual pattern: flash, redirect, and let the next page show the messages with
    ``get_flashed_messages()`` (a template global too).

    Args:
        conn: The request.
        message: The text to show.
        category: A label for styling or filtering: ``"info"``, ``"success"``, ``"error"`` ...

    Example:
        ```py
        flash(request, "Saved.", "success")
        return RedirectResponse("/", 303)
        ```
    """
    session = conn.session
    session._writable()
    if session._flashes is None:
        session._flashes = []
    session._flashes.append([str(category), str(message)])
    session.modified = True


def get_flashed_messages(
    conn: HTTPConnection,
    *,
    with_categories: bool = False,
    category_filter: Sequence[str] = (),
) -> list[Any]:
    """Return the flashed messages and forget them (each is shown once).

    Args:
        conn: The request.
        with_categories: Return ``(category, message)`` pairs instead of messages.
        category_filter: Only these categories (the others are kept for later).

    Returns:
        Messages in the order they were flashed.
    """
    session = conn.session
    flashes = session._flashes
    if not flashes:
        return []
    if category_filter:
        wanted = [f for f in flashes if f[0] in category_filter]
        kept = [f for f in flashes if f[0] not in category_filter]
    else:
        wanted, kept = flashes, []
    if wanted and not session._readonly:
        session._flashes = kept or None
        session.modified = True
    if with_categories:
        return [(category, message) for category, message in wanted]
    return [message for _, message in wanted]
