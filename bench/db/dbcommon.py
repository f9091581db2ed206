"""Settings shared by every app of the database benchmark (stdlib only).

BENCH_DATABASE_URL  plain libpq URL, default postgresql://postgres@127.0.0.1:5432/trellis_bench
BENCH_POOL_SIZE     connections per app (every app: the same number; default 32)
"""

import os
from pathlib import Path

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/trellis_bench"
)
POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "32"))
TEMPLATES = Path(__file__).resolve().parent / "templates"
ADDITIONAL_FORTUNE = "Additional fortune added at request time."
# The raw (asyncpg) apps run the statements of the TFB fastapi entry (app.py).
READ_ROW_SQL = 'SELECT "randomnumber", "id" FROM "world" WHERE id = $1'
FORTUNES_SQL = "SELECT * FROM Fortune"


def with_driver(url, driver):
    """``postgresql://...`` -> ``postgresql+<driver>://...`` for SQLAlchemy."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}+{driver}{sep}{rest}"
