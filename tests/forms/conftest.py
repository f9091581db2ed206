"""Fixtures of the forms battery's tests: the data battery's databases for ``ModelForm``.

The database fixtures are tests/db/conftest.py's (``db_url`` runs a test on SQLite,
PostgreSQL and MariaDB), loaded from that file: conftest modules cannot import each other.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_trellis_db_test_fixtures_forms", Path(__file__).parents[1] / "db" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_db_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_db_fixtures)

server_databases = _db_fixtures.server_databases
backend = _db_fixtures.backend
db_url = _db_fixtures.db_url
