"""The Request object, through an App and its handlers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from trellis import App, Request
from trellis.http.forms import UploadFile
from trellis.testing import AsyncTestClient, TestClient
from trellis.types import Message, Receive, Scope, Send

# --- helpers --------------------------------------------------------------------------------


def make_app(**options: Any) -> App:
    return App(debug=True, **options)


def echo_app(
    fn: Callable[[Request], Any], path: str = "/", methods: Iterable[str] = ("GET",)
) -> App:
    """An app whose only route returns ``fn(request)`` (awaited when it is a coroutine)."""
    app = make_app()

    @app.route(path, methods=tuple(methods))
    async def handler(request: Request) -> Any:
        result = fn(request)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    return app


@dataclass
class Sent:
    status: int | None
    headers: dict[str, str]
    body: bytes
    messages: list[Message]


async def drive(
    app: App,
    *,
    method: str = "GET",
    path: str = "/",
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    chunks: Iterable[bytes] = (b"",),
    client: tuple[str, int] | None = ("127.0.0.1", 5000),
    root_path: str = "",
    disconnect: bool = False,
) -> Sent:
    """Call ``app`` with a hand-made scope; the body arrives as ``chunks`` (then disconnect)."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": root_path,
        "headers": [(b"host", b"testserver"), *headers],
        "client": client,
        "server": ("testserver", 80),
        "state": {},
    }
    pending = list(chunks)
    messages: list[Message] = []

    async def receive() -> Message:
        if pending:
            chunk = pending.pop(0)
            if disconnect and not pending:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)

    await asyncio.wait_for(app(scope, receive, send), 5)
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    return Sent(
        status=start["status"] if start else None,
        headers={k.decode(): v.decode("latin-1") for k, v in start["headers"]} if start else {},
        body=b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body"),
        messages=messages,
    )


# --- method, path, url ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_method(method: str) -> None:
    app = echo_app(lambda r: r.method, methods=[method])
    with TestClient(app) as client:
        assert client.request(method, "/").text == method


@pytest.mark.parametrize("sync", [True, False], ids=["sync-handler", "async-handler"])
def test_request_in_sync_and_async_handlers(sync: bool) -> None:
    app = make_app()

    def describe(request: Request) -> dict[str, Any]:
        return {
            "method": request.method,
            "path": request.path,
            "url": str(request.url),
            "q": request.query.getlist("q"),
            "h": request.headers.get("x-h"),
            "c": request.cookies.get("c"),
            "client": list(request.client or ()),
        }

    if sync:

        @app.get("/x")
        def sync_handler(request: Request) -> dict[str, Any]:
            return describe(request)

    else:

        @app.get("/x")
        async def async_handler(request: Request) -> dict[str, Any]:
            return describe(request)

    with TestClient(app) as client:
        data = client.get("/x?q=1&q=2", headers={"x-h": "v", "cookie": "c=k"}).json()
    assert data == {
        "method": "GET",
        "path": "/x",
        "url": "http://testserver/x?q=1&q=2",
        "q": ["1", "2"],
        "h": "v",
        "c": "k",
        "client": ["testclient", 50000],
    }


def test_request_is_found_by_annotation_or_by_name() -> None:
    app = make_app()

    @app.get("/a")
    async def by_annotation(req: Request) -> str:
        return req.path

    @app.get("/b")
    async def by_name(request) -> str:  # type: ignore[no-untyped-def]
        return str(request.path)

    with TestClient(app) as client:
        assert client.get("/a").text == "/a"
        assert client.get("/b").text == "/b"


@pytest.mark.parametrize(
    ("base_url", "target", "expected"),
    [
        ("http://testserver", "/p?x=1&y=%20", "http://testserver/p?x=1&y=%20"),
        ("https://testserver", "/p", "https://testserver/p"),
        ("http://example.com:8080", "/p", "http://example.com:8080/p"),
        ("http://testserver", "/a%20b/%C3%A9", "http://testserver/a%20b/%C3%A9"),
        ("http://testserver", "/100%25", "http://testserver/100%25"),
    ],
)
def test_url(base_url: str, target: str, expected: str) -> None:
    app = make_app()

    @app.get("/{rest:path}")
    async def any_path(request: Request) -> dict[str, Any]:
        url = request.url
        return {"url": str(url), "scheme": url.scheme, "netloc": url.netloc, "path": url.path}

    with TestClient(app, base_url=base_url) as client:
        data = client.get(target).json()
    assert data["url"] == expected
    assert data["scheme"] == base_url.split(":")[0]


