"""The list, detail and delete pages, bulk actions and the action log, through the pages."""

from __future__ import annotations

import re

import pytest
from admin_helpers import csrf_of, log_entries, login

from trellis.testing import TestClient


def titles(html: str) -> list[str]:
    """The titles in the list, in order (the first cell of each row links to the object)."""
    return re.findall(r'<th scope="row"><a href="/admin/book/\d+">([^<]+)</a></th>', html)


@pytest.fixture
def root(client: TestClient) -> TestClient:
    login(client, "root")
    return client


def test_list_sorts_by_ordering_and_pages(root: TestClient) -> None:
    first = root.get("/admin/book")
    assert titles(first.text) == ["A Wizard of Earthsea", "Ancillary Justice", "Ancillary Sword"]
    assert "5 results" in first.text
    assert first.headers["cache-control"] == "no-store"
    second = root.get("/admin/book?page=2")
    assert titles(second.text) == ["The Dispossessed", "The Left Hand of Darkness"]
    assert 'href="/admin/book" rel="prev"' in second.text
    assert titles(root.get("/admin/book?page=99").text) == []
    assert titles(root.get("/admin/book?page=nonsense").text) == titles(first.text)


def test_sort_by_a_column_header(root: TestClient) -> None:
    page = root.get("/admin/book?sort=-pages")
    assert titles(page.text) == ["The Dispossessed", "Ancillary Justice", "Ancillary Sword"]
    assert 'aria-sort="descending"' in page.text
    assert 'href="/admin/book?sort=pages"' in page.text  # the header flips the direction
    # a column that is not sortable (or does not exist) is ignored, not an error
    assert root.get("/admin/book?sort=summary").status_code == 200
    assert titles(root.get("/admin/book?sort=author_id,-nope").text)


def test_search_matches_every_word_case_insensitively(root: TestClient) -> None:
    assert titles(root.get("/admin/book?q=ANCILLARY").text) == [
        "Ancillary Justice",
        "Ancillary Sword",
    ]
    assert titles(root.get("/admin/book?q=ancillary+sword").text) == ["Ancillary Sword"]
    assert titles(root.get("/admin/book?q=978").text) == ["A Wizard of Earthsea"]  # isbn
    assert titles(root.get("/admin/book?q=%25").text) == []  # % is literal
    assert "No results" in root.get("/admin/book?q=nothing-like-this").text
    # the search box keeps the query, escaped
    page = root.get("/admin/book", params={"q": '"><script>alert(1)</script>'})
    assert "<script>alert(1)</script>" not in page.text


def test_filters(root: TestClient) -> None:
    page = root.get("/admin/book?published=true")
    assert titles(page.text) == ["The Dispossessed", "The Left Hand of Darkness"]
    assert 'href="/admin/book?published=false"' in page.text
    ann = root.get("/admin/book?author_id=1")
    assert titles(ann.text) == ["Ancillary Justice", "Ancillary Sword"]
    # the filter panel names the related objects
    assert ">Ann Leckie</a>" in ann.text and ">Ursula K. Le Guin</a>" in ann.text
    both = root.get("/admin/book?author_id=2&published=false&q=wizard")
    assert titles(both.text) == ["A Wizard of Earthsea"]
    # sort links keep the filters and the search
    assert "author_id=2" in re.search(r'href="(/admin/book\?[^"]*sort=[^"]*)"', both.text)[1]
    assert len(titles(root.get("/admin/book?published=maybe&author_id=x").text)) == 3


def test_detail_shows_fields_relations_and_hides_secrets(root: TestClient) -> None:
    page = root.get("/admin/book/3")
    assert page.status_code == 200
    assert "The Left Hand of Darkness" in page.text
    assert '<a href="/admin/author/2">Ursula K. Le Guin</a>' in page.text
    assert re.search(r'id="field-tags">.*sf.*classic', page.text, re.DOTALL)
    assert root.get("/admin/book/999").status_code == 404
    assert root.get("/admin/book/abc").status_code == 404
    secret = root.get("/admin/secret_thing/1")
    assert "launch codes" in secret.text and "SUPERSECRET" not in secret.text
    assert "SUPERSECRET" not in root.get("/admin/secret_thing").text
    assert "SUPERSECRET" not in root.get("/admin/api/secret_thing").text


