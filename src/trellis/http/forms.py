"""Form bodies: ``application/x-www-form-urlencoded`` and ``multipart/form-data``, with limits.

``parse_form`` reads the body chunk by chunk and hands each chunk to python-multipart's streaming
parsers, so memory never holds more than one chunk plus the (bounded) text fields. File parts go
to a ``SpooledTemporaryFile`` as they arrive: in memory up to ``spool_threshold``, on disk after.

Every limit is on by default (``FormLimits``). Sizes beyond a limit are refused with 413, counts
beyond a limit and malformed bodies with 400, content types other than the two form types with 415.
The total body size is the caller's to enforce (``Request`` refuses it with 413 itself).
"""

from __future__ import annotations

import codecs
import io
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import IO
from urllib.parse import unquote_to_bytes

import anyio.to_thread
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import (
    MultipartParser,
    MultipartState,
    QuerystringParser,
    parse_options_header,
)

from trellis.datastructures import Headers, MultiDict
from trellis.exceptions import (
    BadRequestError,
    HTTPError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

__all__ = ["FormData", "FormLimits", "UploadFile", "parse_form"]

_MIB = 1024 * 1024

# RFC 2046 section 5.1.1: 1 to 70 of these, not ending in a space. python-multipart accepts up
# to 256 characters; we accept that length too, since a few clients exceed 70.
_BCHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")
_MAX_BOUNDARY = 256


@dataclass(frozen=True, slots=True)
class FormLimits:
    """Limits applied while a form body is parsed; all on by default.

    Attributes:
        max_fields: Most text fields: urlencoded pairs, or multipart parts without a filename.
            Beyond it: 400.
        max_parts: Most multipart parts of any kind (text fields and files). Beyond it: 400.
        max_field_size: Largest name or value of one text field, in bytes as sent (percent-encoded
            for urlencoded bodies). Beyond it: 413.
        max_file_size: Largest single uploaded file, in bytes. Beyond it: 413, refused as soon as
            the limit is crossed, before the rest is read or written to disk.
        max_form_memory: Largest total of all text field names and values together; they are
            kept in memory, files are not. Beyond it: 413.
        spool_threshold: Size up to which an uploaded file stays in memory; larger files roll
            over to a temporary file on disk (0: every non-empty file goes to disk).
    """

    max_fields: int = 1000
    max_parts: int = 1000
    max_field_size: int = 1 * _MIB
    max_file_size: int = 100 * _MIB
    max_form_memory: int = 8 * _MIB
    spool_threshold: int = 1 * _MIB

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"FormLimits.{name} must be an int >= 0, got {value!r}")


_DEFAULT_LIMITS = FormLimits()


class UploadFile:
    """A file sent in a ``multipart/form-data`` body.

    The contents live in ``file``, a ``tempfile.SpooledTemporaryFile``: in memory while small,
    on disk past the spool threshold. The async methods run blocking file calls in a worker
    thread only once the file is on disk; the synchronous ``file`` is there for code that wants
    it (for example ``shutil.copyfileobj`` inside a sync handler).

    Args:
        file: The file object holding the contents, positioned at the start.
        filename: The name the client gave, reduced to its last path segment (``""`` when a
            browser sends an empty file input). It is client-controlled: never use it as a path
            without checking it. ``None`` only for uploads built by hand without one.
        content_type: The part's ``Content-Type``, or ``application/octet-stream`` if absent.
        headers: All headers of the part.
        size: Size of the contents in bytes.

    Example:
        ```python
        upload = form["avatar"]
        if isinstance(upload, UploadFile):
            data = await upload.read()
        ```
    """

    __slots__ = ("content_type", "file", "filename", "headers", "size")

    def __init__(
        self,
        file: IO[bytes],
        *,
        filename: str | None = None,
        content_type: str = "application/octet-stream",
        headers: Headers | None = None,
        size: int = 0,
    ) -> None:
        self.file = file
        self.filename = filename
        self.content_type = content_type
        self.headers = headers if headers is not None else Headers()
        self.size = size

    @property
    def in_memory(self) -> bool:
        """Whether the contents are still in memory (not yet rolled over to disk)."""
        if isinstance(self.file, io.BytesIO):
            return True
        # SpooledTemporaryFile keeps no public flag; ``_rolled`` is stable since Python 2.6.
        # Any other file object is assumed to block.
        return getattr(self.file, "_rolled", True) is False

    def _fits_in_memory(self, extra: int) -> bool:
        # A write that makes a SpooledTemporaryFile roll over copies it to disk: do it in a thread.
        if not self.in_memory:
            return False
        max_size: int = getattr(self.file, "_max_size", 0)
        return max_size <= 0 or self.file.tell() + extra <= max_size

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (everything left when ``size`` is negative)."""
        if self.in_memory:
            return self.file.read(size)
        return await anyio.to_thread.run_sync(self.file.read, size)

    async def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` (relative to ``whence``); return the new position."""
        if self.in_memory:
            return self.file.seek(offset, whence)
        return await anyio.to_thread.run_sync(self.file.seek, offset, whence)

    async def write(self, data: bytes) -> int:
        """Write ``data`` at the current position; ``size`` grows to cover it."""
        if self._fits_in_memory(len(data)):
            written = self.file.write(data)
            position = self.file.tell()
        else:
            written, position = await anyio.to_thread.run_sync(_write_and_tell, self.file, data)
        self.size = max(self.size, position)
        return written

    async def close(self) -> None:
        """Close the file; a temporary file on disk is deleted."""
        if self.in_memory:
            self.file.close()
        else:
            await anyio.to_thread.run_sync(self.file.close)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={self.size!r})"
        )