def test_url_parts_and_base_url() -> None:
    app = echo_app(
        lambda r: {
            "scheme": r.url.scheme,
            "host": r.url.hostname,
            "port": r.url.port,
            "path": r.url.path,
            "query": r.url.query,
            "base": str(r.base_url),
            "is_secure": r.url.is_secure,
        },
        path="/things/{id}",
    )
    with TestClient(app, base_url="https://example.org:8443") as client:
        data = client.get("/things/7?sort=name").json()
    assert data == {
        "scheme": "https",
        "host": "example.org",
        "port": 8443,
        "path": "/things/7",
        "query": "sort=name",
        "base": "https://example.org:8443/",
        "is_secure": True,
    }


def test_path_is_decoded() -> None:
    app = echo_app(lambda r: r.path, path="/{rest:path}")
    with TestClient(app) as client:
        assert client.get("/a%20b/%C3%A9").text == "/a b/é"


@pytest.mark.anyio
async def test_root_path_from_the_server_is_in_url_and_base_url() -> None:
    # uvicorn --root-path /api puts the root path inside ``path`` too.
    app = echo_app(
        lambda r: {"url": str(r.url), "base": str(r.base_url), "path": r.path}, path="/users"
    )
    sent = await drive(app, path="/api/users", root_path="/api", query=b"a=1")
    assert sent.status == 200
    assert json.loads(sent.body) == {
        "url": "http://testserver/api/users?a=1",
        "base": "http://testserver/api/",
        "path": "/api/users",
    }


def test_root_path_of_a_mounted_app() -> None:
    sub = make_app()

    @sub.get("/x")
    async def inner(request: Request) -> dict[str, Any]:
        return {
            "url": str(request.url),
            "base": str(request.base_url),
            "root": request.scope["root_path"],
        }

    app = make_app()
    app.mount("/sub", sub)
    with TestClient(app) as client:
        data = client.get("/sub/x?q=1").json()
    assert data == {
        "url": "http://testserver/sub/x?q=1",
        "base": "http://testserver/sub/",
        "root": "/sub",
    }


def test_root_path_of_the_test_client() -> None:
    app = echo_app(lambda r: {"url": str(r.url), "base": str(r.base_url)}, path="/x")
    with TestClient(app, root_path="/api") as client:
        data = client.get("/x").json()
    assert data == {"url": "http://testserver/api/x", "base": "http://testserver/api/"}


def test_url_for_from_request() -> None:
    app = make_app()

    @app.get("/users/{id:int}", name="user")
    async def user(id: int) -> int:
        return id

    @app.get("/")
    async def index(request: Request) -> str:
        return request.url_for("user", id=5, tab="a b")

    with TestClient(app) as client:
        assert client.get("/").text == "/users/5?tab=a+b"


def test_url_for_keeps_the_root_path_of_a_mount() -> None:
    sub = make_app()

    @sub.get("/items/{id:int}", name="item")
    async def item(request: Request, id: int) -> str:
        return request.url_for("item", id=id + 1)

    app = make_app()
    app.mount("/shop", sub)
    with TestClient(app) as client:
        assert client.get("/shop/items/1").text == "/shop/items/2"


@pytest.mark.anyio
async def test_url_for_keeps_the_root_path_of_the_server() -> None:
    app = make_app()

    @app.get("/items/{id:int}", name="item")
    async def item(request: Request, id: int) -> str:
        return request.url_for("item", id=id + 1)

    sent = await drive(app, path="/api/items/1", root_path="/api")
    assert sent.body == b"/api/items/2"


def test_app_property() -> None:
    app = echo_app(lambda r: r.app is r.scope["app"])
    with TestClient(app) as client:
        assert client.get("/").json() is True


def test_repr() -> None:
    app = echo_app(lambda r: repr(r), path="/r")
    with TestClient(app) as client:
        assert client.get("/r").text == "<Request GET '/r'>"


# --- path params ----------------------------------------------------------------------------


