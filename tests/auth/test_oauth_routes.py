"""Third-party login end to end: the app's routes, a real provider on loopback, the database.

The "browser" is the test: it follows the app's redirect to the provider over real HTTP, and
the provider's redirect back to the app's callback. The app (in-process) talks to the
provider over real HTTP too, as in production.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from auth_helpers import add_user, make_app
from joserfc.jwk import RSAKey
from oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider, idp, idp_server
from sqlalchemy import func, select

from trellis import App, Request
from trellis.contrib.auth import Auth, OAuthAccount, OptionalUser, User, login, logout
from trellis.contrib.auth.oauth import GitHub, OIDCProvider
from trellis.contrib.auth.oauth import client as oauth_client
from trellis.contrib.auth.oauth.routes import SESSION_KEY, oauth_router
from trellis.contrib.db import Database, Session
from trellis.exceptions import ConfigurationError
from trellis.sessions import get_flashed_messages
from trellis.testing import AsyncTestClient

__all__ = ["idp", "idp_server"]  # fixtures

pytestmark = pytest.mark.anyio

HTML = {"Accept": "text/html"}
#: For tests about the protocol rather than the data: SQLite is enough.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def site(database: Database, idp: FakeProvider, **options: Any) -> App:
    options.setdefault(
        "oauth",
        [
            OIDCProvider("test", CLIENT_ID, CLIENT_SECRET, idp.metadata_url, title="Test ID"),
            GitHub(CLIENT_ID, CLIENT_SECRET, api_url=idp.issuer, web_url=idp.issuer),
        ],
    )
    app, _ = make_app(database, **options)

    @app.get("/me")
    async def me(user: OptionalUser) -> dict[str, Any]:
        return {"email": user.email if user else None, "id": user.id if user else None}

    @app.post("/password-login", csrf=False)
    async def password_login(request: Request, db: Session) -> str:
        form = await request.form()
        user = await db.scalar(select(User).where(User.email == str(form["email"])))
        assert user is not None
        await login(request, user)
        return "ok"

    @app.post("/logout", csrf=False)
    async def sign_out(request: Request) -> None:
        await logout(request)

    @app.get("/flashes")
    async def flashes(request: Request) -> list[Any]:
        return get_flashed_messages(request, with_categories=True)

    @app.get("/pending")
    async def pending(request: Request) -> Any:
        return request.session.get(SESSION_KEY)

    return app


async def start(client: AsyncTestClient, provider: str = "test", **params: str) -> str:
    """Start a login; the provider's authorization URL."""
    response = await client.get(f"/auth/oauth/{provider}/login", params=params)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def at_provider(url: str) -> str:
    """The browser at the provider (which approves at once): the callback URL it sends back."""
    async with httpx.AsyncClient() as browser:
        response = await browser.get(url)
    assert response.status_code == 302, response.text
    location: str = response.headers["location"]
    assert location.startswith("http://testserver/auth/oauth/")
    return location


async def browser_login(
    client: AsyncTestClient, provider: str = "test", **params: str
) -> httpx.Response:
    callback = await at_provider(await start(client, provider, **params))
    return await client.get(callback, headers=HTML)


async def me(client: AsyncTestClient) -> dict[str, Any]:
    data: dict[str, Any] = (await client.get("/me")).json()
    return data


async def counts(database: Database) -> tuple[int, int]:
    async with database.session() as db:
        users = await db.scalar(select(func.count()).select_from(User))
        accounts = await db.scalar(select(func.count()).select_from(OAuthAccount))
    return int(users or 0), int(accounts or 0)


# -- the happy paths ------------------------------------------------------------------------


