from __future__ import annotations

from typing import Any

import pytest

from trellis.exceptions import ConfigurationError
from trellis.middleware import CORSMiddleware
from trellis.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

SITE = "https://site.example"


async def unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("a preflight must be answered by the middleware")


def preflight(
    method: str = "PUT", headers: str | None = None, origin: str = SITE
) -> dict[str, str]:
    out = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        out["access-control-request-headers"] = headers
    return out


async def test_preflight_allowed(asgi_client: Any) -> None:
    app = CORSMiddleware(
        unreachable,
        allow_origins=[SITE],
        allow_methods=["GET", "put"],
        allow_headers=["X-Token"],
        max_age=300,
    )
    async with asgi_client(app) as c:
        r = await c.options("/anything", headers=preflight("PUT", "x-token, Content-Type"))
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-methods"] == "GET, PUT"
    allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"x-token", "content-type"} <= allowed
    assert r.headers["access-control-max-age"] == "300"
    assert r.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        (preflight(origin="https://evil.example"), "origin"),
        (preflight(method="DELETE"), "method"),
        (preflight(headers="X-Other"), "headers"),
        (preflight(method="DELETE", headers="X-Other"), "method, headers"),
    ],
)
async def test_preflight_refused(asgi_client: Any, headers: dict[str, str], refused: str) -> None:
    app = CORSMiddleware(unreachable, allow_origins=[SITE], allow_methods=["PUT"])
    async with asgi_client(app) as c:
        r = await c.options("/", headers=headers)
    assert r.status_code == 400
    assert r.text == f"Disallowed CORS {refused}"
    assert "access-control-allow-origin" not in r.headers


async def test_preflight_safelisted_headers_always_allowed(asgi_client: Any) -> None:
    app = CORSMiddleware(unreachable, allow_origins=[SITE], allow_methods=["POST"])
    async with asgi_client(app) as c:
        r = await c.options("/", headers=preflight("POST", "Content-Type, Accept"))
    assert r.status_code == 200


async def test_preflight_any_method_and_header_echoes_the_request(asgi_client: Any) -> None:
    app = CORSMiddleware(
        unreachable,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        allow_credentials=True,
    )
    async with asgi_client(app) as c:
        r = await c.options("/", headers=preflight("PATCH", "X-A,  x-b"))
    assert r.status_code == 200
    # With credentials "*" would be taken literally by the browser: name what was asked.
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-methods"] == "PATCH"
    assert r.headers["access-control-allow-headers"] == "x-a, x-b"
    assert r.headers["access-control-allow-credentials"] == "true"


async def test_preflight_wildcard_without_credentials_sends_star(asgi_client: Any) -> None:
    app = CORSMiddleware(unreachable, allow_origins=["*"], allow_methods=["PUT"])
    async with asgi_client(app) as c:
        r = await c.options("/", headers=preflight("PUT"))
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "vary" not in r.headers


async def test_options_without_request_method_reaches_the_app(
    asgi_client: Any, make_app: Any
) -> None:
    app = CORSMiddleware(make_app(204), allow_origins=[SITE])
    async with asgi_client(app) as c:
        r = await c.options("/", headers={"origin": SITE})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SITE


async def test_simple_request_allowed_origin(asgi_client: Any, make_app: Any) -> None:
    inner = make_app(200, {"content-type": "text/plain", "vary": "Accept-Encoding"}, b"hi")
    app = CORSMiddleware(
        inner, allow_origins=[SITE], allow_credentials=True, expose_headers=["X-Total", "ETag"]
    )
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"origin": SITE})
    assert r.status_code == 200
    assert r.text == "hi"
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-expose-headers"] == "X-Total, ETag"
    assert r.headers["vary"] == "Accept-Encoding, Origin"


async def test_simple_request_wildcard_sends_star_without_vary(
    asgi_client: Any, make_app: Any
) -> None:
    app = CORSMiddleware(make_app(200, body=b"x"), allow_origins=["*"])
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"origin": SITE})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "vary" not in r.headers
    assert "access-control-allow-credentials" not in r.headers


