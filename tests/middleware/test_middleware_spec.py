from __future__ import annotations

from typing import Any

import pytest

from trellis.middleware import (
    CORSMiddleware,
    GZipMiddleware,
    Middleware,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
)
from trellis.types import ASGIApp, Receive, Scope, Send

pytestmark = pytest.mark.anyio


def test_build_passes_the_options() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None: ...

    built = Middleware(GZipMiddleware, minimum_size=10, compresslevel=1).build(app)
    assert isinstance(built, GZipMiddleware)
    assert (built.app, built.minimum_size, built.compresslevel) == (app, 10, 1)


def test_function_factories_and_positional_options() -> None:
    def tagging(app: ASGIApp, tag: str) -> ASGIApp:
        async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
            scope["tag"] = tag
            await app(scope, receive, send)

        return wrapper

    spec = Middleware(tagging, "x")
    assert repr(spec).startswith("Middleware(test_function_factories_and_positional_options.")
    assert repr(spec).endswith("tagging, 'x')")


def test_repr_and_equality() -> None:
    spec = Middleware(CORSMiddleware, allow_origins=["https://a.example"])
    assert repr(spec) == "Middleware(CORSMiddleware, allow_origins=['https://a.example'])"
    assert spec == Middleware(CORSMiddleware, allow_origins=["https://a.example"])
    assert spec != Middleware(CORSMiddleware)
    assert spec != "CORSMiddleware"


async def test_folded_stack_runs_outermost_first(asgi_client: Any, make_app: Any) -> None:
    # What App does at start-up: fold the specs once, the first one registered outermost.
    specs = [
        Middleware(RequestIDMiddleware),
        Middleware(SecurityHeadersMiddleware),
        Middleware(GZipMiddleware),
    ]
    app: ASGIApp = make_app(200, {"content-type": "text/plain"}, b"hello " * 200)
    for spec in reversed(specs):
        app = spec.build(app)
    assert isinstance(app, RequestIDMiddleware)
    async with asgi_client(app) as c:
        r = await c.get("/")
    assert r.text == "hello " * 200
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["x-frame-options"] == "DENY"
    assert "x-request-id" in r.headers
