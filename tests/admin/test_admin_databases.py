"""One tour of the admin on every database: SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import re

from admin_helpers import csrf_of, log_entries, login, make_app, seed

from trellis.testing import TestClient


def test_the_admin_on_each_database(db_url: str) -> None:
    app = make_app(db_url)
    with TestClient(app) as client:
        client.call(seed, app.state.database)
        login(client, "root")
        listing = client.get("/admin/book?q=ancillary&author_id=1&sort=-pages")
        assert re.findall(r'/admin/book/\d+">([^<]+)</a></th>', listing.text) == [
            "Ancillary Justice",
            "Ancillary Sword",
        ]
        assert client.get("/admin/book?q=50%25").status_code == 200
        token = csrf_of(listing.text)

        created = client.post(
            "/admin/book/add",
            data={
                "csrf_token": token,
                "title": "Four Ways to Forgiveness",
                "author_id": "2",
                "pages": "240",
                "summary": "Five stories",
                "tags": ["1", "2"],
            },
        )
        assert created.status_code == 303, created.text
        pk = created.headers["location"].rsplit("/", 1)[1]
        edited = client.post(
            f"/admin/book/{pk}/edit",
            data={
                "csrf_token": token,
                "title": "Four Ways to Forgiveness",
                "author_id": "2",
                "pages": "241",
                "summary": "",
                "tags": ["2"],
            },
        )
        assert edited.status_code == 303
        # the emptied NOT NULL text column gets its default, "", not NULL
        assert client.get(f"/admin/api/book/{pk}").json()["summary"] == ""
        taken = client.post(
            f"/admin/book/{pk}/edit",
            data={"csrf_token": token, "title": "x", "author_id": "2", "isbn": "978-0"},
        )
        assert taken.status_code == 422

        api = {"X-CSRF-Token": token}
        made = client.post(
            "/admin/api/book", json={"title": "Lavinia", "author_id": 2, "tags": [1]}, headers=api
        )
        assert made.status_code == 201
        url = f"/admin/api/book/{made.json()['id']}"
        assert client.patch(url, json={"pages": 279}, headers=api).json()["pages"] == 279
        assert client.patch(url, json={"isbn": "978-0"}, headers=api).status_code == 409
        assert client.delete("/admin/api/author/1", headers=api).status_code == 409

        confirm = client.post(
            "/admin/book",
            data={"csrf_token": token, "action": "delete_selected", "selected": ["1", "2"]},
        )
        assert confirm.status_code == 200
        done = client.post(
            "/admin/book",
            data={
                "csrf_token": token,
                "action": "delete_selected",
                "selected": ["1", "2"],
                "confirm": "yes",
            },
        )
        assert done.status_code == 303
        assert client.get("/admin/api/book").json()["total"] == 5

        entries = log_entries(client, app.state.database)
        assert [(e.action, e.action_name) for e in entries] == [
            ("add", None),
            ("change", None),
            ("add", None),
            ("change", None),
            ("delete", "delete_selected"),
            ("delete", "delete_selected"),
        ]
        assert entries[1].changed_fields == ["summary", "pages", "tags"]
        assert "Four Ways" in client.get("/admin").text
