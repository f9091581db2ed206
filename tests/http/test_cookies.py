"""Cookies: reading the Cookie header, writing Set-Cookie with safe defaults, no injection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from trellis import App, Request, Response
from trellis.http.cookies import format_set_cookie, parse_cookie_header
from trellis.testing import TestClient


def cookie_app(fn: Callable[[Response], Any]) -> App:
    """An app whose ``/`` response goes through ``fn`` (to set cookies on it)."""
    app = App(debug=True)

    @app.get("/")
    async def index() -> Response:
        response = Response("ok")
        fn(response)
        return response

    return app


def set_cookie_headers(
    fn: Callable[[Response], Any], base_url: str = "http://testserver"
) -> list[str]:
    with TestClient(cookie_app(fn), base_url=base_url) as client:
        response = client.get("/")
    assert response.status_code == 200, response.text
    return response.headers.get_list("set-cookie")


# --- set_cookie through an app --------------------------------------------------------------


def test_set_cookie_defaults() -> None:
    headers = set_cookie_headers(lambda r: r.set_cookie("sid", "abc123"))
    assert headers == ["sid=abc123; Path=/; SameSite=Lax; HttpOnly"]


def test_set_cookie_is_secure_over_https() -> None:
    headers = set_cookie_headers(lambda r: r.set_cookie("sid", "abc"), "https://testserver")
    assert headers == ["sid=abc; Path=/; SameSite=Lax; HttpOnly; Secure"]


@pytest.mark.parametrize(
    ("secure", "base_url", "has_secure"),
    [
        (True, "http://testserver", True),
        (False, "https://testserver", False),
        (None, "http://testserver", False),
        (None, "https://testserver", True),
    ],
)
def test_set_cookie_explicit_secure(secure: bool | None, base_url: str, has_secure: bool) -> None:
    [header] = set_cookie_headers(lambda r: r.set_cookie("a", "1", secure=secure), base_url)
    assert ("; Secure" in header) is has_secure
    assert header.count("Secure") == int(has_secure)


def test_secure_is_added_per_cookie_left_alone_when_decided() -> None:
    def set_three(response: Response) -> None:
        response.set_cookie("auto", "1")
        response.set_cookie("never", "2", secure=False)
        response.set_cookie("always", "3", secure=True)

    assert set_cookie_headers(set_three, "https://testserver") == [
        "auto=1; Path=/; SameSite=Lax; HttpOnly; Secure",
        "never=2; Path=/; SameSite=Lax; HttpOnly",
        "always=3; Path=/; SameSite=Lax; Secure; HttpOnly",
    ]


def test_the_same_response_sent_over_http_and_https() -> None:
    # A response object may be shared (cached); Secure is decided per request, not stored.
    shared = Response("ok")
    shared.set_cookie("a", "1")
    app = App(debug=True)

    @app.get("/")
    async def index() -> Response:
        return shared

    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/").headers["set-cookie"].endswith("; Secure")
    with TestClient(app) as client:
        assert client.get("/").headers["set-cookie"] == "a=1; Path=/; SameSite=Lax; HttpOnly"


def test_set_cookie_every_attribute() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    def set_it(response: Response) -> None:
        response.set_cookie(
            "pref",
            "dark",
            max_age=3600,
            expires=when,
            path="/app",
            domain="example.com",
            secure=True,
            httponly=False,
            samesite="strict",
            partitioned=True,
        )

    assert set_cookie_headers(set_it) == [
        "pref=dark; Max-Age=3600; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Domain=example.com;"
        " Path=/app; SameSite=Strict; Secure; Partitioned"
    ]


def test_samesite_none_forces_secure() -> None:
    [header] = set_cookie_headers(lambda r: r.set_cookie("a", "1", samesite="none"))
    assert header == "a=1; Path=/; SameSite=None; Secure; HttpOnly"


def test_samesite_and_path_can_be_left_out() -> None:
    [header] = set_cookie_headers(lambda r: r.set_cookie("a", "1", samesite=None, path=None))
    assert header == "a=1; HttpOnly"


def test_several_cookies_are_several_headers() -> None:
    def set_two(response: Response) -> None:
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")

    assert set_cookie_headers(set_two) == [
        "a=1; Path=/; SameSite=Lax; HttpOnly",
        "b=2; Path=/; SameSite=Lax; HttpOnly",
    ]


def test_delete_cookie() -> None:
    [header] = set_cookie_headers(lambda r: r.delete_cookie("sid"))
    assert header == (
        "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=Lax; HttpOnly"
    )


def test_delete_cookie_with_path_and_domain_over_https() -> None:
    [header] = set_cookie_headers(
        lambda r: r.delete_cookie("sid", path="/app", domain="example.com"), "https://testserver"
    )
    assert "Domain=example.com; Path=/app" in header
    assert header.endswith("; Secure")


def test_test_client_forgets_a_deleted_cookie() -> None:
    app = App(debug=True)

    @app.get("/login")
    async def login() -> Response:
        response = Response("in")
        response.set_cookie("sid", "abc")
        return response

    @app.get("/logout")
    async def logout() -> Response:
        response = Response("out")
        response.delete_cookie("sid")
        return response

    @app.get("/who")
    async def who(request: Request) -> str:
        return request.cookies.get("sid", "nobody")

    with TestClient(app) as client:
        client.get("/login")
        assert client.get("/who").text == "abc"
        client.get("/logout")
        assert client.get("/who").text == "nobody"


# --- injection is refused -------------------------------------------------------------------

BAD_VALUES = [
    "a;b",
    "x\r\nSet-Cookie: evil=1",
    "x\nSet-Cookie: evil=1",
    "a b",
    "a,b",
    'a"b',
    "a\\b",
    "caf\u00e9",
    "a\x00b",
    "a\tb",
    "a\x7fb",
]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_set_cookie_refuses_unsafe_values(value: str) -> None:
    response = Response("ok")
    with pytest.raises(ValueError, match="encode it first"):
        response.set_cookie("a", value)
    assert response.headers.getlist("set-cookie") == []


@pytest.mark.parametrize(
    "name", ["", "a b", "a;b", "a=b", "a\r\nb", "a,b", "a\tb", "é", "a(b)", "a\x00"]
)
def test_set_cookie_refuses_unsafe_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid cookie name"):
        Response().set_cookie(name, "v")


@pytest.mark.parametrize("attr", ["path", "domain"])
@pytest.mark.parametrize("value", ["/a;b", "/a\r\nSet-Cookie: evil=1", "/a\x00", "/é"])
def test_set_cookie_refuses_unsafe_path_and_domain(attr: str, value: str) -> None:
    with pytest.raises(ValueError, match="has characters not allowed"):
        options: dict[str, Any] = {attr: value}
        Response().set_cookie("a", "1", **options)


def test_set_cookie_refuses_unknown_samesite() -> None:
    with pytest.raises(ValueError, match="samesite"):
        Response().set_cookie("a", "1", samesite="loose")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["a;b", "x\r\nSet-Cookie: evil=1"])
def test_injection_attempt_in_a_handler_is_a_500_without_the_header(value: str) -> None:
    app = App(debug=False, secret_key="k" * 40)

    @app.get("/")
    async def index(request: Request) -> Response:
        response = Response("ok")
        response.set_cookie("name", request.query["v"])
        return response

    with TestClient(app) as client:
        response = client.get("/", params={"v": value})
    assert response.status_code == 500
    assert "set-cookie" not in response.headers
    assert "evil" not in response.text
    assert "traceback" not in response.json()  # production: no details leak


def test_encoded_value_is_accepted() -> None:
    from urllib.parse import quote

    [header] = set_cookie_headers(lambda r: r.set_cookie("a", quote("x y;z,é")))
    assert header.startswith("a=x%20y%3Bz%2C%C3%A9;")


@pytest.mark.parametrize(
    "value", ["", "abc", "a=b", "!#$%&'()*+-./:<=>?@[]^_`{|}~", "eyJhbGciOi.J9.sig-_"]
)
def test_allowed_values(value: str) -> None:
    assert format_set_cookie("a", value).startswith(f"a={value};")


# --- format_set_cookie ------------------------------------------------------------------------


def test_expires_as_a_timestamp_or_a_datetime() -> None:
    assert "Expires=Thu, 01 Jan 1970 00:01:40 GMT" in format_set_cookie("a", expires=100)
    naive = datetime(2030, 1, 1, 12, 0, 0)  # naive: taken as UTC
    assert "Expires=Tue, 01 Jan 2030 12:00:00 GMT" in format_set_cookie("a", expires=naive)
    paris = datetime(2030, 1, 1, 13, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    assert "Expires=Tue, 01 Jan 2030 12:00:00 GMT" in format_set_cookie("a", expires=paris)


def test_max_age_is_an_integer() -> None:
    assert "Max-Age=90;" in format_set_cookie("a", max_age=90.7)  # type: ignore[arg-type]
    assert "Max-Age=0;" in format_set_cookie("a", max_age=0)


@pytest.mark.parametrize("samesite", ["lax", "LAX", "Strict", "none"])
def test_samesite_any_case(samesite: Any) -> None:
    header = format_set_cookie("a", samesite=samesite)
    assert f"SameSite={samesite.capitalize()}" in header


def test_format_minimal() -> None:
    assert format_set_cookie("a", httponly=False, samesite=None, path=None) == "a="


# --- parse_cookie_header --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=1", {"a": "1"}),
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ("a=1;b=2", {"a": "1", "b": "2"}),
        ('a="quoted value"', {"a": "quoted value"}),
        ('a="', {"a": '"'}),
        ("a=1; a=2", {"a": "1"}),
        ("  a  =  1  ", {"a": "1"}),
        ("a=", {"a": ""}),
        ("novalue", {"": "novalue"}),
        ("=x", {"": "x"}),
        ("", {}),
        (";;;", {}),
        ("a=%20", {"a": "%20"}),  # not decoded: values are the application's to decode
        ("a=é", {"a": "é"}),
        ("a=x=y=z", {"a": "x=y=z"}),
    ],
)
def test_parse_cookie_header(header: str, expected: dict[str, str]) -> None:
    assert parse_cookie_header(header) == expected


def test_parse_cookie_header_never_raises_on_junk() -> None:
    junk = "".join(chr(i) for i in range(256)) * 4
    assert isinstance(parse_cookie_header(junk), dict)
    assert isinstance(parse_cookie_header(";=;=;" * 1000), dict)
