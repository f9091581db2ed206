"""Who is asking: sessions, bearer tokens, API keys; 401, redirects, and the OpenAPI schemes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from auth_helpers import PASSWORD, add_user, make_app
from sqlalchemy import select

from trellis import App, Request
from trellis.contrib.auth import (
    Auth,
    AuthToken,
    CurrentUser,
    OptionalUser,
    User,
    login,
    logout,
)
from trellis.contrib.db import Database, Session
from trellis.contrib.db.types import utcnow
from trellis.csrf import csrf_token
from trellis.sessions import MemorySessionBackend
from trellis.testing import AsyncTestClient

pytestmark = pytest.mark.anyio


def site(database: Database, **options: Any) -> tuple[App, Auth]:
    app, auth = make_app(database, **options)

    @app.get("/me")
    async def me(request: Request, user: CurrentUser) -> dict[str, Any]:
        assert request.state.user is user
        return {"email": user.email, "method": request.state.auth_method}

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> dict[str, Any]:
        return {"email": user.email if user else None}

    @app.post("/login")
    async def sign_in(request: Request, db: Session) -> dict[str, Any]:
        form = await request.form()
        user = await auth.authenticate(db, str(form["login"]), str(form["password"]))
        if user is None:
            return {"ok": False}
        await login(request, user)
        return {"ok": True}

    @app.post("/logout")
    async def sign_out(request: Request) -> None:
        await logout(request)

    @app.get("/csrf")
    async def csrf(request: Request) -> str:
        return csrf_token(request)

    @app.post("/password")
    async def password(request: Request, user: CurrentUser) -> None:
        form = await request.form()
        await auth.aset_password(user, str(form["new"]))
        await login(request, user)  # this session stays signed in

    return app, auth


async def sign_in(client: AsyncTestClient, login_name: str = "ann@example.com") -> None:
    response = await client.post(
        "/login",
        data={"login": login_name, "password": PASSWORD},
        headers=await csrf_headers(client),  # as the login page's form would carry it
    )
    assert response.json() == {"ok": True}


async def csrf_headers(client: AsyncTestClient) -> dict[str, str]:
    return {"X-CSRF-Token": (await client.get("/csrf")).text}


# -- anonymous -------------------------------------------------------------------------------


async def test_anonymous_api_clients_get_401_with_a_challenge(database: Database) -> None:
    app, _ = site(database)
    async with AsyncTestClient(app) as client:
        response = await client.get("/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "Authentication required."
        assert (await client.get("/maybe")).json() == {"email": None}
        # a browser's POST is not redirected: the form would be lost
        post = await client.post("/password", headers={"Accept": "text/html"}, data={"new": "x"})
        assert post.status_code == 401
        assert "text/html" in post.headers["content-type"]


async def test_browsers_are_sent_to_the_login_page(database: Database) -> None:
    app, _ = site(database)
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with AsyncTestClient(app) as client:
        response = await client.get("/me?tab=a%20b&x=1", headers=html)
        assert response.status_code == 303
        assert response.headers["location"] == "/auth/login?next=%2Fme%3Ftab%3Da%2520b%26x%3D1"
        head = await client.head("/me", headers=html)
        assert head.status_code == 303
        # an API client asking for HTML with credentials gets the 401 it can act on
        bearer = await client.get("/me", headers={**html, "Authorization": "Bearer nope"})
        assert bearer.status_code == 401


async def test_login_url_is_configurable(database: Database) -> None:
    app, _ = site(database, login_url="/signin?from=app")
    async with AsyncTestClient(app, root_path="/shop") as client:
        response = await client.get("/me", headers={"Accept": "text/html"})
    assert response.headers["location"] == "/shop/signin?from=app&next=%2Fshop%2Fme"


# -- sessions --------------------------------------------------------------------------------


async def test_login_logout_and_last_login(database: Database) -> None:
    user = await add_user(database, username="ann")
    app, _ = site(database)
    async with AsyncTestClient(app) as client:
        wrong = await client.post("/login", data={"login": "ann", "password": "wrong"})
        assert wrong.json() == {"ok": False}
        await sign_in(client, "ANN")  # by user name, any case
        assert (await client.get("/me")).json() == {
            "email": "ann@example.com",
            "method": "session",
        }
        response = await client.post("/logout", headers=await csrf_headers(client))
        assert response.status_code == 204
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert (await client.get("/me")).status_code == 401
    async with database.session() as db:
        found = await db.get(User, user.id)
        assert found is not None and found.last_login is not None
        assert utcnow() - found.last_login < timedelta(minutes=1)


async def test_login_rotates_the_session_against_fixation(database: Database) -> None:
    await add_user(database)
    app, _ = site(database)
    store = MemorySessionBackend()
    app.state.session_store = store
    async with AsyncTestClient(app) as attacker:
        await attacker.get("/csrf")  # a session the attacker plants in the victim's browser
        planted = attacker.cookies["session"]
    async with AsyncTestClient(app) as victim:
        victim.cookies.set("session", planted, domain="testserver.local")
        await sign_in(victim)
        assert victim.cookies["session"] != planted
        assert len(store) == 1  # the planted record is gone, the new one is there
        assert (await victim.get("/me")).status_code == 200
    async with AsyncTestClient(app, cookies={"session": planted}) as attacker:
        assert (await attacker.get("/me")).status_code == 401


@pytest.mark.parametrize("store", [False, True], ids=["cookie", "store"])
async def test_another_users_login_drops_the_session_data(database: Database, store: bool) -> None:
    await add_user(database)
    await add_user(database, "bob@example.com")
    app, _ = site(database)
    if store:
        app.state.session_store = MemorySessionBackend()

    @app.post("/cart")
    async def cart(request: Request) -> None:
        request.session["cart"] = ["book"]

    @app.get("/cart")
    async def show_cart(request: Request) -> dict[str, Any]:
        return {"cart": request.session.get("cart")}

    async with AsyncTestClient(app) as shared_computer:
        await sign_in(shared_computer)
        await shared_computer.post("/cart", headers=await csrf_headers(shared_computer))
        await sign_in(shared_computer)  # the same user again: the data stays
        assert (await shared_computer.get("/cart")).json() == {"cart": ["book"]}
        await sign_in(shared_computer, "bob@example.com")  # ann walked away without logging out
        assert (await shared_computer.get("/cart")).json() == {"cart": None}
        assert (await shared_computer.get("/me")).json()["email"] == "bob@example.com"


async def test_a_password_change_signs_out_the_other_sessions(database: Database) -> None:
    await add_user(database)
    app, _ = site(database)
    async with AsyncTestClient(app) as laptop, AsyncTestClient(app) as phone:
        await sign_in(laptop)
        await sign_in(phone)
        changed = await laptop.post(
            "/password", data={"new": "a brand new password"}, headers=await csrf_headers(laptop)
        )
        assert changed.status_code == 204
        assert (await laptop.get("/me")).status_code == 200  # signed in again by the change
        response = await phone.get("/me")
        assert response.status_code == 401
        assert "Max-Age=0" in response.headers["set-cookie"]  # its session was invalidated


async def test_deactivated_or_deleted_users_lose_their_sessions(database: Database) -> None:
    user = await add_user(database)
    await add_user(database, "bob@example.com")
    app, _ = site(database)
    async with AsyncTestClient(app) as ann, AsyncTestClient(app) as bob:
        await sign_in(ann)
        await sign_in(bob, "bob@example.com")
        async with database.transaction() as db:
            found = await db.get(User, user.id)
            assert found is not None
            found.is_active = False
            bob_user = await db.scalar(select(User).where(User.email == "bob@example.com"))
            await db.delete(bob_user)
        assert (await ann.get("/me")).status_code == 401
        assert (await bob.get("/me")).status_code == 401


async def test_a_tampered_session_cookie_is_anonymous(database: Database) -> None:
    await add_user(database)
    await add_user(database, "bob@example.com")
    app, _ = site(database)
    async with AsyncTestClient(app) as client:
        await sign_in(client, "bob@example.com")
        cookie = client.cookies["session"]
    payload, _, signature = cookie.partition(".")
    import base64
    import json

    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["d"]["_auth_user_id"] = 1  # ann's id
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    async with AsyncTestClient(app, cookies={"session": f"{forged}.{signature}"}) as client:
        assert (await client.get("/me")).status_code == 401


async def test_an_authorization_header_overrides_the_session_cookie(database: Database) -> None:
    # CSRF checks skip requests with Authorization: the cookie must not count for them.
    await add_user(database)
    app, _ = site(database)
    async with AsyncTestClient(app) as client:
        await sign_in(client)
        assert (await client.get("/me")).status_code == 200
        basic = await client.get("/me", headers={"Authorization": "Basic YTpi"})
        assert basic.status_code == 401
        maybe = await client.get("/maybe", headers={"Authorization": "Basic YTpi"})
        assert maybe.json() == {"email": None}


async def test_sessions_off_still_take_tokens(database: Database) -> None:
    user = await add_user(database)
    app, auth = make_app(database)
    app.settings = app.settings.replace(sessions=False)

    @app.get("/me")
    async def me(user: CurrentUser) -> str:
        return user.email

    async with database.transaction() as db:
        token = await auth.issue_token(db, user)
    async with AsyncTestClient(app, cookies={"session": "whatever"}) as client:
        assert (await client.get("/me")).status_code == 401
        ok = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert ok.text == "ann@example.com"


# -- tokens and API keys ---------------------------------------------------------------------


async def test_bearer_tokens_and_api_keys(database: Database) -> None:
    user = await add_user(database)
    app, auth = site(database)
    async with database.transaction() as db:
        token = await auth.issue_token(db, user, name="laptop")
        key = await auth.issue_token(db, user, kind="api_key", name="CI")
    async with AsyncTestClient(app) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.json() == {"email": "ann@example.com", "method": "bearer"}
        response = await client.get("/me", headers={"X-API-Key": key})
        assert response.json() == {"email": "ann@example.com", "method": "api_key"}
        # each kind only where it belongs
        swapped = await client.get("/me", headers={"Authorization": f"Bearer {key}"})
        assert swapped.status_code == 401
        assert swapped.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        swapped = await client.get("/me", headers={"X-API-Key": token})
        assert swapped.status_code == 401
        assert swapped.headers["www-authenticate"] == "APIKey"
        assert swapped.json()["detail"] == "The API key is invalid, expired or revoked."
        # wrong credentials are refused even where a user is optional
        assert (await client.get("/maybe", headers={"X-API-Key": "nope"})).status_code == 401


async def test_tokens_are_stored_hashed_and_shown_once(database: Database) -> None:
    user = await add_user(database)
    _, auth = make_app(database)
    async with database.transaction() as db:
        token = await auth.issue_token(db, user, name="laptop", scopes=["a.b", "c.d"])
    assert len(token) == 43 and "." not in token
    async with database.session() as db:
        row = await db.scalar(select(AuthToken))
    assert row is not None
    assert row.token_hash != token and len(row.token_hash) == 64
    assert row.prefix == token[:8]
    assert row.scopes == "a.b c.d" and row.scope_set == {"a.b", "c.d"}
    assert row.kind == "bearer" and row.name == "laptop" and row.expires_at is None
    with pytest.raises(ValueError, match="token kind 'cookie'"):
        await auth.issue_token(db, user, kind="cookie")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="without spaces"):
        await auth.issue_token(db, user, scopes=["a b"])
    with pytest.raises(ValueError, match="expires_in must be positive"):
        await auth.issue_token(db, user, expires_in=0)


async def test_expired_and_revoked_tokens_get_401(database: Database) -> None:
    user = await add_user(database)
    app, auth = site(database)
    async with database.transaction() as db:
        short = await auth.issue_token(db, user, expires_in=60)
        by_value = await auth.issue_token(db, user)
        by_id = await auth.issue_token(db, user)
    async with AsyncTestClient(app) as client:

        async def code(token: str) -> int:
            response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
            return response.status_code

        assert [await code(t) for t in (short, by_value, by_id)] == [200, 200, 200]
        async with database.transaction() as db:
            await db.execute(
                AuthToken.__table__.update()
                .where(AuthToken.prefix == short[:8])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            assert await auth.revoke_token(db, by_value) is True
            assert await auth.revoke_token(db, by_value) is False  # already
            row = await db.scalar(select(AuthToken).where(AuthToken.prefix == by_id[:8]))
            assert row is not None
            assert await auth.revoke_token(db, row.id) is True
            assert await auth.revoke_token(db, "unknown") is False
            assert await auth.revoke_token(db, 10_000) is False
        assert [await code(t) for t in (short, by_value, by_id)] == [401, 401, 401]


async def test_last_used_at_is_written_at_most_once_a_minute(database: Database) -> None:
    user = await add_user(database)
    app, auth = site(database)
    async with database.transaction() as db:
        token = await auth.issue_token(db, user)

    async def last_used() -> Any:
        async with database.session() as db:
            return await db.scalar(select(AuthToken.last_used_at))

    headers = {"Authorization": f"Bearer {token}"}
    async with AsyncTestClient(app) as client:
        assert await last_used() is None
        await client.get("/me", headers=headers)
        first = await last_used()
        assert first is not None
        await client.get("/me", headers=headers)
        assert await last_used() == first
        async with database.transaction() as db:
            await db.execute(
                AuthToken.__table__.update().values(last_used_at=first - timedelta(minutes=2))
            )
        await client.get("/me", headers=headers)
        assert await last_used() > first - timedelta(seconds=1)


async def test_tokens_of_inactive_users_get_401(database: Database) -> None:
    user = await add_user(database)
    app, auth = site(database)
    async with database.transaction() as db:
        token = await auth.issue_token(db, user)
        found = await db.get(User, user.id)
        assert found is not None
        found.is_active = False
    async with AsyncTestClient(app) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


# -- authenticate --------------------------------------------------------------------------


async def test_authenticate(database: Database) -> None:
    await add_user(database, username="ann")
    await add_user(database, "off@example.com", is_active=False)
    await add_user(database, "oauth@example.com", password=None)
    _, auth = make_app(database)
    async with database.transaction() as db:
        assert (await auth.authenticate(db, " Ann@Example.com ", PASSWORD)) is not None
        assert (await auth.authenticate(db, "ann", PASSWORD)) is not None
        assert await auth.authenticate(db, "ann", PASSWORD + "x") is None
        assert await auth.authenticate(db, "nobody@example.com", PASSWORD) is None
        assert await auth.authenticate(db, "", PASSWORD) is None
        assert await auth.authenticate(db, "off@example.com", PASSWORD) is None
        assert await auth.authenticate(db, "oauth@example.com", "") is None


@pytest.mark.parametrize("name", ["ann\x00", "\x00", "ann\x00@example.com", "an\x1bn", "a\ud800"])
async def test_names_no_database_can_hold_are_unknown_users(database: Database, name: str) -> None:
    # asyncpg refuses a NUL byte in text: asking for it would be a 500, not a miss
    from trellis.contrib.auth import PasswordHasher

    class Counting(PasswordHasher):
        dummies = 0

        def dummy_verify(self, password: str) -> None:
            Counting.dummies += 1
            super().dummy_verify(password)

    await add_user(database, username="ann")
    _, auth = make_app(database, hasher=Counting(time_cost=1, memory_cost=8, parallelism=1))
    async with database.transaction() as db:
        assert await auth.find_user(db, name) is None
        assert await auth.authenticate(db, name, PASSWORD) is None
        assert Counting.dummies == 1  # still one hash verification: the same time as a miss
        assert await auth.find_user(db, "ann") is not None  # the session is still usable


async def test_authenticate_rehashes_with_new_parameters(database: Database) -> None:
    from trellis.contrib.auth import PasswordHasher

    user = await add_user(database)
    old_hash = user.password_hash
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    _, auth = make_app(database, hasher=stronger)
    async with database.transaction() as db:
        assert await auth.authenticate(db, "ann@example.com", PASSWORD) is not None
    async with database.session() as db:
        found = await db.get(User, user.id)
    assert found is not None and found.password_hash != old_hash
    assert found.password_hash is not None and "$m=16,t=2,p=1$" in found.password_hash
    assert not stronger.needs_rehash(found.password_hash)


# -- API description -------------------------------------------------------------------------


async def test_the_schemes_are_in_the_api_description(database: Database) -> None:
    app, _ = site(database)
    doc = app.openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["authBearer"]["type"] == "http"
    assert schemes["authBearer"]["scheme"] == "bearer"
    assert schemes["authApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key.",
    }
    assert doc["paths"]["/me"]["get"]["security"] == [{"authBearer": []}, {"authApiKey": []}, {}]


async def test_login_refuses_unsaved_and_inactive_users(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app(database)
    off = await add_user(database, is_active=False)

    @app.post("/login/{which}")
    async def sign_in(request: Request, which: str) -> None:
        await login(request, User(email="new@example.com") if which == "new" else off)

    async with AsyncTestClient(app) as client:
        for which, message in (("new", "not saved yet"), ("off", "is inactive")):
            assert (await client.post(f"/login/{which}")).status_code == 500
            assert message in caplog.text  # a programming error, logged with its reason


async def test_login_of_a_detached_user_still_records_last_login(database: Database) -> None:
    user = await add_user(database)  # loaded by another session, now closed
    app, _ = make_app(database)

    @app.post("/login")
    async def sign_in(request: Request) -> None:
        await login(request, user)

    @app.get("/me")
    async def me(user: CurrentUser) -> str:
        return user.email

    async with AsyncTestClient(app) as client:
        assert (await client.post("/login")).status_code == 204
        assert (await client.get("/me")).text == "ann@example.com"
    async with database.session() as db:
        found = await db.get(User, user.id)
    assert found is not None and found.last_login is not None
