"""Fixtures of the task tests: a Redis server from ``TRELLIS_TEST_REDIS_URL``, a queue per test.

The tests that need Redis are skipped with the reason when the variable is unset (CI sets it,
and fails on a skip). Each test gets a queue name of its own; its keys (SAQ's ``saq:<queue>:*``
and ``saq:job:<queue>:*``, and the tests' own ``<queue>:*``) are deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

REDIS_ENV = "TRELLIS_TEST_REDIS_URL"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: no Redis server to test against")
    return url


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    """A queue name for this test alone; every key it left is deleted afterwards."""
    from redis import Redis

    name = f"trellis-test-{os.getpid()}-{secrets.token_hex(4)}"
    yield name
    with Redis.from_url(redis_url) as client:
        for pattern in (f"saq:{name}:*", f"saq:job:{name}:*", f"{name}:*"):
            keys = list(client.scan_iter(match=pattern))
            if keys:
                client.delete(*keys)
