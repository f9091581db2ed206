"""What the inspector keeps about a request: its queries, template renders, headers, session.

Records are plain data, filled while the request runs and kept in memory (a ring buffer of
the last ``max_requests``). Secrets are masked when they are recorded, not when they are shown:
the values of ``Authorization``, ``Cookie``, ``Set-Cookie`` and similar headers, and session
values whose key looks secret, never reach the buffer.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MASK",
    "QueryRecord",
    "RequestRecord",
    "TemplateRecord",
    "mask_headers",
    "mask_session",
]

#: What a masked value is replaced with.
MASK = "********"

#: Header names whose whole value is a credential.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-csrftoken",
        "x-xsrf-token",
    }
)
# Any other header, or session key, whose name says it holds one.
_SECRET_NAME = re.compile(r"pass|secret|token|api[-_]?key|session[-_]?id|csrf|credential|hash")

# Transaction control: listed (a round trip each) but not counted as queries.
_TRANSACTION = re.compile(
    r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START\s+TRANSACTION|END)\b", re.IGNORECASE
)

# A statement or a parameter list longer than this is cut (a bulk insert of 10,000 rows).
MAX_STATEMENT = 10_000
MAX_PARAMETER = 200
MAX_PARAMETERS = 50
MAX_PARAMETER_SETS = 3


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# -- masking ------------------------------------------------------------------------------------


def _mask_cookie(value: str) -> str:
    """``a=1; b=2`` -> ``a=********; b=********``: the names help, the values are secrets."""
    parts = []
    for part in value.split(";"):
        name, sep, _ = part.strip().partition("=")
        parts.append(f"{name}={MASK}" if sep else name)
    return "; ".join(p for p in parts if p)


def _mask_set_cookie(value: str) -> str:
    """Mask the value of a ``Set-Cookie``, keep its attributes (``Path``, ``HttpOnly``...)."""
    first, sep, attributes = value.partition(";")
    name, eq, _ = first.strip().partition("=")
    masked = f"{name}={MASK}" if eq else MASK
    return masked + (sep + attributes if sep else "")


def _mask_authorization(value: str) -> str:
    """Keep the scheme (``Bearer``, ``Basic``): it says which kind of credential was sent."""
    scheme, sep, _ = value.strip().partition(" ")
    return f"{scheme} {MASK}" if sep else MASK


def mask_header(name: str, value: str) -> str:
    """The value of header ``name`` as the inspector shows it (secrets masked)."""
    lower = name.lower()
    if lower == "cookie":
        return _mask_cookie(value)
    if lower == "set-cookie":
        return _mask_set_cookie(value)
    if lower in ("authorization", "proxy-authorization"):
        return _mask_authorization(value)
    if lower in SECRET_HEADERS or _SECRET_NAME.search(lower):
        return MASK
    return value


def mask_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI headers as ``(name, value)`` text pairs, secrets masked."""
    return [
        (k.decode("latin-1").lower(), mask_header(k.decode("latin-1"), v.decode("latin-1")))
        for k, v in raw
    ]


