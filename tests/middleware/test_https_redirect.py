from __future__ import annotations

from typing import Any

import pytest

from trellis.middleware import HTTPSRedirectMiddleware
from trellis.types import Scope

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("host", "target", "location"),
    [
        ("testserver", "/", "https://testserver/"),
        ("example.com:80", "/a/b?x=1&y=%20", "https://example.com/a/b?x=1&y=%20"),
        ("example.com:443", "/", "https://example.com/"),
        ("example.com:8080", "/p", "https://example.com:8080/p"),
        ("[::1]:80", "/caf%C3%A9", "https://[::1]/caf%C3%A9"),
    ],
)
async def test_http_redirected(
    asgi_client: Any, make_app: Any, host: str, target: str, location: str
) -> None:
    async with asgi_client(HTTPSRedirectMiddleware(make_app(200))) as c:
        r = await c.get(target, headers={"host": host})
    assert r.status_code == 308
    assert r.headers["location"] == location
    assert r.content == b""


async def test_post_keeps_method_with_308(asgi_client: Any, make_app: Any) -> None:
    async with asgi_client(HTTPSRedirectMiddleware(make_app(200))) as c:
        r = await c.post("/submit", content=b"data")
    assert r.status_code == 308
    assert r.headers["location"] == "https://testserver/submit"


async def test_https_passes_through(asgi_client: Any, make_app: Any) -> None:
    app = HTTPSRedirectMiddleware(make_app(200, body=b"secure"))
    async with asgi_client(app, base_url="https://testserver") as c:
        r = await c.get("/")
    assert (r.status_code, r.text) == (200, "secure")


async def test_malformed_host_refused(asgi_client: Any, make_app: Any) -> None:
    async with asgi_client(HTTPSRedirectMiddleware(make_app(200))) as c:
        r = await c.get("/", headers={"host": "good.example@evil.example"})
    assert r.status_code == 400


async def test_without_host_header_uses_server(
    make_app: Any, make_scope: Any, run_asgi: Any
) -> None:
    app = HTTPSRedirectMiddleware(make_app(200))
    messages = await run_asgi(app, make_scope(path="/x", server=("::1", 8000)))
    assert (b"location", b"https://[::1]:8000/x") in messages[0]["headers"]
    messages = await run_asgi(app, make_scope(server=None))
    assert messages[0]["status"] == 400


async def test_path_rebuilt_without_raw_path(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    scope = make_scope(path="/a b", root_path="/app", headers={"host": "h"}, query=b"q=1")
    del scope["raw_path"]
    messages = await run_asgi(HTTPSRedirectMiddleware(make_app(200)), scope)
    assert (b"location", b"https://h/app/a%20b?q=1") in messages[0]["headers"]


async def test_websocket_redirected_when_server_can_answer_http(
    make_app: Any, make_scope: Any, run_asgi: Any
) -> None:
    scope = make_scope(
        "websocket",
        "/ws",
        headers={"host": "example.com"},
        extensions={"websocket.http.response": {}},
    )
    messages = await run_asgi(HTTPSRedirectMiddleware(make_app()), scope)
    assert messages[0]["type"] == "websocket.http.response.start"
    assert messages[0]["status"] == 308
    assert (b"location", b"wss://example.com/ws") in messages[0]["headers"]
    assert messages[1]["type"] == "websocket.http.response.body"


async def test_websocket_closed_otherwise(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    seen: list[Scope] = []
    app = HTTPSRedirectMiddleware(make_app(seen=seen))
    messages = await run_asgi(app, make_scope("websocket", headers={"host": "example.com"}))
    assert messages == [{"type": "websocket.close", "code": 1008, "reason": "Use wss://"}]
    assert seen == []


async def test_wss_and_lifespan_pass_through(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    seen: list[Scope] = []
    app = HTTPSRedirectMiddleware(make_app(seen=seen))
    messages = await run_asgi(app, make_scope("websocket", scheme="wss"))
    assert messages[0]["type"] == "websocket.accept"

    async def lifespan_app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)

    await run_asgi(HTTPSRedirectMiddleware(lifespan_app), {"type": "lifespan"})
    assert [s["type"] for s in seen] == ["websocket", "lifespan"]
