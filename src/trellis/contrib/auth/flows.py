"""The account flows behind the auth pages and the auth JSON API: one implementation of each.

- ``register``: check the e-mail address, user name and password, refuse duplicates, create
  the user;
- ``change_password``: check the current password and the new one, set it;
- ``request_password_reset``: find the account of an e-mail address and mail it a link with a
  reset token; the caller answers the same whether there was an account or not;
- ``reset_password``: check the token from the link and set the new password, which spends
  the token.

Each raises ``FlowError`` with messages per field; the pages show them next to the fields,
the API answers 422 (409 for a taken address or name, 400 for a bad reset link). Nothing here
commits: the request's transaction does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from trellis.contrib.auth.models import (
    User,
    has_control_characters,
    normalize_email,
    normalize_username,
)
from trellis.contrib.auth.reset import (
    DEFAULT_MAX_AGE,
    ExpiredResetTokenError,
    InvalidResetTokenError,
    PasswordResetTokens,
)
from trellis.contrib.auth.tokens import revoke_user_tokens
from trellis.contrib.mail import EmailMessage
from trellis.i18n import gettext, ngettext

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from trellis.app import App
    from trellis.contrib.mail import EmailBackend

__all__ = [
    "FlowError",
    "PasswordPolicy",
    "change_password",
    "check_email",
    "check_reset_token",
    "check_username",
    "has_control_characters",
    "password_reset_email",
    "register",
    "request_password_reset",
    "reset_password",
    "reset_tokens",
]

log = logging.getLogger("trellis.auth")

# Deliberately loose (the only real check is the mail that arrives): one "@", something on
# each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_USERNAME = re.compile(r"^[\w.+-]+$")


class FlowError(Exception):
    """A flow refused its input; ``errors`` maps field names to messages.

    The key ``""`` holds messages about the whole form ("wrong e-mail or password").

    Args:
        errors: Messages per field.
        status: The HTTP status an API answers with: 422 (invalid), 409 (taken), 400 (a bad
            reset link), 401 ...
    """

    def __init__(self, errors: Mapping[str, list[str]], status: int = 422) -> None:
        self.errors = {field: list(messages) for field, messages in errors.items()}
        self.status = status
        super().__init__("; ".join(m for messages in self.errors.values() for m in messages))

    def field_errors(self) -> dict[str, list[str]]:
        """The messages of named fields (without the form-wide ones)."""
        return {field: messages for field, messages in self.errors.items() if field}

    def form_errors(self) -> list[str]:
        """The messages about the whole form."""
        return list(self.errors.get("", []))


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must be.

    Args:
        min_length: The fewest characters (8).
        max_length: The most characters (hashing a megabyte of password costs time).
        allow_numeric: Accept a password of digits only.
    """

    min_length: int = 8
    max_length: int = 1024
    allow_numeric: bool = False

    def check(
        self, password: str, *, email: str | None = None, username: str | None = None
    ) -> list[str]:
        """The reasons ``password`` is refused (empty when it is good enough)."""
        problems: list[str] = []
        if len(password) < self.min_length:
            problems.append(
                gettext("The password must have at least %(num)d characters.", num=self.min_length)
            )
        if len(password) > self.max_length:
            problems.append(
                gettext("The password must have at most %(num)d characters.", num=self.max_length)
            )
        if not self.allow_numeric and password.isdigit():
            problems.append(gettext("The password cannot be only digits."))
        lowered = password.strip().casefold()
        similar = {
            value.strip().casefold()
            for value in (email, username, email.split("@", 1)[0] if email else None)
            if value and value.strip()
        }
        if lowered in similar:
            problems.append(gettext("The password cannot be your e-mail address or user name."))
        return problems


def check_email(value: str) -> tuple[str, list[str]]:
    """The normalized address and the reasons it is refused."""
    email = normalize_email(value)
    if not email:
        return email, [gettext("Enter an e-mail address.")]
    if len(email) > 320 or not _EMAIL.match(email) or has_control_characters(email):
        return email, [gettext("Enter a valid e-mail address.")]
    return email, []


def check_username(value: str) -> tuple[str, list[str]]:
    """The normalized user name and the reasons it is refused.

    Letters, digits and ``. _ + -``, at most 150 characters. No ``@``: the login form takes an
    e-mail address or a user name, so a name must never look like someone's address.
    """
    username = normalize_username(value)
    if not username:
        return username, [gettext("Enter a user name.")]
    if len(username) > 150:
        return username, [gettext("The user name must have at most 150 characters.")]
    if not _USERNAME.match(username):
        return username, [gettext("A user name may contain only letters, digits and . _ + -")]
    return username, []


