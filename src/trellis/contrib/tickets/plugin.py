"""``Tickets``: the plugin that stores a ticket for every unhandled exception."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from trellis.contrib.tickets._capture import Capture, environment
from trellis.contrib.tickets.models import Ticket
from trellis.contrib.tickets.scrub import Scrubber
from trellis.contrib.tickets.stores import FileTicketStore, TicketStore
from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.http.request import Request

__all__ = ["Tickets"]


class Tickets:
    """Error tickets (web2py's idea): each unhandled exception is stored, the client sees its id.

    In production (debug off) every unhandled exception (not an ``HTTPError``) becomes a
    ``Ticket`` in the store, with the traceback, the request (secrets scrubbed) and the user;
    the 500 answer says only "Error ticket <id>". In debug mode the traceback page is shown as
    before and nothing is stored, unless ``in_debug=True``. ``install`` puts the plugin on
    ``app.state.tickets`` (read it with ``list``, ``get``, ``count``, ``delete``, ``purge``)
    and adds ``trellis tickets list | show ID | delete ID | purge --older-than DAYS``.

    Args:
        store: Where tickets go. ``None``: a ``DatabaseTicketStore`` on the app's
            ``Database`` when one is installed (install it first), else a
            ``FileTicketStore`` in ``./tickets``.
        in_debug: Store tickets in debug mode too.
        capture_locals: Keep the local variables of each frame (names and bounded reprs;
            secret-looking names scrubbed, plain dicts and lists scrubbed key by key). Off by
            default: an object's repr can hold a secret under an innocent name.
        scrub: More name patterns whose values are secret (regular expressions, searched
            case-insensitively), on top of ``trellis.contrib.tickets.scrub.SECRET_NAMES``.
        app_version: The version written in each ticket; by default the app's OpenAPI
            ``version`` (``app.openapi_info``).
        timeout: Seconds a ticket may take to store; then the client gets its 500 with the
            request id and the failure is logged.
    """

    def __init__(
        self,
        store: TicketStore | None = None,
        *,
        in_debug: bool = False,
        capture_locals: bool = False,
        scrub: Iterable[str] = (),
        app_version: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._store = store
        self.in_debug = in_debug
        self.scrubber = Scrubber(scrub)
        self.capture = Capture(self.scrubber, capture_locals=capture_locals)
        self.app_version = app_version
        self.timeout = timeout
        self.app: App | None = None
        self._environment: dict[str, str] | None = None

    @property
    def store(self) -> TicketStore:
        """The store (chosen at ``install`` when none was given)."""
        if self._store is None:
            raise ConfigurationError("Tickets is not installed yet: app.install(Tickets())")
        return self._store

    def setup(self, app: App) -> None:
        """Install on ``app``: ``app.state.tickets``, the error reporter, the CLI."""
        existing = getattr(app.state, "tickets", None)
        if existing is not None and existing is not self:
            raise ConfigurationError("the application already has Tickets installed")
        if self._store is None:
            self._store = _default_store(app)
        self.app = app
        app.state.tickets = self
        self._store.setup(app)
        app.add_error_reporter(self.report)
        from trellis.contrib.tickets.cli import tickets_command

        app.add_command(tickets_command(self))

    # -- reporting ------------------------------------------------------------------------------

    async def report(self, request: Request, exc: BaseException, request_id: str) -> str | None:
        """The error reporter: store a ticket for ``exc``; its id (``None`` in debug mode).

        Raises:
            Exception: whatever the store raised, or ``TimeoutError`` past ``timeout``
                (the app logs it and answers with the request id).
        """
        app = self.app
        if app is not None and app.debug and not self.in_debug:
            return None
        ticket = self.build(request, exc, request_id)
        with anyio.fail_after(self.timeout):
            await self.store.save(ticket)
        return ticket.id

    def build(self, request: Request, exc: BaseException, request_id: str) -> Ticket:
        """The scrubbed ticket of ``exc`` raised while serving ``request`` (not stored)."""
        if self._environment is None:
            version = self.app_version
            if version is None and self.app is not None:
                version = str(self.app.openapi_info.get("version") or "") or None
            self._environment = environment(version)
        return self.capture.ticket(request, exc, request_id, self._environment)

    # -- reading: app.state.tickets -------------------------------------------------------------

    async def list(
        self, limit: int = 50, offset: int = 0, since: datetime | None = None
    ) -> builtins.list[Ticket]:
        """Tickets, newest first: ``limit`` of them after skipping ``offset`` (since a moment)."""
        return await self.store.list(limit=limit, offset=offset, since=since)

    async def get(self, ticket_id: str) -> Ticket | None:
        """The ticket ``ticket_id``, or ``None`` (unknown or malformed)."""
        return await self.store.get(ticket_id)

    async def count(self, since: datetime | None = None) -> int:
        """How many tickets there are (created at or after ``since``)."""
        return await self.store.count(since=since)

    async def delete(self, ticket_id: str) -> bool:
        """Delete one ticket; whether it was there."""
        return await self.store.delete(ticket_id)

    async def purge(self, older_than: timedelta | datetime) -> int:
        """Delete tickets older than an age (``timedelta(days=30)``) or a moment; how many."""
        return await self.store.purge(older_than)

    def __repr__(self) -> str:
        return f"<Tickets {self._store!r}>"


def _default_store(app: App) -> TicketStore:
    database = getattr(app.state, "database", None)
    if database is not None:
        from trellis.contrib.tickets.database import DatabaseTicketStore

        return DatabaseTicketStore(database)
    return FileTicketStore(Path("tickets"))
