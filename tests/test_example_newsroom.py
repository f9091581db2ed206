"""The newsroom example: accounts, drafts, roles, the JSON API and its OpenAPI document.

The core flow runs on SQLite, PostgreSQL and MariaDB (``TRELLIS_TEST_POSTGRES_URL`` and
``TRELLIS_TEST_MYSQL_URL``; a database is made for the test and dropped after it); the rest
runs on a SQLite file per test. Every app is built in production mode (a secret key, no debug)
with a cheap password hasher and a login throttle whose clock stands still.

The helpers here are shared with ``test_example_newsroom_attacks.py``.
"""

from __future__ import annotations

import asyncio
import html
import importlib.util
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from openapi_spec_validator import validate
from sqlalchemy import select

from trellis import App
from trellis.contrib.auth import Group, PasswordHasher, User
from trellis.contrib.auth.throttle import LoginThrottle
from trellis.contrib.mail import MemoryEmailBackend
from trellis.testing import TestClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "newsroom"
MODULE_NAME = "newsroom_app"
SECRET = "newsroom-test-secret-" + "k" * 40
PASSWORD = "correct horse battery"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
HTML = {"accept": "text/html"}
#: The throttle's clock stands still mid-window: a test never straddles two windows.
FROZEN = 1_000_000_450.0


# --- loading the example ---------------------------------------------------------------------


def load_newsroom() -> ModuleType:
    """Import ``examples/newsroom/app.py`` as ``newsroom_app`` (its models on ``Model``)."""
    spec = importlib.util.spec_from_file_location(MODULE_NAME, EXAMPLE / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # pydantic resolves the models' annotations through it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        forget_newsroom()
        raise
    return module


def forget_newsroom() -> None:
    """Take the example's model off the shared ``Model`` (as ``test_docs_examples`` does).

    Other test modules create or compare ``Model.metadata``: the example's table must not be
    there after this module's tests.
    """
    from trellis.contrib.db import Model

    sys.modules.pop(MODULE_NAME, None)
    registry, metadata = Model.registry, Model.metadata
    for mapper in list(registry.mappers):
        if mapper.class_.__module__ == MODULE_NAME:
            registry._managers.pop(mapper.class_manager, None)
            registry._dispose_manager_and_mapper(mapper.class_manager)
    table = metadata.tables.get("newsroom_article")
    if table is not None:
        metadata.remove(table)


@pytest.fixture(scope="module")
def newsroom() -> Iterator[ModuleType]:
    module = load_newsroom()
    try:
        yield module
    finally:
        forget_newsroom()


def frozen_throttle(newsroom: ModuleType) -> LoginThrottle:
    """The example's limits, on a clock that does not move."""
    return LoginThrottle(
        per_account=newsroom.PER_ACCOUNT, per_ip=newsroom.PER_IP, clock=lambda: FROZEN
    )


def make_app(newsroom: ModuleType, url: str, mail: MemoryEmailBackend, **options: Any) -> App:
    """The example in production mode, for ``TestClient`` (host ``testserver``)."""
    options.setdefault("hasher", FAST_HASHER)
    options.setdefault("throttle", frozen_throttle(newsroom))
    options.setdefault("secret_key", SECRET)
    options.setdefault("debug", False)
    options.setdefault("allowed_hosts", ["testserver"])
    app: App = newsroom.create_app(url, email=mail, **options)
    return app


@pytest.fixture
def mail() -> MemoryEmailBackend:
    return MemoryEmailBackend(from_email="newsroom@example.com")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'newsroom.db'}"


@pytest.fixture
def client(newsroom: ModuleType, sqlite_url: str, mail: MemoryEmailBackend) -> Iterator[TestClient]:
    with TestClient(make_app(newsroom, sqlite_url, mail)) as test_client:
        yield test_client


# --- what a browser does -----------------------------------------------------------------------