async def test_first_login_creates_a_user_and_signs_in(
    database: Database, idp: FakeProvider
) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        authorize = await start(client, next="/account?tab=1")
        query = parse_qs(urlsplit(authorize).query)
        assert query["redirect_uri"] == ["http://testserver/auth/oauth/test/callback"]
        assert query["code_challenge_method"] == ["S256"]
        # The pending login waits in the session, keyed by provider.
        stored = (await client.get("/pending")).json()
        assert stored["test"]["state"] == query["state"][0]
        assert stored["test"]["next"] == "/account?tab=1"
        cookie_before = client.cookies.get("session")

        response = await client.get(await at_provider(authorize), headers=HTML)
        assert response.status_code == 303
        assert response.headers["location"] == "/account?tab=1"
        assert client.cookies.get("session") != cookie_before  # rotated at login
        assert (await me(client))["email"] == "alice@example.com"
        assert (await client.get("/pending")).json() == {}  # used up

    async with database.session() as db:
        user = (await db.scalars(select(User))).one()
        account = (await db.scalars(select(OAuthAccount))).one()
    assert (user.email, user.username, user.password_hash) == ("alice@example.com", "alice", None)
    assert user.last_login is not None
    assert (account.user_id, account.provider, account.subject, account.email) == (
        user.id,
        "test",
        "alice-sub-1",
        "alice@example.com",
    )


async def test_second_login_finds_the_same_user(database: Database, idp: FakeProvider) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        await browser_login(client)
        first = await me(client)
        await client.post("/logout")
        assert (await me(client))["id"] is None
        idp.user["email"] = "alice@new.example"  # the provider's email changed meanwhile
        await browser_login(client)
        assert (await me(client))["id"] == first["id"]
    assert await counts(database) == (1, 1)
    async with database.session() as db:
        account = (await db.scalars(select(OAuthAccount))).one()
        user = (await db.scalars(select(User))).one()
    assert account.email == "alice@new.example"  # the link remembers the latest address
    assert user.email == "alice@example.com"  # the account's own address is the user's


@sqlite_only
async def test_github_login(database: Database, idp: FakeProvider) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        response = await browser_login(client, "github")
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert (await me(client))["email"] == "octo@example.com"
    async with database.session() as db:
        user = (await db.scalars(select(User))).one()
    assert user.username == "octo-cat"


# -- state, and requests that are not answers to our login ------------------------------------


@sqlite_only
async def test_tampered_state_is_a_400(database: Database, idp: FakeProvider) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        callback = await at_provider(await start(client))
        tampered = callback.replace("state=", "state=x")
        response = await client.get(tampered, headers=HTML)
        assert response.status_code == 400
        assert "wrong state" in response.text
        assert (await me(client))["id"] is None
        # The pending login is gone: the genuine answer no longer works either.
        again = await client.get(callback, headers=HTML)
        assert again.status_code == 400
        assert "No login with Test ID was started" in again.text
    assert await counts(database) == (0, 0)


@sqlite_only
async def test_missing_state_and_unstarted_logins_are_400(
    database: Database, idp: FakeProvider
) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        unstarted = await client.get("/auth/oauth/test/callback?code=abc&state=xyz")
        assert unstarted.status_code == 400
        assert unstarted.json()["detail"].startswith("No login with Test ID was started")
        callback = await at_provider(await start(client))
        no_state = callback.split("&state=")[0]
        response = await client.get(no_state)
        assert response.status_code == 400
        assert "wrong state" in response.json()["detail"]


@sqlite_only
async def test_replayed_callback_is_refused(database: Database, idp: FakeProvider) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        callback = await at_provider(await start(client))
        assert (await client.get(callback)).status_code == 303
        assert (await client.get(callback)).status_code == 400


@sqlite_only
async def test_callback_in_another_browser_is_refused(
    database: Database, idp: FakeProvider
) -> None:
    # Login CSRF: an attacker's code and state, delivered to the victim's browser.
    app = site(database, idp)
    async with AsyncTestClient(app) as attacker, AsyncTestClient(app) as victim:
        callback = await at_provider(await start(attacker))
        await start(victim)  # even with a login of their own pending
        response = await victim.get(callback)
        assert response.status_code == 400
        assert (await me(victim))["id"] is None


