from __future__ import annotations

from typing import Any

import pytest

from trellis import App, Request
from trellis.exceptions import ConfigurationError
from trellis.http.response import PlainTextResponse, Response, StreamingResponse
from trellis.middleware import ETagMiddleware, GZipMiddleware
from trellis.middleware.etag import etag_matches, make_etag
from trellis.testing import TestClient
from trellis.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

BODY = b"<p>the same page</p>"
TAG = make_etag(BODY).decode()
HTML = {"content-type": "text/html; charset=utf-8", "content-length": str(len(BODY))}


def test_make_etag_and_etag_matches() -> None:
    assert TAG.startswith('"') and TAG.endswith('"') and len(TAG) == 34
    assert make_etag(BODY) == make_etag(BODY)
    assert make_etag(BODY + b" ") != make_etag(BODY)
    assert make_etag(BODY, weak=True) == b"W/" + make_etag(BODY)
    tag = TAG.encode()
    assert etag_matches(tag, tag)
    assert etag_matches(b"W/" + tag, tag)  # weak comparison
    assert etag_matches(tag, b"W/" + tag)
    assert etag_matches(b'"other", ' + tag + b', W/"x"', tag)
    assert etag_matches(b"*", tag)
    assert etag_matches(b" * ", tag)
    assert not etag_matches(b'"other"', tag)
    assert not etag_matches(b"", tag)
    assert not etag_matches(tag[:-1], tag)  # an unquoted or broken tag names nothing


async def test_a_tag_is_added_and_the_body_untouched(asgi_client: Any, make_app: Any) -> None:
    async with asgi_client(ETagMiddleware(make_app(200, HTML, BODY))) as c:
        r = await c.get("/")
        again = await c.get("/")
    assert r.status_code == 200
    assert r.content == BODY
    assert r.headers["etag"] == TAG == again.headers["etag"]
    assert r.headers["content-length"] == str(len(BODY))


@pytest.mark.parametrize(
    "if_none_match",
    [TAG, f"W/{TAG}", f'"nope", {TAG}', "*", f'"nope",{TAG}'],
)
async def test_a_matching_if_none_match_gets_304(
    asgi_client: Any, make_app: Any, if_none_match: str
) -> None:
    headers = {
        **HTML,
        "cache-control": "max-age=60",
        "vary": "Accept-Language",
        "content-language": "en",
        "set-cookie": "seen=1; Path=/",
        "x-request-id": "abc",
    }
    async with asgi_client(ETagMiddleware(make_app(200, headers, BODY))) as c:
        r = await c.get("/", headers={"if-none-match": if_none_match})
    assert r.status_code == 304
    assert r.content == b""
    # Kept: what a 304 must carry, and the rest that is not about the body.
    assert r.headers["etag"] == TAG
    assert r.headers["cache-control"] == "max-age=60"
    assert r.headers["vary"] == "Accept-Language"
    assert r.headers["set-cookie"] == "seen=1; Path=/"
    assert r.headers["x-request-id"] == "abc"
    for name in ("content-length", "content-type", "content-language"):
        assert name not in r.headers


async def test_if_none_match_in_several_headers(
    run_asgi: Any, make_app: Any, make_scope: Any
) -> None:
    scope = make_scope(headers=[("if-none-match", '"a"'), ("if-none-match", TAG)])
    sent = await run_asgi(ETagMiddleware(make_app(200, HTML, BODY)), scope)
    assert sent[0]["status"] == 304


async def test_another_tag_gets_the_body(asgi_client: Any, make_app: Any) -> None:
    async with asgi_client(ETagMiddleware(make_app(200, HTML, BODY))) as c:
        r = await c.get("/", headers={"if-none-match": '"stale"'})
    assert r.status_code == 200
    assert r.content == BODY


async def test_weak_tags(asgi_client: Any, make_app: Any) -> None:
    async with asgi_client(ETagMiddleware(make_app(200, HTML, BODY), weak=True)) as c:
        r = await c.get("/")
        assert r.headers["etag"] == f"W/{TAG}"
        assert (await c.get("/", headers={"if-none-match": TAG})).status_code == 304
        assert (await c.get("/", headers={"if-none-match": f"W/{TAG}"})).status_code == 304


async def test_a_tag_of_the_response_is_kept_and_compared(asgi_client: Any, make_app: Any) -> None:
    own = {**HTML, "etag": '"v7"'}
    async with asgi_client(ETagMiddleware(make_app(200, own, BODY))) as c:
        r = await c.get("/")
        assert r.headers["etag"] == '"v7"'
        assert r.headers.get_list("etag") == ['"v7"']
        assert (await c.get("/", headers={"if-none-match": 'W/"v7"'})).status_code == 304
        assert (await c.get("/", headers={"if-none-match": '"v8"'})).content == BODY


async def test_a_stream_with_its_own_tag_gets_304_without_its_body(
    run_asgi: Any, make_app: Any, make_scope: Any
) -> None:
    app = make_app(200, {"etag": '"stream"'}, chunks=[b"a", b"b"])
    sent = await run_asgi(ETagMiddleware(app), make_scope(headers={"if-none-match": '"stream"'}))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 304
    assert sent[1]["body"] == b""


async def test_streams_pass_as_they_come(run_asgi: Any, make_app: Any, make_scope: Any) -> None:
    app = make_app(200, {"content-type": "text/event-stream"}, chunks=[b"data: 1\n\n", b"x"])
    sent = await run_asgi(ETagMiddleware(app), make_scope(headers={"if-none-match": "*"}))
    assert sent[0]["status"] == 200
    assert "etag" not in dict(sent[0]["headers"])
    assert [m.get("body") for m in sent[1:]] == [b"data: 1\n\n", b"x", b""]
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, False]


