from __future__ import annotations

from typing import Any

import pytest

from trellis.exceptions import ConfigurationError
from trellis.middleware import SecurityHeadersMiddleware
from trellis.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

DEFAULTS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}


async def test_defaults(asgi_client: Any, make_app: Any) -> None:
    app = SecurityHeadersMiddleware(make_app(200, {"content-type": "text/html"}, b"<p>"))
    async with asgi_client(app) as c:
        r = await c.get("/")
    assert r.text == "<p>"
    for name, value in DEFAULTS.items():
        assert r.headers[name] == value
    assert "content-security-policy" not in r.headers
    assert "strict-transport-security" not in r.headers
    assert "permissions-policy" not in r.headers


async def test_hsts_only_on_https(asgi_client: Any, make_app: Any) -> None:
    app = SecurityHeadersMiddleware(
        make_app(), hsts=63072000, hsts_include_subdomains=True, hsts_preload=True
    )
    async with asgi_client(app, base_url="https://testserver") as c:
        secure = await c.get("/")
    async with asgi_client(app) as c:
        plain = await c.get("/")
    assert (
        secure.headers["strict-transport-security"]
        == "max-age=63072000; includeSubDomains; preload"
    )
    assert "strict-transport-security" not in plain.headers
    assert plain.headers["x-frame-options"] == "DENY"


async def test_response_headers_are_not_overridden(asgi_client: Any, make_app: Any) -> None:
    inner = make_app(200, {"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "img-src *"})
    app = SecurityHeadersMiddleware(inner, content_security_policy="default-src 'self'")
    async with asgi_client(app) as c:
        r = await c.get("/")
    assert r.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert r.headers.get_list("content-security-policy") == ["img-src *"]
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_policies_from_mappings(asgi_client: Any, make_app: Any) -> None:
    app = SecurityHeadersMiddleware(
        make_app(),
        content_security_policy={
            "default-src": "'self'",
            "img-src": ["'self'", "data:"],
            "upgrade-insecure-requests": [],
        },
        permissions_policy={
            "camera": [],
            "geolocation": ["self", "https://maps.example"],
            "fullscreen": "*",
        },
        frame_options="sameorigin",
        referrer_policy="no-referrer, strict-origin-when-cross-origin",
    )
    async with asgi_client(app) as c:
        r = await c.get("/")
    assert (
        r.headers["content-security-policy"]
        == "default-src 'self'; img-src 'self' data:; upgrade-insecure-requests"
    )
    assert (
        r.headers["permissions-policy"]
        == 'camera=(), geolocation=(self "https://maps.example"), fullscreen=*'
    )
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["referrer-policy"] == "no-referrer, strict-origin-when-cross-origin"


async def test_policies_as_text(asgi_client: Any, make_app: Any) -> None:
    app = SecurityHeadersMiddleware(
        make_app(),
        content_security_policy=" default-src 'none' ",
        permissions_policy="camera=(), microphone=()",
    )
    async with asgi_client(app) as c:
        r = await c.get("/")
    assert r.headers["content-security-policy"] == "default-src 'none'"
    assert r.headers["permissions-policy"] == "camera=(), microphone=()"


async def test_everything_off_leaves_responses_alone(asgi_client: Any, make_app: Any) -> None:
    app = SecurityHeadersMiddleware(
        make_app(200, {"x-app": "1"}),
        frame_options=None,
        content_type_options=False,
        referrer_policy=None,
        cross_origin_opener_policy=None,
    )
    async with asgi_client(app) as c:
        r = await c.get("/")
    assert list(r.headers.items()) == [("x-app", "1")]


async def test_app_header_list_is_not_mutated(asgi_client: Any) -> None:
    shared = [(b"content-type", b"text/plain")]

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared})
        await send({"type": "http.response.body", "body": b""})

    async with asgi_client(SecurityHeadersMiddleware(inner)) as c:
        await c.get("/")
        r = await c.get("/")
    assert shared == [(b"content-type", b"text/plain")]
    assert r.headers.get_list("x-frame-options") == ["DENY"]


async def test_non_http_scopes_pass_through(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    messages = await run_asgi(SecurityHeadersMiddleware(make_app()), make_scope("websocket"))
    assert messages[0] == {"type": "websocket.accept"}


@pytest.mark.parametrize(
    "options",
    [
        {"frame_options": "ALLOW-FROM https://a.example"},
        {"referrer_policy": "never"},
        {"cross_origin_opener_policy": "same-site"},
        {"hsts_include_subdomains": True},
        {"hsts": 3600, "hsts_preload": True, "hsts_include_subdomains": True},
        {"hsts": 31536000, "hsts_preload": True},
        {"hsts": -1},
        {"content_security_policy": "default-src 'self'\r\nSet-Cookie: a=b"},
        {"permissions_policy": {"camera": ["https://例え.example"]}},
    ],
)
def test_configuration_errors(make_app: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="SecurityHeadersMiddleware"):
        SecurityHeadersMiddleware(make_app(), **options)