def test_path_params() -> None:
    app = make_app()

    @app.get("/users/{uid:int}/files/{name}")
    async def handler(request: Request, uid: int, name: str) -> dict[str, Any]:
        return {"params": request.path_params, "uid": uid, "name": name}

    with TestClient(app) as client:
        data = client.get("/users/42/files/a%20b.txt").json()
    assert data == {"params": {"uid": 42, "name": "a b.txt"}, "uid": 42, "name": "a b.txt"}


def test_path_params_empty_without_parameters() -> None:
    app = echo_app(lambda r: r.path_params)
    with TestClient(app) as client:
        assert client.get("/").json() == {}


def test_path_param_converter_refuses_bad_values() -> None:
    app = make_app()

    @app.get("/n/{n:int}")
    async def handler(n: int) -> int:
        return n

    with TestClient(app) as client:
        assert client.get("/n/12").json() == 12
        assert client.get("/n/abc").status_code == 404


# --- query ----------------------------------------------------------------------------------


def test_query_multi_dict() -> None:
    app = echo_app(
        lambda r: {
            "tags": r.query.getlist("tag"),
            "last": r.query["tag"],
            "get": r.query.get("missing", "default"),
            "blank": r.query["blank"],
            "flag": r.query["flag"],
            "decoded": r.query["name"],
            "items": r.query.multi_items(),
            "same": r.query is r.query_params,
        }
    )
    with TestClient(app) as client:
        data = client.get("/?tag=a&tag=b&blank=&flag&name=J%C3%A9+R").json()
    assert data == {
        "tags": ["a", "b"],
        "last": "b",
        "get": "default",
        "blank": "",
        "flag": "",
        "decoded": "Jé R",
        "items": [["tag", "a"], ["tag", "b"], ["blank", ""], ["flag", ""], ["name", "Jé R"]],
        "same": True,
    }


@pytest.mark.anyio
async def test_query_with_invalid_escapes_and_raw_bytes() -> None:
    app = echo_app(lambda r: r.query.multi_items())
    sent = await drive(app, query=b"a=%zz&b=%ff&c=\xc3\xa9&d=\xff")
    assert sent.status == 200
    assert json.loads(sent.body) == [["a", "%zz"], ["b", "\ufffd"], ["c", "é"], ["d", "\ufffd"]]


def test_missing_query_key_is_a_key_error() -> None:
    # Reading a key that is not there from a handler is a bug in the handler: 500.
    app = echo_app(lambda r: r.query["nope"])
    with TestClient(app) as client:
        assert client.get("/").status_code == 500


# --- headers --------------------------------------------------------------------------------


def test_headers_case_insensitive_multi_dict() -> None:
    app = echo_app(
        lambda r: {
            "get": r.headers.get("X-Custom"),
            "item": r.headers["x-CUSTOM"],
            "all": r.headers.getlist("x-custom"),
            "in": "X-CUSTOM" in r.headers,
            "absent": r.headers.get("x-absent"),
            "ua": r.headers["user-agent"],
            "ctype": r.content_type,
        }
    )
    with TestClient(app) as client:
        data = client.get(
            "/",
            headers=[
                ("X-Custom", "one"),
                ("x-custom", "two"),
                ("User-Agent", "t/1"),
                ("Content-Type", "Application/JSON; charset=utf-8"),
            ],
        ).json()
    assert data == {
        "get": "one",
        "item": "one",
        "all": ["one", "two"],
        "in": True,
        "absent": None,
        "ua": "t/1",
        "ctype": "application/json",
    }


def test_content_type_absent() -> None:
    app = echo_app(lambda r: r.content_type)
    with TestClient(app) as client:
        assert client.get("/").text == ""


@pytest.mark.anyio
async def test_headers_with_latin1_bytes() -> None:
    app = echo_app(lambda r: r.headers["x-name"])
    sent = await drive(app, headers=[(b"x-name", "café".encode("latin-1"))])
    assert sent.body.decode() == "café"


# --- cookies --------------------------------------------------------------------------------


def test_cookies() -> None:
    app = echo_app(lambda r: r.cookies)
    with TestClient(app) as client:
        data = client.get("/", headers={"cookie": 'session=abc; theme="dark"; empty='}).json()
    assert data == {"session": "abc", "theme": "dark", "empty": ""}


