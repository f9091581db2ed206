"""Permissions, roles, superusers, token scopes and object rules, on every database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from auth_helpers import add_user, make_app
from sqlalchemy import event, select

from trellis import Request, Router
from trellis.contrib.auth import (
    Auth,
    CurrentUser,
    Group,
    JWTConfig,
    Permission,
    User,
    get_access,
    requires,
    user_has_perm,
)
from trellis.contrib.auth.permissions import known_permissions
from trellis.contrib.db import Database, Session
from trellis.exceptions import ForbiddenError, UnauthorizedError
from trellis.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


async def grant(
    database: Database,
    user: User,
    *,
    perms: tuple[str, ...] = (),
    groups: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Give ``user`` permissions directly and through groups (made as needed)."""
    async with database.transaction() as db:

        async def permission(codename: str) -> Permission:
            found = await db.scalar(select(Permission).where(Permission.codename == codename))
            return found or Permission(codename=codename)

        found = await db.get(User, user.id)
        assert found is not None
        mine = await found.awaitable_attrs.permissions
        mine.extend([await permission(p) for p in perms])
        for name, codenames in (groups or {}).items():
            group = await db.scalar(select(Group).where(Group.name == name)) or Group(name=name)
            (await group.awaitable_attrs.permissions).extend(
                [await permission(c) for c in codenames]
            )
            (await found.awaitable_attrs.groups).append(group)


async def token_for(database: Database, auth: Auth, user: User, **options: Any) -> dict[str, str]:
    async with database.transaction() as db:
        token = await auth.issue_token(db, user, **options)
    return {"Authorization": f"Bearer {token}"}


def shop(database: Database, **options: Any) -> tuple[Any, Auth]:
    app, auth = make_app(database, **options)

    @app.get("/publish", dependencies=[requires("articles.publish")])
    async def publish() -> str:
        return "published"

    @app.get("/both", dependencies=[requires("articles.publish", "articles.delete")])
    async def both() -> str:
        return "both"

    @app.get("/edit")
    async def edit(user: Annotated[User, requires(roles=["editors", "admins"])]) -> str:
        return f"editor {user.email}"

    @app.get("/any")
    async def any_user(user: Annotated[User, requires()]) -> str:
        return user.email

    staff = Router("/staff", dependencies=[requires("staff.enter")])

    @staff.get("/room")
    async def room() -> str:
        return "staff room"

    app.include(staff)
    return app, auth


async def statuses(app: Any, headers: dict[str, str], *paths: str) -> list[int]:
    async with AsyncTestClient(app) as client:
        return [(await client.get(path, headers=headers)).status_code for path in paths]


PATHS = ("/publish", "/both", "/edit", "/any", "/staff/room")


async def test_anonymous_requests_get_401_or_the_login_page(database: Database) -> None:
    app, _ = shop(database)
    assert await statuses(app, {}, *PATHS) == [401] * 5
    assert await statuses(app, {"Accept": "text/html"}, *PATHS) == [303] * 5


async def test_users_get_what_they_were_granted(database: Database) -> None:
    plain = await add_user(database, "plain@example.com")
    direct = await add_user(database, "direct@example.com")
    grouped = await add_user(database, "grouped@example.com")
    boss = await add_user(database, "boss@example.com", is_superuser=True)
    await grant(database, direct, perms=("articles.publish", "staff.enter"))
    await grant(
        database,
        grouped,
        perms=("articles.delete",),
        groups={"editors": ("articles.publish",), "readers": ()},
    )
    app, auth = shop(database)
    expected = {
        plain: [403, 403, 403, 200, 403],
        direct: [200, 403, 403, 200, 200],
        grouped: [200, 200, 200, 200, 403],
        boss: [200, 200, 200, 200, 200],
    }
    for user, codes in expected.items():
        assert await statuses(app, await token_for(database, auth, user), *PATHS) == codes, user


async def test_a_403_names_nothing(database: Database) -> None:
    user = await add_user(database)
    app, auth = shop(database)
    async with AsyncTestClient(app) as client:
        response = await client.get("/publish", headers=await token_for(database, auth, user))
    assert response.status_code == 403
    assert response.json()["detail"] == "You do not have permission to do this."
    assert "articles" not in response.text


async def test_token_scopes_limit_even_a_superuser(database: Database) -> None:
    boss = await add_user(database, is_superuser=True)
    app, auth = shop(database, jwt=JWTConfig(keys={"k": "k" * 32}))
    scoped = await token_for(database, auth, boss, scopes=["articles.publish"])
    assert await statuses(app, scoped, "/publish", "/both", "/edit") == [200, 403, 200]
    key = await token_for(database, auth, boss, kind="api_key", scopes=["staff.enter"])
    api_key = {"X-API-Key": key["Authorization"].removeprefix("Bearer ")}
    assert await statuses(app, api_key, "/publish", "/staff/room") == [403, 200]
    jwt = {"Authorization": f"Bearer {auth.create_jwt(boss, scope='articles.delete')}"}
    assert await statuses(app, jwt, "/publish", "/any") == [403, 200]
    unscoped = {"Authorization": f"Bearer {auth.create_jwt(boss)}"}
    assert await statuses(app, unscoped, "/publish", "/both") == [200, 200]


