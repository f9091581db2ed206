"""argon2id password hashing: hash, verify, rehash detection, the dummy verification."""

from __future__ import annotations

import time

import pytest

from trellis.contrib.auth.hashing import MAX_PASSWORD_LENGTH, PasswordHasher

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def test_hash_is_argon2id_salted_and_verifies() -> None:
    first = FAST.hash("s3cret pässword ✓")
    second = FAST.hash("s3cret pässword ✓")
    assert first.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert first != second  # a new salt each time
    assert FAST.verify(first, "s3cret pässword ✓")
    assert FAST.verify(second, "s3cret pässword ✓")
    assert not FAST.verify(first, "s3cret pässword")
    assert not FAST.verify(first, "")


@pytest.mark.parametrize("broken", ["", "plain", "$argon2id$v=19$m=8,t=1,p=1$", "$2b$12$abc"])
def test_a_malformed_hash_never_verifies_and_never_raises(broken: str) -> None:
    assert FAST.verify(broken, "anything") is False
    assert FAST.needs_rehash(broken) is True


def test_needs_rehash_when_the_parameters_change() -> None:
    stored = FAST.hash("pw")
    assert not FAST.needs_rehash(stored)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "pw")  # old hashes keep working with new parameters


def test_the_defaults_are_argon2_cffis() -> None:
    default = PasswordHasher()
    assert "memory_cost=65536" in repr(default)
    assert "time_cost=3" in repr(default)


def test_overlong_passwords_are_refused() -> None:
    long = "x" * (MAX_PASSWORD_LENGTH + 1)
    with pytest.raises(ValueError, match="at most 4096"):
        FAST.hash(long)
    assert FAST.verify(FAST.hash("x"), long) is False


def test_dummy_verify_costs_what_a_verify_costs() -> None:
    hasher = PasswordHasher(time_cost=2, memory_cost=4096, parallelism=1)
    stored = hasher.hash("pw")
    hasher.dummy_verify("warm up")  # makes the dummy hash once

    def timed(fn: object) -> float:
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        return time.perf_counter() - start

    reals, dummies = [], []
    for _ in range(9):  # interleaved, so a burst of load on the machine slows both alike
        reals.append(timed(lambda: hasher.verify(stored, "wrong")))
        dummies.append(timed(lambda: hasher.dummy_verify("wrong")))
    real, dummy = min(reals), min(dummies)
    assert dummy > real * 0.5
    assert dummy < real * 2


@pytest.mark.anyio
async def test_async_variants_run_in_a_thread() -> None:
    stored = await FAST.ahash("pw")
    assert await FAST.averify(stored, "pw") is True
    assert await FAST.averify(stored, "nope") is False
    assert await FAST.averify(None, "pw") is False  # the unknown user's dummy verification
