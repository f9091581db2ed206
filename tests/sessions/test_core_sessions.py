"""Sessions as the visitor sees them: cookies, expiry, renewal, rotation, invalidation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from session_helpers import SECRET, Clock, MakeApp, session_cookie, set_cookies

from trellis import App, Request
from trellis.exceptions import ConfigurationError
from trellis.middleware import SessionMiddleware
from trellis.sessions import MemorySessionBackend, Session, SessionBackend
from trellis.testing import TestClient
from trellis.types import Receive, Scope, Send
from trellis.websockets import WebSocket


def session_app(make_app: MakeApp, **settings: Any) -> App:
    """An app whose routes read, change, rotate and forget the session."""
    app = make_app(**settings)

    @app.get("/read")
    async def read(request: Request) -> dict[str, Any]:
        return {"data": dict(request.session), "new": request.session.new}

    @app.post("/write", csrf=False)
    async def write(request: Request) -> dict[str, Any]:
        for key, value in request.query.items():
            request.session[key] = value
        return dict(request.session)

    @app.post("/rotate", csrf=False)
    async def rotate(request: Request) -> None:
        request.session.rotate()

    @app.post("/invalidate", csrf=False)
    async def invalidate(request: Request) -> None:
        request.session.invalidate()

    @app.get("/untouched")
    async def untouched() -> str:
        return "ok"

    return app


def plant(client: TestClient, value: str) -> None:
    """Put a session cookie in the client's jar as if the server had set it."""
    client.cookies.set("session", value, domain="testserver.local")


def cookie_value(response: Any) -> str:
    header = session_cookie(response)
    assert header is not None, response.headers
    return header.split(";", 1)[0].split("=", 1)[1]


# -- round trip and attributes ----------------------------------------------------------------


def test_round_trip(make_app: MakeApp) -> None:
    app = session_app(make_app)
    with TestClient(app) as client:
        first = client.post("/write?user=ada")
        assert first.json() == {"user": "ada"}
        cookie = session_cookie(first)
        assert cookie is not None
        attributes = [a.strip() for a in cookie.split(";")]
        assert "HttpOnly" in attributes
        assert "SameSite=Lax" in attributes
        assert "Path=/" in attributes
        assert "Secure" not in attributes  # plain http
        assert any(a.startswith("Max-Age=1209600") for a in attributes)
        assert first.headers["vary"] == "Cookie"
        second = client.get("/read")
        assert second.json() == {"data": {"user": "ada"}, "new": False}
        assert session_cookie(second) is None  # read, not changed: no cookie
        client.post("/write?lang=fr")
        assert client.get("/read").json()["data"] == {"user": "ada", "lang": "fr"}


def test_nothing_is_sent_when_the_session_is_not_used(make_app: MakeApp) -> None:
    app = session_app(make_app)
    with TestClient(app) as client:
        untouched = client.get("/untouched")
        assert set_cookies(untouched) == []
        assert "vary" not in untouched.headers
        # opened but empty and unchanged: no cookie either
        assert session_cookie(client.get("/read")) is None


def test_server_side_cookie_holds_only_a_random_id() -> None:
    store = MemorySessionBackend()
    app = App(debug=False, secret_key=SECRET)
    app.state.session_store = store

    @app.post("/login", csrf=False)
    async def login(request: Request) -> str:
        request.session["user"] = "secret-user-name"
        return "ok"

    with TestClient(app) as client:
        value = cookie_value(client.post("/login"))
        assert len(value) == 43  # 32 random bytes, URL-safe base64
        assert "secret" not in value
        assert len(store) == 1


def test_signed_cookie_session_is_signed_with_the_secret_key() -> None:
    def make(key: str) -> App:
        app = App(debug=False, secret_key=key)

        @app.post("/write", csrf=False)
        async def write(request: Request) -> None:
            request.session["user"] = "ada"

        @app.get("/read")
        async def read(request: Request) -> dict[str, Any]:
            return dict(request.session)

        return app

    with TestClient(make("a" * 40)) as client:
        value = cookie_value(client.post("/write"))
    with TestClient(make("a" * 40), cookies={"session": value}) as client:
        assert client.get("/read").json() == {"user": "ada"}
    with TestClient(make("b" * 40), cookies={"session": value}) as client:
        assert client.get("/read").json() == {}