def mask_session(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of session ``data`` with the values of secret-looking keys masked."""
    return {key: MASK if _SECRET_NAME.search(key.lower()) else value for key, value in data.items()}


def short_repr(value: Any, limit: int = MAX_PARAMETER) -> str:
    """``repr(value)`` cut to ``limit`` characters."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the request
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parameters_text(parameters: Any, executemany: bool) -> str:
    """The parameters of a statement as short text (long values and long lists cut)."""
    if parameters is None or (isinstance(parameters, Mapping | list | tuple) and not parameters):
        return ""
    if executemany and isinstance(parameters, list | tuple):
        sets = [parameters_text(p, False) for p in parameters[:MAX_PARAMETER_SETS]]
        more = len(parameters) - MAX_PARAMETER_SETS
        if more > 0:
            sets.append(f"… {more} more set(s)")
        return "[" + ", ".join(sets) + "]"
    if isinstance(parameters, Mapping):
        items = list(parameters.items())
        text = ", ".join(f"{k!s}: {short_repr(v)}" for k, v in items[:MAX_PARAMETERS])
        if len(items) > MAX_PARAMETERS:
            text += f", … {len(items) - MAX_PARAMETERS} more"
        return "{" + text + "}"
    if isinstance(parameters, list | tuple):
        values = list(parameters)
        text = ", ".join(short_repr(v) for v in values[:MAX_PARAMETERS])
        if len(values) > MAX_PARAMETERS:
            text += f", … {len(values) - MAX_PARAMETERS} more"
        return "(" + text + ")"
    return short_repr(parameters)


# -- records ------------------------------------------------------------------------------------


@dataclass
class QueryRecord:
    """One SQL statement a request ran.

    Attributes:
        statement: The SQL as sent to the driver (cut at 10,000 characters).
        parameters: Its parameters as short text (long values and long lists cut).
        duration_ms: How long the driver took, in milliseconds.
        start_ms: When it started, in milliseconds after the request arrived.
        database: The database's URL, password hidden.
        executemany: Whether it ran once per parameter set (a bulk insert).
        error: The driver's error, when the statement failed.
        transaction: Whether it is transaction control (``BEGIN``, ``SAVEPOINT``...): listed,
            but not counted in ``query_count`` nor checked for duplicates.
        duplicates: How many times this request ran the same statement with the same
            parameters (1: once); more than 1 usually means a missing cache or eager load.
        similar: How many times it ran the same statement with any parameters (an N+1
            query pattern shows as a high count).
    """

    statement: str
    parameters: str
    duration_ms: float
    start_ms: float
    database: str = ""
    executemany: bool = False
    error: str | None = None
    transaction: bool = False
    duplicates: int = 1
    similar: int = 1

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return {
            "statement": self.statement,
            "parameters": self.parameters,
            "duration_ms": self.duration_ms,
            "start_ms": self.start_ms,
            "database": self.database,
            "executemany": self.executemany,
            "error": self.error,
            "transaction": self.transaction,
            "duplicates": self.duplicates,
            "similar": self.similar,
        }


@dataclass
class TemplateRecord:
    """One template render.

    Attributes:
        name: The template's name (``"<string>"`` for one made from a string).
        duration_ms: How long rendering took, in milliseconds (templates it extends or
            includes count in it).
        start_ms: When it started, in milliseconds after the request arrived.
        context_keys: The names passed to the template, sorted.
        error: The exception, when rendering failed.
    """

    name: str
    duration_ms: float
    start_ms: float
    context_keys: tuple[str, ...] = ()
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return {
            "name": self.name,
            "duration_ms": self.duration_ms,
            "start_ms": self.start_ms,
            "context_keys": list(self.context_keys),
            "error": self.error,
        }


@dataclass
class RequestRecord:
    """Everything the inspector saw of one request.

    Attributes:
        id: The record's id, in the URL of its page (``/_inspector/{id}``).
        method: The HTTP method.
        path: The path, as the application saw it (decoded).
        query_string: The query string (decoded as Latin-1, as sent).
        client: The client's address (``"127.0.0.1:50312"``), when known.
        started_at: When the request arrived (a Unix timestamp).
        status: The response status; ``None`` while no response started.
        duration_ms: Until the last byte of the response was handed to the server; ``None``
            while the request runs.
        response_start_ms: Until the response started (the handler's part).
        request_headers: The request's headers, secrets masked.
        response_headers: The response's headers as the application sent them, secrets masked
            (the session cookie and the default security headers are added after, by the
            application's outer layer, and are not listed).
        path_params: The path parameters the route matched.
        session: The session's data, secret-looking keys masked; ``None`` without a session.
        session_info: ``new``/``modified`` flags of the session.
        user: The signed-in user (``request.state.user``), described; ``None`` if anonymous.
        queries: The SQL statements (the first ``max_queries``), transaction control included.
        query_count: How many queries ran (also those past ``max_queries``), not counting
            transaction control.
        query_time_ms: The time those queries took.
        statement_count: How many statements ran, transaction control included.
        templates: The template renders.
        toolbar: Whether the toolbar was added to the response.
        error: The exception that escaped the application, if one did.
    """

    id: str
    method: str
    path: str
    query_string: str = ""
    client: str | None = None
    started_at: float = field(default_factory=time.time)
    status: int | None = None
    duration_ms: float | None = None
    response_start_ms: float | None = None
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    path_params: dict[str, str] = field(default_factory=dict)
    session: dict[str, Any] | None = None
    session_info: dict[str, bool] = field(default_factory=dict)
    user: str | None = None
    queries: list[QueryRecord] = field(default_factory=list)
    query_count: int = 0
    query_time_ms: float = 0.0
    statement_count: int = 0
    templates: list[TemplateRecord] = field(default_factory=list)
    toolbar: bool = False
    error: str | None = None
    max_queries: int = 1000
    _start: float = field(default_factory=time.perf_counter, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- filled while the request runs ---------------------------------------------------------

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return _ms(time.perf_counter() - self._start)

    def offset_ms(self, at: float) -> float:
        """``at`` (a ``time.perf_counter()`` value) in milliseconds after the request arrived."""
        return _ms(at - self._start)

    def add_query(
        self,
        statement: str,
        parameters: Any,
        *,
        started: float,
        ended: float,
        database: str = "",
        executemany: bool = False,
        error: str | None = None,
    ) -> None:
        """Record a statement that ran from ``started`` to ``ended`` (``perf_counter`` values)."""
        duration = _ms(ended - started)
        transaction = _TRANSACTION.match(statement) is not None
        # Sync handlers run in worker threads: the count and the list change together.
        with self._lock:
            self.statement_count += 1
            if not transaction:
                self.query_count += 1
                self.query_time_ms = round(self.query_time_ms + duration, 3)
            if len(self.queries) >= self.max_queries:
                return
            if len(statement) > MAX_STATEMENT:
                statement = statement[:MAX_STATEMENT] + "…"
            self.queries.append(
                QueryRecord(
                    statement=statement,
                    parameters=parameters_text(parameters, executemany),
                    duration_ms=duration,
                    start_ms=self.offset_ms(started),
                    database=database,
                    executemany=executemany,
                    error=error,
                    transaction=transaction,
                )
            )

    def add_template(
        self,
        name: str,
        context_keys: Iterable[str],
        *,
        started: float,
        ended: float,
        error: str | None = None,
    ) -> None:
        """Record a template render from ``started`` to ``ended`` (``perf_counter`` values)."""
        with self._lock:
            self.templates.append(
                TemplateRecord(
                    name=name,
                    duration_ms=_ms(ended - started),
                    start_ms=self.offset_ms(started),
                    context_keys=tuple(sorted(context_keys)),
                    error=error,
                )
            )

    def count_duplicates(self) -> None:
        """Fill ``duplicates`` and ``similar`` of every query."""
        exact: dict[tuple[str, str], int] = {}
        same: dict[str, int] = {}
        queries = [q for q in self.queries if not q.transaction]
        for query in queries:
            key = (query.statement, query.parameters)
            exact[key] = exact.get(key, 0) + 1
            same[query.statement] = same.get(query.statement, 0) + 1
        for query in queries:
            query.duplicates = exact[(query.statement, query.parameters)]
            query.similar = same[query.statement]

    # -- read -------------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the response was sent completely."""
        return self.duration_ms is not None

    @property
    def duplicate_count(self) -> int:
        """How many statements repeated an earlier one exactly (same SQL, same parameters)."""
        seen: set[tuple[str, str]] = set()
        repeats = 0
        for query in self.queries:
            if query.transaction:
                continue
            key = (query.statement, query.parameters)
            if key in seen:
                repeats += 1
            seen.add(key)
        return repeats

    @property
    def template_time_ms(self) -> float:
        """Milliseconds spent rendering templates."""
        return round(sum(t.duration_ms for t in self.templates), 3)

    @property
    def url(self) -> str:
        """The path with its query string."""
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (what ``/_inspector/api/requests/{id}`` answers)."""
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "query_string": self.query_string,
            "client": self.client,
            "started_at": self.started_at,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "response_start_ms": self.response_start_ms,
            "request_headers": [list(h) for h in self.request_headers],
            "response_headers": [list(h) for h in self.response_headers],
            "path_params": self.path_params,
            "session": self.session,
            "session_info": self.session_info,
            "user": self.user,
            "query_count": self.query_count,
            "query_time_ms": self.query_time_ms,
            "statement_count": self.statement_count,
            "duplicate_count": self.duplicate_count,
            "queries": [q.as_dict() for q in self.queries],
            "templates": [t.as_dict() for t in self.templates],
            "template_time_ms": self.template_time_ms,
            "toolbar": self.toolbar,
            "error": self.error,
        }


class RecordBuffer:
    """The last ``size`` request records, by id (oldest dropped first)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._records: dict[str, RequestRecord] = {}
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        """Keep ``record``, dropping the oldest when the buffer is full."""
        with self._lock:
            self._records[record.id] = record
            while len(self._records) > self.size:
                del self._records[next(iter(self._records))]

    def get(self, record_id: str) -> RequestRecord | None:
        """The record with this id, or ``None`` (never seen, or dropped since)."""
        return self._records.get(record_id)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        """The records, newest first."""
        with self._lock:
            records = list(self._records.values())
        return reversed(records)
