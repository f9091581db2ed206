"""``trellis tickets``: read and clean up error tickets from the command line.

```text
trellis tickets list                    # the 20 newest: id, time, error, request
trellis tickets list --limit 100 --offset 100
trellis tickets show q3k7x2mfa9tbw5ne   # everything in one ticket (--json: as stored)
trellis tickets delete q3k7x2mfa9tbw5ne
trellis tickets purge --older-than 30   # days
```
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from trellis.contrib.tickets.models import Ticket

if TYPE_CHECKING:
    from trellis.contrib.tickets.plugin import Tickets

__all__ = ["format_ticket", "tickets_command"]

T = TypeVar("T")


def _run(tickets: Tickets, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()`` on an event loop of its own, then release the store's connections."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await tickets.store.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from async code (tests)
        return pool.submit(asyncio.run, main()).result()


def _time(ticket: Ticket) -> str:
    return ticket.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def format_ticket(ticket: Ticket) -> str:
    """One ticket as readable text: summary, request, user, traceback (and locals)."""
    req = ticket.request
    lines = [
        f"Ticket   {ticket.id}",
        f"Time     {_time(ticket)} UTC",
        f"Error    {ticket.exception_type}",
    ]
    if ticket.message:
        lines.append(f"Message  {ticket.message}")
    target = f"{ticket.method} {ticket.path}".strip()
    if target:
        lines.append(f"Request  {target}")
    if ticket.request_id:
        lines.append(f"Req. id  {ticket.request_id}")
    if req.get("client"):
        lines.append(f"Client   {req['client']}")
    if ticket.user:
        lines.append("User     " + ", ".join(f"{k}={v}" for k, v in ticket.user.items()))
    env = ticket.environment
    if env:
        lines.append("Server   " + ", ".join(f"{k}={v}" for k, v in env.items()))
    for title, key in (("Query", "query"), ("Form", "form")):
        values = req.get(key)
        if values:
            lines += [
                "",
                f"{title}:",
                *_pairs((k, ", ".join(map(str, v))) for k, v in values.items()),
            ]
    for title, key in (("Headers", "headers"), ("Cookies", "cookies")):
        values = req.get(key)
        if values:
            lines += ["", f"{title}:", *_pairs(values.items())]
    if "json" in req:
        body = orjson.dumps(req["json"], option=orjson.OPT_INDENT_2).decode()
        lines += ["", "JSON body:", *("  " + line for line in body.splitlines())]
    lines += ["", ticket.traceback.rstrip()]
    with_locals = [f for f in ticket.frames if f.get("locals")]
    if with_locals:
        lines += ["", "Locals (innermost last):"]
        for frame in with_locals:
            lines.append(f"  {frame.get('function')} ({frame.get('file')}:{frame.get('line')})")
            lines += ["  " + line for line in _pairs(frame["locals"].items())]
    return "\n".join(lines)


def _pairs(items: Iterable[tuple[str, Any]]) -> list[str]:
    return [f"  {name}: {value}" for name, value in items]


def tickets_command(tickets: Tickets) -> click.Group:
    """The ``trellis tickets`` command group for an app's ``Tickets``."""

    @click.group("tickets")
    def group() -> None:
        """Read and clean up error tickets (the unhandled exceptions of production)."""

    @group.command("list")
    @click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
    @click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
    def list_tickets(limit: int, offset: int) -> None:
        """The newest tickets: id, time (UTC), error, request."""

        async def work() -> tuple[list[Ticket], int]:
            return await tickets.list(limit=limit, offset=offset), await tickets.count()

        found, total = _run(tickets, work)
        if not found:
            click.echo("No tickets." if total == 0 else f"No tickets past {offset} ({total}).")
            return
        click.echo(f"{'ID':<18}{'TIME (UTC)':<21}{'ERROR':<50}REQUEST")
        for ticket in found:
            target = f"{ticket.method} {ticket.path}".strip()
            click.echo(
                f"{_cell(ticket.id, 16)}  {_time(ticket)}  {_cell(ticket.title, 48)}  {target}"
            )
        first = offset + 1
        click.echo(f"{first}-{offset + len(found)} of {total} tickets")

    @group.command("show")
    @click.argument("ticket_id")
    @click.option("--json", "as_json", is_flag=True, help="The ticket as stored (JSON).")
    def show(ticket_id: str, as_json: bool) -> None:
        """Everything in one ticket: request, user, traceback."""
        ticket = _run(tickets, lambda: tickets.get(ticket_id))
        if ticket is None:
            raise click.ClickException(f"no ticket {ticket_id!r}")
        if as_json:
            click.echo(orjson.dumps(ticket.as_dict(), option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(format_ticket(ticket))

    @group.command("delete")
    @click.argument("ticket_id")
    def delete(ticket_id: str) -> None:
        """Delete one ticket."""
        if not _run(tickets, lambda: tickets.delete(ticket_id)):
            raise click.ClickException(f"no ticket {ticket_id!r}")
        click.echo(f"Deleted ticket {ticket_id}.")

    @group.command("purge")
    @click.option(
        "--older-than",
        "days",
        required=True,
        type=click.FloatRange(min=0),
        metavar="DAYS",
        help="Delete the tickets created more than DAYS days ago.",
    )
    def purge(days: float) -> None:
        """Delete old tickets."""
        removed = _run(tickets, lambda: tickets.purge(timedelta(days=days)))
        click.echo(
            f"Deleted {removed} ticket{'' if removed == 1 else 's'} older than {days:g} days."
        )

    return group
