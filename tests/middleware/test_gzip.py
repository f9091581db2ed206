from __future__ import annotations

import gzip
import os
import zlib
from typing import Any

import httpx
import pytest

from trellis.exceptions import ConfigurationError
from trellis.middleware import GZipMiddleware
from trellis.middleware.gzip import accepts_gzip
from trellis.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

TEXT = b"Trellis compresses text that repeats. " * 100
HTML = {"content-type": "text/html; charset=utf-8"}


async def fetch_raw(
    client: httpx.AsyncClient, method: str = "GET", accept: str = "gzip, deflate, br"
) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (not decoded by httpx)."""
    async with client.stream(method, "/", headers={"accept-encoding": accept}) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    return r, raw


async def test_large_body_round_trip(asgi_client: Any, make_app: Any) -> None:
    headers = {**HTML, "content-length": str(len(TEXT)), "etag": '"v1"'}
    app = GZipMiddleware(make_app(200, headers, TEXT))
    async with asgi_client(app) as c:
        r, raw = await fetch_raw(c)
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Accept-Encoding"
    assert int(r.headers["content-length"]) == len(raw) < len(TEXT)
    assert gzip.decompress(raw) == TEXT
    # A strong ETag named the identity bytes; the gzip body only keeps a weak one.
    assert r.headers["etag"] == 'W/"v1"'


async def test_httpx_decodes_the_same_body(asgi_client: Any, make_app: Any) -> None:
    async with asgi_client(GZipMiddleware(make_app(200, HTML, TEXT))) as c:
        r = await c.get("/")
    assert r.content == TEXT


async def test_existing_vary_is_extended(asgi_client: Any, make_app: Any) -> None:
    app = GZipMiddleware(make_app(200, {**HTML, "vary": "Cookie"}, TEXT))
    async with asgi_client(app) as c:
        r, _ = await fetch_raw(c)
    assert r.headers["vary"] == "Cookie, Accept-Encoding"


async def test_small_body_untouched(asgi_client: Any, make_app: Any) -> None:
    body = b"x" * 499
    app = GZipMiddleware(make_app(200, HTML, body))
    async with asgi_client(app) as c:
        r, raw = await fetch_raw(c)
    assert "content-encoding" not in r.headers
    assert "vary" not in r.headers
    assert raw == body


async def test_minimum_size_option(asgi_client: Any, make_app: Any) -> None:
    app = GZipMiddleware(make_app(200, HTML, TEXT), minimum_size=len(TEXT) + 1)
    async with asgi_client(app) as c:
        r, raw = await fetch_raw(c)
    assert "content-encoding" not in r.headers
    assert raw == TEXT


@pytest.mark.parametrize(
    ("accept", "compressed"),
    [
        ("gzip", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("identity", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*;q=0", False),
        ("deflate, br", False),
    ],
)
async def test_accept_encoding(
    asgi_client: Any, make_app: Any, accept: str, compressed: bool
) -> None:
    async with asgi_client(GZipMiddleware(make_app(200, HTML, TEXT))) as c:
        r, raw = await fetch_raw(c, accept=accept)
    assert ("content-encoding" in r.headers) is compressed
    assert (raw == TEXT) is not compressed


async def test_no_accept_encoding_untouched(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    messages = await run_asgi(GZipMiddleware(make_app(200, HTML, TEXT)), make_scope())
    assert messages[1]["body"] == TEXT


async def test_malformed_content_length_still_compressed(
    make_app: Any, make_scope: Any, run_asgi: Any
) -> None:
    app = GZipMiddleware(make_app(200, {"content-length": "many"}, TEXT))
    messages = await run_asgi(app, make_scope(headers={"accept-encoding": "gzip"}))
    assert gzip.decompress(messages[1]["body"]) == TEXT
    assert (b"content-length", str(len(messages[1]["body"])).encode()) in messages[0]["headers"]


def test_accepts_gzip_parsing() -> None:
    assert accepts_gzip(b"GZIP ; Q=0.3")
    assert accepts_gzip(b"x-gzip")
    assert not accepts_gzip(b"gzip;q=oops")
    assert not accepts_gzip(b"")
    assert accepts_gzip(b"identity;q=0, *;q=0.1")


async def test_already_encoded_untouched(asgi_client: Any, make_app: Any) -> None:
    body = zlib.compress(TEXT)
    app = GZipMiddleware(make_app(200, {**HTML, "content-encoding": "deflate"}, body * 10))
    async with asgi_client(app) as c:
        r, raw = await fetch_raw(c)
    assert r.headers["content-encoding"] == "deflate"
    assert raw == body * 10


async def test_event_stream_untouched(asgi_client: Any, make_app: Any) -> None:
    events = [b"data: %d\n\n" % i * 100 for i in range(5)]
    app = GZipMiddleware(make_app(200, {"content-type": "text/event-stream"}, chunks=events))
    async with asgi_client(app) as c:
        r, raw = await fetch_raw(c)
    assert "content-encoding" not in r.headers
    assert raw == b"".join(events)


@pytest.mark.parametrize(
    ("headers", "compressed"),
    [
        ({"content-type": "image/png"}, False),
        ({"content-type": "application/zip"}, False),
        ({"content-type": "image/svg+xml"}, True),
        ({"content-type": "application/json"}, True),
        ({**HTML, "cache-control": "public, no-transform"}, False),
    ],
)
async def test_skipped_media_and_no_transform(
    asgi_client: Any, make_app: Any, headers: dict[str, str], compressed: bool
) -> None:
    async with asgi_client(GZipMiddleware(make_app(200, headers, TEXT))) as c:
        r, raw = await fetch_raw(c)
    assert ("content-encoding" in r.headers) is compressed
    assert (raw == TEXT) is not compressed


@pytest.mark.parametrize("status", [204, 304, 206])
async def test_statuses_without_full_body_untouched(
    make_app: Any, make_scope: Any, run_asgi: Any, status: int
) -> None:
    app = GZipMiddleware(make_app(status, HTML, TEXT if status == 206 else b""))
    messages = await run_asgi(app, make_scope(headers={"accept-encoding": "gzip"}))
    assert messages[0]["status"] == status
    assert (b"content-encoding", b"gzip") not in messages[0]["headers"]


async def test_head_untouched(asgi_client: Any, make_app: Any) -> None:
    headers = {**HTML, "content-length": str(len(TEXT))}
    async with asgi_client(GZipMiddleware(make_app(200, headers))) as c:
        r, _ = await fetch_raw(c, "HEAD")
    assert "content-encoding" not in r.headers
    assert r.headers["content-length"] == str(len(TEXT))


async def test_incompressible_body_sent_as_is(asgi_client: Any, make_app: Any) -> None:
    noise = os.urandom(2000)
    app = GZipMiddleware(make_app(200, {"content-type": "application/octet-stream"}, noise))
    async with asgi_client(app) as c:
        r, raw = await fetch_raw(c)
    assert "content-encoding" not in r.headers
    assert raw == noise


async def test_streaming_compressed_without_content_length(asgi_client: Any, make_app: Any) -> None:
    chunks = [b"chunk %d " % i * 50 for i in range(10)]
    headers = {**HTML, "content-length": str(sum(map(len, chunks)))}
    app = GZipMiddleware(make_app(200, headers, chunks=chunks))
    async with asgi_client(app) as c:
        r, raw = await fetch_raw(c)
    assert r.headers["content-encoding"] == "gzip"
    assert "content-length" not in r.headers
    assert gzip.decompress(raw) == b"".join(chunks)


async def test_streaming_flushes_every_chunk(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    chunks = [b"first part of the page ", b"", b"second part " * 3, b"third"]
    app = GZipMiddleware(make_app(200, HTML, chunks=chunks), minimum_size=0)
    messages = await run_asgi(app, make_scope(headers={"accept-encoding": "gzip"}))
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert [m.get("more_body", False) for m in bodies] == [True, True, True, False]
    # Each message decodes to its chunk on arrival: nothing is held back for later.
    decoder = zlib.decompressobj(31)
    non_empty = [c for c in chunks if c]
    for message, chunk in zip(bodies[:-1], non_empty, strict=True):
        assert decoder.decompress(message["body"]) == chunk
    decoder.decompress(bodies[-1]["body"])
    assert decoder.eof


async def test_small_known_length_stream_passes_without_holding(
    make_app: Any, make_scope: Any, run_asgi: Any
) -> None:
    app = GZipMiddleware(make_app(200, {"content-length": "6"}, chunks=[b"abc", b"def"]))
    messages = await run_asgi(app, make_scope(headers={"accept-encoding": "gzip"}))
    assert [m.get("body") for m in messages[1:]] == [b"abc", b"def", b""]
    assert messages[0]["headers"] == [(b"content-length", b"6")]


async def test_other_message_after_start_releases_it(make_scope: Any, run_asgi: Any) -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": "/tmp/file"})

    messages = await run_asgi(
        GZipMiddleware(inner), make_scope(headers={"accept-encoding": "gzip"})
    )
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.pathsend"]


async def test_start_without_body_is_not_swallowed(make_scope: Any, run_asgi: Any) -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    messages = await run_asgi(
        GZipMiddleware(inner), make_scope(headers={"accept-encoding": "gzip"})
    )
    assert [m["type"] for m in messages] == ["http.response.start"]


async def test_trailers_pass_through_while_streaming(make_scope: Any, run_asgi: Any) -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": TEXT, "more_body": True})
        await send({"type": "http.response.trailers", "headers": [], "more_trailers": False})
        await send({"type": "http.response.body", "body": b""})

    messages = await run_asgi(
        GZipMiddleware(inner), make_scope(headers={"accept-encoding": "gzip"})
    )
    assert [m["type"] for m in messages][2] == "http.response.trailers"


async def test_header_list_of_app_not_mutated(asgi_client: Any) -> None:
    shared = [(b"content-type", b"text/plain"), (b"content-length", str(len(TEXT)).encode())]

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared})
        await send({"type": "http.response.body", "body": TEXT})

    async with asgi_client(GZipMiddleware(inner)) as c:
        r = await c.get("/")
    assert r.content == TEXT
    assert shared == [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(TEXT)).encode()),
    ]


async def test_non_http_scopes_pass_through(make_app: Any, make_scope: Any, run_asgi: Any) -> None:
    messages = await run_asgi(GZipMiddleware(make_app()), make_scope("websocket"))
    assert [m["type"] for m in messages] == ["websocket.accept", "websocket.close"]


@pytest.mark.parametrize(
    "options", [{"minimum_size": -1}, {"compresslevel": 0}, {"compresslevel": 10}]
)
def test_configuration_errors(make_app: Any, options: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError, match="GZipMiddleware"):
        GZipMiddleware(make_app(), **options)
