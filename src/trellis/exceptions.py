"""Exceptions raised by Trellis and by handlers.

``HTTPError`` and its subclasses become HTTP responses: JSON clients get an RFC 9457
``application/problem+json`` body, browsers an HTML page. The other exceptions report mistakes in
how an application is put together, at start-up, with a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trellis import status as _status

__all__ = [
    "AppFrozenError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ForbiddenError",
    "HTTPError",
    "MethodNotAllowedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RequestHeaderFieldsTooLargeError",
    "RequestValidationError",
    "RouteConflictError",
    "TrellisError",
    "URLBuildError",
    "UnauthorizedError",
    "UnprocessableContentError",
    "UnsupportedMediaTypeError",
]


class TrellisError(Exception):
    """Base class of the errors Trellis raises about the application itself."""


class ConfigurationError(TrellisError):
    """The application, a route or a setting is put together wrongly; raised at start-up."""


class RouteConflictError(ConfigurationError):
    """Two routes match the same requests, or two routes share a name."""


class AppFrozenError(TrellisError, RuntimeError):
    """Something tried to change the application after it was built (started serving)."""


class URLBuildError(TrellisError, LookupError):
    """``url_for`` was asked for a route name that does not exist or with wrong parameters."""


class HTTPError(Exception):
    """An error that becomes an HTTP response with ``status``.

    Args:
        status: The HTTP status code (4xx or 5xx).
        detail: A human-readable explanation for this occurrence; shown to the client.
        headers: Extra response headers (for example ``Retry-After`` or ``WWW-Authenticate``).
        title: A short summary of the problem type; defaults to the status phrase.
        type: A URI that identifies the problem type (RFC 9457 ``type``); defaults to
            ``"about:blank"``.
        extra: Further members of the problem document (for example ``{"errors": [...]}``).

    Example:
        ```python
        from trellis import App, HTTPError
        from trellis.testing import TestClient

        app = App()


        @app.get("/users/{id:int}")
        async def user(id: int) -> dict[str, int]:
            raise HTTPError(404, "No user with id 7")


        with TestClient(app) as client:
            response = client.get("/users/7")
            assert response.status_code == 404
            assert "No user with id 7" in response.text
        ```
    """

    status: int = 500

    def __init__(
        self,
        status: int | None = None,
        detail: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        title: str | None = None,
        type: str | None = None,  # the RFC 9457 member is called "type"
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if status is not None:
            if not 400 <= status <= 599:
                raise ValueError(f"HTTPError status must be 4xx or 5xx, got {status}")
            self.status = status
        self.detail = detail
        self.title = title or _status.phrase(self.status)
        self.type = type or "about:blank"
        self.extra: dict[str, Any] = dict(extra) if extra else {}
        if headers is None:
            self.headers: list[tuple[str, str]] = []
        elif isinstance(headers, Mapping):
            self.headers = list(headers.items())
        else:
            self.headers = list(headers)
        super().__init__(self.status, detail)

    def __str__(self) -> str:
        return f"{self.status} {self.title}" + (f": {self.detail}" if self.detail else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, detail={self.detail!r})"

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Return the RFC 9457 problem document for this error."""
        problem: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            problem["detail"] = self.detail
        if instance is not None:
            problem["instance"] = instance
        problem.update(self.extra)
        return problem


class _FixedStatusError(HTTPError):
    """An ``HTTPError`` whose status is fixed by its class: ``detail`` comes first."""

    def __init__(
        self,
        detail: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        title: str | None = None,
        type: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(None, detail, headers, title=title, type=type, extra=extra)


class BadRequestError(_FixedStatusError):
    """400: the request is malformed (bad encoding, invalid JSON, broken multipart ...)."""

    status = 400


class UnauthorizedError(_FixedStatusError):
    """401: authentication is required and missing or wrong."""

    status = 401


class ForbiddenError(_FixedStatusError):
    """403: the client is known but not allowed to do this."""

    status = 403


class NotFoundError(_FixedStatusError):
    """404: nothing here."""

    status = 404


class MethodNotAllowedError(HTTPError):
    """405: the path exists but not for this method; carries the ``Allow`` header.

    Args:
        allowed: The methods the path answers to.
        detail: Optional explanation.
    """

    status = 405

    def __init__(self, allowed: Iterable[str], detail: str | None = None) -> None:
        self.allowed = tuple(allowed)
        super().__init__(detail=detail, headers=[("allow", ", ".join(self.allowed))])


class ConflictError(_FixedStatusError):
    """409: the request conflicts with the current state (a unique value already taken ...)."""

    status = 409


class PayloadTooLargeError(_FixedStatusError):
    """413: the request body, a file or a form part is larger than the configured limit."""

    status = 413


class UnsupportedMediaTypeError(_FixedStatusError):
    """415: the body's content type is not one this endpoint reads."""

    status = 415


class UnprocessableContentError(_FixedStatusError):
    """422: the request is well-formed but its values do not validate."""

    status = 422


class RequestHeaderFieldsTooLargeError(_FixedStatusError):
    """431: too many headers, or a header too large."""

    status = 431


class RequestValidationError(HTTPError):
    """422: some request values do not validate; ``errors`` lists every one of them.

    Each error is ``{"loc": [...], "msg": ..., "type": ...}`` with the location starting with
    where the value was looked for: ``["query", "limit"]``, ``["body", "tags", 2]``.
    """

    status = 422

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        count = len(errors)
        detail = f"{count} value{'s' if count != 1 else ''} in the request did not validate"
        super().__init__(None, detail, extra={"errors": errors})
