"""Form parsing: urlencoded and multipart bodies, uploads, limits and malformed input."""

from __future__ import annotations

import io
import os
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from trellis.datastructures import Headers
from trellis.exceptions import (
    BadRequestError,
    HTTPError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from trellis.http.forms import FormData, FormLimits, UploadFile, parse_form

pytestmark = pytest.mark.anyio

URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY = "----TrellisBoundary7MA4YWxk"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"

# Chunk sizes every body is fed in: byte by byte, an odd size that splits boundaries and
# escapes at random places, and the whole body at once.
CHUNKS = [1, 7, None]


async def _stream(body: bytes, size: int | None) -> AsyncIterator[bytes]:
    if size is None:
        yield body
        return
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def parse(
    content_type: str, body: bytes, size: int | None = None, limits: FormLimits | None = None
) -> FormData:
    return await parse_form(content_type, _stream(body, size), limits or FormLimits())


def multipart(parts: Iterable[tuple[Any, ...]], boundary: str = BOUNDARY) -> bytes:
    """Build a body from ``(name, text)`` and ``(name, filename, content_type, data)`` tuples."""
    out = b""
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        if len(part) == 2:
            name, text = part
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += text.encode() if isinstance(text, str) else text
        else:
            name, filename, ctype, data = part
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            ).encode()
            if ctype is not None:
                out += f"Content-Type: {ctype}\r\n".encode()
            out += b"\r\n" + data
        out += b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def summary(form: FormData) -> list[tuple[str, Any]]:
    """The form as plain values (files read back), to compare results across chunk sizes."""
    out: list[tuple[str, Any]] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            await value.seek(0)
            out.append((key, (value.filename, value.content_type, value.size, data)))
        else:
            out.append((key, value))
    return out


async def expect_error(
    exc_type: type[HTTPError], content_type: str, body: bytes, **kwargs: Any
) -> HTTPError:
    with pytest.raises(exc_type) as info:
        await parse(content_type, body, **kwargs)
    return info.value


# -- urlencoded -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", CHUNKS)
async def test_urlencoded_fields(size: int | None) -> None:
    body = b"a=1&b=two+words&a=%C3%A9t%C3%A9&empty=&flag&&c=%2B%26%3D&trailing=x&"
    form = await parse(URLENCODED, body, size)
    assert form.multi_items() == [
        ("a", "1"),
        ("b", "two words"),
        ("a", "été"),
        ("empty", ""),
        ("flag", ""),
        ("c", "+&="),
        ("trailing", "x"),
    ]
    assert form["a"] == "été"
    assert form.getlist("a") == ["1", "été"]


async def test_urlencoded_empty_body() -> None:
    assert (await parse(URLENCODED, b"")).multi_items() == []


async def test_urlencoded_content_type_parameters_and_case() -> None:
    form = await parse("Application/X-WWW-Form-Urlencoded; charset=UTF-8", b"x=%E2%9C%93")
    assert form["x"] == "✓"


async def test_urlencoded_charset_is_honoured() -> None:
    form = await parse(f"{URLENCODED}; charset=latin-1", b"name=Ren%E9")
    assert form["name"] == "René"


async def test_urlencoded_invalid_utf8_is_400() -> None:
    err = await expect_error(BadRequestError, URLENCODED, b"name=%FF%FE")
    assert err.status == 400
    assert err.detail == "form data is not valid utf-8"


@pytest.mark.parametrize("charset", ["klingon", "base64", "rot13"])
async def test_unknown_charset_is_415(charset: str) -> None:
    err = await expect_error(UnsupportedMediaTypeError, f"{URLENCODED}; charset={charset}", b"a=1")
    assert err.detail == f"unknown charset {charset!r}"


# -- multipart --------------------------------------------------------------------------------

FILE_BODY = multipart(
    [
        ("title", "Holiday ✓"),
        ("photo", "beach.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 binary \r\n--not-a-boundary\r\n"),
        ("tags", "sea"),
        ("tags", "sun"),
        ("notes", "notes.txt", "text/plain; charset=utf-8", b"line 1\r\nline 2"),
        ("empty", ""),
    ]
)


