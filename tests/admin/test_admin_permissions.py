"""Who may do what in the admin: every page and endpoint against every kind of user."""

from __future__ import annotations

import pytest
from admin_helpers import csrf_of, login

from trellis.contrib.auth import User
from trellis.testing import TestClient

HTML = {"accept": "text/html"}
PAGES = [
    "/admin",
    "/admin/log",
    "/admin/book",
    "/admin/book/1",
    "/admin/book/1/edit",
    "/admin/book/1/delete",
    "/admin/book/add",
]


def test_anonymous_browsers_go_to_the_login_page(client: TestClient) -> None:
    for path in PAGES:
        response = client.get(path, headers=HTML, follow_redirects=False)
        assert response.status_code == 303, path
        location = response.headers["location"]
        assert location.startswith("/auth/login?next="), location
    response = client.get("/admin/book?q=x", headers=HTML, follow_redirects=False)
    assert response.headers["location"] == "/auth/login?next=%2Fadmin%2Fbook%3Fq%3Dx"


def test_anonymous_api_clients_get_401(client: TestClient) -> None:
    assert client.get("/admin/api/book").status_code == 401
    assert client.get("/admin").status_code == 401  # not a browser: no redirect
    assert client.post("/admin/api/book", json={"title": "x"}).status_code == 401
    assert client.delete("/admin/api/book/1").status_code == 401


