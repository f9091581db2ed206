"""Password reset tokens: signed, expiring, and good for one use, with nothing stored.

A token carries the user's id, the time it was made and a *fingerprint* of the account: an HMAC of
the password hash, the last login time and the e-mail address. It is signed with the app's
secret key (itsdangerous). Setting a new password changes the hash, so the fingerprint no
longer matches and the token is spent; signing in, or changing the address, spends it too.
No table of tokens is needed, and a leaked old token is worthless.

```py
tokens = PasswordResetTokens(app.settings.effective_secret_key(), max_age=3600)
token = tokens.make(user)          # goes into the link of the e-mail
claim = tokens.read(token)         # InvalidResetTokenError when forged, expired ...
user = await db.get(User, claim.user_id)
if user is None or not tokens.matches(user, claim): ...   # already used
```
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

__all__ = [
    "DEFAULT_MAX_AGE",
    "ExpiredResetTokenError",
    "InvalidResetTokenError",
    "PasswordResetTokens",
    "ResetClaim",
]

#: How long a reset link works, in seconds (one hour).
DEFAULT_MAX_AGE = 3600
_SALT = "trellis.auth.password-reset"


class InvalidResetTokenError(Exception):
    """The token is not one this app made (forged, truncated, signed with another key)."""


class ExpiredResetTokenError(InvalidResetTokenError):
    """The token was made by this app but its time is up."""


@dataclass(frozen=True)
class ResetClaim:
    """What a valid token says: whose it is, the account's fingerprint then, when it ends."""

    user_id: Any
    fingerprint: str
    expires_at: float


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        # The same instant must give the same text whether the database returned it aware
        # or naive, with or without microseconds (MariaDB drops them unless told not to).
        return str(int(value.timestamp())) if value.tzinfo else value.strftime("%Y%m%d%H%M%S")
    return str(value)


class PasswordResetTokens:
    """Make and check password reset tokens.

    Args:
        secret_key: The key to sign with, or a list of keys (the last signs, all verify:
            rotate by appending a new key).
        max_age: Seconds a token stays valid (one hour by default).
        salt: Separates these signatures from others made with the same key.
        clock: Returns the current time in seconds (``time.time``); tests pass their own.
    """

    def __init__(
        self,
        secret_key: str | bytes | Sequence[str | bytes],
        *,
        max_age: float = DEFAULT_MAX_AGE,
        salt: str = _SALT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_age <= 0:
            raise ValueError(f"max_age must be positive, got {max_age!r}")
        raw = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
        keys = [k.encode() if isinstance(k, str) else k for k in raw]
        if not keys or not all(keys):
            raise ValueError("PasswordResetTokens needs a non-empty secret key")
        self._serializer = URLSafeSerializer(keys, salt=salt)
        # Newest last, as itsdangerous does: the newest makes, every key verifies.
        self._fingerprint_keys = [
            hashlib.sha256(salt.encode() + b"/fingerprint/" + key).digest() for key in keys
        ]
        self.max_age = max_age
        self.clock = clock

    def fingerprint(self, user: Any) -> str:
        """A short HMAC of what a password reset changes: password hash, last login, e-mail.

        It reveals nothing about the hash (keyed with the secret key) and is what makes a
        token single-use.
        """
        return self._fingerprint(user, self._fingerprint_keys[-1])

    def _fingerprint(self, user: Any, key: bytes) -> str:
        material = "\x1f".join(
            _text(getattr(user, name, None))
            for name in ("id", "password_hash", "last_login", "email", "is_active")
        )
        digest = hmac.new(key, material.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")

    def make(self, user: Any) -> str:
        """A token for ``user`` (an object with ``id``, ``password_hash``, ``last_login``)."""
        # The time it was made, not an expiry: a shorter max_age applies to tokens out there.
        payload = {"u": user.id, "f": self.fingerprint(user), "t": int(self.clock())}
        token: str = self._serializer.dumps(payload)
        return token

    def read(self, token: str) -> ResetClaim:
        """Check the signature and the expiry of ``token`` and return what it says.

        This does not look at the account: call ``matches`` with the user the claim names.

        Raises:
            InvalidResetTokenError: The token is malformed or its signature is wrong.
            ExpiredResetTokenError: The token is older than ``max_age``.
        """
        if not isinstance(token, str) or not token or len(token) > 1024:
            raise InvalidResetTokenError("the password reset link is not valid")
        try:
            payload = self._serializer.loads(token)
        except BadData:
            raise InvalidResetTokenError("the password reset link is not valid") from None
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("f"), str)
            or not isinstance(payload.get("t"), int)
            or "u" not in payload
        ):
            raise InvalidResetTokenError("the password reset link is not valid")
        expires_at = payload["t"] + self.max_age
        if self.clock() >= expires_at:
            raise ExpiredResetTokenError("the password reset link has expired")
        return ResetClaim(payload["u"], payload["f"], float(expires_at))

    def matches(self, user: Any, claim: ResetClaim) -> bool:
        """Whether ``claim`` was made for ``user`` as the account is now (not yet used)."""
        if str(getattr(user, "id", None)) != str(claim.user_id):
            return False
        expected = claim.fingerprint.encode()
        return any(
            hmac.compare_digest(self._fingerprint(user, key).encode(), expected)
            for key in reversed(self._fingerprint_keys)
        )
