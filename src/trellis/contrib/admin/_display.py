"""How values look in the admin's pages: escaped HTML for each cell and field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from trellis.i18n import gettext

if TYPE_CHECKING:
    from trellis.contrib.admin.options import ModelAdmin
    from trellis.http.connection import HTTPConnection

_MAX_TEXT = 300
_MAX_ITEMS = 20


def column_label(ma: ModelAdmin, item: str | Callable[[Any], Any]) -> str:
    """The header of a ``list_display`` item: its ``label`` attribute or its name humanised."""
    from trellis.contrib.admin.options import humanize

    if callable(item):
        label = getattr(item, "label", None) or getattr(item, "short_description", None)
        return str(label) if label else humanize(getattr(item, "__name__", "value"))
    method = getattr(ma, item, None) if item not in ma.columns else None
    if callable(method):
        label = getattr(method, "label", None) or getattr(method, "short_description", None)
        if label:
            return str(label)
    return humanize(item)


def raw_value(ma: ModelAdmin, obj: Any, item: str | Callable[[Any], Any]) -> Any:
    """The value of a ``list_display`` item for ``obj``."""
    if callable(item):
        return item(obj)
    if item in ma.columns or item in ma.relationships:
        return obj.__dict__.get(item) if item in ma.relationships else getattr(obj, item)
    method = getattr(ma, item, None)
    if callable(method):
        return method(obj)
    value = getattr(obj, item, None)
    return value() if callable(value) else value


def link_for(conn: HTTPConnection, ma: ModelAdmin, obj: Any) -> str | None:
    """The detail page of ``obj`` when its model is registered, else ``None``."""
    target = ma.admin.registry.get(type(obj))
    if target is None:
        return None
    return conn.url_for(f"admin.{target.url_slug}_detail", pk=target.pk_text(obj))


def _describe(ma: ModelAdmin, obj: Any) -> str:
    target = ma.admin.registry.get(type(obj))
    return target.object_repr(obj) if target is not None else str(obj)


def format_value(conn: HTTPConnection, ma: ModelAdmin, value: Any, *, links: bool = True) -> Markup:
    """``value`` as escaped HTML: related objects as links, booleans as Yes/No, ..."""
    if value is None:
        return Markup('<span class="empty">—</span>')
    if isinstance(value, Markup):
        return value
    if isinstance(value, bool):
        word = gettext("Yes") if value else gettext("No")
        return Markup('<span class="bool bool-{}">{}</span>').format("yes" if value else "no", word)
    if isinstance(value, datetime):
        return Markup('<time datetime="{}">{}</time>').format(
            value.isoformat(), value.strftime("%Y-%m-%d %H:%M") + (" UTC" if value.tzinfo else "")
        )
    if isinstance(value, date | time):
        return escape(value.isoformat())
    if isinstance(value, Enum):
        return escape(str(value.value))
    if isinstance(value, int | float | Decimal | str):
        text = str(value)
        if len(text) > _MAX_TEXT:
            text = text[: _MAX_TEXT - 1] + "…"
        return escape(text)
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        shown = Markup(", ").join(
            format_value(conn, ma, item, links=links) for item in items[:_MAX_ITEMS]
        )
        if len(items) > _MAX_ITEMS:
            shown += Markup(" …")
        return shown if items else Markup('<span class="empty">—</span>')
    if hasattr(value, "__mapper__"):
        text = _describe(ma, value)
        url = link_for(conn, ma, value) if links else None
        if url is None:
            return escape(text)
        return Markup('<a href="{}">{}</a>').format(url, text)
    return escape(str(value))
