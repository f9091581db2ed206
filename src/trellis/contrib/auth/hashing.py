"""Password hashing with argon2id (argon2-cffi), the winner of the Password Hashing Competition.

```py
hasher = PasswordHasher()                     # RFC 9106's low-memory profile: 64 MiB, t=3, p=4
stored = hasher.hash("correct horse battery staple")
hasher.verify(stored, "correct horse battery staple")     # True
hasher.verify(stored, "Tr0ub4dor&3")                      # False
hasher.needs_rehash(stored)                   # True once the parameters were raised
```

Hashing takes tens of milliseconds on purpose: ``await hasher.ahash(...)`` and
``await hasher.averify(...)`` run it in a worker thread (argon2 releases the GIL), so the
event loop keeps serving. The hash string carries its own parameters and salt: raising the
parameters later keeps old hashes working, and ``authenticate()`` rehashes them on the next
successful sign-in.
"""

from __future__ import annotations

import secrets

import anyio.to_thread
import argon2
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MAX_PASSWORD_LENGTH", "PasswordHasher"]

#: The longest password accepted, in characters (a bound on the work one request can ask for).
MAX_PASSWORD_LENGTH = 4096


class PasswordHasher:
    """argon2id hashing, verification and rehash detection.

    The defaults are argon2-cffi's (RFC 9106's "low memory" profile). Tests may lower them
    (``PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)``) to run fast.

    Args:
        time_cost: Iterations.
        memory_cost: Memory in KiB.
        parallelism: Lanes (threads) per hash.
        hash_len: Length of the hash in bytes.
        salt_len: Length of the random salt in bytes.
    """

    def __init__(
        self,
        *,
        time_cost: int = argon2.DEFAULT_TIME_COST,
        memory_cost: int = argon2.DEFAULT_MEMORY_COST,
        parallelism: int = argon2.DEFAULT_PARALLELISM,
        hash_len: int = argon2.DEFAULT_HASH_LENGTH,
        salt_len: int = argon2.DEFAULT_RANDOM_SALT_LENGTH,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=argon2.Type.ID,
        )
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """Hash ``password`` with a new random salt.

        Raises:
            ValueError: the password is longer than ``MAX_PASSWORD_LENGTH`` characters.
        """
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
        return self._hasher.hash(password)

    def verify(self, hash: str, password: str) -> bool:
        """Whether ``password`` matches ``hash`` (``False`` for a malformed hash, never raises)."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        try:
            return self._hasher.verify(hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hash: str) -> bool:
        """Whether ``hash`` was made with other parameters than this hasher's."""
        try:
            return self._hasher.check_needs_rehash(hash)
        except (InvalidHashError, ValueError):
            return True

    def dummy_verify(self, password: str) -> None:
        """Spend the time of one ``verify`` for nothing: the sign-in of an unknown user.

        Without it, "no such user" would answer faster than "wrong password", telling an
        attacker which accounts exist.
        """
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        self.verify(self._dummy, password)

    async def ahash(self, password: str) -> str:
        """``hash()`` in a worker thread."""
        return await anyio.to_thread.run_sync(self.hash, password)

    async def averify(self, hash: str | None, password: str) -> bool:
        """``verify()`` in a worker thread; ``None`` as the hash runs ``dummy_verify``."""
        if hash is None:
            await anyio.to_thread.run_sync(self.dummy_verify, password)
            return False
        return await anyio.to_thread.run_sync(self.verify, hash, password)

    def __repr__(self) -> str:
        params = self._hasher
        return (
            f"PasswordHasher(time_cost={params.time_cost}, memory_cost={params.memory_cost},"
            f" parallelism={params.parallelism})"
        )
