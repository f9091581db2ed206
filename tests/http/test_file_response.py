from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from trellis.http.files import FileResponse, _parse_ranges, content_disposition, guess_media_type
from trellis.types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio

CONTENT = b"0123456789abcdefghijklmnopqrstuvwxyz"  # 36 bytes


def wrap(make: Callable[[], FileResponse]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await make()(scope, receive, send)

    return app


async def fetch(
    make: Callable[[], FileResponse], method: str = "GET", headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=wrap(make))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, "/", headers=headers)


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "hello.txt"
    path.write_bytes(CONTENT)
    return path


async def test_full_file(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file))
    assert r.status_code == 200
    assert r.content == CONTENT
    assert r.headers["content-length"] == "36"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["accept-ranges"] == "bytes"
    st = text_file.stat()
    assert r.headers["etag"] == f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    assert r.headers["last-modified"] == formatdate(int(st.st_mtime), usegmt=True)
    assert "content-disposition" not in r.headers


async def test_head_sends_headers_only(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file), "HEAD")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "36"
    assert "etag" in r.headers


async def test_head_ignores_range(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file), "HEAD", {"range": "bytes=0-1"})
    assert r.status_code == 200
    assert r.headers["content-length"] == "36"


async def test_extra_headers_and_media_type(text_file: Path) -> None:
    r = await fetch(
        lambda: FileResponse(
            text_file, headers={"cache-control": "no-cache"}, media_type="application/x-custom"
        )
    )
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["content-type"] == "application/x-custom"


@pytest.mark.parametrize("value", ["{etag}", "W/{etag}", '"other", {etag}', "*", '"a,b", {etag}'])
async def test_if_none_match_gives_304(text_file: Path, value: str) -> None:
    etag = (await fetch(lambda: FileResponse(text_file), "HEAD")).headers["etag"]
    r = await fetch(
        lambda: FileResponse(text_file, headers={"cache-control": "max-age=60"}),
        headers={"if-none-match": value.format(etag=etag)},
    )
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    assert r.headers["cache-control"] == "max-age=60"
    assert "content-type" not in r.headers
    assert "content-length" not in r.headers


async def test_if_none_match_other_etag_gives_200(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file), headers={"if-none-match": '"nope"'})
    assert r.status_code == 200
    assert r.content == CONTENT


async def test_if_modified_since(text_file: Path) -> None:
    last_modified = (await fetch(lambda: FileResponse(text_file), "HEAD")).headers["last-modified"]
    r = await fetch(lambda: FileResponse(text_file), headers={"if-modified-since": last_modified})
    assert r.status_code == 304
    assert r.content == b""
    r = await fetch(lambda: FileResponse(text_file), "HEAD", {"if-modified-since": last_modified})
    assert r.status_code == 304
    earlier = formatdate(text_file.stat().st_mtime - 3600, usegmt=True)
    r = await fetch(lambda: FileResponse(text_file), headers={"if-modified-since": earlier})
    assert r.status_code == 200
    r = await fetch(lambda: FileResponse(text_file), headers={"if-modified-since": "yesterday"})
    assert r.status_code == 200


async def test_if_none_match_takes_precedence_over_if_modified_since(text_file: Path) -> None:
    last_modified = formatdate(text_file.stat().st_mtime + 10, usegmt=True)
    r = await fetch(
        lambda: FileResponse(text_file),
        headers={"if-none-match": '"stale"', "if-modified-since": last_modified},
    )
    assert r.status_code == 200


async def test_if_modified_since_without_timezone_is_utc(text_file: Path) -> None:
    later = formatdate(text_file.stat().st_mtime + 10, usegmt=True).replace("GMT", "-0000")
    r = await fetch(lambda: FileResponse(text_file), headers={"if-modified-since": later})
    assert r.status_code == 304


