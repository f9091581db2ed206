"""Building a ticket from a failed request: what is kept, how it is bounded and scrubbed."""

from __future__ import annotations

import linecache
import os
import platform
import reprlib
import socket
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from trellis.contrib.tickets.models import SCRUBBED, Ticket, new_ticket_id
from trellis.contrib.tickets.scrub import Scrubber, Secrets
from trellis.http.request import Request

# Bounds: a ticket stays well under a megabyte whatever the request or the exception.
MAX_MESSAGE = 2000
MAX_TRACEBACK = 64_000
MAX_FRAMES = 50
MAX_LOCALS = 50
MAX_REPR = 500
MAX_VALUE = 2000
MAX_ITEMS = 100

_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlevel = 3
_repr.maxdict = _repr.maxlist = _repr.maxtuple = _repr.maxset = 20


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _cut_middle(text: str, limit: int) -> str:
    # The start (first frames) and the end (the error itself) matter most.
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n… {len(text) - limit} characters cut …\n{text[-tail:]}"


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception as exc:
        return f"<str() failed: {type(exc).__name__}>"


def _safe_repr(value: Any) -> str:
    try:
        return _cut(_repr.repr(value), MAX_REPR)
    except Exception as exc:
        return f"<repr() failed: {type(exc).__name__}>"


def type_name(exc: BaseException) -> str:
    """``module.Qualname`` of the exception's class; builtins without the module."""
    cls = type(exc)
    module = getattr(cls, "__module__", "builtins")
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def environment(app_version: str | None) -> dict[str, str]:
    """Where the exception happened: host, process, versions."""
    from trellis import __version__

    env = {
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        "python": platform.python_version(),
        "trellis": __version__,
    }
    if app_version:
        env["app_version"] = app_version
    return env


