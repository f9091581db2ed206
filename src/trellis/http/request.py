"""The incoming HTTP request: everything is parsed on first use and kept.

A ``Request`` wraps the ASGI scope and ``receive``. Creating one costs a few attribute stores;
headers, query, cookies, body, JSON and form are parsed when first asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from trellis.datastructures import URL
from trellis.exceptions import BadRequestError, PayloadTooLargeError
from trellis.http import _json
from trellis.http.connection import HTTPConnection
from trellis.types import Message, Receive, Scope

if TYPE_CHECKING:
    from trellis.http.forms import FormData, FormLimits

__all__ = ["ClientDisconnectedError", "Request"]

DEFAULT_MAX_BODY_SIZE = 4 * 1024 * 1024


class ClientDisconnectedError(Exception):
    """The client went away before the request body was read in full."""


class _Unset:
    __slots__ = ()


_UNSET: Any = _Unset()
_HUGE = 2**63 - 1


async def _empty_receive() -> Any:
    raise RuntimeError("this request has no receive channel")


class Request(HTTPConnection):
    """An HTTP request.

    Handlers get it by declaring a parameter annotated ``Request``.

    Attributes:
        scope: The ASGI scope.
        path_params: Values taken from the path, already converted (``{id:int}`` gives an int).
    """

    __slots__ = (
        "_body",
        "_disconnected",
        "_form",
        "_json",
        "_peeked",
        "_receive",
        "_stream_used",
        "max_body_size",
        "max_upload_size",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive = _empty_receive,
        *,
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
        max_upload_size: Any = _UNSET,
    ) -> None:
        super().__init__(scope)
        # Multipart bodies (file uploads) have their own, larger limit; None means no limit.
        self.max_upload_size: int | None = (
            max_body_size if max_upload_size is _UNSET else max_upload_size
        )
        self._receive = receive
        self.max_body_size = max_body_size
        self._body: bytes | None = None
        self._json: Any = _UNSET
        self._form: FormData | None = None
        self._stream_used = False
        self._peeked: Message | None = None
        self._disconnected = False

    # -- what the request says -------------------------------------------------------------

    @property
    def method(self) -> str:
        """The HTTP method, upper-case."""
        return str(self.scope["method"])

    @property
    def base_url(self) -> URL:
        """The URL of the application root (scheme, host and root path)."""
        url = self.url
        root = self.scope.get("root_path", "")
        return URL(f"{url.scheme}://{url.netloc}{root}/")

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters, lower-case ("" when absent)."""
        ct: str = self.headers.get("content-type", "")
        return ct.split(";", 1)[0].strip().lower()

    # -- the body --------------------------------------------------------------------------

    def _declared_length(self) -> int | None:
        raw = None
        for k, v in self.scope["headers"]:
            if k == b"content-length":
                if raw is not None and raw != v:
                    raise BadRequestError("Conflicting Content-Length headers")
                raw = v
        if raw is None:
            return None
        if not raw.isdigit():
            raise BadRequestError(f"Invalid Content-Length header: {raw.decode('latin-1')!r}")
        digits = raw.lstrip(b"0") or b"0"
        # int() refuses more than 4300 digits (a 500); anything this long is over every limit.
        return int(digits) if len(digits) <= 18 else _HUGE

    def _json_limit(self) -> int | None:
        settings = getattr(self.scope.get("app"), "settings", None)
        limit = getattr(settings, "max_json_size", None)
        return limit if isinstance(limit, int) else None

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks as they arrive, without keeping them.

        Raises:
            PayloadTooLargeError: the body is larger than the limit (checked against
                ``Content-Length`` before reading, and again while reading).
            BadRequestError: ``Content-Length`` is invalid.
            ClientDisconnectedError: the client went away mid-body.
        """
        async for chunk in self._stream(self._body_limit()):
            yield chunk

    def _body_limit(self) -> int | None:
        limit = self.max_body_size
        if self.max_upload_size != limit and self.content_type == "multipart/form-data":
            limit = self.max_upload_size
        return limit

    async def _stream(self, limit: int | None) -> AsyncIterator[bytes]:
        if self._body is not None:
            yield self._body
            return
        if self._stream_used:
            raise RuntimeError(
                "the request body was already consumed by stream() (or form()); call body()"
                " first to read it more than once"
            )
        self._stream_used = True
        declared = self._declared_length()
        if limit is not None and declared is not None and declared > limit:
            raise PayloadTooLargeError(
                f"Request body of {declared} bytes is larger than the limit of {limit}"
            )
        received = 0
        while True:
            message = await self._next_message()
            mtype = message["type"]
            if mtype == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    received += len(chunk)
                    if limit is not None and received > limit:
                        raise PayloadTooLargeError(
                            f"Request body is larger than the limit of {limit} bytes"
                        )
                    yield chunk
                if not message.get("more_body", False):
                    break
            elif mtype == "http.disconnect":
                self._disconnected = True
                raise ClientDisconnectedError("client disconnected while sending the body")

    async def _next_message(self) -> Message:
        message = self._peeked
        if message is not None:
            self._peeked = None
            return message
        if self._disconnected:
            return {"type": "http.disconnect"}
        return await self._receive()

    async def body(self) -> bytes:
        """Return the whole body (read once, then cached).

        Raises:
            PayloadTooLargeError: the body is larger than ``max_body_size`` (413;
                ``max_upload_size`` for a multipart body).
            BadRequestError: ``Content-Length`` is invalid.
        """
        return await self._read(self._body_limit())

    async def _read(self, limit: int | None) -> bytes:
        if self._body is None:
            if not self._stream_used and self._peeked is None and not self._disconnected:
                # PERF: most bodies arrive in one message; read it without an async generator.
                declared = self._declared_length()
                if limit is not None and declared is not None and declared > limit:
                    raise PayloadTooLargeError(
                        f"Request body of {declared} bytes is larger than the limit of {limit}"
                    )
                message = await self._receive()
                if message["type"] == "http.request" and not message.get("more_body", False):
                    body: bytes = message.get("body", b"")
                    if limit is not None and len(body) > limit:
                        raise PayloadTooLargeError(
                            f"Request body is larger than the limit of {limit} bytes"
                        )
                    self._stream_used = True
                    self._body = body
                    return body
                self._peeked = message
            chunks = [chunk async for chunk in self._stream(limit)]
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """Return the body decoded as JSON, whatever its ``Content-Type``.

        The body is also held to the ``max_json_size`` setting, on top of ``max_body_size``.

        Raises:
            BadRequestError: the body is empty or not valid JSON (400, problem+json).
            PayloadTooLargeError: the body is larger than either limit (413).
        """
        if self._json is _UNSET:
            body = await self.json_body()
            try:
                self._json = _json.loads(body)
            except ValueError as exc:
                raise BadRequestError(detail=f"Invalid JSON body: {exc}") from None
        return self._json

    async def json_body(self) -> bytes:
        """Return the raw body, held to ``max_json_size`` as well as ``max_body_size``.

        For validating JSON straight from the bytes (typed body parameters do this).

        Raises:
            PayloadTooLargeError: the body is larger than either limit (413).
        """
        limit = self._body_limit()
        json_limit = self._json_limit()
        if json_limit is not None and (limit is None or json_limit < limit):
            limit = json_limit
        if self._body is not None and limit is not None and len(self._body) > limit:
            raise PayloadTooLargeError(
                detail=f"JSON body is larger than the limit of {limit} bytes"
            )
        return await self._read(limit)

    async def form(self, limits: FormLimits | None = None) -> FormData:
        """Return the parsed form (urlencoded or multipart); uploads are spooled to disk.

        Raises:
            BadRequestError: malformed form data.
            PayloadTooLargeError: a part or file over its limit.
            UnsupportedMediaTypeError: the body is not a form.
        """
        if self._form is None:
            from trellis.http.forms import parse_form

            if limits is None:
                app = self.scope.get("app")
                limits = getattr(app, "_form_limits", None)
            ctype = self.headers.get("content-type", "")
            if limits is None:
                self._form = await parse_form(ctype, self.stream())
            else:
                self._form = await parse_form(ctype, self.stream(), limits)
        return self._form

    async def close(self) -> None:
        """Release what the request holds (uploaded files). Trellis calls this for you."""
        if self._form is not None:
            await self._form.close()

    async def is_disconnected(self) -> bool:
        """Whether the client has gone away.

        Looks at the next ASGI message without waiting for one. A part of the body that
        arrives meanwhile is kept for ``body()``/``stream()``, not lost; while it waits to be
        read, the answer is ``False``.
        """
        if self._disconnected:
            return True
        if self._peeked is not None:
            return False
        try:
            message = await asyncio.wait_for(self._receive(), timeout=0.0001)
        except TimeoutError:
            return False
        mtype = message.get("type")
        if mtype == "http.disconnect":
            self._disconnected = True
            return True
        if mtype == "http.request":
            self._peeked = message
        return False

    def __repr__(self) -> str:
        return f"<Request {self.scope.get('method')} {self.scope.get('path')!r}>"