@pytest.mark.parametrize("size", CHUNKS)
async def test_multipart_fields_and_files(size: int | None) -> None:
    form = await parse(MULTIPART, FILE_BODY, size)
    try:
        assert await summary(form) == [
            ("title", "Holiday ✓"),
            (
                "photo",
                (
                    "beach.jpg",
                    "image/jpeg",
                    32,
                    b"\xff\xd8\xff\xe0 binary \r\n--not-a-boundary\r\n",
                ),
            ),
            ("tags", "sea"),
            ("tags", "sun"),
            ("notes", ("notes.txt", "text/plain; charset=utf-8", 14, b"line 1\r\nline 2")),
            ("empty", ""),
        ]
        assert form.getlist("tags") == ["sea", "sun"]
        photo = form["photo"]
        assert isinstance(photo, UploadFile)
        assert photo.in_memory
        assert photo.headers["content-type"] == "image/jpeg"
        assert photo.headers["content-disposition"].startswith("form-data;")
    finally:
        await form.close()


async def test_multipart_quoted_boundary_and_leading_crlf_and_epilogue() -> None:
    body = b"\r\n" + multipart([("a", "1")], boundary="b:=?x y") + b"epilogue, ignored"
    form = await parse('multipart/form-data; boundary="b:=?x y"', body)
    assert form.multi_items() == [("a", "1")]


async def test_multipart_empty_body_is_an_empty_form() -> None:
    assert (await parse(MULTIPART, b"")).multi_items() == []
    assert (await parse(MULTIPART, f"--{BOUNDARY}--\r\n".encode())).multi_items() == []


async def test_multipart_filenames() -> None:
    body = multipart(
        [
            ("a", "C:\\Users\\me\\report.pdf", "application/pdf", b"%PDF"),
            ("b", "../../etc/passwd", "text/plain", b"x"),
            ("c", "", "application/octet-stream", b""),
            ("d", "..", "text/plain", b""),
            ("e", "no-type.bin", None, b"\x00"),
            ("f", "résumé.txt", "text/plain", b"cv"),
        ]
    )
    form = await parse(MULTIPART, body)
    uploads = [v for _, v in form.multi_items()]
    assert all(isinstance(u, UploadFile) for u in uploads)
    assert [u.filename for u in uploads if isinstance(u, UploadFile)] == [
        "report.pdf",
        "passwd",
        "",
        "",
        "no-type.bin",
        "résumé.txt",
    ]
    e = form["e"]
    assert isinstance(e, UploadFile)
    assert e.content_type == "application/octet-stream"
    await form.close()


async def test_multipart_part_charset_is_honoured() -> None:
    body = (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="city"\r\n'
            "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
        ).encode()
        + "Zürich".encode("latin-1")
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    form = await parse(MULTIPART, body)
    assert form["city"] == "Zürich"


async def test_large_file_is_spooled_to_disk_and_reads_back() -> None:
    data = os.urandom(300_000)
    body = multipart([("blob", "blob.bin", "application/octet-stream", data), ("after", "ok")])
    limits = FormLimits(spool_threshold=64 * 1024)
    form = await parse(MULTIPART, body, 8192, limits)
    blob = form["blob"]
    assert isinstance(blob, UploadFile)
    try:
        assert not blob.in_memory
        assert blob.file._rolled  # type: ignore[attr-defined]
        assert os.fstat(blob.file.fileno()).st_size == len(data)
        assert blob.size == len(data)
        assert await blob.read(10) == data[:10]
        assert await blob.read() == data[10:]
        assert await blob.seek(0) == 0
        assert blob.file.read() == data
        assert form["after"] == "ok"
    finally:
        await form.close()
    assert blob.file.closed


async def test_spool_threshold_zero_sends_files_to_disk() -> None:
    body = multipart([("f", "f.txt", "text/plain", b"ab"), ("g", "g.txt", "text/plain", b"")])
    form = await parse(MULTIPART, body, limits=FormLimits(spool_threshold=0))
    f, g = form["f"], form["g"]
    assert isinstance(f, UploadFile)
    assert isinstance(g, UploadFile)
    assert not f.in_memory
    assert await f.read() == b"ab"
    assert await g.read() == b""
    await form.close()


async def test_small_file_stays_in_memory() -> None:
    form = await parse(MULTIPART, multipart([("f", "f.txt", "text/plain", b"tiny")]))
    f = form["f"]
    assert isinstance(f, UploadFile)
    assert f.in_memory
    assert not f.file._rolled  # type: ignore[attr-defined]
    await form.close()