def test_no_cookie_header() -> None:
    app = echo_app(lambda r: r.cookies)
    with TestClient(app) as client:
        assert client.get("/").json() == {}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"a=1; a=2", {"a": "1"}),  # the first occurrence wins
        (b"a=1;;; b=2 ;", {"a": "1", "b": "2"}),
        (b"flag; a=1", {"": "flag", "a": "1"}),  # no "=": kept under "" as browsers do
        (b"a=b=c", {"a": "b=c"}),
        (b'a="unterminated', {"a": '"unterminated'}),
        (b'a=""', {"a": ""}),
        (b"=", {}),
        (b";", {}),
        (b"   ", {}),
        (b"\xff\xfe=\x00; ok=1", {"\xff\xfe": "\x00", "ok": "1"}),
        (b"a=1, b=2", {"a": "1, b=2"}),
        (b"$Version=1; a=1; $Path=/", {"$Version": "1", "a": "1", "$Path": "/"}),
    ],
)
@pytest.mark.anyio
async def test_malformed_cookie_header_never_crashes(
    header: bytes, expected: dict[str, str]
) -> None:
    app = echo_app(lambda r: r.cookies)
    sent = await drive(app, headers=[(b"cookie", header)])
    assert sent.status == 200
    assert json.loads(sent.body) == expected


@pytest.mark.anyio
async def test_several_cookie_headers_are_read_as_one() -> None:
    # HTTP/2 servers may pass one Cookie header per cookie (RFC 9113, 8.2.3).
    app = echo_app(lambda r: r.cookies)
    headers = [(b"cookie", b"a=1"), (b"cookie", b"b=2; a=3")]
    sent = await drive(app, headers=headers)
    assert json.loads(sent.body) == {"a": "1", "b": "2"}


# --- client ---------------------------------------------------------------------------------


def test_client_from_test_client() -> None:
    app = echo_app(lambda r: list(r.client or ()))
    with TestClient(app) as client:
        assert client.get("/").json() == ["testclient", 50000]


@pytest.mark.parametrize(
    ("peer", "expected"), [(("192.0.2.7", 1234), ["192.0.2.7", 1234]), (None, None)]
)
@pytest.mark.anyio
async def test_client_from_the_server(peer: tuple[str, int] | None, expected: Any) -> None:
    app = echo_app(lambda r: {"client": list(r.client) if r.client else None})
    sent = await drive(app, client=peer)
    assert json.loads(sent.body) == {"client": expected}


def test_client_ignores_forwarded_for_without_trusted_proxies() -> None:
    app = echo_app(lambda r: [r.client, r.scheme, r.host])
    with TestClient(app) as client:
        data = client.get(
            "/",
            headers={
                "x-forwarded-for": "203.0.113.9",
                "x-forwarded-proto": "https",
                "x-forwarded-host": "evil.example",
            },
        ).json()
    assert data == [["testclient", 50000], "http", "testserver"]


def test_scheme_and_host_without_proxy() -> None:
    app = echo_app(lambda r: [r.scheme, r.host])
    with TestClient(app, base_url="https://shop.example:8443") as client:
        assert client.get("/").json() == ["https", "shop.example:8443"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "port"),
    [(b"example.com:8080", 8080), (b"example.com:abc", None), (b"example.com:99999", None)],
)
async def test_bad_host_header_does_not_break_url(host: bytes, port: int | None) -> None:
    app = echo_app(lambda r: {"port": r.url.port, "host": r.host, "base": str(r.base_url)})

    async def with_host(scope: Scope, receive: Receive, send: Send) -> None:
        scope["headers"] = [(b"host", host)]
        await app(scope, receive, send)

    sent = await drive(with_host)  # type: ignore[arg-type]
    assert sent.status == 200
    assert json.loads(sent.body) == {
        "port": port,
        "host": host.decode(),
        "base": f"http://{host.decode()}/",
    }


@pytest.mark.anyio
async def test_host_without_host_header() -> None:
    app = echo_app(lambda r: r.host)

    async def no_host(scope: Scope, receive: Receive, send: Send) -> None:
        scope["headers"] = [h for h in scope["headers"] if h[0] != b"host"]
        await app(scope, receive, send)

    sent = await drive(no_host)  # type: ignore[arg-type]
    assert sent.body == b"localhost"


# --- state ----------------------------------------------------------------------------------


