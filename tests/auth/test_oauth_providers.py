"""OAuth / OpenID Connect providers against a real provider on loopback (no app, no database).

The login routes are tested in ``test_oauth_routes.py``; here each protocol step is driven
directly: discovery, the authorization URL (state, nonce, PKCE), the code exchange and every
ID token check.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider, idp, idp_server, s256

from trellis.contrib.auth.oauth import (
    GitHub,
    Google,
    OAuthIdentity,
    OAuthLoginError,
    OAuthProvider,
    OIDCProvider,
)
from trellis.contrib.auth.oauth.client import PENDING_LIFETIME, PendingLogin
from trellis.exceptions import ConfigurationError

__all__ = ["idp", "idp_server"]  # fixtures

pytestmark = pytest.mark.anyio

REDIRECT = "http://app.test/auth/oauth/test/callback"


def oidc(idp: FakeProvider, **options: Any) -> OIDCProvider:
    return OIDCProvider("test", CLIENT_ID, CLIENT_SECRET, idp.metadata_url, **options)


def github(idp: FakeProvider, **options: Any) -> GitHub:
    return GitHub(CLIENT_ID, CLIENT_SECRET, api_url=idp.issuer, web_url=idp.issuer, **options)


async def login(
    provider: OAuthProvider, *, pending: PendingLogin | None = None
) -> tuple[OAuthIdentity, dict[str, Any]]:
    """Run the code flow as a browser would, then exchange the code: identity and token."""
    pending = pending or PendingLogin.start(redirect_uri=REDIRECT, next="/")
    async with provider.http_client() as client:
        url = await provider.authorization_url(client, redirect_uri=REDIRECT, pending=pending)
        answer = await client.get(url)
        assert answer.status_code == 302
        params = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
        assert params["state"] == pending.state
        token = await provider.fetch_token(client, code=params["code"], pending=pending)
        identity = await provider.fetch_identity(client, token, nonce=pending.nonce)
        return identity, token


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "GitHub", "has space", "-x", "a/b"])
def test_provider_names_must_be_url_and_database_safe(name: str) -> None:
    with pytest.raises(ConfigurationError, match="lower case"):
        OAuthProvider(name, "id", "secret", authorize_url="a", token_url="t")


def test_empty_credentials_and_unknown_auth_method_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="client_id is empty"):
        GitHub("", "secret")
    with pytest.raises(ConfigurationError, match="client_secret is empty"):
        GitHub("id", "")
    with pytest.raises(ConfigurationError, match="token_endpoint_auth_method"):
        GitHub("id", "s", token_endpoint_auth_method="private_key_jwt")
    # A public client needs no secret.
    assert GitHub("id", "", token_endpoint_auth_method="none").client_secret == ""


def test_openid_scope_is_required() -> None:
    with pytest.raises(ConfigurationError, match="'openid'"):
        OIDCProvider("x", "id", "s", "https://x/.well-known/openid-configuration", ("email",))


def test_presets() -> None:
    google = Google("id", "secret")
    assert (google.name, google.title) == ("google", "Google")
    assert google.server_metadata_url == (
        "https://accounts.google.com/.well-known/openid-configuration"
    )
    assert google.scopes == ("openid", "email", "profile")
    gh = GitHub("id", "secret")
    assert (gh.name, gh.title, gh.scopes) == ("github", "GitHub", ("read:user", "user:email"))
    assert gh.authorize_url == "https://github.com/login/oauth/authorize"
    assert gh.token_url == "https://github.com/login/oauth/access_token"
    assert gh.emails_url == "https://api.github.com/user/emails"
    assert repr(gh) == "GitHub('github', client_id='id')"
    assert OIDCProvider("corp", "i", "s", "https://x/c").title == "corp"


# -- authorization request ------------------------------------------------------------------


async def test_authorization_url_carries_state_nonce_and_pkce(idp: FakeProvider) -> None:
    provider = oidc(idp, authorize_params={"prompt": "select_account"})
    pending = PendingLogin.start(redirect_uri=REDIRECT, next="/x")
    async with provider.http_client() as client:
        url = await provider.authorization_url(client, redirect_uri=REDIRECT, pending=pending)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{idp.issuer}/authorize"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid email profile",
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": s256(pending.code_verifier),
        "code_challenge_method": "S256",
        "prompt": "select_account",
    }
    assert 43 <= len(pending.code_verifier) <= 128
    # Fresh secrets every time.
    other = PendingLogin.start(redirect_uri=REDIRECT, next="/x")
    assert {other.state, other.nonce, other.code_verifier}.isdisjoint(
        {pending.state, pending.nonce, pending.code_verifier}
    )


async def test_plain_oauth_sends_no_nonce_and_pkce_can_be_turned_off(idp: FakeProvider) -> None:
    provider = github(idp, pkce=False)
    pending = PendingLogin.start(redirect_uri=REDIRECT, next="/")
    async with provider.http_client() as client:
        url = await provider.authorization_url(client, redirect_uri=REDIRECT, pending=pending)
    query = parse_qs(urlsplit(url).query)
    assert "nonce" not in query
    assert "code_challenge" not in query
    assert query["scope"] == ["read:user user:email"]


def test_pending_login_round_trips_and_refuses_garbage() -> None:
    pending = PendingLogin.start(redirect_uri=REDIRECT, next="/n")
    assert PendingLogin.from_dict(pending.to_dict()) == pending
    assert not pending.expired
    for bad in (
        None,
        "x",
        {},
        {**pending.to_dict(), "state": ""},
        {**pending.to_dict(), "next": 3},
    ):
        assert PendingLogin.from_dict(bad) is None
    old = PendingLogin.from_dict(
        {**pending.to_dict(), "created": time.time() - PENDING_LIFETIME - 1}
    )
    assert old is not None and old.expired


# -- OpenID Connect --------------------------------------------------------------------------


async def test_full_oidc_flow_gives_a_verified_identity(idp: FakeProvider) -> None:
    provider = oidc(idp)
    identity, token = await login(provider)
    assert identity == OAuthIdentity(
        provider="test",
        subject="alice-sub-1",
        email="alice@example.com",
        email_verified=True,
        username="alice",
        name="Alice Liddell",
        claims=identity.claims,
    )
    assert identity.claims["iss"] == idp.issuer
    assert token["token_type"] == "Bearer"
    # The token request carried the PKCE verifier and HTTP Basic client authentication.
    form, authorization = idp.token_requests[-1]
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == REDIRECT
    assert "code_verifier" in form and "client_secret" not in form
    assert authorization is not None and authorization.startswith("Basic ")
    # Everything was in the ID token: no userinfo request.
    assert ("GET", "/userinfo") not in idp.requests


async def test_discovery_and_keys_are_fetched_once(idp: FakeProvider) -> None:
    provider = oidc(idp)
    await login(provider)
    await login(provider)
    assert idp.requests.count(("GET", "/.well-known/openid-configuration")) == 1
    assert idp.requests.count(("GET", "/jwks")) == 1


async def test_client_secret_post(idp: FakeProvider) -> None:
    await login(oidc(idp, token_endpoint_auth_method="client_secret_post"))
    form, authorization = idp.token_requests[-1]
    assert authorization is None
    assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)


async def test_userinfo_completes_a_thin_id_token(idp: FakeProvider) -> None:
    idp.omit_from_id_token = {"email", "email_verified", "name"}
    identity, _ = await login(oidc(idp))
    assert ("GET", "/userinfo") in idp.requests
    assert (identity.email, identity.email_verified, identity.name) == (
        "alice@example.com",
        True,
        "Alice Liddell",
    )


async def test_userinfo_about_someone_else_is_refused(idp: FakeProvider) -> None:
    idp.omit_from_id_token = {"email", "email_verified"}
    idp.userinfo_overrides = {"sub": "mallory"}
    with pytest.raises(OAuthLoginError, match="another user") as info:
        await login(oidc(idp))
    assert info.value.status == 400


@pytest.mark.parametrize("flag", [False, "false", None])
async def test_email_not_verified(idp: FakeProvider, flag: Any) -> None:
    idp.user["email_verified"] = flag
    if flag is None:
        del idp.user["email_verified"]
    identity, _ = await login(oidc(idp))
    assert identity.email == "alice@example.com"
    assert identity.email_verified is False


async def test_string_true_counts_as_verified(idp: FakeProvider) -> None:
    idp.user["email_verified"] = "true"
    identity, _ = await login(oidc(idp))
    assert identity.email_verified is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nonce": "not-the-nonce"}, "invalid_claim 'nonce'"),
        ({"nonce": None}, "missing_claim 'nonce'"),
        ({"aud": "another-client"}, "invalid_claim 'aud'"),
        ({"aud": ["another-client", "third"]}, "invalid_claim 'aud'"),
        ({"iss": "https://evil.example"}, "invalid_claim 'iss'"),
        ({"exp": int(time.time()) - 3600}, "has expired"),
        ({"exp": None}, "missing_claim 'exp'"),
        ({"iat": int(time.time()) + 3600}, "invalid_claim 'iat'"),
        ({"azp": "another-client"}, "invalid_claim 'azp'"),
        ({"aud": [CLIENT_ID, "other"]}, "missing_claim 'azp'"),
        ({"sub": None}, "missing_claim 'sub'"),
        ({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, "invalid_claim 'at_hash'"),
    ],
)
async def test_invalid_id_tokens_are_refused(
    idp: FakeProvider, overrides: dict[str, Any], message: str
) -> None:
    idp.id_token_overrides = overrides
    with pytest.raises(OAuthLoginError) as info:
        await login(oidc(idp))
    assert info.value.status == 400
    assert message in str(info.value.detail)


async def test_azp_equal_to_client_id_and_multiple_audiences_are_accepted(
    idp: FakeProvider,
) -> None:
    idp.id_token_overrides = {"aud": [CLIENT_ID, "other"], "azp": CLIENT_ID}
    identity, _ = await login(oidc(idp))
    assert identity.subject == "alice-sub-1"


async def test_bad_signature_is_refused(idp: FakeProvider) -> None:
    # Same kid, another key: the published key does not verify it.
    idp.sign_with = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    with pytest.raises(OAuthLoginError, match="bad_signature"):
        await login(oidc(idp))


async def test_unknown_key_refetches_the_key_set_then_refuses(idp: FakeProvider) -> None:
    idp.sign_with = RSAKey.generate_key(2048, parameters={"kid": "rotated"})
    provider = oidc(idp)
    with pytest.raises(OAuthLoginError, match="refused"):
        await login(provider)
    assert idp.requests.count(("GET", "/jwks")) == 2  # cached, then once more for "rotated"


async def test_key_rotation_is_followed(idp: FakeProvider) -> None:
    provider = oidc(idp)
    await login(provider)
    idp.key = RSAKey.generate_key(2048, parameters={"kid": "key-2"})
    identity, _ = await login(provider)
    assert identity.subject == "alice-sub-1"
    assert idp.requests.count(("GET", "/jwks")) == 2


async def test_symmetric_or_none_algorithms_are_never_accepted(idp: FakeProvider) -> None:
    idp.algorithms = ["HS256", "none"]
    with pytest.raises(OAuthLoginError, match="algorithms Trellis does not accept") as info:
        await login(oidc(idp))
    assert info.value.status == 502


async def test_algorithm_not_announced_is_refused(idp: FakeProvider) -> None:
    idp.algorithms = ["ES256"]  # the token is RS256
    with pytest.raises(OAuthLoginError, match="unsupported_algorithm"):
        await login(oidc(idp))


async def test_token_errors_are_reported(idp: FakeProvider) -> None:
    idp.token_error = "invalid_grant"
    with pytest.raises(OAuthLoginError, match=r"refused to complete the login \(invalid_grant\)"):
        await login(oidc(idp))


async def test_wrong_client_secret_is_reported(idp: FakeProvider) -> None:
    provider = OIDCProvider("test", CLIENT_ID, "wrong", idp.metadata_url)
    with pytest.raises(OAuthLoginError, match="invalid_client"):
        await login(provider)


async def test_wrong_pkce_verifier_is_refused_by_the_provider(idp: FakeProvider) -> None:
    provider = oidc(idp)
    pending = PendingLogin.start(redirect_uri=REDIRECT, next="/")
    async with provider.http_client() as client:
        url = await provider.authorization_url(client, redirect_uri=REDIRECT, pending=pending)
        location = (await client.get(url)).headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        forged = PendingLogin.start(redirect_uri=REDIRECT, next="/")
        with pytest.raises(OAuthLoginError, match="invalid_grant"):
            await provider.fetch_token(client, code=code, pending=forged)


async def test_discovery_with_another_issuer_is_refused(idp: FakeProvider) -> None:
    idp_issuer = idp.issuer
    idp.issuer = "https://other.example"
    try:
        provider = OIDCProvider(
            "test", CLIENT_ID, CLIENT_SECRET, f"{idp_issuer}/.well-known/openid-configuration"
        )
        async with provider.http_client() as client:
            with pytest.raises(OAuthLoginError, match="names the issuer") as info:
                await provider.metadata(client)
        assert info.value.status == 502
    finally:
        idp.issuer = idp_issuer


async def test_unreachable_provider_is_a_502(idp: FakeProvider) -> None:
    provider = OIDCProvider(
        "test", CLIENT_ID, CLIENT_SECRET, "http://127.0.0.1:9/.well-known/openid-configuration"
    )
    async with provider.http_client() as client:
        with pytest.raises(OAuthLoginError, match="could not be reached") as info:
            await provider.metadata(client)
    assert info.value.status == 502
    assert provider._metadata is None  # a failure is not cached


async def test_discovery_document_that_is_not_json_or_incomplete(idp: FakeProvider) -> None:
    provider = OIDCProvider("test", CLIENT_ID, CLIENT_SECRET, f"{idp.issuer}/nowhere")
    async with provider.http_client() as client:
        with pytest.raises(OAuthLoginError, match=r"HTTP 404"):
            await provider.metadata(client)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/html":
            return httpx.Response(200, text="<html>")
        return httpx.Response(200, json={"issuer": "https://x"})

    def factory() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handler))

    for path, message in (("/html", "other than JSON"), ("/thin", "lacks authorization_endpoint")):
        provider = OIDCProvider("t", "i", "s", f"https://x{path}", http_client=factory)
        async with provider.http_client() as client:
            with pytest.raises(OAuthLoginError, match=message):
                await provider.metadata(client)


async def test_missing_id_token_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "a", "token_type": "bearer"})

    provider = OIDCProvider("t", "i", "s", "https://x/c")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(OAuthLoginError, match="did not return an ID token"):
            await provider.fetch_identity(client, {"access_token": "a"}, nonce="n")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"token_type": "bearer"}, "did not return an access token"),
        ({"access_token": "a", "token_type": "mac"}, "only bearer tokens"),
    ],
)
async def test_odd_token_answers(answer: dict[str, Any], message: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    provider = OAuthProvider("t", "i", "s", authorize_url="https://x/a", token_url="https://x/t")
    pending = PendingLogin.start(redirect_uri=REDIRECT, next="/")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(OAuthLoginError, match=message):
            await provider.fetch_token(client, code="c", pending=pending)


# -- plain OAuth 2: GitHub -------------------------------------------------------------------


async def test_github_flow_uses_the_primary_verified_email(idp: FakeProvider) -> None:
    identity, _ = await login(github(idp))
    assert identity == OAuthIdentity(
        provider="github",
        subject="4242",
        email="octo@example.com",
        email_verified=True,
        username="octo-cat",
        name="Octo Cat",
        claims=identity.claims,
    )
    assert ("GET", "/user/emails") in idp.requests
    form, _ = idp.token_requests[-1]
    assert "code_verifier" in form


async def test_github_unverified_primary_email(idp: FakeProvider) -> None:
    idp.github_emails = [{"email": "octo@example.com", "primary": True, "verified": False}]
    identity, _ = await login(github(idp))
    assert (identity.email, identity.email_verified) == ("octo@example.com", False)


async def test_github_without_emails(idp: FakeProvider) -> None:
    idp.github_emails = []
    identity, _ = await login(github(idp))
    assert (identity.email, identity.email_verified) == (None, False)


async def test_github_errors_come_with_status_200(idp: FakeProvider) -> None:
    idp.token_error = "bad_verification_code"
    with pytest.raises(OAuthLoginError, match="bad_verification_code: GitHub-style error"):
        await login(github(idp))


async def test_generic_oauth_provider_reads_standard_claims(idp: FakeProvider) -> None:
    provider = OAuthProvider(
        "plain",
        CLIENT_ID,
        CLIENT_SECRET,
        authorize_url=f"{idp.issuer}/authorize",
        token_url=f"{idp.issuer}/token",
        userinfo_url=f"{idp.issuer}/userinfo",
        scopes=("profile",),
    )
    identity, _ = await login(provider)
    assert (identity.provider, identity.subject, identity.email_verified) == (
        "plain",
        "alice-sub-1",
        True,
    )


def test_identity_without_subject_is_refused() -> None:
    provider = OAuthProvider("p", "i", "s", authorize_url="a", token_url="t", title="Plain")
    with pytest.raises(OAuthLoginError, match="Plain did not say who logged in"):
        provider.identity_from({"email": "x@example.com"})
    with pytest.raises(OAuthLoginError, match="GitHub did not say"):
        GitHub("i", "s").identity_from({"login": "x"})
    assert provider.identity_from({"id": 7}).subject == "7"


async def test_userinfo_refusal_is_reported(idp: FakeProvider) -> None:
    provider = OAuthProvider(
        "plain",
        CLIENT_ID,
        CLIENT_SECRET,
        authorize_url=f"{idp.issuer}/authorize",
        token_url=f"{idp.issuer}/token",
        userinfo_url=f"{idp.issuer}/userinfo",
    )
    async with provider.http_client() as client:
        with pytest.raises(
            OAuthLoginError, match=r"refused the request for /userinfo \(HTTP 401\)"
        ):
            await provider.fetch_identity(client, {"access_token": "bogus"}, nonce="n")


async def test_custom_http_client_factory_is_used(idp: FakeProvider) -> None:
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        client = httpx.AsyncClient(headers={"X-Test": "1"})
        made.append(client)
        return client

    provider = oidc(idp, http_client=factory)
    await login(provider)
    assert len(made) == 1


def mock_client(routes: dict[str, Any]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=routes[request.url.path])

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_unreadable_key_set_is_refused() -> None:
    provider = OIDCProvider("t", "i", "s", "https://x/.well-known/openid-configuration")
    metadata = {
        "issuer": "https://x",
        "authorization_endpoint": "https://x/a",
        "token_endpoint": "https://x/t",
        "jwks_uri": "https://x/jwks",
    }
    routes = {"/.well-known/openid-configuration": metadata, "/jwks": {"keys": [{"kty": "?"}]}}
    async with mock_client(routes) as client:
        with pytest.raises(OAuthLoginError, match="signing keys that cannot be read"):
            await provider.key_set(client)


@pytest.mark.parametrize("id_token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30."])
async def test_malformed_id_tokens_are_refused(idp: FakeProvider, id_token: str) -> None:
    provider = oidc(idp)
    async with provider.http_client() as client:
        with pytest.raises(OAuthLoginError, match="ID token from test") as info:
            await provider.validate_id_token(client, id_token, nonce="n", access_token=None)
    assert info.value.status == 400


async def test_github_emails_of_the_wrong_shape() -> None:
    provider = GitHub("i", "s")
    routes = {"/user": {"id": 1, "login": "x"}, "/user/emails": {"message": "odd"}}
    async with mock_client(routes) as client:
        with pytest.raises(OAuthLoginError, match="unexpected JSON") as info:
            await provider.fetch_identity(client, {"access_token": "a"}, nonce="n")
    assert info.value.status == 502