# -- UploadFile and FormData ------------------------------------------------------------------


async def test_upload_file_api_in_memory_and_on_disk() -> None:
    spooled = tempfile.SpooledTemporaryFile(max_size=8)  # noqa: SIM115 - closed by upload
    upload = UploadFile(spooled, filename="a.txt", content_type="text/plain")
    assert repr(upload) == "UploadFile(filename='a.txt', content_type='text/plain', size=0)"
    assert upload.headers == Headers()
    assert await upload.write(b"hello") == 5
    before = upload.in_memory
    # This write crosses the threshold: the roll-over happens in a worker thread.
    assert await upload.write(b" world") == 6
    after = upload.in_memory
    assert (before, after) == (True, False)
    assert upload.size == 11
    await upload.seek(0)
    assert await upload.write(b"J") == 1
    assert upload.size == 11
    await upload.seek(0)
    assert await upload.read() == b"Jello world"
    await upload.seek(-5, io.SEEK_END)
    assert await upload.read(3) == b"wor"
    await upload.close()
    assert spooled.closed


async def test_upload_file_over_plain_file_objects() -> None:
    memory = UploadFile(io.BytesIO(b"abc"), size=3)
    assert memory.in_memory
    assert memory.filename is None
    assert memory.content_type == "application/octet-stream"
    assert await memory.read() == b"abc"
    await memory.close()
    with tempfile.TemporaryFile() as raw:
        disk = UploadFile(raw)
        assert not disk.in_memory
        await disk.write(b"xyz")
        await disk.seek(1)
        assert await disk.read() == b"yz"
        assert disk.size == 3
        await disk.close()
        assert raw.closed


async def test_form_data_close_closes_every_upload() -> None:
    form = await parse(MULTIPART, FILE_BODY)
    uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    assert len(uploads) == 2
    await form.close()
    assert all(u.file.closed for u in uploads)
    assert isinstance(form, FormData)
    assert form == FormData(form.multi_items())


def test_form_limits_are_validated() -> None:
    assert FormLimits().max_file_size == 100 * 1024 * 1024
    with pytest.raises(ValueError, match=r"FormLimits.max_fields must be an int >= 0"):
        FormLimits(max_fields=-1)
    with pytest.raises(ValueError, match=r"max_file_size"):
        FormLimits(max_file_size=1.5)  # type: ignore[arg-type]


# -- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", CHUNKS)
async def test_too_many_urlencoded_fields_is_400(size: int | None) -> None:
    limits = FormLimits(max_fields=3)
    form = await parse(URLENCODED, b"a=1&b=2&c=3&&", size, limits)
    assert len(form.multi_items()) == 3
    err = await expect_error(BadRequestError, URLENCODED, b"a=1&b=2&c=3&d", limits=limits)
    assert err.detail == "too many form fields (limit 3)"


async def test_too_many_multipart_fields_is_400() -> None:
    limits = FormLimits(max_fields=2)
    ok = multipart([("a", "1"), ("b", "2"), ("f", "f.txt", "text/plain", b"files don't count")])
    form = await parse(MULTIPART, ok, limits=limits)
    assert len(form.multi_items()) == 3
    await form.close()
    body = multipart([("a", "1"), ("b", "2"), ("c", "3")])
    err = await expect_error(BadRequestError, MULTIPART, body, limits=limits)
    assert err.detail == "too many form fields (limit 2)"


async def test_too_many_parts_is_400() -> None:
    body = multipart([("f", f"{i}.txt", "text/plain", b"x") for i in range(4)])
    err = await expect_error(BadRequestError, MULTIPART, body, limits=FormLimits(max_parts=3))
    assert err.detail == "too many multipart parts (limit 3)"


@pytest.mark.parametrize("size", CHUNKS)
async def test_field_too_large_is_413(size: int | None) -> None:
    limits = FormLimits(max_field_size=5)
    assert (await parse(URLENCODED, b"abcde=ABCDE", size, limits))["abcde"] == "ABCDE"
    err = await expect_error(
        PayloadTooLargeError, URLENCODED, b"a=123456", size=size, limits=limits
    )
    assert err.status == 413
    assert err.detail == "the value of form field 'a' is larger than 5 bytes"
    err = await expect_error(
        PayloadTooLargeError, URLENCODED, b"abcdef=1", size=size, limits=limits
    )
    assert err.detail == "a form field name is larger than 5 bytes"
    assert (await parse(MULTIPART, multipart([("a", "12345")]), size, limits))["a"] == "12345"
    err = await expect_error(
        PayloadTooLargeError, MULTIPART, multipart([("a", "123456")]), size=size, limits=limits
    )
    assert err.detail == "the value of form field 'a' is larger than 5 bytes"


