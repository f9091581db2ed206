"""Tiny raw ASGI apps and drivers for the middleware tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import pytest

from trellis.types import ASGIApp, Message, Receive, Scope, Send

AppFactory = Callable[..., ASGIApp]
ClientFactory = Callable[..., httpx.AsyncClient]
Runner = Callable[..., Any]


def _raw(
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None,
) -> list[tuple[bytes, bytes]]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]


def _plain_app(
    status: int = 200,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    chunks: Sequence[bytes] | None = None,
    seen: list[Scope] | None = None,
) -> ASGIApp:
    """An app answering every request with ``status``, ``headers`` and ``body``.

    With ``chunks`` the body is streamed, one ``more_body=True`` message per chunk and a final
    empty one. Every scope the app receives is appended to ``seen``.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if seen is not None:
            seen.append(scope)
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        await send({"type": "http.response.start", "status": status, "headers": _raw(headers)})
        if chunks is None:
            await send({"type": "http.response.body", "body": body})
            return
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def _make_scope(
    kind: str = "http",
    path: str = "/",
    *,
    method: str = "GET",
    scheme: str | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    query: bytes = b"",
    **extra: Any,
) -> Scope:
    """A minimal scope for driving middleware directly (websockets, exact messages)."""
    scope: Scope = {
        "type": kind,
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query,
        "headers": _raw(headers),
        "scheme": scheme or ("ws" if kind == "websocket" else "http"),
        "server": ("testserver", 80),
    }
    if kind == "http":
        scope["method"] = method
    scope.update(extra)
    return scope


async def _run_asgi(app: ASGIApp, scope: Scope) -> list[Message]:
    """Call ``app`` with ``scope`` and return every message it sent."""
    sent: list[Message] = []
    incoming = (
        [{"type": "websocket.connect"}]
        if scope["type"] == "websocket"
        else [{"type": "http.request", "body": b""}]
    )

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _make_client(app: ASGIApp, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
def make_app() -> AppFactory:
    """``make_app(status, headers, body, chunks=..., seen=...)``: a raw ASGI app."""
    return _plain_app


@pytest.fixture
def asgi_client() -> ClientFactory:
    """``asgi_client(app, base_url)``: an httpx client calling ``app`` in process."""
    return _make_client


@pytest.fixture
def make_scope() -> Callable[..., Scope]:
    """``make_scope(kind, path, method=, scheme=, headers=, query=)``: a bare scope."""
    return _make_scope


@pytest.fixture
def run_asgi() -> Runner:
    """``await run_asgi(app, scope)``: every message the app sent."""
    return _run_asgi
