"""Error tickets: every unhandled exception of production stored, the client shown its id.

```py
from trellis import App
from trellis.contrib.db import Database
from trellis.contrib.tickets import DatabaseTicketStore, FileTicketStore, Tickets

app = App()
db = app.install(Database(url))
tickets = app.install(Tickets(DatabaseTicketStore(db)))   # or FileTicketStore("var/tickets")
```

A crash in production answers ``500`` with ``"The server hit an unexpected error. Error ticket
q3k7x2mfa9tbw5ne"`` (and the ``X-Error-Ticket`` header); the ticket keeps the traceback, the
request with its secrets scrubbed (``trellis.contrib.tickets.scrub``) and the user. Read them
with ``trellis tickets list | show ID`` or through ``app.state.tickets``:

```py
tickets = request.app.state.tickets       # the Tickets plugin
await tickets.list(limit=50, offset=0, since=None)   # [Ticket, ...] newest first
await tickets.get(ticket_id)              # Ticket | None (unknown or malformed id)
await tickets.count(since=None)           # int
await tickets.delete(ticket_id)           # bool
await tickets.purge(timedelta(days=30))   # how many were deleted (or a datetime cutoff)
```

A ``Ticket`` (``trellis.contrib.tickets.models``) is a frozen dataclass; ``ticket.as_dict()``
is its JSON form::

    id              str, 16 chars of [a-z2-7] (random, URL-safe)
    created_at      datetime, UTC-aware ("created_at" is ISO 8601 in as_dict())
    exception_type  str, "RuntimeError" or "package.module.Error"
    message         str, str(exc) scrubbed, <= 2000 chars
    traceback       str, formatted with chained exceptions, scrubbed, <= 64 000 chars
    frames          list of {"file", "line", "function", "code"[, "locals": {name: repr}]}
    request         {"method", "path", "scheme", "client", "request_id",
                     "query": {name: [str]}, "headers": {name: str}, "cookies": {name: str},
                     "form": {name: [str]} (if parsed), "json": value (if parsed)}
    user            {"id", "email", "username"} (those present, as str) or None
    environment     {"host", "pid", "python", "trellis", "app_version"}

plus the shortcuts ``ticket.method``, ``ticket.path``, ``ticket.request_id`` and
``ticket.title`` (``"Type: message"`` on one line). Secrets appear as ``"[scrubbed]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trellis.contrib.tickets.models import SCRUBBED, Ticket, new_ticket_id
from trellis.contrib.tickets.plugin import Tickets
from trellis.contrib.tickets.scrub import Scrubber
from trellis.contrib.tickets.stores import FileTicketStore, TicketStore

if TYPE_CHECKING:
    from trellis.contrib.tickets.database import DatabaseTicketStore

__all__ = [
    "SCRUBBED",
    "DatabaseTicketStore",
    "FileTicketStore",
    "Scrubber",
    "Ticket",
    "TicketStore",
    "Tickets",
    "new_ticket_id",
]


def __getattr__(name: str) -> Any:
    # The database store needs SQLAlchemy (trellis[db]); the file store does not.
    if name == "DatabaseTicketStore":
        from trellis.contrib.tickets.database import DatabaseTicketStore

        return DatabaseTicketStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
