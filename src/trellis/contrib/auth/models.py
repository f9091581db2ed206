"""The auth battery's models: users, groups, permissions, tokens and OAuth accounts.

```py
from trellis.contrib.auth.models import User

user = User(email="Ann@Example.com", username="ann")
user.email                              # "ann@example.com": stored lower-case
```

The tables (``auth_user``, ``auth_group``, ``auth_permission``, ``auth_user_group``,
``auth_group_permission``, ``auth_user_permission``, ``auth_token``, ``auth_oauth_account``)
are on ``Model.metadata``, so your models can point at them (``ForeignKey("auth_user.id")``,
``relationship(User)``), and belong to the ``trellis_auth`` migration branch: ``trellis db
upgrade`` creates them once ``Auth`` is installed, and your own ``makemigrations`` never
touches them.

Relationships load lazily: in async code ``await user.awaitable_attrs.groups``; the
permission checks (``trellis.contrib.auth.permissions``) run one query of their own instead.
"""

from datetime import datetime
from typing import Any
from unicodedata import normalize

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from trellis.contrib.db.models import IdMixin, Model
from trellis.contrib.db.types import utcnow

__all__ = [
    "MIGRATION_BRANCH",
    "AuthToken",
    "Group",
    "OAuthAccount",
    "Permission",
    "User",
    "group_permission_table",
    "has_control_characters",
    "normalize_email",
    "normalize_username",
    "user_group_table",
    "user_permission_table",
]

#: The label of the auth battery's migration branch (``Table.info["migration_branch"]``).
MIGRATION_BRANCH = "trellis_auth"

_INFO: dict[str, Any] = {"migration_branch": MIGRATION_BRANCH}
_MYSQL = ("mysql", "mariadb")


def _exact(length: int) -> Any:
    # Compared byte for byte: MariaDB's default collations ignore case (an OAuth subject or
    # a token hash must not match another one that differs in case).
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), *_MYSQL)


def normalize_email(email: str) -> str:
    """An email address as stored: stripped and lower-case (``" Ann@X.org"`` -> ``"ann@x.org"``).

    The whole address is lower-cased: two accounts whose addresses differ only in case would
    be one mailbox almost everywhere.
    """
    return normalize("NFKC", email).strip().lower()


