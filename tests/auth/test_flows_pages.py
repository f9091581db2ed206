"""The auth pages through HTTP: register, sign in, change and reset the password, sign out.

A ``TestClient`` keeps its cookies between requests, as a browser does. The full flows run on
SQLite, PostgreSQL and MariaDB (``sync_database`` is parametrized over ``db_url``); checks that do
not depend on the database run on SQLite only.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_helpers import FAST_HASHER, PASSWORD, add_user, make_app

from trellis import App, Request
from trellis.contrib.auth import Auth, User
from trellis.contrib.auth.reset import PasswordResetTokens
from trellis.contrib.auth.throttle import LoginThrottle
from trellis.contrib.db import Database
from trellis.contrib.mail import MemoryEmailBackend
from trellis.exceptions import ConfigurationError
from trellis.sessions import get_flashed_messages
from trellis.testing import TestClient

SECRET = "k" * 40  # make_app's secret key
NEW_PASSWORD = "a brand new passphrase"
HTML = {"accept": "text/html"}
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def csrf(response: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, response.text
    return html.unescape(match.group(1))


def build(database: Database, mail: MemoryEmailBackend, **options: Any) -> tuple[App, Auth]:
    options.setdefault("throttle", LoginThrottle(per_account=(3, 900), per_ip=(20, 900)))
    app, auth = make_app(database, pages=True, api=False, email=mail, **options)

    @app.get("/")
    async def home(request: Request) -> dict[str, Any]:
        return {"flashes": get_flashed_messages(request, with_categories=True)}

    @app.get("/dashboard")
    async def dashboard() -> str:
        return "dashboard"

    return app, auth


@pytest.fixture
def mail() -> MemoryEmailBackend:
    return MemoryEmailBackend(from_email="site@example.com")


@pytest.fixture
def client(sync_database: Database, mail: MemoryEmailBackend) -> Iterator[TestClient]:
    app, _ = build(sync_database, mail)
    with TestClient(app) as test_client:
        yield test_client


def add_ann(client: TestClient, database: Database, **fields: Any) -> User:
    """Save ann (ann@example.com, user name ann, PASSWORD) on the client's event loop."""
    fields.setdefault("username", "ann")
    user: User = client.call(lambda: add_user(database, **fields))
    return user


def throttle_of(client: TestClient) -> LoginThrottle:
    throttle = client.app.state.auth.throttle  # type: ignore[attr-defined]
    assert isinstance(throttle, LoginThrottle)
    return throttle


def flashes(client: TestClient) -> list[list[str]]:
    data: list[list[str]] = client.get("/").json()["flashes"]
    return data


def sign_in(client: TestClient, login: str, password: str, **extra: str) -> httpx.Response:
    token = csrf(client.get("/auth/login"))
    return client.post(
        "/auth/login", data={"csrf_token": token, "login": login, "password": password, **extra}
    )


def sign_out(client: TestClient) -> httpx.Response:
    token = csrf(client.get("/auth/password/change"))
    return client.post("/auth/logout", data={"csrf_token": token})


def register(client: TestClient, **fields: str) -> httpx.Response:
    token = csrf(client.get("/auth/register"))
    data = {
        "email": "ann@example.com",
        "username": "ann",
        "password": PASSWORD,
        "password2": PASSWORD,
        **fields,
    }
    return client.post("/auth/register", data={"csrf_token": token, **data})


def signed_in(client: TestClient) -> bool:
    response = client.get("/auth/password/change", headers=HTML)
    assert response.status_code in (200, 303)
    return response.status_code == 200


# -- the whole journey -------------------------------------------------------------------