class Capture:
    """Turns ``(request, exc)`` into a scrubbed ``Ticket``: one per exception."""

    def __init__(self, scrubber: Scrubber, *, capture_locals: bool) -> None:
        self.scrubber = scrubber
        self.capture_locals = capture_locals

    def ticket(
        self,
        request: Request,
        exc: BaseException,
        request_id: str,
        environment: dict[str, str],
        *,
        now: datetime | None = None,
    ) -> Ticket:
        """The ticket of ``exc`` raised while serving ``request``."""
        secrets = self.scrubber.secrets()
        # By name first, collecting the secret values; then by value over everything.
        req = self._request(request, request_id, secrets)
        frames = self._frames(exc, secrets)
        user = _user(request)
        message = _cut(_safe_str(exc), MAX_MESSAGE)
        try:
            tb = "".join(traceback.format_exception(exc))
        except Exception as format_exc:  # a broken __str__ deep in the chain
            tb = f"<traceback could not be formatted: {type(format_exc).__name__}>"
        return Ticket(
            id=new_ticket_id(),
            created_at=now or datetime.now(UTC),
            exception_type=type_name(exc),
            message=secrets.text(message),
            traceback=secrets.text(_cut_middle(tb, MAX_TRACEBACK)),
            frames=secrets.deep(frames),
            request=secrets.deep(req),
            user=secrets.deep(user) if user is not None else None,
            environment=environment,
        )

    # -- the request ---------------------------------------------------------------------------

    def _request(self, request: Request, request_id: str, secrets: Secrets) -> dict[str, Any]:
        scrubber = self.scrubber
        headers: dict[str, str] = {}
        for index, (name, value) in enumerate(request.headers.items()):
            if index >= MAX_ITEMS:
                break
            if scrubber.is_secret_header(name):
                if name in ("authorization", "proxy-authorization"):
                    secrets.add_authorization(value)
                else:
                    secrets.add(value)
                headers[name] = SCRUBBED
            elif name in headers:
                headers[name] = _cut(f"{headers[name]}, {value}", MAX_VALUE)
            else:
                headers[name] = _cut(value, MAX_VALUE)
        cookies: dict[str, str] = {}
        for name, value in list(request.cookies.items())[:MAX_ITEMS]:
            if scrubber.is_secret(name):
                secrets.add(value)
                cookies[name] = SCRUBBED
            else:
                cookies[name] = _cut(value, MAX_VALUE)
        for name, value in request.path_params.items():
            if scrubber.is_secret(name):
                secrets.add(value)  # replaced in the path by the value pass
        client = request.client
        data: dict[str, Any] = {
            "method": request.method,
            "path": _cut(request.path, MAX_VALUE),
            "scheme": request.scheme,
            "client": client[0] if client else None,
            "request_id": request_id,
            "query": self._pairs(request.query.multi_items(), secrets),
            "headers": headers,
            "cookies": cookies,
        }
        # Only what the handler already parsed: a ticket never reads the body.
        form = getattr(request, "_form", None)
        if form is not None:
            data["form"] = self._pairs(form.multi_items(), secrets)
        parsed = getattr(request, "_json", None)
        if isinstance(parsed, dict | list | str | int | float):
            data["json"] = secrets.by_name(parsed, items=MAX_ITEMS, length=MAX_VALUE)
        return data

    def _pairs(self, items: list[tuple[str, Any]], secrets: Secrets) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, value in items[:MAX_ITEMS]:
            if self.scrubber.is_secret(name):
                secrets.add(value if isinstance(value, str) else None)
                shown = SCRUBBED
            elif isinstance(value, str):
                shown = _cut(value, MAX_VALUE)
            else:  # an UploadFile: what it was, never its contents
                filename = getattr(value, "filename", None)
                content_type = getattr(value, "content_type", "")
                shown = f"<file {filename!r} {content_type}, {getattr(value, 'size', 0)} bytes>"
            out.setdefault(name, []).append(shown)
        return out

    # -- the traceback ------------------------------------------------------------------------

    def _frames(self, exc: BaseException, secrets: Secrets) -> list[dict[str, Any]]:
        walked = list(traceback.walk_tb(exc.__traceback__))[-MAX_FRAMES:]
        frames: list[dict[str, Any]] = []
        for frame, lineno in walked:
            code = frame.f_code
            entry: dict[str, Any] = {
                "file": code.co_filename,
                "line": lineno,
                "function": code.co_name,
                "code": linecache.getline(code.co_filename, lineno).strip(),
            }
            if self.capture_locals:
                entry["locals"] = self._locals(frame.f_locals, secrets)
            frames.append(entry)
        return frames

    def _locals(self, variables: Mapping[str, Any], secrets: Secrets) -> dict[str, str]:
        out: dict[str, str] = {}
        for index, (name, value) in enumerate(variables.items()):
            if index >= MAX_LOCALS:
                out["…"] = f"{len(variables) - MAX_LOCALS} more"
                break
            if self.scrubber.is_secret(name):
                secrets.add(value)
                out[name] = SCRUBBED
            elif type(value) in (dict, list, tuple):
                # Plain containers are scrubbed key by key before they are shown.
                shown = secrets.by_name(value, depth=3, items=20, length=200)
                out[name] = _safe_repr(shown)
            else:
                out[name] = _safe_repr(value)
        return out


def _user(request: Request) -> dict[str, Any] | None:
    state = request.scope.get("state")
    user = state.get("user") if isinstance(state, Mapping) else None
    if user is None:
        return None
    found: dict[str, Any] = {}
    for attribute in ("id", "email", "username"):
        value = _attribute(user, attribute)
        if value is not None:
            found[attribute] = _cut(_safe_str(value), 320)
    return found or {"type": type(user).__name__}


def _attribute(user: Any, name: str) -> Any:
    if isinstance(user, Mapping):
        return user.get(name)
    # The loaded value first: an expired ORM attribute would try to load (I/O) on access.
    loaded = getattr(user, "__dict__", None)
    if isinstance(loaded, dict) and name in loaded:
        return loaded[name]
    try:
        return getattr(user, name, None)
    except Exception:
        return None
