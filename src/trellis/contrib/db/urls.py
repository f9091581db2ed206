"""Database URLs: the plain URL a user writes, and the driver Trellis runs it on.

Users write ``sqlite:///app.db``, ``postgresql://user@host/db`` or ``mysql://root@host/db``
(``mariadb://`` too); Trellis picks the async driver (aiosqlite, asyncpg, aiomysql) and, for
sync handlers and scripts, the sync one (sqlite3, psycopg, PyMySQL). A URL that already names
a driver (``postgresql+asyncpg://``) is kept as it is.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from trellis.exceptions import ConfigurationError

__all__ = ["async_url", "backend_of", "redact", "sync_url"]

_ASYNC = {
    "sqlite": "aiosqlite",
    "postgresql": "asyncpg",
    "mysql": "aiomysql",
    "mariadb": "aiomysql",
}
_SYNC = {"sqlite": "pysqlite", "postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}
_ASYNC_DRIVERS = {"aiosqlite", "asyncpg", "aiomysql", "asyncmy", "psycopg", "psycopg_async"}
_ALIASES = {"postgres": "postgresql"}


def _parse(url: str | URL) -> URL:
    if isinstance(url, URL):
        return url
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"{url!r} is not a database URL; write it as sqlite:///app.db,"
            " postgresql://user:password@host/dbname or mysql://user:password@host/dbname"
        ) from None
    name, _, driver = parsed.drivername.partition("+")
    name = _ALIASES.get(name, name)
    if name not in _ASYNC:
        raise ConfigurationError(
            f"unsupported database {parsed.drivername!r} in {redact(parsed)!r}: Trellis runs on"
            " sqlite, postgresql and mysql/mariadb"
        )
    return parsed.set(drivername=f"{name}+{driver}" if driver else name)


def backend_of(url: str | URL) -> str:
    """The database family of ``url``: ``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
    return _parse(url).get_backend_name()


def async_url(url: str | URL) -> URL:
    """``url`` with the async driver Trellis uses for its family (unless it names one)."""
    parsed = _parse(url)
    name, _, driver = parsed.drivername.partition("+")
    if driver and driver not in _ASYNC_DRIVERS:
        raise ConfigurationError(
            f"{redact(parsed)!r} names the sync driver {driver!r}; the async engine needs an"
            f" async one such as {name}+{_ASYNC[name]}"
        )
    if driver == "psycopg":
        return parsed.set(drivername=f"{name}+psycopg_async")
    return parsed if driver else parsed.set(drivername=f"{name}+{_ASYNC[name]}")


def sync_url(url: str | URL) -> URL:
    """``url`` with the sync driver of its family (for sync handlers, scripts, migrations)."""
    parsed = _parse(url)
    name, _, driver = parsed.drivername.partition("+")
    if driver and driver not in _ASYNC_DRIVERS:
        return parsed
    return parsed.set(drivername=f"{name}+{_SYNC[name]}")


def redact(url: str | URL) -> str:
    """``url`` as text with its password hidden, for messages and logs."""
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.render_as_string(hide_password=True)