def normalize_username(username: str) -> str:
    """A user name as stored: NFKC-normalised, stripped and lower-case.

    User names are case-insensitive on every database (MariaDB compares them that way
    anyway), and look-alike forms (full-width letters) are one name.
    """
    return normalize("NFKC", username).strip().lower()


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds control characters or lone surrogates.

    No e-mail address or user name has them, and a database cannot take them: PostgreSQL
    refuses a NUL byte in text (an error, not a miss), and no driver encodes a lone surrogate.
    """
    return any(c < " " or "\x7f" <= c <= "\x9f" or "\ud800" <= c <= "\udfff" for c in value)


def _link_table(left: str, right: str) -> Table:
    """``auth_{left}_{right}``: a pair of ids as the primary key, the second indexed too."""
    name = f"auth_{left}_{right}"
    return Table(
        name,
        Model.metadata,
        Column(f"{left}_id", ForeignKey(f"auth_{left}.id", ondelete="CASCADE"), primary_key=True),
        Column(f"{right}_id", ForeignKey(f"auth_{right}.id", ondelete="CASCADE"), primary_key=True),
        Index(f"ix_{name}_{right}_id", f"{right}_id"),
        info=_INFO,
    )


#: Who is in which group (``auth_user_group``).
user_group_table = _link_table("user", "group")
#: The permissions of each group (``auth_group_permission``).
group_permission_table = _link_table("group", "permission")
#: The permissions given to users directly (``auth_user_permission``).
user_permission_table = _link_table("user", "permission")


class Permission(IdMixin, Model):
    """Something a user may do, named by a code (``"articles.publish"``).

    Granted to users directly or through their groups; ``requires("articles.publish")``
    checks it.
    """

    __tablename__ = "auth_permission"
    __table_args__ = {"info": _INFO}

    codename: Mapped[str] = mapped_column(String(150), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")

    @validates("codename")
    def _check_codename(self, _key: str, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() for c in value) or len(value) > 150:
            raise ValueError(
                f"permission codename {value!r}: 1 to 150 characters without spaces"
                " (like 'articles.publish')"
            )
        return value


class Group(IdMixin, Model):
    """A named set of permissions (a role): ``requires(roles=["editors"])`` checks it."""

    __tablename__ = "auth_group"
    __table_args__ = {"info": _INFO}

    name: Mapped[str] = mapped_column(String(150), unique=True)
    permissions: Mapped[list[Permission]] = relationship(
        Permission, secondary=group_permission_table
    )


class User(IdMixin, Model):
    """An account.

    Attributes:
        email: Unique, stored lower-case (``normalize_email``).
        username: Optional and unique, stored lower-case (``normalize_username``).
        password_hash: The argon2id hash; ``None`` for accounts that sign in only through
            an OAuth provider. Set it with ``auth.set_password(user, password)``.
        is_active: Inactive users cannot sign in, and their sessions and tokens stop working.
        is_superuser: Passes every permission check.
        created_at: When the account was made (UTC).
        last_login: The last sign-in through ``login()`` (UTC), or ``None``.
        password_changed_at: The last ``set_password()`` (UTC): JWTs issued before it are
            refused.
    """

    __tablename__ = "auth_user"
    __table_args__ = {"info": _INFO}

    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str | None] = mapped_column(String(150), unique=True, default=None)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)

    groups: Mapped[list[Group]] = relationship(Group, secondary=user_group_table)
    permissions: Mapped[list[Permission]] = relationship(
        Permission, secondary=user_permission_table
    )

    #: Always true for a ``User`` (templates: ``{% if user.is_authenticated %}``).
    is_authenticated = True

    def __init__(self, **fields: Any) -> None:
        # The flags are right before the first flush too (a user built in a test, a check
        # made before saving).
        fields.setdefault("is_active", True)
        fields.setdefault("is_superuser", False)
        super().__init__(**fields)

    @validates("email")
    def _normalize_email(self, _key: str, value: str) -> str:
        email = normalize_email(value)
        if not email or len(email) > 320:
            raise ValueError("email: 1 to 320 characters")
        return email

    @validates("username")
    def _normalize_username(self, _key: str, value: str | None) -> str | None:
        if value is None:
            return None
        username = normalize_username(value)
        if not username or len(username) > 150:
            raise ValueError("username: 1 to 150 characters, or None")
        return username

    @property
    def has_usable_password(self) -> bool:
        """Whether the user can sign in with a password (OAuth-only accounts cannot)."""
        return bool(self.password_hash)

    @property
    def display_name(self) -> str:
        """The user name when there is one, else the email address."""
        return self.username or self.email

    def __str__(self) -> str:
        return self.display_name


class AuthToken(IdMixin, Model):
    """An opaque bearer token or API key; only its SHA-256 is stored.

    Made by ``auth.issue_token()``, which returns the token itself once.

    Attributes:
        kind: ``"bearer"`` (``Authorization: Bearer``) or ``"api_key"`` (``X-API-Key``).
        name: A label for the owner ("CI deploy key").
        token_hash: The SHA-256 of the token, hex.
        prefix: The token's first characters, to recognise it in a list.
        scopes: Space-separated permission codenames the token is limited to ("" = all of
            the user's).
        expires_at: ``None`` for a token that never expires.
        last_used_at: Updated at most once a minute.
        revoked_at: Set by ``auth.revoke_token()``.
    """

    __tablename__ = "auth_token"
    __table_args__ = {"info": _INFO}

    user_id: Mapped[int] = mapped_column(ForeignKey("auth_user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="bearer")
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(_exact(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), default="")
    scopes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(User)

    @property
    def scope_set(self) -> frozenset[str]:
        """The scopes as a set (empty: the token may do all the user may)."""
        return frozenset(self.scopes.split())

    def is_valid(self, now: datetime | None = None) -> bool:
        """Whether the token is neither revoked nor expired."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > (now or utcnow())


class OAuthAccount(IdMixin, Model):
    """A user's account at an OAuth or OpenID Connect provider (``provider``, ``subject``)."""

    __tablename__ = "auth_oauth_account"
    __table_args__ = (UniqueConstraint("provider", "subject"), {"info": _INFO})

    user_id: Mapped[int] = mapped_column(ForeignKey("auth_user.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(_exact(255))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(User)
