"""The linking rules (``resolve_user``) on every database, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from auth_helpers import add_user
from sqlalchemy import func, select

from trellis.contrib.auth import OAuthAccount, User
from trellis.contrib.auth.oauth import GitHub, OAuthIdentity, OAuthLoginError, OIDCProvider, linking
from trellis.contrib.auth.oauth.linking import resolve_user, username_for
from trellis.contrib.db import Database

pytestmark = pytest.mark.anyio

PROVIDER = OIDCProvider(
    "corp", "id", "secret", "https://sso.example/.well-known/openid-configuration"
)
TRUSTING = OIDCProvider(
    "corp", "id", "secret", "https://sso.example/.well-known/openid-configuration", trust_email=True
)


def identity(**fields: Any) -> OAuthIdentity:
    values: dict[str, Any] = {
        "provider": "corp",
        "subject": "s-1",
        "email": "Ann@Example.com",
        "email_verified": True,
        "username": "ann",
    }
    values.update(fields)
    return OAuthIdentity(**values)


async def resolve(database: Database, ident: OAuthIdentity, **options: Any) -> linking.LinkResult:
    options.setdefault("current", None)
    provider = options.pop("provider", PROVIDER)
    async with database.transaction() as db:
        current = options.pop("current")
        if current is not None:
            current = await db.get(User, current.id)
        return await resolve_user(db, provider, ident, current=current)


async def accounts(database: Database) -> list[tuple[int, str, str]]:
    async with database.session() as db:
        rows = await db.execute(
            select(OAuthAccount.user_id, OAuthAccount.provider, OAuthAccount.subject)
        )
        return sorted((row[0], row[1], row[2]) for row in rows)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"username": "Octo Cat"}, "octo-cat"),
        ({"username": "Zoë.Ünal"}, "zoe.unal"),
        ({"username": "山田"}, "ann"),  # nothing left: the email's local part
        ({"username": None, "email": "first.last+tag@example.com"}, "first.last-tag"),
        ({"username": None, "email": None, "name": "Ann Lee"}, "ann-lee"),
        ({"username": "__", "email": None, "name": "!!"}, "user"),
        ({"username": "x" * 80}, "x" * 30),
    ],
)
def test_username_for(fields: dict[str, Any], expected: str) -> None:
    assert username_for(identity(**fields)) == expected


async def test_new_user(database: Database) -> None:
    result = await resolve(database, identity())
    assert result.action == "created"
    assert (result.user.email, result.user.username) == ("ann@example.com", "ann")
    assert result.user.password_hash is None
    assert await accounts(database) == [(result.user.id, "corp", "s-1")]
    again = await resolve(database, identity(email="ann@new.example"))
    assert (again.action, again.user.id) == ("login", result.user.id)
    assert again.account.email == "ann@new.example"


async def test_subjects_are_case_sensitive(database: Database) -> None:
    first = await resolve(database, identity(subject="AbC"))
    second = await resolve(database, identity(subject="abc", email="other@example.com"))
    assert first.user.id != second.user.id  # MariaDB's default collation would say equal


async def test_verified_email_links(database: Database) -> None:
    ann = await add_user(database, "ann@example.com")
    result = await resolve(database, identity(email="ANN@example.com"))
    assert (result.action, result.user.id) == ("linked", ann.id)


async def test_unverified_email(database: Database) -> None:
    await add_user(database, "ann@example.com")
    with pytest.raises(OAuthLoginError, match="has not confirmed that this address") as info:
        await resolve(database, identity(email_verified=False))
    assert info.value.status == 409
    with pytest.raises(OAuthLoginError, match="has not confirmed your email") as info:
        await resolve(database, identity(email="new@example.com", email_verified=False))
    assert info.value.status == 400
    # A trusted provider's emails count as verified.
    result = await resolve(database, identity(email_verified=False), provider=TRUSTING)
    assert result.action == "linked"


async def test_current_user_gets_the_account(database: Database) -> None:
    ann = await add_user(database, "ann@example.com")
    result = await resolve(
        database, identity(email="unrelated@example.com", email_verified=False), current=ann
    )
    assert (result.action, result.user.id) == ("linked", ann.id)
    # Already linked to ann: a plain login, even while she is signed in.
    result = await resolve(database, identity(), current=ann)
    assert (result.action, result.user.id) == ("login", ann.id)


async def test_account_of_another_user(database: Database) -> None:
    ann = await add_user(database, "ann@example.com")
    bob = await add_user(database, "bob@example.com")
    await resolve(database, identity(), current=ann)
    with pytest.raises(OAuthLoginError, match="already connected to another user") as info:
        await resolve(database, identity(), current=bob)
    assert info.value.status == 409
    assert await accounts(database) == [(ann.id, "corp", "s-1")]


async def test_disabled_users(database: Database) -> None:
    await add_user(database, "ann@example.com", is_active=False)
    with pytest.raises(OAuthLoginError, match="disabled") as info:
        await resolve(database, identity())  # by verified email
    assert info.value.status == 403
    bob = await add_user(database, "bob@example.com")
    await resolve(database, identity(subject="b", email="bob@example.com"))
    async with database.transaction() as db:
        user = await db.get(User, bob.id)
        assert user is not None
        user.is_active = False
    with pytest.raises(OAuthLoginError, match="disabled"):
        await resolve(database, identity(subject="b", email="bob@example.com"))  # by account


async def test_no_email(database: Database) -> None:
    with pytest.raises(OAuthLoginError, match="did not share your email"):
        await resolve(database, identity(email=None))


async def test_same_subject_at_two_providers_are_two_accounts(database: Database) -> None:
    await resolve(database, identity())
    github = GitHub("id", "secret")
    result = await resolve(
        database,
        identity(provider="github", email="other@example.com"),
        provider=github,
    )
    assert result.action == "created"
    assert result.user.username == "ann2"


async def test_a_username_taken_meanwhile_is_retried(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another request took "ann" between the look-up and the insert: the savepoint is rolled
    # back and the next attempt gets a random suffix.
    await add_user(database, "someone@example.com", username="ann")
    calls: list[str] = []

    async def stale(session: Any, base: str) -> str:
        calls.append(base)
        return base  # as if it were free

    monkeypatch.setattr(linking, "_free_username", stale)
    result = await resolve(database, identity())
    assert calls == ["ann"]
    assert result.action == "created"
    name = result.user.username
    assert name is not None and name.startswith("ann-") and len(name) == len("ann-") + 6
    async with database.session() as db:
        assert await db.scalar(select(func.count()).select_from(User)) == 2
