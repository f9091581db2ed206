"""Attacks on the newsroom example, one per test, each asserting the safe outcome.

CSRF, session fixation, tampered and expired sessions, forged JWTs, reuse of a password reset
link, cross-site scripting, SQL injection, password guessing and open redirects, all against
the example app as it ships (production mode, SQLite file per test).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from markupsafe import escape
from sqlalchemy import select

import trellis.sessions
from test_example_newsroom import (
    HTML,
    PASSWORD,
    SECRET,
    article_id,
    csrf,
    csrf_header,
    forget_newsroom,
    load_newsroom,
    make_app,
    make_editor,
    register,
    sign_in,
    sign_out,
    write_draft,
)
from trellis.contrib.auth import User
from trellis.contrib.mail import MemoryEmailBackend
from trellis.sessions import MemorySessionBackend
from trellis.testing import TestClient

COOKIE = "session"


@pytest.fixture(scope="module")
def newsroom() -> Iterator[ModuleType]:
    module = load_newsroom()
    try:
        yield module
    finally:
        forget_newsroom()


@pytest.fixture
def mail() -> MemoryEmailBackend:
    return MemoryEmailBackend()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'newsroom.db'}"


@pytest.fixture
def client(newsroom: ModuleType, url: str, mail: MemoryEmailBackend) -> Iterator[TestClient]:
    with TestClient(make_app(newsroom, url, mail)) as test_client:
        yield test_client


def replay(
    client: TestClient, cookie: str, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """A request with ``cookie`` as the session cookie (and no other), from another browser."""
    saved = httpx.Cookies(client.cookies)
    client.cookies.clear()
    try:
        headers = {"cookie": f"{COOKIE}={cookie}", **kwargs.pop("headers", {})}
        return client.request(method, path, headers=headers, **kwargs)
    finally:
        client.cookies = saved


def signed_in_as(client: TestClient, cookie: str) -> str | None:
    """Whose session ``cookie`` is (``None``: nobody's)."""
    me = replay(client, cookie, "GET", "/api/auth/me")
    assert me.status_code in (200, 401), me.text
    return me.json()["username"] if me.status_code == 200 else None


def my_titles(client: TestClient) -> list[str]:
    response = client.get("/api/articles/mine")
    assert response.status_code == 200, response.text
    return [a["title"] for a in response.json()]


def foreign_token(client: TestClient) -> str:
    """A genuine CSRF token, of another browser's session."""
    saved = httpx.Cookies(client.cookies)
    client.cookies.clear()
    try:
        return str(client.get("/api/auth/csrf").json()["csrf_token"])
    finally:
        client.cookies = saved


# --- cross-site request forgery ---------------------------------------------------------------


@pytest.mark.parametrize("token", ["missing", "wrong", "another session's"])
def test_a_form_post_without_the_right_csrf_token_is_refused(
    client: TestClient, token: str
) -> None:
    register(client, "ann")
    data = {"title": "Forged", "body": "by evil.example"}
    if token == "wrong":
        data["csrf_token"] = "A" * 64
    elif token == "another session's":
        data["csrf_token"] = foreign_token(client)
    response = client.post("/articles", data=data, headers=HTML)
    assert response.status_code == 403
    assert "CSRF token" in response.text
    assert my_titles(client) == []


@pytest.mark.parametrize("token", ["missing", "wrong", "another session's"])
def test_an_api_request_with_the_cookie_and_no_right_csrf_token_is_refused(
    client: TestClient, token: str
) -> None:
    register(client, "ann")
    draft = article_id(write_draft(client, "Ann's story"))
    headers = {}
    if token == "wrong":
        headers["X-CSRF-Token"] = "A" * 64
    elif token == "another session's":
        headers["X-CSRF-Token"] = foreign_token(client)
    created = client.post("/api/articles", json={"title": "Forged"}, headers=headers)
    assert created.status_code == 403
    assert created.json()["detail"].startswith("CSRF token")
    patched = client.patch(f"/api/articles/{draft}", json={"title": "Forged"}, headers=headers)
    assert patched.status_code == 403
    assert my_titles(client) == ["Ann's story"]


@pytest.mark.parametrize(
    "origin", [{"origin": "https://evil.example"}, {"referer": "https://evil.example/page"}]
)
def test_a_cross_origin_post_is_refused_even_with_a_token(
    client: TestClient, origin: dict[str, str]
) -> None:
    register(client, "ann")
    form = client.get("/articles/new")
    forged = client.post(
        "/articles", data={"csrf_token": csrf(form), "title": "Forged"}, headers=origin
    )
    assert forged.status_code == 403
    assert "Origin not allowed" in forged.text
    assert my_titles(client) == []


def test_a_forged_login_is_refused(client: TestClient) -> None:
    """Login CSRF: a hostile page signing the visitor into the attacker's account."""
    register(client, "mallory")
    sign_out(client)
    client.cookies.clear()
    forged = client.post("/auth/login", data={"login": "mallory", "password": PASSWORD})
    assert forged.status_code == 403
    assert client.get("/api/auth/me").status_code == 401


# --- sessions ---------------------------------------------------------------------------------


def test_session_fixation_with_signed_cookies(client: TestClient) -> None:
    register(client, "ann")
    sign_out(client)
    # an anonymous session (with a CSRF secret): the cookie an attacker plants
    planted_token = client.get("/api/auth/csrf").json()["csrf_token"]
    planted = client.cookies[COOKIE]
    assert sign_in(client, "ann").status_code == 303
    assert client.cookies[COOKIE] != planted  # rotated at login
    assert signed_in_as(client, client.cookies[COOKIE]) == "ann"
    assert signed_in_as(client, planted) is None
    # ...and a CSRF token the attacker read from the planted session is worthless now
    headers = {"X-CSRF-Token": planted_token}
    assert client.post("/api/articles", json={"title": "x"}, headers=headers).status_code == 403
    assert my_titles(client) == []


@pytest.mark.parametrize("store", ["memory", "database"])
def test_session_fixation_with_a_server_side_store(
    newsroom: ModuleType, url: str, mail: MemoryEmailBackend, store: str
) -> None:
    backend: Any = MemorySessionBackend() if store == "memory" else "database"
    with TestClient(make_app(newsroom, url, mail, session_store=backend)) as client:
        sessions = client.app.state.session_store  # type: ignore[attr-defined]
        register(client, "ann")
        sign_out(client)
        client.get("/auth/login")
        planted = client.cookies[COOKIE]
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", planted)  # an id, the data is on the server
        assert client.call(sessions.load, planted) is not None
        assert sign_in(client, "ann").status_code == 303
        current = client.cookies[COOKIE]
        assert current != planted
        assert client.call(sessions.load, planted) is None  # the old id no longer exists
        assert signed_in_as(client, planted) is None
        assert signed_in_as(client, current) == "ann"

        # signing out ends every copy of the cookie, not only the browser's own
        stolen = current
        sign_out(client)
        assert client.call(sessions.load, stolen) is None
        assert signed_in_as(client, stolen) is None
        assert replay(client, stolen, "GET", "/drafts", headers=HTML).status_code == 303


def _flipped(value: str, index: int) -> str:
    char = value[index]
    return value[:index] + ("B" if char == "A" else "A") + value[index + 1 :]


@pytest.mark.parametrize("store", ["cookie", "memory"])
def test_a_tampered_session_cookie_is_anonymous(
    newsroom: ModuleType, url: str, mail: MemoryEmailBackend, store: str
) -> None:
    backend: Any = MemorySessionBackend() if store == "memory" else "cookie"
    with TestClient(make_app(newsroom, url, mail, session_store=backend)) as client:
        register(client, "ann")
        cookie = client.cookies[COOKIE]
        assert signed_in_as(client, cookie) == "ann"
        positions = [i for i, c in enumerate(cookie) if c.isalnum()]
        for index in (positions[0], positions[len(positions) // 2], positions[-3]):
            tampered = _flipped(cookie, index)
            assert signed_in_as(client, tampered) is None, index
            page = replay(client, tampered, "GET", "/drafts", headers=HTML)
            assert page.status_code == 303  # to the login page
        for broken in (cookie[:-1], cookie + "A", cookie[: len(cookie) // 2], "", "x" * 5000):
            assert signed_in_as(client, broken) is None
        assert signed_in_as(client, cookie) == "ann"  # the genuine one still works


def test_an_expired_session_cookie_is_anonymous(
    newsroom: ModuleType, url: str, mail: MemoryEmailBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_700_000_000.0]
    monkeypatch.setattr(trellis.sessions, "_now", lambda: now[0])
    with TestClient(make_app(newsroom, url, mail, session_max_age=600)) as client:
        register(client, "ann")
        cookie = client.cookies[COOKIE]
        now[0] += 590
        assert signed_in_as(client, cookie) == "ann"  # ten minutes, nearly
        now[0] += 20
        # 610 s after it was set: the browser would have dropped it; the server refuses it too
        assert signed_in_as(client, cookie) is None
        assert replay(client, cookie, "GET", "/drafts", headers=HTML).status_code == 303


# --- JWTs -------------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(newsroom: ModuleType, user_id: int, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + 300,
        "iss": newsroom.JWT_ISSUER,
        "aud": newsroom.JWT_AUDIENCE,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _forge(newsroom: ModuleType, attack: str, user_id: int) -> str:
    key = newsroom.jwt_key(SECRET)  # the real key: only the attack itself differs
    kid = {"kid": "newsroom-1"}

    def sign(claims: dict[str, Any], secret: str = key, algorithm: str = "HS256") -> str:
        return pyjwt.encode(claims, secret, algorithm=algorithm, headers=kid)

    now = int(time.time())
    claims = _claims(newsroom, user_id)
    if attack == "valid":
        return sign(claims)
    if attack == "alg none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT', **kid})}.{_b64(claims)}."
    if attack == "alg none, no kid":
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    if attack == "wrong key":
        return sign(claims, secret="an-attacker-chosen-secret-" + "x" * 40)
    if attack == "other algorithm":
        return sign(claims, algorithm="HS512")
    if attack == "unknown kid":
        return pyjwt.encode(claims, key, algorithm="HS256", headers={"kid": "attacker"})
    if attack == "wrong audience":
        return sign(_claims(newsroom, user_id, aud="another-api"))
    if attack == "no audience":
        return sign(_claims(newsroom, user_id, aud=None))
    if attack == "wrong issuer":
        return sign(_claims(newsroom, user_id, iss="https://evil.example"))
    if attack == "expired":
        return sign(_claims(newsroom, user_id, iat=now - 1000, exp=now - 100))
    if attack == "no expiry":
        return sign(_claims(newsroom, user_id, exp=None))
    if attack == "not yet valid":
        return sign(_claims(newsroom, user_id, nbf=now + 600))
    if attack == "someone else (payload swapped)":
        header, _, signature = sign(claims).split(".")
        return f"{header}.{_b64(_claims(newsroom, user_id + 1))}.{signature}"
    raise AssertionError(attack)


@pytest.mark.parametrize(
    "attack",
    [
        "alg none",
        "alg none, no kid",
        "wrong key",
        "other algorithm",
        "unknown kid",
        "wrong audience",
        "no audience",
        "wrong issuer",
        "expired",
        "no expiry",
        "not yet valid",
        "someone else (payload swapped)",
    ],
)
def test_a_forged_or_stale_jwt_is_401(
    client: TestClient, newsroom: ModuleType, attack: str
) -> None:
    register(client, "ann")
    sign_out(client)
    register(client, "bob")  # user_id + 1: whom the swapped payload names
    client.cookies.clear()
    ann = api_user_id(client, "ann")
    valid = {"authorization": f"Bearer {_forge(newsroom, 'valid', ann)}"}
    assert client.get("/api/articles/mine", headers=valid).status_code == 200  # the control
    forged = {"authorization": f"Bearer {_forge(newsroom, attack, ann)}"}
    for response in (
        client.get("/api/articles/mine", headers=forged),
        client.post("/api/articles", json={"title": "Forged"}, headers=forged),
        client.get("/drafts", headers={**forged, **HTML}),
    ):
        assert response.status_code == 401, response.text
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert client.get("/api/articles/mine", headers=valid).json() == []


def api_user_id(client: TestClient, login: str) -> int:
    token = client.post("/api/token", json={"login": login, "password": PASSWORD})
    assert token.status_code == 200, token.text
    me = client.get(
        "/api/auth/me", headers={"authorization": f"Bearer {token.json()['access_token']}"}
    )
    return int(me.json()["id"])


def test_a_jwt_from_before_a_password_change_is_401(
    client: TestClient, newsroom: ModuleType
) -> None:
    register(client, "ann")
    client.cookies.clear()
    backdate(client, "ann", 60)  # she registered a minute ago
    ann = api_user_id(client, "ann")
    now = int(time.time())
    # a genuine token, stolen ten seconds ago; then ann changes her password
    stolen = pyjwt.encode(
        _claims(newsroom, ann, iat=now - 10),
        newsroom.jwt_key(SECRET),
        algorithm="HS256",
        headers={"kid": "newsroom-1"},
    )
    bearer = {"authorization": f"Bearer {stolen}"}
    assert client.get("/api/articles/mine", headers=bearer).status_code == 200
    changed = client.post(
        "/api/auth/password/change",
        json={"old_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=bearer,
    )
    assert changed.status_code == 204, changed.text
    assert client.get("/api/articles/mine", headers=bearer).status_code == 401


def backdate(client: TestClient, username: str, seconds: float) -> None:
    """Move the user's registration (password set, last sign-in) ``seconds`` into the past."""
    database = client.app.state.database  # type: ignore[attr-defined]
    when = datetime.fromtimestamp(time.time() - seconds, UTC)

    async def move() -> None:
        async with database.transaction() as session:
            user = (await session.scalars(select(User).where(User.username == username))).one()
            user.password_changed_at = user.last_login = when

    client.call(move)


# --- password reset ---------------------------------------------------------------------------


def _reset_token(client: TestClient, mail: MemoryEmailBackend, email: str) -> str:
    mail.clear()
    asked = client.post("/api/auth/password/reset", json={"email": email})
    assert asked.status_code == 202, asked.text
    assert len(mail.outbox) == 1
    match = re.search(r"http://testserver/auth/password/reset/(\S+)", mail.outbox[0].text)
    assert match, mail.outbox[0].text
    return match.group(1)


def test_a_password_reset_link_works_once(client: TestClient, mail: MemoryEmailBackend) -> None:
    register(client, "ann")
    client.cookies.clear()
    token = _reset_token(client, mail, "ann@example.com")
    first = client.post(
        "/api/auth/password/reset/confirm",
        json={"token": token, "new_password": "first new password"},
    )
    assert first.status_code == 204, first.text
    second = client.post(
        "/api/auth/password/reset/confirm",
        json={"token": token, "new_password": "the attacker's password"},
    )
    assert second.status_code == 400
    page = client.get(f"/auth/password/reset/{token}")
    assert page.status_code == 400
    assert "invalid, already used or expired" in page.text
    posted = client.post(
        f"/auth/password/reset/{token}",
        data={
            "csrf_token": client.get("/api/auth/csrf").json()["csrf_token"],
            "new_password": "the attacker's password",
            "new_password2": "the attacker's password",
        },
    )
    assert posted.status_code == 400
    assert sign_in(client, "ann", "the attacker's password").status_code == 401
    assert sign_in(client, "ann", "first new password").status_code == 303


def test_a_password_reset_link_dies_when_the_owner_signs_in(
    client: TestClient, mail: MemoryEmailBackend
) -> None:
    register(client, "ann")
    backdate(client, "ann", 60)  # her last sign-in was a minute ago
    client.cookies.clear()
    token = _reset_token(client, mail, "ann@example.com")
    assert sign_in(client, "ann").status_code == 303  # ann remembered her password after all
    client.cookies.clear()
    used = client.post(
        "/api/auth/password/reset/confirm",
        json={"token": token, "new_password": "the attacker's password"},
    )
    assert used.status_code == 400


def test_a_password_reset_link_for_another_token_is_refused(client: TestClient) -> None:
    register(client, "ann")
    client.cookies.clear()
    for token in ("x", "e30.e30.e30", "A" * 200):
        forged = client.post(
            "/api/auth/password/reset/confirm",
            json={"token": token, "new_password": "the attacker's password"},
        )
        assert forged.status_code == 400, token


# --- cross-site scripting -----------------------------------------------------------------------

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "'><svg onload=alert(1)>"]


def _shows_escaped(page: httpx.Response, payload: str) -> None:
    assert payload not in page.text
    assert str(escape(payload)) in page.text


@pytest.mark.parametrize("payload", XSS)
def test_xss_in_an_article_is_shown_as_text(client: TestClient, payload: str) -> None:
    register(client, "ann")
    make_editor(client, "ann")
    draft = article_id(write_draft(client, f"Title {payload}", f"Body {payload}"))
    for path in (f"/articles/{draft}", f"/articles/{draft}/edit", "/drafts"):
        page = client.get(path)
        assert page.status_code == 200
        _shows_escaped(page, payload)
    page = client.get(f"/articles/{draft}")
    client.post(f"/articles/{draft}/publish", data={"csrf_token": csrf(page)})
    front = client.get("/")
    _shows_escaped(front, payload)
    assert "Content-Security-Policy" in front.headers
    assert "default-src 'self'" in front.headers["content-security-policy"]
    found = client.get("/", params={"q": "Title"})
    _shows_escaped(found, payload)
    data = client.get(f"/api/articles/{draft}")
    assert data.headers["content-type"] == "application/json"
    assert data.headers["x-content-type-options"] == "nosniff"
    assert data.json()["title"] == f"Title {payload}"  # stored as typed, escaped when shown


@pytest.mark.parametrize("payload", XSS)
def test_xss_in_the_search_box_is_shown_as_text(client: TestClient, payload: str) -> None:
    page = client.get("/", params={"q": payload})
    assert page.status_code == 200
    _shows_escaped(page, payload)


@pytest.mark.parametrize("payload", XSS)
def test_xss_in_the_account_forms_is_shown_as_text(client: TestClient, payload: str) -> None:
    refused = register(client, payload, email=f"{payload}@example.com")
    assert refused.status_code == 422  # not a user name, nor an address
    _shows_escaped(refused, payload)
    form = client.get("/auth/login")
    wrong = client.post(
        "/auth/login", data={"csrf_token": csrf(form), "login": payload, "password": "x"}
    )
    assert wrong.status_code == 401
    _shows_escaped(wrong, payload)
    next_page = client.get("/auth/login", params={"next": f"/{payload}"})
    assert payload not in next_page.text


# --- SQL injection ------------------------------------------------------------------------------

SQL = [
    "' OR 1=1 --",
    "admin'--",
    "%' OR '1'='1",
    "') UNION SELECT id, password_hash FROM auth_user --",
    "1; DROP TABLE newsroom_article; --",
]


@pytest.fixture
def newsroom_with_data(client: TestClient) -> TestClient:
    """One published article, one draft, and a user called admin."""
    register(client, "admin")
    sign_out(client)
    register(client, "ann")
    make_editor(client, "ann")
    published = article_id(write_draft(client, "Budget vote", "The council voted."))
    page = client.get(f"/articles/{published}")
    client.post(f"/articles/{published}/publish", data={"csrf_token": csrf(page)})
    write_draft(client, "Secret plan", "Not for the public.")
    sign_out(client)
    return client


@pytest.mark.parametrize("payload", SQL)
def test_sql_in_the_search_is_just_text(newsroom_with_data: TestClient, payload: str) -> None:
    client = newsroom_with_data
    found = client.get("/api/articles", params={"q": payload})
    assert found.status_code == 200
    assert found.json() == []  # no article contains these words: no extra rows
    page = client.get("/", params={"q": payload})
    assert page.status_code == 200
    assert "No article matches" in page.text and "Secret plan" not in page.text
    everything = client.get("/api/articles").json()  # the table is still there, unchanged
    assert [a["title"] for a in everything] == ["Budget vote"]


@pytest.mark.parametrize("payload", SQL)
def test_sql_in_the_login_fields_signs_nobody_in(
    newsroom_with_data: TestClient, payload: str
) -> None:
    client = newsroom_with_data
    form = client.get("/auth/login")
    for login, password in ((payload, payload), (payload, "x"), ("admin", payload)):
        page = client.post(
            "/auth/login",
            data={"csrf_token": csrf(form), "login": login, "password": password},
        )
        assert page.status_code == 401, (login, password)
    client.cookies.clear()  # an API client: no session cookie, no CSRF token
    api = client.post("/api/auth/login", json={"login": payload, "password": payload})
    assert api.status_code == 401
    token = client.post("/api/token", json={"login": payload, "password": payload})
    assert token.status_code == 401
    assert client.get("/api/auth/me").status_code == 401


def test_sql_in_a_path_is_no_route(newsroom_with_data: TestClient) -> None:
    client = newsroom_with_data
    for path in ("/api/articles/1 OR 1=1", "/api/articles/1;--", "/articles/1'--"):
        assert client.get(path).status_code == 404


# --- guessing passwords -------------------------------------------------------------------------


def test_guessing_one_accounts_password_is_throttled(
    client: TestClient, newsroom: ModuleType
) -> None:
    register(client, "ann")
    sign_out(client)
    attempts, window = newsroom.PER_ACCOUNT
    statuses = [sign_in(client, "ann", f"guess {i}").status_code for i in range(attempts)]
    assert statuses == [401] * (attempts - 1) + [429]
    locked = sign_in(client, "ANN", PASSWORD)  # the right one, in capitals: the same account
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= window
    # the API and the JWT endpoint count against the same account
    client.cookies.clear()
    api = client.post("/api/auth/login", json={"login": "ann", "password": PASSWORD})
    assert api.status_code == 429 and "retry-after" in api.headers
    jwt = client.post("/api/token", json={"login": "Ann", "password": PASSWORD})
    assert jwt.status_code == 429 and "retry-after" in jwt.headers


def test_guessing_through_the_api_is_throttled(client: TestClient, newsroom: ModuleType) -> None:
    register(client, "ann")
    client.cookies.clear()
    attempts, window = newsroom.PER_ACCOUNT
    guesses = [
        client.post("/api/token", json={"login": "ann", "password": f"guess {i}"})
        for i in range(attempts)
    ]
    assert [g.status_code for g in guesses] == [401] * (attempts - 1) + [429]
    assert 0 < int(guesses[-1].headers["retry-after"]) <= window
    right = client.post("/api/auth/login", json={"login": "ann", "password": PASSWORD})
    assert right.status_code == 429


def test_guessing_many_accounts_from_one_address_is_throttled(
    client: TestClient, newsroom: ModuleType
) -> None:
    register(client, "ann")
    client.cookies.clear()
    attempts, window = newsroom.PER_IP
    statuses = [
        client.post(
            "/api/auth/login", json={"login": f"user{i}@example.com", "password": "guess"}
        ).status_code
        for i in range(attempts)
    ]
    assert statuses == [401] * (attempts - 1) + [429]
    locked = client.post("/api/auth/login", json={"login": "ann", "password": PASSWORD})
    assert locked.status_code == 429  # a real account, the right password, the same address
    assert 0 < int(locked.headers["retry-after"]) <= window


# --- open redirects -----------------------------------------------------------------------------

OFF_SITE = [
    "//evil.example",
    "https://evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://testserver@evil.example/",
    "/%2F/evil.example",
    "javascript:alert(1)",
    " //evil.example",
    "http://testserver.evil.example/",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:
    register(client, "ann")
    sign_out(client)
    form = client.get("/auth/login", params={"next": target})
    assert 'name="next" value=""' in form.text  # not even carried in the form
    signed_in = client.post(
        "/auth/login",
        data={"csrf_token": csrf(form), "login": "ann", "password": PASSWORD, "next": target},
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/drafts"  # the app's default


@pytest.mark.parametrize("target", OFF_SITE)
def test_registration_never_redirects_off_site(client: TestClient, target: str) -> None:
    form = client.get("/auth/register", params={"next": target})
    created = client.post(
        "/auth/register",
        data={
            "csrf_token": csrf(form),
            "email": "ann@example.com",
            "username": "ann",
            "password": PASSWORD,
            "password2": PASSWORD,
            "next": target,
        },
    )
    assert created.status_code == 303
    assert created.headers["location"] == "/drafts"


def test_a_redirect_within_the_site_is_followed(client: TestClient) -> None:
    register(client, "ann")
    sign_out(client)
    assert sign_in(client, "ann", next="/articles/new?from=email").headers["location"] == (
        "/articles/new?from=email"
    )


def test_the_attacks_left_no_trace(client: TestClient) -> None:
    """A control: the helpers above really sign in and write (the refusals mean something)."""
    register(client, "ann")
    assert (
        client.post(
            "/api/articles", json={"title": "Real"}, headers=csrf_header(client)
        ).status_code
        == 201
    )
    assert my_titles(client) == ["Real"]
