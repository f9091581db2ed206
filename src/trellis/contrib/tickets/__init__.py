"""Error tickets: every unhandled exception of production stored, the client shown its id.

```python
from trellis import App
from trellis.contrib.db import Database
from trellis.contrib.tickets import DatabaseTicketStore, Tickets
from trellis.testing import TestClient

app = App(debug=False, secret_key="a-long-random-secret-key-for-production-x")
db = app.install(Database("sqlite:///app.db"))
store = DatabaseTicketStore(db)
tickets = app.install(Tickets(store))  # or Tickets(FileTicketStore("var/tickets"))
app.on_startup(store.create_table)  # for the example; projects run `trellis db upgrade`


@app.get("/crash")
async def crash() -> None:
    raise RuntimeError("boom")


with TestClient(app) as client:
    response = client.get("/crash")
    assert response.status_code == 500
    assert response.json()["detail"].endswith(response.headers["x-error-ticket"])
```

A crash in production answers ``500`` with ``"The server hit an unexpected error. Error ticket
q3k7x2mfa9tbw5ne"`` (and the ``X-Error-Ticket`` header); the ticket keeps the traceback, the
request with its secrets scrubbed (``trellis.contrib.tickets.scrub``) and the user. Read them
with ``trellis tickets list | show ID`` or through ``app.state.tickets``:

```python
from datetime import timedelta

from trellis import App
from trellis.contrib.tickets import FileTicketStore, Tickets
from trellis.testing import TestClient

app = App(debug=False, secret_key="a-long-random-secret-key-for-production-x")
app.install(Tickets(FileTicketStore("var/tickets")))


@app.get("/crash")
async def crash() -> None:
    raise RuntimeError("boom")


async def review() -> None:
    tickets = app.state.tickets  # the Tickets plugin (request.app.state.tickets in a handler)
    [ticket] = await tickets.list(limit=50, offset=0, since=None)  # [Ticket, ...] newest first
    assert (await tickets.get(ticket.id)).title == "RuntimeError: boom"  # None: unknown id
    assert await tickets.count(since=None) == 1
    assert await tickets.purge(timedelta(days=30)) == 0  # how many were deleted
    assert await tickets.delete(ticket.id) is True


with TestClient(app) as client:
    client.get("/crash")
    client.call(review)
```

A ``Ticket`` (``trellis.contrib.tickets.models``) is a frozen dataclass; ``ticket.as_dict()``
is its JSON form:

```text
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
```

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