async def test_check_is_a_last_condition(database: Database) -> None:
    user = await add_user(database)
    app, auth = make_app(database)

    def weekday_only(user: User | None, request: Any) -> bool:
        return request.query.get("day") != "sunday"

    async def open_to_all(user: User | None, request: Any) -> bool:
        return request.query.get("closed") is None

    @app.get("/shop", dependencies=[requires(check=weekday_only)])
    async def shop_() -> str:
        return "open"

    @app.get("/public")
    async def public(
        user: Annotated[User | None, requires(authenticated=False, check=open_to_all)],
    ) -> str:
        return user.email if user else "anonymous"

    headers = await token_for(database, auth, user)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/shop", headers=headers)).status_code == 200
        assert (await client.get("/shop?day=sunday", headers=headers)).status_code == 403
        assert (await client.get("/shop")).status_code == 401
        assert (await client.get("/public")).text == "anonymous"
        assert (await client.get("/public", headers=headers)).text == "ann@example.com"
        assert (await client.get("/public?closed=1")).status_code == 401
        assert (await client.get("/public?closed=1", headers=headers)).status_code == 403


async def test_access_is_read_once_per_request(database: Database) -> None:
    user = await add_user(database)
    await grant(database, user, perms=("a.read",), groups={"team": ("a.write",)})
    app, auth = make_app(database)

    @app.get("/", dependencies=[requires("a.read"), requires(roles=["team"])])
    async def index(user: CurrentUser, db: Session) -> dict[str, Any]:
        access = await get_access(db, user)
        return {
            "write": await user_has_perm(db, user, "a.write"),
            "admin": await user_has_perm(db, user, "a.admin"),
            "perms": sorted(access.permissions),
            "roles": sorted(access.roles),
        }

    selects: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "auth_permission" in statement or "auth_group" in statement:
            selects.append(statement)

    headers = await token_for(database, auth, user)
    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with AsyncTestClient(app) as client:
            response = await client.get("/", headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.json() == {
        "write": True,
        "admin": False,
        "perms": ["a.read", "a.write"],
        "roles": ["team"],
    }
    assert len(selects) == 1


async def test_user_has_perm(database: Database) -> None:
    user = await add_user(database)
    off = await add_user(database, "off@example.com", is_active=False, is_superuser=True)
    await grant(database, user, groups={"g": ("x.y",)})
    async with database.session() as db:
        assert await user_has_perm(db, user, "x.y") is True
        assert await user_has_perm(db, user, "x.z") is False
        assert await user_has_perm(db, None, "x.y") is False
        assert await user_has_perm(db, off, "x.y") is False


# -- object rules ----------------------------------------------------------------------------


@dataclass
class Article:
    author_id: int


async def test_object_rules(database: Database) -> None:
    author = await add_user(database)
    other = await add_user(database, "other@example.com")
    editor = await add_user(database, "editor@example.com")
    boss = await add_user(database, "boss@example.com", is_superuser=True)
    await grant(database, editor, perms=("articles.edit",))
    _, auth = make_app(database)

    @auth.object_permission("articles.edit")
    def own_article(user: User, article: Article) -> bool:
        return article.author_id == user.id

    @auth.object_permission("articles.archive")
    async def also_async(user: User, article: Article) -> bool:
        return article.author_id == user.id

    article = Article(author_id=author.id)
    assert "articles.edit" in known_permissions()
    async with database.session() as db:
        for user, allowed in ((author, True), (other, False), (editor, True), (boss, True)):
            assert await auth.has_perm(user, "articles.edit", article, db=db) is allowed
        assert await auth.has_perm(author, "articles.edit", db=db) is False  # no object
        assert await auth.has_perm(author, "articles.archive", article, db=db) is True
        assert await auth.has_perm(other, "articles.archive", article, db=db) is False
        await auth.authorize(author, "articles.edit", article, db=db)
        with pytest.raises(ForbiddenError):
            await auth.authorize(other, "articles.edit", article, db=db)
        with pytest.raises(UnauthorizedError):
            await auth.authorize(None, "articles.edit", article)
    # without a session: the one the user was loaded with, or (detached) a new one
    assert await auth.has_perm(editor, "articles.edit") is True
    assert await auth.has_perm(other, "articles.edit", article) is False


async def test_authorize_in_a_handler(database: Database) -> None:
    author = await add_user(database)
    other = await add_user(database, "other@example.com")
    app, auth = make_app(database)
    articles = {1: Article(author_id=author.id)}

    @auth.object_permission("articles.edit")
    def own_article(user: User, article: Article) -> bool:
        return article.author_id == user.id

    @app.post("/articles/{id:int}")
    async def edit(id: int, user: CurrentUser, request: Request) -> str:
        await auth.authorize(user, "articles.edit", articles[id])
        return "saved"

    async with AsyncTestClient(app) as client:
        mine = await client.post("/articles/1", headers=await token_for(database, auth, author))
        theirs = await client.post("/articles/1", headers=await token_for(database, auth, other))
    assert (mine.status_code, theirs.status_code) == (200, 403)


def test_requires_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="list of group names"):
        requires(roles="editors")
    with pytest.raises(TypeError, match="permission codenames"):
        requires("")
    marker = requires("reports.view", roles=["staff"])
    assert "requires('reports.view', roles=['staff'])" in repr(marker)
    assert "reports.view" in known_permissions()