async def test_long_names_are_shortened_in_error_details() -> None:
    body = b"n" * 1000 + b"=" + b"v" * 2000
    limits = FormLimits(max_field_size=1500)
    err = await expect_error(PayloadTooLargeError, URLENCODED, body, limits=limits)
    assert err.detail == f"the value of form field {'n' * 40!r}... is larger than 1500 bytes"


async def test_total_text_size_is_413() -> None:
    # Names and values count, separators do not.
    limits = FormLimits(max_form_memory=10)
    assert len((await parse(URLENCODED, b"a=1234&b=1234", limits=limits)).multi_items()) == 2
    err = await expect_error(PayloadTooLargeError, URLENCODED, b"a=1234&b=12345", limits=limits)
    assert err.detail == "form fields are larger than 10 bytes in total"
    assert len(await parse(MULTIPART, multipart([("a", "1234"), ("b", "1234")]), limits=limits))
    body = multipart([("a", "1234"), ("b", "1234"), ("c", "")])
    err = await expect_error(PayloadTooLargeError, MULTIPART, body, limits=limits)
    assert err.detail == "form fields are larger than 10 bytes in total"


@pytest.mark.parametrize("size", CHUNKS)
async def test_file_too_large_is_413(size: int | None) -> None:
    limits = FormLimits(max_file_size=10)
    ok = multipart([("f", "f.bin", "application/octet-stream", b"0123456789")])
    form = await parse(MULTIPART, ok, size, limits)
    assert (await summary(form))[0][1][2] == 10
    await form.close()
    body = multipart([("f", "f.bin", "application/octet-stream", b"0123456789A")])
    err = await expect_error(PayloadTooLargeError, MULTIPART, body, size=size, limits=limits)
    assert err.detail == "the file in form field 'f' is larger than 10 bytes"


async def test_oversized_upload_is_refused_with_bounded_memory() -> None:
    """A 50 MiB upload against a 10 MiB limit: 413 after ~10 MiB, memory stays far below."""
    chunk = b"x" * 65536
    total = 50 * 1024 * 1024
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        head = (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="big"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        yield head
        while sent < total:
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    limits = FormLimits(max_file_size=10 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLargeError):
            await parse_form(MULTIPART, body(), limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, peak
    # Refused as soon as the limit was crossed, not after reading the whole body.
    assert sent <= limits.max_file_size + len(chunk)


# -- malformed bodies and wrong types ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        ("multipart/form-data", "multipart/form-data body without a boundary parameter"),
        ("multipart/form-data; boundary=", "multipart/form-data body without a boundary parameter"),
        ('multipart/form-data; boundary="a\\"b"', "invalid multipart boundary 'a\"b'"),
        ("multipart/form-data; boundary=trailing-space ", None),
        ('multipart/form-data; boundary="sp "', "invalid multipart boundary 'sp '"),
        (f"multipart/form-data; boundary={'b' * 257}", f"invalid multipart boundary {'b' * 257!r}"),
    ],
)
async def test_missing_or_invalid_boundary_is_400(content_type: str, detail: str | None) -> None:
    if detail is None:
        # Unquoted trailing whitespace is not part of the parameter: this one is fine.
        assert (await parse(content_type, b"")).multi_items() == []
        return
    err = await expect_error(BadRequestError, content_type, b"")
    assert err.detail == detail


