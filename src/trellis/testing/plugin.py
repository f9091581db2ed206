"""The Trellis pytest plugin: a ``client`` fixture for the ``app`` fixture you define.

Define ``app`` in your ``conftest.py`` (return your ``App``); then ask for ``client`` (a
``TestClient`` with the lifespan running) or ``async_client`` in tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from trellis.testing import AsyncTestClient, TestClient


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """A ``TestClient`` for the ``app`` fixture, lifespan started."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
async def async_client(app: Any) -> AsyncIterator[AsyncTestClient]:
    """An ``AsyncTestClient`` for the ``app`` fixture (use with ``@pytest.mark.anyio``)."""
    async with AsyncTestClient(app) as test_client:
        yield test_client