# -- tampering and expiry ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),
        lambda v: "x" + v[1:],
        lambda v: "garbage",
        lambda v: v + v,
        lambda v: "",
    ],
)
def test_a_tampered_cookie_gives_a_fresh_session(make_app: MakeApp, tamper: Any) -> None:
    app = session_app(make_app)
    with TestClient(app) as client:
        value = cookie_value(client.post("/write?role=user"))
    with TestClient(app, cookies={"session": tamper(value)}) as client:
        response = client.get("/read")
        assert response.status_code == 200
        assert response.json() == {"data": {}, "new": True}


def test_an_expired_session_is_fresh(make_app: MakeApp, clock: Clock) -> None:
    app = session_app(make_app, session_max_age=60)
    with TestClient(app) as client:
        value = cookie_value(client.post("/write?user=ada"))
        clock.advance(59)
        assert client.get("/read").json()["data"] == {"user": "ada"}
        clock.advance(61)
        assert client.get("/read").json() == {"data": {}, "new": True}
    # The server refuses the old cookie even if the browser kept sending it.
    with TestClient(app, cookies={"session": value}) as client:
        assert client.get("/read").json() == {"data": {}, "new": True}


def test_expired_server_side_record_is_deleted(clock: Clock) -> None:
    store = MemorySessionBackend(clock=lambda: 0.0)  # the store itself never expires anything
    app = App(debug=False, secret_key=SECRET, session_max_age=60)
    app.state.session_store = store

    @app.post("/write", csrf=False)
    async def write(request: Request) -> None:
        request.session["user"] = "ada"

    @app.get("/read")
    async def read(request: Request) -> dict[str, Any]:
        return dict(request.session)

    with TestClient(app) as client:
        client.post("/write")
        assert len(store) == 1
        clock.advance(120)
        assert client.get("/read").json() == {}
        assert len(store) == 0


# -- sliding renewal --------------------------------------------------------------------------


def test_sliding_renewal(make_app: MakeApp, clock: Clock) -> None:
    # max_age 1000 s: the cookie is renewed when used more than 100 s after it was set.
    app = session_app(make_app, session_max_age=1000)
    with TestClient(app) as client:
        client.post("/write?user=ada")
        clock.advance(50)
        assert session_cookie(client.get("/read")) is None  # too soon to renew
        clock.advance(100)
        renewed = client.get("/read")
        cookie = session_cookie(renewed)
        assert cookie is not None and "Max-Age=1000" in cookie
        assert session_cookie(client.get("/untouched")) is None  # not used: not renewed
        clock.advance(900)  # 1050 s after login, 900 s after the renewal
        assert client.get("/read").json()["data"] == {"user": "ada"}
        clock.advance(1001)  # idle for longer than max_age
        assert client.get("/read").json()["data"] == {}


def test_without_sliding_the_lifetime_is_absolute(make_app: MakeApp, clock: Clock) -> None:
    app = session_app(make_app, session_max_age=1000, session_sliding=False)
    with TestClient(app) as client:
        client.post("/write?user=ada")
        clock.advance(500)
        assert session_cookie(client.get("/read")) is None
        changed = client.post("/write?lang=fr")
        cookie = session_cookie(changed)
        if cookie is not None:  # a signed cookie is re-signed, with what is left of the lifetime
            assert "Max-Age=500" in cookie
        clock.advance(501)
        assert client.get("/read").json()["data"] == {}


# -- rotation and invalidation ----------------------------------------------------------------


def test_rotate_keeps_the_data_and_changes_the_cookie(make_app: MakeApp) -> None:
    app = session_app(make_app)
    with TestClient(app) as client:
        before = cookie_value(client.post("/write?user=ada"))
        after = cookie_value(client.post("/rotate"))
        assert after != before
        assert client.get("/read").json()["data"] == {"user": "ada"}


