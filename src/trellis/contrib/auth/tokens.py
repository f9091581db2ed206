"""Opaque bearer tokens and API keys: random, shown once, stored only as their SHA-256.

```py
token = await auth.issue_token(db, user, name="laptop", expires_in=30 * 86400)
# Authorization: Bearer <token>
key = await auth.issue_token(db, user, kind="api_key", name="CI", scopes=["builds.start"])
# X-API-Key: <key>
await auth.revoke_token(db, token)             # or by id: auth.revoke_token(db, 7)
```

A token is 32 random bytes (``secrets.token_urlsafe``, 43 characters). The database keeps
its SHA-256 (a leaked table gives no usable token; the token's entropy makes a slow hash
pointless) and its first characters (``prefix``) to tell tokens apart in a list. Lookup is
by the hash, through its unique index. A revoked or expired token, or one whose user is
inactive, is refused; ``last_used_at`` is written at most once a minute per token.

A token with ``scopes`` may do only those permissions of its user (``requires()`` checks);
one without scopes may do all its user may.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trellis.contrib.auth.models import AuthToken, User
from trellis.contrib.db.types import utcnow

__all__ = [
    "TOKEN_KINDS",
    "TokenKind",
    "find_token",
    "hash_token",
    "issue_token",
    "new_token",
    "revoke_token",
    "revoke_user_tokens",
]

TokenKind = Literal["bearer", "api_key"]
#: The kinds of opaque tokens: ``Authorization: Bearer`` tokens and ``X-API-Key`` keys.
TOKEN_KINDS: tuple[str, ...] = ("bearer", "api_key")
#: How many characters of a token are kept in clear to recognise it.
PREFIX_LENGTH = 8
#: ``last_used_at`` is written at most this often per token.
TOUCH_INTERVAL = timedelta(seconds=60)


def new_token() -> str:
    """A new random token (256 bits, URL-safe; never contains ``.``, unlike a JWT)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _expiry(expires_in: float | timedelta | None, now: datetime) -> datetime | None:
    if expires_in is None:
        return None
    delta = expires_in if isinstance(expires_in, timedelta) else timedelta(seconds=expires_in)
    if delta <= timedelta(0):
        raise ValueError("expires_in must be positive (seconds or a timedelta), or None")
    return now + delta


async def issue_token(
    db: AsyncSession,
    user: User,
    *,
    kind: TokenKind = "bearer",
    name: str = "",
    expires_in: float | timedelta | None = None,
    scopes: Iterable[str] = (),
) -> str:
    """Make a token for ``user`` and return it: the only time it is seen in clear.

    The row is added to ``db`` and flushed; it is committed with the session (at the end of
    the request for the request's session).

    Args:
        db: The session.
        user: The owner (saved already: it needs an id).
        kind: ``"bearer"`` or ``"api_key"``; each is accepted only where it belongs.
        name: A label for the owner.
        expires_in: Seconds (or a ``timedelta``) until it expires; ``None``: never.
        scopes: Permission codenames the token is limited to (none: all the user's).

    Raises:
        ValueError: an unknown kind, a scope with spaces, or a non-positive ``expires_in``.
    """
    if kind not in TOKEN_KINDS:
        raise ValueError(f"token kind {kind!r}: one of {', '.join(TOKEN_KINDS)}")
    scope_list = [str(scope) for scope in scopes]
    for scope in scope_list:
        if not scope or any(c.isspace() for c in scope):
            raise ValueError(f"scope {scope!r}: a permission codename, without spaces")
    now = utcnow()
    token = new_token()
    row = AuthToken(
        user_id=user.id,
        kind=kind,
        name=name,
        token_hash=hash_token(token),
        prefix=token[:PREFIX_LENGTH],
        scopes=" ".join(scope_list),
        created_at=now,
        expires_at=_expiry(expires_in, now),
    )
    db.add(row)
    await db.flush()
    return token


async def find_token(
    db: AsyncSession, token: str, kind: TokenKind
) -> tuple[AuthToken, User] | None:
    """The valid token ``token`` of ``kind`` and its active user, or ``None``.

    Refused (``None``): unknown, another kind, revoked, expired, or the user inactive. Marks
    ``last_used_at`` when it is older than a minute (written with the session's commit).
    """
    if not token or len(token) > 512:
        return None
    digest = hash_token(token)
    row = (
        await db.execute(
            select(AuthToken, User)
            .join(User, AuthToken.user_id == User.id)
            .where(AuthToken.token_hash == digest)
        )
    ).first()
    if row is None:
        return None
    found, user = row[0], row[1]
    # The index found it; compare again in constant time (no collation can have matched
    # a different string).
    if not hmac.compare_digest(found.token_hash, digest) or found.kind != kind:
        return None
    now = utcnow()
    if not found.is_valid(now) or not user.is_active:
        return None
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_INTERVAL:
        found.last_used_at = now
    return found, user


async def revoke_token(db: AsyncSession, token_or_id: str | int) -> bool:
    """Revoke a token given in clear or by its id; whether a live token was revoked.

    The change is flushed; it is committed with the session.
    """
    if isinstance(token_or_id, int):
        found = await db.get(AuthToken, token_or_id)
    else:
        found = (
            await db.execute(
                select(AuthToken).where(AuthToken.token_hash == hash_token(token_or_id))
            )
        ).scalar_one_or_none()
    if found is None or found.revoked_at is not None:
        return False
    found.revoked_at = utcnow()
    await db.flush()
    return True


async def revoke_user_tokens(
    db: AsyncSession, user: User, kind: TokenKind = "bearer", *, keep: int | None = None
) -> int:
    """Revoke every live token of ``kind`` of ``user``, but the one with id ``keep``.

    A password change or reset does this for ``"bearer"`` tokens (those a sign-in through the
    API hands out): a thief holding one is signed out with the other sessions. API keys,
    made on purpose and named, stay. Returns how many were revoked; committed with ``db``.
    """
    statement = (
        update(AuthToken)
        .where(
            AuthToken.user_id == user.id,
            AuthToken.kind == kind,
            AuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    if keep is not None:
        statement = statement.where(AuthToken.id != keep)
    result = await db.execute(statement)
    count: int = getattr(result, "rowcount", 0)
    return count
