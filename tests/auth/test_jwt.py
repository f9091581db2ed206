"""JWTs: configuration checks, and every forged or stale token refused with 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from auth_helpers import add_user, create_auth_tables, make_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trellis.contrib.auth import CurrentUser, JWTConfig, User
from trellis.contrib.auth.jwt import ExpiredJWTError, InvalidJWTError
from trellis.contrib.db import Database
from trellis.exceptions import ConfigurationError
from trellis.testing import AsyncTestClient

KEY = "k" * 32
OTHER_KEY = "o" * 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token made by hand: any header, signed with HMAC-SHA256 by ``secret`` (or unsigned)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": "1", "iat": now, "exp": now + 60}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


@pytest.fixture(scope="module")
def rsa_pem() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


# -- configuration -------------------------------------------------------------------------------


def test_config_refuses_what_would_be_unsafe(rsa_pem: tuple[bytes, bytes]) -> None:
    public = rsa_pem[1]
    with pytest.raises(ConfigurationError, match="at least one key"):
        JWTConfig(keys={})
    with pytest.raises(ConfigurationError, match="refuses the 'none' algorithm"):
        JWTConfig(keys={"k": KEY}, algorithms=("HS256", "none"))
    with pytest.raises(ConfigurationError, match="unknown JWT algorithm 'HS257'"):
        JWTConfig(keys={"k": KEY}, algorithms=("HS257",))
    with pytest.raises(ConfigurationError, match=r"too weak.*HMAC key is 10 bytes"):
        JWTConfig(keys={"k": "short12345"})
    with pytest.raises(ConfigurationError, match="fits none of the algorithms HS256"):
        JWTConfig(keys={"k": public})  # a PEM key is never an HMAC secret
    with pytest.raises(ConfigurationError, match="fits none of the algorithms RS256"):
        JWTConfig(keys={"k": KEY}, algorithms=("RS256",))
    with pytest.raises(ConfigurationError, match="signing_kid 'x' is not one of the keys"):
        JWTConfig(keys={"k": KEY}, signing_kid="x")
    with pytest.raises(ConfigurationError, match="public key: it verifies tokens but cannot"):
        JWTConfig(keys={"k": public}, algorithms=("RS256",), signing_kid="k")
    with pytest.raises(ConfigurationError, match="does not fit key 'k'"):
        JWTConfig(keys={"k": KEY}, algorithms=("HS256", "RS256"), signing_algorithm="RS256")
    with pytest.raises(ConfigurationError, match="lifetime must be positive"):
        JWTConfig(keys={"k": KEY}, lifetime=0)


def test_a_public_key_only_verifies(rsa_pem: tuple[bytes, bytes]) -> None:
    private, public = rsa_pem
    issuer = JWTConfig(keys={"idp": private}, algorithms=("RS256",))
    verifier = JWTConfig(keys={"idp": public}, algorithms=("RS256",))
    assert verifier.signing_kid is None
    token = issuer.encode({"sub": "7"})
    assert verifier.decode(token)["sub"] == "7"
    with pytest.raises(ConfigurationError, match="no JWT key can sign"):
        verifier.encode({"sub": "7"})


def test_encode_writes_kid_and_standard_claims() -> None:
    config = JWTConfig(keys={"k1": KEY}, issuer="https://api.test", audience="test-api")
    token = config.encode({"sub": "3", "scope": "a.b"})
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    decoded = config.decode(token)
    assert decoded["iss"] == "https://api.test"
    assert decoded["aud"] == "test-api"
    assert decoded["exp"] - decoded["iat"] == 900
    assert decoded["scope"] == "a.b"
    assert len(decoded["jti"]) >= 16


def test_mixed_families_each_key_its_own(rsa_pem: tuple[bytes, bytes]) -> None:
    private = rsa_pem[0]
    eck = ec.generate_private_key(ec.SECP256R1())
    ec_pem = eck.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    config = JWTConfig(
        keys={"hs": KEY, "rs": private, "es": ec_pem},
        algorithms=("HS256", "RS256", "ES256"),
        signing_kid="rs",
    )
    token = config.encode({"sub": "1"})
    assert pyjwt.get_unverified_header(token)["alg"] == "RS256"
    assert config.decode(token)["sub"] == "1"
    # an RS256 header with the kid of the HMAC key: that key takes HS256 only
    swapped = forge({"alg": "RS256", "kid": "hs"}, claims(), KEY.encode())
    with pytest.raises(InvalidJWTError, match="'RS256' is not allowed for key 'hs'"):
        config.decode(swapped)


def test_decode_errors_say_why_for_the_logs() -> None:
    config = JWTConfig(keys={"k1": KEY})
    with pytest.raises(InvalidJWTError, match="malformed"):
        config.decode("not.a.jwt")
    with pytest.raises(ExpiredJWTError):
        config.decode(config.encode({"sub": "1", "exp": int(time.time()) - 5}))
    with pytest.raises(InvalidJWTError, match="sub"):
        config.decode(pyjwt.encode(claims(sub=None), KEY, headers={"kid": "k1"}))


# -- over HTTP: every bad token is a 401 ---------------------------------------------------------


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'jwt.db'}")
    await create_auth_tables(db)
    try:
        yield db
    finally:
        await db.dispose()


async def jwt_app(database: Database, config: JWTConfig) -> tuple[Any, Any, User]:
    app, auth = make_app(database, jwt=config)
    user = await add_user(database)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"id": user.id}

    return app, auth, user


async def status(app: Any, token: str) -> tuple[int, str, str]:
    async with AsyncTestClient(app) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    return (
        response.status_code,
        response.headers.get("www-authenticate", ""),
        response.json().get("detail", ""),
    )


@pytest.mark.anyio
async def test_a_valid_jwt_authenticates(sqlite_db: Database) -> None:
    config = JWTConfig(keys={"k1": KEY}, issuer="iss", audience="aud")
    app, auth, user = await jwt_app(sqlite_db, config)
    token = auth.create_jwt(user)
    async with AsyncTestClient(app) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"id": user.id}


def _cases(public_pem: bytes) -> dict[str, str]:
    hs = JWTConfig(keys={"k1": KEY}, issuer="iss", audience="aud")
    other = JWTConfig(keys={"k1": OTHER_KEY}, issuer="iss", audience="aud")
    now = int(time.time())
    full = claims(iss="iss", aud="aud")
    return {
        "alg none": forge({"alg": "none", "typ": "JWT", "kid": "k1"}, full, None),
        "alg none, no kid": forge({"alg": "none"}, full, None),
        "wrong key": other.encode({"sub": "1"}),
        "wrong audience": pyjwt.encode({**full, "aud": "other"}, KEY, headers={"kid": "k1"}),
        "no audience": pyjwt.encode({**full, "aud": None}, KEY, headers={"kid": "k1"}),
        "wrong issuer": pyjwt.encode({**full, "iss": "evil"}, KEY, headers={"kid": "k1"}),
        "no expiry": pyjwt.encode(
            claims(iss="iss", aud="aud", exp=None), KEY, headers={"kid": "k1"}
        ),
        "not yet valid": hs.encode({"sub": "1", "nbf": now + 600}),
        "unknown kid": pyjwt.encode(full, KEY, headers={"kid": "k2"}),
        "tampered payload": _tamper(hs.encode({"sub": "1"})),
        "HS256 signed with the RS public key": forge(
            {"alg": "HS256", "kid": "k1"}, full, public_pem
        ),
        "subject not an id": hs.encode({"sub": "admin"}),
        "unknown subject": hs.encode({"sub": "999"}),
    }


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["sub"] = "2"
    return f"{header}.{_b64(json.dumps(data).encode())}.{signature}"


CASES = [
    "alg none",
    "alg none, no kid",
    "wrong key",
    "wrong audience",
    "no audience",
    "wrong issuer",
    "no expiry",
    "not yet valid",
    "unknown kid",
    "tampered payload",
    "subject not an id",
    "unknown subject",
]


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES)
async def test_forged_and_wrong_tokens_get_401(
    sqlite_db: Database, rsa_pem: tuple[bytes, bytes], case: str
) -> None:
    config = JWTConfig(keys={"k1": KEY}, issuer="iss", audience="aud")
    app, _, _ = await jwt_app(sqlite_db, config)
    token = _cases(rsa_pem[1])[case]
    code, challenge, detail = await status(app, token)
    assert (code, challenge, detail) == (
        401,
        'Bearer error="invalid_token"',
        "The access token is invalid.",
    )


@pytest.mark.anyio
async def test_an_hs256_token_signed_with_the_rs_public_key_is_refused(
    sqlite_db: Database, rsa_pem: tuple[bytes, bytes]
) -> None:
    private, public = rsa_pem
    config = JWTConfig(keys={"k1": private}, algorithms=("RS256",), issuer="iss", audience="aud")
    app, auth, user = await jwt_app(sqlite_db, config)
    assert (await status(app, auth.create_jwt(user)))[0] == 200
    forged = _cases(public)["HS256 signed with the RS public key"]
    assert (await status(app, forged))[0] == 401
    # even an application that accepts both families never uses the RSA key as a secret
    both = JWTConfig(
        keys={"k1": private}, algorithms=("RS256", "HS256"), issuer="iss", audience="aud"
    )
    app2, _, _ = await jwt_app_again(sqlite_db, both)
    assert (await status(app2, forged))[0] == 401


async def jwt_app_again(database: Database, config: JWTConfig) -> tuple[Any, Any, None]:
    app, auth = make_app(database, jwt=config)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"id": user.id}

    return app, auth, None


@pytest.mark.anyio
@pytest.mark.parametrize("subject", ["\u00b2", "\u0663", "1" * 19, "-1", " 1", "ann"])
async def test_a_subject_that_is_no_user_id_is_refused(sqlite_db: Database, subject: str) -> None:
    # "²" passes str.isdigit() but not int(): a 401, never a 500
    config = JWTConfig(keys={"k1": KEY})
    app, _, _ = await jwt_app(sqlite_db, config)
    token = config.encode({"sub": subject})
    assert (await status(app, token))[0] == 401


@pytest.mark.anyio
async def test_an_expired_jwt_says_so(sqlite_db: Database) -> None:
    config = JWTConfig(keys={"k1": KEY})
    app, auth, user = await jwt_app(sqlite_db, config)
    token = auth.create_jwt(user, exp=int(time.time()) - 1)
    assert await status(app, token) == (
        401,
        'Bearer error="invalid_token"',
        "The access token has expired.",
    )


@pytest.mark.anyio
async def test_key_rotation(sqlite_db: Database) -> None:
    old = JWTConfig(keys={"2025": KEY})
    _, auth, user = await jwt_app(sqlite_db, old)
    old_token = auth.create_jwt(user)
    rotated = JWTConfig(keys={"2025": KEY, "2026": OTHER_KEY}, signing_kid="2026")
    app2, auth2, _ = await jwt_app_again(sqlite_db, rotated)
    new_token = auth2.create_jwt(user)
    assert pyjwt.get_unverified_header(new_token)["kid"] == "2026"
    assert (await status(app2, old_token))[0] == 200  # still accepted while its key is there
    assert (await status(app2, new_token))[0] == 200
    retired = JWTConfig(keys={"2026": OTHER_KEY})
    app3, _, _ = await jwt_app_again(sqlite_db, retired)
    assert (await status(app3, old_token))[0] == 401
    assert (await status(app3, new_token))[0] == 200


@pytest.mark.anyio
async def test_jwts_of_inactive_users_and_from_before_a_password_change_are_refused(
    sqlite_db: Database,
) -> None:
    config = JWTConfig(keys={"k1": KEY})
    app, auth, user = await jwt_app(sqlite_db, config)
    issued_before = auth.create_jwt(user, iat=int(time.time()) - 10)
    assert (await status(app, issued_before))[0] == 200
    async with sqlite_db.transaction() as db:
        found = await db.get(User, user.id)
        assert found is not None
        auth.set_password(found, "a new password")
    assert (await status(app, issued_before))[0] == 401
    fresh = auth.create_jwt(user)
    assert (await status(app, fresh))[0] == 200
    async with sqlite_db.transaction() as db:
        found = await db.get(User, user.id)
        assert found is not None
        found.is_active = False
    assert (await status(app, fresh))[0] == 401


@pytest.mark.anyio
async def test_a_jwt_is_refused_when_the_app_issues_none(sqlite_db: Database) -> None:
    app, _ = make_app(sqlite_db)
    await add_user(sqlite_db)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return {"id": user.id}

    token = JWTConfig(keys={"k1": KEY}).encode({"sub": "1"})
    assert (await status(app, token))[0] == 401


def test_create_jwt_needs_a_config() -> None:
    from trellis.contrib.auth import Auth

    with pytest.raises(ConfigurationError, match="needs Auth\\(jwt=JWTConfig"):
        Auth().create_jwt(User(email="a@b.c"))


def test_long_jwt_lifetimes_are_a_deploy_warning(tmp_path: Path) -> None:
    from trellis import App
    from trellis.checks import deploy_problems
    from trellis.contrib.auth import Auth

    def ids(lifetime: float) -> list[str]:
        app = App(debug=False, secret_key="k3Jx9-Q2vLr8TzWm5NpYd4HsBcF7gUaE")
        app.install(Database(f"sqlite:///{tmp_path / 'x.db'}"))
        app.install(Auth(jwt=JWTConfig(keys={"k": KEY}, lifetime=lifetime)))
        return [problem.id for problem in deploy_problems(app)]

    assert "auth.W001" in ids(86400)
    assert "auth.W001" not in ids(900)