def test_rotate_defeats_session_fixation() -> None:
    store = MemorySessionBackend()
    app = App(debug=False, secret_key=SECRET)
    app.state.session_store = store
    ids: list[str | None] = []

    @app.post("/visit", csrf=False)
    async def visit(request: Request) -> None:
        request.session["seen"] = True

    @app.post("/login", csrf=False)
    async def login(request: Request) -> None:
        ids.append(request.session.id)
        request.session.rotate()
        request.session["user"] = "ada"

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return dict(request.session)

    with TestClient(app) as attacker:
        planted = cookie_value(attacker.post("/visit"))
    # The victim logs in with the id the attacker planted.
    with TestClient(app) as victim:
        plant(victim, planted)
        new_id = cookie_value(victim.post("/login"))
        assert ids == [planted]
        assert new_id != planted
        assert victim.get("/me").json() == {"seen": True, "user": "ada"}
        assert victim.call(store.load, planted) is None
    with TestClient(app, cookies={"session": planted}) as attacker:
        assert attacker.get("/me").json() == {}


def test_invalidate(make_app: MakeApp, backend: str) -> None:
    app = session_app(make_app)
    store = getattr(app.state, "session_store", None)
    with TestClient(app) as client:
        value = cookie_value(client.post("/write?user=ada"))
        response = client.post("/invalidate")
        cookie = session_cookie(response)
        assert cookie is not None
        assert cookie.startswith("session=;") and "Max-Age=0" in cookie
        assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in cookie
        assert client.get("/read").json() == {"data": {}, "new": True}
        if store is not None:
            assert client.call(store.load, value) is None
            assert len(store) == 0


def test_data_stored_after_invalidate_goes_to_a_new_session() -> None:
    store = MemorySessionBackend()
    app = App(debug=False, secret_key=SECRET)
    app.state.session_store = store

    @app.post("/login", csrf=False)
    async def login(request: Request) -> None:
        request.session["user"] = "ada"

    @app.post("/logout", csrf=False)
    async def logout(request: Request) -> None:
        request.session.invalidate()
        request.session["notice"] = "bye"

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return dict(request.session)

    with TestClient(app) as client:
        old = cookie_value(client.post("/login"))
        new = cookie_value(client.post("/logout"))
        assert new and new != old
        assert client.get("/me").json() == {"notice": "bye"}
        assert client.call(store.load, old) is None


def test_emptying_the_session_expires_the_cookie(make_app: MakeApp) -> None:
    app = make_app()

    @app.post("/write", csrf=False)
    async def write(request: Request) -> None:
        request.session["user"] = "ada"

    @app.post("/clear", csrf=False)
    async def clear(request: Request) -> None:
        request.session.clear()

    with TestClient(app) as client:
        client.post("/write")
        cookie = session_cookie(client.post("/clear"))
        assert cookie is not None and "Max-Age=0" in cookie


# -- cookie attributes ------------------------------------------------------------------------


def secure_of(app: App, base_url: str = "http://testserver", **kwargs: Any) -> bool:
    with TestClient(app, base_url=base_url) as client:
        cookie = session_cookie(client.post("/write?a=1", **kwargs))
    assert cookie is not None
    return "Secure" in [a.strip() for a in cookie.split(";")]


def test_secure_over_https(make_app: MakeApp) -> None:
    app = session_app(make_app)
    assert secure_of(app, "https://testserver") is True
    assert secure_of(app) is False


def test_secure_behind_a_trusted_proxy(make_app: MakeApp) -> None:
    app = session_app(make_app, trusted_proxies=["*"])
    assert secure_of(app, headers={"x-forwarded-proto": "https"}) is True
    untrusted = session_app(make_app)
    assert secure_of(untrusted, headers={"x-forwarded-proto": "https"}) is False


def test_secure_from_settings(make_app: MakeApp) -> None:
    assert secure_of(session_app(make_app, session_cookie_secure=True)) is True
    insecure = session_app(make_app, session_cookie_secure=False)
    assert secure_of(insecure, "https://testserver") is False


@pytest.mark.parametrize(("samesite", "shown"), [("strict", "Strict"), ("none", "None")])
def test_samesite_and_domain_from_settings(make_app: MakeApp, samesite: str, shown: str) -> None:
    app = session_app(
        make_app,
        session_cookie_samesite=samesite,
        session_cookie_domain="example.com",
        session_cookie="sid",
    )
    with TestClient(app) as client:
        cookie = session_cookie(client.post("/write?a=1"), "sid")
    assert cookie is not None
    attributes = [a.strip() for a in cookie.split(";")]
    assert f"SameSite={shown}" in attributes
    assert "Domain=example.com" in attributes
    # browsers drop SameSite=None cookies that are not Secure
    assert ("Secure" in attributes) is (samesite == "none")


