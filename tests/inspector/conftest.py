"""Fixtures of the inspector tests (the helpers are in ``inspector_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from inspector_helpers import make_app

from trellis import App
from trellis.testing import TestClient


@pytest.fixture
def app(tmp_path: Path) -> App:
    return make_app(tmp_path)


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
