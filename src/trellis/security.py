"""Security schemes: dependencies that read credentials, and describe themselves in OpenAPI.

Each scheme is an object you pass to ``Depends``. Per request it reads the credentials from
where its scheme says (the ``Authorization`` header, an API key header, query value or
cookie) and returns them; when they are missing or malformed it refuses the request with
``401 Unauthorized`` and a ``WWW-Authenticate`` challenge. A scheme checks the *form* of the
credentials, never their value: checking the token or the key is the job of your own
dependency on top of it. The API description lists every scheme an operation depends on
(``components.securitySchemes`` and the operation's ``security``).

Schemes work the same on HTTP, server-sent events and websocket routes (a refused websocket
handshake gets the 401 response).

Example:
    ```py
    from typing import Annotated

    from trellis import App
    from trellis.handlers.params import Depends
    from trellis.security import HTTPBearer

    app = App()
    bearer = HTTPBearer()


    def current_user(token: Annotated[str, Depends(bearer)]) -> str:
        user = USERS_BY_TOKEN.get(token)
        if user is None:
            raise UnauthorizedError("Unknown token", headers={"WWW-Authenticate": "Bearer"})
        return user


    @app.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        return {"user": user}
    ```
"""

from __future__ import annotations

import abc
import base64
import binascii
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from trellis.exceptions import UnauthorizedError
from trellis.handlers.params import Depends
from trellis.http.connection import HTTPConnection

__all__ = [
    "APIKeyCookie",
    "APIKeyHeader",
    "APIKeyQuery",
    "BasicCredentials",
    "HTTPBasic",
    "HTTPBearer",
    "OAuth2PasswordBearer",
    "ScopedScheme",
    "Security",
    "SecurityScheme",
]


class SecurityScheme(abc.ABC):
    """Base of the security schemes: a dependency provider that returns credentials.

    Subclasses set ``challenge`` (the ``WWW-Authenticate`` value of their 401) and implement
    ``openapi`` and ``__call__``. An instance is hashable by identity, so one instance used by
    several dependencies of a request runs once.

    Args:
        scheme_name: The name of the scheme in the API description
            (``components.securitySchemes``). Two schemes with the same name must describe
            the same thing.
        auto_error: Refuse the request with 401 when the credentials are missing or malformed
            (the default); when false, return ``None`` instead and let your code decide.
        description: Text for the API description.
    """

    #: The ``WWW-Authenticate`` challenge sent with the 401.
    challenge: ClassVar[str] = "Bearer"

    def __init__(
        self, *, scheme_name: str, auto_error: bool = True, description: str | None = None
    ) -> None:
        self.scheme_name = scheme_name
        self.auto_error = auto_error
        self.description = description

    @abc.abstractmethod
    def openapi(self) -> dict[str, Any]:
        """Return the OpenAPI Security Scheme Object describing this scheme."""

    @abc.abstractmethod
    async def __call__(self, request: HTTPConnection) -> Any:
        """Return the request's credentials (``None`` when missing and ``auto_error`` is off).

        Args:
            request: The connection (a ``WebSocket`` on websocket routes).

        Raises:
            UnauthorizedError: the credentials are missing or malformed and ``auto_error``
                is on.
        """

    def _www_authenticate(self) -> str:
        return self.challenge

    def _refuse(self, detail: str) -> None:
        """Raise the 401 when ``auto_error`` is on; return (so the caller gives ``None``) else."""
        if self.auto_error:
            raise UnauthorizedError(detail, headers={"WWW-Authenticate": self._www_authenticate()})

    def _described(self, doc: dict[str, Any]) -> dict[str, Any]:
        if self.description:
            doc["description"] = self.description
        return doc

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scheme_name={self.scheme_name!r})"


def _authorization(request: HTTPConnection) -> tuple[str, str] | None:
    """The ``Authorization`` header as ``(scheme in lower case, credentials)``, or ``None``."""
    value = request.headers.get("authorization")
    if not value or not value.strip():
        return None
    scheme, _, credentials = value.strip().partition(" ")
    return scheme.lower(), credentials.strip()


class HTTPBearer(SecurityScheme):
    """``Authorization: Bearer <token>``: returns the token.

    Args:
        scheme_name: The name in the API description.
        bearer_format: A hint for the API description about the token's format (``"JWT"``).
        auto_error: Refuse with 401 when the token is missing (else return ``None``).
        description: Text for the API description.
    """

    challenge = "Bearer"

    def __init__(
        self,
        *,
        scheme_name: str = "bearerAuth",
        bearer_format: str | None = None,
        auto_error: bool = True,
        description: str | None = None,
    ) -> None:
        super().__init__(scheme_name=scheme_name, auto_error=auto_error, description=description)
        self.bearer_format = bearer_format

    def openapi(self) -> dict[str, Any]:
        """Return ``{"type": "http", "scheme": "bearer", ...}``."""
        doc: dict[str, Any] = {"type": "http", "scheme": "bearer"}
        if self.bearer_format:
            doc["bearerFormat"] = self.bearer_format
        return self._described(doc)

    async def __call__(self, request: HTTPConnection) -> str | None:
        """Return the bearer token of the request.

        Args:
            request: The connection.

        Raises:
            UnauthorizedError: no ``Authorization`` header, another scheme than ``Bearer``,
                or an empty token (unless ``auto_error`` is off: then ``None``).
        """
        return _bearer_token(self, request)


