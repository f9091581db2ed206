"""The OAuth 2 / OpenID Connect client side of a login, on Authlib's protocol core and httpx.

Authlib supplies the protocol pieces (grant URIs, client authentication, PKCE challenges,
token parsing, ID token claim rules); joserfc (Authlib's own JOSE library) checks
signatures. HTTP goes through plain ``httpx.AsyncClient``: Authlib's ``httpx_client``
integration is deprecated in favour of a different HTTP package (it warns on import), and a
client the provider builds itself can be pointed at a proxy, a private CA or a test server.

Everything here raises ``OAuthLoginError`` for what the provider (or an attacker) did
wrong; it becomes a 400 (or 502 when the provider cannot be reached) with a message that a
person can act on, never a 500.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from trellis.exceptions import HTTPError

__all__ = [
    "AUTH_METHODS",
    "ID_TOKEN_ALGORITHMS",
    "Endpoints",
    "OAuthLoginError",
    "PendingLogin",
    "authorization_url",
    "discover",
    "exchange_code",
    "fetch_key_set",
    "get_json",
    "validate_id_token",
]

#: Client authentication methods at the token endpoint (RFC 6749 §2.3, OIDC Core §9).
AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post", "none"})

#: Signature algorithms accepted for ID tokens: asymmetric only. ``none`` is never accepted,
#: and HMAC ID tokens (keyed with the client secret) are not supported.
ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)

#: Seconds of clock difference tolerated for ``exp``/``iat``/``nbf``.
LEEWAY = 60

#: How long a started login may take before the callback is refused (seconds).
PENDING_LIFETIME = 600


class OAuthLoginError(HTTPError):
    """A third-party login failed; the message says why, in words for the person logging in.

    Args:
        detail: What went wrong.
        status: 400 (refused or invalid), 502 (the provider could not be reached or answered
            nonsense).
    """

    def __init__(self, detail: str, *, status: int = 400) -> None:
        super().__init__(status, detail)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """A provider's endpoints."""

    authorize: str
    token: str
    userinfo: str | None = None


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A login that was started and waits for the provider's callback (kept in the session).

    Attributes:
        state: Sent to the provider and compared (constant time) when it comes back.
        nonce: Bound into the ID token (OpenID Connect), checked in its claims.
        code_verifier: The PKCE secret whose S256 hash went with the authorization request.
        redirect_uri: The callback URL sent; the token request repeats it.
        next: Where to go after the login.
        created: When the login started (UNIX time); older than ``PENDING_LIFETIME`` expires.
    """

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next: str
    created: float

    @classmethod
    def start(cls, *, redirect_uri: str, next: str) -> PendingLogin:
        """A new pending login with fresh random ``state``, ``nonce`` and PKCE verifier."""
        return cls(
            state=generate_token(43),
            nonce=generate_token(32),
            # RFC 7636 §4.1: 43 to 128 characters from the unreserved set.
            code_verifier=generate_token(64),
            redirect_uri=redirect_uri,
            next=next,
            created=time.time(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form stored in the session."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PendingLogin | None:
        """Read a stored pending login; ``None`` when it is missing or malformed."""
        if not isinstance(data, dict):
            return None
        strings = ("state", "nonce", "code_verifier", "redirect_uri")
        if not all(isinstance(data.get(k), str) and data[k] for k in strings):
            return None
        if not isinstance(data.get("next"), str) or not isinstance(
            data.get("created"), int | float
        ):
            return None
        return cls(**{k: data[k] for k in (*strings, "next", "created")})

    @property
    def expired(self) -> bool:
        """Whether the login started too long ago."""
        return time.time() - self.created > PENDING_LIFETIME


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    code_verifier: str | None,
    nonce: str | None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The authorization request URL (RFC 6749 §4.1.1, PKCE S256, OpenID ``nonce``)."""
    params: dict[str, Any] = dict(extra or {})
    if code_verifier is not None:
        params["code_challenge"] = create_s256_code_challenge(code_verifier)
        params["code_challenge_method"] = "S256"
    if nonce is not None:
        params["nonce"] = nonce
    url: str = prepare_grant_uri(
        endpoint,
        client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=list(scopes) or None,
        state=state,
        **params,
    )
    return url


def _unreachable(provider: str, exc: Exception) -> OAuthLoginError:
    return OAuthLoginError(
        f"{provider} could not be reached to complete the login ({type(exc).__name__});"
        " try again in a moment.",
        status=502,
    )


async def _send(request: Callable[[], Awaitable[httpx.Response]], provider: str) -> httpx.Response:
    try:
        return await request()
    except httpx.HTTPError as exc:
        raise _unreachable(provider, exc) from exc


def _json(response: httpx.Response, provider: str, expect: type[Any]) -> Any:
    try:
        data = response.json()
    except ValueError as exc:
        raise OAuthLoginError(
            f"{provider} answered {response.request.url.path} with something other than JSON"
            f" (HTTP {response.status_code}).",
            status=502,
        ) from exc
    if not isinstance(data, expect):
        raise OAuthLoginError(
            f"{provider} answered {response.request.url.path} with unexpected JSON.", status=502
        )
    return data