@sqlite_only
async def test_expired_pending_login(
    database: Database, idp: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        callback = await at_provider(await start(client))
        monkeypatch.setattr(oauth_client, "PENDING_LIFETIME", -1)
        response = await client.get(callback)
        assert response.status_code == 400
        assert "took too long" in response.json()["detail"]


@sqlite_only
async def test_missing_code(database: Database, idp: FakeProvider) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        state = parse_qs(urlsplit(await start(client)).query)["state"][0]
        response = await client.get(f"/auth/oauth/test/callback?state={state}")
        assert response.status_code == 400
        assert response.json()["detail"] == "The answer from Test ID has no code."


@sqlite_only
async def test_unknown_provider_is_a_404(database: Database, idp: FakeProvider) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        for path in ("/auth/oauth/nope/login", "/auth/oauth/nope/callback"):
            response = await client.get(path)
            assert response.status_code == 404
            assert response.json()["detail"] == "There is no login provider named 'nope'."


@sqlite_only
async def test_next_must_stay_on_the_site(database: Database, idp: FakeProvider) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        for bad in ("https://evil.example/", "//evil.example", "/\\evil.example"):
            response = await browser_login(client, next=bad)
            assert response.headers["location"] == "/"
        response = await browser_login(client, next="http://testserver/ok")
        assert response.headers["location"] == "http://testserver/ok"


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id_token_overrides": {"nonce": "replayed"}}, "refused (invalid_claim 'nonce')"),
        ({"id_token_overrides": {"aud": "someone-else"}}, "refused (invalid_claim 'aud')"),
        ({"id_token_overrides": {"exp": 1_000_000}}, "has expired"),
        ({"sign_with": "another key"}, "refused (bad_signature)"),
        ({"token_error": "invalid_grant"}, "refused to complete the login (invalid_grant)"),
    ],
)
@sqlite_only
async def test_invalid_logins_are_refused(
    database: Database, idp: FakeProvider, change: dict[str, Any], message: str
) -> None:
    if "sign_with" in change:
        change = {"sign_with": RSAKey.generate_key(2048, parameters={"kid": "key-1"})}
    for name, value in change.items():
        setattr(idp, name, value)
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        response = await browser_login(client)
        assert response.status_code == 400
        assert message in html.unescape(response.text)
        assert "text/html" in response.headers["content-type"]
        assert (await me(client))["id"] is None
    assert await counts(database) == (0, 0)


