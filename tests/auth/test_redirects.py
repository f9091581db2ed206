"""safe_next: only this site's paths and origin get through; everything else is the default."""

from __future__ import annotations

import pytest

from trellis import App, RedirectResponse, Request
from trellis.contrib.auth.redirects import is_safe_next, safe_next
from trellis.testing import TestClient


def _request(host: str = "testserver", scheme: str = "http") -> Request:
    scope = {
        "type": "http",
        "scheme": scheme,
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
    }
    return Request(scope)


SAFE = [
    "/",
    "/account",
    "/account?tab=keys&x=1",
    "/account#security",
    "/search?q=a%20b",
    "/files/my%20doc",
    "/a/b/../c",
    "http://testserver/account",
    "http://TESTSERVER/account?x=1",
    "http://testserver:80/account",
]

UNSAFE = [
    "",
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "https://evil.example",
    "https://evil.example/account",
    "http://evil.example",
    "https://testserver/account",  # another scheme: another origin
    "http://testserver:8080/account",  # another port
    "http://testserver@evil.example/",
    "http://user:pw@testserver/",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "javascript://testserver/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "mailto:ann@example.com",
    "ftp://testserver/x",
    "account",
    "../account",
    "evil.example",
    " /account",
    "/account ",
    " //evil.example",
    "\t//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "\x00/account",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "/\u0085/evil.example",
    "/\u00a0/evil.example",
    "/\u3000/evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%09/evil.example",
    "/%0A/evil.example",
    "/%252F/evil.example",  # encoded twice
    "/%25252F/evil.example",
    "/%2525252F/x",  # more than the decode budget
    "https:evil.example",
    "http:/evil.example",
    "http://[::1",  # malformed host
    "http://testserver:99999/",  # bad port
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("value", SAFE)
def test_safe_values_pass(value: str) -> None:
    request = _request()
    assert is_safe_next(request, value)
    assert safe_next(request, value, "/default") == value


@pytest.mark.parametrize("value", UNSAFE)
def test_unsafe_values_fall_back(value: str) -> None:
    request = _request()
    assert not is_safe_next(request, value)
    assert safe_next(request, value, "/default") == "/default"


def test_none_is_the_default() -> None:
    assert safe_next(_request(), None) == "/"
    assert safe_next(_request(), None, "/home") == "/home"


def test_without_a_request_only_paths_pass() -> None:
    assert safe_next(None, "/account") == "/account"
    assert safe_next(None, "http://testserver/account") == "/"


def test_https_origin_with_default_port() -> None:
    request = _request("shop.example:443", "https")
    assert safe_next(request, "https://shop.example/cart") == "https://shop.example/cart"
    assert safe_next(request, "https://shop.example:443/cart") == "https://shop.example:443/cart"
    assert safe_next(request, "http://shop.example/cart") == "/"
    assert safe_next(request, "https://shop.example.evil.example/") == "/"


def test_non_ascii_is_percent_encoded_for_the_location_header() -> None:
    assert safe_next(_request(), "/café?q=thé") == "/caf%C3%A9?q=th%C3%A9"
    assert safe_next(_request(), "/100%") == "/100%"


def test_in_a_real_redirect() -> None:
    app = App(debug=True)

    @app.get("/go")
    async def go(request: Request, next: str | None = None) -> RedirectResponse:
        return RedirectResponse(safe_next(request, next, "/home"), status_code=303)

    with TestClient(app) as client:
        for target, expected in [
            ("/account?x=1", "/account?x=1"),
            ("//evil.example", "/home"),
            ("https://evil.example", "/home"),
            ("/\\evil.example", "/home"),
            ("http://testserver/ok", "http://testserver/ok"),
            ("/caf\u00e9", "/caf%C3%A9"),
        ]:
            response = client.get("/go", params={"next": target})
            assert response.status_code == 303
            assert response.headers["location"] == expected, target