# -- values -----------------------------------------------------------------------------------


def test_a_value_that_is_not_json_is_refused_at_once(make_app: MakeApp) -> None:
    app = make_app()

    @app.post("/bad", csrf=False)
    async def bad(request: Request) -> str:
        with pytest.raises(TypeError, match=r"session\['when'\].*JSON"):
            request.session["when"] = {1, 2}
        with pytest.raises(TypeError, match="session keys are strings"):
            request.session[1] = "x"  # type: ignore[index]
        request.session["ok"] = [1, "two", {"three": 3.0}, None, True]
        return "checked"

    with TestClient(app) as client:
        assert client.post("/bad").text == "checked"


def test_a_non_json_value_slipped_in_place_is_a_500_when_saving(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.post("/sneaky", csrf=False)
    async def sneaky(request: Request) -> str:
        request.session["items"] = []
        request.session["items"].append(object())
        return "sent?"

    with TestClient(app) as client, caplog.at_level(logging.ERROR, "trellis.error"):
        response = client.post("/sneaky")
    assert response.status_code == 500
    assert "sent?" not in response.text
    assert session_cookie(response) is None
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "the session cannot be saved" in caplog.text
    assert "'items'" in caplog.text


def test_a_signed_cookie_session_too_large_is_a_500() -> None:
    app = App(debug=False, secret_key=SECRET)

    @app.post("/big", csrf=False)
    async def big(request: Request) -> str:
        request.session["blob"] = "x" * 5000
        return "ok"

    with TestClient(app) as client:
        response = client.post("/big")
    assert response.status_code == 500


def test_json_values_come_back_in_their_json_form(make_app: MakeApp) -> None:
    app = make_app()

    @app.post("/write", csrf=False)
    async def write(request: Request) -> None:
        request.session["pair"] = (1, 2)
        request.session["n"] = 1.5

    @app.get("/read")
    async def read(request: Request) -> dict[str, Any]:
        return dict(request.session)

    with TestClient(app) as client:
        client.post("/write")
        assert client.get("/read").json() == {"pair": [1, 2], "n": 1.5}


def test_nested_change_is_saved_when_marked_modified(make_app: MakeApp) -> None:
    app = make_app()

    @app.post("/add", csrf=False)
    async def add(request: Request) -> list[int]:
        cart = request.session.setdefault("cart", [])
        cart.append(len(cart))
        request.session.modified = True
        return list(request.session["cart"])

    with TestClient(app) as client:
        client.post("/add")
        assert client.post("/add").json() == [0, 1]


# -- settings and stores ----------------------------------------------------------------------


def test_sessions_off() -> None:
    app = App(debug=False, secret_key=SECRET, sessions=False)

    @app.get("/")
    async def index(request: Request) -> str:
        with pytest.raises(ConfigurationError, match="sessions are turned off"):
            _ = request.session
        return "ok"

    with TestClient(app) as client:
        response = client.get("/")
        assert response.text == "ok"
        assert set_cookies(response) == []


class SpyStore(MemorySessionBackend):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def load(self, session_id: str) -> dict[str, Any] | None:
        self.calls.append("load")
        return await super().load(session_id)

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        self.calls.append("save")
        await super().save(session_id, data, ttl)

    async def delete(self, session_id: str) -> None:
        self.calls.append("delete")
        await super().delete(session_id)


def test_server_side_round_trips_only_when_needed() -> None:
    store = SpyStore()
    app = App(debug=False, secret_key=SECRET)
    app.state.session_store = store

    @app.post("/write", csrf=False)
    async def write(request: Request) -> None:
        request.session["n"] = request.session.get("n", 0) + 1

    @app.get("/plain")
    async def plain() -> str:
        return "ok"

    with TestClient(app) as client:
        client.get("/plain")
        assert store.calls == []  # no cookie: no load
        first = client.post("/write")
        assert store.calls == ["save"]
        assert session_cookie(first) is not None
        store.calls.clear()
        second = client.post("/write")
        assert store.calls == ["load", "save"]
        assert session_cookie(second) is None  # same id, not due for renewal
        store.calls.clear()
        client.get("/plain")
        assert store.calls == ["load"]  # preloaded: the handler might read it


def test_a_store_that_fails_to_load_fails_only_requests_that_use_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(MemorySessionBackend):
        async def load(self, session_id: str) -> dict[str, Any] | None:
            raise ConnectionError("store down")

    app = App(debug=False, secret_key=SECRET)
    app.state.session_store = Broken()

    @app.get("/")
    async def index() -> str:
        return "ok"

    @app.get("/mine")
    async def mine(request: Request) -> str:
        return str(request.session.get("name"))

    with (
        TestClient(app, cookies={"session": "a" * 43}) as client,
        caplog.at_level(logging.WARNING),
    ):
        served = client.get("/")
        failed = client.get("/mine")
    assert served.status_code == 200, served.text
    assert "session" not in served.headers.get("set-cookie", "")
    assert failed.status_code == 500
    assert failed.headers["x-content-type-options"] == "nosniff"
    assert "the session could not be loaded (ConnectionError: store down)" in caplog.text
    assert "unhandled error in GET /mine" in caplog.text


def test_a_store_set_by_the_lifespan_is_used() -> None:
    store = MemorySessionBackend()

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"session_store": store}

    app = App(debug=False, secret_key=SECRET, lifespan=lifespan)

    @app.post("/write", csrf=False)
    async def write(request: Request) -> None:
        request.session["a"] = 1

    with TestClient(app) as client:
        client.post("/write")
        assert len(store) == 1