def test_state_set_by_middleware_and_hooks_is_seen_by_the_handler() -> None:
    app = make_app()

    class Tag:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope.setdefault("state", {})["tag"] = "from-middleware"
            await self.inner(scope, receive, send)

    app.add_middleware(Tag)

    @app.before_request
    async def load_user(request: Request) -> None:
        request.state.user = "ann"

    @app.get("/")
    async def handler(request: Request) -> dict[str, Any]:
        return {
            "tag": request.state.tag,
            "user": request.state.user,
            "missing": request.state.get("nope", "dflt"),
            "has": "user" in request.state,
        }

    with TestClient(app) as client:
        assert client.get("/").json() == {
            "tag": "from-middleware",
            "user": "ann",
            "missing": "dflt",
            "has": True,
        }


def test_state_missing_attribute_is_a_500_naming_it() -> None:
    app = echo_app(lambda r: r.state.user)
    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert "state has no attribute 'user'" in response.json()["exception"]


def test_state_is_per_request() -> None:
    app = make_app()

    @app.get("/")
    async def handler(request: Request) -> bool:
        seen = "count" in request.state
        request.state.count = 1
        return seen

    with TestClient(app) as client:
        assert client.get("/").json() is False
        assert client.get("/").json() is False


def test_lifespan_state_reaches_request_state() -> None:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"db": "connected"}

    app = make_app(lifespan=lifespan)

    @app.get("/")
    async def handler(request: Request) -> Any:
        return [request.state.db, request.app.state.db]

    with TestClient(app) as client:
        assert client.get("/").json() == ["connected", "connected"]


# --- body and stream ------------------------------------------------------------------------


def body_app() -> App:
    app = make_app()

    @app.post("/body")
    async def body(request: Request) -> dict[str, Any]:
        first = await request.body()
        second = await request.body()
        return {"len": len(first), "same": first is second, "text": first.decode("latin-1")}

    @app.post("/stream")
    async def stream(request: Request) -> dict[str, Any]:
        chunks = [chunk async for chunk in request.stream()]
        return {"chunks": [c.decode() for c in chunks]}

    @app.post("/body-then-stream")
    async def body_then_stream(request: Request) -> list[str]:
        await request.body()
        return [c.decode() async for c in request.stream()]

    @app.post("/stream-twice")
    async def stream_twice(request: Request) -> int:
        async for _ in request.stream():
            pass
        async for _ in request.stream():
            pass
        return 0

    @app.post("/stream-then-body")
    async def stream_then_body(request: Request) -> int:
        async for _ in request.stream():
            pass
        return len(await request.body())

    return app


def test_body() -> None:
    with TestClient(body_app()) as client:
        assert client.post("/body", content=b"hello").json() == {
            "len": 5,
            "same": True,
            "text": "hello",
        }
        assert client.post("/body").json() == {"len": 0, "same": True, "text": ""}
        binary = bytes(range(256))
        assert client.post("/body", content=binary).json()["text"] == binary.decode("latin-1")


@pytest.mark.anyio
async def test_stream_yields_chunks_as_they_arrive() -> None:
    sent = await drive(body_app(), method="POST", path="/stream", chunks=[b"ab", b"", b"cd", b"e"])
    assert json.loads(sent.body) == {"chunks": ["ab", "cd", "e"]}


@pytest.mark.anyio
async def test_body_joins_chunks() -> None:
    sent = await drive(body_app(), method="POST", path="/body", chunks=[b"ab", b"cd"])
    assert json.loads(sent.body)["text"] == "abcd"


def test_stream_after_body_gives_the_cached_body() -> None:
    with TestClient(body_app()) as client:
        assert client.post("/body-then-stream", content=b"xyz").json() == ["xyz"]


@pytest.mark.parametrize("path", ["/stream-twice", "/stream-then-body"])
def test_body_cannot_be_streamed_twice(path: str) -> None:
    with TestClient(body_app()) as client:
        response = client.post(path, content=b"xyz")
    assert response.status_code == 500
    assert "already consumed" in response.json()["exception"]


@pytest.mark.anyio
async def test_client_disconnect_while_reading_the_body_sends_nothing() -> None:
    reached: list[str] = []
    app = make_app()

    @app.post("/")
    async def handler(request: Request) -> str:
        await request.body()
        reached.append("after body")
        return "unreachable"

    sent = await drive(app, method="POST", chunks=[b"part", b"rest"], disconnect=True)
    assert reached == []
    assert sent.messages == []