def test_after_login_the_browser_comes_back(client: TestClient) -> None:
    first = client.get("/admin/book", headers=HTML, follow_redirects=False)
    login_page = client.get(first.headers["location"])
    response = client.post(
        "/auth/login",
        data={
            "csrf_token": csrf_of(login_page.text),
            "login": "root",
            "password": "correct horse battery staple",
            "next": "/admin/book",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/book"


def test_users_without_any_admin_permission_get_403(client: TestClient) -> None:
    login(client, "nobody")
    for path in PAGES:
        assert client.get(path, headers=HTML).status_code == 403, path
    assert client.get("/admin/api/book").status_code == 403
    assert client.get("/admin/api/tag").status_code == 403


def test_a_permission_on_one_model_opens_the_admin_but_not_the_others(
    client: TestClient,
) -> None:
    login(client, "tagger")  # tag.view only
    dashboard = client.get("/admin", headers=HTML)
    assert dashboard.status_code == 200
    assert 'href="/admin/tag"' in dashboard.text
    assert 'href="/admin/book"' not in dashboard.text  # the menu lists what they may see
    assert client.get("/admin/tag", headers=HTML).status_code == 200
    assert client.get("/admin/book", headers=HTML).status_code == 403
    assert client.get("/admin/api/book").status_code == 403
    assert client.get("/admin/api/tag").status_code == 200


def test_view_only_users_see_but_do_not_change(client: TestClient) -> None:
    login(client, "viewer")  # book.view
    page = client.get("/admin/book")
    assert page.status_code == 200
    assert "Add book" not in page.text
    assert 'name="selected"' not in page.text  # no bulk action to run: no checkboxes
    detail = client.get("/admin/book/1")
    assert detail.status_code == 200
    assert "/admin/book/1/edit" not in detail.text and "/admin/book/1/delete" not in detail.text
    for path in ("/admin/book/1/edit", "/admin/book/1/delete", "/admin/book/add"):
        assert client.get(path).status_code == 403, path
    token = csrf_of(page.text)
    assert client.post("/admin/book/1/delete", data={"csrf_token": token}).status_code == 403
    bulk = client.post(
        "/admin/book",
        data={
            "csrf_token": token,
            "action": "delete_selected",
            "selected": ["1"],
            "confirm": "yes",
        },
        follow_redirects=False,
    )
    assert bulk.status_code == 303  # the action is not offered to them: nothing ran
    assert client.get("/admin/book/1").status_code == 200
    # the API answers the same
    headers = {"X-CSRF-Token": token}
    assert client.get("/admin/api/book").status_code == 200
    assert client.get("/admin/api/book/1").status_code == 200
    assert client.patch("/admin/api/book/1", json={"pages": 1}, headers=headers).status_code == 403
    assert client.delete("/admin/api/book/1", headers=headers).status_code == 403
    assert (
        client.post(
            "/admin/api/book", json={"title": "x", "author_id": 1}, headers=headers
        ).status_code
        == 403
    )
    # and the other models stay closed
    assert client.get("/admin/author").status_code == 403


def test_editors_do_everything_with_books_only(client: TestClient) -> None:
    login(client, "editor")  # the editors group: book.view/add/change/delete
    page = client.get("/admin/book")
    assert "Add book" in page.text and 'name="selected"' in page.text
    detail = client.get("/admin/book/1")
    assert "/admin/book/1/edit" in detail.text and "/admin/book/1/delete" in detail.text
    assert client.get("/admin/book/1/delete").status_code == 200
    token = csrf_of(page.text)
    deleted = client.post("/admin/book/1/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert client.get("/admin/book/1").status_code == 404
    assert client.get("/admin/author").status_code == 403
    assert client.get("/admin/api/author").status_code == 403


def test_superusers_do_everything(client: TestClient) -> None:
    login(client, "root")
    for path in [*PAGES, "/admin/author", "/admin/tag", "/admin/author/1"]:
        if path.endswith("/edit") or path.endswith("/add"):
            continue  # the forms have tests of their own
        assert client.get(path).status_code == 200, path


def test_superusers_see_the_whole_log_others_their_models(client: TestClient) -> None:
    login(client, "root")
    token = csrf_of(client.get("/admin/tag").text)
    client.post("/admin/tag/1/delete", data={"csrf_token": token})
    assert "sf" in client.get("/admin/log").text
    client.post("/auth/logout", data={"csrf_token": csrf_of(client.get("/admin/log").text)})
    login(client, "viewer")
    assert ">sf<" not in client.get("/admin/log").text.replace(" ", "")


def test_the_csrf_token_is_needed_with_the_session(client: TestClient) -> None:
    login(client, "root")
    assert client.post("/admin/book/1/delete").status_code == 403
    assert client.delete("/admin/api/book/1").status_code == 403
    assert client.get("/admin/book/1").status_code == 200
    forged = client.post(
        "/admin/book/1/delete",
        data={"csrf_token": csrf_of(client.get("/admin/book").text)},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403


def _token(client: TestClient, username: str, scopes: tuple[str, ...] = ()) -> dict[str, str]:
    app = client.app
    auth = app.state.auth  # type: ignore[attr-defined]
    db = app.state.database  # type: ignore[attr-defined]

    async def issue() -> str:
        async with db.transaction() as session:
            user = await auth.find_user(session, username)
            assert isinstance(user, User)
            token: str = await auth.issue_token(session, user, scopes=scopes)
            return token

    return {"Authorization": f"Bearer {client.call(issue)}"}


def test_bearer_tokens_get_the_same_checks(client: TestClient) -> None:
    root = _token(client, "root")
    viewer = _token(client, "viewer")
    nobody = _token(client, "nobody")
    assert client.get("/admin/api/book", headers=nobody).status_code == 403
    assert client.get("/admin/api/book", headers=viewer).status_code == 200
    assert client.delete("/admin/api/book/2", headers=viewer).status_code == 403
    assert client.delete("/admin/api/book/2", headers=root).status_code == 204  # no CSRF needed
    assert client.get("/admin/api/book/2", headers=root).status_code == 404


@pytest.mark.parametrize(
    ("scopes", "listing", "deleting"),
    [
        (("book.view",), 200, 403),
        (("book.view", "book.delete"), 200, 204),
        (("articles.read",), 403, 403),  # no admin permission in the scopes: not staff
    ],
)
def test_token_scopes_limit_even_superusers(
    client: TestClient, scopes: tuple[str, ...], listing: int, deleting: int
) -> None:
    headers = _token(client, "root", scopes)
    assert client.get("/admin/api/book", headers=headers).status_code == listing
    assert client.delete("/admin/api/book/3", headers=headers).status_code == deleting