def _bearer_token(scheme: SecurityScheme, request: HTTPConnection) -> str | None:
    found = _authorization(request)
    if found is None:
        scheme._refuse("Not authenticated")
        return None
    word, token = found
    if word != "bearer" or not token:
        scheme._refuse("Invalid authentication credentials: expected a Bearer token")
        return None
    return token


@dataclasses.dataclass(frozen=True, slots=True)
class BasicCredentials:
    """The user name and password of HTTP Basic authentication.

    Attributes:
        username: The user name (before the first ``:``).
        password: The password (after it; may contain ``:``).
    """

    username: str
    password: str = dataclasses.field(repr=False)


class HTTPBasic(SecurityScheme):
    """``Authorization: Basic <base64(user:password)>``: returns ``BasicCredentials``.

    Args:
        scheme_name: The name in the API description.
        realm: The realm sent in the challenge (``WWW-Authenticate: Basic realm="..."``);
            browsers show it in their login prompt.
        auto_error: Refuse with 401 when the credentials are missing or malformed (else
            return ``None``).
        description: Text for the API description.
    """

    challenge = "Basic"

    def __init__(
        self,
        *,
        scheme_name: str = "basicAuth",
        realm: str | None = None,
        auto_error: bool = True,
        description: str | None = None,
    ) -> None:
        super().__init__(scheme_name=scheme_name, auto_error=auto_error, description=description)
        self.realm = realm

    def _www_authenticate(self) -> str:
        if self.realm is None:
            return "Basic"
        realm = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        return f'Basic realm="{realm}", charset="UTF-8"'

    def openapi(self) -> dict[str, Any]:
        """Return ``{"type": "http", "scheme": "basic"}``."""
        return self._described({"type": "http", "scheme": "basic"})

    async def __call__(self, request: HTTPConnection) -> BasicCredentials | None:
        """Return the user name and password of the request.

        Args:
            request: The connection.

        Raises:
            UnauthorizedError: no ``Authorization`` header, another scheme than ``Basic``,
                invalid base64 or UTF-8, or no ``:`` (unless ``auto_error`` is off: then
                ``None``).
        """
        found = _authorization(request)
        if found is None:
            self._refuse("Not authenticated")
            return None
        word, encoded = found
        if word != "basic":
            self._refuse("Invalid authentication credentials: expected Basic credentials")
            return None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            self._refuse("Invalid authentication credentials: malformed Basic credentials")
            return None
        username, colon, password = decoded.partition(":")
        if not colon:
            self._refuse("Invalid authentication credentials: malformed Basic credentials")
            return None
        return BasicCredentials(username, password)


class _APIKey(SecurityScheme):
    """An API key in a header, a query value or a cookie."""

    challenge = "APIKey"
    location: ClassVar[str] = "header"

    def __init__(
        self,
        name: str,
        *,
        scheme_name: str,
        auto_error: bool = True,
        description: str | None = None,
    ) -> None:
        super().__init__(scheme_name=scheme_name, auto_error=auto_error, description=description)
        self.name = name

    def openapi(self) -> dict[str, Any]:
        """Return ``{"type": "apiKey", "in": ..., "name": ...}``."""
        return self._described({"type": "apiKey", "in": self.location, "name": self.name})

    @abc.abstractmethod
    def _read(self, request: HTTPConnection) -> str | None:
        """The key as the request carries it, or ``None``."""

    async def __call__(self, request: HTTPConnection) -> str | None:
        """Return the API key of the request.

        Args:
            request: The connection.

        Raises:
            UnauthorizedError: the key is missing or empty (unless ``auto_error`` is off: then
                ``None``).
        """
        key = self._read(request)
        if not key:
            self._refuse(f"Not authenticated: missing API key {self.name!r} ({self.location})")
            return None
        return key


class APIKeyHeader(_APIKey):
    """An API key in a request header: returns its value.

    Args:
        name: The header (case-insensitive).
        scheme_name: The name in the API description.
        auto_error: Refuse with 401 when the key is missing (else return ``None``).
        description: Text for the API description.
    """

    location = "header"

    def __init__(
        self,
        name: str = "X-API-Key",
        *,
        scheme_name: str = "apiKeyHeader",
        auto_error: bool = True,
        description: str | None = None,
    ) -> None:
        super().__init__(
            name, scheme_name=scheme_name, auto_error=auto_error, description=description
        )

    def _read(self, request: HTTPConnection) -> str | None:
        value: str | None = request.headers.get(self.name)
        return value