@pytest.mark.anyio
async def test_is_disconnected_keeps_the_body() -> None:
    app = make_app()

    @app.post("/")
    async def handler(request: Request) -> list[Any]:
        before = await request.is_disconnected()
        again = await request.is_disconnected()
        body = await request.body()
        after = await request.is_disconnected()
        return [before, again, body.decode(), after, await request.is_disconnected()]

    sent = await drive(app, method="POST", chunks=[b"abc"])
    assert json.loads(sent.body) == [False, False, "abc", True, True]


@pytest.mark.anyio
async def test_is_disconnected_while_streaming() -> None:
    app = make_app()

    @app.post("/")
    async def handler(request: Request) -> list[Any]:
        seen: list[Any] = []
        async for chunk in request.stream():
            seen.append(chunk.decode())
            seen.append(await request.is_disconnected())
        return seen

    sent = await drive(app, method="POST", chunks=[b"a", b"b", b"c"])
    assert json.loads(sent.body) == ["a", False, "b", False, "c", True]


@pytest.mark.anyio
async def test_is_disconnected_when_the_client_left() -> None:
    app = make_app()
    answers: list[bool] = []

    @app.get("/")
    async def handler(request: Request) -> str:
        answers.append(await request.is_disconnected())
        return "x"

    await drive(app, chunks=[])
    assert answers == [True]


# --- json -----------------------------------------------------------------------------------


def json_app(**options: Any) -> App:
    app = make_app(**options)

    @app.post("/json")
    async def handler(request: Request) -> Any:
        first = await request.json()
        assert first is await request.json()  # parsed once
        return {"got": first}

    @app.post("/body-then-json")
    async def body_then_json(request: Request) -> Any:
        await request.body()
        return await request.json()

    return app


@pytest.mark.parametrize(
    "value", [{"a": [1, 2.5, None, True]}, [1, 2], "text", 3, None, {"é": "ü ☃"}]
)
def test_json(value: Any) -> None:
    body = json.dumps(value).encode()
    with TestClient(json_app()) as client:
        assert client.post("/json", content=body).json() == {"got": value}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", None, "application/xml"]
)
def test_json_ignores_the_content_type(content_type: str | None) -> None:
    # request.json() parses the body whatever the Content-Type says (as Starlette does);
    # check request.content_type yourself to insist on application/json.
    headers = {"content-type": content_type} if content_type else {}
    with TestClient(json_app()) as client:
        response = client.post("/json", content=b'{"a": 1}', headers=headers)
    assert response.json() == {"got": {"a": 1}}