def _write_and_tell(file: IO[bytes], data: bytes) -> tuple[int, int]:
    return file.write(data), file.tell()


class FormData(MultiDict[str | UploadFile]):
    """A parsed form: text fields as ``str``, files as ``UploadFile``, in arrival order.

    ``form[name]`` gives the last value of ``name``, ``form.getlist(name)`` all of them. Call
    ``close()`` when done to release the files (``Request`` does it after the response).
    """

    __slots__ = ()

    async def close(self) -> None:
        """Close every ``UploadFile`` in the form."""
        for _, value in self.multi_items():
            if isinstance(value, UploadFile):
                await value.close()


async def parse_form(
    content_type: str,
    stream: AsyncIterable[bytes],
    limits: FormLimits = _DEFAULT_LIMITS,
) -> FormData:
    """Parse a form body, enforcing ``limits`` while it streams in.

    Args:
        content_type: The request's full ``Content-Type`` header value.
        stream: The body, in chunks of any size. It is read only as far as needed: on an error
            the rest is left unread.
        limits: The limits to enforce.

    Returns:
        The fields and files. The caller owns the files and should ``await form.close()``.

    Raises:
        UnsupportedMediaTypeError: 415, the content type is not a form type or names an
            unknown charset.
        BadRequestError: 400, the body is malformed (no or bad boundary, truncated body, a part
            without ``Content-Disposition`` or name, text not valid in its charset), or it has
            more fields or parts than allowed.
        PayloadTooLargeError: 413, a field, a file or all text fields together are larger than
            allowed.

    Example:
        ```python
        form = await parse_form(request.headers.get("content-type", ""), request.stream())
        ```
    """
    media_type, params = parse_options_header(content_type)
    if media_type == b"application/x-www-form-urlencoded":
        charset = _charset(params, UnsupportedMediaTypeError)
        return await _parse_urlencoded(stream, charset, limits)
    if media_type == b"multipart/form-data":
        charset = _charset(params, UnsupportedMediaTypeError)
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadRequestError(detail="multipart/form-data body without a boundary parameter")
        if (
            len(boundary) > _MAX_BOUNDARY
            or boundary.endswith(b" ")
            or not _BCHARS.issuperset(boundary)
        ):
            raise BadRequestError(
                detail=f"invalid multipart boundary {boundary.decode('latin-1')!r}"
            )
        return await _MultipartReader(boundary, charset, limits).parse(stream)
    got = media_type.decode("latin-1") or "no content type"
    raise UnsupportedMediaTypeError(
        detail=f"expected application/x-www-form-urlencoded or multipart/form-data, got {got}"
    )


