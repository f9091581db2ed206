"""The RealWorld ("Conduit") example: every endpoint and every error case of the spec.

Each test runs twice: on a SQLite file and on a PostgreSQL database made for this module
(``TRELLIS_TEST_POSTGRES_URL``) and dropped after it. The app is built in production mode (a
secret key, no debug) with a cheap password hasher and a login throttle whose clock stands
still; each test makes accounts with names of its own, so the tests share one app per
database. The last test serves the app with the README's ``trellis run`` command over HTTP.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from browser_helpers import free_port, serve
from trellis.contrib.auth import PasswordHasher
from trellis.contrib.auth.throttle import LoginThrottle
from trellis.testing import TestClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "realworld"
MODULE_NAME = "realworld_app"
SECRET = "realworld-test-secret-" + "k" * 40
PASSWORD = "password123"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
FROZEN = 1_000_000_450.0  # the throttle's clock: a test never straddles two windows
ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_names = itertools.count(1)


# --- loading the example ---------------------------------------------------------------------


def load_realworld() -> ModuleType:
    """Import ``examples/realworld/app.py`` as ``realworld_app`` (its models on ``Model``)."""
    spec = importlib.util.spec_from_file_location(MODULE_NAME, EXAMPLE / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # pydantic resolves the models' annotations through it
    try:
        spec.loader.exec_module(module)  # builds its `app` too, never started here
    except BaseException:
        forget_realworld()
        raise
    return module


def forget_realworld() -> None:
    """Take the example's models off the shared ``Model``: other tests compare its metadata."""
    from trellis.contrib.db import Model

    sys.modules.pop(MODULE_NAME, None)
    registry, metadata = Model.registry, Model.metadata
    for mapper in list(registry.mappers):
        if mapper.class_.__module__ == MODULE_NAME:
            registry._managers.pop(mapper.class_manager, None)
            registry._dispose_manager_and_mapper(mapper.class_manager)
    for name in list(metadata.tables):
        if name.startswith("conduit_"):
            metadata.remove(metadata.tables[name])


@pytest.fixture(scope="module")
def realworld() -> Iterator[ModuleType]:
    module = load_realworld()
    try:
        yield module
    finally:
        forget_realworld()


# --- databases -------------------------------------------------------------------------------


