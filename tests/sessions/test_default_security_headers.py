"""Security headers on by default, from settings, and off when asked.

``nosniff`` (and HSTS on HTTPS) go on every response; the headers a browser applies to a page
(framing, opener, referrer, content policy) go on documents: HTML, XHTML, SVG, XML.
"""

from __future__ import annotations

from typing import Any

import pytest
from session_helpers import SECRET

from trellis import App, Request, Response
from trellis.exceptions import ConfigurationError
from trellis.middleware import GZipMiddleware
from trellis.testing import TestClient
from trellis.types import Receive, Scope, Send

EVERY = {"x-content-type-options": "nosniff"}
DOCUMENT = {
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}
DEFAULTS = {**EVERY, **DOCUMENT}
HTML = {"Accept": "text/html"}


def make(**settings: Any) -> App:
    settings.setdefault("secret_key", SECRET)
    app = App(debug=False, **settings)

    @app.get("/json")
    async def json() -> dict[str, str]:
        return {"message": "hi"}

    @app.get("/page")
    async def page() -> Response:
        return Response("<p>hi</p>", media_type="text/html")

    @app.get("/drawing")
    async def drawing() -> Response:
        return Response("<svg/>", media_type="image/svg+xml")

    @app.get("/framed")
    async def framed() -> Response:
        return Response("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    @app.post("/login")
    async def login(request: Request) -> None:
        request.session["user"] = "ada"

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"mounted"})

    app.mount("/raw", raw)
    return app


def assert_defaults(response: Any) -> None:
    """A document (an HTML page) has every default header, once."""
    for name, value in DEFAULTS.items():
        assert response.headers.get_list(name) == [value], name


def assert_data_defaults(response: Any) -> None:
    """Data (JSON, text, files) has nosniff only."""
    for name, value in EVERY.items():
        assert response.headers.get_list(name) == [value], name
    for name in DOCUMENT:
        assert name not in response.headers, name


def test_on_by_default() -> None:
    with TestClient(make()) as client:
        assert_defaults(client.get("/page"))
        assert_defaults(client.head("/page"))
        assert_defaults(client.get("/drawing"))
        assert_defaults(client.get("/nowhere", headers=HTML))  # the 404 page
        assert_defaults(client.post("/json", headers=HTML))  # the 405 page
        assert_data_defaults(client.get("/json"))
        assert_data_defaults(client.head("/json"))
        assert_data_defaults(client.get("/nowhere"))  # a 404 problem document
        assert_data_defaults(client.post("/json"))  # 405
        assert_data_defaults(client.get("/raw/x"))  # a mounted app's answer too
        response = client.get("/page")
        assert "content-security-policy" not in response.headers
        assert "strict-transport-security" not in response.headers


def test_a_response_keeps_its_own_value() -> None:
    with TestClient(make()) as client:
        response = client.get("/framed")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_turned_off() -> None:
    with TestClient(make(security_headers=False)) as client:
        response = client.get("/json")
    for name in DEFAULTS:
        assert name not in response.headers


def test_content_security_policy_setting() -> None:
    with TestClient(make(content_security_policy="default-src 'self'")) as client:
        page = client.get("/page")
        data = client.get("/json")
    assert page.headers["content-security-policy"] == "default-src 'self'"
    assert "content-security-policy" not in data.headers


def test_hsts_only_on_https() -> None:
    app = make(hsts_seconds=31536000, hsts_include_subdomains=True, hsts_preload=True)
    with TestClient(app, base_url="https://testserver") as client:
        secure = client.get("/json")
        secure_page = client.get("/page")
    with TestClient(app) as client:
        plain = client.get("/page")
    hsts = "max-age=31536000; includeSubDomains; preload"
    assert secure.headers["strict-transport-security"] == hsts  # data too: HSTS is per host
    assert secure_page.headers["strict-transport-security"] == hsts
    assert_defaults(secure_page)
    assert "strict-transport-security" not in plain.headers
    assert_defaults(plain)


def test_hsts_behind_a_trusted_proxy() -> None:
    app = make(hsts_seconds=600, trusted_proxies=["*"])
    with TestClient(app) as client:
        via_proxy = client.get("/json", headers={"X-Forwarded-Proto": "https"})
        direct = client.get("/json")
    assert via_proxy.headers["strict-transport-security"] == "max-age=600"
    assert "strict-transport-security" not in direct.headers


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"hsts_include_subdomains": True}, "needs hsts_seconds > 0"),
        ({"hsts_seconds": 600, "hsts_include_subdomains": True, "hsts_preload": True}, "year"),
        ({"hsts_seconds": -1}, "hsts_seconds"),
    ],
)
def test_hsts_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        App(debug=True, **settings)


def test_a_bad_policy_is_refused_at_start_up() -> None:
    app = make(content_security_policy="default-src 'self'\r\nX-Evil: 1")
    with pytest.raises(ConfigurationError, match="line break"):
        app.build()


def test_with_app_middleware_the_headers_are_added_once() -> None:
    app = make(middleware=[(GZipMiddleware, {"minimum_size": 10})])
    with TestClient(app) as client:
        assert_defaults(client.get("/page"))
        assert_data_defaults(client.get("/json"))
        assert_defaults(client.get("/nowhere", headers=HTML))
        login = client.post("/login")
        assert login.headers.get_list("set-cookie")
        assert_data_defaults(login)


def test_session_cookie_and_headers_together() -> None:
    with TestClient(make()) as client:
        response = client.post("/login")
    assert response.status_code == 204
    assert response.headers["vary"] == "Cookie"
    assert response.headers["set-cookie"].startswith("session=")
    assert_data_defaults(response)  # a 204 is no document


def test_refused_host_gets_the_headers() -> None:
    with TestClient(make(), base_url="http://evil.example") as client:
        response = client.get("/json")
    assert response.status_code == 400
    assert_data_defaults(response)  # plain text


def test_too_many_headers_gets_the_headers() -> None:
    app = make(max_headers=5)
    headers = {f"x-h{i}": "1" for i in range(10)}
    with TestClient(app) as client:
        assert_defaults(client.get("/json", headers={**HTML, **headers}))
        assert_data_defaults(client.get("/json", headers=headers))
    with TestClient(make(max_headers=5, middleware=[(GZipMiddleware, {})])) as client:
        assert_defaults(client.get("/json", headers={**HTML, **headers}))
        assert_data_defaults(client.get("/json", headers=headers))