async def test_if_match_and_if_unmodified_since_give_412(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file), headers={"if-match": '"other"'})
    assert r.status_code == 412
    assert r.content == b""
    assert r.headers["content-length"] == "0"
    etag = (await fetch(lambda: FileResponse(text_file), "HEAD")).headers["etag"]
    r = await fetch(lambda: FileResponse(text_file), headers={"if-match": etag})
    assert r.status_code == 200
    r = await fetch(lambda: FileResponse(text_file), headers={"if-match": f"W/{etag}"})
    assert r.status_code == 412  # If-Match compares strongly
    earlier = formatdate(text_file.stat().st_mtime - 3600, usegmt=True)
    r = await fetch(lambda: FileResponse(text_file), headers={"if-unmodified-since": earlier})
    assert r.status_code == 412


async def test_conditionals_only_for_get_and_head(text_file: Path) -> None:
    # The handler has already acted on a POST: preconditions are checked before, not here.
    r = await fetch(lambda: FileResponse(text_file), "POST", {"if-none-match": "*"})
    assert r.status_code == 200
    r = await fetch(lambda: FileResponse(text_file), "POST", {"range": "bytes=0-1"})
    assert r.status_code == 200
    assert r.content == CONTENT


async def test_other_status_sends_the_file_as_is(text_file: Path) -> None:
    r = await fetch(
        lambda: FileResponse(text_file, status_code=404),
        headers={"if-none-match": "*", "range": "bytes=0-1"},
    )
    assert r.status_code == 404
    assert r.content == CONTENT
    assert "accept-ranges" not in r.headers


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=-10", 26, 35),
        ("bytes=5-", 5, 35),
        ("bytes=30-1000", 30, 35),
        ("bytes=-1000", 0, 35),
        ("BYTES = 1 - 2", 1, 2),
        ("bytes=0-4, 2-8", 0, 8),  # overlapping ranges are coalesced
        ("bytes=0-4,5-8", 0, 8),  # and adjacent ones
        ("bytes=0-1, 100-200", 0, 1),  # unsatisfiable ones are dropped
        ("bytes=3-3,", 3, 3),
    ],
)
async def test_single_range(text_file: Path, range_header: str, first: int, last: int) -> None:
    r = await fetch(lambda: FileResponse(text_file), headers={"range": range_header})
    assert r.status_code == 206
    assert r.content == CONTENT[first : last + 1]
    assert r.headers["content-range"] == f"bytes {first}-{last}/36"
    assert r.headers["content-length"] == str(last - first + 1)
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "range_header", ["bytes=36-", "bytes=100-200", "bytes=-0", "bytes=40-,50-"]
)
async def test_unsatisfiable_range_gives_416(text_file: Path, range_header: str) -> None:
    r = await fetch(lambda: FileResponse(text_file), headers={"range": range_header})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */36"
    assert r.headers["content-length"] == "0"
    assert r.content == b""


@pytest.mark.parametrize(
    "range_header",
    [
        "bytes=abc",
        "bytes=5-1",
        "items=0-1",
        "bytes=",
        "bytes=-",
        "bytes 0-1",
        "bytes=0-1;x",
        "bytes=0x1-2",
        "",
    ],
)
async def test_malformed_range_is_ignored(text_file: Path, range_header: str) -> None:
    r = await fetch(lambda: FileResponse(text_file), headers={"range": range_header})
    assert r.status_code == 200
    assert r.content == CONTENT


def test_range_digits_are_ascii_only() -> None:
    assert _parse_ranges("bytes=\u0661-2", 10) is None  # an Arabic-Indic digit one
    assert _parse_ranges("bytes=1-\uff12", 10) is None  # a fullwidth two


async def test_too_many_ranges_are_ignored(text_file: Path) -> None:
    big = text_file.parent / "big.bin"
    big.write_bytes(bytes(1000))
    spec = ",".join(f"{i}-{i}" for i in range(0, 1000, 5))  # 200 ranges
    r = await fetch(lambda: FileResponse(big), headers={"range": f"bytes={spec}"})
    assert r.status_code == 200
    assert len(r.content) == 1000


