"""X-Forwarded-* headers: believed only when the peer is a configured trusted proxy.

The test client's peer is ``("testclient", 50000)``, not an IP address, so these tests call
the app with a hand-made scope whose ``client`` is the peer under test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from trellis import App, Request, Response
from trellis.datastructures import Headers
from trellis.exceptions import ConfigurationError
from trellis.http.proxy import TrustedProxies
from trellis.testing import TestClient
from trellis.types import Message, Scope

pytestmark = pytest.mark.anyio


def proxy_app(trusted: list[str] | None) -> App:
    options: dict[str, Any] = {} if trusted is None else {"trusted_proxies": trusted}
    app = App(debug=True, **options)

    @app.get("/{rest:path}")
    async def describe(request: Request) -> dict[str, Any]:
        return {
            "client": list(request.client) if request.client else None,
            "scheme": request.scheme,
            "host": request.host,
            "url": str(request.url),
            "base": str(request.base_url),
        }

    @app.get("/cookie")
    async def cookie() -> Response:
        response = Response("ok")
        response.set_cookie("sid", "abc")
        return response

    return app


async def call(
    app: App,
    peer: tuple[str, int] | None,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    *,
    path: str = "/p",
    query: bytes = b"",
    scheme: str = "http",
) -> tuple[int, list[tuple[bytes, bytes]], Any]:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"app.internal:8000")]
        + [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
        "client": peer,
        "server": ("app.internal", 8000),
        "state": {},
    }
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await asyncio.wait_for(app(scope, receive, send), 5)
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    data = json.loads(body) if body.startswith(b"{") else body.decode()
    return start["status"], start["headers"], data


FORWARDED = [
    ("x-forwarded-for", "203.0.113.9"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "shop.example"),
]

DIRECT = {
    "client": ["10.1.2.3", 4000],
    "scheme": "http",
    "host": "app.internal:8000",
    "url": "http://app.internal:8000/p",
    "base": "http://app.internal:8000/",
}

PROXIED = {
    "client": ["203.0.113.9", 0],
    "scheme": "https",
    "host": "shop.example",
    "url": "https://shop.example/p",
    "base": "https://shop.example/",
}


async def test_no_trusted_proxies_by_default() -> None:
    _, _, data = await call(proxy_app(None), ("10.1.2.3", 4000), FORWARDED)
    assert data == DIRECT


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [
        (["10.1.2.3"], "10.1.2.3"),
        (["10.0.0.0/8"], "10.1.2.3"),
        (["192.168.0.0/16", "10.1.0.0/16"], "10.1.2.3"),
        (["10.1.2.3/24"], "10.1.2.3"),  # host bits set: accepted as the network
        (["*"], "10.1.2.3"),
        (["::1"], "::1"),
        (["fd00::/8"], "fd12:3456::1"),
        (["127.0.0.1"], "::ffff:127.0.0.1"),  # an IPv4 peer on a dual-stack socket
    ],
)
async def test_trusted_peer_is_believed(trusted: list[str], peer: str) -> None:
    _, _, data = await call(proxy_app(trusted), (peer, 4000), FORWARDED)
    assert data == PROXIED


@pytest.mark.parametrize(
    ("trusted", "peer"),
    [
        (["127.0.0.1"], "10.1.2.3"),
        (["10.0.0.0/8"], "11.1.2.3"),
        (["10.0.0.0/8"], "testclient"),  # not an IP address
        (["10.0.0.0/8"], ""),
        (["::1"], "127.0.0.1"),
    ],
)
async def test_untrusted_peer_is_not_believed(trusted: list[str], peer: str) -> None:
    _, _, data = await call(proxy_app(trusted), (peer, 4000), FORWARDED)
    assert data["client"] == [peer, 4000]
    assert data["scheme"] == "http"
    assert data["host"] == "app.internal:8000"
    assert data["url"] == "http://app.internal:8000/p"


async def test_without_peer_address() -> None:
    _, _, data = await call(proxy_app(["10.0.0.0/8"]), None, FORWARDED)
    assert data["client"] is None
    assert data["scheme"] == "http"
    _, _, data = await call(proxy_app(["*"]), None, FORWARDED)
    assert data == PROXIED


def test_test_client_peer_is_never_a_trusted_ip() -> None:
    with TestClient(proxy_app(["127.0.0.1"])) as client:
        data = client.get("/p", headers=dict(FORWARDED)).json()
    assert data["client"] == ["testclient", 50000]
    assert data["scheme"] == "http"


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        (["203.0.113.9"], "203.0.113.9"),
        # The right-most address that is not a trusted proxy is the client; what is left of
        # it could be made up by the client itself.
        (["1.1.1.1, 203.0.113.9"], "203.0.113.9"),
        (["1.1.1.1, 203.0.113.9, 10.0.0.5"], "203.0.113.9"),
        (["1.1.1.1", "203.0.113.9, 10.0.0.5"], "203.0.113.9"),  # two headers, in order
        (["10.0.0.7, 10.0.0.5"], "10.0.0.7"),  # all trusted: the furthest one
        (["  203.0.113.9  ,, "], "203.0.113.9"),
        (["unknown"], "unknown"),
        (["2001:db8::1"], "2001:db8::1"),
    ],
)
async def test_forwarded_for_chain(forwarded_for: list[str], client: str) -> None:
    headers = [("x-forwarded-for", v) for v in forwarded_for]
    _, _, data = await call(proxy_app(["10.0.0.0/8"]), ("10.0.0.1", 1), headers)
    assert data["client"] == [client, 0]


@pytest.mark.parametrize("forwarded_for", [[], [""], [" , "]])
async def test_empty_forwarded_for_keeps_the_peer(forwarded_for: list[str]) -> None:
    headers = [("x-forwarded-for", v) for v in forwarded_for]
    _, _, data = await call(proxy_app(["10.0.0.0/8"]), ("10.0.0.1", 1), headers)
    assert data["client"] == ["10.0.0.1", 1]


@pytest.mark.parametrize(
    ("proto", "scheme"),
    [
        ("https", "https"),
        ("HTTPS", "https"),
        (" https ", "https"),
        ("http", "http"),
        ("https, http", "https"),  # the first value: what the client used
        ("ftp", "http"),  # not a web scheme: ignored
        ("javascript", "http"),
        ("", "http"),
    ],
)
async def test_forwarded_proto(proto: str, scheme: str) -> None:
    headers = [("x-forwarded-proto", proto)]
    _, _, data = await call(proxy_app(["10.0.0.0/8"]), ("10.0.0.1", 1), headers)
    assert data["scheme"] == scheme
    assert data["url"].startswith(scheme + "://")


async def test_forwarded_proto_does_not_downgrade_a_direct_https_connection() -> None:
    # Without the header the connection's own scheme stays.
    _, _, data = await call(proxy_app(["10.0.0.0/8"]), ("10.0.0.1", 1), [], scheme="https")
    assert data["scheme"] == "https"


@pytest.mark.parametrize(
    ("host", "expected"),
    [("shop.example", "shop.example"), ("a.example, b.example", "a.example"), ("", None)],
)
async def test_forwarded_host(host: str, expected: str | None) -> None:
    headers = [("x-forwarded-host", host)]
    _, _, data = await call(proxy_app(["10.0.0.0/8"]), ("10.0.0.1", 1), headers)
    assert data["host"] == (expected or "app.internal:8000")


async def test_url_keeps_path_and_query_behind_a_proxy() -> None:
    _, _, data = await call(
        proxy_app(["10.0.0.0/8"]), ("10.0.0.1", 1), FORWARDED, path="/a b", query=b"x=1"
    )
    assert data["url"] == "https://shop.example/a%20b?x=1"


async def test_secure_cookie_behind_a_trusted_https_proxy() -> None:
    app = proxy_app(["10.0.0.0/8"])
    https = [("x-forwarded-proto", "https")]
    _, headers, _ = await call(app, ("10.0.0.1", 1), https, path="/cookie")
    assert (b"set-cookie", b"sid=abc; Path=/; SameSite=Lax; HttpOnly; Secure") in headers
    # The same header from an untrusted peer changes nothing.
    _, headers, _ = await call(app, ("192.0.2.1", 1), https, path="/cookie")
    assert (b"set-cookie", b"sid=abc; Path=/; SameSite=Lax; HttpOnly") in headers
    # Nor from anyone when no proxy is trusted.
    _, headers, _ = await call(proxy_app(None), ("10.0.0.1", 1), https, path="/cookie")
    assert (b"set-cookie", b"sid=abc; Path=/; SameSite=Lax; HttpOnly") in headers


@pytest.mark.parametrize("bad", ["not-an-ip", "10.0.0.0/33", "300.1.1.1"])
def test_invalid_trusted_proxy_setting(bad: str) -> None:
    with pytest.raises((ConfigurationError, ValueError)):
        App(debug=True, trusted_proxies=[bad]).build()


def test_trusted_proxies_from_a_comma_list() -> None:
    app = App(debug=True, trusted_proxies="127.0.0.1, 10.0.0.0/8")
    app.build()
    assert app.settings.trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]


# --- TrustedProxies on its own --------------------------------------------------------------


def test_trusted_proxies_trusts() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "::1"])
    assert proxies.trusts("127.0.0.1")
    assert proxies.trusts("10.255.0.1")
    assert proxies.trusts("::1")
    assert not proxies.trusts("127.0.0.2")
    assert not proxies.trusts(None)
    assert not proxies.trusts("")
    assert not proxies.trusts("localhost")
    assert TrustedProxies(["*"]).trusts(None)
    assert not TrustedProxies([]).trusts("127.0.0.1")


def test_trusted_proxies_websocket_scheme() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    scope: Scope = {"type": "websocket", "scheme": "ws", "client": ("10.0.0.1", 1)}
    assert proxies.scheme(scope, Headers({"x-forwarded-proto": "https"})) == "wss"
    assert proxies.scheme(scope, Headers({"x-forwarded-proto": "http"})) == "ws"
    assert proxies.scheme(scope, Headers({})) == "ws"