def _charset(
    params: dict[bytes, bytes],
    error: type[HTTPError],
    default: str = "utf-8",
) -> str:
    raw = params.get(b"charset")
    if raw is None:
        return default
    name = raw.decode("latin-1").strip()
    try:
        # bytes.decode refuses codecs that are not text encodings (base64, rot13 ...).
        b"a".decode(name, "ignore")
    except LookupError:
        raise error(detail=f"unknown charset {name!r}") from None
    return codecs.lookup(name).name


def _decode(raw: bytes, charset: str, what: str) -> str:
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        raise BadRequestError(detail=f"{what} is not valid {charset}") from None


def _short(name: str) -> str:
    # Names are client-controlled and may be huge; error details quote only their start.
    return repr(name) if len(name) <= 40 else repr(name[:40]) + "..."


def _too_many_fields(limits: FormLimits) -> BadRequestError:
    return BadRequestError(detail=f"too many form fields (limit {limits.max_fields})")


def _too_much_text(limits: FormLimits) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        detail=f"form fields are larger than {limits.max_form_memory} bytes in total"
    )


async def _parse_urlencoded(
    stream: AsyncIterable[bytes], charset: str, limits: FormLimits
) -> FormData:
    items: list[tuple[str, str | UploadFile]] = []
    name = bytearray()
    value = bytearray()
    count = 0
    memory = 0

    # python-multipart calls these synchronously from write(); raising here stops it at once.
    def on_field_start() -> None:
        nonlocal count
        count += 1
        if count > limits.max_fields:
            raise _too_many_fields(limits)
        name.clear()
        value.clear()

    def on_field_name(data: bytes, start: int, end: int) -> None:
        nonlocal memory
        memory += end - start
        name.extend(data[start:end])
        if len(name) > limits.max_field_size:
            raise PayloadTooLargeError(
                detail=f"a form field name is larger than {limits.max_field_size} bytes"
            )
        if memory > limits.max_form_memory:
            raise _too_much_text(limits)

    def on_field_data(data: bytes, start: int, end: int) -> None:
        nonlocal memory
        memory += end - start
        value.extend(data[start:end])
        if len(value) > limits.max_field_size:
            raise PayloadTooLargeError(
                detail=f"the value of form field {_short(_unquote(name, charset, 'replace'))} is "
                f"larger than {limits.max_field_size} bytes"
            )
        if memory > limits.max_form_memory:
            raise _too_much_text(limits)

    def on_field_end() -> None:
        items.append((_unquote(name, charset), _unquote(value, charset)))

    parser = QuerystringParser(
        callbacks={
            "on_field_start": on_field_start,
            "on_field_name": on_field_name,
            "on_field_data": on_field_data,
            "on_field_end": on_field_end,
        }
    )
    async for chunk in stream:
        if chunk:
            parser.write(chunk)
    parser.finalize()
    return FormData(items)


def _unquote(raw: bytearray, charset: str, errors: str = "strict") -> str:
    data = unquote_to_bytes(bytes(raw).replace(b"+", b" "))
    try:
        return data.decode(charset, errors)
    except UnicodeDecodeError:
        raise BadRequestError(detail=f"form data is not valid {charset}") from None


