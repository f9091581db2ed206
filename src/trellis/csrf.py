"""Cross-site request forgery (CSRF) protection for cookie-authenticated requests.

A browser sends the session cookie with every request to the site, including those a hostile
page makes it send. So for a request that changes something (``POST``, ``PUT``, ``PATCH``,
``DELETE``) and carries the session cookie, Trellis checks, before the handler runs:

1. the ``Origin`` header (or ``Referer`` when there is no ``Origin``) names this site or one
   of the ``csrf_trusted_origins``: otherwise 403 "Origin not allowed";
2. the request carries the token from ``csrf_token()``, in the ``X-CSRF-Token`` header or the
   ``csrf_token`` form field: otherwise 403 "CSRF token missing" or "CSRF token incorrect".

Requests with an ``Authorization`` header (bearer tokens, API clients) and requests without the
session cookie are not checked: a forged request cannot add either. Turn the check off for one
route with ``csrf=False`` (a webhook), for the whole app with the ``csrf`` setting.

Tokens are masked afresh on every call (the secret never appears twice in a page, which
defeats BREACH compression attacks on HTTPS) and compared in constant time.

Example:
    ```python
    from trellis import App, Request
    from trellis.csrf import csrf_token
    from trellis.testing import TestClient

    app = App()

    @app.get("/form")
    async def form(request: Request) -> dict[str, str]:
        return {"csrf_token": csrf_token(request)}

    @app.post("/comments")
    async def comment(request: Request) -> str:
        return "saved"

    with TestClient(app) as client:
        token = client.get("/form").json()["csrf_token"]
        assert client.post("/comments").status_code == 403
        assert client.post("/comments", headers={"X-CSRF-Token": token}).text == "saved"
    ```
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from trellis.exceptions import ForbiddenError

if TYPE_CHECKING:
    from trellis.http.connection import HTTPConnection
    from trellis.http.request import Request

__all__ = ["FIELD_NAME", "HEADER_NAME", "TrustedOrigins", "csrf_token", "verify_csrf"]

#: The request header that carries the token (for JavaScript clients).
HEADER_NAME = "x-csrf-token"
#: The form field that carries the token (``csrf_input()`` writes it).
FIELD_NAME = "csrf_token"

#: Methods that may change state, and so are checked.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_VERIFIED = "trellis.csrf_verified"
_SECRET_BYTES = 32
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def csrf_token(conn: HTTPConnection) -> str:
    """Return a CSRF token for the session of ``conn``, masked afresh on every call.

    The first call creates the session's CSRF secret (and so the session cookie). Put the
    token in forms (``csrf_input()`` in templates does) or give it to JavaScript, which sends
    it back in the ``X-CSRF-Token`` header.

    Raises:
        ConfigurationError: sessions are turned off.
    """
    secret = conn.session._csrf_secret(create=True)
    assert secret is not None
    raw = _decode(secret)
    mask = secrets.token_bytes(len(raw))
    masked = bytes(a ^ b for a, b in zip(mask, raw, strict=True))
    return base64.urlsafe_b64encode(mask + masked).rstrip(b"=").decode("ascii")


def _decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _token_matches(token: str, secret: str) -> bool:
    try:
        raw = _decode(token.strip())
        expected = _decode(secret)
    except (binascii.Error, ValueError):
        return False
    half = len(raw) // 2
    if len(raw) != 2 * len(expected) or half == 0:
        return False
    unmasked = bytes(a ^ b for a, b in zip(raw[:half], raw[half:], strict=True))
    return hmac.compare_digest(unmasked, expected)


async def verify_csrf(request: Request) -> None:
    """Check the request's origin and CSRF token; raise 403 when either is wrong.

    Trellis runs this for you before the handler of an unsafe request that carries the
    session cookie. Call it yourself where the automatic check does not apply: a route
    declared with ``csrf=False`` that still wants it, or a form posted before the browser had
    a session cookie would pass unchecked otherwise. Runs once per request.

    Raises:
        ForbiddenError: 403 with "Origin not allowed", "CSRF token missing" or "CSRF token
            incorrect" as the problem detail.
        ConfigurationError: sessions are turned off.
    """
    scope = request.scope
    if scope.get(_VERIFIED):
        return
    if not origin_allowed(request):
        raise ForbiddenError(
            "Origin not allowed: the request comes from another site (its Origin or Referer"
            " header); add that site to the csrf_trusted_origins setting if it is yours"
        )
    token = request.headers.get(HEADER_NAME)
    if not token and request.content_type in _FORM_TYPES:
        # The same Request the handler gets: the form is parsed once and kept.
        value = (await request.form()).get(FIELD_NAME)
        token = value if isinstance(value, str) else None
    if not token:
        raise ForbiddenError(
            "CSRF token missing: send the token from csrf_token() in the X-CSRF-Token header"
            " or the csrf_token form field (csrf_input() in a template writes the field)"
        )
    secret = request.session._csrf_secret(create=False)
    if secret is None or not _token_matches(token, secret):
        raise ForbiddenError(
            "CSRF token incorrect: it does not belong to this session (the session may have"
            " expired or changed, as at log-in); reload the form and try again"
        )
    scope[_VERIFIED] = True


async def check_request(request: Request, cookie_name: str) -> None:
    """The automatic check: cookie-authenticated requests only (the endpoint calls this)."""
    if cookie_name not in request.cookies or "authorization" in request.headers:
        return
    await verify_csrf(request)


# -- origins ---------------------------------------------------------------------------------


def _origin_key(url: str, default_scheme: str | None = None) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin or URL, ``None`` when it has none."""
    try:
        parts = urlsplit(url if default_scheme is None else f"{default_scheme}://{url}")
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not scheme or not host:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return scheme, host.rstrip("."), port if port is not None else _DEFAULT_PORTS.get(scheme, 0)


