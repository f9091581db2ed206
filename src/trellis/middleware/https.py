"""Send plain-HTTP requests to the same URL over HTTPS."""

from __future__ import annotations

from trellis.middleware._common import (
    request_host,
    request_target,
    send_redirect,
    send_text,
    split_host,
)
from trellis.types import ASGIApp, Receive, Scope, Send

__all__ = ["HTTPSRedirectMiddleware"]

# Ports that only mean "the default port of the old scheme" and are dropped from the new URL.
_DEFAULT_PORTS = frozenset({"80", "443"})


class HTTPSRedirectMiddleware:
    """Redirect ``http://`` requests to ``https://`` with 308 (method and body kept).

    The path and query string are kept as the client sent them; ports 80 and 443 are dropped,
    other ports kept. Websocket handshakes on ``ws://`` get a 308 to ``wss://`` when the server
    supports the ASGI ``websocket.http.response`` extension, and are otherwise closed with code
    1008 before being accepted (the client sees 403). A request whose ``Host`` header is
    malformed gets 400 rather than a redirect built from it.

    Behind a proxy that ends TLS, the server must report the original scheme (for uvicorn:
    ``--proxy-headers`` and ``--forwarded-allow-ips``), or every request looks like plain HTTP
    and redirects forever.

    Args:
        app: The ASGI application to wrap.
    """

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        kind = scope["type"]
        if kind == "http":
            if scope.get("scheme", "http") == "https":
                await self.app(scope, receive, send)
                return
            location = _secure_url(scope, "https")
            if location is None:
                await send_text(send, 400, b"Invalid host header")
            else:
                await send_redirect(send, 308, location)
        elif kind == "websocket":
            if scope.get("scheme", "ws") == "wss":
                await self.app(scope, receive, send)
                return
            location = _secure_url(scope, "wss")
            if location is not None and "websocket.http.response" in scope.get("extensions", {}):
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": 308,
                        "headers": [
                            (b"location", location.encode("latin-1")),
                            (b"content-length", b"0"),
                        ],
                    }
                )
                await send({"type": "websocket.http.response.body", "body": b""})
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": "Use wss://"})
        else:
            await self.app(scope, receive, send)


def _secure_url(scope: Scope, scheme: str) -> str | None:
    """The URL of this request under ``scheme``; ``None`` when the Host header is malformed."""
    raw = request_host(scope)
    if raw is not None:
        parsed = split_host(raw.decode("latin-1"))
        if parsed is None:
            return None
        host, port = parsed
    else:
        server = scope.get("server")
        if not server:
            return None
        host, port = str(server[0]), str(server[1] or "")
        if ":" in host:
            host = f"[{host}]"  # a bare IPv6 address from the server tuple
    netloc = host if not port or port in _DEFAULT_PORTS else f"{host}:{port}"
    return f"{scheme}://{netloc}{request_target(scope)}"