def _policy(auth: Any) -> PasswordPolicy:
    policy = getattr(auth, "password_policy", None)
    return policy if isinstance(policy, PasswordPolicy) else PasswordPolicy()


def _add(errors: dict[str, list[str]], field: str, messages: list[str]) -> None:
    if messages:
        errors.setdefault(field, []).extend(messages)


async def register(
    auth: Any,
    db: AsyncSession,
    *,
    email: str,
    username: str | None,
    password: str,
    password2: str | None = None,
    username_required: bool = False,
) -> User:
    """Create an account after checking every field; the user is flushed, not committed.

    Args:
        auth: The ``Auth`` plugin (its hasher and password policy).
        db: The request's session.
        email: The e-mail address (stored lower-case).
        username: The user name (stored lower-case); ``None`` or ``""`` for none.
        password: The password.
        password2: The password typed again, when the form asks for it.
        username_required: Refuse an empty ``username``.

    Raises:
        FlowError: 422 with every problem; 409 when the address or the name is taken.
    """
    errors: dict[str, list[str]] = {}
    email, problems = check_email(email)
    _add(errors, "email", problems)
    name: str | None = None
    if username or username_required:
        name, problems = check_username(username or "")
        _add(errors, "username", problems)
    _add(errors, "password", _policy(auth).check(password, email=email, username=name))
    if password2 is not None and password2 != password:
        _add(errors, "password2", [gettext("The two passwords do not match.")])
    if errors:
        raise FlowError(errors)
    condition = (
        User.email == email if name is None else or_(User.email == email, User.username == name)
    )
    taken = (await db.scalars(select(User).where(condition))).all()
    for other in taken:
        if other.email == email:
            _add(errors, "email", [gettext("An account with this e-mail address exists already.")])
        if name is not None and other.username == name:
            _add(errors, "username", [gettext("This user name is taken.")])
    if errors:
        raise FlowError(errors, status=409)
    user = User(email=email, username=name)
    await auth.aset_password(user, password)
    try:
        async with db.begin_nested():  # a savepoint: a lost race does not spoil the request
            db.add(user)
    except IntegrityError:
        raise FlowError(
            {"": [gettext("An account with this e-mail address or user name exists already.")]}, 409
        ) from None
    return user


async def change_password(
    auth: Any,
    db: AsyncSession,
    user: User,
    *,
    old_password: str,
    new_password: str,
    new_password2: str | None = None,
    keep_token: int | None = None,
) -> None:
    """Check ``old_password`` and the new one, then set it (the caller logs in again).

    The user's other sessions end (their password fingerprint no longer matches) and so do
    their bearer tokens, but ``keep_token`` (the id of the token the request came with).
    Accounts without a password (OAuth only) cannot change it here: they set one through a
    password reset, which proves they own the address.

    Raises:
        FlowError: 422 with every problem (a wrong current password included).
    """
    errors: dict[str, list[str]] = {}
    if not user.password_hash:
        raise FlowError(
            {"old_password": [gettext("This account has no password yet: use the password reset.")]}
        )
    if not await auth.hasher.averify(user.password_hash, old_password):
        _add(errors, "old_password", [gettext("The current password is wrong.")])
    policy = _policy(auth)
    _add(
        errors,
        "new_password",
        policy.check(new_password, email=user.email, username=user.username),
    )
    if new_password2 is not None and new_password2 != new_password:
        _add(errors, "new_password2", [gettext("The two passwords do not match.")])
    if not errors and new_password == old_password:
        _add(errors, "new_password", [gettext("The new password is the same as the current one.")])
    if errors:
        raise FlowError(errors)
    await auth.aset_password(user, new_password)
    db.add(user)
    await db.flush()
    await revoke_user_tokens(db, user, "bearer", keep=keep_token)


def reset_tokens(auth: Any, app: App) -> PasswordResetTokens:
    """The reset tokens of ``app``: signed with its secret key, valid ``auth``'s max age."""
    max_age = getattr(auth, "password_reset_max_age", None) or DEFAULT_MAX_AGE
    return PasswordResetTokens(app.settings.effective_secret_key(), max_age=max_age)


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return ngettext("%(num)d hour", "%(num)d hours", hours)
    minutes = max(1, round(seconds / 60))
    return ngettext("%(num)d minute", "%(num)d minutes", minutes)