class TrustedOrigins:
    """Origins besides the application's own that may send unsafe requests.

    Args:
        origins: ``"https://app.example.com"`` matches that origin exactly;
            ``"https://*.example.com"`` matches every subdomain of ``example.com``.

    Raises:
        ValueError: An entry is not ``scheme://host[:port]``.
    """

    __slots__ = ("_exact", "_wildcards")

    def __init__(self, origins: Iterable[str]) -> None:
        self._exact: set[tuple[str, str, int]] = set()
        self._wildcards: list[tuple[str, str, int]] = []
        for origin in origins:
            wildcard = "://*." in origin
            key = _origin_key(origin.replace("://*.", "://", 1) if wildcard else origin)
            if key is None or urlsplit(origin).path not in ("", "/"):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], such as"
                    " https://app.example.com or https://*.example.com"
                )
            if wildcard:
                self._wildcards.append(key)
            else:
                self._exact.add(key)

    def __contains__(self, key: object) -> bool:
        if key in self._exact:
            return True
        if not isinstance(key, tuple) or len(key) != 3:
            return False
        scheme, host, port = key
        return any(
            scheme == s and port == p and str(host).endswith("." + h) for s, h, p in self._wildcards
        )


def _trusted(conn: HTTPConnection) -> TrustedOrigins:
    app = conn.scope.get("app")
    trusted: TrustedOrigins | None = getattr(app, "_csrf_origins", None)
    if trusted is None:
        settings = getattr(app, "settings", None)
        trusted = TrustedOrigins(getattr(settings, "csrf_trusted_origins", ()) or ())
    return trusted


def origin_allowed(conn: HTTPConnection) -> bool:
    """Whether the ``Origin`` (else ``Referer``) of ``conn`` is this site or a trusted one.

    A request with neither header passes (non-browser clients send none; browsers send
    ``Origin`` with every cross-site unsafe request). ``Origin: null`` never passes.
    """
    headers = conn.headers
    origin = headers.get("origin")
    if origin is None:
        origin = headers.get("referer")
        if not origin:
            return True
    key = _origin_key(origin.strip())
    if key is None:
        return False
    own = _origin_key(conn.host, conn.scheme)
    return key == own or key in _trusted(conn)
