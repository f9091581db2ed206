"""The auth JSON API through HTTP, as a single-page app and a token client use it.

The session cookie is kept by the ``TestClient`` as a browser keeps it; cookie-authenticated
unsafe requests send the token of ``GET /api/auth/csrf`` in ``X-CSRF-Token``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from auth_helpers import PASSWORD, add_user, make_app
from sqlalchemy import select

from trellis import App
from trellis.contrib.auth import Auth, AuthToken, User
from trellis.contrib.auth.flows import FlowError, PasswordPolicy, check_email, check_username
from trellis.contrib.auth.reset import PasswordResetTokens
from trellis.contrib.auth.throttle import LoginThrottle
from trellis.contrib.db import Database
from trellis.contrib.mail import MemoryEmailBackend
from trellis.testing import TestClient

SECRET = "k" * 40
NEW_PASSWORD = "a brand new passphrase"
API = "/api/auth"
SPA_RESET = "https://spa.example/reset?token={token}"
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def build(database: Database, mail: MemoryEmailBackend, **options: Any) -> tuple[App, Auth]:
    options.setdefault("throttle", LoginThrottle(per_account=(3, 900), per_ip=(20, 900)))
    options.setdefault("password_reset_url", SPA_RESET)
    pages = options.pop("pages", False)
    return make_app(database, pages=pages, api=True, email=mail, **options)


@pytest.fixture
def mail() -> MemoryEmailBackend:
    return MemoryEmailBackend()


@pytest.fixture
def client(sync_database: Database, mail: MemoryEmailBackend) -> Iterator[TestClient]:
    app, _ = build(sync_database, mail)
    with TestClient(app) as test_client:
        yield test_client


def add_ann(client: TestClient, database: Database, **fields: Any) -> User:
    fields.setdefault("username", "ann")
    user: User = client.call(lambda: add_user(database, **fields))
    return user


def csrf_header(client: TestClient) -> dict[str, str]:
    response = client.get(f"{API}/csrf")
    assert response.status_code == 200
    return {"X-CSRF-Token": response.json()["csrf_token"]}


def login(client: TestClient, login: str, password: str, **extra: Any) -> httpx.Response:
    headers = csrf_header(client) if "session" in client.cookies else {}
    body = {"login": login, "password": password, **extra}
    return client.post(f"{API}/login", json=body, headers=headers)


def me(client: TestClient, **kwargs: Any) -> httpx.Response:
    return client.get(f"{API}/me", **kwargs)


def errors(response: httpx.Response) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in response.json()["errors"]:
        found.setdefault(".".join(map(str, error["loc"])), []).append(error["msg"])
    return found


# -- the whole journey -------------------------------------------------------------------


def test_register_me_change_password_logout(client: TestClient) -> None:
    created = client.post(
        f"{API}/register",
        json={"email": "Ann@Example.com", "username": "Ann", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    user = created.json()["user"]
    assert user["email"] == "ann@example.com" and user["username"] == "ann"
    assert user["is_active"] is True and user["last_login"] is not None
    assert "password_hash" not in user and "password" not in user
    assert created.json()["token"] is None
    assert "session" in created.cookies  # signed in with the session cookie

    assert me(client).json()["email"] == "ann@example.com"

    # cookie-authenticated and unsafe: the CSRF token is required
    no_token = client.post(
        f"{API}/password/change", json={"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert no_token.status_code == 403
    headers = csrf_header(client)
    wrong = client.post(
        f"{API}/password/change",
        json={"old_password": "wrong", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert errors(wrong) == {"body.old_password": ["The current password is wrong."]}
    weak = client.post(
        f"{API}/password/change",
        json={"old_password": PASSWORD, "new_password": "1234567890"},
        headers=headers,
    )
    assert weak.status_code == 422
    assert errors(weak) == {"body.new_password": ["The password cannot be only digits."]}
    before = dict(client.cookies)
    changed = client.post(
        f"{API}/password/change",
        json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 204
    assert dict(client.cookies) != before  # a new session
    assert me(client).status_code == 200
    # the old CSRF token went with the old session
    stale = client.post(f"{API}/logout", headers=headers)
    assert stale.status_code == 403

    out = client.post(f"{API}/logout", headers=csrf_header(client))
    assert out.status_code == 204
    anonymous = me(client)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert "Bearer" in anonymous.headers["www-authenticate"]

    assert login(client, "ann", PASSWORD).status_code == 401
    signed_in = login(client, "ANN@example.com", NEW_PASSWORD)
    assert signed_in.status_code == 200
    assert signed_in.json()["user"]["username"] == "ann"
    assert me(client).status_code == 200


def test_login_for_a_bearer_token(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    response = login(client, "ann", PASSWORD, token=True, token_name="cli")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["token"]
    assert body["user"]["last_login"] is not None
    assert "set-cookie" not in response.headers  # no session for a token client
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert me(client, headers=bearer).json()["username"] == "ann"
    # a token client needs no CSRF token; logging out revokes the token
    assert client.post(f"{API}/logout", headers=bearer).status_code == 204
    refused = me(client, headers=bearer)
    assert refused.status_code == 401
    assert "invalid" in refused.json()["detail"]


def test_a_login_token_expires(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    auth: Auth = client.app.state.auth  # type: ignore[attr-defined]
    body = login(client, "ann", PASSWORD, token=True).json()
    assert body["expires_in"] == 30 * 86400  # the default lifetime

    async def expires_at() -> Any:
        async with sync_database.transaction() as db:
            row = (await db.execute(select(AuthToken))).scalars().one()
            return row.expires_at

    left = client.call(expires_at) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < left <= timedelta(days=30)

    auth.login_token_lifetime = None  # until revoked
    assert login(client, "ann", PASSWORD, token=True).json()["expires_in"] is None


def test_login_accepts_email_or_username_keys(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    for key in ("login", "email", "username"):
        response = client.post(f"{API}/login", json={key: "ann", "password": PASSWORD})
        assert response.status_code == 200, (key, response.text)
        client.cookies.clear()


def test_duplicates_are_409(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    taken = client.post(
        f"{API}/register",
        json={"email": "ANN@example.com", "username": "ANN", "password": PASSWORD},
    )
    assert taken.status_code == 409
    assert taken.headers["content-type"] == "application/problem+json"
    assert errors(taken) == {
        "body.email": ["An account with this e-mail address exists already."],
        "body.username": ["This user name is taken."],
    }
    assert "session" not in taken.cookies


@sqlite_only
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"email": "x", "password": "short"},
            {
                "body.email": ["Enter a valid e-mail address."],
                "body.password": ["The password must have at least 8 characters."],
            },
        ),
        (
            {"email": "bob@example.com", "password": "bob@example.com"},
            {"body.password": ["The password cannot be your e-mail address or user name."]},
        ),
        (
            {"email": "bob@example.com", "username": "bob@x", "password": PASSWORD},
            {"body.username": ["A user name may contain only letters, digits and . _ + -"]},
        ),
        (
            {"email": "bob\x00@example.com", "password": PASSWORD},
            {"body.email": ["Enter a valid e-mail address."]},
        ),
    ],
)
def test_registration_is_validated(
    client: TestClient, body: dict[str, str], expected: dict[str, list[str]]
) -> None:
    response = client.post(f"{API}/register", json=body)
    assert response.status_code == 422
    assert errors(response) == expected


@sqlite_only
def test_registration_without_a_user_name(client: TestClient) -> None:
    response = client.post(
        f"{API}/register", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    assert response.json()["user"]["username"] is None


@sqlite_only
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/login", {"password": PASSWORD}),
        ("/login", {"login": "", "password": PASSWORD}),
        ("/login", {"login": "ann", "password": ""}),
        ("/login", {"login": "ann", "password": 12345678}),
        ("/login", {"login": "a" * 321, "password": PASSWORD}),
        ("/register", {"email": "bob@example.com"}),
        ("/password/reset", {}),
        ("/password/reset/confirm", {"token": "x"}),
    ],
)
def test_bodies_are_validated(client: TestClient, path: str, body: dict[str, Any]) -> None:
    response = client.post(f"{API}{path}", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][0] == "body"


@sqlite_only
def test_a_form_post_cannot_reach_the_api(client: TestClient, sync_database: Database) -> None:
    # A cross-site page can post forms and text/plain without a CORS pre-flight, not JSON.
    add_ann(client, sync_database)
    form = client.post(f"{API}/login", data={"login": "ann", "password": PASSWORD})
    assert form.status_code == 415
    text = client.post(
        f"{API}/login",
        content=b'{"login": "ann", "password": "' + PASSWORD.encode() + b'"}',
        headers={"content-type": "text/plain"},
    )
    assert text.status_code == 415
    assert me(client).status_code == 401


@sqlite_only
def test_a_cross_site_page_cannot_sign_in_through_the_api(
    client: TestClient, sync_database: Database
) -> None:
    # fetch(url, {method: "POST", mode: "no-cors", body: new Blob([json])}) sends no
    # Content-Type and needs no pre-flight; the browser names the page in Origin
    add_ann(client, sync_database)
    body = b'{"login": "ann", "password": "' + PASSWORD.encode() + b'"}'
    evil = {"Origin": "https://evil.example"}
    forged = client.post(f"{API}/login", content=body, headers=evil)
    assert forged.status_code == 403
    assert "Origin not allowed" in forged.json()["detail"]
    assert "set-cookie" not in forged.headers and me(client).status_code == 401
    new_account = b'{"email": "eve@example.com", "password": "' + PASSWORD.encode() + b'"}'
    assert client.post(f"{API}/register", content=new_account, headers=evil).status_code == 403
    # a token answer sets no cookie, and the other site cannot read it: allowed
    token = client.post(
        f"{API}/login", json={"login": "ann", "password": PASSWORD, "token": True}, headers=evil
    )
    assert token.status_code == 200 and "set-cookie" not in token.headers
    # the site itself, or a client that sends no Origin, signs in
    own = client.post(f"{API}/login", content=body, headers={"Origin": "http://testserver"})
    assert own.status_code == 200 and me(client).status_code == 200


@sqlite_only
def test_password_change_needs_a_user(client: TestClient) -> None:
    response = client.post(
        f"{API}/password/change", json={"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 401


@sqlite_only
def test_password_change_with_a_bearer_token(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    token = login(client, "ann", PASSWORD, token=True).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    response = client.post(
        f"{API}/password/change",
        json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer,
    )
    assert response.status_code == 204
    assert "set-cookie" not in response.headers
    assert login(client, "ann", NEW_PASSWORD).status_code == 200


def test_a_new_password_ends_the_other_bearer_tokens(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    # a thief who signed in through the API keeps nothing once the owner changes or resets
    # the password; API keys (made on purpose, named) stay
    add_ann(client, sync_database)
    auth: Auth = client.app.state.auth  # type: ignore[attr-defined]

    async def new_api_key() -> str:
        async with sync_database.transaction() as db:
            user = await auth.find_user(db, "ann")
            assert user is not None
            return await auth.issue_token(db, user, kind="api_key")

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    mine = login(client, "ann", PASSWORD, token=True).json()["token"]
    thiefs = login(client, "ann", PASSWORD, token=True).json()["token"]
    key = client.call(new_api_key)
    changed = client.post(
        f"{API}/password/change",
        json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(mine),
    )
    assert changed.status_code == 204
    assert me(client, headers=bearer(mine)).status_code == 200  # the token that made the change
    assert me(client, headers=bearer(thiefs)).status_code == 401
    assert me(client, headers={"X-API-Key": key}).status_code == 200

    thiefs = login(client, "ann", NEW_PASSWORD, token=True).json()["token"]
    client.post(f"{API}/password/reset", json={"email": "ann@example.com"})
    done = client.post(
        f"{API}/password/reset/confirm",
        json={"token": reset_token(mail), "new_password": "a third passphrase"},
    )
    assert done.status_code == 204
    assert me(client, headers=bearer(mine)).status_code == 401
    assert me(client, headers=bearer(thiefs)).status_code == 401
    assert me(client, headers={"X-API-Key": key}).status_code == 200


@sqlite_only
def test_logout_without_a_session_is_fine(client: TestClient) -> None:
    assert client.post(f"{API}/logout").status_code == 204


@sqlite_only
def test_csrf_endpoint(client: TestClient) -> None:
    response = client.get(f"{API}/csrf")
    assert response.headers["cache-control"] == "no-store"
    assert len(response.json()["csrf_token"]) > 40
    assert "session" in response.cookies


# -- hostile input and brute force ----------------------------------------------------------


def test_sql_injection_just_fails_the_login(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    for payload in (
        "' OR '1'='1",
        "admin'--",
        "'; DROP TABLE auth_user; --",
        '" OR ""="',
        "ann\x00",
        "%",
    ):
        for body in (
            {"login": payload, "password": payload},
            {"login": "ann", "password": payload},
        ):
            response = client.post(f"{API}/login", json=body)
            assert response.status_code in (401, 429), (body, response.text)
        client.call(client.app.state.auth.throttle.unlock, "ann", payload)  # type: ignore[attr-defined]
    assert login(client, "ann", PASSWORD).status_code == 200


@sqlite_only
def test_brute_force_gets_429(client: TestClient, sync_database: Database) -> None:
    add_ann(client, sync_database)
    assert login(client, "ann", "guess 1").status_code == 401
    assert login(client, "ann", "guess 2").status_code == 401
    third = login(client, "ann", "guess 3")
    assert third.status_code == 429
    assert third.headers["content-type"] == "application/problem+json"
    assert 0 < int(third.headers["retry-after"]) <= 900
    assert third.json()["status"] == 429
    locked = login(client, "ann", PASSWORD)  # no oracle: the right password is not checked
    assert locked.status_code == 429
    assert me(client).status_code == 401


@sqlite_only
def test_brute_force_from_one_address_gets_429(
    sync_database: Database, mail: MemoryEmailBackend
) -> None:
    app, _ = build(sync_database, mail, throttle=LoginThrottle(per_ip=(3, 300)))
    with TestClient(app) as client:
        assert login(client, "a", "x").status_code == 401
        assert login(client, "b", "x").status_code == 401
        third = login(client, "c", "x")
        assert third.status_code == 429
        assert 0 < int(third.headers["retry-after"]) <= 300


@sqlite_only
def test_page_and_api_share_the_counters(sync_database: Database, mail: MemoryEmailBackend) -> None:
    app, _ = build(sync_database, mail, pages=True)
    with TestClient(app) as client:
        add_ann(client, sync_database)
        page = client.get("/auth/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        for _ in range(2):
            response = client.post(
                "/auth/login",
                data={"csrf_token": token.group(1), "login": "ann", "password": "wrong"},
            )
            assert response.status_code == 401
        assert login(client, "ann", "wrong").status_code == 429


# -- password reset ------------------------------------------------------------------------


def reset_token(mail: MemoryEmailBackend) -> str:
    assert len(mail.outbox) == 1
    match = re.search(r"https://spa\.example/reset\?token=(\S+)", mail.outbox[0].text)
    assert match, mail.outbox[0].text
    return match.group(1)


def test_password_reset(
    client: TestClient, sync_database: Database, mail: MemoryEmailBackend
) -> None:
    add_ann(client, sync_database)
    asked = client.post(f"{API}/password/reset", json={"email": "ann@example.com"})
    assert asked.status_code == 202
    unknown = client.post(f"{API}/password/reset", json={"email": "nobody@example.com"})
    assert unknown.status_code == 202
    assert asked.json() == unknown.json()
    assert "If an account exists" in asked.json()["detail"]
    token = reset_token(mail)  # only one mail: the real account's

    weak = client.post(
        f"{API}/password/reset/confirm", json={"token": token, "new_password": "ann"}
    )
    assert weak.status_code == 422
    assert "body.new_password" in errors(weak)
    done = client.post(
        f"{API}/password/reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 204
    assert login(client, "ann", PASSWORD).status_code == 401
    assert login(client, "ann", NEW_PASSWORD).status_code == 200

    client.cookies.clear()  # a visitor without a session: no CSRF token needed
    again = client.post(
        f"{API}/password/reset/confirm", json={"token": token, "new_password": "another one!"}
    )
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"
    assert "used already" in again.json()["detail"]
    assert errors(again) == {"body.token": [again.json()["detail"]]}


@sqlite_only
def test_expired_and_forged_reset_tokens(client: TestClient, sync_database: Database) -> None:
    user = add_ann(client, sync_database)
    old = PasswordResetTokens(SECRET, clock=lambda: time.time() - 3601).make(user)
    expired = client.post(
        f"{API}/password/reset/confirm", json={"token": old, "new_password": NEW_PASSWORD}
    )
    assert expired.status_code == 400
    assert expired.json()["detail"] == "This password reset link has expired."
    forged = PasswordResetTokens("z" * 40).make(user)
    for token in (forged, "x", ""):
        response = client.post(
            f"{API}/password/reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert response.status_code == 400
        assert response.json()["detail"] == "This password reset link is not valid."
    assert login(client, "ann", PASSWORD).status_code == 200


@sqlite_only
def test_reset_token_lifetime_is_configurable(
    sync_database: Database, mail: MemoryEmailBackend
) -> None:
    app, _ = build(sync_database, mail, password_reset_max_age=600)
    with TestClient(app) as client:
        user = add_ann(client, sync_database)
        client.post(f"{API}/password/reset", json={"email": "ann@example.com"})
        assert "within 10 minutes" in mail.outbox[0].text
        eleven_minutes = PasswordResetTokens(SECRET, clock=lambda: time.time() - 660).make(user)
        response = client.post(
            f"{API}/password/reset/confirm",
            json={"token": eleven_minutes, "new_password": NEW_PASSWORD},
        )
        assert response.status_code == 400


@sqlite_only
def test_reset_requests_are_limited_per_address(
    sync_database: Database, mail: MemoryEmailBackend
) -> None:
    app, _ = build(sync_database, mail, throttle=LoginThrottle(per_ip_reset=(1, 3600)))
    with TestClient(app) as client:
        add_ann(client, sync_database)
        assert (
            client.post(f"{API}/password/reset", json={"email": "ann@example.com"}).status_code
            == 202
        )
        limited = client.post(f"{API}/password/reset", json={"email": "ann@example.com"})
        assert limited.status_code == 429
        assert 0 < int(limited.headers["retry-after"]) <= 3600
    assert len(mail.outbox) == 1


@sqlite_only
def test_reset_link_defaults_to_the_page(sync_database: Database, mail: MemoryEmailBackend) -> None:
    app, _ = build(sync_database, mail, pages=True, password_reset_url=None)
    with TestClient(app) as client:
        add_ann(client, sync_database)
        client.post(f"{API}/password/reset", json={"email": "ann@example.com"})
        link = re.search(r"http://testserver(/auth/password/reset/\S+)", mail.outbox[0].text)
        assert link
        assert client.get(link.group(1)).status_code == 200


# -- the API description ----------------------------------------------------------------------


@sqlite_only
def test_openapi_describes_the_api_not_the_pages(
    sync_database: Database, mail: MemoryEmailBackend
) -> None:
    app, _ = build(sync_database, mail, pages=True)
    with TestClient(app):
        schema = app.openapi()
    paths = schema["paths"]
    assert not any(path.startswith("/auth/") for path in paths)
    login_op = paths["/api/auth/login"]["post"]
    ref = login_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/LoginIn")
    assert {"200", "401", "422", "429"} <= set(login_op["responses"])
    assert "auth" in login_op["tags"]
    components = schema["components"]["schemas"]
    assert {"LoginIn", "LoginOut", "UserOut", "RegisterIn", "PasswordChangeIn"} <= set(components)
    assert "password_hash" not in components["UserOut"]["properties"]
    assert set(paths) >= {
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/register",
        "/api/auth/password/change",
        "/api/auth/password/reset",
        "/api/auth/password/reset/confirm",
        "/api/auth/me",
        "/api/auth/csrf",
    }
    assert "409" in paths["/api/auth/register"]["post"]["responses"]
    assert "201" in paths["/api/auth/register"]["post"]["responses"]


@sqlite_only
def test_registration_can_be_turned_off(sync_database: Database, mail: MemoryEmailBackend) -> None:
    app, _ = build(sync_database, mail, registration=False)
    with TestClient(app) as client:
        response = client.post(
            f"{API}/register", json={"email": "bob@example.com", "password": PASSWORD}
        )
        assert response.status_code in (404, 405)


# -- the flows' rules ------------------------------------------------------------------------


def test_password_policy() -> None:
    policy = PasswordPolicy()
    assert policy.check(PASSWORD, email="ann@example.com", username="ann") == []
    assert policy.check("ANN", username="ann") == [
        "The password must have at least 8 characters.",
        "The password cannot be your e-mail address or user name.",
    ]
    assert policy.check("annabelle", email="Annabelle@example.com") == [
        "The password cannot be your e-mail address or user name."  # the address's local part
    ]
    assert policy.check("12345678") == ["The password cannot be only digits."]
    assert PasswordPolicy(allow_numeric=True).check("12345678") == []
    assert PasswordPolicy(min_length=12).check("elevenchars") == [
        "The password must have at least 12 characters."
    ]
    assert PasswordPolicy(max_length=10).check("x" * 11) == [
        "The password must have at most 10 characters."
    ]


@sqlite_only
def test_a_custom_password_policy(sync_database: Database, mail: MemoryEmailBackend) -> None:
    app, _ = build(sync_database, mail, password_policy=PasswordPolicy(min_length=12))
    with TestClient(app) as client:
        response = client.post(
            f"{API}/register", json={"email": "bob@example.com", "password": "elevenchars"}
        )
        assert errors(response) == {
            "body.password": ["The password must have at least 12 characters."]
        }


def test_email_and_username_checks() -> None:
    assert check_email("  Ann@Example.COM ") == ("ann@example.com", [])
    for bad in ("ann", "ann@", "@example.com", "a b@example.com", "ann@example", "a@b@c.d"):
        assert check_email(bad)[1] == ["Enter a valid e-mail address."], bad
    assert check_email("   ")[1] == ["Enter an e-mail address."]
    assert check_username(" Ann.B_1+x-y ") == ("ann.b_1+x-y", [])
    assert check_username("\uff41\uff4e\uff4e") == ("ann", [])  # full width folds
    assert check_username("ann@example.com")[1]
    assert check_username("")[1] == ["Enter a user name."]


def test_flow_error() -> None:
    error = FlowError({"": ["Whole form."], "email": ["Bad.", "Worse."]}, 409)
    assert error.form_errors() == ["Whole form."]
    assert error.field_errors() == {"email": ["Bad.", "Worse."]}
    assert error.status == 409
    assert str(error) == "Whole form.; Bad.; Worse."