async def test_multiple_ranges_give_multipart(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file), headers={"range": "bytes=0-1, 10-12, -2"})
    assert r.status_code == 206
    content_type = r.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    boundary = content_type.split("boundary=")[1]
    assert r.headers["content-length"] == str(len(r.content))
    expected = (
        f"--{boundary}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-range: bytes 0-1/36\r\n\r\n01\r\n"
        f"--{boundary}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-range: bytes 10-12/36\r\n\r\nabc\r\n"
        f"--{boundary}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-range: bytes 34-35/36\r\n\r\nyz\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    assert r.content == expected


async def test_if_range(text_file: Path) -> None:
    head = await fetch(lambda: FileResponse(text_file), "HEAD")
    etag, last_modified = head.headers["etag"], head.headers["last-modified"]
    cases = {etag: 206, '"old"': 200, f"W/{etag}": 200, last_modified: 206, "garbage": 200}
    for if_range, status in cases.items():
        r = await fetch(
            lambda: FileResponse(text_file), headers={"range": "bytes=0-1", "if-range": if_range}
        )
        assert r.status_code == status, if_range
        assert r.content == (CONTENT[:2] if status == 206 else CONTENT)
    earlier = formatdate(text_file.stat().st_mtime - 3600, usegmt=True)
    r = await fetch(
        lambda: FileResponse(text_file), headers={"range": "bytes=0-1", "if-range": earlier}
    )
    assert r.status_code == 200


async def test_empty_file_ignores_range(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    r = await fetch(lambda: FileResponse(empty), headers={"range": "bytes=-5"})
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"


async def test_etag_and_last_modified_options(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file, etag=False, last_modified=False))
    assert "etag" not in r.headers
    assert "last-modified" not in r.headers
    r = await fetch(
        lambda: FileResponse(text_file, last_modified=False),
        headers={"if-modified-since": formatdate(usegmt=True)},
    )
    assert r.status_code == 200
    r = await fetch(lambda: FileResponse(text_file, etag="v1"))
    assert r.headers["etag"] == '"v1"'
    r = await fetch(
        lambda: FileResponse(text_file, etag='W/"v1"'), headers={"if-none-match": '"v1"'}
    )
    assert r.status_code == 304
    r = await fetch(lambda: FileResponse(text_file, etag=False), headers={"if-match": '"x"'})
    assert r.status_code == 412
    r = await fetch(lambda: FileResponse(text_file, etag='W/"v1"'), headers={"if-match": 'W/"v1"'})
    assert r.status_code == 412  # a weak tag never matches strongly


async def test_content_disposition_ascii(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file, filename="report.txt"))
    assert r.headers["content-disposition"] == 'attachment; filename="report.txt"'
    r = await fetch(
        lambda: FileResponse(text_file, filename="a.pdf", content_disposition_type="inline")
    )
    assert r.headers["content-disposition"] == 'inline; filename="a.pdf"'
    assert r.headers["content-type"] == "application/pdf"  # guessed from the filename


async def test_content_disposition_non_ascii(text_file: Path) -> None:
    r = await fetch(lambda: FileResponse(text_file, filename="résumé 报告.txt"))
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"resume __.txt\"; filename*=UTF-8''"
        "r%C3%A9sum%C3%A9%20%E6%8A%A5%E5%91%8A.txt"
    )


def test_content_disposition_cannot_inject_headers() -> None:
    value = content_disposition('x"; evil=1\r\nSet-Cookie: a=b\\..\\/etc.txt')
    assert "\r" not in value
    assert "\n" not in value
    fallback = value.split("; filename*=")[0]
    assert fallback == 'attachment; filename="x_; evil=1__Set-Cookie: a=b_..__etc.txt"'
    assert "%0D%0A" in value
    assert '"' not in value.split("; filename*=")[1]
    with pytest.raises(ValueError, match="token"):
        content_disposition("a.txt", "attachment; x=1")