def test_delete_asks_then_deletes_and_logs(root: TestClient) -> None:
    confirm = root.get("/admin/book/2/delete")
    assert "Are you sure you want to delete" in confirm.text
    assert "Ancillary Sword" in confirm.text
    done = root.post("/admin/book/2/delete", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 303 and done.headers["location"] == "/admin/book"
    listing = root.get("/admin/book")
    assert "was deleted" in listing.text
    assert "Ancillary Sword" not in titles(listing.text)
    [entry] = log_entries(root, root.app.state.database)  # type: ignore[attr-defined]
    assert (entry.action, entry.model, entry.object_pk) == ("delete", "book", "2")
    assert entry.object_repr == "Ancillary Sword" and entry.user_repr == "root"
    assert entry.action_name is None


def test_a_refused_delete_is_reported_and_not_logged(root: TestClient) -> None:
    # Ann still has books: the foreign key refuses
    confirm = root.get("/admin/author/1/delete")
    done = root.post("/admin/author/1/delete", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 303 and done.headers["location"] == "/admin/author/1"
    page = root.get("/admin/author/1")
    assert "cannot be deleted" in page.text
    assert log_entries(root, root.app.state.database) == []  # type: ignore[attr-defined]


def test_bulk_delete_confirms_first(root: TestClient) -> None:
    listing = root.get("/admin/book?q=ancillary")
    token = csrf_of(listing.text)
    form = {
        "csrf_token": token,
        "action": "delete_selected",
        "selected": ["1", "2"],
        "next": "/admin/book?q=ancillary",
    }
    confirm = root.post("/admin/book", data=form)
    assert confirm.status_code == 200
    assert "Ancillary Justice" in confirm.text and "Ancillary Sword" in confirm.text
    assert titles(root.get("/admin/book?q=ancillary").text)  # nothing deleted yet
    done = root.post("/admin/book", data={**form, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/admin/book?q=ancillary"
    after = root.get(done.headers["location"])
    assert "2 Books deleted." in after.text
    assert titles(after.text) == []
    entries = log_entries(root, root.app.state.database)  # type: ignore[attr-defined]
    assert [(e.action, e.action_name, e.object_pk) for e in entries] == [
        ("delete", "delete_selected", "1"),
        ("delete", "delete_selected", "2"),
    ]


def test_bulk_actions_need_a_choice_and_a_selection(root: TestClient) -> None:
    token = csrf_of(root.get("/admin/book").text)
    nothing = root.post("/admin/book", data={"csrf_token": token, "action": "publish"})
    assert nothing.status_code == 303
    assert "Select the rows" in root.get("/admin/book").text
    unknown = root.post(
        "/admin/book", data={"csrf_token": token, "action": "nope", "selected": ["1"]}
    )
    assert unknown.status_code == 303
    assert "Choose an action" in root.get("/admin/book").text
    # an outside "next" is not followed
    away = root.post(
        "/admin/book",
        data={
            "csrf_token": token,
            "action": "publish",
            "selected": ["1"],
            "next": "//evil.example",
        },
    )
    assert away.headers["location"] == "/admin/book"


def test_a_custom_action_runs_and_logs_the_changed_fields(root: TestClient) -> None:
    token = csrf_of(root.get("/admin/book").text)
    done = root.post(
        "/admin/book",
        data={"csrf_token": token, "action": "publish", "selected": ["1", "5", "bogus"]},
    )
    assert done.status_code == 303
    page = root.get("/admin/book?published=true")
    assert "Published 2." in page.text
    assert "Ancillary Justice" in titles(page.text)
    entries = log_entries(root, root.app.state.database)  # type: ignore[attr-defined]
    assert [(e.action, e.action_name, e.object_pk, e.changed_fields) for e in entries] == [
        ("action", "publish", "1", ["published"]),
        ("action", "publish", "5", ["published"]),
    ]


def test_a_failing_action_keeps_nothing_and_logs_nothing(root: TestClient) -> None:
    token = csrf_of(root.get("/admin/book").text)
    crashed = root.post(
        "/admin/book", data={"csrf_token": token, "action": "explode", "selected": ["1"]}
    )
    assert crashed.status_code == 500
    assert "changed before the crash" not in root.get("/admin/book/1").text
    assert log_entries(root, root.app.state.database) == []  # type: ignore[attr-defined]


def test_the_log_page_lists_and_filters(root: TestClient) -> None:
    token = csrf_of(root.get("/admin/book").text)
    root.post("/admin/tag/2/delete", data={"csrf_token": token})
    root.post("/admin/book/4/delete", data={"csrf_token": token})
    page = root.get("/admin/log")
    assert "The Dispossessed" in page.text and "classic" in page.text
    only_tags = root.get("/admin/log?model=tag")
    assert "classic" in only_tags.text and "The Dispossessed" not in only_tags.text
    history = root.get("/admin/author/2")
    assert history.status_code == 200
    dashboard = root.get("/admin")
    assert "The Dispossessed" in dashboard.text  # recent actions


def test_an_action_with_its_own_permission_and_a_confirmation(client: TestClient) -> None:
    from trellis.contrib.auth.permissions import known_permissions

    assert known_permissions()["book.withdraw"] == "Withdraw (Books)"
    login(client, "editor")  # book.view/add/change/delete, not book.withdraw
    page = client.get("/admin/book")
    assert 'value="publish"' in page.text and 'value="withdraw"' not in page.text
    token = csrf_of(page.text)
    refused = client.post(
        "/admin/book", data={"csrf_token": token, "action": "withdraw", "selected": ["3"]}
    )
    assert refused.status_code == 303  # not offered: nothing ran
    client.post("/auth/logout", data={"csrf_token": token})
    login(client, "root")
    token = csrf_of(client.get("/admin/book").text)
    form = {"csrf_token": token, "action": "withdraw", "selected": ["3"]}
    confirm = client.post("/admin/book", data=form)
    assert confirm.status_code == 200 and "The Left Hand of Darkness" in confirm.text
    done = client.post("/admin/book", data={**form, "confirm": "yes"})
    assert done.status_code == 303
    assert "Withdraw: done for 1 object." in client.get("/admin/book").text
    assert client.get("/admin/api/book/3").json()["published"] is False
    [entry] = log_entries(client, client.app.state.database)  # type: ignore[attr-defined]
    assert (entry.action, entry.action_name, entry.changed_fields) == (
        "action",
        "withdraw",
        ["published"],
    )
