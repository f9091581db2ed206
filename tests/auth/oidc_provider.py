"""A small OpenID Connect (and GitHub-style OAuth 2) provider for tests, served over loopback.

It is a plain ASGI app, independent of the framework under test, run by uvicorn in a thread
on a free port: the app under test talks to it over real HTTP, as it would to Google.

Endpoints (OpenID Connect):
  /.well-known/openid-configuration, /authorize (approves at once, redirects back with a
  code), /token (checks the code, the redirect URI, the PKCE verifier and the client's
  credentials; returns an RS256 ID token and an access token), /userinfo, /jwks.
GitHub-shaped (plain OAuth 2):
  /login/oauth/authorize, /login/oauth/access_token (errors with status 200, like GitHub),
  /user, /user/emails.

Each test changes what the provider does through attributes: ``user`` (who logs in),
``id_token_overrides`` (wrong nonce, audience, expiry ...), ``sign_with`` (another key: bad
signature), ``authorize_error`` (the person refused), ``omit_from_id_token`` (forces a
userinfo request) ...
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "trellis-test-client"
CLIENT_SECRET = "trellis-test-secret"

Scope = dict[str, Any]
Result = tuple[int, dict[str, str], Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: dict[str, Any]


@dataclass
class FakeProvider:
    """The provider's behaviour; tests change the attributes."""

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    issuer: str = ""
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    )
    #: The claims of the person who logs in (OpenID Connect shape).
    user: dict[str, Any] = field(default_factory=dict)
    #: The GitHub-shaped profile and email list of the person who logs in.
    github_user: dict[str, Any] = field(default_factory=dict)
    github_emails: list[dict[str, Any]] = field(default_factory=list)
    #: Merged into the ID token's claims (``{"aud": "someone-else"}``); ``None`` removes one.
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    #: Claims of ``user`` left out of the ID token (still served by /userinfo).
    omit_from_id_token: set[str] = field(default_factory=set)
    #: Overrides merged into the /userinfo answer.
    userinfo_overrides: dict[str, Any] = field(default_factory=dict)
    #: Sign ID tokens with this key instead (a bad signature when it is not published).
    sign_with: RSAKey | None = None
    #: Answer /authorize with this error instead of a code (``"access_denied"``).
    authorize_error: str | None = None
    #: Answer /token with this OAuth error.
    token_error: str | None = None
    #: The ``alg`` values announced in discovery.
    algorithms: list[str] = field(default_factory=lambda: ["RS256"])
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every request: (method, path).
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: The form of every token request and its Authorization header.
    token_requests: list[tuple[dict[str, str], str | None]] = field(default_factory=list)

    def reset(self) -> None:
        self.user = {
            "sub": "alice-sub-1",
            "email": "alice@example.com",
            "email_verified": True,
            "name": "Alice Liddell",
            "preferred_username": "alice",
        }
        self.github_user = {"id": 4242, "login": "octo-cat", "name": "Octo Cat", "email": None}
        self.github_emails = [
            {"email": "old@example.com", "primary": False, "verified": True},
            {"email": "octo@example.com", "primary": True, "verified": True},
        ]
        self.id_token_overrides = {}
        self.omit_from_id_token = set()
        self.userinfo_overrides = {}
        self.sign_with = None
        self.authorize_error = None
        self.token_error = None
        self.algorithms = ["RS256"]
        self.grants.clear()
        self.access_tokens.clear()
        self.requests.clear()
        self.token_requests.clear()

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan is off; nothing else is served
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        self.requests.append((scope["method"], path))
        query = dict(parse_qsl(scope["query_string"].decode()))
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        form = dict(parse_qsl(body.decode()))
        routes: dict[str, Callable[..., Result]] = {
            "/.well-known/openid-configuration": self.discovery,
            "/jwks": self.jwks,
            "/authorize": self.authorize,
            "/login/oauth/authorize": self.authorize,
            "/token": self.token,
            "/login/oauth/access_token": self.github_token,
            "/userinfo": self.userinfo,
            "/user": self.github_profile,
            "/user/emails": self.github_email_list,
        }
        handler = routes.get(path)
        result: Result = (404, {}, {"error": "not_found"})
        if handler is not None:
            result = handler(query=query, form=form, headers=headers)
        status, out_headers, payload = result
        if status in (302, 303):
            raw = b""
        else:
            raw = json.dumps(payload).encode()
            out_headers.setdefault("content-type", "application/json")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in out_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": raw})

    def discovery(self, **_: Any) -> Result:
        return (
            200,
            {},
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": self.algorithms,
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            },
        )

    def jwks(self, **_: Any) -> Result:
        return 200, {}, {"keys": [self.key.as_dict(private=False)]}

    def authorize(self, *, query: dict[str, str], **_: Any) -> Result:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return 400, {}, {"error": "invalid_client"}
        state = query.get("state")
        params: dict[str, str] = {}
        if self.authorize_error:
            params["error"] = self.authorize_error
            params["error_description"] = "The user said no."
        else:
            code = secrets.token_urlsafe(16)
            self.grants[code] = Grant(
                client_id=query["client_id"],
                redirect_uri=redirect_uri,
                nonce=query.get("nonce"),
                code_challenge=query.get("code_challenge"),
                code_challenge_method=query.get("code_challenge_method"),
                user=dict(self.user),
            )
            params["code"] = code
        if state is not None:
            params["state"] = state
        sep = "&" if "?" in redirect_uri else "?"
        return 302, {"location": f"{redirect_uri}{sep}{urlencode(params)}"}, None

    def _client_ok(self, form: dict[str, str], headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secret == self.client_secret

    def _redeem(self, form: dict[str, str], headers: dict[str, str]) -> tuple[Grant | None, str]:
        """Check a token request: the grant, or ``None`` and the OAuth error."""
        self.token_requests.append((form, headers.get("authorization")))
        if not self._client_ok(form, headers):
            return None, "invalid_client"
        if self.token_error:
            return None, self.token_error
        if form.get("grant_type") != "authorization_code":
            return None, "unsupported_grant_type"
        grant = self.grants.pop(form.get("code", ""), None)  # single use
        if grant is None or grant.redirect_uri != form.get("redirect_uri"):
            return None, "invalid_grant"
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if grant.code_challenge_method != "S256" or s256(verifier) != grant.code_challenge:
                return None, "invalid_grant"
        return grant, ""

    def _access_token(self, user: dict[str, Any]) -> str:
        access_token = secrets.token_urlsafe(24)
        self.access_tokens[access_token] = user
        return access_token

    def token(self, *, form: dict[str, str], headers: dict[str, str], **_: Any) -> Result:
        grant, error = self._redeem(form, headers)
        if grant is None:
            return (401 if error == "invalid_client" else 400), {}, {"error": error}
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            **{k: v for k, v in grant.user.items() if k not in self.omit_from_id_token},
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        for name, value in self.id_token_overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self.sign_with or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid or "key-1"}, claims, key)
        return (
            200,
            {"cache-control": "no-store"},
            {
                "access_token": self._access_token(grant.user),
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
                "scope": "openid email profile",
            },
        )

    def _bearer(self, headers: dict[str, str]) -> dict[str, Any] | None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return None
        return self.access_tokens.get(auth[7:])

    def userinfo(self, *, headers: dict[str, str], **_: Any) -> Result:
        user = self._bearer(headers)
        if user is None:
            return 401, {"www-authenticate": 'Bearer error="invalid_token"'}, {}
        return 200, {}, {**user, **self.userinfo_overrides}

    # -- GitHub-shaped --------------------------------------------------------------------

    def github_token(self, *, form: dict[str, str], headers: dict[str, str], **_: Any) -> Result:
        grant, error = self._redeem(form, headers)
        if grant is None:
            return 200, {}, {"error": error, "error_description": "GitHub-style error"}
        return (
            200,
            {},
            {
                "access_token": self._access_token({"github": True}),
                "token_type": "bearer",
                "scope": "read:user,user:email",
            },
        )

    def github_profile(self, *, headers: dict[str, str], **_: Any) -> Result:
        if self._bearer(headers) is None:
            return 401, {}, {"message": "Bad credentials"}
        return 200, {}, self.github_user

    def github_email_list(self, *, headers: dict[str, str], **_: Any) -> Result:
        if self._bearer(headers) is None:
            return 401, {}, {"message": "Bad credentials"}
        return 200, {}, self.github_emails


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # not the main thread
        pass


@dataclass
class RunningProvider:
    provider: FakeProvider
    base_url: str


def serve(provider: FakeProvider) -> Iterator[RunningProvider]:
    """Run ``provider`` on 127.0.0.1 (a free port) in a thread until the generator closes."""
    port = free_port()
    provider.issuer = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        provider,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        ws="none",
        log_level="warning",
        access_log=False,
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, name="fake-oidc-provider", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake OpenID Connect provider did not start")
        time.sleep(0.01)
    try:
        yield RunningProvider(provider, provider.issuer)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- fixtures (import them into a test module) ----------------------------------------------


@pytest.fixture(scope="session")
def idp_server() -> Iterator[RunningProvider]:
    """The fake provider, served once per test session."""
    yield from serve(FakeProvider())


@pytest.fixture
def idp(idp_server: RunningProvider) -> FakeProvider:
    """The fake provider, reset to its defaults for this test."""
    idp_server.provider.reset()
    return idp_server.provider