def test_content_disposition_keeps_header_supplied(text_file: Path) -> None:
    resp = FileResponse(text_file, filename="a.txt", headers={"content-disposition": "inline"})
    assert resp.headers.getlist("content-disposition") == ["inline"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.js", "text/javascript"),
        ("a.MJS", "text/javascript"),
        ("a.css", "text/css"),
        ("a.html", "text/html"),
        ("a.png", "image/png"),
        ("a.wasm", "application/wasm"),
        ("a.tar.gz", "application/gzip"),
        ("a.unknown-ext", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_guess_media_type(name: str, expected: str) -> None:
    assert guess_media_type(name) == expected


async def test_css_gets_charset(tmp_path: Path) -> None:
    css = tmp_path / "site.css"
    css.write_text("body{}")
    r = await fetch(lambda: FileResponse(css))
    assert r.headers["content-type"] == "text/css; charset=utf-8"


async def test_large_file_intact(tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    path = tmp_path / "large.bin"
    path.write_bytes(data)
    r = await fetch(lambda: FileResponse(path))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert int(r.headers["content-length"]) == len(data)
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()
    r = await fetch(
        lambda: FileResponse(path, chunk_size=10_000), headers={"range": "bytes=100001-1099999"}
    )
    assert r.status_code == 206
    assert r.content == data[100001:1100000]


async def test_missing_file_gives_404(tmp_path: Path) -> None:
    r = await fetch(lambda: FileResponse(tmp_path / "nope.txt"))
    assert r.status_code == 404
    assert r.text == "Not Found"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = await fetch(lambda: FileResponse(tmp_path))  # a directory is not a file
    assert r.status_code == 404


async def test_file_removed_after_stat_gives_404(text_file: Path) -> None:
    st = text_file.stat()
    resp = FileResponse(text_file, stat_result=st)
    text_file.unlink()
    r = await fetch(lambda: resp)
    assert r.status_code == 404


async def test_file_shrinking_while_sent_fails_loudly(text_file: Path) -> None:
    resp = FileResponse(text_file, stat_result=text_file.stat())
    text_file.write_bytes(b"short")
    with pytest.raises(RuntimeError, match="shrank"):
        await fetch(lambda: resp)


async def test_response_can_be_sent_twice(text_file: Path) -> None:
    resp = FileResponse(text_file)
    assert (await fetch(lambda: resp)).content == CONTENT
    r = await fetch(lambda: resp)
    assert r.content == CONTENT
    assert r.headers.get_list("etag") == [r.headers["etag"]]


async def test_background_runs(text_file: Path) -> None:
    ran: list[bool] = []

    async def task() -> None:
        ran.append(True)

    resp = FileResponse(text_file)
    resp.background = task
    await fetch(lambda: resp)
    assert ran == [True]


def test_bad_chunk_size(text_file: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        FileResponse(text_file, chunk_size=0)


def test_repr(text_file: Path) -> None:
    assert repr(FileResponse(text_file)).startswith("<FileResponse 200 ")


def scope_for(method: str = "GET", **extra: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    scope.update(extra)
    return scope


async def test_stops_reading_when_client_disconnects(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(1024 * 1024))
    sent: list[Message] = []
    gone = asyncio.Event()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if len(sent) == 3:
            gone.set()
        await asyncio.sleep(0)

    await FileResponse(path, chunk_size=1024)(scope_for(), receive, send)
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert 2 <= len(bodies) < 1024 // 4
    assert all(m.get("more_body") for m in bodies)  # never claimed to be complete


async def test_pathsend_extension(text_file: Path) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = scope_for(extensions={"http.response.pathsend": {}})
    await FileResponse(text_file)(scope, receive, send)
    assert sent[0]["status"] == 200
    assert sent[1] == {"type": "http.response.pathsend", "path": str(text_file)}
    sent.clear()
    scope["headers"] = [(b"range", b"bytes=0-1")]
    await FileResponse(text_file)(scope, receive, send)  # ranges are sent by Trellis itself
    assert sent[0]["status"] == 206
    assert sent[1]["body"] == b"01"


async def test_secure_cookie_over_https(text_file: Path) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    resp = FileResponse(text_file)
    resp.set_cookie("a", "b")
    await resp(scope_for("HEAD", scheme="https"), receive, send)
    cookies = [v for k, v in sent[0]["headers"] if k == b"set-cookie"]
    assert cookies[0].endswith(b"; Secure")
