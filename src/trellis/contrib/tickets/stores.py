"""Where tickets are kept: the ``TicketStore`` interface and ``FileTicketStore``.

``DatabaseTicketStore`` (a table, ``trellis.contrib.tickets.database``) is the other store;
any class with these async methods can be a third (a bucket, an error service).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import re
import tempfile
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import orjson

from trellis.contrib.tickets.models import Ticket
from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["FileTicketStore", "TicketStore", "cutoff"]

log = logging.getLogger("trellis.tickets")

#: A ticket id a store accepts: URL-safe, usable as a file name, at most 64 characters.
TICKET_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")


def valid_id(ticket_id: object) -> bool:
    """Whether ``ticket_id`` can name a ticket (anything else is never found)."""
    return isinstance(ticket_id, str) and TICKET_ID.fullmatch(ticket_id) is not None


def cutoff(older_than: timedelta | datetime) -> datetime:
    """The moment before which tickets are purged: ``now - older_than``, or the datetime."""
    if isinstance(older_than, timedelta):
        if older_than < timedelta(0):
            raise ValueError(f"older_than={older_than!r}: a negative age")
        return datetime.now(UTC) - older_than
    if older_than.tzinfo is None:
        return older_than.replace(tzinfo=UTC)
    return older_than


class TicketStore(ABC):
    """Keeps tickets: save, read newest first, count, delete, purge old ones."""

    def setup(self, app: App) -> None:  # noqa: B027 - optional hook
        """Called by ``Tickets.setup``: register what the store needs (a migration branch)."""

    @abstractmethod
    async def save(self, ticket: Ticket) -> None:
        """Store a new ``ticket``."""

    @abstractmethod
    async def get(self, ticket_id: str) -> Ticket | None:
        """The ticket ``ticket_id``, or ``None`` (an unknown or malformed id)."""

    @abstractmethod
    async def list(
        self, limit: int = 50, offset: int = 0, since: datetime | None = None
    ) -> builtins.list[Ticket]:
        """Tickets, newest first: ``limit`` of them after skipping ``offset``.

        Args:
            limit: How many at most.
            offset: How many of the newest to skip (pages).
            since: Only tickets created at or after this moment.
        """

    @abstractmethod
    async def count(self, since: datetime | None = None) -> int:
        """How many tickets there are (created at or after ``since``)."""

    @abstractmethod
    async def delete(self, ticket_id: str) -> bool:
        """Delete one ticket; whether it was there."""

    @abstractmethod
    async def purge(self, older_than: timedelta | datetime) -> int:
        """Delete the tickets older than an age (or created before a moment); how many."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (the CLI calls it before its event loop ends)."""


def _check_page(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise ValueError(f"limit={limit}, offset={offset}: both must be 0 or more")


class FileTicketStore(TicketStore):
    """One JSON file per ticket in a directory: no database needed.

    Files are ``<id>.json``, written atomically (a temporary file in the same directory,
    then renamed: a reader never sees half a ticket), readable by their owner only (mode
    0600, the directory 0700). Their modification time is the ticket's time, which is what
    ``list``, ``since`` and ``purge`` sort and filter by, so listing reads only the files it
    returns. Ids are checked before they touch the file system: ``get("../x")`` is ``None``.

    Args:
        directory: Where the files go; made (with its parents) at start-up, and the app
            refuses to start when it cannot be written.
        fsync: Flush each file to disk before it is renamed into place (on by default: a
            ticket should survive the crash it may precede).
    """

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.directory = Path(directory).absolute()
        self.fsync = fsync

    def setup(self, app: App) -> None:
        """Check at start-up that the directory can be written (made if missing)."""
        app.on_startup(self.check_directory)

    def check_directory(self) -> None:
        """Make the directory if needed; refuse to start when tickets could not be written.

        Raises:
            ConfigurationError: the directory cannot be made or written to.
        """
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"FileTicketStore: cannot make the tickets directory {self.directory}: {exc}"
            ) from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"FileTicketStore: the tickets directory {self.directory} is not writable"
                " by this process"
            )

    def _path(self, ticket_id: str) -> Path | None:
        return self.directory / f"{ticket_id}.json" if valid_id(ticket_id) else None

    # -- blocking work, run in a worker thread ----------------------------------------------

    def _write(self, ticket: Ticket) -> None:
        path = self._path(ticket.id)
        if path is None:
            raise ValueError(f"ticket id {ticket.id!r}: 1-64 characters of [A-Za-z0-9_-]")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = orjson.dumps(ticket.as_dict(), option=orjson.OPT_INDENT_2)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                if self.fsync:
                    file.flush()
                    os.fsync(file.fileno())
            stamp = ticket.created_at.timestamp()
            os.utime(tmp, (stamp, stamp))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _read(self, path: Path) -> Ticket | None:
        try:
            data = orjson.loads(path.read_bytes())
            return Ticket.from_dict(data)
        except FileNotFoundError:
            return None  # deleted in the meantime
        except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            log.warning("unreadable ticket file %s: %s", path, exc)
            return None

    def _entries(self, since: datetime | None) -> builtins.list[tuple[float, str, Path]]:
        """``(mtime, id, path)`` of every ticket file, newest first."""
        if not self.directory.is_dir():
            return []
        floor = since.timestamp() if since is not None else None
        found: builtins.list[tuple[float, str, Path]] = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(".json") or not valid_id(name[:-5]):
                    continue  # temporary files, strays
                try:
                    mtime = entry.stat().st_mtime
                except FileNotFoundError:
                    continue
                if floor is None or mtime >= floor:
                    found.append((mtime, name[:-5], Path(entry.path)))
        found.sort(reverse=True)
        return found

    def _list(self, limit: int, offset: int, since: datetime | None) -> builtins.list[Ticket]:
        tickets: builtins.list[Ticket] = []
        for _, _, path in self._entries(since)[offset:]:
            if len(tickets) >= limit:
                break
            ticket = self._read(path)
            if ticket is not None:
                tickets.append(ticket)
        return tickets

    def _delete(self, ticket_id: str) -> bool:
        path = self._path(ticket_id)
        if path is None:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _purge(self, before: datetime) -> int:
        limit = before.timestamp()
        removed = 0
        for mtime, _, path in self._entries(None):
            if mtime < limit:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    # -- the store ------------------------------------------------------------------------

    async def save(self, ticket: Ticket) -> None:
        """Write the ticket's file (atomically)."""
        await anyio.to_thread.run_sync(self._write, ticket)

    async def get(self, ticket_id: str) -> Ticket | None:
        """The ticket ``ticket_id``, or ``None``."""
        path = self._path(ticket_id)
        if path is None:
            return None
        return await anyio.to_thread.run_sync(self._read, path)

    async def list(
        self, limit: int = 50, offset: int = 0, since: datetime | None = None
    ) -> builtins.list[Ticket]:
        """Tickets, newest first (see ``TicketStore.list``)."""
        _check_page(limit, offset)
        return await anyio.to_thread.run_sync(self._list, limit, offset, since)

    async def count(self, since: datetime | None = None) -> int:
        """How many ticket files there are (created at or after ``since``)."""
        return len(await anyio.to_thread.run_sync(self._entries, since))

    async def delete(self, ticket_id: str) -> bool:
        """Delete the ticket's file; whether it was there."""
        return await anyio.to_thread.run_sync(self._delete, ticket_id)

    async def purge(self, older_than: timedelta | datetime) -> int:
        """Delete the files of tickets created before the cutoff; how many."""
        return await anyio.to_thread.run_sync(self._purge, cutoff(older_than))

    def __repr__(self) -> str:
        return f"<FileTicketStore {self.directory}>"
