"""Redis fixtures: a real server from ``TRELLIS_TEST_REDIS_URL``, a prefix per test.

When the variable is unset the tests that need a server are skipped with the reason (CI sets
it, and fails on a skip); the tests of connection failures and URLs run anyway. Each test gets
a prefix of its own (process id and a random part), so parallel runs never share keys, and
every key under it is deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis.client import Redis as SyncRedis

REDIS_ENV = "TRELLIS_TEST_REDIS_URL"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: no Redis server to test against")
    return url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix for this test alone; its keys are deleted after the test."""
    value = f"trellis-test:{os.getpid()}:{secrets.token_hex(4)}:"
    yield value
    with SyncRedis.from_url(redis_url) as client:
        names = list(client.scan_iter(match=value + "*"))
        if names:
            client.delete(*names)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client, to look at what the stores wrote."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
