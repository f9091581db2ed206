"""Tickets in an app: a crash in production stores a scrubbed ticket, the client sees its id."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from tickets_helpers import SECRET_KEY, run, stored_text, ticket_app

from trellis import App, ForbiddenError, Request
from trellis.contrib.tickets import FileTicketStore, Ticket, Tickets, TicketStore
from trellis.exceptions import ConfigurationError
from trellis.testing import AsyncTestClient, TestClient

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

# Each must never reach a stored ticket.
SECRETS = {
    "authorization": "Bearer-cred-4f7a9b2c",
    "basic": "basic-pw-81d3e6",
    "x-api-key": "apikey-5c2e8d1f",
    "x-csrf-token": "csrf-hdr-9a8b7c6d",
    "x-auth-thing": "custom-auth-0e1f2a",
    "session_cookie": "sess-cookie-6b5a4c3d",
    "remember_token": "remember-7c8d9e0f",
    "password": "hunter2-Zq9!x",
    "csrf_token": "csrf-form-2b3c4d5e",
    "query_token": "qtok-3e4f5a6b",
    "client_secret": "clsec-8e9f0a1b",
    "path_token": "pathtok-a1b2c3d4",
    "json_key": "jsonkey-d4e5f6a7",
}


def crash_app(store: TicketStore, **options: Any) -> tuple[App, Tickets]:
    app, tickets = ticket_app(store, **options)

    @app.post("/orders/{reset_token}")
    async def order(request: Request, reset_token: str) -> None:
        form = await request.form()
        password = form["password"]
        raise RuntimeError(f"payment failed for {form['email']} with {password}")

    @app.post("/api/orders")
    async def api_order(request: Request) -> None:
        data = await request.json()
        raise ValueError(f"bad order {data['item']} signed {data['api_key']}")

    @app.get("/crash")
    def crash() -> None:
        raise KeyError("boom")

    @app.get("/forbidden")
    async def forbidden() -> None:
        raise ForbiddenError("no")

    return app, tickets


def secret_request(client: TestClient) -> Any:
    import base64

    basic = base64.b64encode(f"ann:{SECRETS['basic']}".encode()).decode()
    client.cookies.set("session", SECRETS["session_cookie"])
    client.cookies.set("remember_token", SECRETS["remember_token"])
    client.cookies.set("theme", "dark")
    return client.post(
        f"/orders/{SECRETS['path_token']}",
        params={
            "token": SECRETS["query_token"],
            "client_secret": SECRETS["client_secret"],
            "page": "2",
        },
        data={
            "email": "ann@example.com",
            "password": SECRETS["password"],
            "csrf_token": SECRETS["csrf_token"],
        },
        headers={
            "authorization": f"Bearer {SECRETS['authorization']}",
            "proxy-authorization": f"Basic {basic}",
            "x-api-key": SECRETS["x-api-key"],
            "x-csrf-token": SECRETS["x-csrf-token"],
            "x-auth-thing": SECRETS["x-auth-thing"],
            "user-agent": "pytest-agent/1.0",
        },
    )


def test_a_crash_stores_a_ticket_with_no_secret(new_store: Callable[[], TicketStore]) -> None:
    store = new_store()
    app, _ = crash_app(store)
    with TestClient(app) as client:
        response = secret_request(client)
        client.cookies.clear()  # no session: a JSON client needs no CSRF token
        api = client.post(
            "/api/orders",
            json={"item": "tea", "api_key": SECRETS["json_key"], "nested": {"password": "x" * 9}},
        )
    # The client: the ticket id, nothing else.
    assert response.status_code == 500
    ticket_id = response.headers["x-error-ticket"]
    assert re.fullmatch(r"[a-z2-7]{16}", ticket_id)
    body = response.json()
    assert body["detail"] == f"The server hit an unexpected error. Error ticket {ticket_id}"
    assert body["ticket"] == ticket_id
    for leak in ("Traceback", "RuntimeError", "payment", "File ", *SECRETS.values()):
        assert leak not in response.text
    # The store: every secret scrubbed, in every file or column.
    text = stored_text(store)
    assert ticket_id in text and api.headers["x-error-ticket"] in text
    for name, secret in SECRETS.items():
        assert secret not in text, name
    assert "x" * 9 not in text
    ticket = run(store, lambda: store.get(ticket_id))
    assert ticket is not None
    assert ticket.exception_type == "RuntimeError"
    assert ticket.message == "payment failed for ann@example.com with [scrubbed]"
    assert "raise RuntimeError" in ticket.traceback
    assert ticket.request_id == response.headers["x-request-id"]
    req = ticket.request
    assert (req["method"], req["path"]) == ("POST", "/orders/[scrubbed]")
    assert req["query"] == {
        "token": ["[scrubbed]"],
        "client_secret": ["[scrubbed]"],
        "page": ["2"],
    }
    assert req["form"] == {
        "email": ["ann@example.com"],
        "password": ["[scrubbed]"],
        "csrf_token": ["[scrubbed]"],
    }
    headers = req["headers"]
    for name in ("authorization", "proxy-authorization", "x-api-key", "x-csrf-token", "cookie"):
        assert headers[name] == "[scrubbed]", name
    assert headers["x-auth-thing"] == "[scrubbed]"
    assert headers["user-agent"] == "pytest-agent/1.0"
    assert req["cookies"] == {
        "session": "[scrubbed]",
        "remember_token": "[scrubbed]",
        "theme": "dark",
    }
    assert "json" not in req  # the form handler never parsed JSON
    assert ticket.frames[-1]["function"] == "order"
    assert "locals" not in ticket.frames[-1]  # off by default
    assert ticket.user is None
    assert set(ticket.environment) == {"host", "pid", "python", "trellis", "app_version"}
    api_ticket = run(store, lambda: store.get(api.headers["x-error-ticket"]))
    assert api_ticket is not None
    assert api_ticket.request["json"] == {
        "item": "tea",
        "api_key": "[scrubbed]",
        "nested": {"password": "[scrubbed]"},
    }
    assert api_ticket.message == "bad order tea signed [scrubbed]"
    assert "form" not in api_ticket.request


def test_the_html_page_shows_the_ticket_only(tmp_path: Path) -> None:
    app, tickets = crash_app(FileTicketStore(tmp_path))
    with TestClient(app) as client:
        response = client.get("/crash", headers={"accept": BROWSER})
    ticket_id = response.headers["x-error-ticket"]
    assert response.status_code == 500
    assert f"Error ticket {ticket_id}" in response.text
    assert "<pre>" not in response.text and "boom" not in response.text
    ticket = anyio.run(tickets.get, ticket_id)
    assert ticket is not None and ticket.exception_type == "KeyError"
    assert ticket.message == "'boom'"


def test_http_errors_store_no_ticket(tmp_path: Path) -> None:
    app, tickets = crash_app(FileTicketStore(tmp_path))
    with TestClient(app) as client:
        assert client.get("/forbidden").status_code == 403
        assert client.get("/missing").status_code == 404
    assert anyio.run(tickets.count) == 0


def test_debug_mode_stores_nothing_and_shows_the_traceback(tmp_path: Path) -> None:
    app, tickets = crash_app(FileTicketStore(tmp_path), debug=True)
    with TestClient(app) as client:
        response = client.get("/crash")
    assert "x-error-ticket" not in response.headers
    assert response.json()["traceback"][0] == "Traceback (most recent call last):"
    assert anyio.run(tickets.count) == 0


def test_in_debug_stores_tickets_in_debug_mode_too(tmp_path: Path) -> None:
    app, tickets = crash_app(FileTicketStore(tmp_path), debug=True, in_debug=True)
    with TestClient(app) as client:
        body = client.get("/crash").json()
    assert body["ticket"] and "traceback" in body
    assert anyio.run(tickets.count) == 1


def test_a_failing_store_still_answers_500_with_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTicketStore(tmp_path)
    app, _ = crash_app(store)
    with caplog.at_level(logging.ERROR, logger="trellis.error"), TestClient(app) as client:
        (tmp_path / "not-a-directory").write_text("a file where the directory should be")
        store.directory = tmp_path / "not-a-directory" / "tickets"  # broken after start-up
        response = client.get("/crash")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert (
        response.json()["detail"] == f"The server hit an unexpected error. Reference: {request_id}"
    )
    assert "x-error-ticket" not in response.headers
    messages = [r.getMessage() for r in caplog.records if r.name == "trellis.error"]
    assert any("error reporter" in m for m in messages)
    assert any("unhandled error in GET /crash" in m for m in messages)


def test_an_unwritable_directory_is_refused_at_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory should be")
    app, _ = crash_app(FileTicketStore(blocker / "tickets"))
    try:
        with pytest.raises(ConfigurationError, match="cannot make the tickets directory"):
            anyio.run(app.startup)
    finally:
        anyio.run(app.shutdown)
    made = tmp_path / "made" / "here"
    app, _ = crash_app(FileTicketStore(made))
    with TestClient(app):
        assert made.is_dir()


class SlowStore(FileTicketStore):
    async def save(self, ticket: Ticket) -> None:
        await anyio.sleep(5)


def test_a_slow_store_is_given_up_after_the_timeout(tmp_path: Path) -> None:
    app, _ = crash_app(SlowStore(tmp_path), timeout=0.05)
    with TestClient(app) as client:
        response = client.get("/crash")
    assert response.status_code == 500
    assert "Reference: " in response.json()["detail"]


def test_the_user_is_recorded(tmp_path: Path) -> None:
    app, tickets = ticket_app(FileTicketStore(tmp_path))

    class User:
        def __init__(self) -> None:
            self.id = 7
            self.email = "ann@example.com"
            self.username = "ann"
            self.password_hash = "argon2-hash-value"

    @app.get("/me")
    async def me(request: Request) -> None:
        request.state.user = User()
        raise RuntimeError("profile broke")

    @app.get("/dict-user")
    async def dict_user(request: Request) -> None:
        request.state.user = {"id": 3, "email": "bob@example.com"}
        raise RuntimeError("broke")

    @app.get("/odd-user")
    async def odd_user(request: Request) -> None:
        request.state.user = object()
        raise RuntimeError("broke")

    with TestClient(app) as client:
        ids = [client.get(p).headers["x-error-ticket"] for p in ("/me", "/dict-user", "/odd-user")]
    found = [anyio.run(tickets.get, i) for i in ids]
    users = [t.user if t is not None else "missing" for t in found]
    assert users == [
        {"id": "7", "email": "ann@example.com", "username": "ann"},
        {"id": "3", "email": "bob@example.com"},
        {"type": "object"},
    ]
    assert "argon2-hash-value" not in stored_text(tickets.store)


def test_locals_are_scrubbed_and_bounded_when_captured(tmp_path: Path) -> None:
    app, tickets = ticket_app(FileTicketStore(tmp_path), capture_locals=True, scrub=[r"^pin$"])

    class Card:
        def __repr__(self) -> str:
            return "Card(number=4111, cvv=123)"

    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    @app.get("/pay")
    async def pay() -> None:
        api_token = "local-token-7f8e9d"  # noqa: F841 - a local the ticket must scrub
        pin = "pin-4455"  # noqa: F841
        settings = {"db_password": "dbpw-6a5b4c", "debug": False, "items": list(range(500))}  # noqa: F841
        dsn = "postgresql://app:dsnpw-1a2b3c@db/app"
        note = "x" * 10_000
        card, bad = Card(), BadRepr()
        raise RuntimeError(f"could not pay {len(note)} {card} {bad is None} {dsn}")

    with TestClient(app) as client:
        ticket_id = client.get("/pay").headers["x-error-ticket"]
    text = stored_text(tickets.store)
    for secret in ("local-token-7f8e9d", "pin-4455", "dbpw-6a5b4c", "dsnpw-1a2b3c"):
        assert secret not in text
    ticket = anyio.run(tickets.get, ticket_id)
    assert ticket is not None
    local = ticket.frames[-1]["locals"]
    assert local["api_token"] == local["pin"] == "[scrubbed]"
    assert local["settings"].startswith("{'db_password': '[scrubbed]', 'debug': False, 'items': [")
    assert local["dsn"] == "'postgresql://app:[scrubbed]@db/app'"
    assert len(local["note"]) < 600
    assert local["card"] == "Card(number=4111, cvv=123)"  # reprs are shown as they are
    assert local["bad"].startswith("<BadRepr instance at ")  # reprlib's fallback
    assert ticket.message.endswith("postgresql://app:[scrubbed]@db/app")
    assert len(text) < 200_000


def test_huge_requests_and_messages_are_bounded(tmp_path: Path) -> None:
    app = App(secret_key=SECRET_KEY, max_headers=200)
    tickets = app.install(Tickets(FileTicketStore(tmp_path)))

    @app.get("/big")
    async def big() -> None:
        raise RuntimeError("m" * 100_000)

    many = {f"x-h{i}": "v" * 3000 for i in range(150)}
    with TestClient(app) as client:
        ticket_id = client.get("/big", headers=many).headers["x-error-ticket"]
    ticket = anyio.run(tickets.get, ticket_id)
    assert ticket is not None
    assert len(ticket.message) <= 2001
    assert len(ticket.traceback) < 70_000 and "characters cut" in ticket.traceback
    assert len(ticket.request["headers"]) <= 100
    assert max(len(v) for v in ticket.request["headers"].values()) <= 2001
    assert len(stored_text(tickets.store)) < 500_000


def test_uploads_are_described_never_stored(tmp_path: Path) -> None:
    app, tickets = ticket_app(FileTicketStore(tmp_path / "t"))

    @app.post("/upload")
    async def upload(request: Request) -> None:
        await request.form()
        raise RuntimeError("upload broke")

    with TestClient(app) as client:
        response = client.post(
            "/upload",
            data={"title": "report"},
            files={"file": ("report.txt", b"file-contents-secret", "text/plain")},
        )
    ticket = anyio.run(tickets.get, response.headers["x-error-ticket"])
    assert ticket is not None
    assert ticket.request["form"] == {
        "title": ["report"],
        "file": ["<file 'report.txt' text/plain, 20 bytes>"],
    }
    assert "file-contents-secret" not in stored_text(tickets.store)


def test_an_unread_body_is_never_read(tmp_path: Path) -> None:
    app, tickets = ticket_app(FileTicketStore(tmp_path))

    @app.post("/unread")
    async def unread() -> None:
        raise RuntimeError("before reading")

    with TestClient(app) as client:
        response = client.post("/unread", data={"password": "unread-pw-1234"})
    ticket = anyio.run(tickets.get, response.headers["x-error-ticket"])
    assert ticket is not None
    assert "form" not in ticket.request and "json" not in ticket.request
    assert "unread-pw-1234" not in stored_text(tickets.store)


@pytest.mark.anyio
async def test_fifty_concurrent_crashes_make_fifty_tickets(
    new_store: Callable[[], TicketStore],
) -> None:
    store = await anyio.to_thread.run_sync(new_store)
    app, tickets = crash_app(store)
    ids: list[str] = []
    async with AsyncTestClient(app) as client:

        async def crash(n: int) -> None:
            response = await client.get("/crash", params={"n": str(n)})
            assert response.status_code == 500
            ids.append(response.headers["x-error-ticket"])

        async with anyio.create_task_group() as group:
            for n in range(50):
                group.start_soon(crash, n)
        assert len(set(ids)) == 50
        assert await tickets.count() == 50
        listed = await tickets.list(limit=100)
        assert {t.id for t in listed} == set(ids)
        assert sorted(t.request["query"]["n"][0] for t in listed) == sorted(map(str, range(50)))
    await store.close()


# -- installing ------------------------------------------------------------------------------------


def test_install_puts_the_plugin_on_the_state_and_adds_the_command(tmp_path: Path) -> None:
    app = App(secret_key=SECRET_KEY)
    tickets = app.install(Tickets(FileTicketStore(tmp_path)))
    assert app.state.tickets is tickets
    assert [c.name for c in app.commands] == ["tickets"]
    with pytest.raises(ConfigurationError, match="already has Tickets"):
        app.install(Tickets(FileTicketStore(tmp_path)))
    assert repr(tickets) == f"<Tickets <FileTicketStore {tmp_path}>>"


def test_the_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trellis.contrib.db import Database
    from trellis.contrib.tickets import DatabaseTicketStore
    from trellis.contrib.tickets.database import MIGRATION_BRANCH

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="not installed yet"):
        _ = Tickets().store
    plain = App(secret_key=SECRET_KEY)
    store = plain.install(Tickets()).store
    assert isinstance(store, FileTicketStore) and store.directory == tmp_path / "tickets"
    with_db = App(secret_key=SECRET_KEY)
    db = with_db.install(Database("sqlite://"))
    db_store = with_db.install(Tickets()).store
    assert isinstance(db_store, DatabaseTicketStore) and db_store.database is db
    assert MIGRATION_BRANCH in db.migration_branches


def test_the_app_version_comes_from_the_app_or_the_option(tmp_path: Path) -> None:
    app, tickets = ticket_app(FileTicketStore(tmp_path / "a"))
    app.openapi_info["version"] = "3.1.4"
    other, other_tickets = ticket_app(FileTicketStore(tmp_path / "b"), app_version="9.9")
    for a in (app, other):
        a.get("/crash")(lambda: 1 / 0)
    with TestClient(app) as client, TestClient(other) as other_client:
        first = client.get("/crash").headers["x-error-ticket"]
        second = other_client.get("/crash").headers["x-error-ticket"]
    one, two = anyio.run(tickets.get, first), anyio.run(other_tickets.get, second)
    assert one is not None and two is not None
    assert one.environment["app_version"] == "3.1.4"
    assert two.environment["app_version"] == "9.9"
    assert one.exception_type == "ZeroDivisionError"


def test_a_crash_inside_a_database_transaction_still_stores_its_ticket(db_url: str) -> None:
    from sqlalchemy import text

    from trellis.contrib.db import Database, Session
    from trellis.contrib.tickets import DatabaseTicketStore

    store = DatabaseTicketStore(Database(db_url, pool_size=2, max_overflow=3))
    run(store, store.create_table)
    app, tickets = ticket_app(store)

    @app.post("/write-then-crash")
    async def write_then_crash(db: Session) -> None:
        # The request's transaction holds a write lock (SQLite: the whole database) ...
        await db.execute(text("UPDATE trellis_ticket SET path = path"))
        await db.execute(text("DELETE FROM trellis_ticket WHERE ticket_id = 'none'"))
        raise RuntimeError("crashed mid-transaction")

    with TestClient(app) as client:
        response = client.post("/write-then-crash")
        # ... rolled back before the ticket is written, so the ticket is not blocked.
        assert response.headers.get("x-error-ticket")
        assert client.call(tickets.count) == 1


def test_tickets_are_read_while_the_request_holds_a_write_transaction(db_url: str) -> None:
    import datetime

    from trellis.contrib.db import Database, Session
    from trellis.contrib.tickets import DatabaseTicketStore

    # A short busy timeout: a read that waits for the request's write lock fails fast.
    options = {"connect_args": {"timeout": 0.2}} if db_url.startswith("sqlite") else {}
    store = DatabaseTicketStore(
        Database(db_url, pool_size=2, max_overflow=3, engine_options=options)
    )
    run(store, store.create_table)
    now = datetime.datetime.now(datetime.UTC)
    old = Ticket("old", now, "ValueError", "", "", request={"path": "/old"})
    run(store, lambda: store.save(old))
    app, tickets = ticket_app(store)

    @app.post("/write-then-read")
    async def write_then_read(db: Session) -> dict[str, Any]:
        # The request's transaction writes a row (on SQLite: it holds the write lock) ...
        row = {"ticket_id": "new", "created_at": now, "exception_type": "E", "path": "/new"}
        await db.execute(store.table.insert().values(**row, data="{}"))
        # ... and the store reads on its own connection, at once: what was committed.
        listed = await tickets.list(limit=5, offset=0)
        found = await tickets.get("old")
        return {
            "listed": [t.path for t in listed],
            "count": await tickets.count(),
            "found": found is not None and found.path,
        }

    with TestClient(app) as client:
        response = client.post("/write-then-read")
        assert response.status_code == 200, response.text
        assert response.json() == {"listed": ["/old"], "count": 1, "found": "/old"}
        assert client.call(tickets.count) == 2  # the request's row, committed after it
