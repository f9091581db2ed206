"""The stores: the same behaviour on files and on every database."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from tickets_helpers import run

from trellis.contrib.tickets import FileTicketStore, Ticket, TicketStore, new_ticket_id

NOW = datetime.now(UTC).replace(microsecond=0)


def ticket(age: timedelta = timedelta(0), **changes: object) -> Ticket:
    values: dict[str, object] = {
        "id": new_ticket_id(),
        "created_at": NOW - age,
        "exception_type": "RuntimeError",
        "message": "boom — ünïcode ✓ 日本",
        "traceback": "Traceback (most recent call last):\n  ...\nRuntimeError: boom\n",
        "frames": [{"file": "app.py", "line": 3, "function": "f", "code": "raise"}],
        "request": {"method": "GET", "path": "/x", "request_id": "r1", "query": {}},
        "user": {"id": "1"},
        "environment": {"host": "h"},
    }
    values.update(changes)
    return Ticket(**values)  # type: ignore[arg-type]


def test_save_get_list_count_delete_purge(new_store: Callable[[], TicketStore]) -> None:
    store = new_store()
    old = ticket(timedelta(days=40), exception_type="app.errors.OldError")
    middle = ticket(timedelta(days=10))
    newest = ticket(timedelta(minutes=1), message="x" * 200_000)  # LONGTEXT on MariaDB

    async def work() -> None:
        for t in (middle, old, newest):
            await store.save(t)
        assert await store.count() == 3
        assert await store.get(middle.id) == middle
        assert await store.get(newest.id) == newest
        assert await store.get("unknown1234") is None
        assert [t.id for t in await store.list()] == [newest.id, middle.id, old.id]
        assert [t.id for t in await store.list(limit=1, offset=1)] == [middle.id]
        assert await store.list(offset=5) == []
        recent = await store.list(since=NOW - timedelta(days=20))
        assert [t.id for t in recent] == [newest.id, middle.id]
        assert await store.count(since=NOW - timedelta(days=20)) == 2
        with pytest.raises(ValueError, match="0 or more"):
            await store.list(limit=-1)
        assert await store.purge(timedelta(days=30)) == 1
        assert await store.get(old.id) is None
        assert await store.purge(NOW - timedelta(days=5)) == 1  # a datetime cutoff
        assert await store.delete(newest.id) is True
        assert await store.delete(newest.id) is False
        assert await store.count() == 0
        with pytest.raises(ValueError, match="negative"):
            await store.purge(timedelta(days=-1))

    run(store, work)


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "a/b", "", "x" * 65, "-starts-with-dash", "a b", "naïve", "a.json"]
)
def test_malformed_ids_are_never_found_nor_saved(
    bad: str, new_store: Callable[[], TicketStore]
) -> None:
    store = new_store()

    async def work() -> None:
        assert await store.get(bad) is None
        assert await store.delete(bad) is False
        with pytest.raises(ValueError, match="ticket id"):
            await store.save(ticket(id=bad))
        assert await store.count() == 0

    run(store, work)


def test_new_ids_are_random_and_url_safe() -> None:
    ids = {new_ticket_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 16 and i.isalnum() and i == i.lower() for i in ids)


# -- files ---------------------------------------------------------------------------------------


def test_files_are_private_and_written_atomically(tmp_path: Path) -> None:
    store = FileTicketStore(tmp_path / "var" / "tickets", fsync=False)
    first = ticket()
    anyio.run(store.save, first)
    path = store.directory / f"{first.id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert path.stat().st_mtime == first.created_at.timestamp()
    assert sorted(os.listdir(store.directory)) == [f"{first.id}.json"]  # no temporary file


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileTicketStore(tmp_path)

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        anyio.run(store.save, ticket())
    assert os.listdir(tmp_path) == []


def test_strays_and_broken_files_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTicketStore(tmp_path)
    good = ticket()
    anyio.run(store.save, good)
    (tmp_path / "brokenticket1.json").write_text("{not json")
    (tmp_path / "notaticket2.json").write_text('{"id": "x"}')
    (tmp_path / ".tmp-half.json").write_text("{")
    (tmp_path / "README.txt").write_text("hello")
    listed = anyio.run(store.list)
    assert [t.id for t in listed] == [good.id]
    assert anyio.run(store.get, "brokenticket1") is None
    assert "unreadable ticket file" in caplog.text
    assert anyio.run(store.count) == 3  # counted by name: ids that look right


def test_an_empty_or_missing_directory(tmp_path: Path) -> None:
    store = FileTicketStore(tmp_path / "never-made")
    assert anyio.run(store.list) == []
    assert anyio.run(store.count) == 0
    assert anyio.run(store.purge, timedelta(days=1)) == 0
    assert not store.directory.exists()


def test_ticket_round_trip_and_shortcuts() -> None:
    t = ticket(message="line one\n   line two")
    assert Ticket.from_dict(t.as_dict()) == t
    assert t.method == "GET" and t.path == "/x" and t.request_id == "r1"
    assert t.title == "RuntimeError: line one line two"
    assert ticket(message="m" * 500).title.endswith("…")
    assert len(ticket(message="m" * 500).title) == 200
    naive = dict(t.as_dict(), created_at="2026-01-02T03:04:05")
    assert Ticket.from_dict(naive).created_at.tzinfo is UTC
    with pytest.raises(ValueError, match="not an error ticket"):
        Ticket.from_dict({"id": "x"})
