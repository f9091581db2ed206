"""What the list page and the list endpoint share: search, filters, sort and loading."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Boolean, Select, and_, distinct, or_, select
from sqlalchemy.orm import selectinload
from sqlalchemy.types import Enum as SAEnum

from trellis.contrib.db.filters import Filters, FilterSet
from trellis.contrib.db.schemas import python_type
from trellis.exceptions import RequestValidationError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from trellis.contrib.admin.options import ModelAdmin

_MAX_WORDS = 10
_MAX_CHOICES = 100


def sortable_fields(ma: ModelAdmin) -> list[str]:
    """The columns a list may be sorted by: ``sortable_by``, or the displayed columns."""
    if ma.sortable_by is not None:
        fields = list(ma.sortable_by)
    else:
        fields = [n for n in ma.display_names() if isinstance(n, str) and n in ma.columns]
    for item in ma.ordering:
        name = item.removeprefix("-")
        if name not in fields:
            fields.append(name)
    return fields


def default_sort(ma: ModelAdmin) -> list[str]:
    """``ordering``, or the primary key descending (the newest first)."""
    return list(ma.ordering) or ["-" + ma.pk_name]


def filterset(ma: ModelAdmin) -> FilterSet:
    """The ``FilterSet`` of ``ma``: ``list_filter`` fields (``eq`` and ``in``), its sorts."""
    found: FilterSet | None = ma.__dict__.get("_filterset")
    if found is None:
        found = ma.__dict__["_filterset"] = FilterSet(
            ma.model,
            fields={name: ["eq", "in"] for name in ma.list_filter},
            sort=sortable_fields(ma),
            default_sort=default_sort(ma),
        )
    return found


def search(ma: ModelAdmin, statement: Select[Any], q: str | None) -> Select[Any]:
    """``statement`` where every word of ``q`` is in one of ``search_fields``.

    Words are bound parameters, matched case-insensitively with ``%`` and ``_`` literal.
    """
    if not q or not ma.search_fields:
        return statement
    columns = [ma.columns[name] for name in ma.search_fields]
    clauses = [
        or_(*(column.icontains(word, autoescape=True) for column in columns))
        for word in q.split()[:_MAX_WORDS]
    ]
    return statement.where(and_(*clauses)) if clauses else statement


def relationship_options(ma: ModelAdmin, names: Sequence[Any]) -> list[Any]:
    """``selectinload`` for each relationship named in ``names`` (async code loads eagerly)."""
    return [
        selectinload(getattr(ma.model, name))
        for name in names
        if isinstance(name, str) and name in ma.relationships
    ]


def all_relationship_options(ma: ModelAdmin) -> list[Any]:
    """``selectinload`` for the many-to-one and many-to-many relationships of the model."""
    return [
        selectinload(getattr(ma.model, name))
        for name, rel in ma.relationships.items()
        if rel.direction.name in ("MANYTOONE", "MANYTOMANY")
    ]


def parse_value(column: Any, raw: str) -> Any:
    """A query-string value as the column's Python type; ``ValueError`` when it is not one."""
    if isinstance(column.type, Boolean):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    tp = python_type(column.type)
    try:
        return TypeAdapter(tp).validate_python(raw, strict=False)
    except ValidationError:
        try:
            return TypeAdapter(tp).validate_json(raw)
        except ValidationError:
            raise ValueError(raw) from None


def page_filters(
    ma: ModelAdmin, query: Mapping[str, str], sort: str | None
) -> tuple[Filters, dict[str, str]]:
    """The filters of a list page's query string, and the ones that applied (as given).

    Values that do not fit their column and sorts that are not allowed are ignored: a page
    shows the list rather than an error for a hand-edited URL.
    """
    values: dict[str, Any] = {}
    applied: dict[str, str] = {}
    for name in ma.list_filter:
        raw = query.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse_value(ma.columns[name], raw)
        except ValueError:
            continue
        applied[name] = raw
    fs = filterset(ma)
    if sort:
        values["sort"] = sort
    try:
        return fs.filters(values), applied
    except RequestValidationError:
        values.pop("sort", None)
        return fs.filters(values), applied


@dataclass(frozen=True, slots=True)
class Choice:
    """One link of a filter: its label and the value it puts in the query string."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class FilterChoices:
    """A filter of the list page: a column and the values offered."""

    name: str
    label: str
    choices: list[Choice]


async def filter_choices(ma: ModelAdmin, db: AsyncSession) -> list[FilterChoices]:
    """The values each ``list_filter`` column offers: booleans, enums, related rows, values."""
    from trellis.contrib.admin.options import humanize
    from trellis.i18n import gettext

    result: list[FilterChoices] = []
    for name in ma.list_filter:
        column = ma.columns[name]
        sa_type = column.type
        choices: list[Choice]
        label = humanize(name)
        related = _related_model(ma, column)
        if isinstance(sa_type, Boolean):
            choices = [Choice(gettext("Yes"), "true"), Choice(gettext("No"), "false")]
        elif isinstance(sa_type, SAEnum):
            enum_class = sa_type.enum_class
            if enum_class is not None:
                choices = [Choice(str(m.value), str(m.value)) for m in enum_class]
            else:
                choices = [Choice(str(v), str(v)) for v in sa_type.enums]
        elif related is not None:
            related_model, related_key, relationship_name = related
            target_admin = ma.admin.registry.get(related_model)
            rows = (
                await db.scalars(select(related_model).order_by(related_key).limit(_MAX_CHOICES))
            ).all()
            describe = target_admin.object_repr if target_admin else str
            choices = [Choice(describe(row), str(getattr(row, related_key.key))) for row in rows]
            label = humanize(relationship_name)
        else:
            values = (
                await db.scalars(
                    select(distinct(column))
                    .where(column.is_not(None))
                    .order_by(column)
                    .limit(_MAX_CHOICES)
                )
            ).all()
            choices = [Choice(_text(v), _text(v)) for v in values]
        result.append(FilterChoices(name, label, choices))
    return result


def _text(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _related_model(ma: ModelAdmin, column: Any) -> tuple[type[Any], Any, str] | None:
    """For a foreign key column: the model it points at, the referenced column, the name."""
    for rel in ma.relationships.values():
        if rel.direction.name == "MANYTOONE" and column in rel.local_columns:
            target = rel.mapper.class_
            remote = next(iter(rel.remote_side), None)
            if remote is None:  # pragma: no cover - a many-to-one always has a remote side
                continue
            attr = _attribute_of(rel.mapper, remote)
            return target, attr, rel.key
    return None


def _attribute_of(mapper: Any, column: Any) -> Any:
    for prop in mapper.column_attrs:
        if prop.columns[0] is column:
            return getattr(mapper.class_, prop.key)
    return column  # pragma: no cover
