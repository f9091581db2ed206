"""File responses: conditional requests, byte ranges and downloads, read in a thread.

``FileResponse`` stats the file when it is sent (not when it is built), answers ``If-None-Match``
/ ``If-Modified-Since`` with 304, ``If-Match`` / ``If-Unmodified-Since`` with 412, serves
``Range`` requests (one range as 206, several as ``multipart/byteranges``, none satisfiable as
416) and reads the file in chunks in the thread pool so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
import secrets
import stat as _stat
import unicodedata
from collections.abc import Awaitable
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from typing import BinaryIO
from urllib.parse import quote

from trellis.datastructures import Headers
from trellis.http.response import HeadersInit, PlainTextResponse, Response
from trellis.types import Receive, Scope, Send

__all__ = ["FileResponse", "content_disposition", "guess_media_type"]

_CHUNK_SIZE = 64 * 1024
# After coalescing overlaps, more ranges than this look like an abuse (RFC 9110 §14.2 lets the
# server ignore such a Range header) and the whole file is sent instead.
_MAX_RANGES = 100
_ETAG_RE = re.compile(r'(?:W/)?"[^"]*"')
_RANGE_SPEC_RE = re.compile(r"^[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers that describe the body; a 304, 412 or 416 has none of its own.
_BODY_HEADERS = frozenset(
    {
        b"content-length",
        b"content-type",
        b"content-disposition",
        b"content-encoding",
        b"content-language",
        b"content-range",
    }
)
# Platform MIME tables disagree (Windows registries map .js to text/plain, old tables lack
# .wasm or .webp): the types browsers are strict about are fixed here.
_WEB_TYPES = {
    ".js": "text/javascript",  # RFC 9239, not application/javascript
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".map": "application/json",
    ".txt": "text/plain",
}
# A compressed file is served as the archive it is, not as what it decompresses to (a .tar.gz
# is not an application/x-tar body without Content-Encoding).
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}


def guess_media_type(path: str | os.PathLike[str]) -> str:
    """Guess the content type of a file from its name.

    Args:
        path: The file name or path; only its name is looked at.

    Returns:
        The media type; ``application/octet-stream`` when unknown. ``FileResponse`` adds
        ``charset=utf-8`` to ``text/*`` types.
    """
    name = os.fspath(path)
    ext = os.path.splitext(name)[1].lower()
    fixed = _WEB_TYPES.get(ext)
    if fixed is not None:
        return fixed
    media_type, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        return _ENCODING_TYPES.get(encoding, "application/octet-stream")
    return media_type or "application/octet-stream"


def content_disposition(filename: str, disposition_type: str = "attachment") -> str:
    """Build a ``Content-Disposition`` value that is safe for any file name (RFC 6266).

    The plain ``filename`` parameter gets an ASCII rendering (accents dropped, other non-ASCII
    characters, quotes, backslashes, slashes and control characters replaced with ``_``); when
    that differs from the real name, ``filename*=UTF-8''...`` (RFC 8187) carries the exact name
    for the browsers that read it (all current ones do). No character of ``filename`` can end
    the header or start another.

    Args:
        filename: The name the browser should save the file under.
        disposition_type: ``"attachment"`` (download) or ``"inline"`` (display).

    Returns:
        The header value, for example ``attachment; filename="resume.pdf";
        filename*=UTF-8''r%C3%A9sum%C3%A9.pdf``.

    Raises:
        ValueError: ``disposition_type`` is not an HTTP token.
    """
    if not _TOKEN_RE.match(disposition_type):
        raise ValueError(f"content disposition type must be a token, got {disposition_type!r}")
    fallback = []
    for c in unicodedata.normalize("NFKD", filename):
        if unicodedata.combining(c):
            continue  # the accent of a decomposed "é": keep the "e"
        if " " <= c <= "~" and c not in '"\\/%':
            fallback.append(c)
        else:
            fallback.append("_")
    ascii_name = "".join(fallback)
    value = f'{disposition_type}; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def _parse_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """Parse a ``Range`` header against a file of ``size`` bytes.

    Returns ``None`` when the header must be ignored (another unit, bad syntax, too many
    ranges), ``[]`` when no range is satisfiable (416), else sorted, coalesced
    ``(first, last)`` pairs, both inclusive.
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    ranges: list[tuple[int, int]] = []
    specs = [part for part in spec.split(",") if part.strip()]  # lists may hold empty items
    if not specs:
        return None
    for part in specs:
        m = _RANGE_SPEC_RE.match(part)
        if m is None:
            return None
        first_s, last_s = m.groups()
        if not first_s:
            if not last_s:
                return None
            suffix = int(last_s)
            if suffix > 0:
                ranges.append((max(size - suffix, 0), size - 1))
            continue
        first = int(first_s)
        if last_s and int(last_s) < first:
            return None  # invalid range-spec: the whole header is ignored
        if first < size:
            ranges.append((first, min(int(last_s), size - 1) if last_s else size - 1))
    if not ranges:
        return []
    ranges.sort()
    merged = [ranges[0]]
    for first, last in ranges[1:]:
        prev_first, prev_last = merged[-1]
        if first <= prev_last + 1:
            merged[-1] = (prev_first, max(prev_last, last))
        else:
            merged.append((first, last))
    if len(merged) > _MAX_RANGES:
        return None
    return merged


def _parse_http_date(value: str) -> float | None:
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # "-0000" means UTC with unknown origin, not local time
    return dt.timestamp()


def _etag_matches(header: str, etag: str | None, *, weak: bool) -> bool:
    if header.strip() == "*":
        return True
    if etag is None:
        return False
    if weak:
        own = etag.removeprefix("W/")
        return any(tag.removeprefix("W/") == own for tag in _ETAG_RE.findall(header))
    if etag.startswith("W/"):
        return False
    return etag in _ETAG_RE.findall(header)


def _stat_file(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if _stat.S_ISREG(st.st_mode) else None


def _open(path: str) -> BinaryIO:
    return open(path, "rb")


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _until_disconnect(sending: Awaitable[None], receive: Receive) -> None:
    # Run the sender next to a watcher of `receive`: whichever ends first stops the other, so
    # a client that goes away stops the disk reads too.
    task = asyncio.ensure_future(sending)
    watch = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, watch):
            if not t.done():
                t.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
    if not task.cancelled() and (exc := task.exception()) is not None:
        raise exc


class FileResponse(Response):
    """Send a file from disk, with caching validators and byte ranges.

    The file is looked at when the response is sent: if it is missing then (or is not a
    regular file), the client gets a plain-text 404. With ``status_code`` 200 and a ``GET`` or
    ``HEAD`` request it honours ``If-None-Match`` / ``If-Modified-Since`` (304),
    ``If-Match`` / ``If-Unmodified-Since`` (412), and, for ``GET``, ``Range`` with
    ``If-Range``: one range gives a 206 with ``Content-Range``, several give a 206
    ``multipart/byteranges`` body, none satisfiable gives a 416 with ``Content-Range:
    bytes */size``, and a malformed ``Range`` header is ignored (full 200). Other statuses send
    the whole file as is.

    Args:
        path: The file to send.
        status_code: The HTTP status.
        headers: Extra headers (``Cache-Control`` ...).
        media_type: The content type; guessed from ``filename`` or ``path`` when ``None``
            (``text/*`` types get ``charset=utf-8``).
        filename: When set, a ``Content-Disposition`` header asks the browser to save the file
            under this name (non-ASCII names are sent per RFC 6266/8187).
        content_disposition_type: ``"attachment"`` (download) or ``"inline"`` (display);
            used with ``filename``.
        stat_result: The file's ``os.stat`` result when the caller already has it.
        etag: ``True`` for a strong ETag from the file's modification time and size, a string
            for your own ETag, ``False`` for none.
        last_modified: Whether to send ``Last-Modified`` (and honour ``If-Modified-Since``).
        chunk_size: How many bytes to read and send at a time (memory used per response).

    Example:
        ```python
        @app.get("/report")
        async def report():
            return FileResponse("reports/2024.pdf", filename="Rapport été 2024.pdf")
        ```
    """

    __slots__ = ("chunk_size", "etag", "last_modified", "path", "stat_result")

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: HeadersInit = None,
        media_type: str | None = None,
        filename: str | None = None,
        content_disposition_type: str = "attachment",
        stat_result: os.stat_result | None = None,
        etag: bool | str = True,
        last_modified: bool = True,
        chunk_size: int = _CHUNK_SIZE,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.path = os.fspath(path)
        self.stat_result = stat_result
        self.etag = etag
        self.last_modified = last_modified
        self.chunk_size = chunk_size
        if media_type is None:
            media_type = guess_media_type(filename or self.path)
        super().__init__(None, status_code, headers, media_type)
        # The length is known only once the file is looked at, when sending.
        self.raw_headers[:] = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        if filename is not None and b"content-disposition" not in (k for k, _ in self.raw_headers):
            value = content_disposition(filename, content_disposition_type)
            self.raw_headers.append((b"content-disposition", value.encode("latin-1")))

    def _etag_for(self, st: os.stat_result) -> str | None:
        if self.etag is False:
            return None
        if self.etag is True:
            # Nanosecond mtime and size: every worker and process computes the same tag.
            return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        tag = self.etag
        return tag if tag.startswith(('"', 'W/"')) else f'"{tag}"'

    def _precondition(self, request: Headers, etag: str | None, mtime: int | None) -> int | None:
        # RFC 9110 §13.2.2, for GET and HEAD: the order in which the conditions are evaluated.
        if_match = request.get("if-match")
        if if_match is not None:
            if not _etag_matches(if_match, etag, weak=False):
                return 412
        elif mtime is not None:
            ius = request.get("if-unmodified-since")
            if ius is not None:
                ts = _parse_http_date(ius)
                if ts is not None and mtime > ts:
                    return 412
        if_none_match = request.get("if-none-match")
        if if_none_match is not None:
            if _etag_matches(if_none_match, etag, weak=True):
                return 304
        elif mtime is not None:
            ims = request.get("if-modified-since")
            if ims is not None:
                ts = _parse_http_date(ims)
                if ts is not None and mtime <= ts:
                    return 304
        return None

    def _range_applies(self, request: Headers, etag: str | None, mtime: int | None) -> bool:
        if_range = request.get("if-range")
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith(('"', 'W/"')):
            return _etag_matches(if_range, etag, weak=False)
        ts = _parse_http_date(if_range)
        return ts is not None and mtime is not None and mtime == ts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the file (or a 304, 206, 412, 416 or 404 as the request and the disk say)."""
        loop = asyncio.get_running_loop()
        st = self.stat_result
        if st is None:
            st = await loop.run_in_executor(None, _stat_file, self.path)
        if st is None:
            await PlainTextResponse("Not Found", 404)(scope, receive, send)
            return
        size = st.st_size
        method = scope.get("method", "GET")
        request = Headers(raw=scope.get("headers") or [])
        headers = list(self._final_headers(scope))
        names = {k for k, _ in headers}
        mtime = int(st.st_mtime) if self.last_modified else None
        etag = self._etag_for(st)
        if mtime is not None and b"last-modified" not in names:
            headers.append((b"last-modified", formatdate(mtime, usegmt=True).encode()))
        if etag is not None and b"etag" not in names:
            headers.append((b"etag", etag.encode("latin-1")))

        status = self.status_code
        ranges: list[tuple[int, int]] | None = None
        if status == 200 and method in ("GET", "HEAD"):
            if b"accept-ranges" not in names:
                headers.append((b"accept-ranges", b"bytes"))
            early = self._precondition(request, etag, mtime)
            if early is not None:
                await self._send_empty(send, early, headers)
                return
            range_header = request.get("range")
            if (
                method == "GET"
                and range_header is not None
                and size > 0  # an empty file has no byte to range over: send it whole
                and self._range_applies(request, etag, mtime)
            ):
                ranges = _parse_ranges(range_header, size)
            if ranges == []:
                await self._send_empty(
                    send, 416, headers, [(b"content-range", f"bytes */{size}".encode())]
                )
                return

        if ranges is None or len(ranges) == 1:
            first, last = ranges[0] if ranges else (0, size - 1)
            length = last - first + 1
            if ranges:
                status = 206
                headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
            headers.append((b"content-length", str(length).encode()))
            parts: list[tuple[bytes, int, int]] = [(b"", first, length)]
            tail = b""
        else:
            status = 206
            parts, tail, total = self._multipart(headers, ranges, size)
            headers.append((b"content-length", str(total).encode()))

        if method == "HEAD":
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        elif ranges is None and "http.response.pathsend" in (scope.get("extensions") or {}):
            # The server sends the file itself (zero-copy where it can).
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.pathsend", "path": os.path.abspath(self.path)})
        else:
            try:
                f = await loop.run_in_executor(None, _open, self.path)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                await PlainTextResponse("Not Found", 404)(scope, receive, send)
                return
            try:
                sending = self._send_parts(send, f, status, headers, parts, tail)
                await _until_disconnect(sending, receive)
            finally:
                await self._close(f)
        if self.background is not None:
            await self.background()

    def _multipart(
        self, headers: list[tuple[bytes, bytes]], ranges: list[tuple[int, int]], size: int
    ) -> tuple[list[tuple[bytes, int, int]], bytes, int]:
        boundary = secrets.token_hex(16)
        content_type = b"application/octet-stream"
        kept: list[tuple[bytes, bytes]] = []
        for k, v in headers:
            if k == b"content-type":
                content_type = v
            else:
                kept.append((k, v))
        headers[:] = kept
        headers.append(
            (b"content-type", f"multipart/byteranges; boundary={boundary}".encode("latin-1"))
        )
        parts: list[tuple[bytes, int, int]] = []
        total = 0
        for i, (first, last) in enumerate(ranges):
            head = (
                (b"\r\n" if i else b"")
                + f"--{boundary}\r\n".encode()
                + b"content-type: "
                + content_type
                + f"\r\ncontent-range: bytes {first}-{last}/{size}\r\n\r\n".encode()
            )
            length = last - first + 1
            parts.append((head, first, length))
            total += len(head) + length
        tail = f"\r\n--{boundary}--\r\n".encode()
        return parts, tail, total + len(tail)

    async def _send_parts(
        self,
        send: Send,
        f: BinaryIO,
        status: int,
        headers: list[tuple[bytes, bytes]],
        parts: list[tuple[bytes, int, int]],
        tail: bytes,
    ) -> None:
        loop = asyncio.get_running_loop()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        chunk_size = self.chunk_size
        for head, offset, length in parts:
            if head:
                await send({"type": "http.response.body", "body": head, "more_body": True})
            while length > 0:
                data = await loop.run_in_executor(
                    None, _read_at, f, offset, min(chunk_size, length)
                )
                if not data:
                    # Content-Length is already sent: a shorter body must fail loudly.
                    raise RuntimeError(f"file {self.path!r} shrank while it was being sent")
                offset += len(data)
                length -= len(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": tail})

    @staticmethod
    async def _send_empty(
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        out = [(k, v) for k, v in headers if k not in _BODY_HEADERS]
        if extra:
            out += extra
        if status != 304:
            out.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _close(f: BinaryIO) -> None:
        # A read cancelled by a disconnect may still run in its thread and holds the file's
        # lock; closing in the pool waits for it there instead of on the event loop.
        try:
            await asyncio.get_running_loop().run_in_executor(None, f.close)
        finally:
            if not f.closed:  # cancelled before the pool ran it
                f.close()

    def __repr__(self) -> str:
        return f"<FileResponse {self.status_code} {self.path!r}>"
