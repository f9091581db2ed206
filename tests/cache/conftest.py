"""Cache fixtures: one ``cache`` fixture over every backend, so they all pass one suite.

The Redis server comes from ``TRELLIS_TEST_REDIS_URL``; when it is unset the Redis cases are
skipped with the reason (CI sets it, and fails on a skip). Each test gets a prefix of its own
(process id and a random part), and its keys are deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from trellis.contrib.cache import CacheBackend, MemoryCache

REDIS_ENV = "TRELLIS_TEST_REDIS_URL"
BACKENDS = ("memory", "redis", "database")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: no Redis server to test against")
    return url


def unique_prefix() -> str:
    return f"trellis-test:{os.getpid()}:{secrets.token_hex(4)}:"


@pytest.fixture(params=BACKENDS)
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CacheBackend]:
    """An empty cache of each kind: MemoryCache, RedisCache, DatabaseCache on SQLite."""
    if request.param == "memory":
        yield MemoryCache()
    elif request.param == "redis":
        from trellis.contrib.redis import RedisCache

        url = request.getfixturevalue("redis_url")
        async with RedisCache(url, prefix=unique_prefix()) as redis_cache:
            try:
                yield redis_cache
            finally:
                await redis_cache.clear()
    else:
        from trellis.contrib.db import Database
        from trellis.contrib.db.stores import DatabaseCache

        database = Database(f"sqlite:///{tmp_path / 'cache.db'}")
        try:
            db_cache = DatabaseCache(database)
            await db_cache.create_table()
            yield db_cache
        finally:
            await database.dispose()