@pytest.mark.parametrize(
    ("status", "method", "headers", "body"),
    [
        (404, "GET", HTML, BODY),
        (201, "GET", HTML, BODY),
        (200, "POST", HTML, BODY),
        (200, "GET", {**HTML, "cache-control": "private, no-store"}, BODY),
        (200, "GET", {"content-length": "11"}, b"x" * 11),  # over max_size
        (200, "GET", {"content-length": "2"}, b"xx"),  # under min_size
        (200, "GET", {}, b"x" * 11),  # no length: decided on the body
        (200, "GET", {}, b"x"),
        (200, "HEAD", HTML, b""),  # no body to hash
    ],
)
async def test_left_alone(
    run_asgi: Any,
    make_app: Any,
    make_scope: Any,
    status: int,
    method: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    app = ETagMiddleware(make_app(status, headers, body), min_size=3, max_size=10)
    sent = await run_asgi(app, make_scope(method=method, headers={"if-none-match": "*"}))
    assert sent[0]["status"] == status
    assert "etag" not in {k.decode() for k, _ in sent[0]["headers"]}
    assert sent[1]["body"] == body


async def test_head_with_a_tag_of_its_own(run_asgi: Any, make_app: Any, make_scope: Any) -> None:
    app = ETagMiddleware(make_app(200, {**HTML, "etag": TAG}, b""))
    sent = await run_asgi(app, make_scope(method="HEAD", headers={"if-none-match": TAG}))
    assert sent[0]["status"] == 304
    sent = await run_asgi(app, make_scope(method="HEAD"))
    assert sent[0]["status"] == 200
    assert dict(sent[0]["headers"])[b"etag"] == TAG.encode()


async def test_other_scopes_and_messages_pass(run_asgi: Any, make_scope: Any) -> None:
    async def pathsend(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": "/tmp/file"})

    sent = await run_asgi(ETagMiddleware(pathsend), make_scope())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]

    async def no_body(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    sent = await run_asgi(ETagMiddleware(no_body), make_scope())
    assert [m["type"] for m in sent] == ["http.response.start"]

    async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})

    sent = await run_asgi(ETagMiddleware(websocket), make_scope("websocket"))
    assert sent == [{"type": "websocket.accept"}]


async def test_the_application_header_list_is_not_changed(run_asgi: Any, make_scope: Any) -> None:
    shared = [(b"content-type", b"text/plain")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared})
        await send({"type": "http.response.body", "body": b"hi"})

    sent = await run_asgi(ETagMiddleware(app), make_scope())
    assert (b"etag", make_etag(b"hi")) in sent[0]["headers"]
    assert shared == [(b"content-type", b"text/plain")]


def test_options_are_checked() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None: ...

    with pytest.raises(ConfigurationError, match="min_size must be >= 0"):
        ETagMiddleware(app, min_size=-1)
    with pytest.raises(
        ConfigurationError, match=r"max_size \(5\) must be at least min_size \(10\)"
    ):
        ETagMiddleware(app, min_size=10, max_size=5)


# -- in an application ------------------------------------------------------------------------


def make_app() -> App:
    app = App(debug=True)
    app.add_middleware(ETagMiddleware)

    @app.get("/page")
    async def page(request: Request) -> Response:
        return PlainTextResponse(
            "hello " + request.query.get("name", "world"), headers={"cache-control": "no-cache"}
        )

    @app.get("/data")
    async def data() -> dict[str, int]:
        return {"n": 1}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b"]))

    @app.post("/data")
    async def post() -> dict[str, int]:
        return {"n": 2}

    return app


def test_over_the_test_client() -> None:
    with TestClient(make_app()) as client:
        first = client.get("/page")
        tag = first.headers["etag"]
        assert first.text == "hello world"
        revalidated = client.get("/page", headers={"if-none-match": tag})
        assert revalidated.status_code == 304
        assert revalidated.content == b""
        assert revalidated.headers["etag"] == tag
        assert revalidated.headers["cache-control"] == "no-cache"
        assert revalidated.headers["x-content-type-options"] == "nosniff"
        changed = client.get("/page?name=ann", headers={"if-none-match": tag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != tag
        data = client.get("/data")
        assert (
            client.get("/data", headers={"if-none-match": data.headers["etag"]}).status_code == 304
        )
        assert "etag" not in client.get("/stream").headers
        assert "etag" not in client.post("/data").headers
        assert client.head("/page", headers={"if-none-match": tag}).status_code == 200


def test_under_gzip_the_tag_names_the_plain_body() -> None:
    app = App(debug=True)
    app.add_middleware(ETagMiddleware)  # inner
    app.add_middleware(GZipMiddleware, minimum_size=10)  # outer
    text = "compress me " * 50

    @app.get("/")
    async def index() -> str:
        return text

    with TestClient(app) as client:
        r = client.get("/", headers={"accept-encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["etag"] == "W/" + make_etag(text.encode()).decode()
        assert r.text == text
        # The browser sends the weak tag back: still a match.
        again = client.get(
            "/", headers={"accept-encoding": "gzip", "if-none-match": r.headers["etag"]}
        )
        assert again.status_code == 304
        assert "content-encoding" not in again.headers
        plain = client.get("/", headers={"accept-encoding": "identity"})
        assert plain.headers["etag"] == make_etag(text.encode()).decode()