def _postgres(url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database for this module: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('realworld') / 'conduit.db'}"
        return
    admin_url = os.environ.get("TRELLIS_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.skip("TRELLIS_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    name = f"realworld_t_{os.getpid()}_{secrets.token_hex(3)}"
    _postgres(admin_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        _postgres(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def client(realworld: ModuleType, database_url: str) -> Iterator[TestClient]:
    app = realworld.create_app(
        database_url,
        hasher=FAST_HASHER,
        throttle=LoginThrottle(clock=lambda: FROZEN),
        secret_key=SECRET,
        debug=False,
        allowed_hosts=["testserver"],
        database_pool_size=2,
        database_max_overflow=0,
    )
    with TestClient(app) as test_client:
        yield test_client


# --- what a client does ----------------------------------------------------------------------


class Account:
    """A registered user: their name, e-mail address and ``Authorization`` header."""

    def __init__(self, username: str, email: str, token: str) -> None:
        self.username = username
        self.email = email
        self.token = token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}_{secrets.token_hex(2)}"


def register(client: TestClient, prefix: str = "user", password: str = PASSWORD) -> Account:
    username = unique(prefix)
    email = f"{username}@example.com"
    response = client.post(
        "/api/users", json={"user": {"username": username, "email": email, "password": password}}
    )
    assert response.status_code == 201, response.text
    return Account(username, email, response.json()["user"]["token"])


def write(
    client: TestClient, author: Account, title: str | None = None, **fields: Any
) -> dict[str, Any]:
    article = {
        "title": title or unique("Title "),
        "description": "What it is about",
        "body": "The whole text.",
        **fields,
    }
    response = client.post("/api/articles", json={"article": article}, headers=author.auth)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["article"]
    return result


def errors(response: httpx.Response, status: int) -> dict[str, list[str]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["errors"], body
    result: dict[str, list[str]] = body["errors"]
    return result


# --- users and authentication ------------------------------------------------------------------


def test_register_login_and_current_user(client: TestClient) -> None:
    created = client.post(
        "/api/users",
        json={
            "user": {
                "username": "Jacob_" + unique(""),
                "email": "Jake@Jake.jake",
                "password": "jakejake",
            }
        },
    )
    # the spec's own example (a unique name): the name keeps its case, the address does not
    assert created.status_code == 201, created.text
    user = created.json()["user"]
    assert set(user) == {"email", "token", "username", "bio", "image"}
    assert user["email"] == "jake@jake.jake"
    assert user["username"].startswith("Jacob_")
    assert user["bio"] is None and user["image"] is None
    assert user["token"].count(".") == 2  # a JWT

    login = client.post(
        "/api/users/login", json={"user": {"email": "jake@jake.jake", "password": "jakejake"}}
    )
    assert login.status_code == 200, login.text
    token = login.json()["user"]["token"]
    assert login.json()["user"]["username"] == user["username"]

    me = client.get("/api/user", headers={"Authorization": f"Token {token}"})
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "jake@jake.jake"
    assert me.json()["user"]["username"] == user["username"]
    # the registration's token works as well
    assert (
        client.get("/api/user", headers={"Authorization": f"Token {user['token']}"}).status_code
        == 200
    )


def test_update_user(client: TestClient) -> None:
    ann = register(client, "ann")
    new_name = unique("Ann_")
    response = client.put(
        "/api/user",
        json={
            "user": {
                "bio": "I like to skateboard",
                "image": "https://i.example/a.jpg",
                "username": new_name,
            }
        },
        headers=ann.auth,
    )
    assert response.status_code == 200, response.text
    user = response.json()["user"]
    assert (user["bio"], user["image"], user["username"]) == (
        "I like to skateboard",
        "https://i.example/a.jpg",
        new_name,
    )
    assert user["email"] == ann.email  # untouched

    profile = client.get(f"/api/profiles/{new_name}").json()["profile"]
    assert profile["bio"] == "I like to skateboard"
    assert client.get(f"/api/profiles/{ann.username}").status_code == 404  # the old name

    # "" stores null; null clears too
    cleared = client.put("/api/user", json={"user": {"bio": "", "image": None}}, headers=ann.auth)
    assert cleared.json()["user"]["bio"] is None and cleared.json()["user"]["image"] is None

    # a new e-mail address and password: the next login uses them; the old token still works
    email = unique("moved") + "@example.com"
    changed = client.put(
        "/api/user", json={"user": {"email": email, "password": "a new password"}}, headers=ann.auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["user"]["email"] == email
    old = client.post("/api/users/login", json={"user": {"email": ann.email, "password": PASSWORD}})
    assert errors(old, 401) == {"credentials": ["invalid"]}
    new = client.post(
        "/api/users/login", json={"user": {"email": email, "password": "a new password"}}
    )
    assert new.status_code == 200
    assert client.get("/api/user", headers=ann.auth).status_code == 200


@pytest.mark.parametrize("length", [8, 64, 100, 1024])
def test_passwords_of_any_reasonable_length(client: TestClient, length: int) -> None:
    password = "p" * length
    ann = register(client, "long", password=password)
    # bcrypt would cut at 72 bytes: a password that differs only after them must not sign in
    if length > 72:
        wrong = password[:-1] + "q"
        response = client.post(
            "/api/users/login", json={"user": {"email": ann.email, "password": wrong}}
        )
        assert errors(response, 401) == {"credentials": ["invalid"]}
    response = client.post(
        "/api/users/login", json={"user": {"email": ann.email, "password": password}}
    )
    assert response.status_code == 200, response.text


def test_registration_errors(client: TestClient) -> None:
    ann = register(client, "ann")

    def post(user: Any) -> httpx.Response:
        return client.post("/api/users", json={"user": user})

    fresh = unique("bob")
    good = {"username": fresh, "email": f"{fresh}@example.com", "password": PASSWORD}
    for field in ("username", "email", "password"):
        assert errors(post({**good, field: ""}), 422) == {field: ["can't be blank"]}
        missing = {k: v for k, v in good.items() if k != field}
        assert errors(post(missing), 422) == {field: ["can't be blank"]}
        assert errors(post({**good, field: None}), 422) == {field: ["can't be blank"]}
        assert errors(post({**good, field: 12}), 422) == {field: ["can't be blank"]}  # wrong type
    assert errors(post({**good, "username": "   "}), 422) == {"username": ["can't be blank"]}
    assert errors(post({}), 422) == {
        "email": ["can't be blank"],
        "password": ["can't be blank"],
        "username": ["can't be blank"],
    }
    assert errors(client.post("/api/users", json={}), 422) == {"user": ["can't be blank"]}
    assert errors(client.post("/api/users", json={"user": "ann"}), 422) == {
        "user": ["can't be blank"]
    }
    assert errors(post({**good, "email": "not-an-address"}), 422) == {"email": ["is invalid"]}
    assert errors(post({**good, "password": "short"}), 422) == {
        "password": ["is too short (minimum is 8 characters)"]
    }
    broken = client.post(
        "/api/users", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert errors(broken, 422) == {"body": ["is invalid"]}

    taken_email = {**good, "email": ann.email.upper()}
    assert errors(post(taken_email), 409) == {"email": ["has already been taken"]}
    taken_name = {**good, "username": ann.username.upper()}
    assert errors(post(taken_name), 409) == {"username": ["has already been taken"]}
    assert post(good).status_code == 201  # nothing was written by the refusals


def test_login_errors(client: TestClient) -> None:
    ann = register(client, "ann")

    def login(user: Any) -> httpx.Response:
        return client.post("/api/users/login", json={"user": user})

    assert errors(login({"email": ann.email, "password": "wrong password"}), 401) == {
        "credentials": ["invalid"]
    }
    assert errors(login({"email": "nobody@example.com", "password": PASSWORD}), 401) == {
        "credentials": ["invalid"]
    }
    assert errors(login({"email": ann.username, "password": PASSWORD}), 401) == {
        "credentials": ["invalid"]
    }
    assert errors(login({"email": "", "password": PASSWORD}), 422) == {"email": ["can't be blank"]}
    assert errors(login({"email": ann.email}), 422) == {"password": ["can't be blank"]}


def test_guessing_passwords_is_throttled(client: TestClient) -> None:
    ann = register(client, "target")
    guess = {"user": {"email": ann.email, "password": "guess guess"}}
    for _ in range(4):
        assert client.post("/api/users/login", json=guess).status_code == 401
    locked = client.post("/api/users/login", json=guess)
    assert locked.status_code == 429
    assert list(errors(locked, 429)) == ["credentials"]
    assert int(locked.headers["retry-after"]) > 0
    right = {"user": {"email": ann.email, "password": PASSWORD}}
    assert client.post("/api/users/login", json=right).status_code == 429  # locked is locked


def test_update_user_errors(client: TestClient) -> None:
    ann, bob = register(client, "ann"), register(client, "bob")

    def put(user: Any) -> httpx.Response:
        return client.put("/api/user", json={"user": user}, headers=ann.auth)

    assert errors(put({"email": bob.email}), 409) == {"email": ["has already been taken"]}
    assert errors(put({"username": bob.username.upper()}), 409) == {
        "username": ["has already been taken"]
    }
    assert errors(put({"email": ""}), 422) == {"email": ["can't be blank"]}
    assert errors(put({"username": None}), 422) == {"username": ["can't be blank"]}
    assert errors(put({"password": "short"}), 422) == {
        "password": ["is too short (minimum is 8 characters)"]
    }
    assert put({"username": ann.username}).status_code == 200  # one's own name is not taken
    assert errors(client.put("/api/user", json={"user": {"bio": "x"}}), 401) == {
        "token": ["is missing"]
    }


def test_tokens(client: TestClient) -> None:
    ann = register(client, "ann")
    assert errors(client.get("/api/user"), 401) == {"token": ["is missing"]}
    assert errors(client.get("/api/user", headers={"Authorization": "Token"}), 401) == {
        "token": ["is missing"]
    }
    auth = client.app.state.auth  # type: ignore[attr-defined]
    user_id = auth.jwt.decode(ann.token)["sub"]
    expired = auth.jwt.encode({"sub": user_id, "iat": 1_000_000_000, "exp": 1_000_000_900})
    for header in ("Basic YW5uOnB3", "Token not.a.jwt", f"Token {ann.token}x", f"Token {expired}"):
        response = client.get("/api/user", headers={"Authorization": header})
        assert errors(response, 401) == {"token": ["is invalid"]}, header
    bearer = client.get("/api/user", headers={"Authorization": f"Bearer {ann.token}"})
    assert bearer.status_code == 200
    # a bad token is refused on public routes too: the client should know it stopped working
    bad = client.get("/api/articles", headers={"Authorization": "Token not.a.jwt"})
    assert errors(bad, 401) == {"token": ["is invalid"]}


# --- profiles ----------------------------------------------------------------------------------


def test_profiles_and_following(client: TestClient) -> None:
    ann, bob = register(client, "ann"), register(client, "bob")
    profile = client.get(f"/api/profiles/{bob.username}")
    assert profile.json() == {
        "profile": {"username": bob.username, "bio": None, "image": None, "following": False}
    }

    followed = client.post(f"/api/profiles/{bob.username}/follow", headers=ann.auth)
    assert followed.status_code == 200
    assert followed.json()["profile"]["following"] is True
    again = client.post(f"/api/profiles/{bob.username}/follow", headers=ann.auth)
    assert again.json()["profile"]["following"] is True
    assert (
        client.get(f"/api/profiles/{bob.username}", headers=ann.auth).json()["profile"]["following"]
        is True
    )
    assert (
        client.get(f"/api/profiles/{bob.username}").json()["profile"]["following"] is False
    )  # anonymous
    assert (
        client.get(f"/api/profiles/{ann.username}", headers=bob.auth).json()["profile"]["following"]
        is False
    )
    # user names are found whatever their case
    assert (
        client.get(f"/api/profiles/{bob.username.upper()}").json()["profile"]["username"]
        == bob.username
    )

    unfollowed = client.delete(f"/api/profiles/{bob.username}/follow", headers=ann.auth)
    assert unfollowed.status_code == 200
    assert unfollowed.json()["profile"]["following"] is False
    assert (
        client.get(f"/api/profiles/{bob.username}", headers=ann.auth).json()["profile"]["following"]
        is False
    )


def test_profile_errors(client: TestClient) -> None:
    ann = register(client, "ann")
    assert errors(client.get("/api/profiles/nobody-here"), 404) == {"profile": ["not found"]}
    for method in ("POST", "DELETE"):
        # the token is checked first: 401 for a profile that does not exist either
        anonymous = client.request(method, "/api/profiles/nobody-here/follow")
        assert errors(anonymous, 401) == {"token": ["is missing"]}
        missing = client.request(method, "/api/profiles/nobody-here/follow", headers=ann.auth)
        assert errors(missing, 404) == {"profile": ["not found"]}


# --- articles ----------------------------------------------------------------------------------


def test_create_read_update_delete_an_article(client: TestClient) -> None:
    ann = register(client, "ann")
    tag1, tag2 = unique("training"), unique("dragons")
    article = write(client, ann, "How to train your dragon", tagList=[tag1, tag2])
    assert article["slug"].startswith("how-to-train-your-dragon")
    assert article["title"] == "How to train your dragon"
    assert article["description"] == "What it is about"
    assert article["body"] == "The whole text."
    assert article["tagList"] == [tag1, tag2]  # in the order given, not sorted
    assert ISO_MS.fullmatch(article["createdAt"]) and ISO_MS.fullmatch(article["updatedAt"])
    assert article["favorited"] is False and article["favoritesCount"] == 0
    assert article["author"] == {
        "username": ann.username,
        "bio": None,
        "image": None,
        "following": False,
    }

    slug = article["slug"]
    read = client.get(f"/api/articles/{slug}")
    assert read.status_code == 200
    assert read.json()["article"] == article
    listed = client.get("/api/articles", params={"tag": tag2}).json()
    assert listed["articlesCount"] == 1
    assert listed["articles"] == [{k: v for k, v in article.items() if k != "body"}]

    updated = client.put(
        f"/api/articles/{slug}", json={"article": {"body": "With two dragons."}}, headers=ann.auth
    )
    assert updated.status_code == 200, updated.text
    changed = updated.json()["article"]
    assert changed["body"] == "With two dragons."
    assert changed["title"] == article["title"] and changed["slug"] == slug
    assert changed["tagList"] == [tag1, tag2]  # left out: kept
    assert (
        changed["updatedAt"] >= article["updatedAt"]
        and changed["createdAt"] == article["createdAt"]
    )

    retitled = client.put(
        f"/api/articles/{slug}",
        json={"article": {"title": "Did you train your dragon?", "tagList": [tag2, tag1]}},
        headers=ann.auth,
    ).json()["article"]
    assert retitled["slug"].startswith("did-you-train-your-dragon")
    assert retitled["tagList"] == [tag2, tag1]
    new_slug = retitled["slug"]
    assert errors(client.get(f"/api/articles/{slug}"), 404) == {"article": ["not found"]}

    cleared = client.put(
        f"/api/articles/{new_slug}", json={"article": {"tagList": []}}, headers=ann.auth
    )
    assert cleared.json()["article"]["tagList"] == []

    deleted = client.delete(f"/api/articles/{new_slug}", headers=ann.auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert errors(client.get(f"/api/articles/{new_slug}"), 404) == {"article": ["not found"]}


def test_duplicate_titles_get_distinct_slugs(client: TestClient) -> None:
    ann, bob = register(client, "ann"), register(client, "bob")
    title = unique("Same title ")
    slugs = {write(client, who, title)["slug"] for who in (ann, bob, ann)}
    assert len(slugs) == 3
    for slug in slugs:
        assert client.get(f"/api/articles/{slug}").json()["article"]["title"] == title
    assert all(write(client, ann, "!!!")["slug"] for _ in range(2))  # nothing to slug: still one


def test_article_errors(client: TestClient) -> None:
    ann, bob = register(client, "ann"), register(client, "bob")
    slug = write(client, ann)["slug"]

    def post(article: Any) -> httpx.Response:
        return client.post("/api/articles", json={"article": article}, headers=ann.auth)

    good = {"title": unique("T"), "description": "d", "body": "b"}
    for field in ("title", "description", "body"):
        assert errors(post({**good, field: ""}), 422) == {field: ["can't be blank"]}
        assert errors(post({k: v for k, v in good.items() if k != field}), 422) == {
            field: ["can't be blank"]
        }
    assert errors(post({**good, "tagList": None}), 422) == {"tagList": ["can't be blank"]}
    assert errors(post({**good, "tagList": "dragons"}), 422) == {"tagList": ["can't be blank"]}
    assert errors(client.post("/api/articles", json={}, headers=ann.auth), 422) == {
        "article": ["can't be blank"]
    }

    # no token: 401 before anything else, even for articles that do not exist
    assert errors(client.post("/api/articles", json={"article": good}), 401) == {
        "token": ["is missing"]
    }
    assert errors(client.post("/api/articles", json={}), 401) == {"token": ["is missing"]}
    for method in ("PUT", "DELETE"):
        for target in (slug, "nonexistent"):
            response = client.request(
                method, f"/api/articles/{target}", json={"article": {"body": "x"}}
            )
            assert errors(response, 401) == {"token": ["is missing"]}
    assert errors(client.get("/api/articles/feed"), 401) == {"token": ["is missing"]}

    # someone else's article
    edit = client.put(
        f"/api/articles/{slug}", json={"article": {"body": "mine now"}}, headers=bob.auth
    )
    assert errors(edit, 403) == {"article": ["forbidden"]}
    assert errors(client.delete(f"/api/articles/{slug}", headers=bob.auth), 403) == {
        "article": ["forbidden"]
    }
    assert client.get(f"/api/articles/{slug}").json()["article"]["body"] == "The whole text."

    # nothing there
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(
            method, "/api/articles/nonexistent", json={"article": {"body": "x"}}, headers=ann.auth
        )
        assert errors(response, 404) == {"article": ["not found"]}

    # updates: null and "" are refused, and the article is unchanged
    for change in ({"title": None}, {"title": ""}, {"body": ""}, {"tagList": None}):
        response = client.put(f"/api/articles/{slug}", json={"article": change}, headers=ann.auth)
        assert errors(response, 422) == {next(iter(change)): ["can't be blank"]}


def test_lists_filters_and_pages(client: TestClient) -> None:
    ann, bob, cat = register(client, "ann"), register(client, "bob"), register(client, "cat")
    tag = unique("tag")
    titles = [unique("Article ") for _ in range(5)]
    for number, title in enumerate(titles):
        write(client, ann if number % 2 == 0 else bob, title, tagList=[tag] if number < 3 else [])
    newest_first = titles[::-1]

    def listed(**params: Any) -> dict[str, Any]:
        response = client.get("/api/articles", params=params, headers=cat.auth)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    everything = listed(limit=1000)
    mine = [a for a in everything["articles"] if a["title"] in titles]
    assert [a["title"] for a in mine] == newest_first
    assert all("body" not in a for a in everything["articles"])  # lists carry no body
    assert everything["articlesCount"] >= 5

    by_tag = listed(tag=tag)
    assert [a["title"] for a in by_tag["articles"]] == titles[2::-1]
    assert by_tag["articlesCount"] == 3
    by_ann = listed(author=ann.username)
    assert [a["title"] for a in by_ann["articles"]] == [titles[4], titles[2], titles[0]]
    assert listed(author=ann.username.upper())["articlesCount"] == 3

    # limit and offset: articlesCount is every match, not the page
    page = listed(author=ann.username, limit=1, offset=1)
    assert [a["title"] for a in page["articles"]] == [titles[2]]
    assert page["articlesCount"] == 3
    assert listed(author=ann.username, offset=3)["articles"] == []
    assert listed(tag=unique("nothing")) == {"articles": [], "articlesCount": 0}
    assert listed(author="nobody-here") == {"articles": [], "articlesCount": 0}
    assert errors(client.get("/api/articles", params={"limit": "many"}), 422) == {
        "limit": ["is invalid"]
    }
    assert errors(client.get("/api/articles", params={"offset": -1}), 422) == {
        "offset": ["is invalid"]
    }

    # the default page is 20 articles
    for _ in range(21 - len(listed(limit=1000)["articles"])):
        write(client, cat)
    assert len(client.get("/api/articles").json()["articles"]) == 20

    # favorited=
    slug = by_ann["articles"][0]["slug"]
    client.post(f"/api/articles/{slug}/favorite", headers=cat.auth)
    favorites = listed(favorited=cat.username)
    assert [a["slug"] for a in favorites["articles"]] == [slug]
    assert favorites["articlesCount"] == 1
    assert favorites["articles"][0]["favorited"] is True


def test_feed(client: TestClient) -> None:
    ann, bob, cat, dan = (register(client, n) for n in ("ann", "bob", "cat", "dan"))
    first = write(client, bob)["title"]
    write(client, cat)
    second = write(client, dan)["title"]
    client.post(f"/api/profiles/{bob.username}/follow", headers=ann.auth)
    client.post(f"/api/profiles/{dan.username}/follow", headers=ann.auth)

    feed = client.get("/api/articles/feed", headers=ann.auth).json()
    assert [a["title"] for a in feed["articles"]] == [second, first]
    assert feed["articlesCount"] == 2
    assert all(a["author"]["following"] is True for a in feed["articles"])
    assert all("body" not in a for a in feed["articles"])
    page = client.get(
        "/api/articles/feed", params={"limit": 1, "offset": 1}, headers=ann.auth
    ).json()
    assert [a["title"] for a in page["articles"]] == [first] and page["articlesCount"] == 2
    assert client.get("/api/articles/feed", headers=cat.auth).json() == {
        "articles": [],
        "articlesCount": 0,
    }


def test_favorites(client: TestClient) -> None:
    ann, bob, cat = register(client, "ann"), register(client, "bob"), register(client, "cat")
    slug = write(client, ann)["slug"]
    favorited = client.post(f"/api/articles/{slug}/favorite", headers=bob.auth)
    assert favorited.status_code == 200
    article = favorited.json()["article"]
    assert (article["favorited"], article["favoritesCount"]) == (True, 1)
    assert "body" in article
    again = client.post(f"/api/articles/{slug}/favorite", headers=bob.auth).json()["article"]
    assert again["favoritesCount"] == 1  # twice is once
    both = client.post(f"/api/articles/{slug}/favorite", headers=cat.auth).json()["article"]
    assert both["favoritesCount"] == 2

    # from each one's point of view
    assert (
        client.get(f"/api/articles/{slug}", headers=ann.auth).json()["article"]["favorited"]
        is False
    )
    assert client.get(f"/api/articles/{slug}").json()["article"]["favorited"] is False
    assert client.get(f"/api/articles/{slug}").json()["article"]["favoritesCount"] == 2

    removed = client.delete(f"/api/articles/{slug}/favorite", headers=bob.auth).json()["article"]
    assert (removed["favorited"], removed["favoritesCount"]) == (False, 1)

    assert errors(client.post(f"/api/articles/{slug}/favorite"), 401) == {"token": ["is missing"]}
    assert errors(client.delete("/api/articles/nonexistent/favorite"), 401) == {
        "token": ["is missing"]
    }
    for method in ("POST", "DELETE"):
        missing = client.request(method, "/api/articles/nonexistent/favorite", headers=bob.auth)
        assert errors(missing, 404) == {"article": ["not found"]}


def test_following_shows_in_articles(client: TestClient) -> None:
    ann, bob = register(client, "ann"), register(client, "bob")
    slug = write(client, bob)["slug"]
    client.post(f"/api/profiles/{bob.username}/follow", headers=ann.auth)
    assert (
        client.get(f"/api/articles/{slug}", headers=ann.auth).json()["article"]["author"][
            "following"
        ]
        is True
    )
    assert client.get(f"/api/articles/{slug}").json()["article"]["author"]["following"] is False
    listed = client.get("/api/articles", params={"author": bob.username}, headers=ann.auth).json()
    assert listed["articles"][0]["author"]["following"] is True


# --- comments ----------------------------------------------------------------------------------


def test_comments(client: TestClient) -> None:
    ann, bob = register(client, "ann"), register(client, "bob")
    slug = write(client, ann)["slug"]
    client.post(f"/api/profiles/{ann.username}/follow", headers=bob.auth)

    posted = client.post(
        f"/api/articles/{slug}/comments",
        json={"comment": {"body": "Thank you so much!"}},
        headers=ann.auth,
    )
    assert posted.status_code == 201, posted.text
    comment = posted.json()["comment"]
    assert isinstance(comment["id"], int)
    assert comment["body"] == "Thank you so much!"
    assert ISO_MS.fullmatch(comment["createdAt"]) and ISO_MS.fullmatch(comment["updatedAt"])
    assert comment["author"] == {
        "username": ann.username,
        "bio": None,
        "image": None,
        "following": False,
    }
    second = client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "Second."}}, headers=bob.auth
    ).json()["comment"]

    listed = client.get(f"/api/articles/{slug}/comments", headers=bob.auth)
    assert listed.status_code == 200
    comments = listed.json()["comments"]
    assert [c["id"] for c in comments] == [second["id"], comment["id"]]  # newest first
    assert comments[1]["author"]["following"] is True  # bob follows ann
    anonymous = client.get(f"/api/articles/{slug}/comments").json()["comments"]
    assert anonymous[1]["author"]["following"] is False

    deleted = client.delete(f"/api/articles/{slug}/comments/{comment['id']}", headers=ann.auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert [c["id"] for c in client.get(f"/api/articles/{slug}/comments").json()["comments"]] == [
        second["id"]
    ]

    # deleting the article takes its comments along
    assert client.delete(f"/api/articles/{slug}", headers=ann.auth).status_code == 204
    assert errors(client.get(f"/api/articles/{slug}/comments"), 404) == {"article": ["not found"]}


def test_comment_errors(client: TestClient) -> None:
    ann, bob = register(client, "ann"), register(client, "bob")
    slug = write(client, ann)["slug"]
    other = write(client, ann)["slug"]
    comment = client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "Mine."}}, headers=ann.auth
    ).json()["comment"]
    url = f"/api/articles/{slug}/comments"

    assert errors(client.post(url, json={"comment": {"body": "x"}}), 401) == {
        "token": ["is missing"]
    }
    assert errors(client.delete(f"{url}/{comment['id']}"), 401) == {"token": ["is missing"]}
    assert errors(client.delete("/api/articles/nonexistent/comments/1"), 401) == {
        "token": ["is missing"]
    }

    assert errors(client.post(url, json={"comment": {"body": ""}}, headers=ann.auth), 422) == {
        "body": ["can't be blank"]
    }
    assert errors(client.post(url, json={"comment": {}}, headers=ann.auth), 422) == {
        "body": ["can't be blank"]
    }
    assert errors(client.post(url, json={}, headers=ann.auth), 422) == {
        "comment": ["can't be blank"]
    }

    missing = client.post(
        "/api/articles/nonexistent/comments", json={"comment": {"body": "x"}}, headers=ann.auth
    )
    assert errors(missing, 404) == {"article": ["not found"]}
    assert errors(client.get("/api/articles/nonexistent/comments"), 404) == {
        "article": ["not found"]
    }
    assert errors(client.delete(f"{url}/999999", headers=ann.auth), 404) == {
        "comment": ["not found"]
    }
    # the comment exists, under another article
    elsewhere = client.delete(f"/api/articles/{other}/comments/{comment['id']}", headers=ann.auth)
    assert errors(elsewhere, 404) == {"comment": ["not found"]}

    assert errors(client.delete(f"{url}/{comment['id']}", headers=bob.auth), 403) == {
        "comment": ["forbidden"]
    }
    assert [c["id"] for c in client.get(url).json()["comments"]] == [comment["id"]]


# --- tags --------------------------------------------------------------------------------------


def test_tags(client: TestClient) -> None:
    ann = register(client, "ann")
    popular, rare = unique("popular"), unique("rare")
    write(client, ann, tagList=[popular, rare])
    write(client, ann, tagList=[popular, popular, " "])  # once each, blanks dropped
    tags = client.get("/api/tags")
    assert tags.status_code == 200
    names = tags.json()["tags"]
    assert list(tags.json()) == ["tags"]
    assert popular in names and rare in names
    assert names.index(popular) < names.index(rare)  # most used first
    assert len(names) == len(set(names))


# --- the API description, CORS and the README's command -----------------------------------------


def test_openapi_and_cors(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["Token"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": document["components"]["securitySchemes"]["Token"]["description"],
    }
    assert "/api/articles/{slug}/comments/{id}" in document["paths"]
    preflight = client.options(
        "/api/articles",
        headers={
            "Origin": "https://conduit.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_models_and_migrations_agree(client: TestClient) -> None:
    client.app.state.migrations.check()  # type: ignore[attr-defined]


def test_the_readme_command_serves_over_http(tmp_path: Path) -> None:
    """`cd examples/realworld && trellis run app.py`: migrations on start-up, then the API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env["TRELLIS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'conduit.db'}"  # not in the checkout
    port = free_port()
    command = [sys.executable, "-m", "trellis.cli", "run", "app.py", "--port", str(port)]
    with (
        serve(
            command,
            port=port,
            env=env,
            cwd=EXAMPLE,
            name="trellis run",
            ready="/api/tags",
            timeout=60,
        ) as url,
        httpx.Client(base_url=url + "/api", timeout=30) as http,
    ):
        user = {"username": "Jacob", "email": "jake@jake.jake", "password": "jakejake"}
        registered = http.post("/users", json={"user": user})
        assert registered.status_code == 201, registered.text
        token = {"Authorization": "Token " + registered.json()["user"]["token"]}
        article = {
            "title": "How to train your dragon",
            "description": "Ever wonder how?",
            "body": "Very carefully.",
            "tagList": ["dragons", "training"],
        }
        created = http.post("/articles", json={"article": article}, headers=token)
        assert created.status_code == 201, created.text
        assert created.json()["article"]["author"]["username"] == "Jacob"
        listed = http.get("/articles").json()
        assert listed["articlesCount"] == 1
        assert listed["articles"][0]["slug"] == "how-to-train-your-dragon"
        assert listed["articles"][0]["tagList"] == ["dragons", "training"]
    assert (tmp_path / "conduit.db").is_file()
    assert not (EXAMPLE / "conduit.db").exists()
