import re

from trellis.contrib.db import Database
from trellis.testing import TestClient


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def sign_up(client: TestClient, username: str) -> None:
    page = client.get("/auth/register").text
    password = "a long enough password"
    form = {"email": f"{username}@example.com", "username": username, "password": password}
    response = client.post(
        "/auth/register", data={**form, "password2": password, "csrf_token": csrf_token(page)}
    )
    assert response.status_code == 303  # signed in, sent to the home page


def test_no_notes_yet(client: TestClient, db_rollback: Database) -> None:
    assert "No notes yet." in client.get("/").text
    assert client.get("/notes").json() == []


def test_writing_needs_an_account(client: TestClient, db_rollback: Database) -> None:
    assert client.post("/notes", json={"title": "anonymous"}).status_code == 401
    page = client.get("/new", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.headers["location"] == "/auth/login?next=%2Fnew"


def test_a_signed_in_user_writes_a_note(client: TestClient, db_rollback: Database) -> None:
    sign_up(client, "ann")
    form = client.get("/new").text
    response = client.post(
        "/new", data={"title": "Groceries", "csrf_token": csrf_token(form)}, follow_redirects=True
    )
    assert "<strong>Groceries</strong>" in response.text
    assert "(by ann)" in response.text
    [note] = client.get("/notes").json()
    assert note["title"] == "Groceries"


def test_a_form_with_mistakes_is_shown_again(client: TestClient, db_rollback: Database) -> None:
    sign_up(client, "bob")
    form = client.get("/new").text
    response = client.post("/new", data={"title": "", "csrf_token": csrf_token(form)})
    assert response.status_code == 422
    assert "This field is required." in response.text