async def exchange_code(
    client: httpx.AsyncClient,
    endpoint: str,
    *,
    provider: str,
    client_id: str,
    client_secret: str,
    auth_method: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
) -> dict[str, Any]:
    """Exchange an authorization code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5).

    Raises:
        OAuthLoginError: an error answer (``invalid_grant`` ...), no access token, or the
            provider could not be reached.
    """
    body = prepare_token_request(
        "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
    )
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    auth = ClientAuth(client_id, client_secret, auth_method)
    url, headers, body = auth.prepare("POST", endpoint, headers, body)
    response = await _send(lambda: client.post(url, headers=headers, content=body), provider)
    data: dict[str, Any] = _json(response, provider, dict)
    # RFC 6749 §5.2 (and GitHub, which answers errors with 200).
    if "error" in data or response.status_code != 200:
        error = data.get("error") or f"HTTP {response.status_code}"
        description = data.get("error_description")
        raise OAuthLoginError(
            f"{provider} refused to complete the login ({error}"
            + (f": {description}" if description else "")
            + ").",
        )
    if not isinstance(data.get("access_token"), str):
        raise OAuthLoginError(f"{provider} did not return an access token.", status=502)
    token_type = str(data.get("token_type", "bearer")).lower()
    if token_type != "bearer":
        raise OAuthLoginError(
            f"{provider} returned a {token_type!r} token; only bearer tokens are supported.",
            status=502,
        )
    return data


async def get_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    token: str | None = None,
    provider: str,
    expect: type[dict[str, Any]] | type[list[Any]] = dict,
) -> Any:
    """GET a JSON document (an object, or a list with ``expect=list``) from the provider.

    The access token goes in the ``Authorization`` header when given.

    Raises:
        OAuthLoginError: an error status, a body of the wrong shape, or no answer.
    """
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await _send(lambda: client.get(url, headers=headers), provider)
    if response.status_code != 200:
        raise OAuthLoginError(
            f"{provider} refused the request for {response.request.url.path}"
            f" (HTTP {response.status_code}).",
            status=502,
        )
    return _json(response, provider, expect)


async def discover(
    client: httpx.AsyncClient, url: str, *, provider: str, issuer: str | None
) -> dict[str, Any]:
    """Fetch and check an OpenID Connect discovery document.

    Args:
        client: The HTTP client.
        url: The document's URL.
        provider: The provider's title, for messages.
        issuer: The issuer the document must declare (``None``: not checked).

    Raises:
        OAuthLoginError: the document is unreachable, incomplete or names another issuer.
    """
    metadata: dict[str, Any] = await get_json(client, url, provider=provider)
    required = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    missing = [key for key in required if not isinstance(metadata.get(key), str)]
    if missing:
        raise OAuthLoginError(
            f"{provider}'s OpenID Connect discovery document lacks {', '.join(missing)}.",
            status=502,
        )
    if issuer is not None and metadata["issuer"].rstrip("/") != issuer.rstrip("/"):
        raise OAuthLoginError(
            f"{provider}'s discovery document names the issuer {metadata['issuer']!r}, not"
            f" {issuer!r}.",
            status=502,
        )
    return metadata


async def fetch_key_set(client: httpx.AsyncClient, url: str, *, provider: str) -> KeySet:
    """Fetch a JSON Web Key Set.

    Raises:
        OAuthLoginError: unreachable, or not a key set.
    """
    data: dict[str, Any] = await get_json(client, url, provider=provider)
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, KeyError, TypeError, ValueError) as exc:
        raise OAuthLoginError(f"{provider} published signing keys that cannot be read.") from exc


async def validate_id_token(
    id_token: str,
    *,
    keys: Callable[[bool], Awaitable[KeySet]],
    issuer: str,
    client_id: str,
    nonce: str,
    access_token: str | None,
    algorithms: Sequence[str] | None,
    provider: str,
) -> dict[str, Any]:
    """Check an ID token (OpenID Connect Core §3.1.3.7) and return its claims.

    Args:
        id_token: The compact JWT from the token response.
        keys: ``keys(refresh)`` returns the provider's key set; called again with ``True``
            when the token names an unknown key (rotation).
        issuer: The expected ``iss`` (the discovery document's ``issuer``).
        client_id: Must be in ``aud``; when ``azp`` is present it must equal it.
        nonce: The nonce sent with the authorization request.
        access_token: The access token issued with it, checked against ``at_hash``.
        algorithms: The provider's ``id_token_signing_alg_values_supported``; only the
            asymmetric ones among them are accepted (``RS256`` when not declared).
        provider: The provider's title, for messages.

    Raises:
        OAuthLoginError: any check failed.
    """
    allowed = [a for a in (algorithms or ("RS256",)) if a in ID_TOKEN_ALGORITHMS]
    if not allowed:
        raise OAuthLoginError(
            f"{provider} signs ID tokens only with algorithms Trellis does not accept"
            f" ({', '.join(algorithms or ())}).",
            status=502,
        )
    registry = JWSRegistry(algorithms=allowed, strict_check_header=False)
    try:
        try:
            token = jwt.decode(id_token, await keys(False), registry=registry)
        except InvalidKeyIdError:
            token = jwt.decode(id_token, await keys(True), registry=registry)
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": client_id},
                "sub": {"essential": True},
            },
            {"nonce": nonce, "client_id": client_id, "access_token": access_token},
        )
        claims.validate(leeway=LEEWAY)
    except ExpiredTokenError as exc:
        raise OAuthLoginError(f"The ID token from {provider} has expired.") from exc
    except JoseError as exc:
        # joserfc names the failed check: bad_signature, invalid_claim (nonce) ...
        reason = exc.error
        claim = getattr(exc, "claim", None)
        if claim:
            reason = f"{reason} {claim!r}"
        raise OAuthLoginError(
            f"The ID token from {provider} was refused ({reason}); the login was not completed."
        ) from exc
    except ValueError as exc:  # a malformed token (not three base64url parts ...)
        raise OAuthLoginError(
            f"The ID token from {provider} could not be read; the login was not completed."
        ) from exc
    return dict(claims)
