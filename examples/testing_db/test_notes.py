import pytest
from myproject import Note


def test_create(client, db_rollback):
    client.post("/notes", json={"text": "hello"})  # committed by the handler...
    assert client.get("/notes").json() == ["hello"]


def test_empty(client, db_rollback):
    assert client.get("/notes").json() == []  # ...and gone for the next test


@pytest.mark.anyio
async def test_direct(async_client, db_rollback):
    async with db_rollback.transaction() as session:  # rolled back as well
        session.add(Note(text="seeded"))
    assert (await async_client.get("/notes")).json() == ["seeded"]
