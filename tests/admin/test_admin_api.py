"""The admin's JSON API: CRUD per model, its OpenAPI description, permissions, the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from admin_helpers import log_entries, make_app, seed

from trellis.contrib.auth import User
from trellis.testing import TestClient


def bearer(client: TestClient, username: str = "root") -> dict[str, str]:
    auth = client.app.state.auth  # type: ignore[attr-defined]
    db = client.app.state.database  # type: ignore[attr-defined]

    async def issue() -> str:
        async with db.transaction() as session:
            user = await auth.find_user(session, username)
            assert isinstance(user, User)
            token: str = await auth.issue_token(session, user)
            return token

    return {"Authorization": f"Bearer {client.call(issue)}"}


@pytest.fixture
def root(client: TestClient) -> dict[str, str]:
    return bearer(client)


def test_list_pages_searches_filters_and_sorts(client: TestClient, root: dict[str, str]) -> None:
    page = client.get("/admin/api/book", headers=root).json()
    assert page["total"] == 5 and page["limit"] == 3 and page["offset"] == 0
    assert [b["title"] for b in page["items"]] == [
        "A Wizard of Earthsea",
        "Ancillary Justice",
        "Ancillary Sword",
    ]
    first = page["items"][1]
    assert set(first) == {
        "id",
        "title",
        "isbn",
        "summary",
        "pages",
        "published",
        "author_id",
        "created_at",
        "tags",
    }
    assert first["tags"] == [1]

    def titles(**params: Any) -> list[str]:
        response = client.get("/admin/api/book", params=params, headers=root)
        assert response.status_code == 200, response.text
        return [b["title"] for b in response.json()["items"]]

    assert titles(q="ancillary sword") == ["Ancillary Sword"]
    assert titles(published=True, sort="-pages") == [
        "The Dispossessed",
        "The Left Hand of Darkness",
    ]
    assert titles(author_id__in=[1], limit=10) == ["Ancillary Justice", "Ancillary Sword"]
    assert titles(offset=3, limit=10) == ["The Dispossessed", "The Left Hand of Darkness"]
    assert client.get("/admin/api/book?sort=summary", headers=root).status_code == 422
    assert client.get("/admin/api/book?limit=101", headers=root).status_code == 422


def test_crud(client: TestClient, root: dict[str, str]) -> None:
    created = client.post(
        "/admin/api/book",
        json={"title": "The Lathe of Heaven", "author_id": 2, "pages": 184, "tags": [1, 2]},
        headers=root,
    )
    assert created.status_code == 201, created.text
    book = created.json()
    assert book["title"] == "The Lathe of Heaven" and book["tags"] == [1, 2]
    assert book["published"] is False and book["created_at"]
    url = f"/admin/api/book/{book['id']}"
    assert client.get(url, headers=root).json() == book

    changed = client.patch(url, json={"published": True, "tags": [2]}, headers=root)
    assert changed.status_code == 200
    assert changed.json()["published"] is True and changed.json()["tags"] == [2]
    assert changed.json()["title"] == "The Lathe of Heaven"  # not sent: kept

    assert client.delete(url, headers=root).status_code == 204
    assert client.get(url, headers=root).status_code == 404
    assert client.patch(url, json={}, headers=root).status_code == 404
    assert client.delete(url, headers=root).status_code == 404

    entries = log_entries(client, client.app.state.database)  # type: ignore[attr-defined]
    assert [(e.action, e.object_pk, e.user_repr) for e in entries] == [
        ("add", str(book["id"]), "root"),
        ("change", str(book["id"]), "root"),
        ("delete", str(book["id"]), "root"),
    ]
    assert set(entries[0].changed_fields) == {"title", "author_id", "pages", "tags"}
    assert entries[1].changed_fields == ["published", "tags"]


def test_validation(client: TestClient, root: dict[str, str]) -> None:
    missing = client.post("/admin/api/book", json={"pages": 3}, headers=root)
    assert missing.status_code == 422
    assert {tuple(e["loc"]) for e in missing.json()["errors"]} == {
        ("body", "title"),
        ("body", "author_id"),
    }
    # read-only and unknown fields are refused, not dropped
    for body in (
        {"title": "x", "author_id": 1, "created_at": "2020-01-01T00:00:00Z"},
        {"title": "x", "author_id": 1, "id": 99},
        {"title": "x", "author_id": 1, "colour": "red"},
    ):
        assert client.post("/admin/api/book", json=body, headers=root).status_code == 422
    too_long = client.post(
        "/admin/api/book", json={"title": "x" * 201, "author_id": 1}, headers=root
    )
    assert too_long.status_code == 422
    no_tag = client.post(
        "/admin/api/book", json={"title": "x", "author_id": 1, "tags": [1, 42]}, headers=root
    )
    assert no_tag.status_code == 422
    assert no_tag.json()["errors"][0]["loc"] == ["body", "tags"]
    assert client.patch("/admin/api/book/1", json={"title": None}, headers=root).status_code == 422
    assert log_entries(client, client.app.state.database) == []  # type: ignore[attr-defined]


def test_a_refused_write_leaves_no_log_entry(client: TestClient, root: dict[str, str]) -> None:
    taken = client.patch("/admin/api/book/1", json={"isbn": "978-0"}, headers=root)
    assert taken.status_code == 409
    no_author = client.post(
        "/admin/api/book", json={"title": "Orphan", "author_id": 99}, headers=root
    )
    assert no_author.status_code == 409
    still_has_books = client.delete("/admin/api/author/1", headers=root)
    assert still_has_books.status_code == 409
    assert log_entries(client, client.app.state.database) == []  # type: ignore[attr-defined]
    assert client.get("/admin/api/book/1", headers=root).json()["isbn"] is None


def test_the_session_works_with_the_csrf_token(client: TestClient) -> None:
    from admin_helpers import csrf_of, login

    login(client, "editor")
    token = csrf_of(client.get("/admin/book").text)
    assert client.patch("/admin/api/book/1", json={"pages": 1}).status_code == 403
    changed = client.patch("/admin/api/book/1", json={"pages": 1}, headers={"X-CSRF-Token": token})
    assert changed.status_code == 200 and changed.json()["pages"] == 1


def test_openapi_describes_every_endpoint(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]
    paths = document["paths"]
    assert set(paths["/admin/api/book"]) == {"get", "post"}
    assert set(paths["/admin/api/book/{pk}"]) == {"get", "patch", "delete"}
    for model in ("author", "tag", "secret_thing"):
        assert f"/admin/api/{model}" in paths
    assert not any(path.startswith("/admin/book") for path in paths)  # pages stay out
    listing = paths["/admin/api/book"]["get"]
    names = [p["name"] for p in listing["parameters"]]
    assert names[:2] == ["limit", "offset"]
    assert {"q", "published", "published__in", "author_id", "author_id__in", "sort"} <= set(names)
    assert listing["tags"] == ["admin: Books"]
    assert listing["summary"] == "List books"
    assert {"authBearer", "authApiKey"} <= {name for s in listing["security"] for name in s}
    assert "403" in listing["responses"]
    create = paths["/admin/api/book"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BookAdminCreate"
    }
    assert set(create["responses"]) >= {"201", "403", "409", "422"}
    assert paths["/admin/api/book/{pk}"]["delete"]["responses"].keys() >= {"204", "404"}
    schemas = document["components"]["schemas"]
    read = schemas["BookAdminRead"]
    assert set(read["properties"]) >= {"id", "title", "tags", "author_id"}
    assert read["properties"]["tags"]["type"] == "array"
    assert "created_at" not in schemas["BookAdminCreate"]["properties"]
    assert "id" not in schemas["BookAdminUpdate"]["properties"]
    assert "api_token" not in schemas["SecretAdminRead"]["properties"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Page_BookAdminRead_"
    }
    assert set(schemas["Page_BookAdminRead_"]["properties"]) == {
        "items",
        "total",
        "limit",
        "offset",
    }


def test_the_document_is_valid_openapi(client: TestClient) -> None:
    from openapi_spec_validator import validate

    validate(client.app.openapi())  # type: ignore[attr-defined]


def test_models_without_api(tmp_path: Path) -> None:
    from admin_helpers import Tag

    from trellis.contrib.admin import ModelAdmin

    class Quiet(ModelAdmin):
        api = False

    app = make_app(f"sqlite:///{tmp_path / 'a.db'}", register=False)
    app.state.admin.register(Tag, Quiet)
    with TestClient(app) as client:
        client.call(seed, app.state.database)
        assert "/admin/api/tag" not in app.openapi()["paths"]
        assert client.get("/admin/api/tag", headers=bearer(client)).status_code == 404