TRUNCATED = FILE_BODY[: FILE_BODY.index(b"line 2")]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"this is not multipart at all", "malformed multipart body"),
        (b"--wrong-boundary\r\n\r\n", "malformed multipart body"),
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\nno colon\r\n\r\n".encode(),
            "malformed multipart body",
        ),
        (TRUNCATED, "multipart body ended before its closing boundary"),
        (FILE_BODY[:-4], "multipart body ended before its closing boundary"),
        (f"--{BOUNDARY}".encode(), "multipart body ended before its closing boundary"),
        (b"\r\n", "multipart body ended before its closing boundary"),
        (
            f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),
            "a multipart part has no Content-Disposition header",
        ),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; filename="a"\r\n\r\nx\r\n'.encode(),
            "a multipart part has no name in its Content-Disposition",
        ),
        (multipart([("a", b"\xff\xfe")]), "the value of form field 'a' is not valid utf-8"),
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\n"
            "Content-Type: text/plain; charset=nope\r\n\r\nx\r\n".encode(),
            "unknown charset 'nope'",
        ),
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\xff\r\n\r\n".encode("latin-1"),
            "a multipart field name is not valid utf-8",
        ),
        (
            f"--{BOUNDARY}\r\nX-Big: {'h' * 5000}\r\n\r\n".encode(),
            "malformed multipart body: Maximum header size exceeded",
        ),
    ],
)
@pytest.mark.parametrize("size", CHUNKS)
async def test_malformed_multipart_is_400(body: bytes, detail: str, size: int | None) -> None:
    err = await expect_error(BadRequestError, MULTIPART, body, size=size)
    assert err.status == 400
    assert err.detail is not None
    assert err.detail.startswith(detail)


@pytest.mark.parametrize(
    "content_type", ["", "text/plain", "application/json", "multipart/mixed; boundary=x"]
)
async def test_unsupported_content_type_is_415(content_type: str) -> None:
    err = await expect_error(UnsupportedMediaTypeError, content_type, b"a=1")
    assert err.status == 415
    assert err.detail is not None
    assert err.detail.startswith("expected application/x-www-form-urlencoded or multipart")


# -- no leaked temporary files ----------------------------------------------------------------


@pytest.fixture
def spooled(monkeypatch: pytest.MonkeyPatch) -> list[tempfile.SpooledTemporaryFile[bytes]]:
    """Record every spooled file the parser creates."""
    created: list[tempfile.SpooledTemporaryFile[bytes]] = []
    original = tempfile.SpooledTemporaryFile

    def record(*args: Any, **kwargs: Any) -> tempfile.SpooledTemporaryFile[bytes]:
        f: tempfile.SpooledTemporaryFile[bytes] = original(*args, **kwargs)
        created.append(f)
        return f

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", record)
    return created


@pytest.mark.parametrize(
    ("body", "limits", "error"),
    [
        # The second file is too large; the first is on disk already.
        (
            multipart(
                [
                    ("a", "a.bin", "application/octet-stream", b"a" * 5000),
                    ("b", "b.bin", "application/octet-stream", b"b" * 20000),
                ]
            ),
            FormLimits(max_file_size=10000, spool_threshold=1000),
            PayloadTooLargeError,
        ),
        # The body is cut off in the middle of the second file.
        (
            multipart(
                [
                    ("a", "a.bin", "application/octet-stream", b"a" * 5000),
                    ("b", "b.bin", "application/octet-stream", b"b" * 5000),
                ]
            )[:-2000],
            FormLimits(spool_threshold=1000),
            BadRequestError,
        ),
        # A text field after two files is too large.
        (
            multipart([("a", "a.txt", "text/plain", b"1"), ("b", "b.txt", "text/plain", b"2")])
            + b"trailing garbage",
            FormLimits(),
            None,
        ),
    ],
)
async def test_temp_files_are_closed_after_errors(
    spooled: list[tempfile.SpooledTemporaryFile[bytes]],
    body: bytes,
    limits: FormLimits,
    error: type[HTTPError] | None,
) -> None:
    if error is None:
        # Epilogue after the closing boundary is ignored: no error, files stay open.
        form = await parse(MULTIPART, body, 512, limits)
        assert len(spooled) == 2
        assert not any(f.closed for f in spooled)
        await form.close()
    else:
        with pytest.raises(error):
            await parse(MULTIPART, body, 512, limits)
        assert len(spooled) == 2
        assert spooled[0]._rolled  # type: ignore[attr-defined]
    assert all(f.closed for f in spooled)


async def test_temp_files_are_closed_when_the_stream_fails(
    spooled: list[tempfile.SpooledTemporaryFile[bytes]],
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield multipart([("a", "a.txt", "text/plain", b"data")])[:-10]
        raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        await parse_form(MULTIPART, body())
    assert len(spooled) == 1
    assert spooled[0].closed
