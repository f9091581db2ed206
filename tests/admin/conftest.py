"""Fixtures of the admin's tests: an app with users and books, and a client for it.

Most tests run on SQLite; ``db_url`` (tests/db/conftest.py's, loaded from that file:
conftest modules cannot import each other) runs a test on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_helpers import make_app, seed

from trellis import App
from trellis.testing import TestClient

_spec = importlib.util.spec_from_file_location(
    "_trellis_db_test_fixtures", Path(__file__).parents[1] / "db" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_db_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_db_fixtures)

server_databases = _db_fixtures.server_databases
backend = _db_fixtures.backend
db_url = _db_fixtures.db_url


@pytest.fixture
def app(tmp_path: Path) -> App:
    return make_app(f"sqlite:///{tmp_path / 'admin.db'}")


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    """A client of ``app``, its database seeded (see ``admin_helpers.seed``)."""
    with TestClient(app) as client:
        client.call(seed, app.state.database)
        yield client
