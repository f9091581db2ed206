"""The add and edit pages: ModelForm with selects, validation errors, the log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from admin_helpers import Author, Book, BookAdmin, Tag, csrf_of, log_entries, login, make_app, seed
from sqlalchemy.ext.asyncio import AsyncSession

from trellis import Request
from trellis.contrib.admin import ModelAdmin
from trellis.testing import TestClient


@pytest.fixture
def root(client: TestClient) -> TestClient:
    login(client, "root")
    return client


def form_of(html: str) -> str:
    found = re.search(
        r'<form method="post" action="[^"]*" class="model-form".*?</form>', html, re.S
    )
    assert found is not None, html
    return found.group(0)


def test_the_add_form_has_selects_for_relations(root: TestClient) -> None:
    page = root.get("/admin/book/add")
    assert page.status_code == 200
    form = form_of(page.text)
    assert 'name="csrf_token"' in form
    assert '<label for="id_title">Title</label>' in form
    author = re.search(
        r'<select id="id_author_id" name="author_id"[^>]*>(.*?)</select>', form, re.S
    )
    assert author is not None
    assert ">Ann Leckie</option>" in author.group(1)
    assert ">Ursula K. Le Guin</option>" in author.group(1)
    tags = re.search(r'<select id="id_tags" name="tags" multiple>(.*?)</select>', form, re.S)
    assert tags is not None and ">sf</option>" in tags.group(1)
    # what the database fills in and what is read-only are not fields
    assert 'name="created_at"' not in form and 'name="id"' not in form


def test_create(root: TestClient) -> None:
    token = csrf_of(root.get("/admin/book/add").text)
    created = root.post(
        "/admin/book/add",
        data={
            "csrf_token": token,
            "title": "The Lathe of Heaven",
            "author_id": "2",
            "pages": "184",
            "summary": "",
            "tags": ["1", "2"],
            "_save": "",
        },
    )
    assert created.status_code == 303
    location = created.headers["location"]
    assert re.fullmatch(r"/admin/book/\d+", location)
    detail = root.get(location)
    assert "Book &#34;The Lathe of Heaven&#34; was added." in detail.text
    assert re.search(r'id="field-tags">.*sf.*classic', detail.text, re.S)
    [entry] = log_entries(root, root.app.state.database)  # type: ignore[attr-defined]
    assert entry.action == "add" and entry.object_repr == "The Lathe of Heaven"
    assert set(entry.changed_fields) == {"title", "author_id", "pages", "tags"}


def test_save_and_continue_or_add_another(root: TestClient) -> None:
    token = csrf_of(root.get("/admin/tag/add").text)
    more = root.post("/admin/tag/add", data={"csrf_token": token, "name": "new", "_addanother": ""})
    assert more.headers["location"] == "/admin/tag/add"
    stay = root.post("/admin/tag/add", data={"csrf_token": token, "name": "newer", "_continue": ""})
    assert re.fullmatch(r"/admin/tag/\d+/edit", stay.headers["location"])


def test_validation_errors_are_shown_next_to_the_fields(root: TestClient) -> None:
    token = csrf_of(root.get("/admin/book/add").text)
    refused = root.post(
        "/admin/book/add",
        data={
            "csrf_token": token,
            "title": "",
            "author_id": "1",
            "pages": "many",
            "isbn": "x" * 30,
            "summary": "kept <b>as typed</b>",
        },
    )
    assert refused.status_code == 422
    form = form_of(refused.text)
    assert "Please correct the errors below." in refused.text
    for name in ("title", "pages", "isbn"):
        assert re.search(rf'id="id_{name}"[^>]*aria-invalid="true"', form), name
        assert f'id="id_{name}_errors"' in form
    assert "kept &lt;b&gt;as typed&lt;/b&gt;" in form  # values kept, escaped
    assert log_entries(root, root.app.state.database) == []  # type: ignore[attr-defined]


def test_edit_shows_the_values_and_logs_what_changed(root: TestClient) -> None:
    page = root.get("/admin/book/3/edit")
    form = form_of(page.text)
    assert 'value="The Left Hand of Darkness"' in form
    assert re.search(r'<option value="2" selected>Ursula K. Le Guin</option>', form)
    assert re.search(r'<option value="2" selected>classic</option>', form)
    assert "Created at" in page.text  # read-only, shown as text
    token = csrf_of(page.text)
    data = {
        "csrf_token": token,
        "title": "The Left Hand of Darkness",
        "author_id": "2",
        "pages": "300",
        "summary": "",
        "published": "on",
        "tags": ["1"],
        "created_at": "2000-01-01T00:00",  # read-only: ignored
    }
    saved = root.post("/admin/book/3/edit", data=data)
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/book/3"
    book = root.get("/admin/api/book/3").json()
    assert book["pages"] == 300 and book["tags"] == [1]
    assert not book["created_at"].startswith("2000")
    # the same again changes nothing: no log entry
    root.post("/admin/book/3/edit", data=data)
    [entry] = log_entries(root, root.app.state.database)  # type: ignore[attr-defined]
    assert entry.action == "change" and entry.changed_fields == ["pages", "tags"]


def test_a_taken_unique_value_is_a_field_error(root: TestClient) -> None:
    token = csrf_of(root.get("/admin/book/1/edit").text)
    refused = root.post(
        "/admin/book/1/edit",
        data={"csrf_token": token, "title": "x", "author_id": "1", "pages": "1", "isbn": "978-0"},
    )
    assert refused.status_code == 422
    assert 'id="id_isbn_errors"' in refused.text and "already exists" in refused.text
    assert root.get("/admin/api/book/1").json()["title"] == "Ancillary Justice"
    assert log_entries(root, root.app.state.database) == []  # type: ignore[attr-defined]


def test_without_the_csrf_token_nothing_is_saved(root: TestClient) -> None:
    refused = root.post("/admin/tag/1/edit", data={"name": "forged"})
    assert refused.status_code == 403
    assert root.get("/admin/api/tag/1").json()["name"] == "sf"


class BrokenTagAdmin(ModelAdmin):
    """Its save breaks a constraint after the form was valid: the database says no."""

    async def save_model(
        self, request: Request, db: AsyncSession, obj: Any, *, created: bool
    ) -> None:
        obj.name = None
        await super().save_model(request, db, obj, created=created)


def test_a_change_the_database_refuses_writes_no_log(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}", register=False)
    app.state.admin.register(Tag, BrokenTagAdmin)
    app.state.admin.register(Book, BookAdmin)
    app.state.admin.register(Author)
    with TestClient(app) as client:
        client.call(seed, app.state.database)
        login(client, "root")
        page = client.get("/admin/tag/1/edit")
        refused = client.post(
            "/admin/tag/1/edit", data={"csrf_token": csrf_of(page.text), "name": "renamed"}
        )
        assert refused.status_code == 409
        assert "form-errors" in refused.text or "field-errors" in refused.text
        added = client.post(
            "/admin/tag/add", data={"csrf_token": csrf_of(page.text), "name": "brand new"}
        )
        assert added.status_code == 409
        assert log_entries(client, app.state.database) == []
        names = [t["name"] for t in client.get("/admin/api/tag?limit=10").json()["items"]]
        assert sorted(names) == ["classic", "sf"]
