"""Helpers of the auth battery's tests (``from auth_helpers import make_app``)."""

from __future__ import annotations

from typing import Any

from trellis import App
from trellis.contrib.auth import Auth, PasswordHasher, User
from trellis.contrib.db import Database, Model

#: argon2id at its cheapest: the tests hash a lot.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"
#: The auth battery's tables (created by create_all in tests; migrations have tests of their own).
AUTH_TABLES = [
    table
    for table in Model.metadata.sorted_tables
    if table.info.get("migration_branch") == "trellis_auth"
]


async def create_auth_tables(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(Model.metadata.create_all, tables=AUTH_TABLES)


def make_app(database: Database, **options: Any) -> tuple[App, Auth]:
    """An app with ``database`` and ``Auth`` (fast hasher, no pages or API unless asked)."""
    app = App(debug=True, secret_key="k" * 40)
    app.install(database)
    options.setdefault("hasher", FAST_HASHER)
    options.setdefault("pages", False)
    options.setdefault("api", False)
    auth = app.install(Auth(**options))
    return app, auth


async def add_user(
    database: Database,
    email: str = "ann@example.com",
    password: str | None = PASSWORD,
    **fields: Any,
) -> User:
    """Save a user (committed) and return it."""
    async with database.transaction() as session:
        user = User(email=email, **fields)
        user.password_hash = None if password is None else FAST_HASHER.hash(password)
        session.add(user)
        await session.flush()
    return user
