"""``trellis tickets ...`` through the ``trellis`` CLI with an app module: files and databases."""

from __future__ import annotations

import importlib
import json
import re
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result

from trellis.cli import main
from trellis.contrib.tickets import Ticket, new_ticket_id
from trellis.testing import TestClient

APP = """
    import os

    from trellis import App, Request
    from trellis.contrib.db import Database
    from trellis.contrib.tickets import FileTicketStore, Tickets

    app = App(secret_key="k" * 40)
    where = os.environ["TICKETS_WHERE"]
    if where == "file":
        app.install(Tickets(FileTicketStore(os.environ["TICKETS_DIR"])))
    else:
        app.install(Database(where, check_on_startup=False, pool_size=2, max_overflow=3))
        app.install(Tickets())  # the database store, on the app's Database


    @app.get("/crash")
    async def crash(request: Request) -> None:
        request.state.user = {"id": 7, "email": "ann@example.com"}
        raise RuntimeError("the shop crashed")
"""


@pytest.fixture(autouse=True)
def isolated(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for name in ("TRELLIS_APP", "TRELLIS_APP_DIR", "TRELLIS_MIGRATIONS_DIR", "TRELLIS_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TICKETS_WHERE", where)
    monkeypatch.setenv("TICKETS_DIR", str(tmp_path / "tickets"))
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    (tmp_path / "shop.py").write_text(textwrap.dedent(APP))
    yield
    sys.modules.pop("shop", None)


def cli(*args: str) -> Result:
    sys.modules.pop("shop", None)
    return CliRunner().invoke(main, ["--app", "shop:app", *args])


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def crash_twice(where: str) -> list[str]:
    if where != "file":
        ok(cli("db", "init"))
        assert "trellis_tickets_0001" in ok(cli("db", "upgrade"))
    sys.modules.pop("shop", None)
    shop = importlib.import_module("shop")
    with TestClient(shop.app) as client:
        ids = [
            client.get("/crash", params={"access_token": "cli-secret-1"}).headers["x-error-ticket"]
            for _ in range(2)
        ]
    sys.modules.pop("shop", None)
    return ids


def test_list_show_delete(where: str) -> None:
    first, second = crash_twice(where)
    listing = ok(cli("tickets", "list"))
    lines = listing.splitlines()
    assert lines[0].split() == ["ID", "TIME", "(UTC)", "ERROR", "REQUEST"]
    assert lines[1].startswith(second) and lines[2].startswith(first)  # newest first
    assert "RuntimeError: the shop crashed" in lines[1] and lines[1].endswith("GET /crash")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[1])
    assert lines[-1] == "1-2 of 2 tickets"
    assert ok(cli("tickets", "list", "--limit", "1", "--offset", "1")).splitlines()[1:] == [
        lines[2],
        "2-2 of 2 tickets",
    ]
    assert ok(cli("tickets", "list", "--offset", "5")) == "No tickets past 5 (2).\n"

    shown = ok(cli("tickets", "show", first))
    assert f"Ticket   {first}" in shown
    assert "Error    RuntimeError" in shown and "Message  the shop crashed" in shown
    assert "Request  GET /crash" in shown
    assert "User     id=7, email=ann@example.com" in shown
    assert "  access_token: [scrubbed]" in shown
    assert 'raise RuntimeError("the shop crashed")' in shown
    assert "cli-secret-1" not in shown
    as_json = ok(cli("tickets", "show", first, "--json"))
    assert Ticket.from_dict(json.loads(as_json)).id == first

    missing = cli("tickets", "show", "nosuchticket")
    assert missing.exit_code == 1 and "no ticket 'nosuchticket'" in missing.output
    assert ok(cli("tickets", "delete", first)) == f"Deleted ticket {first}.\n"
    assert cli("tickets", "delete", first).exit_code == 1
    assert ok(cli("tickets", "list")).splitlines()[-1] == "1-1 of 1 tickets"


def test_purge(where: str) -> None:
    crash_twice(where)
    old = Ticket(
        id=new_ticket_id(),
        created_at=datetime.now(UTC) - timedelta(days=45),
        exception_type="OldError",
        message="long ago",
        traceback="",
    )
    sys.modules.pop("shop", None)
    shop = importlib.import_module("shop")
    tickets = shop.app.state.tickets

    async def save_old() -> None:
        try:
            await tickets.store.save(old)
        finally:
            await tickets.store.close()

    anyio.run(save_old)
    assert "OldError: long ago" in ok(cli("tickets", "list"))
    assert ok(cli("tickets", "purge", "--older-than", "30")) == (
        "Deleted 1 ticket older than 30 days.\n"
    )
    assert ok(cli("tickets", "purge", "--older-than", "0.5")) == (
        "Deleted 0 tickets older than 0.5 days.\n"
    )
    assert ok(cli("tickets", "list")).splitlines()[-1] == "1-2 of 2 tickets"
    assert cli("tickets", "purge").exit_code == 2  # --older-than is required
    assert ok(cli("tickets", "purge", "--older-than", "0")) == (
        "Deleted 2 tickets older than 0 days.\n"
    )
    assert ok(cli("tickets", "list")) == "No tickets.\n"