@pytest.mark.parametrize(
    "body",
    [
        b"{bad",
        b"",
        b"   ",
        b"{'single': 1}",
        b"[1, 2,]",
        b"NaN",
        b'"\xff"',  # not UTF-8
        b"[" * 2000 + b"]" * 2000,  # nested too deep
        b'{"a": 1} trailing',
    ],
)
def test_invalid_json_is_a_400_problem(body: bytes) -> None:
    with TestClient(json_app()) as client:
        response = client.post("/json", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400
    assert problem["title"] == "Bad Request"
    assert problem["detail"].startswith("Invalid JSON body")
    assert problem["instance"] == "/json"


def test_invalid_json_for_a_browser_is_an_html_page() -> None:
    with TestClient(json_app()) as client:
        response = client.post("/json", content=b"{", headers={"accept": "text/html"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Invalid JSON body" in response.text


def test_json_after_body() -> None:
    with TestClient(json_app()) as client:
        assert client.post("/body-then-json", json={"a": 1}).json() == {"a": 1}


def test_json_is_held_to_max_json_size() -> None:
    with TestClient(json_app(max_json_size=20)) as client:
        assert client.post("/json", content=b'{"a": "0123456789"}').status_code == 200
        response = client.post("/json", content=b'{"a": "0123456789abc"}')
        assert response.status_code == 413
        assert "limit of 20" in response.json()["detail"]
        response = client.post("/body-then-json", content=b'{"a": "0123456789abc"}')
        assert response.status_code == 413


def test_max_json_size_does_not_limit_body() -> None:
    app = make_app(max_json_size=10)

    @app.post("/")
    async def handler(request: Request) -> int:
        return len(await request.body())

    with TestClient(app) as client:
        assert client.post("/", content=b"x" * 100).json() == 100


def test_json_with_tighter_body_limit() -> None:
    app = make_app()

    @app.post("/", max_body_size=5)
    async def handler(request: Request) -> Any:
        return await request.json()

    with TestClient(app) as client:
        assert client.post("/", content=b"[1,2]").json() == [1, 2]
        assert client.post("/", content=b"[1,2,3]").status_code == 413


# --- forms ----------------------------------------------------------------------------------


def form_app(kept: list[UploadFile] | None = None) -> App:
    app = make_app()

    @app.post("/form")
    async def handler(request: Request) -> dict[str, Any]:
        form = await request.form()
        assert form is await request.form()  # parsed once
        out: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if kept is not None:
                    kept.append(value)
                out.setdefault(key, []).append(
                    {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": value.size,
                        "data": (await value.read()).decode("latin-1"),
                    }
                )
            else:
                out.setdefault(key, []).append(value)
        return out

    @app.post("/body-then-form")
    async def body_then_form(request: Request) -> dict[str, Any]:
        raw = await request.body()
        form = await request.form()
        return {"raw": raw.decode(), "a": form.getlist("a")}

    return app


def test_form_urlencoded() -> None:
    with TestClient(form_app()) as client:
        response = client.post("/form", data={"name": "Jé R", "tag": ["a", "b"], "empty": ""})
    assert response.json() == {"name": ["Jé R"], "tag": ["a", "b"], "empty": [""]}


def test_form_multipart_with_file_upload() -> None:
    kept: list[UploadFile] = []
    payload = bytes(range(256)) * 10
    with TestClient(form_app(kept)) as client:
        response = client.post(
            "/form",
            data={"title": "holiday"},
            files=[
                ("photo", ("../../etc/beach.png", payload, "image/png")),
                ("notes", ("notes.txt", b"hello", "text/plain")),
            ],
        )
    assert response.status_code == 200
    data = response.json()
    assert data["title"] == ["holiday"]
    assert data["photo"] == [
        {
            "filename": "beach.png",  # reduced to its last segment
            "content_type": "image/png",
            "size": len(payload),
            "data": payload.decode("latin-1"),
        }
    ]
    assert data["notes"][0]["data"] == "hello"
    # Uploaded files are closed once the response is sent.
    assert len(kept) == 2
    assert all(upload.file.closed for upload in kept)


def test_form_multipart_without_files() -> None:
    with TestClient(form_app()) as client:
        response = client.post("/form", files={"a": (None, b"1")}, data={"b": "2"})
    assert response.json() == {"b": ["2"], "a": ["1"]}


def test_form_after_body() -> None:
    with TestClient(form_app()) as client:
        assert client.post("/body-then-form", data={"a": "1"}).json() == {
            "raw": "a=1",
            "a": ["1"],
        }


def test_empty_form() -> None:
    with TestClient(form_app()) as client:
        response = client.post(
            "/form", content=b"", headers={"content-type": "application/x-www-form-urlencoded"}
        )
    assert response.json() == {}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=zz", b"--zz\r\ngarbage"),
        ("multipart/form-data; boundary=zz", b"not multipart at all"),
        ("multipart/form-data", b"--zz\r\n\r\n--zz--\r\n"),  # no boundary
        ("multipart/form-data; boundary=", b""),
        (
            "multipart/form-data; boundary=zz",
            b"--zz\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--zz--\r\n",  # no name
        ),
        (
            "multipart/form-data; boundary=zz",
            b"--zz\r\n\r\nvalue\r\n--zz--\r\n",  # no Content-Disposition
        ),
        (
            "multipart/form-data; boundary=zz",
            b'--zz\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue',  # cut off
        ),
        ("application/x-www-form-urlencoded", b"a=%FF"),  # not UTF-8
    ],
)
def test_malformed_form_is_a_400(content_type: str, body: bytes) -> None:
    with TestClient(form_app()) as client:
        response = client.post("/form", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_form_with_another_content_type_is_a_415(content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with TestClient(form_app()) as client:
        response = client.post("/form", content=b"a=1", headers=headers)
    assert response.status_code == 415


# --- AsyncTestClient ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_request_through_the_async_client() -> None:
    app = json_app()
    async with AsyncTestClient(app) as client:
        response = await client.post("/json", json={"x": [1]})
    assert response.json() == {"got": {"x": [1]}}
