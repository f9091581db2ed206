"""Logging set-up: access and error logs through the standard library, as text or JSON lines.

Trellis logs through ``logging`` only; this module supplies the formatters and a
``dictConfig`` dictionary that ``trellis run`` and ``App.run()`` hand to uvicorn, so uvicorn's
own loggers and Trellis's share one format.

Loggers:

- ``trellis``: start-up and shut-down messages; the parent of the others.
- ``trellis.error``: unhandled errors in handlers, with the request id.
- ``trellis.access``: reserved for Trellis's own access log; ``uvicorn.access`` writes one
  line per request, and it carries the request id (uvicorn writes it while the application
  sends the response, inside the request's context).
- ``uvicorn``, ``uvicorn.error``, ``uvicorn.access``: the server.
- ``sqlalchemy.engine.Engine``: the SQL of the database battery's echo, in the same format.

Every line written while a request is handled carries its id (see ``request_id_of``): the
application sets ``trellis.middleware.request_id.request_id_var`` before anything else runs
(the ``request_id`` setting), and sync handlers, background tasks and tasks the handler
starts inherit it.

Example:
    ```python
    from trellis.logging import configure_logging

    config = configure_logging("INFO", "json", apply=False)
    assert config["formatters"]["default"]["()"] == "trellis.logging.JSONFormatter"
    ```
"""

from __future__ import annotations

import datetime as _dt
import logging
import logging.config
from collections.abc import Callable, Mapping
from typing import Any, Literal

import orjson

__all__ = [
    "JSONFormatter",
    "LogFormat",
    "TextFormatter",
    "add_context_fields",
    "configure_logging",
    "request_id_of",
]

LogFormat = Literal["text", "json"]
"""``"text"`` for people, ``"json"`` (one object per line) for log collectors."""

# Attributes every LogRecord has; anything else on a record came from ``extra=...``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))).union(
    ("message", "asctime", "request_id", "color_message", "taskName")
)

_UVICORN_ACCESS = "uvicorn.access"

# request_id_var from trellis.middleware.request_id, imported on first use; False: unavailable.
_request_id_var: Any = None


def _context_request_id() -> str | None:
    global _request_id_var
    var = _request_id_var
    if var is None:
        try:
            from trellis.middleware.request_id import request_id_var as var
        except ImportError:  # the middleware is optional: no ids from context then
            var = False
        _request_id_var = var
    if var is False:
        return None
    value = var.get()
    return None if value is None else str(value)


def request_id_of(record: logging.LogRecord) -> str | None:
    """Return the request id for ``record``, or ``None`` outside a request.

    The id is the record's ``request_id`` attribute (set with ``extra={"request_id": ...}`` or by
    ``RequestIDLogFilter``), else the current value of
    ``trellis.middleware.request_id.request_id_var``.
    """
    value = getattr(record, "request_id", None)
    if value is not None and value != "-":  # "-": RequestIDLogFilter's "no request"
        return str(value)
    return _context_request_id()


# Functions giving fields of the current context for JSON lines (add_context_fields).
_context_fields: tuple[Callable[[], Mapping[str, Any] | None], ...] = ()


def add_context_fields(provider: Callable[[], Mapping[str, Any] | None]) -> None:
    """Add the fields ``provider()`` returns to every JSON log line, after ``request_id``.

    ``provider`` is called once per line, in the context of the code that logs, so it can read
    context variables (``trellis.contrib.otel`` adds ``trace_id`` and ``span_id`` this way). It
    returns a mapping of keys to values, or ``None`` for nothing; a key the line has already
    (a core key, or an ``extra=...`` value) is left alone. Adding the same function again does
    nothing.

    Args:
        provider: Returns the fields for the current context.

    Example:
        ```python
        import contextvars

        from trellis.logging import add_context_fields

        tenant = contextvars.ContextVar("tenant", default=None)
        add_context_fields(lambda: {"tenant": tenant.get()})
        ```
    """
    global _context_fields
    if provider not in _context_fields:
        _context_fields = (*_context_fields, provider)


_LEVEL_COLORS = {
    logging.DEBUG: "\x1b[36m",  # cyan
    logging.INFO: "\x1b[32m",  # green
    logging.WARNING: "\x1b[33m",  # yellow
    logging.ERROR: "\x1b[31m",  # red
    logging.CRITICAL: "\x1b[1;31m",  # bold red
}


