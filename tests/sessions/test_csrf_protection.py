"""CSRF: unsafe requests that carry the session cookie need the token and a trusted origin."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from session_helpers import SECRET, MakeApp

from trellis import App, Request
from trellis.csrf import TrustedOrigins, csrf_token, verify_csrf
from trellis.exceptions import ConfigurationError
from trellis.handlers.params import Form
from trellis.testing import TestClient
from trellis.testing.websocket import WebSocketDenied
from trellis.websockets import WebSocket


def csrf_app(make_app: MakeApp, **settings: Any) -> App:
    app = make_app(**settings)

    @app.get("/token")
    async def token(request: Request) -> dict[str, str]:
        return {"token": csrf_token(request)}

    @app.route("/change", methods=["POST", "PUT", "PATCH", "DELETE"])
    async def change(request: Request) -> str:
        return "changed"

    @app.post("/comment")
    async def comment(text: Annotated[str, Form()]) -> dict[str, str]:
        return {"text": text}

    @app.post("/hook", csrf=False)
    async def hook() -> str:
        return "hooked"

    @app.post("/explicit", csrf=False)
    async def explicit(request: Request) -> str:
        await verify_csrf(request)
        return "verified"

    @app.post("/login")
    async def login(request: Request) -> str:
        request.session.rotate()
        return "rotated"

    @app.get("/search")
    async def search() -> str:
        return "safe"

    return app


def token_of(client: TestClient) -> str:
    token: str = client.get("/token").json()["token"]
    return token


def detail(response: Any) -> str:
    text: str = response.json()["detail"]
    return text


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_unsafe_methods_need_the_token(make_app: MakeApp, method: str) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        token = token_of(client)
        refused = client.request(method, "/change")
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert detail(refused).startswith("CSRF token missing")
        wrong = client.request(method, "/change", headers={"X-CSRF-Token": "AAAA" + token[4:]})
        assert wrong.status_code == 403
        assert detail(wrong).startswith("CSRF token incorrect")
        garbage = client.request(method, "/change", headers={"X-CSRF-Token": "not base64!"})
        assert detail(garbage).startswith("CSRF token incorrect")
        ok = client.request(method, "/change", headers={"X-CSRF-Token": token})
        assert ok.status_code == 200 and ok.text == "changed"


def test_token_in_a_form_field(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        token = token_of(client)
        urlencoded = client.post("/comment", data={"text": "hi", "csrf_token": token})
        assert urlencoded.json() == {"text": "hi"}  # the handler still reads the form
        multipart = client.post(
            "/comment",
            data={"text": "with a file", "csrf_token": token},
            files={"attachment": ("a.txt", b"hello", "text/plain")},
        )
        assert multipart.json() == {"text": "with a file"}
        missing = client.post("/comment", data={"text": "hi"})
        assert missing.status_code == 403 and detail(missing).startswith("CSRF token missing")
        wrong = client.post("/comment", data={"text": "hi", "csrf_token": token[:-4] + "AAAA"})
        assert wrong.status_code == 403 and detail(wrong).startswith("CSRF token incorrect")


def test_tokens_are_masked_afresh_and_all_valid(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        tokens = {token_of(client) for _ in range(5)}
        assert len(tokens) == 5
        for token in tokens:
            assert client.post("/change", headers={"X-CSRF-Token": token}).status_code == 200


def test_requests_without_the_session_cookie_are_not_checked(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        assert client.post("/change").text == "changed"
        # not even the origin: a forged request from another site cannot carry the cookie
        assert client.post("/change", headers={"Origin": "https://evil.example"}).text == "changed"


def test_requests_with_an_authorization_header_are_not_checked(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        token_of(client)  # the client now has the session cookie
        response = client.post("/change", headers={"Authorization": "Bearer abc"})
        assert response.text == "changed"


def test_safe_methods_are_never_checked(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        token_of(client)
        response = client.get("/search", headers={"Origin": "https://evil.example"})
        assert response.text == "safe"


def test_route_option_csrf_false(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        token_of(client)
        assert client.post("/hook").text == "hooked"
        assert client.post("/hook", headers={"Origin": "https://evil.example"}).text == "hooked"


def test_the_route_option_must_be_a_bool() -> None:
    app = App(debug=True)

    @app.post("/x", csrf="no")
    async def x() -> None:
        pass

    with pytest.raises(ConfigurationError, match="csrf must be True or False"):
        app.build()


def test_csrf_setting_off(make_app: MakeApp) -> None:
    app = csrf_app(make_app, csrf=False)
    with TestClient(app) as client:
        token_of(client)
        assert client.post("/change").text == "changed"


def test_verify_csrf_explicitly(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        # no session cookie at all: the explicit check still wants a token
        refused = client.post("/explicit")
        assert refused.status_code == 403 and detail(refused).startswith("CSRF token missing")
        token = token_of(client)
        assert client.post("/explicit", headers={"X-CSRF-Token": token}).text == "verified"


def test_rotate_gives_a_new_secret(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        old = token_of(client)
        assert client.post("/login", headers={"X-CSRF-Token": old}).text == "rotated"
        stale = client.post("/change", headers={"X-CSRF-Token": old})
        assert stale.status_code == 403 and detail(stale).startswith("CSRF token incorrect")
        fresh = token_of(client)
        assert client.post("/change", headers={"X-CSRF-Token": fresh}).text == "changed"


def test_a_token_from_another_session_is_refused(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as attacker:
        stolen = token_of(attacker)
    with TestClient(app) as victim:
        token_of(victim)
        response = victim.post("/change", headers={"X-CSRF-Token": stolen})
        assert response.status_code == 403


# -- origins ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Origin": "http://testserver"}, True),
        ({"Origin": "http://TestServer:80"}, True),
        ({"Origin": "https://testserver"}, False),  # another scheme is another origin
        ({"Origin": "http://testserver:8080"}, False),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Referer": "http://testserver/form?x=1"}, True),
        ({"Referer": "https://evil.example/page"}, False),
        ({"Referer": "not a url"}, False),
        ({}, True),  # neither header: the token decides
    ],
)
def test_origin_check(make_app: MakeApp, headers: dict[str, str], allowed: bool) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        token = token_of(client)
        response = client.post("/change", headers={"X-CSRF-Token": token, **headers})
        if allowed:
            assert response.status_code == 200
        else:
            assert response.status_code == 403
            assert detail(response).startswith("Origin not allowed")


def test_origin_wins_over_referer(make_app: MakeApp) -> None:
    app = csrf_app(make_app)
    with TestClient(app) as client:
        token = token_of(client)
        response = client.post(
            "/change",
            headers={
                "X-CSRF-Token": token,
                "Origin": "https://evil.example",
                "Referer": "http://testserver/",
            },
        )
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://api.partner.example", True),
        ("https://deep.api.partner.example", True),
        ("https://partner.example", False),  # the wildcard is for subdomains
        ("http://app.example.com", False),
        ("https://app.example.com:8443", False),
    ],
)
def test_trusted_origins(make_app: MakeApp, origin: str, allowed: bool) -> None:
    app = csrf_app(
        make_app,
        csrf_trusted_origins="https://app.example.com, https://*.partner.example",
    )
    with TestClient(app) as client:
        token = token_of(client)
        response = client.post("/change", headers={"X-CSRF-Token": token, "Origin": origin})
        assert (response.status_code == 200) is allowed


def test_origin_behind_a_trusted_proxy(make_app: MakeApp) -> None:
    app = csrf_app(make_app, trusted_proxies=["*"], allowed_hosts=["shop.example"])
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
    with TestClient(app, base_url="http://shop.example", headers=forwarded) as client:
        token = token_of(client)
        # The cookie is Secure (the proxy says HTTPS): httpx keeps it off plain http, so it
        # is sent by hand, as the proxy would pass it on.
        cookie = {"Cookie": f"session={client.cookies.get('session')}", "X-CSRF-Token": token}
        ok = client.post("/change", headers={**cookie, "Origin": "https://shop.example"})
        assert ok.status_code == 200
        plain = client.post("/change", headers={**cookie, "Origin": "http://shop.example"})
        assert plain.status_code == 403


def test_trusted_origins_must_be_origins() -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        TrustedOrigins(["example.com"])
    with pytest.raises(ValueError, match="is not an origin"):
        TrustedOrigins(["https://example.com/path"])
    with pytest.raises(ConfigurationError, match="csrf_trusted_origins"):
        App(debug=True, csrf_trusted_origins=["example.com"])


# -- websockets -------------------------------------------------------------------------------


def ws_app(make_app: MakeApp, **settings: Any) -> App:
    app = csrf_app(make_app, **settings)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")

    @app.websocket("/public", csrf=False)
    async def public(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("public")

    return app


def test_cross_site_websocket_with_the_cookie_is_refused(make_app: MakeApp) -> None:
    app = ws_app(make_app)
    with TestClient(app) as client:
        token_of(client)  # the browser has the session cookie
        with (
            pytest.raises(WebSocketDenied) as denied,
            client.websocket_connect("/ws", headers={"origin": "https://evil.example"}),
        ):
            pass
        assert denied.value.status == 403
        assert "Origin not allowed" in denied.value.json()["detail"]
        with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
            assert ws.receive_text() == "hello"
        with client.websocket_connect("/ws") as ws:  # no Origin: not a browser
            assert ws.receive_text() == "hello"
        with client.websocket_connect("/public", headers={"origin": "https://evil.example"}) as ws:
            assert ws.receive_text() == "public"


def test_cross_site_websocket_without_the_cookie_is_allowed(make_app: MakeApp) -> None:
    app = ws_app(make_app)
    with (
        TestClient(app) as client,
        client.websocket_connect("/ws", headers={"origin": "https://evil.example"}) as ws,
    ):
        assert ws.receive_text() == "hello"


def test_trusted_origin_may_open_a_websocket(make_app: MakeApp) -> None:
    app = ws_app(make_app, csrf_trusted_origins=["https://app.example"])
    with TestClient(app) as client:
        token_of(client)
        with client.websocket_connect("/ws", headers={"origin": "https://app.example"}) as ws:
            assert ws.receive_text() == "hello"


def test_websocket_over_tls_compares_with_https(make_app: MakeApp) -> None:
    app = ws_app(make_app)
    with TestClient(app, base_url="https://testserver") as client:
        token_of(client)
        # the Secure cookie is not in the jar for ws://, so send it by hand
        value = client.cookies.get("session")
        assert value
        headers = {"origin": "https://testserver", "cookie": f"session={value}"}
        with client.websocket_connect("/ws", headers=headers) as ws:
            assert ws.receive_text() == "hello"


def test_verify_csrf_needs_sessions() -> None:
    app = App(debug=False, secret_key=SECRET, sessions=False)

    @app.post("/x")
    async def x(request: Request) -> str:
        with pytest.raises(ConfigurationError, match="sessions are turned off"):
            await verify_csrf(request)
        return "ok"

    with TestClient(app) as client:
        assert client.post("/x", headers={"X-CSRF-Token": "abc"}).text == "ok"
