"""Insert and update many rows at once, with SQLAlchemy's ORM bulk statements.

Much faster than adding objects one by one: no object per row (unless asked for), one
``executemany`` (or multi-row ``INSERT``) per chunk of rows.

Example:
    ```python
    await bulk_insert(db, Article, [{"title": "One"}, {"title": "Two"}])
    await bulk_update(db, Article, [{"id": 1, "title": "First"}, {"id": 2, "title": "Second"}])
    ```
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from sqlalchemy import insert, inspect, update
from sqlalchemy.orm import Mapper

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["CHUNK_SIZE", "bulk_insert", "bulk_update"]

M = TypeVar("M")

#: Rows per statement: large inputs are sent in chunks of this many rows.
CHUNK_SIZE = 1000


@overload
async def bulk_insert(
    session: AsyncSession,
    model: type[M],
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: Literal[False] = False,
    chunk_size: int = CHUNK_SIZE,
) -> None: ...


@overload
async def bulk_insert(
    session: AsyncSession,
    model: type[M],
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: Literal[True],
    chunk_size: int = CHUNK_SIZE,
) -> list[M]: ...


async def bulk_insert(
    session: AsyncSession,
    model: type[M],
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> list[M] | None:
    """Insert ``rows`` (attribute -> value) into ``model``'s table, in the session's transaction.

    Column defaults apply to attributes a row leaves out (Python defaults such as ``utcnow``
    too); rows may leave out different attributes.

    Args:
        session: The request's session.
        model: The mapped class.
        rows: One mapping per row, keyed by attribute name.
        returning: Return the inserted objects (with their generated keys and defaults), in the
            order of ``rows``; uses ``INSERT ... RETURNING`` (SQLite, PostgreSQL, MariaDB 10.5+;
            not MySQL).
        chunk_size: Rows per statement.

    Returns:
        The new objects when ``returning``, else ``None``.

    Raises:
        ValueError: a row names something that is not a column attribute of ``model``.
    """
    mapper = _mapper(model, chunk_size)
    known = {prop.key for prop in mapper.column_attrs}
    for index, row in enumerate(rows):
        unknown = sorted(set(row) - known)
        if unknown:
            raise ValueError(
                f"bulk_insert: row {index} names {', '.join(map(repr, unknown))}, which is not a"
                f" column attribute of {model.__name__}"
            )
    if not returning:
        for chunk in _chunks(rows, chunk_size):
            await session.execute(insert(model), chunk)
        return None
    created: list[M] = []
    statement = insert(model).returning(model, sort_by_parameter_order=True)
    for chunk in _chunks(rows, chunk_size):
        created.extend((await session.scalars(statement, chunk)).all())
    return created


async def bulk_update(
    session: AsyncSession,
    model: type[M],
    rows: Sequence[Mapping[str, Any]],
    *,
    chunk_size: int = CHUNK_SIZE,
) -> None:
    """Update rows of ``model`` by primary key: each mapping names the row and the new values.

    ``[{"id": 1, "title": "New"}]`` runs ``UPDATE article SET title=? WHERE id=?``; attributes a
    mapping leaves out are not touched. Objects of ``model`` already loaded in the session get
    the new values too (SQLAlchemy's ORM-enabled UPDATE synchronises the identity map).

    Args:
        session: The request's session.
        model: The mapped class.
        rows: One mapping per row, with every primary key attribute and at least one other.
        chunk_size: Rows per statement.

    Raises:
        ValueError: a row lacks a primary key attribute, has nothing to update, or names
            something that is not a column attribute of ``model`` (nothing is updated then).
    """
    mapper = _mapper(model, chunk_size)
    keys = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    known = {prop.key for prop in mapper.column_attrs}
    for index, row in enumerate(rows):
        missing = [k for k in keys if row.get(k) is None]
        if missing:
            raise ValueError(
                f"bulk_update: row {index} has no value for the primary key"
                f" {', '.join(map(repr, missing))} of {model.__name__}; each row must name the"
                " row it updates"
            )
        unknown = sorted(set(row) - known)
        if unknown:
            raise ValueError(
                f"bulk_update: row {index} names {', '.join(map(repr, unknown))}, which is not a"
                f" column attribute of {model.__name__}"
            )
        if len(row) == len(keys):
            raise ValueError(f"bulk_update: row {index} has no value to update, only its key")
    for chunk in _chunks(rows, chunk_size):
        await session.execute(update(model), chunk)


def _mapper(model: type[Any], chunk_size: int) -> Mapper[Any]:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    mapper = inspect(model, raiseerr=False)
    if not isinstance(mapper, Mapper):
        raise TypeError(f"expected a mapped class, got {model!r}")
    return mapper


def _chunks(rows: Sequence[Mapping[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield [dict(row) for row in rows[start : start + size]]
