"""Identity providers: plain OAuth 2, OpenID Connect, and presets (GitHub, Google).

A provider knows its endpoints and credentials, builds the authorization URL, exchanges the
code for tokens and turns what it learns into an ``OAuthIdentity``. The login routes
(``trellis.contrib.auth.oauth.routes``) drive it; the protocol details (PKCE, client
authentication, ID token checks) live in ``trellis.contrib.auth.oauth.client``.

```python
from trellis.contrib.auth import Auth
from trellis.contrib.auth.oauth import GitHub, Google, OIDCProvider

app.install(Auth(oauth=[
    GitHub(client_id="...", client_secret="..."),
    Google(client_id="...", client_secret="..."),
    OIDCProvider("corp", "client-id", "secret",
                 "https://sso.example.com/.well-known/openid-configuration", title="Corp SSO"),
]))
```
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc.jwk import KeySet

from trellis.contrib.auth.oauth import client as _client
from trellis.contrib.auth.oauth.client import OAuthLoginError
from trellis.exceptions import ConfigurationError

__all__ = [
    "GitHub",
    "Google",
    "OAuthIdentity",
    "OAuthProvider",
    "OIDCProvider",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_WELL_KNOWN = "/.well-known/openid-configuration"

#: Makes the ``httpx.AsyncClient`` a provider talks through (proxies, a private CA, tests).
HTTPClientFactory = Callable[[], httpx.AsyncClient]


@dataclass(frozen=True, slots=True)
class OAuthIdentity:
    """What a provider asserts about the person who just logged in.

    Attributes:
        provider: The provider's name (``"github"``).
        subject: The provider's stable id for the person (OIDC ``sub``, GitHub's numeric id).
        email: The email address the provider gave, if any.
        email_verified: Whether the provider says it verified ``email``. Only a verified
            email links the login to an existing account.
        username: A handle suggested by the provider (``preferred_username``, GitHub login).
        name: The display name, if given.
        claims: Everything the provider said (ID token claims merged with userinfo).
    """

    provider: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    username: str | None = None
    name: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)


def _truthy(value: Any) -> bool:
    # Some providers send "true" as a string (AWS Cognito, older ADFS).
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


class OAuthProvider:
    """A plain OAuth 2 identity provider: authorization code flow, then a userinfo request.

    Use it for providers without OpenID Connect; ``GitHub`` is one. The code flow always
    carries ``state`` and (unless ``pkce=False``) a PKCE S256 challenge.

    Args:
        name: The provider's name in URLs (``/auth/oauth/{name}/login``) and in the
            ``OAuthAccount.provider`` column: lower case letters, digits, ``-`` and ``_``.
        client_id: The client id the provider issued to this application.
        client_secret: The client secret (never sent to the browser).
        authorize_url: Where the browser is sent to log in.
        token_url: Where the code is exchanged for an access token.
        userinfo_url: Where the profile is read with the access token (a JSON object).
        scopes: The scopes to ask for.
        title: The name shown to people (``"Log in with {title}"``); defaults to ``name``.
        authorize_params: Extra query parameters for the authorization URL
            (``{"prompt": "select_account"}``).
        token_endpoint_auth_method: How the client authenticates at the token endpoint:
            ``"client_secret_basic"`` (HTTP Basic, the default), ``"client_secret_post"``
            (in the form) or ``"none"`` (public client, PKCE only).
        pkce: Send a PKCE S256 challenge (on by default; harmless for providers that
            ignore it).
        redirect_uri: The callback URL registered with the provider. By default it is built
            from the request (scheme and host, as seen through trusted proxies); set it when
            the public URL differs.
        http_client: Makes the ``httpx.AsyncClient`` used to talk to the provider, for
            proxies, a private certificate authority or tests. Called once per login.
        timeout: Seconds to wait for the provider when ``http_client`` is not given.
        trust_email: Treat every email this provider gives as verified, even without an
            ``email_verified`` claim. Only for a provider you control (your own single
            sign-on): a verified email links the login to the account that has it.

    Raises:
        ConfigurationError: a bad name, an empty client id or an unknown auth method.
    """

    #: Whether ID tokens are expected (``OIDCProvider``).
    openid: bool = False

    def __init__(
        self,
        name: str,
        client_id: str,
        client_secret: str,
        *,
        authorize_url: str,
        token_url: str,
        userinfo_url: str | None = None,
        scopes: Sequence[str] = (),
        title: str | None = None,
        authorize_params: Mapping[str, str] | None = None,
        token_endpoint_auth_method: str = "client_secret_basic",
        pkce: bool = True,
        redirect_uri: str | None = None,
        http_client: HTTPClientFactory | None = None,
        timeout: float = 10.0,
        trust_email: bool = False,
    ) -> None:
        if not _NAME.match(name):
            raise ConfigurationError(
                f"OAuth provider name {name!r} must be lower case letters, digits, '-' and '_'"
                " (it appears in URLs and in the database)"
            )
        if not client_id:
            raise ConfigurationError(f"OAuth provider {name!r}: client_id is empty")
        if token_endpoint_auth_method not in _client.AUTH_METHODS:
            raise ConfigurationError(
                f"OAuth provider {name!r}: token_endpoint_auth_method must be one of"
                f" {', '.join(sorted(_client.AUTH_METHODS))}, not {token_endpoint_auth_method!r}"
            )
        if not client_secret and token_endpoint_auth_method != "none":
            raise ConfigurationError(
                f"OAuth provider {name!r}: client_secret is empty (for a public client, pass"
                " token_endpoint_auth_method='none')"
            )
        self.name = name
        self.client_id = client_id
        self.client_secret = client_secret
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.userinfo_url = userinfo_url
        self.scopes = tuple(scopes)
        self.title = title or name
        self.authorize_params = dict(authorize_params or {})
        self.token_endpoint_auth_method = token_endpoint_auth_method
        self.pkce = pkce
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self.trust_email = trust_email
        self._http_client = http_client

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, client_id={self.client_id!r})"

    def http_client(self) -> httpx.AsyncClient:
        """A new ``httpx.AsyncClient`` for talking to the provider (close it after use)."""
        if self._http_client is not None:
            return self._http_client()
        # PERF: one client per login, not one per process: logins are rare, and a long-lived
        # client would be tied to the event loop that first used it.
        return httpx.AsyncClient(
            timeout=self.timeout, headers={"User-Agent": "trellis-oauth"}, follow_redirects=False
        )

    async def endpoints(self, client: httpx.AsyncClient) -> _client.Endpoints:
        """The provider's endpoints (fixed for plain OAuth 2; discovered for OpenID Connect)."""
        return _client.Endpoints(
            authorize=self.authorize_url, token=self.token_url, userinfo=self.userinfo_url
        )

    async def authorization_url(
        self,
        client: httpx.AsyncClient,
        *,
        redirect_uri: str,
        pending: _client.PendingLogin,
    ) -> str:
        """The URL that starts the login at the provider, for the given pending login."""
        endpoints = await self.endpoints(client)
        return _client.authorization_url(
            endpoints.authorize,
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            scopes=self.scopes,
            state=pending.state,
            code_verifier=pending.code_verifier if self.pkce else None,
            nonce=pending.nonce if self.openid else None,
            extra=self.authorize_params,
        )

    async def fetch_token(
        self, client: httpx.AsyncClient, *, code: str, pending: _client.PendingLogin
    ) -> dict[str, Any]:
        """Exchange the authorization ``code`` for tokens (the token endpoint's JSON).

        Raises:
            OAuthLoginError: the provider refused or could not be reached.
        """
        endpoints = await self.endpoints(client)
        return await _client.exchange_code(
            client,
            endpoints.token,
            provider=self.title,
            client_id=self.client_id,
            client_secret=self.client_secret,
            auth_method=self.token_endpoint_auth_method,
            code=code,
            redirect_uri=pending.redirect_uri,
            code_verifier=pending.code_verifier if self.pkce else None,
        )

    async def fetch_identity(
        self, client: httpx.AsyncClient, token: Mapping[str, Any], *, nonce: str
    ) -> OAuthIdentity:
        """Who logged in: read the userinfo endpoint with the access token.

        Raises:
            OAuthLoginError: the provider refused, could not be reached or said nothing usable.
        """
        endpoints = await self.endpoints(client)
        if endpoints.userinfo is None:
            raise ConfigurationError(f"OAuth provider {self.name!r} has no userinfo_url")
        data: dict[str, Any] = await _client.get_json(
            client, endpoints.userinfo, token=token["access_token"], provider=self.title
        )
        return self.identity_from(data)

    def identity_from(self, data: Mapping[str, Any]) -> OAuthIdentity:
        """Map the provider's profile (userinfo JSON) to an ``OAuthIdentity``.

        The default reads OpenID Connect's standard claims (``sub``, ``email``,
        ``email_verified``, ``preferred_username``, ``name``), falling back to ``id``;
        override it for providers that name things differently.

        Raises:
            OAuthLoginError: the profile has no subject.
        """
        subject = _str_or_none(data.get("sub") if "sub" in data else data.get("id"))
        if subject is None:
            raise OAuthLoginError(
                f"{self.title} did not say who logged in (no subject in its answer)."
            )
        return OAuthIdentity(
            provider=self.name,
            subject=subject,
            email=_str_or_none(data.get("email")),
            email_verified=_truthy(data.get("email_verified")),
            username=_str_or_none(data.get("preferred_username") or data.get("nickname")),
            name=_str_or_none(data.get("name")),
            claims=dict(data),
        )


