"""Password reset tokens: signed, expiring, spent by any change of the account."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from trellis.contrib.auth.reset import (
    ExpiredResetTokenError,
    InvalidResetTokenError,
    PasswordResetTokens,
)

KEY = "k" * 40


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _user(**changes: object) -> SimpleNamespace:
    values: dict[str, object] = {
        "id": 7,
        "email": "ann@example.com",
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        "last_login": datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        "is_active": True,
    }
    values.update(changes)
    return SimpleNamespace(**values)


def test_a_token_reads_back_and_matches_the_unchanged_account() -> None:
    clock = Clock()
    tokens = PasswordResetTokens(KEY, clock=clock)
    user = _user()
    token = tokens.make(user)
    claim = tokens.read(token)
    assert claim.user_id == 7
    assert claim.expires_at == clock.now + 3600
    assert tokens.matches(user, claim)
    # URL-safe: it goes into a link as it is
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize(
    "change",
    [
        {"password_hash": "$argon2id$v=19$m=65536,t=3,p=4$bmV3$bmV3"},  # the reset itself
        {"last_login": datetime(2024, 5, 2, tzinfo=UTC)},  # signed in meanwhile
        {"last_login": None},
        {"email": "new@example.com"},
        {"is_active": False},
        {"id": 8},
    ],
)
def test_any_change_of_the_account_spends_the_token(change: dict[str, object]) -> None:
    tokens = PasswordResetTokens(KEY)
    claim = tokens.read(tokens.make(_user()))
    assert not tokens.matches(_user(**change), claim)


def test_expiry() -> None:
    clock = Clock()
    tokens = PasswordResetTokens(KEY, max_age=600, clock=clock)
    token = tokens.make(_user())
    clock.now += 599
    assert tokens.read(token).user_id == 7
    clock.now += 1
    with pytest.raises(ExpiredResetTokenError, match="expired"):
        tokens.read(token)
    # an expired token is also an invalid one for callers that do not care why
    with pytest.raises(InvalidResetTokenError):
        tokens.read(token)


@pytest.mark.parametrize(
    "token",
    ["", "x", "a.b", "e30.badsignature", "x" * 2000],
)
def test_garbage_is_invalid(token: str) -> None:
    with pytest.raises(InvalidResetTokenError, match="not valid"):
        PasswordResetTokens(KEY).read(token)


def test_a_tampered_token_is_invalid() -> None:
    tokens = PasswordResetTokens(KEY)
    token = tokens.make(_user())
    payload, signature = token.rsplit(".", 1)
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    with pytest.raises(InvalidResetTokenError):
        tokens.read(forged)


def test_another_key_or_salt_does_not_verify() -> None:
    token = PasswordResetTokens(KEY).make(_user())
    with pytest.raises(InvalidResetTokenError):
        PasswordResetTokens("z" * 40).read(token)
    with pytest.raises(InvalidResetTokenError):
        PasswordResetTokens(KEY, salt="email-confirm").read(token)


def test_key_rotation_keeps_old_tokens_working() -> None:
    old = PasswordResetTokens("old-key-" * 5)
    user = _user()
    token = old.make(user)
    rotated = PasswordResetTokens(["old-key-" * 5, "new-key-" * 5])
    assert rotated.matches(user, rotated.read(token))
    new_token = rotated.make(user)
    assert rotated.matches(user, rotated.read(new_token))
    with pytest.raises(InvalidResetTokenError):
        old.read(new_token)  # signed with the new key
    # once the old key is dropped, its tokens are dead
    with pytest.raises(InvalidResetTokenError):
        PasswordResetTokens("new-key-" * 5).read(token)


def test_the_fingerprint_hides_the_hash() -> None:
    tokens = PasswordResetTokens(KEY)
    user = _user()
    fingerprint = tokens.fingerprint(user)
    assert len(fingerprint) == 22
    assert user.password_hash not in tokens.make(user)
    # another key, another fingerprint: nothing to compare offline without the key
    assert PasswordResetTokens("z" * 40).fingerprint(user) != fingerprint


def test_naive_and_aware_datetimes_are_stable() -> None:
    tokens = PasswordResetTokens(KEY)
    naive = _user(last_login=datetime(2024, 5, 1, 12, 0, 0, 999))
    assert tokens.matches(naive, tokens.read(tokens.make(naive)))
    aware = _user(last_login=datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC))
    same_second = _user(last_login=datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC))
    assert tokens.matches(same_second, tokens.read(tokens.make(aware)))


def test_a_shorter_max_age_applies_to_tokens_already_out() -> None:
    clock = Clock()
    token = PasswordResetTokens(KEY, max_age=3600, clock=clock).make(_user())
    clock.now += 700
    assert PasswordResetTokens(KEY, max_age=3600, clock=clock).read(token)
    with pytest.raises(ExpiredResetTokenError):
        PasswordResetTokens(KEY, max_age=600, clock=clock).read(token)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_age"):
        PasswordResetTokens(KEY, max_age=0)
    with pytest.raises(ValueError, match="secret key"):
        PasswordResetTokens("")
    with pytest.raises(ValueError, match="secret key"):
        PasswordResetTokens([])