def test_a_store_that_is_not_a_session_backend_is_refused() -> None:
    app = App(debug=False, secret_key=SECRET)
    app.state.session_store = object()
    with pytest.raises(ConfigurationError, match="not a session store"):
        app.build()


def test_memory_backend_is_a_session_backend(clock: Clock) -> None:
    store = MemorySessionBackend()
    assert isinstance(store, SessionBackend)


@pytest.mark.anyio
async def test_memory_backend_honours_ttl(clock: Clock) -> None:
    store = MemorySessionBackend()
    await store.save("a", {"x": [1, 2]}, 10)
    assert await store.load("a") == {"x": [1, 2]}
    clock.advance(11)
    assert await store.load("a") is None
    await store.save("b", {}, 10)
    await store.delete("b")
    await store.delete("unknown")
    assert await store.load("b") is None


def test_session_repr_and_mapping() -> None:
    session = Session({"a": 1})
    assert len(session) == 1 and "a" in session and list(session) == ["a"]
    del session["a"]
    assert session.modified and "Session" in repr(session)


# -- websockets -------------------------------------------------------------------------------


def test_websocket_reads_the_session_but_cannot_change_it(make_app: MakeApp) -> None:
    app = session_app(make_app)

    @app.websocket("/ws")
    async def session_ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(dict(websocket.session))
        try:
            websocket.session["x"] = 1
        except RuntimeError as exc:
            await websocket.send_text(str(exc))

    with TestClient(app) as client:
        client.post("/write?user=ada")
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == {"user": "ada"}
            assert "read-only on a websocket" in ws.receive_text()


# -- standalone middleware --------------------------------------------------------------------


def test_session_middleware_on_a_plain_asgi_app() -> None:
    from trellis.http.connection import HTTPConnection

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        session = HTTPConnection(scope).session
        session["hits"] = session.get("hits", 0) + 1
        body = str(session["hits"]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    app = SessionMiddleware(raw, secret_key=SECRET, cookie_name="sid", max_age=600)
    client = TestClient(app)  # no `with`: this app has no lifespan
    assert client.get("/").text == "1"
    assert client.get("/").text == "2"
    cookie = session_cookie(client.get("/"), "sid")
    # what is left of the idle lifetime: 600 s, or 599 when a second ticked since the first hit
    assert cookie is not None and ("Max-Age=600;" in cookie or "Max-Age=599;" in cookie)
    client.close()
