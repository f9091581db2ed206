"""The error ticket: what is stored for one unhandled exception.

A ticket is a frozen dataclass of JSON-able values; ``Ticket.as_dict()`` is the stored form
(the JSON file of ``FileTicketStore``, the ``data`` column of ``DatabaseTicketStore``) and
``Ticket.from_dict()`` reads it back.

```text
Ticket(
    id="q3k7x2mfa9tbw5ne",           # 16 characters of [a-z2-7]: random, URL-safe
    created_at=datetime(..., tzinfo=UTC),
    exception_type="RuntimeError",    # "module.Qualname" unless a builtin
    message="could not reach the payment service",   # str(exc), scrubbed, at most 2000 chars
    traceback="Traceback (most recent call last): ...",  # chained exceptions too, scrubbed
    frames=[                          # innermost last; "locals" only with capture_locals=True
        {"file": "app.py", "line": 12, "function": "pay", "code": "raise RuntimeError(...)",
         "locals": {"order_id": "42", "card": "[scrubbed]"}},
    ],
    request={
        "method": "POST", "path": "/pay", "scheme": "https", "client": "203.0.113.7",
        "request_id": "0f1e...",
        "query": {"page": ["2"], "token": ["[scrubbed]"]},      # name -> values
        "headers": {"user-agent": "...", "authorization": "[scrubbed]"},
        "cookies": {"theme": "dark", "session": "[scrubbed]"},
        "form": {"email": ["ann@example.com"], "password": ["[scrubbed]"]},  # parsed only
        "json": {"amount": 10, "api_key": "[scrubbed]"},        # parsed only; else absent
    },
    user={"id": "7", "email": "ann@example.com", "username": "ann"},   # or None
    environment={"host": "web-1", "pid": "4242", "app_version": "1.4.0",
                 "python": "3.12.4", "trellis": "0.1.0"},
)
```

``request["form"]`` and ``request["json"]`` are present only when the handler had already
parsed the body (the ticket never reads a body). Uploaded files appear as a description
(``"<file 'a.png' image/png, 1024 bytes>"``), never their contents.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["SCRUBBED", "Ticket", "new_ticket_id"]

#: What replaces a secret value in a ticket.
SCRUBBED = "[scrubbed]"


def new_ticket_id() -> str:
    """A new ticket id: 16 characters of ``[a-z2-7]`` (80 random bits), URL- and file-safe."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


@dataclass(frozen=True, slots=True)
class Ticket:
    """One unhandled exception, as stored (see the module documentation for the shape).

    Attributes:
        id: The ticket id the client was shown ("Error ticket <id>").
        created_at: When the exception happened (UTC, timezone-aware).
        exception_type: The exception's class, ``module.Qualname`` (no module for builtins).
        message: ``str(exc)``, scrubbed and at most 2000 characters.
        traceback: The formatted traceback with chained exceptions, scrubbed and bounded.
        frames: The frames of the traceback, innermost last: ``file``, ``line``,
            ``function``, ``code`` and, when locals are captured, ``locals`` (name -> repr).
        request: Method, path, query, headers, cookies, parsed form or JSON, client, request
            id; secrets replaced by ``"[scrubbed]"``.
        user: ``id``, ``email`` and ``username`` of ``request.state.user``, or ``None``.
        environment: ``host``, ``pid``, ``app_version``, ``python``, ``trellis``.
    """

    id: str
    created_at: datetime
    exception_type: str
    message: str
    traceback: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] | None = None
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """The request's method (``""`` when unknown)."""
        return str(self.request.get("method") or "")

    @property
    def path(self) -> str:
        """The request's path (``""`` when unknown)."""
        return str(self.request.get("path") or "")

    @property
    def request_id(self) -> str:
        """The request id of the failed request (``""`` when unknown)."""
        return str(self.request.get("request_id") or "")

    @property
    def title(self) -> str:
        """``"Type: message"`` on one line, at most 200 characters (for lists)."""
        line = self.exception_type
        message = " ".join(self.message.split())
        if message:
            line += f": {message}"
        return line if len(line) <= 200 else line[:199] + "…"

    def as_dict(self) -> dict[str, Any]:
        """The ticket as JSON-able values (``created_at`` as an ISO 8601 string)."""
        return {
            "id": self.id,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "exception_type": self.exception_type,
            "message": self.message,
            "traceback": self.traceback,
            "frames": self.frames,
            "request": self.request,
            "user": self.user,
            "environment": self.environment,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ticket:
        """A ticket from ``as_dict()``'s form.

        Raises:
            ValueError: ``data`` is not a ticket (a key missing or of the wrong type).
        """
        try:
            created = datetime.fromisoformat(data["created_at"])
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            return cls(
                id=str(data["id"]),
                created_at=created,
                exception_type=str(data["exception_type"]),
                message=str(data.get("message") or ""),
                traceback=str(data.get("traceback") or ""),
                frames=list(data.get("frames") or []),
                request=dict(data.get("request") or {}),
                user=dict(data["user"]) if data.get("user") else None,
                environment={str(k): str(v) for k, v in (data.get("environment") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an error ticket: {exc!r}") from None
