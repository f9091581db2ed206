"""Writing the action log: one entry per object, in the request's own transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from trellis.contrib.admin.models import AdminLogEntry

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from trellis.contrib.admin.options import ModelAdmin
    from trellis.http.connection import HTTPConnection


def snapshot(ma: ModelAdmin, obj: Any) -> dict[str, Any]:
    """The column values of ``obj`` now, to compare with later (``changed_fields``).

    Many-to-many relationships that are loaded count too, as the set of their keys.
    """
    values: dict[str, Any] = {
        name: getattr(obj, name, None)
        for name, column in ma.columns.items()
        if not _managed(column)
    }
    state = obj.__dict__
    for name, rel in ma.relationships.items():
        if rel.direction.name == "MANYTOMANY" and name in state:
            values[name] = {id(item) for item in state[name] or ()}
    return values


def _managed(column: Any) -> bool:
    """Whether the database or the ORM sets the column itself (``updated_at``, the key)."""
    from trellis.contrib.db.schemas import _database_fills

    return bool(getattr(column, "primary_key", False)) or (
        hasattr(column, "table") and _database_fills(column)
    )


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The names whose value differs between two snapshots (in column order)."""
    return [name for name, value in after.items() if before.get(name, value) != value]


def log(
    db: AsyncSession,
    conn: HTTPConnection,
    ma: ModelAdmin,
    objects: Iterable[tuple[Any, str]],
    action: str,
    *,
    changed: Iterable[str] = (),
    action_name: str | None = None,
) -> list[AdminLogEntry]:
    """Add log entries for ``objects`` (pairs of object and its repr) to ``db``.

    Called after the change was flushed, so a change the database refused leaves no entry;
    both are committed (or rolled back) together with the request. Only field names are kept.
    """
    user = getattr(conn.state, "user", None)
    user_id = getattr(user, "id", None)
    user_repr = str(user) if user is not None else ""
    fields = list(changed)
    entries = [
        AdminLogEntry(
            user_id=user_id,
            user_repr=user_repr[:320],
            model=ma.table_name,
            object_pk=_pk(ma, obj),
            object_repr=text,
            action=action,
            action_name=action_name,
            changed_fields=fields,
        )
        for obj, text in objects
    ]
    db.add_all(entries)
    return entries


def _pk(ma: ModelAdmin, obj: Any) -> str:
    return ma.pk_text(obj)[:255]
