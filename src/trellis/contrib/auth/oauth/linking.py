"""Which ``User`` a third-party login belongs to: the linking rules.

Given what the provider asserted (an ``OAuthIdentity``) and who is logged in already,
``resolve_user`` finds, links or creates the user, in this order:

1. The provider account (``provider``, ``subject``) is already linked: that user. When
   someone else is logged in, the login is refused (one provider account, one user).
2. Someone is logged in: the provider account is linked to them ("connect GitHub").
3. The provider asserts a **verified** email that belongs to a user: linked to that user.
   An unverified email never links, it could be anyone's (see below).
4. Otherwise a new user: the provider's (verified) email, a user name derived from the
   provider's handle or the email (made unique), and no password.

Refused, with a message that says what to do: a disabled user (403); a provider account
linked to another user than the one logged in (409); no email (400); an email the provider
did not verify, whether or not a user has it (409 / 400). Creating an account from an
unverified address would let anyone who can type a victim's address at a careless provider
pre-register the victim's account and keep a way into it. ``trust_email=True`` on a provider
(your own single sign-on) treats its emails as verified.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from unicodedata import normalize

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from trellis.contrib.auth.models import OAuthAccount, User, normalize_email
from trellis.contrib.auth.oauth.client import OAuthLoginError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from trellis.contrib.auth.oauth.providers import OAuthIdentity, OAuthProvider

__all__ = ["LinkResult", "resolve_user", "username_for"]

#: Longest user name made from provider data (the column allows 150).
USERNAME_LENGTH = 30
_NOT_ALLOWED = re.compile(r"[^a-z0-9._-]+")
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class LinkResult:
    """The outcome of ``resolve_user``.

    Attributes:
        user: The user to log in (or who stays logged in).
        action: ``"login"`` (a known provider account), ``"linked"`` (the provider account
            was just attached to an existing user) or ``"created"`` (a new user).
        account: The ``OAuthAccount`` row.
    """

    user: User
    action: Literal["login", "linked", "created"]
    account: OAuthAccount


def _clean(text: str) -> str:
    # "Zoë Ünal" -> "zoe-unal": accents dropped; scripts without an ASCII form vanish, and
    # the next candidate is tried.
    text = normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = _NOT_ALLOWED.sub("-", text)
    return text.strip("._-")[:USERNAME_LENGTH].strip("._-")


def username_for(identity: OAuthIdentity) -> str:
    """The user name a new user would want, before making it unique.

    The provider's handle, else the email's local part, else the display name, else
    ``"user"``; reduced to lower case ASCII letters, digits, ``.``, ``_`` and ``-``.
    """
    candidates = (
        identity.username,
        identity.email.split("@", 1)[0] if identity.email else None,
        identity.name,
    )
    for candidate in candidates:
        if candidate:
            cleaned = _clean(candidate)
            if cleaned:
                return cleaned
    return "user"


async def _free_username(session: AsyncSession, base: str) -> str:
    """``base``, or ``base2``, ``base3`` ... whichever is free (one query)."""
    taken = set(
        (
            await session.scalars(
                select(User.username).where(User.username.startswith(base, autoescape=True))
            )
        ).all()
    )
    if base not in taken:
        return base
    for n in range(2, 1000):
        name = f"{base}{n}"
        if name not in taken:
            return name
    return f"{base}-{secrets.token_hex(4)}"


def _refuse(message: str, status: int = 400) -> OAuthLoginError:
    return OAuthLoginError(message, status=status)


async def _account(session: AsyncSession, provider: str, subject: str) -> OAuthAccount | None:
    result: OAuthAccount | None = await session.scalar(
        select(OAuthAccount).where(
            OAuthAccount.provider == provider, OAuthAccount.subject == subject
        )
    )
    return result


async def _link(
    session: AsyncSession, user: User, identity: OAuthIdentity, email: str | None
) -> OAuthAccount:
    account = OAuthAccount(
        user_id=user.id, provider=identity.provider, subject=identity.subject, email=email
    )
    session.add(account)
    await session.flush()
    return account


async def resolve_user(
    session: AsyncSession,
    provider: OAuthProvider,
    identity: OAuthIdentity,
    *,
    current: User | None = None,
) -> LinkResult:
    """Find, link or create the user for a completed third-party login (rules above).

    Runs in the caller's transaction (it flushes, the caller commits).

    Args:
        session: The database session.
        provider: The provider the identity comes from (its ``title`` and ``trust_email``).
        identity: What the provider asserted.
        current: The user logged in on this browser, if any.

    Raises:
        OAuthLoginError: the login cannot be tied to a user (the message says why).
    """
    title = provider.title
    email = normalize_email(identity.email) if identity.email else None
    verified = bool(email) and (identity.email_verified or provider.trust_email)

    for attempt in range(_ATTEMPTS):
        account = await _account(session, identity.provider, identity.subject)
        if account is not None:
            user = await session.get(User, account.user_id)
            assert user is not None  # the foreign key cascades deletes
            if current is not None and current.id != user.id:
                raise _refuse(
                    f"This {title} account is already connected to another user. Log out and"
                    f" log in with {title} to use that account.",
                    409,
                )
            if not user.is_active:
                raise _refuse("This account is disabled.", 403)
            if email and account.email != email:
                account.email = email
            return LinkResult(user, "login", account)

        if current is not None:
            return LinkResult(current, "linked", await _link(session, current, identity, email))

        if email is None:
            raise _refuse(
                f"{title} did not share your email address. Allow access to it at {title}, or"
                " register with a password."
            )
        owner = await session.scalar(select(User).where(User.email == email))
        if not verified:
            if owner is not None:
                raise _refuse(
                    f"An account with the address {email} exists, but {title} has not"
                    " confirmed that this address is yours. Log in with your password, then"
                    f" connect {title} from your account.",
                    409,
                )
            raise _refuse(
                f"{title} has not confirmed your email address {email}. Confirm it at"
                f" {title}, or register with a password."
            )
        if owner is not None:
            if not owner.is_active:
                raise _refuse("This account is disabled.", 403)
            return LinkResult(owner, "linked", await _link(session, owner, identity, email))

        # A new user. Two logins racing for the same provider account (or the same user
        # name) collide on a unique constraint: the savepoint is rolled back and the rules
        # run again, finding what the other request made.
        base = username_for(identity)
        try:
            async with session.begin_nested():
                if attempt:
                    username = f"{base}-{secrets.token_hex(3)}"
                else:
                    username = await _free_username(session, base)
                user = User(email=email, username=username, password_hash=None)
                session.add(user)
                await session.flush()
                account = await _link(session, user, identity, email)
        except IntegrityError:
            continue
        return LinkResult(user, "created", account)
    raise _refuse(f"The login with {title} collided with another one; try again.", 409)