def test_register_login_change_password_logout(client: TestClient) -> None:
    page = client.get("/auth/register")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["content-type"].startswith("text/html")

    created = register(client)
    assert created.status_code == 303
    assert created.headers["location"] == "/"
    assert flashes(client) == [["success", "Welcome, ann! Your account is ready."]]
    assert signed_in(client)

    # sign out: back to the login page, with a message, and really out
    out = sign_out(client)
    assert out.status_code == 303 and out.headers["location"] == "/auth/login"
    assert not signed_in(client)
    assert flashes(client) == [["success", "You are signed out."]]
    redirected = client.get("/auth/password/change", headers=HTML)
    assert redirected.headers["location"] == "/auth/login?next=%2Fauth%2Fpassword%2Fchange"

    # a wrong password: the form again, with the login kept and a message
    wrong = sign_in(client, "ann@example.com", "not the password")
    assert wrong.status_code == 401
    assert "Wrong e-mail, user name or password." in wrong.text
    assert 'value="ann@example.com"' in wrong.text
    assert "not the password" not in wrong.text  # passwords are never echoed

    # by user name, in any case, back where the redirect came from
    good = sign_in(client, "ANN", PASSWORD, next="/auth/password/change")
    assert good.status_code == 303
    assert good.headers["location"] == "/auth/password/change"

    # change the password
    page = client.get("/auth/password/change")
    token = csrf(page)
    before = dict(client.cookies)
    bad_old = client.post(
        "/auth/password/change",
        data={
            "csrf_token": token,
            "old_password": "wrong",
            "new_password": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert bad_old.status_code == 422
    assert "The current password is wrong." in bad_old.text
    mismatch = client.post(
        "/auth/password/change",
        data={
            "csrf_token": token,
            "old_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD + "!",
        },
    )
    assert mismatch.status_code == 422
    assert "The two passwords do not match." in mismatch.text
    changed = client.post(
        "/auth/password/change",
        data={
            "csrf_token": token,
            "old_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == "/auth/password/change"
    assert "session" in changed.cookies  # rotated: a new session cookie
    assert dict(client.cookies) != before
    assert flashes(client) == [["success", "Your password was changed."]]
    assert signed_in(client)  # still signed in

    # the session from before the change no longer works
    after = dict(client.cookies)
    client.cookies.clear()
    client.cookies.update(before)
    assert not signed_in(client)
    client.cookies.clear()
    client.cookies.update(after)
    assert signed_in(client)

    sign_out(client)
    assert sign_in(client, "ann", PASSWORD).status_code == 401
    assert sign_in(client, "ann", NEW_PASSWORD).status_code == 303
    assert signed_in(client)


def test_logout_is_post_only(client: TestClient) -> None:
    assert client.get("/auth/logout").status_code == 405
    # without a session there is nothing to do: straight to the login page
    response = client.post("/auth/logout")
    assert response.status_code == 303 and response.headers["location"] == "/auth/login"


@sqlite_only
def test_logout_needs_the_csrf_token(client: TestClient) -> None:
    register(client)
    assert client.post("/auth/logout").status_code == 403
    assert client.post("/auth/logout", data={"csrf_token": "forged"}).status_code == 403
    assert signed_in(client)


# -- registration ------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"password": "short", "password2": "short"}, "password", "at least 8 characters"),
        ({"password": "1234567890", "password2": "1234567890"}, "password", "only digits"),
        (
            {"password": "ann@example.com", "password2": "ann@example.com"},
            "password",
            "cannot be your e-mail address or user name",
        ),
        (
            {"username": "annabelle", "password": "AnnaBelle", "password2": "AnnaBelle"},
            "password",
            "cannot be your e-mail address or user name",
        ),
        ({"password2": "something else"}, "password2", "do not match"),
        ({"email": "not-an-address"}, "email", "Enter a valid e-mail address."),
        ({"email": ""}, "email", "Enter an e-mail address."),
        ({"username": ""}, "username", "Enter a user name."),
        ({"username": "ann@example.com"}, "username", "only letters, digits"),
        ({"username": "a b"}, "username", "only letters, digits"),
        ({"username": "x" * 151}, "username", "at most 150 characters"),
    ],
)
def test_registration_is_validated(
    client: TestClient, fields: dict[str, str], field: str, message: str
) -> None:
    response = register(client, **fields)
    assert response.status_code == 422
    assert message in html.unescape(response.text)
    assert f'id="id_{field}_errors"' in response.text or field == ""
    assert "session" not in response.cookies or not signed_in(client)
    assert not signed_in(client)


def test_duplicates_are_a_form_error_not_a_crash(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    assert register(client).status_code == 303
    sign_out(client)
    same_email = register(client, email="ANN@example.com", username="other")
    assert same_email.status_code == 409
    assert "An account with this e-mail address exists already." in same_email.text
    assert 'value="ANN@example.com"' in same_email.text
    same_name = register(client, email="other@example.com", username="Ann")
    assert same_name.status_code == 409
    assert "This user name is taken." in same_name.text
    both = register(client)
    assert both.status_code == 409
    assert "exists already" in both.text and "is taken" in both.text


@sqlite_only
def test_registration_can_be_turned_off(sync_database: Database, mail: MemoryEmailBackend) -> None:
    app, _ = build(sync_database, mail, registration=False)
    with TestClient(app) as client:
        assert client.get("/auth/register").status_code == 404
        assert "Create one" not in client.get("/auth/login").text


@sqlite_only
def test_register_follows_a_safe_next(client: TestClient) -> None:
    page = client.get("/auth/register?next=/dashboard")
    assert 'name="next" value="/dashboard"' in page.text
    token = csrf(page)
    response = client.post(
        "/auth/register",
        data={
            "csrf_token": token,
            "email": "bob@example.com",
            "username": "bob",
            "password": PASSWORD,
            "password2": PASSWORD,
            "next": "/dashboard",
        },
    )
    assert response.headers["location"] == "/dashboard"


# -- CSRF ----------------------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    "path", ["/auth/login", "/auth/register", "/auth/password/reset", "/auth/password/reset/x"]
)
def test_forms_need_the_csrf_token_even_without_a_session(
    client: TestClient, sync_database: Database, path: str
) -> None:
    data = {"login": "ann", "password": PASSWORD, "email": "ann@example.com"}
    # a first visit, no cookie at all (a forged cross-site post)
    fresh = client.post(path, data=data)
    assert fresh.status_code == 403
    assert "CSRF token missing" in fresh.text
    # a token of another session (the attacker's own)
    foreign = csrf(client.get("/auth/login"))
    client.cookies.clear()
    client.get("/auth/login")
    refused = client.post(path, data={**data, "csrf_token": foreign})
    assert refused.status_code == 403
    assert "CSRF token incorrect" in refused.text


@sqlite_only
def test_a_forged_login_signs_nobody_in(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    response = client.post("/auth/login", data={"login": "ann", "password": PASSWORD})
    assert response.status_code == 403
    assert not signed_in(client)


@sqlite_only
def test_a_cross_site_origin_is_refused(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    token = csrf(client.get("/auth/login"))
    response = client.post(
        "/auth/login",
        data={"csrf_token": token, "login": "ann", "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "Origin not allowed" in response.text


# -- next and open redirects -----------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    ("next_url", "location"),
    [
        ("/dashboard", "/dashboard"),
        ("/dashboard?tab=1#top", "/dashboard?tab=1#top"),
        ("http://testserver/dashboard", "http://testserver/dashboard"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("https://evil.example/dashboard", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/%2F/evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("http://testserver@evil.example/", "/"),
        ("", "/"),
    ],
)
def test_next_never_leaves_the_site(
    client: TestClient, sync_database: Database, next_url: str, location: str
) -> None:
    add_ann(client, sync_database)
    response = sign_in(client, "ann", PASSWORD, next=next_url)
    assert response.status_code == 303
    assert response.headers["location"] == location


@sqlite_only
def test_an_unsafe_next_is_not_even_put_in_the_form(client: TestClient) -> None:
    for value in ("//evil.example", "https://evil.example", "javascript:alert(1)"):
        page = client.get("/auth/login", params={"next": value})
        assert 'name="next" value=""' in page.text
        assert "evil.example" not in page.text and "javascript:" not in page.text


@sqlite_only
def test_redirects_can_be_configured(sync_database: Database, mail: MemoryEmailBackend) -> None:
    app, auth = build(sync_database, mail, login_redirect_url="/dashboard", logout_redirect_url="/")
    with TestClient(app) as client:
        add_ann(client, sync_database)
        assert sign_in(client, "ann", PASSWORD).headers["location"] == "/dashboard"
        assert sign_out(client).headers["location"] == "/"
        # attributes of the installed Auth, read at each request
        auth.login_redirect_url = "/?welcome"
        auth.logout_redirect_url = None
        assert sign_in(client, "ann", PASSWORD).headers["location"] == "/?welcome"
        assert sign_out(client).headers["location"] == "/auth/login"


@sqlite_only
def test_url_options_are_checked_at_once(sync_database: Database) -> None:
    with pytest.raises(ConfigurationError, match=re.escape("site_url='example.com'")):
        Auth(site_url="example.com")
    with pytest.raises(ConfigurationError, match=re.escape("needs '{token}'")):
        Auth(password_reset_url="https://app.example.com/reset")
    auth = Auth(site_url="https://example.com", password_reset_url="/reset/{token}")
    assert auth.site_url == "https://example.com" and auth.login_redirect_url is None


@sqlite_only
def test_the_login_page_lists_the_oauth_providers(
    sync_database: Database, mail: MemoryEmailBackend
) -> None:
    from trellis.contrib.auth.oauth import GitHub, OIDCProvider

    corp = OIDCProvider("corp", "id", "secret", "https://sso.example.com", title="<Corp> SSO")
    app, _ = build(sync_database, mail, oauth=[GitHub("id", "secret"), corp])
    with TestClient(app) as client:
        page = client.get("/auth/login", params={"next": "/account?tab=keys&x=1"})
        assert (
            '<a href="/auth/oauth/github/login?next=/account%3Ftab%3Dkeys%26x%3D1">'
            "Sign in with GitHub</a>" in page.text
        )
        assert '<a href="/auth/oauth/corp/login?next=' in page.text
        assert "Sign in with &lt;Corp&gt; SSO" in page.text
        bare = client.get("/auth/login")
        assert '<a href="/auth/oauth/github/login">Sign in with GitHub</a>' in bare.text
        # an unsafe next is not passed on
        evil = client.get("/auth/login", params={"next": "https://evil.example"})
        assert "evil.example" not in evil.text
    without, _ = build(sync_database, mail)
    with TestClient(without) as client:
        assert "oauth" not in client.get("/auth/login").text


# -- escaping --------------------------------------------------------------------------------

XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


@sqlite_only
def test_user_input_is_escaped(client: TestClient) -> None:
    # in a refused registration
    response = register(client, email=XSS, username=XSS)
    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in response.text
    assert "<img src=x" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    # in the login form's echo
    response = sign_in(client, XSS, "whatever")
    assert response.status_code == 401
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text
    # in next: a path that is "safe" as a redirect but full of markup is escaped...
    page = client.get("/auth/login", params={"next": '/"><script>alert(1)</script>'})
    assert "<script>alert(1)</script>" not in page.text
    assert 'value="/&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text
    # ...and one with spaces is not a path at all
    page = client.get("/auth/login", params={"next": "/" + XSS})
    assert "<script>" not in page.text and "onerror" not in page.text


@sqlite_only
def test_a_stored_user_name_is_escaped(client: TestClient, sync_database: Database) -> None:
    # A name that went around the form's rules (an admin, an import): pages still escape it.
    name = "<b>bold</b><script>alert(1)</script>"
    client.call(lambda: add_user(sync_database, username=name))
    assert sign_in(client, "ann@example.com", PASSWORD).status_code == 303
    page = client.get("/auth/password/change")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;&lt;script&gt;" in page.text


@sqlite_only
def test_the_reset_email_escapes_html_but_not_text(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    add_ann(client, sync_database, username="<b>ann</b>")
    ask_reset(client, "ann@example.com")
    message = mail.outbox[0]
    assert message.text.startswith("Hello <b>ann</b>,")  # plain text: nothing to escape
    assert message.html is not None
    assert "Hello &lt;b&gt;ann&lt;/b&gt;," in message.html


@sqlite_only
def test_the_pages_work_under_a_strict_csp(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    pages = [client.get(p) for p in ("/auth/login", "/auth/register", "/auth/password/reset")]
    sign_in(client, "ann", PASSWORD)
    pages.append(client.get("/auth/password/change"))
    pages.append(client.get("/auth/password/reset/not-a-token"))
    for page in pages:
        text = page.text.lower()
        assert "<script" not in text, page.url
        assert "style=" not in text and "<style" not in text, page.url
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", text), page.url  # no onclick=...


# -- hostile input in the login fields -----------------------------------------------------------

SQL = [
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR ""="',
    "admin'--",
    "ann@example.com' --",
    "'; DROP TABLE auth_user; --",
    "ann' UNION SELECT password_hash FROM auth_user --",
    "\\",
    "%",
    "_",
    "ann\x00",
    "\u202eann",
    "a" * 5000,
]


@pytest.mark.parametrize("payload", SQL)
@sqlite_only
def test_sql_injection_just_fails_the_login(
    client: TestClient, sync_database: Database, payload: str
) -> None:
    add_ann(client, sync_database)
    for login, password in ((payload, PASSWORD), ("ann", payload), (payload, payload)):
        response = sign_in(client, login, password)
        assert response.status_code in (401, 429), (login, password, response.text[:300])
        assert not signed_in(client)
        client.call(throttle_of(client).unlock, payload)
        client.call(throttle_of(client).unlock, "ann")
    assert sign_in(client, "ann", PASSWORD).status_code == 303  # the table is fine


def test_sql_injection_on_every_database(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    for payload in ("' OR '1'='1", "'; DROP TABLE auth_user; --", "ann\x00"):
        assert sign_in(client, payload, payload).status_code == 401
    assert sign_in(client, "ann", PASSWORD).status_code == 303


def test_empty_fields(client: TestClient) -> None:
    response = sign_in(client, "", "")
    assert response.status_code == 422
    assert "Enter your e-mail address or user name." in response.text
    assert "Enter your password." in response.text


# -- brute force -------------------------------------------------------------------------------


@sqlite_only
def test_brute_force_on_one_account_gets_429(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    assert sign_in(client, "ann", "guess 1").status_code == 401
    assert sign_in(client, "ann", "guess 2").status_code == 401
    third = sign_in(client, "ann", "guess 3")  # the 3rd failure (per_account=(3, 900))
    assert third.status_code == 429
    retry_after = int(third.headers["retry-after"])
    assert 0 < retry_after <= 900
    assert "Too many failed attempts" in third.text
    # locked: even the right password is refused, without being checked
    right = sign_in(client, "ann", PASSWORD)
    assert right.status_code == 429
    assert int(right.headers["retry-after"]) <= retry_after
    assert not signed_in(client)
    # by another name of the same account? a different counter: the e-mail is not locked,
    # but the per-address limit still counts every failure
    assert sign_in(client, "bob", "x").status_code == 401


@sqlite_only
def test_brute_force_from_one_address_gets_429(
    sync_database: Database, mail: MemoryEmailBackend
) -> None:
    throttle = LoginThrottle(per_account=(100, 900), per_ip=(4, 600))
    app, _ = build(sync_database, mail, throttle=throttle)
    with TestClient(app) as client:
        add_ann(client, sync_database)
        for i in range(3):
            assert sign_in(client, f"user{i}", "x").status_code == 401
        fourth = sign_in(client, "user3", "x")
        assert fourth.status_code == 429
        assert 0 < int(fourth.headers["retry-after"]) <= 600
        assert sign_in(client, "ann", PASSWORD).status_code == 429


@sqlite_only
def test_a_success_resets_the_account_counter(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    for _ in range(2):
        assert sign_in(client, "ann", "wrong").status_code == 401
    assert sign_in(client, "ann", PASSWORD).status_code == 303
    sign_out(client)
    for _ in range(2):
        assert sign_in(client, "ann", "wrong").status_code == 401


@sqlite_only
def test_the_throttle_can_be_turned_off(sync_database: Database, mail: MemoryEmailBackend) -> None:
    app, _ = build(sync_database, mail, throttle=False)
    with TestClient(app) as client:
        for _ in range(8):
            assert sign_in(client, "ann", "wrong").status_code == 401


@sqlite_only
def test_default_throttle(sync_database: Database, mail: MemoryEmailBackend) -> None:
    app, auth = build(sync_database, mail, throttle=None)
    with TestClient(app) as client:
        for _ in range(4):
            assert sign_in(client, "ann", "wrong").status_code == 401
        assert sign_in(client, "ann", "wrong").status_code == 429  # 5 per account
    assert isinstance(auth.throttle, LoginThrottle)


@sqlite_only
def test_password_change_guesses_are_throttled(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    sign_in(client, "ann", PASSWORD)
    token = csrf(client.get("/auth/password/change"))
    statuses = [
        client.post(
            "/auth/password/change",
            data={
                "csrf_token": token,
                "old_password": f"guess {i}",
                "new_password": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        ).status_code
        for i in range(4)
    ]
    assert statuses == [422, 422, 429, 429]


# -- password reset ------------------------------------------------------------------------------


def reset_link(mail: MemoryEmailBackend) -> str:
    assert len(mail.outbox) == 1
    match = re.search(r"http://testserver(/auth/password/reset/\S+)", mail.outbox[0].text)
    assert match, mail.outbox[0].text
    return match.group(1)


def ask_reset(client: TestClient, email: str) -> httpx.Response:
    token = csrf(client.get("/auth/password/reset"))
    return client.post("/auth/password/reset", data={"csrf_token": token, "email": email})


def choose(
    client: TestClient, link: str, password: str, again: str | None = None
) -> httpx.Response:
    page = client.get(link)
    data = {"new_password": password, "new_password2": password if again is None else again}
    token = csrf(page) if page.status_code == 200 else csrf(client.get("/auth/login"))
    return client.post(link, data={"csrf_token": token, **data})


def test_password_reset(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    add_ann(client, sync_database)
    sent = ask_reset(client, "Ann@Example.com")
    assert sent.status_code == 303
    assert sent.headers["location"] == "/auth/password/reset"
    assert flashes(client) == [
        [
            "info",
            "If an account exists for this address, we sent it an e-mail with a link to"
            " choose a new password.",
        ]
    ]
    message = mail.outbox[0]
    assert message.to == ["ann@example.com"]
    assert message.subject == "Reset your password on our site"
    assert message.from_email == "site@example.com"
    link = reset_link(mail)
    assert message.html is not None and f'href="http://testserver{link}"' in message.html
    assert "within 1 hour" in message.text
    assert message.text.startswith("Hello ann,\n")

    page = client.get(link)
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert 'name="new_password"' in page.text

    refused = choose(client, link, "short")
    assert refused.status_code == 422
    assert "at least 8 characters" in refused.text
    assert 'name="new_password"' in refused.text  # the link still works
    assert choose(client, link, NEW_PASSWORD, "other").status_code == 422

    done = choose(client, link, NEW_PASSWORD)
    assert done.status_code == 303
    assert done.headers["location"] == "/auth/login"
    assert flashes(client) == [["success", "Your password has been set. You can sign in now."]]
    assert sign_in(client, "ann", PASSWORD).status_code == 401
    assert sign_in(client, "ann", NEW_PASSWORD).status_code == 303

    # the link is spent
    sign_out(client)
    again = client.get(link)
    assert again.status_code == 400
    assert "invalid, already used or expired" in again.text
    assert 'name="new_password"' not in again.text
    token = csrf(client.get("/auth/login"))
    reuse = client.post(
        link,
        data={
            "csrf_token": token,
            "new_password": "third password!",
            "new_password2": "third password!",
        },
    )
    assert reuse.status_code == 400
    assert sign_in(client, "ann", NEW_PASSWORD).status_code == 303


def test_reset_answers_the_same_for_unknown_addresses(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    add_ann(client, sync_database)
    known = ask_reset(client, "ann@example.com")
    known_flash = flashes(client)
    unknown = ask_reset(client, "nobody@example.com")
    unknown_flash = flashes(client)
    assert (known.status_code, known.headers["location"]) == (
        unknown.status_code,
        unknown.headers["location"],
    )
    assert known_flash == unknown_flash
    assert len(mail.outbox) == 1  # only the real account got mail
    # inactive accounts get nothing either
    client.call(lambda: add_user(sync_database, "off@example.com", is_active=False))
    assert ask_reset(client, "off@example.com").status_code == 303
    assert len(mail.outbox) == 1


@sqlite_only
def test_reset_of_an_invalid_address_is_a_form_error(client: TestClient) -> None:
    response = ask_reset(client, "not an address")
    assert response.status_code == 422
    assert "Enter a valid e-mail address." in response.text


@sqlite_only
def test_expired_reset_link(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    user = add_ann(client, sync_database)
    two_hours_ago = PasswordResetTokens(SECRET, clock=lambda: time.time() - 7200)
    link = f"/auth/password/reset/{two_hours_ago.make(user)}"
    page = client.get(link)
    assert page.status_code == 400
    assert "invalid, already used or expired" in page.text
    assert choose(client, link, NEW_PASSWORD).status_code == 400
    assert sign_in(client, "ann", PASSWORD).status_code == 303  # unchanged


@sqlite_only
def test_forged_reset_links(client: TestClient, sync_database: Database) -> None:
    user = add_ann(client, sync_database)
    other_key = PasswordResetTokens("z" * 40).make(user)
    for token in (other_key, "garbage", "a" * 2000, "e30.x"):
        assert client.get(f"/auth/password/reset/{token}").status_code == 400


@sqlite_only
def test_signing_in_spends_a_pending_reset_link(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    add_ann(client, sync_database)
    ask_reset(client, "ann@example.com")
    link = reset_link(mail)
    assert sign_in(client, "ann", PASSWORD).status_code == 303  # last_login: None -> now
    assert client.get(link).status_code == 400


@sqlite_only
def test_reset_requests_are_limited_per_address(
    sync_database: Database, mail: MemoryEmailBackend
) -> None:
    throttle = LoginThrottle(per_ip_reset=(2, 3600))
    app, _ = build(sync_database, mail, throttle=throttle)
    with TestClient(app) as client:
        add_ann(client, sync_database)
        assert ask_reset(client, "ann@example.com").status_code == 303
        assert ask_reset(client, "nobody@example.com").status_code == 303
        third = ask_reset(client, "ann@example.com")
        assert third.status_code == 429
        assert 0 < int(third.headers["retry-after"]) <= 3600
        assert "Too many requests" in third.text
    assert len(mail.outbox) == 1


@sqlite_only
def test_a_reset_unlocks_the_account(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    add_ann(client, sync_database)
    for _ in range(3):
        sign_in(client, "ann", "wrong")
    assert sign_in(client, "ann", PASSWORD).status_code == 429
    ask_reset(client, "ann@example.com")
    assert choose(client, reset_link(mail), NEW_PASSWORD).status_code == 303
    assert sign_in(client, "ann", NEW_PASSWORD).status_code == 303


@sqlite_only
def test_reset_link_uses_the_configured_site(
    sync_database: Database, mail: MemoryEmailBackend
) -> None:
    app, _ = build(sync_database, mail, site_url="https://accounts.example.com/")
    with TestClient(app) as client:
        add_ann(client, sync_database)
        ask_reset(client, "ann@example.com")
    assert "https://accounts.example.com/auth/password/reset/" in mail.outbox[0].text


@sqlite_only
def test_a_failing_mail_server_does_not_leak(
    sync_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(MemoryEmailBackend):
        async def send(self, *messages: Any) -> int:
            raise ConnectionRefusedError("smtp down")

    app, _ = build(sync_database, Broken())
    with TestClient(app) as client:
        add_ann(client, sync_database)
        response = ask_reset(client, "ann@example.com")
    assert response.status_code == 303  # the same answer as ever
    assert "could not send the password reset e-mail" in caplog.text


# -- templates -------------------------------------------------------------------------------


@sqlite_only
def test_an_app_template_overrides_the_battery_one(
    sync_database: Database, mail: MemoryEmailBackend, tmp_path: Path
) -> None:
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "login.html").write_text(
        "<h1>My own sign-in</h1>{{ csrf_input() }}{{ form_errors|join(',') }}"
    )
    (tmp_path / "auth" / "base.html").write_text(
        "<div class=site>{% block content %}{% endblock %}</div>"
    )
    app = App(debug=True, secret_key=SECRET, templates_dir=str(tmp_path))
    app.install(sync_database)
    app.install(Auth(hasher=FAST_HASHER, pages=True, api=False, email=mail))
    with TestClient(app) as client:
        page = client.get("/auth/login")
        assert page.text.startswith('<h1>My own sign-in</h1><input type="hidden"')
        register_page = client.get("/auth/register")  # extends the overridden base
        assert register_page.text.startswith("<div class=site>")
        assert "Create an account" in register_page.text
