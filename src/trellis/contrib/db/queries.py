"""Fetch one row or answer 404: ``get_or_404`` by primary key, ``first_or_404`` by query.

Example:
    ```python
    @app.get("/articles/{id:int}")
    async def show(id: int, db: Session) -> ArticleRead:
        return await get_or_404(db, Article, id)

    @app.get("/articles/by-slug/{slug}")
    async def by_slug(slug: str, db: Session) -> ArticleRead:
        return await first_or_404(db, select(Article).where(Article.slug == slug))
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from trellis.exceptions import NotFoundError

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm.interfaces import ORMOption

__all__ = ["first_or_404", "get_or_404"]

M = TypeVar("M")


async def get_or_404(
    session: AsyncSession,
    model: type[M],
    ident: Any,
    *,
    detail: str | None = None,
    options: Sequence[ORMOption] = (),
) -> M:
    """The ``model`` instance whose primary key is ``ident``, or a 404.

    Uses ``session.get``: an instance already in the session is returned without a query.

    Args:
        session: The request's session.
        model: The mapped class.
        ident: The primary key value; a tuple (in column order) or a dict for a composite key.
        detail: The 404 message; defaults to ``"Article 42 not found"``.
        options: Loader options such as ``selectinload(Article.tags)``.

    Raises:
        NotFoundError: no row has that primary key.
    """
    found = await session.get(model, ident, options=options or None)
    if found is None:
        raise NotFoundError(detail or f"{model.__name__} {_describe(ident)} not found")
    return found


async def first_or_404(
    session: AsyncSession, statement: Select[*tuple[Any, ...]], *, detail: str | None = None
) -> Any:
    """The first row of ``statement``, or a 404 when it returns none.

    Only one row is fetched (``LIMIT 1``). A statement selecting one entity or column gives
    that value (an ``Article``); one selecting several gives the row (attributes by name).

    Args:
        session: The request's session.
        statement: A ``select(...)``; give it an ``order_by`` when several rows can match.
        detail: The 404 message; defaults to ``"Article not found"`` (the selected entity).

    Raises:
        NotFoundError: the statement returns no row.
    """
    result = await session.execute(statement.limit(1))
    row = result.first()
    if row is None:
        raise NotFoundError(detail or f"{_entity_name(statement)} not found")
    return row[0] if len(row) == 1 else row


def _describe(ident: Any) -> str:
    if isinstance(ident, Mapping):
        return ", ".join(f"{k}={v!r}" for k, v in ident.items())
    if isinstance(ident, tuple):
        return "(" + ", ".join(map(str, ident)) + ")"
    return str(ident)


def _entity_name(statement: Select[*tuple[Any, ...]]) -> str:
    descriptions = statement.column_descriptions
    entity = descriptions[0].get("entity") if descriptions else None
    return getattr(entity, "__name__", None) or "Row"