class TextFormatter(logging.Formatter):
    """One readable line per record: time, level, logger, request id (when known), message.

    ``2025-01-02 13:45:00,123 INFO     uvicorn.access: 127.0.0.1:50412 - "GET / HTTP/1.1" 200``

    Tracebacks follow on the next lines, as with ``logging.Formatter``.

    Args:
        fmt: Ignored unless given: a ``%``-style format string replacing the default.
        datefmt: ``time.strftime`` format of the time; the default is ``logging``'s.
        use_colors: Colour the level name with ANSI codes (uvicorn's ``--use-colors`` sets it).
    """

    def __init__(
        self, fmt: str | None = None, datefmt: str | None = None, use_colors: bool | None = None
    ) -> None:
        super().__init__(fmt, datefmt)
        self._custom = fmt is not None
        self.use_colors = bool(use_colors)

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as one line (plus the traceback, if any)."""
        if self._custom:
            return super().format(record)
        message = record.getMessage()
        level = f"{record.levelname:<8}"
        if self.use_colors:
            color = _LEVEL_COLORS.get(record.levelno)
            if color:
                level = f"{color}{level}\x1b[0m"
        request_id = request_id_of(record)
        # uvicorn logs its ordinary start-up lines on "uvicorn.error": do not alarm people.
        name = "uvicorn" if record.name == "uvicorn.error" else record.name
        where = f"{name} [{request_id}]" if request_id else name
        line = f"{self.formatTime(record, self.datefmt)} {level} {where}: {message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for log collectors.

    Keys: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``request_id`` (``null``
    outside a request), the fields of ``add_context_fields``, ``exception`` (the formatted
    traceback, only when there is one), ``stack`` (with ``stack_info=True``), and every
    ``extra={...}`` value. Records of ``uvicorn.access`` also get ``client``, ``method``,
    ``path``, ``http_version`` and ``status``.

    Values that JSON cannot hold are written with ``str()``.

    Args:
        fmt: Ignored; accepted so ``dictConfig`` entries written for other formatters work.
        datefmt: Ignored (the time is always ISO 8601).
        use_colors: Ignored (accepted because uvicorn passes it).
    """

    def __init__(
        self, fmt: str | None = None, datefmt: str | None = None, use_colors: bool | None = None
    ) -> None:
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one line of JSON."""
        data: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_of(record),
        }
        for provider in _context_fields:
            fields = provider()
            if fields:
                for key, value in fields.items():
                    if key not in data and key not in record.__dict__:
                        data[key] = value
        if record.name == _UVICORN_ACCESS:
            _add_access_fields(record, data)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in data and not key.startswith("_"):
                data[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return _dumps(data)


def _iso_utc(created: float) -> str:
    moment = _dt.datetime.fromtimestamp(created, tz=_dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _add_access_fields(record: logging.LogRecord, data: dict[str, Any]) -> None:
    # uvicorn's access line: '%s - "%s %s HTTP/%s" %d' with
    # (client_addr, method, full_path, http_version, status_code).
    args = record.args
    if isinstance(args, tuple) and len(args) == 5:
        client, method, path, http_version, status = args
        data["client"] = client
        data["method"] = method
        data["path"] = path
        data["http_version"] = http_version
        data["status"] = status


def _dumps(data: dict[str, Any]) -> str:
    try:
        return orjson.dumps(data, default=str).decode()
    except TypeError:  # e.g. an int beyond 64 bits: the slow path copes with anything
        import json

        return json.dumps(data, default=str, ensure_ascii=False)


_FORMATTERS: dict[str, str] = {
    "text": "trellis.logging.TextFormatter",
    "json": "trellis.logging.JSONFormatter",
}


def configure_logging(
    level: str | int = "INFO",
    fmt: LogFormat = "text",
    access_log: bool = True,
    *,
    apply: bool = True,
) -> dict[str, Any]:
    """Build (and by default apply) the logging configuration Trellis serves with.

    Messages go to standard error and access lines to standard output, as uvicorn does. The
    ``trellis`` and ``uvicorn`` loggers get their own handlers; the root logger gets the same
    handler, so an application's ``logging.getLogger(__name__)`` logs in the same format.

    Args:
        level: Lowest level logged (``"DEBUG"`` ... ``"CRITICAL"``, any case, or a number).
        fmt: ``"text"`` or ``"json"``.
        access_log: Write one line per request (``uvicorn.access``, ``trellis.access``).
        apply: Apply the configuration with ``logging.config.dictConfig``; turn off to only get
            the dictionary.

    Returns:
        A ``logging.config.dictConfig`` dictionary; pass it to uvicorn as ``log_config``. Its
        formatters are named ``default`` and ``access`` as in uvicorn's own, so uvicorn's
        ``use_colors`` option still applies.

    Raises:
        ValueError: ``fmt`` or ``level`` is not a known value.
    """
    formatter = _FORMATTERS.get(fmt)
    if formatter is None:
        raise ValueError(f"log format {fmt!r} is not known; use 'text' or 'json'")
    level_name = _level_name(level)
    access_level = level_name if access_log else "CRITICAL"
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": formatter},
            "access": {"()": formatter},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "trellis": {"handlers": ["default"], "level": level_name, "propagate": False},
            "trellis.error": {"level": level_name},
            "trellis.access": {
                "handlers": ["access"] if access_log else [],
                "level": access_level,
                "propagate": False,
            },
            "uvicorn": {"handlers": ["default"], "level": level_name, "propagate": False},
            "uvicorn.error": {"level": level_name},
            "uvicorn.access": {
                "handlers": ["access"] if access_log else [],
                "level": access_level,
                "propagate": False,
            },
            # SQLAlchemy's echo gives a logger without handlers a plain-text one of its own
            # (on stdout, among the access lines): this one has ours. Its level stays unset:
            # the echo setting decides.
            "sqlalchemy.engine.Engine": {"handlers": ["default"], "propagate": False},
        },
        "root": {"handlers": ["default"], "level": level_name},
    }
    if apply:
        logging.config.dictConfig(config)
    return config


def _level_name(level: str | int) -> str:
    if isinstance(level, int):
        name = logging.getLevelName(level)
        if not isinstance(name, str) or name.startswith("Level "):
            raise ValueError(f"log level {level!r} is not a known level")
        return name
    name = level.upper()
    if name == "TRACE":  # uvicorn's level below DEBUG
        logging.addLevelName(5, "TRACE")
    elif name not in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}:
        raise ValueError(
            f"log level {level!r} is not known; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return name
