"""The request's session: commit on success, roll back on error, savepoints, explicit begin.

Every test runs on SQLite, PostgreSQL and MariaDB, through the public API and the test
client; what is in the database afterwards is read with a fresh session of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from sqlalchemy import ForeignKey, MetaData, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trellis import App
from trellis.contrib.db import NAMING_CONVENTION, Database, Session, SyncSession
from trellis.exceptions import HTTPError, NotFoundError
from trellis.testing import TestClient


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {str: String(255)}


class Account(Base):
    __tablename__ = "account"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    balance: Mapped[int] = mapped_column(default=0)


class Entry(Base):
    __tablename__ = "entry"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    amount: Mapped[int]


def make_app(url: str) -> tuple[App, Database]:
    app = App(debug=True)
    db = app.install(Database(url))

    @app.on_startup
    async def tables() -> None:
        await db.create_all(Base.metadata)

    @app.post("/accounts")
    async def open_account(email: str, db: Session) -> dict[str, Any]:
        account = Account(email=email)
        db.add(account)
        await db.flush()  # the id comes from the database; the commit comes later
        return {"id": account.id}

    @app.post("/transfer")
    async def transfer(source: int, target: int, amount: int, db: Session) -> dict[str, int]:
        src = await db.get(Account, source)
        dst = await db.get(Account, target)
        if src is None or dst is None:
            raise NotFoundError("no such account")
        src.balance -= amount
        db.add(Entry(account_id=src.id, amount=-amount))
        await db.flush()  # half the work is in the database now
        if src.balance < 0:
            raise HTTPError(422, "insufficient funds")
        dst.balance += amount
        db.add(Entry(account_id=dst.id, amount=amount))
        return {"source": src.balance, "target": dst.balance}

    @app.post("/crash")
    async def crash(db: Session) -> None:
        db.add(Account(email="half@example.com"))
        await db.flush()
        raise RuntimeError("the handler broke half-way")

    @app.post("/duplicate-late")
    async def duplicate_late(email: str, db: Session) -> dict[str, str]:
        # No flush: the INSERT and its unique violation happen at the commit, after return.
        db.add(Account(email="fresh@example.com"))
        db.add(Account(email=email))
        return {"status": "accepted"}

    @app.post("/savepoint")
    async def savepoint(db: Session) -> dict[str, bool]:
        db.add(Account(email="outer@example.com"))
        kept = True
        try:
            async with db.begin_nested():
                db.add(Account(email="outer@example.com"))  # violates the unique email
        except Exception:
            kept = False  # only the savepoint rolled back
        db.add(Account(email="after@example.com"))
        return {"inner_kept": kept}

    @app.post("/explicit")
    async def explicit(db: Session) -> dict[str, str]:
        async with db.begin():
            db.add(Account(email="explicit@example.com"))
        # committed already; the request's own commit has nothing left to do
        return {"status": "ok"}

    @app.post("/sync-accounts")
    def open_sync(email: str, db: SyncSession, fail: bool = False) -> dict[str, Any]:
        account = Account(email=email)
        db.add(account)
        db.flush()
        if fail:
            raise HTTPError(400, "refused after the insert")
        return {"id": account.id}

    return app, db


@pytest.fixture
def setup(db_url: str) -> Iterator[tuple[TestClient, Database]]:
    app, db = make_app(db_url)
    with TestClient(app) as client:
        yield client, db


def emails(client: TestClient, db: Database) -> list[str]:
    async def read() -> list[str]:
        async with db.session() as session:
            rows = await session.scalars(select(Account.email).order_by(Account.email))
            return list(rows)

    return client.call(read)


def count_entries(client: TestClient, db: Database) -> int:
    async def read() -> int:
        async with db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(Entry)) or 0)

    return client.call(read)


def test_a_handler_that_returns_commits(setup: tuple[TestClient, Database]) -> None:
    client, db = setup
    response = client.post("/accounts", params={"email": "ann@example.com"})
    assert response.status_code == 200
    assert isinstance(response.json()["id"], int)
    assert emails(client, db) == ["ann@example.com"]


def test_an_http_error_half_way_leaves_no_row(setup: tuple[TestClient, Database]) -> None:
    client, db = setup
    a = client.post("/accounts", params={"email": "a@example.com"}).json()["id"]
    b = client.post("/accounts", params={"email": "b@example.com"}).json()["id"]
    response = client.post("/transfer", params={"source": a, "target": b, "amount": 5})
    assert response.status_code == 422
    assert response.json()["detail"] == "insufficient funds"
    # The debit and its entry were flushed before the error: both are gone.
    assert count_entries(client, db) == 0
    ok = client.post("/transfer", params={"source": a, "target": b, "amount": 0})
    assert ok.json() == {"source": 0, "target": 0}
    assert count_entries(client, db) == 2


def test_a_crash_half_way_leaves_no_row(setup: tuple[TestClient, Database]) -> None:
    client, db = setup
    response = client.post("/crash")
    assert response.status_code == 500
    assert emails(client, db) == []


def test_a_constraint_violation_answers_409_and_changes_nothing(
    setup: tuple[TestClient, Database],
) -> None:
    client, db = setup
    client.post("/accounts", params={"email": "taken@example.com"})
    response = client.post("/duplicate-late", params={"email": "taken@example.com"})
    assert response.status_code == 409
    body = response.json()
    assert body["title"] == "Conflict"
    assert "conflicts with existing data" in body["detail"]
    assert "email" in body["detail"]  # the constraint is named (uq_account_email)
    # The other row of the same request was not kept either.
    assert emails(client, db) == ["taken@example.com"]


def test_a_violation_at_flush_also_answers_409(setup: tuple[TestClient, Database]) -> None:
    client, db = setup
    assert client.post("/accounts", params={"email": "x@example.com"}).status_code == 200
    response = client.post("/accounts", params={"email": "x@example.com"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert emails(client, db) == ["x@example.com"]


def test_a_savepoint_rolls_back_only_the_nested_work(setup: tuple[TestClient, Database]) -> None:
    client, db = setup
    response = client.post("/savepoint")
    assert response.json() == {"inner_kept": False}
    assert emails(client, db) == ["after@example.com", "outer@example.com"]


def test_an_explicit_transaction_commits_at_its_end(setup: tuple[TestClient, Database]) -> None:
    client, db = setup
    assert client.post("/explicit").json() == {"status": "ok"}
    assert emails(client, db) == ["explicit@example.com"]


def test_sync_handlers_get_a_sync_session(setup: tuple[TestClient, Database]) -> None:
    client, db = setup
    assert client.post("/sync-accounts", params={"email": "s@example.com"}).status_code == 200
    refused = client.post("/sync-accounts", params={"email": "t@example.com", "fail": "true"})
    assert refused.status_code == 400
    duplicate = client.post("/sync-accounts", params={"email": "s@example.com"})
    assert duplicate.status_code == 409
    assert emails(client, db) == ["s@example.com"]


def test_html_clients_get_the_conflict_as_a_page(setup: tuple[TestClient, Database]) -> None:
    client, _ = setup
    client.post("/accounts", params={"email": "h@example.com"})
    response = client.post(
        "/accounts", params={"email": "h@example.com"}, headers={"accept": "text/html"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("text/html")
    assert "conflicts with existing data" in response.text
