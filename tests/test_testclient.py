"""TestClient and AsyncTestClient: cookies, lifespan, redirects, the scope they build."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from trellis import App, RedirectResponse, Request, Response, StreamingResponse
from trellis.testing import AsyncTestClient, LifespanError, TestClient


def session_app(events: list[str] | None = None) -> App:
    log = events if events is not None else []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        log.append("lifespan enter")
        yield {"greeting": "hello"}
        log.append("lifespan exit")

    app = App(debug=True, lifespan=lifespan)

    @app.on_startup
    def started() -> None:
        log.append("startup")

    @app.on_shutdown
    async def stopped() -> None:
        log.append("shutdown")

    @app.get("/login")
    async def login() -> Response:
        response = Response("in")
        response.set_cookie("sid", "abc")
        response.set_cookie("theme", "dark", httponly=False)
        return response

    @app.get("/secure-login")
    async def secure_login() -> Response:
        response = Response("in")
        response.set_cookie("sid", "secret")  # Secure over https
        return response

    @app.get("/logout")
    async def logout() -> Response:
        response = Response("out")
        response.delete_cookie("sid")
        return response

    @app.get("/me")
    async def me(request: Request) -> dict[str, str]:
        return request.cookies

    @app.get("/greeting")
    async def greeting(request: Request) -> str:
        return str(request.state.get("greeting", "no lifespan state"))

    @app.get("/scope")
    async def scope(request: Request) -> dict[str, Any]:
        s = request.scope
        return {
            "scheme": s["scheme"],
            "client": list(s["client"]),
            "server": list(s["server"]),
            "path": s["path"],
            "raw_path": s["raw_path"].decode(),
            "root_path": s["root_path"],
            "query": s["query_string"].decode(),
            "host": request.headers["host"],
            "http_version": s["http_version"],
        }

    @app.get("/old")
    async def old() -> RedirectResponse:
        return RedirectResponse("/me", 301)

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b", b"c"]))

    return app


# --- cookies --------------------------------------------------------------------------------


def test_cookies_are_kept_between_requests() -> None:
    with TestClient(session_app()) as client:
        assert client.get("/me").json() == {}
        client.get("/login")
        assert client.get("/me").json() == {"sid": "abc", "theme": "dark"}
        assert client.cookies["sid"] == "abc"
        client.get("/logout")
        assert client.get("/me").json() == {"theme": "dark"}


def test_cookies_given_to_the_client() -> None:
    with TestClient(session_app(), cookies={"pre": "set"}) as client:
        assert client.get("/me").json() == {"pre": "set"}


def test_secure_cookie_goes_back_over_https_only() -> None:
    with TestClient(session_app(), base_url="https://testserver") as client:
        client.get("/secure-login")
        assert client.get("/me").json() == {"sid": "secret"}


@pytest.mark.anyio
async def test_async_client_keeps_cookies() -> None:
    async with AsyncTestClient(session_app()) as client:
        await client.get("/login")
        assert (await client.get("/me")).json() == {"sid": "abc", "theme": "dark"}


# --- lifespan -------------------------------------------------------------------------------


def test_with_block_runs_the_lifespan() -> None:
    events: list[str] = []
    client = TestClient(session_app(events))
    with client:
        assert events == ["startup", "lifespan enter"]
        assert client.get("/greeting").text == "hello"
    assert events == ["startup", "lifespan enter", "lifespan exit", "shutdown"]


def test_without_with_block_no_lifespan() -> None:
    events: list[str] = []
    client = TestClient(session_app(events))
    try:
        assert client.get("/greeting").text == "no lifespan state"
    finally:
        client.close()
    assert events == []


@pytest.mark.anyio
async def test_async_client_runs_the_lifespan() -> None:
    events: list[str] = []
    async with AsyncTestClient(session_app(events)) as client:
        assert events == ["startup", "lifespan enter"]
        assert (await client.get("/greeting")).text == "hello"
    assert events == ["startup", "lifespan enter", "lifespan exit", "shutdown"]


def test_failed_startup_raises_lifespan_error() -> None:
    app = App(debug=True)

    @app.on_startup
    def boom() -> None:
        raise RuntimeError("no database")

    with pytest.raises(LifespanError, match="no database"), TestClient(app):
        pass


@pytest.mark.anyio
async def test_async_failed_startup_raises_lifespan_error() -> None:
    app = App(debug=True)

    @app.on_startup
    async def boom() -> None:
        raise RuntimeError("no cache")

    with pytest.raises(LifespanError, match="no cache"):
        async with AsyncTestClient(app):
            pass


def test_production_app_without_secret_key_does_not_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRELLIS_SECRET_KEY", raising=False)
    monkeypatch.delenv("TRELLIS_DEBUG", raising=False)
    app = App(debug=False)
    with pytest.raises(LifespanError, match="secret"), TestClient(app):
        pass


# --- redirects ------------------------------------------------------------------------------


def test_redirects_are_not_followed_by_default() -> None:
    with TestClient(session_app()) as client:
        response = client.get("/old")
        assert response.status_code == 301
        assert response.headers["location"] == "/me"
        assert client.get("/old", follow_redirects=True).status_code == 200


@pytest.mark.anyio
async def test_async_client_does_not_follow_redirects_by_default() -> None:
    async with AsyncTestClient(session_app()) as client:
        assert (await client.get("/old")).status_code == 301
    async with AsyncTestClient(session_app(), follow_redirects=True) as client:
        assert (await client.get("/old")).status_code == 200


# --- the scope ------------------------------------------------------------------------------


def test_scope_of_a_request() -> None:
    with TestClient(session_app()) as client:
        data = client.get("/scope?a=1&b=%20").json()
    assert data == {
        "scheme": "http",
        "client": ["testclient", 50000],
        "server": ["testserver", 80],
        "path": "/scope",
        "raw_path": "/scope",
        "root_path": "",
        "query": "a=1&b=%20",
        "host": "testserver",
        "http_version": "1.1",
    }


def test_scope_with_an_https_base_url() -> None:
    with TestClient(session_app(), base_url="https://example.com:8443") as client:
        data = client.get("/scope").json()
    assert data["scheme"] == "https"
    assert data["server"] == ["example.com", 8443]
    assert data["host"] == "example.com:8443"


def test_default_headers() -> None:
    app = App(debug=True)

    @app.get("/")
    async def index(request: Request) -> str:
        return str(request.headers.get("authorization"))

    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        assert client.get("/").text == "Bearer t"


def test_bodies_both_ways() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"one,"
        yield b"two"

    with TestClient(session_app()) as client:
        assert client.post("/echo", content=b"\x00\xff").content == b"\x00\xff"
        assert client.post("/echo", content=chunks()).content == b"one,two"
        assert client.get("/stream").content == b"abc"


def test_root_path_reaches_mounted_apps() -> None:
    sub = App(debug=True)

    @sub.get("/x")
    async def inner(request: Request) -> str:
        return request.path

    app = App(debug=True)
    app.mount("/sub", sub)
    with TestClient(app, root_path="/api") as client:
        response = client.get("/sub/x")
    assert response.status_code == 200


def test_root_path_is_part_of_the_path_as_with_uvicorn() -> None:
    with TestClient(session_app(), root_path="/api") as client:
        data = client.get("/scope").json()
    assert (data["path"], data["raw_path"], data["root_path"]) == (
        "/api/scope",
        "/api/scope",
        "/api",
    )