@sqlite_only
async def test_refusals_go_to_the_login_page_with_pages(
    database: Database, idp: FakeProvider
) -> None:
    idp.id_token_overrides = {"nonce": "replayed"}
    app = site(database, idp, pages=True)
    async with AsyncTestClient(app) as client:
        response = await browser_login(client, next="/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/auth/login?next=%2Faccount"
        page = await client.get(response.headers["location"], headers=HTML)
        assert page.status_code == 200
        assert "The ID token from Test ID was refused (invalid_claim 'nonce')" in html.unescape(
            page.text
        )
        assert (await me(client))["id"] is None


@sqlite_only
async def test_provider_error_cancelled(database: Database, idp: FakeProvider) -> None:
    idp.authorize_error = "access_denied"
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        response = await browser_login(client)
        assert response.status_code == 400
        assert "The login with Test ID was cancelled." in response.text
    app = site(database, idp, pages=True)
    async with AsyncTestClient(app) as client:
        response = await browser_login(client, "github", next="/x")
        assert response.status_code == 303
        assert response.headers["location"] == "/auth/login?next=%2Fx"
        assert (await client.get("/flashes")).json() == [
            ["error", "The login with GitHub was cancelled."]
        ]


@sqlite_only
async def test_provider_error_other(database: Database, idp: FakeProvider) -> None:
    idp.authorize_error = "temporarily_unavailable"
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        response = await client.get(await at_provider(await start(client)))
        assert response.status_code == 400
        assert response.json()["detail"] == (
            "Test ID refused the login (temporarily_unavailable: The user said no.)."
        )


@sqlite_only
async def test_provider_error_with_a_wrong_state_is_a_400(
    database: Database, idp: FakeProvider
) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        await start(client)
        response = await client.get("/auth/oauth/test/callback?error=access_denied&state=forged")
        assert response.status_code == 400
        assert "wrong state" in response.json()["detail"]


@sqlite_only
async def test_unreachable_provider_is_a_502(database: Database, idp: FakeProvider) -> None:
    down = OIDCProvider(
        "down", "id", "secret", "http://127.0.0.1:9/.well-known/openid-configuration"
    )
    app = site(database, idp, oauth=[down])
    async with AsyncTestClient(app) as client:
        response = await client.get("/auth/oauth/down/login", headers=HTML)
        assert response.status_code == 502
        assert "down could not be reached to complete the login" in response.text


# -- linking -------------------------------------------------------------------------------------


async def test_verified_email_links_to_the_existing_user(
    database: Database, idp: FakeProvider
) -> None:
    ann = await add_user(database, "Alice@Example.com", username="alice")
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        await browser_login(client)
        assert (await me(client))["id"] == ann.id
    assert await counts(database) == (1, 1)
    async with database.session() as db:
        user = await db.get(User, ann.id)
    assert user is not None and user.password_hash is not None  # the password still works


async def test_unverified_email_never_links(database: Database, idp: FakeProvider) -> None:
    ann = await add_user(database, "alice@example.com")
    idp.user["email_verified"] = False
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        response = await browser_login(client)
        assert response.status_code == 409
        assert "has not confirmed that this address is yours" in response.text
        assert (await me(client))["id"] is None
    assert await counts(database) == (1, 0)
    async with database.session() as db:
        assert (await db.scalars(select(User))).one().id == ann.id


@sqlite_only
async def test_unverified_email_creates_no_user(database: Database, idp: FakeProvider) -> None:
    idp.user["email_verified"] = False
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        response = await browser_login(client)
        assert response.status_code == 400
        assert "Test ID has not confirmed your email address alice@example.com" in response.text
    assert await counts(database) == (0, 0)


@sqlite_only
async def test_trusted_provider_emails_count_as_verified(
    database: Database, idp: FakeProvider
) -> None:
    ann = await add_user(database, "alice@example.com")
    del idp.user["email_verified"]
    corp = OIDCProvider("corp", CLIENT_ID, CLIENT_SECRET, idp.metadata_url, trust_email=True)
    app = site(database, idp, oauth=[corp])
    async with AsyncTestClient(app) as client:
        await browser_login(client, "corp")
        assert (await me(client))["id"] == ann.id


@sqlite_only
async def test_no_email_creates_no_user(database: Database, idp: FakeProvider) -> None:
    idp.github_emails = []
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        response = await browser_login(client, "github")
        assert response.status_code == 400
        assert "GitHub did not share your email address" in response.text
    assert await counts(database) == (0, 0)


async def test_logged_in_user_links_a_second_provider(
    database: Database, idp: FakeProvider
) -> None:
    idp.github_emails = [{"email": "someone-else@example.com", "primary": True, "verified": True}]
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        await browser_login(client)
        alice = await me(client)
        response = await browser_login(client, "github", next="/settings")
        assert response.headers["location"] == "/settings"
        assert await me(client) == alice
        assert (await client.get("/flashes")).json() == [
            ["success", "Your GitHub account is now connected."]
        ]
        # Later, GitHub alone signs in as the same user.
        await client.post("/logout")
        await browser_login(client, "github")
        assert await me(client) == alice
    async with database.session() as db:
        rows = (await db.execute(select(OAuthAccount.provider, OAuthAccount.user_id))).all()
    assert sorted(rows) == [("github", alice["id"]), ("test", alice["id"])]
    assert (await counts(database))[0] == 1


async def test_provider_account_of_another_user_is_not_moved(
    database: Database, idp: FakeProvider
) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        await browser_login(client)  # alice, through "test"
        alice = await me(client)
    bob = await add_user(database, "bob@example.com", username="bob")
    async with AsyncTestClient(app) as client:
        await sign_in_as(client, bob)
        response = await browser_login(client, next="/settings")
        assert response.status_code == 303
        assert response.headers["location"] == "/settings"
        assert (await client.get("/flashes")).json() == [
            [
                "error",
                "This Test ID account is already connected to another user. Log out and log"
                " in with Test ID to use that account.",
            ]
        ]
        assert (await me(client))["id"] == bob.id  # still bob
    async with database.session() as db:
        account = (await db.scalars(select(OAuthAccount))).one()
    assert account.user_id == alice["id"]


async def sign_in_as(client: AsyncTestClient, user: User) -> None:
    """Sign ``user`` in (as a password login would), through a route of the test's own."""
    response = await client.post("/password-login", data={"email": user.email})
    assert response.status_code == 200, response.text


async def test_disabled_user_cannot_sign_in(database: Database, idp: FakeProvider) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        await browser_login(client)
        await client.post("/logout")
    async with database.transaction() as db:
        user = (await db.scalars(select(User))).one()
        user.is_active = False
    async with AsyncTestClient(app) as client:
        response = await browser_login(client)
        assert response.status_code == 403
        assert "This account is disabled." in response.text
        assert (await me(client))["id"] is None


async def test_user_names_are_made_unique(database: Database, idp: FakeProvider) -> None:
    await add_user(database, "a1@example.com", username="alice")
    await add_user(database, "a2@example.com", username="alice2")
    await add_user(database, "a3@example.com", username="alice_x")
    app = site(database, idp)
    async with AsyncTestClient(app) as client:
        await browser_login(client)
    async with database.session() as db:
        user = await db.scalar(select(User).where(User.email == "alice@example.com"))
    assert user is not None and user.username == "alice3"


def test_oauth_router_refuses_bad_configuration() -> None:
    class FakeAuth:
        prefix = "/auth"
        pages = False
        login_url = "/auth/login"

        def __init__(self, oauth: list[Any]) -> None:
            self.oauth = oauth

    with pytest.raises(ConfigurationError, match="takes OAuthProvider objects"):
        oauth_router(FakeAuth(["github"]))
    with pytest.raises(ConfigurationError, match="two providers are named 'github'"):
        oauth_router(FakeAuth([GitHub("a", "b"), GitHub("c", "d")]))
    router = oauth_router(FakeAuth([GitHub("a", "b")]))
    assert sorted(r.path for r in router.routes) == ["/{name}/callback", "/{name}/login"]
    assert router.prefix == "/auth/oauth"


@sqlite_only
async def test_strict_session_cookies_are_refused_at_start_up(
    database: Database, idp: FakeProvider
) -> None:
    app = App(debug=True, secret_key="k" * 40, session_cookie_samesite="strict")
    app.install(database)
    with pytest.raises(ConfigurationError, match="SameSite=Strict"):
        app.install(Auth(pages=False, api=False, oauth=[GitHub("a", "b")]))


@sqlite_only
async def test_configured_redirect_uri(database: Database, idp: FakeProvider) -> None:
    public = "https://www.example.com/auth/oauth/test/callback"
    provider = OIDCProvider("test", CLIENT_ID, CLIENT_SECRET, idp.metadata_url, redirect_uri=public)
    app = site(database, idp, oauth=[provider])
    async with AsyncTestClient(app) as client:
        query = parse_qs(urlsplit(await start(client)).query)
        assert query["redirect_uri"] == [public]
        assert (await client.get("/pending")).json()["test"]["redirect_uri"] == public


@sqlite_only
async def test_root_path_and_proxy_scheme_are_in_the_callback_url(
    database: Database, idp: FakeProvider
) -> None:
    app = site(database, idp)
    async with AsyncTestClient(app, base_url="https://shop.example", root_path="/shop") as client:
        query = parse_qs(urlsplit(await start(client)).query)
    assert query["redirect_uri"] == ["https://shop.example/shop/auth/oauth/test/callback"]