def csrf(page: httpx.Response) -> str:
    """The CSRF token of the (first) form of ``page``."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return html.unescape(match.group(1))


def register(
    client: TestClient, username: str, password: str = PASSWORD, email: str | None = None
) -> httpx.Response:
    """Create an account through the registration page (which signs in)."""
    form = client.get("/auth/register")
    return client.post(
        "/auth/register",
        data={
            "csrf_token": csrf(form),
            "email": email or f"{username}@example.com",
            "username": username,
            "password": password,
            "password2": password,
        },
    )


def sign_in(
    client: TestClient, login: str, password: str = PASSWORD, next: str | None = None
) -> httpx.Response:
    """Sign in through the login page (``next`` as the page's hidden field)."""
    form = client.get("/auth/login", params={"next": next} if next is not None else None)
    data = {"csrf_token": csrf(form), "login": login, "password": password}
    if next is not None:
        data["next"] = next
    return client.post("/auth/login", data=data)


def sign_out(client: TestClient) -> httpx.Response:
    page = client.get("/", headers=HTML)
    return client.post("/auth/logout", data={"csrf_token": csrf(page)})


def write_draft(client: TestClient, title: str, body: str = "Some text.") -> httpx.Response:
    """Submit the "New article" form."""
    form = client.get("/articles/new", headers=HTML)
    assert form.status_code == 200, form.text
    return client.post("/articles", data={"csrf_token": csrf(form), "title": title, "body": body})


def article_id(response: httpx.Response) -> int:
    """The id of the article a form submission redirected to."""
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/articles/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def make_editor(client: TestClient, username: str) -> None:
    """Put ``username`` in the "editor" group (made by the example's migration)."""
    database = client.app.state.database  # type: ignore[attr-defined]

    async def grant() -> None:
        async with database.transaction() as session:
            user = (await session.scalars(select(User).where(User.username == username))).one()
            editor = (await session.scalars(select(Group).where(Group.name == "editor"))).one()
            (await user.awaitable_attrs.groups).append(editor)

    client.call(grant)


def api_token(client: TestClient, login: str, password: str = PASSWORD) -> dict[str, str]:
    """Headers with an opaque bearer token from ``POST /api/auth/login {"token": true}``."""
    saved = httpx.Cookies(client.cookies)
    client.cookies.clear()  # a script has no session cookie (and so needs no CSRF token)
    try:
        response = client.post(
            "/api/auth/login", json={"login": login, "password": password, "token": True}
        )
        assert response.status_code == 200, response.text
        assert "set-cookie" not in response.headers
    finally:
        client.cookies = saved
    return {"authorization": f"Bearer {response.json()['token']}"}


def published_titles(client: TestClient, **params: str) -> list[str]:
    response = client.get("/api/articles", params=params)
    assert response.status_code == 200, response.text
    return [a["title"] for a in response.json()]


def csrf_header(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.get("/api/auth/csrf").json()["csrf_token"]}


def article_id_of(client: TestClient, title: str) -> int:
    """Write a draft through the API with the session cookie; its id."""
    response = client.post("/api/articles", json={"title": title}, headers=csrf_header(client))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


# --- databases on servers ----------------------------------------------------------------------

_SERVER_ENV = {"postgresql": "TRELLIS_TEST_POSTGRES_URL", "mysql": "TRELLIS_TEST_MYSQL_URL"}


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin(backend: str, url: str, statement: str) -> None:
    if backend == "postgresql":
        import asyncpg  # type: ignore[import-untyped]

        async def run() -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())
        return
    import pymysql  # type: ignore[import-untyped]

    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    """An empty database: a SQLite file, or one made for this test on a server."""
    backend = str(request.param)
    if backend == "sqlite":
        yield sqlite_url
        return
    admin_url = os.environ.get(_SERVER_ENV[backend])
    if not admin_url:
        pytest.skip(f"{_SERVER_ENV[backend]} is not set: no {backend} server to test against")
    name = f"newsroom_t_{os.getpid()}_{secrets.token_hex(3)}"
    if backend == "postgresql":
        _admin(backend, admin_url, f'CREATE DATABASE "{name}"')
    else:
        _admin(
            backend,
            admin_url,
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        )
    try:
        yield _with_database(admin_url, name)
    finally:
        if backend == "postgresql":
            _admin(backend, admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            _admin(backend, admin_url, f"DROP DATABASE IF EXISTS `{name}`")


# --- the happy path ---------------------------------------------------------------------------


def test_write_edit_publish_read(
    newsroom: ModuleType, database_url: str, mail: MemoryEmailBackend
) -> None:
    with TestClient(make_app(newsroom, database_url, mail)) as client:
        # ann registers (and is signed in), signs out, and signs in again
        assert register(client, "ann").headers["location"] == "/drafts"
        assert sign_out(client).headers["location"] == "/"
        assert client.get("/api/auth/me").status_code == 401
        assert sign_in(client, "ann@example.com").headers["location"] == "/drafts"
        assert "My drafts" in client.get("/drafts").text

        # a draft, then a second version of it
        draft = article_id(write_draft(client, "Council votes on budget", "First version."))
        form = client.get(f"/articles/{draft}/edit")
        assert "First version." in form.text
        edited = client.post(
            f"/articles/{draft}/edit",
            data={"csrf_token": csrf(form), "title": "Council passes budget", "body": "Final."},
        )
        assert article_id(edited) == draft
        page = client.get(f"/articles/{draft}")
        assert "Council passes budget" in page.text and "draft" in page.text
        assert "Publish" not in page.text  # ann is not an editor
        assert "Council passes budget" in client.get("/drafts").text

        # drafts are nobody else's business
        assert published_titles(client) == []
        assert client.get(f"/api/articles/{draft}").json()["published"] is False  # hers
        sign_out(client)
        assert client.get(f"/api/articles/{draft}").status_code == 404
        assert client.get(f"/articles/{draft}").status_code == 404

        # eddie is an editor: the draft waits for him, and he publishes it
        register(client, "eddie")
        make_editor(client, "eddie")
        queue = client.get("/drafts")
        assert "Waiting for an editor" in queue.text and "Council passes budget" in queue.text
        published = client.post(f"/articles/{draft}/publish", data={"csrf_token": csrf(queue)})
        assert article_id(published) == draft
        sign_out(client)

        # everyone reads it, on the front page and through the API
        front = client.get("/")
        assert "Council passes budget" in front.text and "by ann" in front.text
        assert published_titles(client) == ["Council passes budget"]
        listed = client.get("/api/articles").json()[0]
        assert listed["author"] == "ann" and listed["published"] is True
        assert listed["published_at"] is not None
        assert "email" not in listed and "@" not in str(listed)

        # a script: a bearer token, then the API
        bearer = api_token(client, "ann")
        created = client.post(
            "/api/articles", json={"title": "Bin collection changes"}, headers=bearer
        )
        assert created.status_code == 201, created.text
        new = created.json()
        assert new["published"] is False and new["author"] == "ann"
        patched = client.patch(
            f"/api/articles/{new['id']}", json={"body": "From Monday."}, headers=bearer
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["body"] == "From Monday."
        assert patched.json()["title"] == "Bin collection changes"
        mine = client.get("/api/articles/mine", headers=bearer).json()
        assert {a["title"] for a in mine} == {"Bin collection changes", "Council passes budget"}

        editor = api_token(client, "eddie")
        done = client.post(f"/api/articles/{new['id']}/publish", headers=editor)
        assert done.status_code == 200, done.text
        assert published_titles(client) == ["Bin collection changes", "Council passes budget"]
        assert published_titles(client, q="budget") == ["Council passes budget"]


def test_search_on_the_front_page(client: TestClient) -> None:
    register(client, "eddie")
    make_editor(client, "eddie")
    for title in ("Harbour reopens", "New harbour master", "Library hours", "100% turnout"):
        client.post(
            f"/api/articles/{article_id_of(client, title)}/publish", headers=csrf_header(client)
        )
    assert published_titles(client, q="harbour") == ["New harbour master", "Harbour reopens"]
    assert published_titles(client, q="HARBOUR master") == ["New harbour master"]
    assert published_titles(client, q="%") == ["100% turnout"]  # a literal percent sign
    assert published_titles(client, q="_") == []  # not "any character"
    page = client.get("/", params={"q": "library"})
    assert "Library hours" in page.text and "Harbour" not in page.text
    assert "No article matches" in client.get("/", params={"q": "zebra"}).text


def test_a_jwt_from_api_token_works_on_the_api(client: TestClient, newsroom: ModuleType) -> None:
    register(client, "ann")
    client.cookies.clear()
    issued = client.post("/api/token", json={"login": "ann", "password": PASSWORD})
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == newsroom.JWT_LIFETIME
    assert body["access_token"].count(".") == 2
    bearer = {"authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/auth/me", headers=bearer).json()["username"] == "ann"
    created = client.post("/api/articles", json={"title": "By JWT"}, headers=bearer)
    assert created.status_code == 201, created.text
    wrong = client.post("/api/token", json={"login": "ann", "password": "not it"})
    assert wrong.status_code == 401


def test_password_change_and_reset_by_email(client: TestClient, mail: MemoryEmailBackend) -> None:
    register(client, "ann")
    form = client.get("/auth/password/change")
    changed = client.post(
        "/auth/password/change",
        data={
            "csrf_token": csrf(form),
            "old_password": PASSWORD,
            "new_password": "staple battery horse",
            "new_password2": "staple battery horse",
        },
    )
    assert changed.status_code == 303
    sign_out(client)
    assert sign_in(client, "ann", PASSWORD).status_code == 401
    assert sign_in(client, "ann", "staple battery horse").status_code == 303
    sign_out(client)

    form = client.get("/auth/password/reset")
    client.post("/auth/password/reset", data={"csrf_token": csrf(form), "email": "ann@example.com"})
    assert len(mail.outbox) == 1 and "ann@example.com" in str(mail.outbox[0].to)
    match = re.search(r"http://testserver(/auth/password/reset/\S+)", mail.outbox[0].text)
    assert match, mail.outbox[0].text
    link = match.group(1)
    form = client.get(link)
    done = client.post(
        link,
        data={
            "csrf_token": csrf(form),
            "new_password": "a third one, longer",
            "new_password2": "a third one, longer",
        },
    )
    assert done.status_code == 303
    assert sign_in(client, "ann", "a third one, longer").headers["location"] == "/drafts"


# --- roles ------------------------------------------------------------------------------------


def test_only_editors_publish(client: TestClient) -> None:
    register(client, "ann")
    draft = article_id(write_draft(client, "Ann's story"))
    page = client.get(f"/articles/{draft}")
    refused = client.post(f"/articles/{draft}/publish", data={"csrf_token": csrf(page)})
    assert refused.status_code == 403
    bearer = api_token(client, "ann")
    assert client.post(f"/api/articles/{draft}/publish", headers=bearer).status_code == 403
    assert published_titles(client) == []

    make_editor(client, "ann")  # now she may (her own draft too)
    assert client.post(f"/api/articles/{draft}/publish", headers=bearer).status_code == 200
    assert published_titles(client) == ["Ann's story"]


def test_only_the_author_edits(client: TestClient) -> None:
    register(client, "ann")
    draft = article_id(write_draft(client, "Ann's story"))
    sign_out(client)
    register(client, "bob")
    make_editor(client, "bob")  # even an editor: publishing is not editing
    assert client.get(f"/articles/{draft}/edit").status_code == 403
    page = client.get(f"/articles/{draft}")
    assert page.status_code == 200  # an editor sees drafts...
    assert f"/articles/{draft}/edit" not in page.text  # ...with no edit link
    forged = client.post(
        f"/articles/{draft}/edit",
        data={"csrf_token": csrf(page), "title": "Bob was here", "body": ""},
    )
    assert forged.status_code == 403
    bearer = api_token(client, "bob")
    patched = client.patch(f"/api/articles/{draft}", json={"title": "Bob"}, headers=bearer)
    assert patched.status_code == 403
    assert patched.json()["detail"] == "You do not have permission to do this."
    assert client.get(f"/api/articles/{draft}", headers=bearer).json()["title"] == "Ann's story"


def test_other_peoples_drafts_are_not_found(client: TestClient) -> None:
    register(client, "ann")
    draft = article_id(write_draft(client, "Ann's secret"))
    sign_out(client)
    register(client, "carl")
    assert client.get(f"/articles/{draft}").status_code == 404
    assert client.get(f"/articles/{draft}/edit").status_code == 404
    assert client.get(f"/api/articles/{draft}").status_code == 404
    assert "Ann's secret" not in client.get("/drafts").text
    assert client.get("/api/articles/mine").json() == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/articles", {"title": "t"}),
        ("PATCH", "/api/articles/1", {"title": "t"}),
        ("POST", "/api/articles/1/publish", None),
        ("GET", "/api/articles/mine", None),
    ],
)
def test_anonymous_api_writes_are_401(
    client: TestClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    register(client, "ann")
    write_draft(client, "Ann's story")
    client.cookies.clear()
    response = client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    bad = client.request(method, path, json=body, headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401


@pytest.mark.parametrize("path", ["/drafts", "/articles/new", "/articles/1/edit"])
def test_anonymous_pages_redirect_to_login_and_back(client: TestClient, path: str) -> None:
    register(client, "ann")
    write_draft(client, "Ann's story")
    sign_out(client)
    response = client.get(path, headers=HTML)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == "/auth/login?next=" + path.replace("/", "%2F")
    login_page = client.get(location)
    assert f'value="{path}"' in login_page.text  # carried in the form
    assert sign_in(client, "ann", next=path).headers["location"] == path


def test_pages_refuse_bad_input(client: TestClient) -> None:
    register(client, "ann")
    form = client.get("/articles/new")
    empty = client.post("/articles", data={"csrf_token": csrf(form), "title": "  ", "body": "x"})
    assert empty.status_code == 422 and "A title is needed." in empty.text
    long = client.post("/articles", data={"csrf_token": csrf(form), "title": "t" * 201})
    assert long.status_code == 422 and "At most 200 characters." in long.text
    assert client.get("/api/articles/mine").json() == []


def test_api_refuses_bad_input(client: TestClient) -> None:
    register(client, "ann")
    headers = csrf_header(client)
    for body in ({}, {"title": ""}, {"title": "t" * 201}, {"title": "t", "author_id": 2}):
        response = client.post("/api/articles", json=body, headers=headers)
        assert response.status_code == 422, body
    assert client.get("/api/articles?limit=0").status_code == 422
    assert client.get("/api/articles/abc").status_code == 404
    assert client.patch("/api/articles/999", json={}, headers=headers).status_code == 404


# --- the API document -------------------------------------------------------------------------


def test_the_openapi_document_is_valid(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    validate(document)
    assert document["info"]["title"] == "Newsroom API"
    paths = document["paths"]
    assert set(paths["/api/articles"]) == {"get", "post"}
    assert set(paths["/api/articles/{article_id}"]) == {"get", "patch"}
    assert set(paths["/api/articles/{article_id}/publish"]) == {"post"}
    assert "/api/token" in paths and "/api/auth/login" in paths
    assert not any(p == "/drafts" or p.startswith("/articles") for p in paths)  # pages
    schemas = document["components"]["schemas"]
    assert {"ArticleIn", "ArticleOut", "ArticlePatch", "TokenIn", "TokenOut"} <= set(schemas)
    assert schemas["ArticleIn"]["additionalProperties"] is False
    create = paths["/api/articles"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ArticleIn"
    }
    assert {"201", "401", "422"} <= set(create["responses"])
    assert {"authBearer": []} in create["security"]
    assert "403" in paths["/api/articles/{article_id}/publish"]["post"]["responses"]


# --- the README's commands ---------------------------------------------------------------------


def test_the_readme_commands(tmp_path: Path) -> None:
    """`trellis db upgrade` and `trellis user ...` as the README gives them, in a clean process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    app_file = str(EXAMPLE / "app.py")

    def trellis(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "trellis.cli", "--app", app_file, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    upgraded = trellis("db", "upgrade")
    assert "trellis_auth_0001" in upgraded and "newsroom_0001" in upgraded
    assert (tmp_path / "newsroom.db").is_file()  # the default database, in the current directory
    assert "up to date" in trellis("db", "upgrade")
    trellis("db", "check")
    trellis("user", "create", "ann@example.com", "--username", "ann", "--password", PASSWORD)
    assert "Granted group 'editor' to ann." in trellis("user", "grant", "ann", "editor", "--group")
    shown = trellis("user", "show", "ann")
    assert "groups: editor" in shown and "permissions: articles.publish" in shown
