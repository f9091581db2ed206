"""Refuse requests whose ``Host`` header is not one of the application's own names."""

from __future__ import annotations

from collections.abc import Iterable

from trellis.exceptions import ConfigurationError
from trellis.middleware._common import (
    request_host,
    request_target,
    send_redirect,
    send_text,
    split_host,
)
from trellis.types import ASGIApp, Receive, Scope, Send

__all__ = ["TrustedHostMiddleware"]

# Distinct accepted Host values remembered. Only accepted values are stored, so a flood of bogus
# hosts cannot grow it; the bound covers wildcard patterns with many subdomains.
_CACHE_SIZE = 1024


class TrustedHostMiddleware:
    """Answer 400 to HTTP requests, and close websockets, whose ``Host`` is not allowed.

    Links built from the ``Host`` header (password-reset mails, redirects, absolute URLs) can
    only point at hosts you own, and caches cannot be poisoned with a forged host.

    Patterns are host names or IP addresses without port: ``"example.com"``, ``"[::1]"``;
    ``"*.example.com"`` matches every subdomain at any depth but not ``example.com`` itself (list
    both); ``"*"`` allows any host. The port of the request is ignored, and so is a trailing dot.
    A refused websocket is closed with code 1008 before it is accepted (the client sees 403).

    Args:
        app: The ASGI application to wrap.
        allowed_hosts: The host patterns to accept.
        www_redirect: When the host is refused but ``www.`` + host is allowed, redirect there
            (307, path and query kept) instead of refusing.

    Raises:
        ConfigurationError: A pattern has a scheme, port, path or a misplaced ``*``, the list is
            empty, or a single string was given instead of a list.
    """

    __slots__ = ("_allow_any", "_exact", "_known", "_suffixes", "_www_redirect", "app")

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Iterable[str] = ("*",), www_redirect: bool = True
    ) -> None:
        if isinstance(allowed_hosts, str):
            raise ConfigurationError(
                "TrustedHostMiddleware: allowed_hosts takes a list of host patterns, got the "
                f"string {allowed_hosts!r}; write allowed_hosts=[{allowed_hosts!r}]"
            )
        patterns = [h.strip().lower() for h in allowed_hosts]
        if not patterns:
            raise ConfigurationError(
                "TrustedHostMiddleware: allowed_hosts is empty, so every request would be "
                "refused; list the application's host names, e.g. ['example.com']"
            )
        exact: set[str] = set()
        suffixes: list[str] = []
        for pattern in patterns:
            if pattern == "*":
                continue
            wildcard = pattern.startswith("*.")
            parsed = split_host(pattern[2:] if wildcard else pattern)
            if parsed is None or parsed[1] or "*" in pattern[1:]:
                raise ConfigurationError(
                    f"TrustedHostMiddleware: allowed_hosts entry {pattern!r} is not a host "
                    "pattern; give a bare name such as 'example.com' or '*.example.com' "
                    "(no scheme, port or path), or '*' for any host"
                )
            if wildcard:
                suffixes.append("." + parsed[0])
            else:
                exact.add(parsed[0])
        self.app = app
        self._allow_any = "*" in patterns
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)
        self._www_redirect = www_redirect
        self._known: set[bytes] = set()

    def _allowed(self, host: str) -> bool:
        return host in self._exact or host.endswith(self._suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        kind = scope["type"]
        if self._allow_any or (kind != "http" and kind != "websocket"):
            await self.app(scope, receive, send)
            return
        raw = request_host(scope)
        parsed = None
        if raw is not None:
            # PERF: nearly every request repeats a Host already accepted; skip the parsing.
            if raw in self._known:
                await self.app(scope, receive, send)
                return
            parsed = split_host(raw.decode("latin-1"))
            if parsed is not None and self._allowed(parsed[0]):
                if len(self._known) < _CACHE_SIZE:
                    self._known.add(raw)
                await self.app(scope, receive, send)
                return
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "Invalid host header"})
            return
        if parsed is not None and self._www_redirect:
            host, port = parsed
            if not host.startswith("www.") and self._allowed("www." + host):
                netloc = f"www.{host}:{port}" if port else f"www.{host}"
                scheme = scope.get("scheme", "http")
                await send_redirect(send, 307, f"{scheme}://{netloc}{request_target(scope)}")
                return
        await send_text(send, 400, b"Invalid host header")
