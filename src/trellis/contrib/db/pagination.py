"""Pages of query results: by offset (``paginate``) or by keyset cursor (``paginate_keyset``).

Offset pages say how many rows there are in all and let a client jump to any page; keyset pages
stay fast and stable however deep a client goes (no ``OFFSET`` scan, no row seen twice when
rows are added meanwhile) and hand out an opaque ``next_cursor`` instead of page numbers.

``page_params()`` and ``cursor_params()`` make the dependencies that read ``?limit=&offset=``
and ``?limit=&after=`` from the query string, validated and described in the API docs.

Example:
    ```python
    Pagination = Annotated[PageParams, Depends(page_params(max_limit=50))]

    @app.get("/articles")
    async def articles(page: Pagination, db: Session) -> Page[ArticleRead]:
        statement = select(Article).order_by(Article.id)
        return await paginate(db, statement, limit=page.limit, offset=page.offset)
    ```

    The handler's return type turns the ORM objects of ``items`` into ``ArticleRead``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from trellis.contrib.db.schemas import python_type
from trellis.exceptions import BadRequestError, ConfigurationError
from trellis.handlers.params import Query

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "CursorPage",
    "CursorParams",
    "Page",
    "PageParams",
    "SortKey",
    "cursor_params",
    "page_params",
    "paginate",
    "paginate_keyset",
]

T = TypeVar("T")

#: What ``paginate_keyset(order_by=...)`` takes: ``Article.id``, ``Article.created_at.desc()``.
SortKey = ColumnElement[Any] | QueryableAttribute[Any]


class Page(BaseModel, Generic[T]):
    """One page of an offset-paginated list.

    ``paginate`` returns a ``Page`` of whatever the statement selects (ORM objects); declare
    the handler's return type as ``Page[ArticleRead]`` and each item is validated into the read
    schema (``from_attributes``), so only the schema's fields reach the client.
    """

    model_config = ConfigDict(from_attributes=True)

    items: list[T]
    #: Rows in all (before ``limit``/``offset``); ``None`` when counting was turned off.
    total: int | None
    limit: int
    offset: int


class CursorPage(BaseModel, Generic[T]):
    """One page of a keyset-paginated list.

    Pass ``next_cursor`` back as ``?after=`` for the next page; it is ``None`` on the last page.
    """

    model_config = ConfigDict(from_attributes=True)

    items: list[T]
    next_cursor: str | None
    limit: int


@dataclasses.dataclass(frozen=True, slots=True)
class PageParams:
    """``?limit=&offset=`` as read by a ``page_params()`` dependency."""

    limit: int
    offset: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class CursorParams:
    """``?limit=&after=`` as read by a ``cursor_params()`` dependency."""

    limit: int
    after: str | None = None


def _default_limit(default_limit: int | None, max_limit: int) -> int:
    if default_limit is None:
        default_limit = min(20, max_limit)
    if not 1 <= default_limit <= max_limit:
        raise ConfigurationError(
            f"pagination needs 1 <= default_limit <= max_limit, got default_limit={default_limit}"
            f" and max_limit={max_limit}"
        )
    return default_limit


def page_params(
    *, default_limit: int | None = None, max_limit: int = 100
) -> Callable[..., Awaitable[PageParams]]:
    """A dependency reading ``?limit=`` (1 to ``max_limit``) and ``?offset=`` (0 or more).

    Out-of-range values are a 422 naming the parameter; both appear in the API docs.
    ``limit`` defaults to ``default_limit`` (20, or ``max_limit`` if that is lower).

    Example:
        ```python
        from typing import Annotated

        from trellis import App, Depends
        from trellis.contrib.db import PageParams, page_params
        from trellis.testing import TestClient

        Pagination = Annotated[PageParams, Depends(page_params(max_limit=50))]
        app = App()


        @app.get("/books")
        async def books(page: Pagination) -> dict[str, int]:
            return {"limit": page.limit, "offset": page.offset}


        with TestClient(app) as client:
            assert client.get("/books?offset=40").json() == {"limit": 20, "offset": 40}
            assert client.get("/books?limit=500").status_code == 422
        ```

    Raises:
        ConfigurationError: the limits do not satisfy ``1 <= default_limit <= max_limit``.
    """
    default = _default_limit(default_limit, max_limit)

    async def provide(limit: int = default, offset: int = 0) -> PageParams:
        return PageParams(limit, offset)

    # Set as objects: the limits are only known here, and Trellis reads these annotations.
    provide.__annotations__ = {
        "limit": Annotated[
            int, Query(ge=1, le=max_limit, description=f"Items per page (at most {max_limit}).")
        ],
        "offset": Annotated[int, Query(ge=0, description="Items to skip.")],
        "return": PageParams,
    }
    provide.__qualname__ = provide.__name__ = "page_params"
    return provide


def cursor_params(
    *, default_limit: int | None = None, max_limit: int = 100
) -> Callable[..., Awaitable[CursorParams]]:
    """A dependency reading ``?limit=`` (1 to ``max_limit``) and ``?after=`` (a cursor).

    ``limit`` defaults to ``default_limit`` (20, or ``max_limit`` if that is lower). The
    cursor is checked by ``paginate_keyset`` (a bad one is a 400).

    Raises:
        ConfigurationError: the limits do not satisfy ``1 <= default_limit <= max_limit``.
    """
    default = _default_limit(default_limit, max_limit)

    async def provide(limit: int = default, after: str | None = None) -> CursorParams:
        return CursorParams(limit, after)

    provide.__annotations__ = {
        "limit": Annotated[
            int, Query(ge=1, le=max_limit, description=f"Items per page (at most {max_limit}).")
        ],
        "after": Annotated[
            str | None,
            Query(
                max_length=2048,
                description="The next_cursor of the previous page; leave it out for the first.",
            ),
        ],
        "return": CursorParams,
    }
    provide.__qualname__ = provide.__name__ = "cursor_params"
    return provide


async def paginate(
    session: AsyncSession,
    statement: Select[*tuple[Any, ...]],
    *,
    limit: int,
    offset: int = 0,
    count: bool = True,
) -> Page[Any]:
    """Run ``statement`` for one page, and count its rows.

    Give the statement an ``order_by`` that ends in a unique column (``Article.id``): without a
    total order, databases may return a row on two pages and skip another. The count is a
    ``SELECT count(*)`` over the statement as a subquery; it is skipped when this page already
    shows where the list ends (fewer rows than ``limit``).

    Args:
        session: The request's session.
        statement: A ``select(...)`` without ``limit``/``offset`` of its own.
        limit: Rows per page (at least 1).
        offset: Rows to skip.
        count: Fill ``total``; ``False`` saves the count query and leaves it ``None``.

    Returns:
        A ``Page`` whose items are what the statement selects: the entity for
        ``select(Article)``, rows (attributes by name) for several columns.
    """
    if limit < 1 or offset < 0:
        raise ValueError(f"paginate needs limit >= 1 and offset >= 0, got {limit} and {offset}")
    result = await session.execute(statement.limit(limit).offset(offset))
    single = len(statement.column_descriptions) == 1
    items: list[Any] = list(result.scalars()) if single else list(result)
    total: int | None = None
    if count:
        if len(items) < limit and (items or offset == 0):
            total = offset + len(items)
        else:
            counted = select(func.count()).select_from(statement.order_by(None).subquery())
            total = (await session.execute(counted)).scalar_one()
    return Page[Any](items=items, total=total, limit=limit, offset=offset)


async def paginate_keyset(
    session: AsyncSession,
    statement: Select[*tuple[Any, ...]],
    *,
    order_by: Sequence[SortKey],
    limit: int,
    after: str | None = None,
) -> CursorPage[Any]:
    """Run ``statement`` for the page that follows the cursor ``after``.

    The page is the first ``limit`` rows, in ``order_by`` order, that sort after the row the
    cursor was made from (``WHERE (created_at, id) < (:c, :i)``, written out with ``OR`` so that
    ascending and descending keys can be mixed, on every database).

    ``order_by`` must end in a unique column (usually the primary key), and its columns must
    not be NULL: the cursor is the last row's values of those columns, so rows that tie on all
    of them, or have NULL there, would be skipped. The cursor is base64 of JSON, opaque to
    clients but not secret nor signed: a client can craft one, which only moves where its page
    starts.

    Args:
        session: The request's session.
        statement: A ``select(...)`` without ``order_by``/``limit`` of its own (``order_by``
            replaces its ordering).
        order_by: The sort keys: columns, ``.desc()`` for descending.
        limit: Rows per page (at least 1).
        after: The ``next_cursor`` of the previous page, or ``None`` for the first page.

    Raises:
        BadRequestError: ``after`` is not a cursor of this ``order_by`` (400).
    """
    if limit < 1:
        raise ValueError(f"paginate_keyset needs limit >= 1, got {limit}")
    if not order_by:
        raise ValueError("paginate_keyset needs order_by: sort keys ending in a unique column")
    keys = [_sort_key(clause) for clause in order_by]
    paged = statement.order_by(None).order_by(*order_by)
    if after is not None:
        paged = paged.where(_after(keys, _decode(after, keys)))
    width = len(statement.column_descriptions)
    paged = paged.add_columns(
        *(column.label(f"trellis_key_{i}") for i, (column, _) in enumerate(keys))
    ).limit(limit + 1)
    frozen = (await session.execute(paged)).freeze()
    rows = frozen().all()
    more = len(rows) > limit
    if width == 1:
        items: list[Any] = [row[0] for row in rows[:limit]]
    else:
        # Rows without the key columns, still with attributes by name.
        items = list(frozen().columns(*range(width)).all()[:limit])
    next_cursor = _encode(rows[limit - 1][width:], keys) if more else None
    return CursorPage[Any](items=items, next_cursor=next_cursor, limit=limit)


# -- keyset internals ---------------------------------------------------------------------------


def _sort_key(clause: SortKey) -> tuple[ColumnElement[Any], bool]:
    """The column of one ``order_by`` item and whether it sorts descending."""
    if isinstance(clause, QueryableAttribute):
        return clause.expression, False
    if isinstance(clause, UnaryExpression):
        if clause.modifier is operators.desc_op:
            return clause.element, True
        if clause.modifier is operators.asc_op:
            return clause.element, False
        raise ValueError(
            f"paginate_keyset cannot page on {clause}: NULLS FIRST/LAST orderings are not"
            " supported (sort keys must not be NULL)"
        )
    if isinstance(clause, ColumnElement):
        return clause, False
    raise TypeError(f"paginate_keyset order_by takes columns or column.desc(), got {clause!r}")


def _after(keys: list[tuple[ColumnElement[Any], bool]], values: list[Any]) -> ColumnElement[bool]:
    """Rows that sort after ``values``: ``a > x OR (a = x AND b > y) OR ...``."""
    branches = []
    for i, ((column, descending), value) in enumerate(zip(keys, values, strict=True)):
        ties = [c == v for (c, _), v in zip(keys[:i], values[:i], strict=True)]
        branches.append(and_(*ties, column < value if descending else column > value))
    condition = or_(*branches)
    if len(keys) > 1:
        # Redundant, but a plain range on the first key lets the database use its index.
        first, descending = keys[0]
        bound = first <= values[0] if descending else first >= values[0]
        condition = and_(bound, condition)
    return condition


def _encode(values: Sequence[Any], keys: list[tuple[ColumnElement[Any], bool]]) -> str:
    for value, (column, _) in zip(values, keys, strict=True):
        if value is None:
            raise ValueError(
                f"paginate_keyset: the sort key {column} is NULL in a row; keyset pagination"
                " needs sort keys that are never NULL"
            )
    raw = json.dumps(to_jsonable_python(list(values)), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


_adapters: dict[tuple[Any, ...], TypeAdapter[Any]] = {}


def _cursor_adapter(types: tuple[Any, ...]) -> TypeAdapter[Any]:
    """The validator of a cursor's values (JSON to the key columns' types), made once per types."""
    try:
        adapter = _adapters.get(types)
    except TypeError:  # a type that cannot be hashed: build it each time
        return TypeAdapter(tuple[types])  # type: ignore[valid-type]
    if adapter is None:
        adapter = _adapters[types] = TypeAdapter(tuple[types])  # type: ignore[valid-type]
    return adapter


def _decode(cursor: str, keys: list[tuple[ColumnElement[Any], bool]]) -> list[Any]:
    adapter = _cursor_adapter(tuple(python_type(column.type) for column, _ in keys))
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = list(adapter.validate_json(raw))
    except (ValueError, binascii.Error, ValidationError):
        raise BadRequestError(
            "invalid cursor in 'after': pass the next_cursor of a previous page unchanged"
        ) from None
    return values
