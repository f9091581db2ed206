"""Database fixtures: every data test runs on SQLite, PostgreSQL and MariaDB.

The server URLs come from ``TRELLIS_TEST_POSTGRES_URL`` and ``TRELLIS_TEST_MYSQL_URL``; a test
on a backend whose URL is unset is skipped with the reason (CI sets both and fails on a skip).

Each test run creates its own database on each server (``trellis_t_<pid>_<random>``) and drops
it at the end, so parallel runs never see each other's tables; each test starts with an empty
database (the fixture empties it after the test).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

BACKENDS = ("sqlite", "postgresql", "mysql")
_ENV = {"postgresql": "TRELLIS_TEST_POSTGRES_URL", "mysql": "TRELLIS_TEST_MYSQL_URL"}


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _pg_admin(url: str, *statements: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _mysql_admin(url: str, *statements: str) -> None:
    import pymysql

    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        conn.close()


class ServerDatabase:
    """A database made for this test run on one server, emptied after each test."""

    def __init__(self, backend: str, admin_url: str) -> None:
        self.backend = backend
        self.admin_url = admin_url
        self.name = f"trellis_t_{os.getpid()}_{secrets.token_hex(3)}"
        self.url = _with_database(admin_url, self.name)

    def create(self) -> None:
        if self.backend == "postgresql":
            _pg_admin(self.admin_url, f'CREATE DATABASE "{self.name}"')
        else:
            _mysql_admin(
                self.admin_url,
                f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            )

    def empty(self) -> None:
        if self.backend == "postgresql":
            _pg_admin(self.url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
        else:
            _mysql_admin(
                self.admin_url,
                f"DROP DATABASE `{self.name}`",
                f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            )

    def drop(self) -> None:
        if self.backend == "postgresql":
            _pg_admin(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        else:
            _mysql_admin(self.admin_url, f"DROP DATABASE IF EXISTS `{self.name}`")


@pytest.fixture(scope="session")
def server_databases() -> Iterator[dict[str, ServerDatabase]]:
    """The per-run databases on the servers whose URLs are set."""
    made: dict[str, ServerDatabase] = {}
    try:
        for backend, env in _ENV.items():
            admin_url = os.environ.get(env)
            if admin_url:
                database = ServerDatabase(backend, admin_url)
                database.create()
                made[backend] = database
        yield made
    finally:
        for database in made.values():
            database.drop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the database backend a test runs on: sqlite, postgresql or mysql."""
    return str(request.param)


@pytest.fixture
def db_url(
    backend: str, server_databases: dict[str, ServerDatabase], tmp_path: Path
) -> Iterator[str]:
    """The URL of an empty database on ``backend`` (a plain URL: ``postgresql://...``)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    database = server_databases.get(backend)
    if database is None:
        pytest.skip(f"{_ENV[backend]} is not set: no {backend} server to test against")
    try:
        yield database.url
    finally:
        database.empty()


@pytest.fixture
def pg_url(server_databases: dict[str, ServerDatabase]) -> Iterator[str]:
    """The URL of an empty PostgreSQL database (for PostgreSQL-only tests)."""
    database = server_databases.get("postgresql")
    if database is None:
        pytest.skip("TRELLIS_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    try:
        yield database.url
    finally:
        database.empty()
