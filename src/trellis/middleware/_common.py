"""Helpers shared by the built-in middleware: host parsing, redirect targets, tiny responses."""

from __future__ import annotations

import re
from urllib.parse import quote

from trellis.types import Scope, Send

# A Host header is a DNS name, an IPv4 address or a bracketed IPv6 literal, then an optional
# port. Anything else ("a.com/x", "user@a.com", spaces) is refused: such a value must never be
# matched against a wildcard suffix or copied into a redirect Location.
_HOST_RE = re.compile(r"([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]{1,5}))?")

_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")


def split_host(value: str) -> tuple[str, str] | None:
    """Split a Host header into ``(hostname, port)``, lower-cased; ``None`` when malformed.

    The port is ``""`` when absent. A trailing dot (``example.com.``) names the same host and is
    dropped.
    """
    match = _HOST_RE.fullmatch(value.lower())
    if match is None:
        return None
    host = match.group(1)
    if host.endswith("."):
        host = host[:-1]
    if not host:
        return None
    return host, match.group(2) or ""


def request_host(scope: Scope) -> bytes | None:
    """Return the raw ``Host`` header of ``scope`` (``None`` when absent)."""
    for key, value in scope["headers"]:
        if key == b"host":
            return value  # type: ignore[no-any-return]
    return None


def request_target(scope: Scope) -> str:
    """Return the path and query of the request as received, for a redirect ``Location``."""
    raw = scope.get("raw_path")
    if raw:
        # raw_path keeps the client's own percent-encoding: the redirect points at exactly the
        # resource that was asked for.
        path = raw.decode("latin-1")
    else:
        path = scope["path"]
        root = scope.get("root_path", "")
        # Servers disagree on whether ``path`` already includes ``root_path``.
        if root and not path.startswith(root):
            path = root + path
        path = quote(path, safe="/:@!$&'()*+,;=-._~%")
    query = scope.get("query_string", b"")
    if query:
        return f"{path}?{query.decode('latin-1')}"
    return str(path)


def add_vary(headers: list[tuple[bytes, bytes]], token: bytes) -> None:
    """Add ``token`` to the ``Vary`` header of ``headers`` (in place) unless already covered."""
    lowered = token.lower()
    first = -1
    for i, (key, value) in enumerate(headers):
        if key.lower() == b"vary":
            parts = [p.strip().lower() for p in value.split(b",")]
            if lowered in parts or b"*" in parts:
                return
            if first < 0:
                first = i
    if first < 0:
        headers.append((b"vary", token))
    else:
        key, value = headers[first]
        headers[first] = (key, value + b", " + token if value.strip() else token)


async def send_text(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete short plain-text response."""
    raw = [_TEXT_PLAIN, (b"content-length", str(len(body)).encode("latin-1"))]
    if headers:
        raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_redirect(send: Send, status: int, location: str) -> None:
    """Send a redirect with an empty body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"content-length", b"0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
