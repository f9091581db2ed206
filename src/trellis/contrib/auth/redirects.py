"""Where to send the browser after a login: only back to this site (no open redirect).

A login page takes ``?next=/where/you/were``. Followed blindly, that parameter turns the site
into an open redirect: ``/auth/login?next=https://evil.example`` sends the user, freshly
signed in and trusting the address bar, to a phishing page. ``safe_next`` lets through only
paths on this site, and absolute URLs whose origin is the request's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from trellis.http.connection import HTTPConnection

__all__ = ["is_safe_next", "safe_next"]

#: Longer values are refused (no legitimate "next" is this long).
MAX_LENGTH = 2048
# Characters kept as they are when the result is quoted for a Location header; everything
# else outside ASCII is percent-encoded (a header is latin-1 on the wire).
_SAFE = "!#$%&'()*+,/:;=?@[]~-._"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _suspicious(text: str, *, spaces: bool = True) -> bool:
    """Characters browsers strip, fold or reinterpret in URLs."""
    # Browsers drop tab and newline anywhere in a URL ("/\t/evil.example" is "//evil.example"),
    # read "\" as "/", and trim leading control characters and spaces.
    return any(
        c < " " or c == "\x7f" or c == "\\" or "\x80" <= c <= "\x9f" or (spaces and c.isspace())
        for c in text
    )


def _origin(scheme: str, netloc_host: str | None, port: int | None) -> tuple[str, str, int]:
    scheme = scheme.lower()
    return scheme, (netloc_host or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def is_safe_next(conn: HTTPConnection | None, value: str) -> bool:
    """Whether ``value`` leads back to this site (see ``safe_next``)."""
    if not value or len(value) > MAX_LENGTH:
        return False
    if _suspicious(value) or value.startswith("//"):
        return False
    # Whatever decodes the path once more (a proxy, the next app) must not find a host in
    # it either: "/%2F%2Fevil.example", "/%5Cevil.example", "/%09/evil.example". Encoded
    # spaces are fine ("/my%20files"), and the query and fragment may hold anything encoded.
    decoded = value.split("?", 1)[0].split("#", 1)[0]
    for _ in range(3):
        once = unquote(decoded)
        if once == decoded:
            break
        if _suspicious(once, spaces=False) or once.startswith("//"):
            return False
        decoded = once
    else:
        return False  # encoded three times over: nobody needs that
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:  # a bad port, an unbalanced "[" in the host
        return False
    if not parts.scheme and not parts.netloc:
        # A path: it must be absolute ("/x"); "x" or "../x" depend on where the page is.
        return value.startswith("/")
    if conn is None or parts.scheme.lower() not in _DEFAULT_PORTS or not parts.netloc:
        return False  # javascript:, data:, mailto:, "//host", anything not http(s)
    if parts.username is not None or parts.password is not None:
        return False  # "https://good.example@evil.example"
    own = urlsplit(f"{conn.scheme}://{conn.host}")
    try:
        own_origin = _origin(own.scheme, own.hostname, own.port)
    except ValueError:
        return False
    return _origin(parts.scheme, parts.hostname, port) == own_origin


def safe_next(conn: HTTPConnection | None, value: str | None, default: str = "/") -> str:
    r"""The redirect target ``value`` if it stays on this site, else ``default``.

    Accepted: an absolute path (``/account?tab=keys``) and an ``http(s)`` URL with the
    request's own scheme, host and port. Refused, for ``default``: other hosts
    (``https://evil.example``), scheme-relative URLs (``//evil.example``), backslash tricks
    (``/\evil.example``, ``\\evil``), other schemes (``javascript:``, ``data:``),
    credentials in the URL, control characters and whitespace anywhere (browsers strip
    them), relative paths (``account``), and the same tricks percent-encoded.

    Args:
        conn: The request (its scheme and host are "this site"); ``None`` accepts paths only.
        value: The candidate, usually the ``next`` query parameter or form field.
        default: Where to go instead; trusted as it is (it comes from the application).

    Returns:
        ``value`` (non-ASCII characters percent-encoded, ready for a ``Location`` header) or
        ``default``.

    Example:
        ```py
        target = safe_next(request, request.query.get("next"), default="/")
        return RedirectResponse(target, status_code=303)
        ```
    """
    if value is None or not is_safe_next(conn, value):
        return default
    return quote(value, safe=_SAFE)
