"""Mounted applications get their lifespan: started with the app, shut down with it.

A server sends the lifespan events to the outer application only; ``App`` passes them on to
every application mounted in it (``app.mount(path, other)``), as ``trellis.lifespan.Lifespan``
drives them for the test clients.
"""

from __future__ import annotations

from typing import Any

import pytest

from trellis import App
from trellis.testing import AsyncTestClient, LifespanError, TestClient
from trellis.types import Receive, Scope, Send


class Pool:
    """A raw ASGI app with a lifespan that opens a "pool" into its state, and a log."""

    def __init__(self, events: list[str], *, fail: str | None = None) -> None:
        self.events = events
        self.fail = fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            if self.fail:
                await send({"type": "lifespan.startup.failed", "message": self.fail})
                return
            self.events.append("pool started")
            scope["state"]["pool"] = "open"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            self.events.append("pool stopped")
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = f"pool is {scope['state']['pool']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def sub_app(events: list[str]) -> App:
    sub = App(debug=True)

    @sub.on_startup
    def started() -> None:
        events.append("sub started")

    @sub.on_shutdown
    def stopped() -> None:
        events.append("sub stopped")

    @sub.get("/")
    async def index() -> str:
        return "sub"

    return sub


def outer_app(events: list[str], **mounts: Any) -> App:
    app = App(debug=True)

    @app.on_startup
    def started() -> None:
        events.append("app started")

    @app.on_shutdown
    def stopped() -> None:
        events.append("app stopped")

    for path, mounted in mounts.items():
        app.mount(f"/{path}", mounted)
    return app


def test_a_mounted_trellis_app_starts_and_stops_with_the_app() -> None:
    events: list[str] = []
    app = outer_app(events, shop=sub_app(events))
    with TestClient(app) as client:
        assert events == ["app started", "sub started"]
        assert client.get("/shop/").text == "sub"
    # the mounted app stops first: it may still use what the outer app set up
    assert events == ["app started", "sub started", "sub stopped", "app stopped"]


def test_a_mounted_apps_lifespan_state_is_in_its_requests() -> None:
    events: list[str] = []
    with TestClient(outer_app(events, db=Pool(events))) as client:
        assert client.get("/db/anything").text == "pool is open"
    assert events == ["app started", "pool started", "pool stopped", "app stopped"]


def test_an_app_mounted_twice_starts_once() -> None:
    events: list[str] = []
    pool = Pool(events)
    with TestClient(outer_app(events, a=pool, b=pool)) as client:
        assert client.get("/a/").text == client.get("/b/").text == "pool is open"
    assert events.count("pool started") == events.count("pool stopped") == 1


def test_a_mounted_app_that_fails_to_start_stops_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    app = outer_app(events, db=Pool(events, fail="no database"))
    with (
        caplog.at_level("ERROR", logger="trellis"),
        pytest.raises(LifespanError) as caught,
        TestClient(app),
    ):
        pass
    assert "the app mounted at '/db' failed to start: no database" in str(caught.value)
    assert events == ["app started"]  # shut-down hooks run after a start-up that succeeded
    [record] = caplog.records  # one line that says it all, no traceback
    assert record.getMessage().endswith("the app mounted at '/db' failed to start: no database")
    assert record.exc_info is None


def test_apps_without_a_lifespan_are_left_alone() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"  # raises on the lifespan: it has none
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"raw"})

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # returns at once: no lifespan either
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"silent"})

    async def answers_anything(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"any"})

    events: list[str] = []
    app = outer_app(events, raw=raw, silent=silent, any=answers_anything)
    with TestClient(app) as client:
        assert client.get("/raw/").text == "raw"
        assert client.get("/silent/").text == "silent"
        assert client.get("/any/").text == "any"
    assert events == ["app started", "app stopped"]


def test_the_test_client_runs_an_app_without_a_lifespan() -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with TestClient(silent) as client:  # it used to wait forever for the start-up answer
        assert client.get("/").status_code == 204


@pytest.mark.anyio
async def test_the_async_client_starts_mounted_apps_too() -> None:
    events: list[str] = []
    async with AsyncTestClient(outer_app(events, shop=sub_app(events))) as client:
        assert (await client.get("/shop/")).text == "sub"
    assert events == ["app started", "sub started", "sub stopped", "app stopped"]
