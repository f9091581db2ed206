"""Cookie header parsing and ``Set-Cookie`` formatting with safe defaults."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal

__all__ = ["format_set_cookie", "parse_cookie_header"]

# RFC 6265 token for names and cookie-octets for values: anything else (CR, LF, ';', ',',
# spaces, quotes, backslash, non-ASCII) could split or smuggle header content, so it is refused.
_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VALUE_RE = re.compile(r"^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$")
_ATTR_RE = re.compile(r"^[\x20-\x3A\x3C-\x7E]*$")


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` request header into a dict, leniently (as browsers send it).

    Pairs without ``=`` are kept with an empty name, as browsers do; the first occurrence of a
    name wins; surrounding double quotes are removed. Never raises.
    """
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        if "=" in chunk:
            key, val = chunk.split("=", 1)
        else:
            key, val = "", chunk
        key, val = key.strip(), val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        if key or val:
            cookies.setdefault(key, val)
    return cookies


def format_set_cookie(
    key: str,
    value: str = "",
    *,
    max_age: int | None = None,
    expires: datetime | int | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: Literal["lax", "strict", "none"] | None = "lax",
    partitioned: bool = False,
) -> str:
    """Return the value of one ``Set-Cookie`` header.

    Raises:
        ValueError: the name, value, path or domain holds characters that are not allowed
            (``;``, ``,``, spaces, quotes, control characters, non-ASCII). Encode such values
            first (for example with ``urllib.parse.quote``) or sign them.
    """
    if not _NAME_RE.match(key):
        raise ValueError(f"invalid cookie name {key!r}")
    if not _VALUE_RE.match(value):
        raise ValueError(
            f"cookie {key!r} has a value with characters not allowed in a cookie ({value!r}); "
            "encode it first, for example with urllib.parse.quote()"
        )
    parts = [f"{key}={value}"]
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        if isinstance(expires, int):
            expires = datetime.fromtimestamp(expires, UTC)
        elif expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        parts.append(f"Expires={format_datetime(expires.astimezone(UTC), usegmt=True)}")
    for attr, val in (("Domain", domain), ("Path", path)):
        if val is not None:
            if not _ATTR_RE.match(val):
                raise ValueError(f"cookie {attr.lower()} {val!r} has characters not allowed")
            parts.append(f"{attr}={val}")
    if samesite is not None:
        if samesite.lower() not in ("lax", "strict", "none"):
            raise ValueError("samesite must be 'lax', 'strict', 'none' or None")
        parts.append(f"SameSite={samesite.capitalize()}")
        # Browsers drop SameSite=None cookies that are not Secure.
        secure = secure or samesite.lower() == "none"
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)
