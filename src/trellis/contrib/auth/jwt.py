"""JSON Web Tokens (PyJWT): short-lived, signed access tokens checked without a database table.

```py
config = JWTConfig(
    keys={"2026-05": os.environ["JWT_KEY"]},       # kid -> key (HMAC secret or PEM)
    algorithms=("HS256",),
    issuer="https://api.example.com",
    audience="example-api",
    lifetime=900,                                  # seconds
)
auth = app.install(Auth(jwt=config))
token = auth.create_jwt(user)                      # Authorization: Bearer <token>
```

Verification is strict:

- the algorithms are pinned: a token whose header names another algorithm, ``none``
  included, is refused before any signature check;
- the key is chosen by the token's ``kid`` among the configured keys (unknown ``kid``: 401),
  and each key only takes the algorithms of its own family, so an RSA public key is never
  used as an HMAC secret (the "HS256 signed with the public key" confusion);
- ``exp``, ``iat`` and ``sub`` are required; ``nbf`` is checked when present; ``iss`` and
  ``aud`` are required and checked when configured.

Rotating keys: add the new key, make it ``signing_kid``, and remove the old one once the
tokens it signed have expired (``lifetime`` later).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt as pyjwt
from jwt.algorithms import get_default_algorithms

from trellis.exceptions import ConfigurationError

__all__ = ["ExpiredJWTError", "InvalidJWTError", "JWTConfig"]


class InvalidJWTError(Exception):
    """The token is not a valid JWT for this application (the message says why, for logs)."""


class ExpiredJWTError(InvalidJWTError):
    """The token was valid, and its ``exp`` has passed."""


class _Key:
    __slots__ = ("algorithms", "sign_key", "verify_key")

    def __init__(self, algorithms: tuple[str, ...], verify_key: Any, sign_key: Any) -> None:
        self.algorithms = algorithms
        self.verify_key = verify_key
        self.sign_key = sign_key


def _prepare(kid: str, key: Any, algorithms: Sequence[str]) -> _Key:
    known = get_default_algorithms()
    fits: list[str] = []
    weak: list[str] = []
    prepared: Any = None
    for name in algorithms:
        algorithm = known[name]
        try:
            candidate = algorithm.prepare_key(key)
        except (pyjwt.InvalidKeyError, TypeError, ValueError):
            continue
        problem = algorithm.check_key_length(candidate)
        if problem:  # too short for this algorithm: not used with it
            weak.append(problem)
            continue
        fits.append(name)
        prepared = candidate
    if not fits and weak:
        raise ConfigurationError(f"JWT key {kid!r} is too weak: {weak[0]}")
    if not fits:
        raise ConfigurationError(
            f"JWT key {kid!r} fits none of the algorithms {', '.join(algorithms)}: an HMAC"
            " secret for HS*, a PEM key for RS*/PS*/ES*/EdDSA"
        )
    public_key = getattr(prepared, "public_key", None)
    if callable(public_key):  # a private key: verify with its public half, sign with it
        return _Key(tuple(fits), public_key(), prepared)
    symmetric = isinstance(prepared, bytes)
    return _Key(tuple(fits), prepared, prepared if symmetric else None)


class JWTConfig:
    """The keys and rules for the JWTs an application issues and accepts.

    Args:
        keys: ``{kid: key}``. A key is an HMAC secret (``str``/``bytes``, at least as long as
            the hash: 32 bytes for HS256) or a PEM key: a private key signs and verifies, a
            public key only verifies (tokens from another issuer).
        signing_kid: The key ``create_jwt`` signs with (default: the first key that can).
        algorithms: The accepted algorithms (``none`` is refused). Each key takes those of
            its family.
        signing_algorithm: The algorithm ``create_jwt`` uses (default: the signing key's
            first).
        issuer: Written as ``iss`` and required on every token.
        audience: Written as ``aud`` and required on every token (one or several values).
        lifetime: Seconds a token made by ``create_jwt`` is valid.
        leeway: Seconds of clock difference tolerated on ``exp``, ``nbf`` and ``iat``.

    Raises:
        ConfigurationError: no key, an unknown or ``none`` algorithm, a key that fits no
            algorithm, or an HMAC secret or RSA key too short.
    """

    def __init__(
        self,
        keys: Mapping[str, Any],
        *,
        signing_kid: str | None = None,
        algorithms: Sequence[str] = ("HS256",),
        signing_algorithm: str | None = None,
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        lifetime: float = 900,
        leeway: float = 0,
    ) -> None:
        if not keys:
            raise ConfigurationError("JWTConfig needs at least one key: keys={kid: key}")
        algorithms = tuple(algorithms)
        known = get_default_algorithms()
        for name in algorithms:
            if name.lower() == "none":
                raise ConfigurationError("JWTConfig refuses the 'none' algorithm")
            if name not in known:
                raise ConfigurationError(
                    f"unknown JWT algorithm {name!r}; known: {', '.join(sorted(known))}"
                )
        if not algorithms:
            raise ConfigurationError("JWTConfig needs at least one algorithm")
        if lifetime <= 0:
            raise ConfigurationError("JWTConfig lifetime must be positive (seconds)")
        self.algorithms = algorithms
        self.issuer = issuer
        self.audience: str | list[str] | None = (
            audience if audience is None or isinstance(audience, str) else list(audience)
        )
        self.lifetime = lifetime
        self.leeway = leeway
        self._keys = {str(kid): _prepare(str(kid), key, algorithms) for kid, key in keys.items()}
        if signing_kid is None:
            signing_kid = next(
                (kid for kid, key in self._keys.items() if key.sign_key is not None), None
            )
        elif signing_kid not in self._keys:
            raise ConfigurationError(
                f"signing_kid {signing_kid!r} is not one of the keys: {', '.join(self._keys)}"
            )
        elif self._keys[signing_kid].sign_key is None:
            raise ConfigurationError(
                f"JWT key {signing_kid!r} is a public key: it verifies tokens but cannot sign"
            )
        self.signing_kid = signing_kid
        if (
            signing_algorithm is not None
            and signing_kid is not None
            and signing_algorithm not in self._keys[signing_kid].algorithms
        ):
            raise ConfigurationError(
                f"signing_algorithm {signing_algorithm!r} does not fit key {signing_kid!r}"
                f" (it takes {', '.join(self._keys[signing_kid].algorithms)})"
            )
        self.signing_algorithm = signing_algorithm

    @property
    def kids(self) -> tuple[str, ...]:
        """The ids of the configured keys."""
        return tuple(self._keys)

    def encode(self, claims: Mapping[str, Any]) -> str:
        """Sign ``claims`` with the signing key, adding ``iat``, ``exp``, ``jti``, ``iss``, ``aud``.

        Claims given win over the added ones (``exp`` for another lifetime).

        Raises:
            ConfigurationError: no key can sign (only public keys are configured).
        """
        kid = self.signing_kid
        if kid is None:
            raise ConfigurationError(
                "no JWT key can sign: every configured key is a public key (give a private"
                " key or an HMAC secret to issue tokens)"
            )
        key = self._keys[kid]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iat": now,
            "exp": now + int(self.lifetime),
            "jti": secrets.token_urlsafe(16),
        }
        if self.issuer is not None:
            payload["iss"] = self.issuer
        if self.audience is not None:
            payload["aud"] = self.audience
        payload.update(claims)
        algorithm = self.signing_algorithm or key.algorithms[0]
        return pyjwt.encode(payload, key.sign_key, algorithm=algorithm, headers={"kid": kid})

    def decode(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` once every check passed.

        Raises:
            ExpiredJWTError: the token has expired.
            InvalidJWTError: anything else (malformed, unknown ``kid``, algorithm not
                allowed for the key, bad signature, missing or wrong claim).
        """
        try:
            header = pyjwt.get_unverified_header(token)
        except pyjwt.PyJWTError as exc:
            raise InvalidJWTError(f"malformed token: {exc}") from None
        kid = header.get("kid")
        if kid is None and len(self._keys) == 1:
            kid = next(iter(self._keys))
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidJWTError(f"unknown key id {kid!r}")
        algorithm = header.get("alg")
        if algorithm not in key.algorithms:
            raise InvalidJWTError(f"algorithm {algorithm!r} is not allowed for key {kid!r}")
        required = ["exp", "iat", "sub"]
        if self.issuer is not None:
            required.append("iss")
        if self.audience is not None:
            required.append("aud")
        try:
            claims: dict[str, Any] = pyjwt.decode(
                token,
                key.verify_key,
                algorithms=list(key.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": required, "enforce_minimum_key_length": True},
            )
        except pyjwt.ExpiredSignatureError:
            raise ExpiredJWTError("the token has expired") from None
        except pyjwt.PyJWTError as exc:
            raise InvalidJWTError(str(exc) or type(exc).__name__) from None
        return claims

    def __repr__(self) -> str:
        return (
            f"JWTConfig(kids={list(self._keys)!r}, algorithms={list(self.algorithms)!r},"
            f" issuer={self.issuer!r}, audience={self.audience!r})"
        )