async def test_wildcard_with_credentials_echoes_origin(asgi_client: Any, make_app: Any) -> None:
    app = CORSMiddleware(make_app(), allow_origins=["*"], allow_credentials=True)
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"origin": "https://any.example"})
        null = await c.get("/", headers={"origin": "null"})
    assert r.headers["access-control-allow-origin"] == "https://any.example"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["vary"] == "Origin"
    # Sandboxed frames and file:// pages must not get credentialed access through "*".
    assert "access-control-allow-origin" not in null.headers


async def test_null_origin_allowed_when_listed(asgi_client: Any, make_app: Any) -> None:
    app = CORSMiddleware(make_app(), allow_origins=["null"], allow_credentials=True)
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"origin": "null"})
    assert r.headers["access-control-allow-origin"] == "null"


async def test_disallowed_origin_gets_no_cors_headers(asgi_client: Any, make_app: Any) -> None:
    app = CORSMiddleware(make_app(200, body=b"data"), allow_origins=[SITE])
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"origin": "https://evil.example"})
    assert r.status_code == 200
    assert r.text == "data"
    assert not [h for h in r.headers if h.startswith("access-control-")]
    assert r.headers["vary"] == "Origin"


async def test_origin_regex(asgi_client: Any, make_app: Any) -> None:
    app = CORSMiddleware(make_app(), allow_origin_regex=r"https://[a-z]+\.site\.example")
    async with asgi_client(app) as c:
        ok = await c.get("/", headers={"origin": "https://app.site.example"})
        bad = await c.get("/", headers={"origin": "https://app.site.example.evil"})
    assert ok.headers["access-control-allow-origin"] == "https://app.site.example"
    assert "access-control-allow-origin" not in bad.headers


async def test_origin_compared_case_insensitively(asgi_client: Any, make_app: Any) -> None:
    app = CORSMiddleware(make_app(), allow_origins=["https://Site.Example"])
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"origin": "https://site.example"})
    assert r.headers["access-control-allow-origin"] == "https://site.example"


async def test_request_without_origin(asgi_client: Any, make_app: Any) -> None:
    headers = {"content-type": "text/plain", "x-app": "1"}
    async with asgi_client(CORSMiddleware(make_app(200, headers), allow_origins=["*"])) as c:
        star = await c.get("/")
    async with asgi_client(CORSMiddleware(make_app(200, headers), allow_origins=[SITE])) as c:
        listed = await c.get("/")
    assert not [h for h in star.headers if h.startswith("access-control-") or h == "vary"]
    assert not [h for h in listed.headers if h.startswith("access-control-")]
    # The answer depends on Origin, so caches must key on it even for this response.
    assert listed.headers["vary"] == "Origin"


async def test_app_cors_headers_are_replaced_not_doubled(asgi_client: Any, make_app: Any) -> None:
    inner = make_app(200, [("Access-Control-Allow-Origin", "*"), ("Vary", "Origin")])
    app = CORSMiddleware(inner, allow_origins=[SITE])
    async with asgi_client(app) as c:
        r = await c.get("/", headers={"origin": SITE})
    assert r.headers.get_list("access-control-allow-origin") == [SITE]
    assert r.headers.get_list("vary") == ["Origin"]


async def test_app_header_list_is_not_mutated(asgi_client: Any) -> None:
    shared = [(b"content-type", b"text/plain")]

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared})
        await send({"type": "http.response.body", "body": b""})

    app = CORSMiddleware(inner, allow_origins=[SITE])
    async with asgi_client(app) as c:
        await c.get("/", headers={"origin": SITE})
        await c.get("/", headers={"origin": "https://other.example"})
    assert shared == [(b"content-type", b"text/plain")]


async def test_non_http_scopes_pass_through(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    seen: list[Scope] = []
    app = CORSMiddleware(make_app(seen=seen), allow_origins=[SITE])
    messages = await run_asgi(app, make_scope("websocket", headers={"origin": "https://x.example"}))
    assert [m["type"] for m in messages] == ["websocket.accept", "websocket.close"]
    assert len(seen) == 1


@pytest.mark.parametrize(
    "options",
    [
        {"allow_origins": "https://site.example"},
        {"allow_origins": ["https://site.example/"]},
        {"allow_origins": ["site.example"]},
        {"allow_methods": "GET"},
        {"max_age": -1},
    ],
)
def test_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="CORSMiddleware"):
        CORSMiddleware(unreachable, **options)
