from __future__ import annotations

from typing import Any

import pytest

from trellis.exceptions import ConfigurationError
from trellis.middleware import TrustedHostMiddleware
from trellis.types import Scope

pytestmark = pytest.mark.anyio

HOSTS = ["example.com", "*.example.org", "[::1]", "127.0.0.1"]


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "EXAMPLE.com",
        "example.com:8000",
        "example.com.",
        "api.example.org",
        "a.b.example.org:443",
        "[::1]:8000",
        "127.0.0.1",
    ],
)
async def test_allowed_hosts(asgi_client: Any, make_app: Any, host: str) -> None:
    app = TrustedHostMiddleware(make_app(200, body=b"ok"), allowed_hosts=HOSTS)
    async with asgi_client(app) as c:
        first = await c.get("/", headers={"host": host})
        again = await c.get("/", headers={"host": host})  # served from the accepted cache
    assert (first.status_code, first.text) == (200, "ok")
    assert again.status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.com",
        "example.com.evil.com",
        "example.org",  # the wildcard covers subdomains only
        "evilexample.org",
        "evil.com/x.example.org",
        "user@api.example.org",
        "example.com:80:80",
        ".",
        "",
    ],
)
async def test_refused_hosts(asgi_client: Any, make_app: Any, host: str) -> None:
    app = TrustedHostMiddleware(make_app(200), allowed_hosts=HOSTS, www_redirect=False)
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"host": host})
    assert r.status_code == 400
    assert r.text == "Invalid host header"


async def test_missing_host_refused(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    app = TrustedHostMiddleware(make_app(200), allowed_hosts=["example.com"])
    messages = await run_asgi(app, make_scope())
    assert messages[0]["status"] == 400


async def test_any_host_by_default(asgi_client: Any, make_app: Any) -> None:
    async with asgi_client(TrustedHostMiddleware(make_app(200))) as c:
        r = await c.get("/", headers={"host": "whatever.invalid"})
    assert r.status_code == 200


async def test_www_redirect(asgi_client: Any, make_app: Any) -> None:
    app = TrustedHostMiddleware(make_app(200), allowed_hosts=["www.example.com"])
    async with asgi_client(app) as c:
        r = await c.get("/a%20b/c?x=1&y=2", headers={"host": "example.com:8080"})
    assert r.status_code == 307
    assert r.headers["location"] == "http://www.example.com:8080/a%20b/c?x=1&y=2"


async def test_www_redirect_off(asgi_client: Any, make_app: Any) -> None:
    app = TrustedHostMiddleware(
        make_app(200), allowed_hosts=["www.example.com"], www_redirect=False
    )
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"host": "example.com"})
    assert r.status_code == 400


async def test_websocket_checked(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    seen: list[Scope] = []
    app = TrustedHostMiddleware(make_app(seen=seen), allowed_hosts=["example.com"])
    bad = await run_asgi(app, make_scope("websocket", headers={"host": "evil.com"}))
    assert bad == [{"type": "websocket.close", "code": 1008, "reason": "Invalid host header"}]
    assert seen == []
    good = await run_asgi(app, make_scope("websocket", headers={"host": "example.com"}))
    assert good[0]["type"] == "websocket.accept"


async def test_lifespan_passes_through(make_scope: Any, run_asgi: Any) -> None:
    called = []

    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        called.append(scope["type"])

    app = TrustedHostMiddleware(inner, allowed_hosts=["example.com"])
    await run_asgi(app, {"type": "lifespan"})
    assert called == ["lifespan"]


@pytest.mark.parametrize(
    "hosts",
    [
        "example.com",
        [],
        ["https://example.com"],
        ["example.com:8000"],
        ["example.com/path"],
        ["api.*.example.com"],
        ["*example.com"],
    ],
)
def test_configuration_errors(make_app: Any, hosts: Any) -> None:
    with pytest.raises(ConfigurationError, match="TrustedHostMiddleware"):
        TrustedHostMiddleware(make_app(), allowed_hosts=hosts)