def password_reset_email(app: App, user: User, link: str, max_age: float) -> EmailMessage:
    """The e-mail with the reset link.

    Its bodies come from the templates ``auth/email/password_reset.txt`` and ``.html``:
    override them in your templates folder.
    """
    site_name = getattr(app.state, "site_name", None) or gettext("our site")
    context: dict[str, Any] = {
        "user": user,
        "link": link,
        "site_name": site_name,
        "valid_for": _duration(max_age),
    }
    templates = getattr(app, "templates", None)
    if templates is not None:
        text = templates.render_string("auth/email/password_reset.txt", None, **context)
        html = templates.render_string("auth/email/password_reset.html", None, **context)
    else:  # pragma: no cover - the auth routers always bring their templates
        text = f"Open this link to choose a new password: {link}\n"
        html = None
    return EmailMessage(
        to=user.email,
        subject=gettext("Reset your password on %(site_name)s", site_name=site_name),
        text=text.strip() + "\n",
        html=html,
    )


async def request_password_reset(
    auth: Any,
    db: AsyncSession,
    app: App,
    email: str,
    link: Callable[[str], str],
) -> Callable[[], Awaitable[None]] | None:
    """Prepare the reset e-mail for the account of ``email``, if there is one.

    Returns the coroutine function that sends it, or ``None`` when no active account has the
    address. Callers answer the same either way, and send *after* the response (a background
    task), so that neither the answer nor its timing tells whether the account exists.

    Args:
        auth: The ``Auth`` plugin.
        db: The request's session.
        app: The application (its secret key, templates and e-mail backend).
        email: The address typed in the form.
        link: Builds the absolute URL of the reset page from a token.

    Raises:
        FlowError: 422 when ``email`` is not an address at all.
    """
    address, problems = check_email(email)
    if problems:
        raise FlowError({"email": problems})
    user = (await db.scalars(select(User).where(User.email == address))).first()
    if user is None or not user.is_active:
        return None
    backend = _mailer(auth, app)

    async def send() -> None:
        # Everything that takes time happens here, after the response.
        try:
            tokens = reset_tokens(auth, app)
            message = password_reset_email(app, user, link(tokens.make(user)), tokens.max_age)
            await backend.send(message)
        except Exception:
            # Nobody is waiting for the answer any more: the log is the only place to tell.
            log.exception("could not send the password reset e-mail to user %s", user.id)

    return send


def _mailer(auth: Any, app: App) -> EmailBackend:
    from trellis.contrib.mail import email_backend

    backend: EmailBackend | None = getattr(auth, "email", None)
    return backend if backend is not None else email_backend(app)


async def reset_password(
    auth: Any,
    db: AsyncSession,
    app: App,
    token: str,
    *,
    new_password: str,
    new_password2: str | None = None,
) -> User:
    """Set a new password for the account of a valid reset ``token``; the token is spent.

    The user's sessions and bearer tokens end: a reset is what the owner does when someone
    else got in.

    Raises:
        FlowError: 400 for a forged, used or expired token (field ``token``); 422 for a
            password that is refused.
    """
    user = await check_reset_token(auth, db, app, token)
    errors: dict[str, list[str]] = {}
    _add(
        errors,
        "new_password",
        _policy(auth).check(new_password, email=user.email, username=user.username),
    )
    if new_password2 is not None and new_password2 != new_password:
        _add(errors, "new_password2", [gettext("The two passwords do not match.")])
    if errors:
        raise FlowError(errors)
    await auth.aset_password(user, new_password)
    db.add(user)
    await db.flush()
    await revoke_user_tokens(db, user, "bearer")
    return user


async def check_reset_token(auth: Any, db: AsyncSession, app: App, token: str) -> User:
    """The active user a reset ``token`` was made for, if the token is still good.

    Raises:
        FlowError: 400, field ``token``: forged, expired, already used, or the account is
            gone or inactive.
    """
    tokens = reset_tokens(auth, app)
    try:
        claim = tokens.read(token)
    except ExpiredResetTokenError:
        raise FlowError(
            {"token": [gettext("This password reset link has expired.")]}, 400
        ) from None
    except InvalidResetTokenError:
        raise FlowError(
            {"token": [gettext("This password reset link is not valid.")]}, 400
        ) from None
    user = await db.get(User, claim.user_id) if isinstance(claim.user_id, int) else None
    if user is None or not user.is_active or not tokens.matches(user, claim):
        raise FlowError(
            {"token": [gettext("This password reset link has been used already or is not valid.")]},
            400,
        )
    return user
