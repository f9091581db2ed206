"""httpx transports that call an ASGI app in-process, keeping the ASGI protocol honest."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from trellis.types import ASGIApp, Message


def _scope(request: httpx.Request, root_path: str, client: tuple[str, int]) -> dict[str, Any]:
    url = request.url
    raw_path = url.raw_path
    path_bytes, _, query = raw_path.partition(b"?")
    from urllib.parse import unquote_to_bytes

    # As under uvicorn --root-path: the path (and raw_path) include the root path.
    if root_path:
        path_bytes = root_path.encode() + path_bytes
    path = unquote_to_bytes(path_bytes).decode("utf-8", "replace")
    headers = [(k.lower(), v) for k, v in request.headers.raw]
    scheme = url.scheme
    port = url.port or {"http": 80, "https": 443}.get(scheme, 80)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": scheme,
        "path": path,
        "raw_path": path_bytes,
        "query_string": query,
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": (url.host, port),
        "state": {},
    }


async def run_asgi(
    app: ASGIApp,
    request: httpx.Request,
    body: bytes,
    *,
    root_path: str = "",
    client: tuple[str, int] = ("testclient", 50000),
    state: dict[str, Any] | None = None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run one request through ``app`` and return status, headers and the whole body."""
    scope = _scope(request, root_path, client)
    if state:
        scope["state"] = dict(state)
    request_sent = False
    done = asyncio.Event()
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            if status is not None:
                raise RuntimeError("the app sent http.response.start twice")
            status = message["status"]
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            if status is None:
                raise RuntimeError("the app sent a body before http.response.start")
            if done.is_set():
                raise RuntimeError("the app sent a body after the response was complete")
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    if status is None:
        raise RuntimeError("the app returned without sending a response")
    return status, headers, b"".join(chunks)


class AsyncASGITransport(httpx.AsyncBaseTransport):
    """Send httpx requests to an ASGI app on the current event loop."""

    def __init__(self, app: ASGIApp, *, root_path: str = "", state: dict[str, Any]) -> None:
        self.app = app
        self.root_path = root_path
        self.state = state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        status, headers, content = await run_asgi(
            self.app, request, body, root_path=self.root_path, state=self.state
        )
        return httpx.Response(status, headers=headers, content=content, request=request)


class SyncASGITransport(httpx.BaseTransport):
    """Send httpx requests to an ASGI app on a loop that runs in a background thread.

    ``portal`` is the running loop of the client's ``with`` block; outside one, each request
    starts and stops a loop of its own, so no thread outlives the request.
    """

    def __init__(self, app: ASGIApp, *, root_path: str = "", state: dict[str, Any]):
        self.app = app
        self.portal: Any = None
        self.root_path = root_path
        self.state = state

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        def call() -> Any:
            return run_asgi(self.app, request, body, root_path=self.root_path, state=self.state)

        if self.portal is not None:
            status, headers, content = self.portal.call(call)
        else:
            from anyio.from_thread import start_blocking_portal

            with start_blocking_portal() as portal:
                status, headers, content = portal.call(call)
        return httpx.Response(status, headers=headers, content=content, request=request)