class _MultipartReader:
    """Collects one multipart body's parts from python-multipart's callbacks."""

    __slots__ = (
        "charset",
        "field_charset",
        "fields",
        "header_field",
        "header_value",
        "headers",
        "items",
        "limits",
        "memory",
        "name",
        "parser",
        "parts",
        "pending",
        "received",
        "upload",
        "uploads",
        "value",
    )

    def __init__(self, boundary: bytes, charset: str, limits: FormLimits) -> None:
        self.charset = charset
        self.limits = limits
        self.items: list[tuple[str, str | UploadFile]] = []
        self.uploads: list[UploadFile] = []
        # File data from the current chunk, written (maybe in a thread) once write() returns:
        # the parser's callbacks are synchronous and must not block the event loop.
        self.pending: list[tuple[UploadFile, bytes]] = []
        self.parts = 0
        self.fields = 0
        self.memory = 0
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: list[tuple[bytes, bytes]] = []
        self.name = ""
        self.upload: UploadFile | None = None
        self.value = bytearray()
        self.field_charset = charset
        self.received = 0
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self.on_part_begin,
                "on_header_field": self.on_header_field,
                "on_header_value": self.on_header_value,
                "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished,
                "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end,
            },
        )

    async def parse(self, stream: AsyncIterable[bytes]) -> FormData:
        seen = 0
        try:
            async for chunk in stream:
                if not chunk:
                    continue
                seen += len(chunk)
                try:
                    self.parser.write(chunk)
                except MultipartParseError as exc:
                    raise BadRequestError(detail=f"malformed multipart body: {exc}") from exc
                for upload, data in self.pending:
                    await upload.write(data)
                self.pending.clear()
            # An empty body is an empty form; anything else must end with the closing boundary.
            if seen and self.parser.state != MultipartState.END:
                raise BadRequestError(detail="multipart body ended before its closing boundary")
            for upload in self.uploads:
                await upload.seek(0)
        except BaseException:
            # Close synchronously: awaiting here could be cancelled again and leak the files.
            self.pending.clear()
            for upload in self.uploads:
                upload.file.close()
            raise
        return FormData(self.items)

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise BadRequestError(
                detail=f"too many multipart parts (limit {self.limits.max_parts})"
            )
        self.headers = []
        self.upload = None
        self.received = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        # python-multipart bounds each header line and the header count per part.
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers.append(
            (bytes(self.header_field).lower(), bytes(self.header_value).strip(b" \t"))
        )
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        disposition = next((v for k, v in self.headers if k == b"content-disposition"), None)
        if disposition is None:
            raise BadRequestError(detail="a multipart part has no Content-Disposition header")
        _, params = parse_options_header(disposition)
        raw_name = params.get(b"name")
        if raw_name is None:
            raise BadRequestError(detail="a multipart part has no name in its Content-Disposition")
        self.name = _decode(raw_name, self.charset, "a multipart field name")
        content_type = next((v for k, v in self.headers if k == b"content-type"), None)
        raw_filename = params.get(b"filename")
        if raw_filename is not None:
            self.upload = UploadFile(
                _spooled_file(self.limits.spool_threshold),
                filename=_basename(raw_filename.decode(self.charset, "replace")),
                content_type=(
                    content_type.decode("latin-1") if content_type else "application/octet-stream"
                ),
                headers=Headers(raw=self.headers),
            )
            self.uploads.append(self.upload)
            self.items.append((self.name, self.upload))
            return
        self.fields += 1
        if self.fields > self.limits.max_fields:
            raise _too_many_fields(self.limits)
        self.memory += len(raw_name)
        if self.memory > self.limits.max_form_memory:
            raise _too_much_text(self.limits)
        self.field_charset = self.charset
        if content_type is not None:
            _, type_params = parse_options_header(content_type)
            self.field_charset = _charset(type_params, BadRequestError, self.charset)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.received += end - start
        limits = self.limits
        if self.upload is not None:
            if self.received > limits.max_file_size:
                raise PayloadTooLargeError(
                    detail=f"the file in form field {_short(self.name)} is larger than "
                    f"{limits.max_file_size} bytes"
                )
            self.pending.append((self.upload, data[start:end]))
            return
        if self.received > limits.max_field_size:
            raise PayloadTooLargeError(
                detail=f"the value of form field {_short(self.name)} is larger than "
                f"{limits.max_field_size} bytes"
            )
        self.memory += end - start
        if self.memory > limits.max_form_memory:
            raise _too_much_text(limits)
        self.value += data[start:end]

    def on_part_end(self) -> None:
        if self.upload is None:
            what = f"the value of form field {_short(self.name)}"
            self.items.append((self.name, _decode(bytes(self.value), self.field_charset, what)))
            self.value = bytearray()
        self.upload = None


def _spooled_file(threshold: int) -> tempfile.SpooledTemporaryFile[bytes]:
    # max_size=0 would mean "never roll over"; a threshold of 0 means "always on disk".
    return tempfile.SpooledTemporaryFile(max_size=max(threshold, 1))


def _basename(filename: str) -> str:
    # RFC 7578 section 4.2: only the last path segment is meaningful; some clients send more.
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "" if base in (".", "..") else base
