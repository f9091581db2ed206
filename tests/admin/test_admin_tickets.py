"""Error tickets in the admin: the dashboard's latest, the list and one ticket's page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_helpers import login, make_app, seed

from trellis import App, Request
from trellis.contrib.tickets import DatabaseTicketStore, FileTicketStore, Tickets, TicketStore
from trellis.testing import TestClient


@pytest.fixture(params=["file", "database"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> App:
    # A short busy timeout: a ticket read waiting for the page's own SQLite lock fails fast.
    app = make_app(
        f"sqlite:///{tmp_path / 'admin.db'}", engine_options={"connect_args": {"timeout": 0.2}}
    )
    store: TicketStore
    if request.param == "file":
        store = FileTicketStore(tmp_path / "tickets")
    else:
        # Read on the store's own connection, while the page's session is in a transaction.
        store = DatabaseTicketStore(app.state.database)
        app.on_startup(store.create_table)
    app.install(Tickets(store, in_debug=True))

    @app.post("/checkout", csrf=False)
    async def checkout(request: Request) -> None:
        await request.form()  # parsed: the ticket shows it, scrubbed
        raise RuntimeError("the payment service is down")

    return app


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(app) as client:
        client.call(seed, app.state.database)
        yield client


def crash(client: TestClient) -> str:
    response = client.post("/checkout", data={"card": "4111 1111 1111 1111", "password": "hunter2"})
    assert response.status_code == 500
    ticket_id = response.headers["x-error-ticket"]
    assert ticket_id
    return ticket_id


def test_the_dashboard_lists_the_latest_tickets(client: TestClient) -> None:
    login(client, "root")
    assert "No error tickets" in client.get("/admin").text
    ticket_id = crash(client)
    page = client.get("/admin")
    assert 'id="latest-tickets"' in page.text
    assert f'href="/admin/tickets/{ticket_id}"' in page.text
    assert "the payment service is down" in page.text
    assert 'href="/admin/tickets"' in page.text  # in the menu


def test_the_ticket_pages(client: TestClient) -> None:
    login(client, "root")
    first, second = crash(client), crash(client)
    listing = client.get("/admin/tickets")
    assert listing.status_code == 200
    assert listing.text.index(second) < listing.text.index(first)  # newest first
    page = client.get(f"/admin/tickets/{first}")
    assert page.status_code == 200
    assert "RuntimeError" in page.text and "the payment service is down" in page.text
    assert 'id="traceback"' in page.text and "Traceback (most recent call last)" in page.text
    assert "POST /checkout" in page.text
    assert "hunter2" not in page.text
    assert client.get("/admin/tickets/aaaaaaaaaaaaaaaa").status_code == 404
    assert client.get("/admin/tickets/..%2F..%2Fetc").status_code == 404


def test_tickets_need_their_permission(client: TestClient) -> None:
    crash(client)
    login(client, "editor")  # book permissions only
    assert 'id="latest-tickets"' not in client.get("/admin").text
    assert 'href="/admin/tickets"' not in client.get("/admin").text
    assert client.get("/admin/tickets").status_code == 403


def test_without_the_tickets_battery(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}")
    with TestClient(app) as client:
        client.call(seed, app.state.database)
        login(client, "root")
        page = client.get("/admin")
        assert "latest-tickets" not in page.text and "/admin/tickets" not in page.text
        assert client.get("/admin/tickets").status_code == 404