class APIKeyQuery(_APIKey):
    """An API key in the query string: returns its value.

    Args:
        name: The query parameter.
        scheme_name: The name in the API description.
        auto_error: Refuse with 401 when the key is missing (else return ``None``).
        description: Text for the API description.
    """

    location = "query"

    def __init__(
        self,
        name: str = "api_key",
        *,
        scheme_name: str = "apiKeyQuery",
        auto_error: bool = True,
        description: str | None = None,
    ) -> None:
        super().__init__(
            name, scheme_name=scheme_name, auto_error=auto_error, description=description
        )

    def _read(self, request: HTTPConnection) -> str | None:
        return request.query.get(self.name)


class APIKeyCookie(_APIKey):
    """An API key in a cookie: returns its value.

    Args:
        name: The cookie.
        scheme_name: The name in the API description.
        auto_error: Refuse with 401 when the key is missing (else return ``None``).
        description: Text for the API description.
    """

    location = "cookie"

    def __init__(
        self,
        name: str = "session",
        *,
        scheme_name: str = "apiKeyCookie",
        auto_error: bool = True,
        description: str | None = None,
    ) -> None:
        super().__init__(
            name, scheme_name=scheme_name, auto_error=auto_error, description=description
        )

    def _read(self, request: HTTPConnection) -> str | None:
        return request.cookies.get(self.name)


class OAuth2PasswordBearer(SecurityScheme):
    """OAuth2 with the password flow: returns the bearer token of ``Authorization``.

    The token endpoint (``token_url``) is yours: a route that checks the user name and
    password of the form and returns ``{"access_token": ..., "token_type": "bearer"}``.

    Args:
        token_url: The URL of the token endpoint, as the API docs' "Authorize" dialog will
            post to it (relative URLs are resolved against the document's server).
        scheme_name: The name in the API description.
        scopes: The scopes the API knows, as ``{name: description}``.
        refresh_url: The URL to refresh tokens, if any.
        auto_error: Refuse with 401 when the token is missing (else return ``None``).
        description: Text for the API description.
    """

    challenge = "Bearer"

    def __init__(
        self,
        token_url: str,
        *,
        scheme_name: str = "oauth2",
        scopes: Mapping[str, str] | None = None,
        refresh_url: str | None = None,
        auto_error: bool = True,
        description: str | None = None,
    ) -> None:
        super().__init__(scheme_name=scheme_name, auto_error=auto_error, description=description)
        self.token_url = token_url
        self.scopes: dict[str, str] = dict(scopes or {})
        self.refresh_url = refresh_url

    def openapi(self) -> dict[str, Any]:
        """Return ``{"type": "oauth2", "flows": {"password": {...}}}``."""
        flow: dict[str, Any] = {"tokenUrl": self.token_url, "scopes": dict(self.scopes)}
        if self.refresh_url:
            flow["refreshUrl"] = self.refresh_url
        return self._described({"type": "oauth2", "flows": {"password": flow}})

    async def __call__(self, request: HTTPConnection) -> str | None:
        """Return the bearer token of the request.

        Args:
            request: The connection.

        Raises:
            UnauthorizedError: no ``Authorization`` header, another scheme than ``Bearer``,
                or an empty token (unless ``auto_error`` is off: then ``None``).
        """
        return _bearer_token(self, request)


class ScopedScheme:
    """A scheme that an operation needs with some scopes (made by ``Security``).

    It returns what its scheme returns; the scopes are listed in the operation's ``security``
    of the API description. Checking that the token grants them is your code's job.

    It compares and hashes equal to its scheme, so for dependency injection it *is* the
    scheme: ``app.dependency_overrides[scheme]`` replaces it too, and within one request the
    scheme runs once however many scoped uses ask for it.

    Attributes:
        scheme: The wrapped scheme.
        scopes: The scopes the operation requires.
    """

    def __init__(self, scheme: SecurityScheme, scopes: Iterable[str]) -> None:
        self.scheme = scheme
        self.scopes: tuple[str, ...] = tuple(scopes)

    async def __call__(self, request: HTTPConnection) -> Any:
        """Return the wrapped scheme's credentials.

        Args:
            request: The connection.
        """
        return await self.scheme(request)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScopedScheme):
            return other.scheme is self.scheme
        return other is self.scheme

    def __hash__(self) -> int:
        return hash(self.scheme)

    def __repr__(self) -> str:
        return f"Security({self.scheme!r}, scopes={list(self.scopes)!r})"


def Security(scheme: SecurityScheme, *, scopes: Iterable[str] = ()) -> Depends:
    """``Depends(scheme)``, listing the ``scopes`` the operation requires in the API description.

    Args:
        scheme: The security scheme.
        scopes: The OAuth2 scopes (or other role names) the operation requires.

    Returns:
        A ``Depends`` marker: use it as ``Annotated[str, Security(oauth2, scopes=["read"])]``.
    """
    if not isinstance(scheme, SecurityScheme):
        raise TypeError(f"Security() needs a SecurityScheme, got {scheme!r}")
    scopes = tuple(scopes)
    return Depends(ScopedScheme(scheme, scopes) if scopes else scheme)