class OIDCProvider(OAuthProvider):
    """An OpenID Connect provider, configured from its discovery document.

    The discovery document is fetched once (on the first login) and cached; so is the key
    set (JWKS), which is fetched again when an ID token names a key it does not hold (key
    rotation). Every ID token is checked: signature with the provider's keys (asymmetric
    algorithms only), ``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``azp`` when present and
    ``at_hash`` when present. The userinfo endpoint is read when the ID token lacks the
    email or its verification flag.

    Args:
        name: The provider's name in URLs and in the database (see ``OAuthProvider``).
        client_id: The client id the provider issued to this application.
        client_secret: The client secret.
        server_metadata_url: The discovery document
            (``https://issuer/.well-known/openid-configuration``). When the URL has that
            form, the document's ``issuer`` must be the URL's prefix (OpenID Connect
            Discovery 1.0 §4.3).
        scopes: The scopes to ask for; must include ``openid``.
        title: The name shown to people; defaults to ``name``.
        **options: Further ``OAuthProvider`` options (``authorize_params``,
            ``token_endpoint_auth_method``, ``pkce``, ``redirect_uri``, ``http_client``,
            ``timeout``, ``trust_email``).

    Raises:
        ConfigurationError: ``openid`` missing from the scopes, or a bad provider option.
    """

    openid = True

    def __init__(
        self,
        name: str,
        client_id: str,
        client_secret: str,
        server_metadata_url: str,
        scopes: Sequence[str] = ("openid", "email", "profile"),
        title: str | None = None,
        **options: Any,
    ) -> None:
        if "openid" not in scopes:
            raise ConfigurationError(
                f"OpenID Connect provider {name!r}: scopes must include 'openid'"
            )
        super().__init__(
            name,
            client_id,
            client_secret,
            authorize_url="",
            token_url="",
            scopes=scopes,
            title=title,
            **options,
        )
        self.server_metadata_url = server_metadata_url
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    async def metadata(self, client: httpx.AsyncClient) -> dict[str, Any]:
        """The discovery document, fetched on first use and then cached.

        Raises:
            OAuthLoginError: the document could not be fetched or is not valid.
        """
        if self._metadata is None:
            expected = None
            if self.server_metadata_url.endswith(_WELL_KNOWN):
                expected = self.server_metadata_url[: -len(_WELL_KNOWN)]
            self._metadata = await _client.discover(
                client, self.server_metadata_url, provider=self.title, issuer=expected
            )
        return self._metadata

    async def endpoints(self, client: httpx.AsyncClient) -> _client.Endpoints:
        """The endpoints named by the discovery document."""
        metadata = await self.metadata(client)
        return _client.Endpoints(
            authorize=metadata["authorization_endpoint"],
            token=metadata["token_endpoint"],
            userinfo=metadata.get("userinfo_endpoint"),
        )

    async def key_set(self, client: httpx.AsyncClient, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys (``jwks_uri``), cached; ``refresh`` fetches them again."""
        if self._keys is None or refresh:
            metadata = await self.metadata(client)
            self._keys = await _client.fetch_key_set(
                client, metadata["jwks_uri"], provider=self.title
            )
        return self._keys

    async def validate_id_token(
        self, client: httpx.AsyncClient, id_token: str, *, nonce: str, access_token: str | None
    ) -> dict[str, Any]:
        """Check an ID token and return its claims.

        Raises:
            OAuthLoginError: the token is not valid (signature, issuer, audience, expiry,
                nonce, authorized party, access token hash).
        """
        metadata = await self.metadata(client)
        return await _client.validate_id_token(
            id_token,
            keys=lambda refresh: self.key_set(client, refresh=refresh),
            issuer=metadata["issuer"],
            client_id=self.client_id,
            nonce=nonce,
            access_token=access_token,
            algorithms=metadata.get("id_token_signing_alg_values_supported"),
            provider=self.title,
        )

    async def fetch_identity(
        self, client: httpx.AsyncClient, token: Mapping[str, Any], *, nonce: str
    ) -> OAuthIdentity:
        """Who logged in: the validated ID token, completed by userinfo when needed.

        Raises:
            OAuthLoginError: no ID token, an invalid one, or a userinfo answer about someone
                else.
        """
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OAuthLoginError(f"{self.title} did not return an ID token.")
        claims = await self.validate_id_token(
            client, id_token, nonce=nonce, access_token=token.get("access_token")
        )
        endpoints = await self.endpoints(client)
        if endpoints.userinfo and ("email" not in claims or "email_verified" not in claims):
            userinfo: dict[str, Any] = await _client.get_json(
                client, endpoints.userinfo, token=token["access_token"], provider=self.title
            )
            # OpenID Connect Core §5.3.2: a userinfo answer about another subject is ignored
            # (here refused: it means a mix-up or a substituted token).
            if userinfo.get("sub") != claims["sub"]:
                raise OAuthLoginError(
                    f"{self.title} answered the userinfo request about another user."
                )
            claims = {**userinfo, **claims}
        return self.identity_from(claims)


class GitHub(OAuthProvider):
    """GitHub (plain OAuth 2): the profile from ``/user``, the email from ``/user/emails``.

    The email is the account's primary address when GitHub has verified it (the
    ``user:email`` scope lets the app read it even when the profile hides it).

    Args:
        client_id: The OAuth app's client id (GitHub developer settings).
        client_secret: The OAuth app's client secret.
        name: The provider's name in URLs and in the database.
        scopes: The scopes to ask for.
        title: The name shown to people.
        api_url: GitHub's API (``https://HOST/api/v3`` for GitHub Enterprise Server).
        web_url: GitHub's web site (``https://HOST`` for GitHub Enterprise Server).
        **options: Further ``OAuthProvider`` options.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        name: str = "github",
        scopes: Sequence[str] = ("read:user", "user:email"),
        title: str = "GitHub",
        api_url: str = "https://api.github.com",
        web_url: str = "https://github.com",
        **options: Any,
    ) -> None:
        super().__init__(
            name,
            client_id,
            client_secret,
            authorize_url=f"{web_url}/login/oauth/authorize",
            token_url=f"{web_url}/login/oauth/access_token",
            userinfo_url=f"{api_url}/user",
            scopes=scopes,
            title=title,
            **options,
        )
        self.emails_url = f"{api_url}/user/emails"

    async def fetch_identity(
        self, client: httpx.AsyncClient, token: Mapping[str, Any], *, nonce: str
    ) -> OAuthIdentity:
        """The GitHub user, with their primary verified email from ``/user/emails``."""
        access_token = token["access_token"]
        assert self.userinfo_url is not None
        profile: dict[str, Any] = await _client.get_json(
            client, self.userinfo_url, token=access_token, provider=self.title
        )
        emails: list[Any] = await _client.get_json(
            client, self.emails_url, token=access_token, provider=self.title, expect=list
        )
        primary = next(
            (e for e in emails if isinstance(e, dict) and e.get("primary") and e.get("email")),
            None,
        )
        data = dict(profile)
        data["email"] = primary["email"] if primary else None
        data["email_verified"] = bool(primary and primary.get("verified") is True)
        return self.identity_from(data)

    def identity_from(self, data: Mapping[str, Any]) -> OAuthIdentity:
        """GitHub names the numeric id ``id`` and the handle ``login``."""
        if data.get("id") is None:
            raise OAuthLoginError("GitHub did not say who logged in (no id in its answer).")
        return OAuthIdentity(
            provider=self.name,
            subject=str(data["id"]),
            email=_str_or_none(data.get("email")),
            email_verified=data.get("email_verified") is True,
            username=_str_or_none(data.get("login")),
            name=_str_or_none(data.get("name")),
            claims=dict(data),
        )


class Google(OIDCProvider):
    """Google accounts (OpenID Connect, discovered from accounts.google.com).

    Args:
        client_id: The OAuth client id (Google Cloud console, "Web application").
        client_secret: The OAuth client secret.
        name: The provider's name in URLs and in the database.
        scopes: The scopes to ask for.
        title: The name shown to people.
        **options: Further ``OAuthProvider`` options (``authorize_params={"hd": "example.com"}``
            hints a Workspace domain; check the ``hd`` claim yourself if you rely on it).
    """

    METADATA_URL = "https://accounts.google.com/.well-known/openid-configuration"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        name: str = "google",
        scopes: Sequence[str] = ("openid", "email", "profile"),
        title: str = "Google",
        **options: Any,
    ) -> None:
        super().__init__(
            name, client_id, client_secret, self.METADATA_URL, scopes, title, **options
        )
