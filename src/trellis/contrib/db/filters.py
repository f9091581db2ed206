"""Filtering and sorting from the query string, on the fields you allow and no others.

A ``FilterSet`` is a dependency: its query parameters (``?title__contains=``, ``?price__gte=``,
``?sort=-price,title``) are typed like a handler's own, so bad values are a 422 and every
parameter appears in the API docs. It gives a ``Filters`` whose ``apply`` adds the ``WHERE``
and ``ORDER BY`` to a statement.

Example:
    ```python
    article_filters = FilterSet(
        Article,
        fields={"title": ["eq", "contains"], "price": ["gte", "lte"], "status": ["in"]},
        sort=["created_at", "price", "title"],
        default_sort="-created_at",
    )

    @app.get("/articles")
    async def articles(
        filters: Annotated[Filters, Depends(article_filters)], db: Session
    ) -> list[ArticleRead]:
        return list(await db.scalars(filters.apply(select(Article))))
    ```

    ``GET /articles?title__contains=sql&price__lte=20&sort=-price`` then runs
    ``... WHERE lower(title) LIKE '%sql%' AND price <= 20 ORDER BY price DESC, id``.

Operators (the query name is ``field`` for ``eq``, ``field__op`` for the others):

- ``eq``, ``ne``, ``lt``, ``lte``, ``gt``, ``gte``: compare with a value of the column's type;
- ``in``: one of several values, repeated in the query: ``?status__in=draft&status__in=live``;
- ``contains``, ``startswith``, ``endswith``: text match, case-insensitive, ``%`` and ``_``
  taken literally (text columns only; SQLite folds the case of ASCII letters only);
- ``isnull``: ``?deleted_at__isnull=true`` or ``false``.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_args, get_origin

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Enum, String, TypeDecorator, TypeEngine

from trellis.contrib.db.schemas import python_type
from trellis.exceptions import ConfigurationError, RequestValidationError
from trellis.handlers.params import Query

if TYPE_CHECKING:
    from sqlalchemy import Select

__all__ = ["OPERATORS", "FilterSet", "Filters"]

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")

_TEXT_OPS = ("contains", "startswith", "endswith")
_SORT = "_sort"  # the sort parameter's Python name (its query name is ``sort_param``)
#: The operators a ``FilterSet`` field can allow, and how the API docs describe them.
OPERATORS: dict[str, str] = {
    "eq": "equals",
    "ne": "does not equal",
    "lt": "is less than",
    "lte": "is at most",
    "gt": "is greater than",
    "gte": "is at least",
    "in": "is one of (repeat the parameter for each value)",
    "contains": "contains (case-insensitive)",
    "startswith": "starts with (case-insensitive)",
    "endswith": "ends with (case-insensitive)",
    "isnull": "is null (true) or is not (false)",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Filters:
    """What one request asked for: its conditions and its ordering.

    Attributes:
        conditions: The ``WHERE`` conditions (joined by ``AND``).
        order_by: The ``ORDER BY`` clauses: the requested sort (or the default), then the
            primary key, so the order is total and pages are stable. Ready to pass to
            ``paginate_keyset(order_by=...)``.
        values: The filter values the client sent, by query name (``{"price__gte": 10}``).
        sort: The sort the request uses, as names (``("-price", "title")``).
    """

    conditions: tuple[ColumnElement[bool], ...]
    order_by: tuple[ColumnElement[Any], ...]
    values: Mapping[str, Any]
    sort: tuple[str, ...]

    def where(self, statement: S) -> S:
        """``statement`` with the filter conditions added (its ordering kept)."""
        return statement.where(*self.conditions) if self.conditions else statement

    def apply(self, statement: S) -> S:
        """``statement`` with the conditions added and its ordering replaced by the sort."""
        return self.where(statement).order_by(None).order_by(*self.order_by)


@dataclasses.dataclass(frozen=True, slots=True)
class _Param:
    name: str  # the Python name in the generated signature
    alias: str  # the name in the query string
    field: str  # the column attribute
    column: ColumnElement[Any]
    op: str

    def condition(self, value: Any) -> ColumnElement[bool]:
        return _CONDITIONS[self.op](self.column, value)


_CONDITIONS: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[bool]]] = {
    "eq": lambda column, value: column == value,
    "ne": lambda column, value: column != value,
    "lt": lambda column, value: column < value,
    "lte": lambda column, value: column <= value,
    "gt": lambda column, value: column > value,
    "gte": lambda column, value: column >= value,
    "in": lambda column, value: column.in_(value),
    # Lower-cased on both sides and LIKE-escaped: the same on every database.
    "contains": lambda column, value: column.icontains(value, autoescape=True),
    "startswith": lambda column, value: column.istartswith(value, autoescape=True),
    "endswith": lambda column, value: column.iendswith(value, autoescape=True),
    "isnull": lambda column, value: column.is_(None) if value else column.is_not(None),
}


class FilterSet:
    """A dependency that reads filters and a sort for ``model`` from the query string.

    Use it as ``Annotated[Filters, Depends(article_filters)]``; it gives a ``Filters``. Query
    parameters it does not define are ignored; a sort on a field not in ``sort`` is a 422 that
    names the fields allowed.

    Args:
        model: The mapped class whose columns are filtered.
        fields: Column attribute -> the operators allowed on it (see ``OPERATORS``), as a list
            or one name: ``{"title": ["eq", "contains"], "status": "in"}``.
        sort: The column attributes a client may sort by. ``?sort=-price,title``: comma
            separated, a leading ``-`` for descending.
        default_sort: The sort when the request gives none, in the same form (``"-created_at"``
            or ``["-created_at", "title"]``); any column of the model.
        sort_param: The name of the sort parameter; ``None`` for no sort parameter (the
            default sort always applies).

    Raises:
        ConfigurationError: an unknown attribute or operator, a text operator on a column that
            is not text, or two parameters with the same query name.
    """

    __signature__: inspect.Signature

    def __init__(
        self,
        model: type[Any],
        *,
        fields: Mapping[str, Sequence[str] | str] | None = None,
        sort: Sequence[str] = (),
        default_sort: str | Sequence[str] | None = None,
        sort_param: str | None = "sort",
    ) -> None:
        mapper = sa_inspect(model, raiseerr=False)
        if not isinstance(mapper, Mapper):
            raise ConfigurationError(f"FilterSet needs a mapped class, got {model!r}")
        self.model = model
        name = model.__name__
        self._columns: dict[str, ColumnElement[Any]] = {
            prop.key: prop.columns[0] for prop in mapper.column_attrs
        }
        self._params = self._compile_fields(name, fields or {})
        self.sort_fields = tuple(sort)
        for field in self.sort_fields:
            self._column(field, "sort")
        if isinstance(default_sort, str):
            default_sort = [default_sort]
        self.default_sort = tuple(default_sort or ())
        for item in self.default_sort:
            self._column(item.removeprefix("-"), "default_sort")
        self.sort_param = sort_param
        self._tiebreak = tuple(mapper.primary_key)
        aliases = [p.alias for p in self._params]
        if sort_param is not None and self.sort_fields:
            aliases.append(sort_param)
        clash = sorted({a for a in aliases if aliases.count(a) > 1})
        if clash:
            raise ConfigurationError(
                f"FilterSet({name}): more than one query parameter is named"
                f" {', '.join(map(repr, clash))}; rename the sort parameter with sort_param="
            )
        self._install_signature()

    # -- per request -------------------------------------------------------------------------

    def filters(self, values: Mapping[str, Any]) -> Filters:
        """The ``Filters`` for query values given by query name (what the dependency does).

        Raises:
            RequestValidationError: the sort names a field that is not allowed (422).
        """
        conditions = []
        given: dict[str, Any] = {}
        for param in self._params:
            value = values.get(param.alias)
            if value is None:
                continue
            given[param.alias] = value
            conditions.append(param.condition(value))
        raw_sort = values.get(self.sort_param) if self.sort_param is not None else None
        sort = self._parse_sort(raw_sort) if raw_sort else self.default_sort
        order_by: list[ColumnElement[Any]] = []
        used: set[str] = set()
        for item in sort:
            field = item.removeprefix("-")
            column = self._columns[field]
            used.add(field)
            order_by.append(column.desc() if item.startswith("-") else column.asc())
        used_columns = {self._columns[f] for f in used}
        order_by.extend(c for c in self._tiebreak if c not in used_columns)
        return Filters(tuple(conditions), tuple(order_by), given, tuple(sort))

    def _parse_sort(self, raw: str) -> tuple[str, ...]:
        items: list[str] = []
        seen: set[str] = set()
        bad: list[str] = []
        for part in raw.split(","):
            item = part.strip()
            field = item.removeprefix("-").strip()
            if not field or field in seen:
                continue
            if field not in self.sort_fields:
                bad.append(field)
                continue
            seen.add(field)
            items.append(("-" if item.startswith("-") else "") + field)
        if bad:
            allowed = ", ".join(self.sort_fields)
            raise RequestValidationError(
                [
                    {
                        "loc": ["query", self.sort_param],
                        "msg": f"cannot sort by {', '.join(map(repr, bad))}; sort by {allowed}"
                        " (comma separated, a leading - for descending)",
                        "type": "sort_field",
                    }
                ]
            )
        return tuple(items)

    # -- start-up ------------------------------------------------------------------------------

    def _column(self, field: str, where: str) -> ColumnElement[Any]:
        column = self._columns.get(field)
        if column is None:
            raise ConfigurationError(
                f"FilterSet({self.model.__name__}): {where} names {field!r}, which is not a"
                f" column attribute of {self.model.__name__}; its columns are"
                f" {', '.join(self._columns)}"
            )
        return column

    def _compile_fields(self, name: str, fields: Mapping[str, Sequence[str] | str]) -> list[_Param]:
        params: list[_Param] = []
        for field, ops in fields.items():
            column = self._column(field, "fields")
            for op in [ops] if isinstance(ops, str) else ops:
                if op not in OPERATORS:
                    raise ConfigurationError(
                        f"FilterSet({name}): unknown operator {op!r} for {field!r}; the operators"
                        f" are {', '.join(OPERATORS)}"
                    )
                if op in _TEXT_OPS and not _is_text(column.type):
                    raise ConfigurationError(
                        f"FilterSet({name}): {op!r} matches text, and {field!r} is not a text"
                        " column; use eq or in"
                    )
                alias = field if op == "eq" else f"{field}__{op}"
                python_name = alias
                taken = {p.name for p in params} | {_SORT}
                if not alias.isidentifier() or keyword.iskeyword(alias) or alias in taken:
                    python_name = f"p{len(params)}"
                params.append(_Param(python_name, alias, field, column, op))
        return params

    def _install_signature(self) -> None:
        parameters: list[inspect.Parameter] = []
        annotations: dict[str, Any] = {}
        for param in self._params:
            base = _scalar(python_type(param.column.type))
            if param.op in _TEXT_OPS:
                base = str
            elif param.op == "isnull":
                base = bool
            tp: Any = list[base] if param.op == "in" else base  # type: ignore[valid-type]
            described = f"Filter: {param.field} {OPERATORS[param.op]}."
            annotations[param.name] = Annotated[
                tp | None, Query(alias=param.alias, description=described)
            ]
            parameters.append(
                inspect.Parameter(param.name, inspect.Parameter.KEYWORD_ONLY, default=None)
            )
        if self.sort_param is not None and self.sort_fields:
            allowed = ", ".join(self.sort_fields)
            annotations[_SORT] = Annotated[
                str | None,
                Query(
                    alias=self.sort_param,
                    max_length=1000,
                    description=f"Sort by {allowed}: comma separated, a leading - for descending"
                    + (f"; default {','.join(self.default_sort)}." if self.default_sort else "."),
                    examples=[f"-{self.sort_fields[0]}"],
                ),
            ]
            parameters.append(
                inspect.Parameter(_SORT, inspect.Parameter.KEYWORD_ONLY, default=None)
            )
        by_name = {p.name: p.alias for p in self._params}
        if self.sort_param is not None:
            by_name[_SORT] = self.sort_param

        async def provide(self: FilterSet, **values: Any) -> Filters:
            return self.filters({by_name[k]: v for k, v in values.items()})

        provide.__annotations__ = {**annotations, "return": Filters}
        self.__signature__ = inspect.Signature(parameters, return_annotation=Filters)
        # Trellis reads a callable object's parameter types from ``type(obj).__call__``; a
        # class of its own per filter set lets that ``__call__`` carry these parameters.
        cls = type(self)
        self.__class__ = type(
            f"{cls.__name__}[{self.model.__name__}]",
            (cls,),
            {"__call__": provide, "__module__": cls.__module__},
        )

    async def __call__(self, **values: Any) -> Filters:
        """Read the filters of one request (called by Trellis as a dependency)."""
        return self.filters(values)

    def __repr__(self) -> str:
        return f"FilterSet({self.model.__name__}, params={[p.alias for p in self._params]})"


def _is_text(sa_type: TypeEngine[Any]) -> bool:
    if isinstance(sa_type, TypeDecorator):
        return _is_text(sa_type.impl_instance)
    return isinstance(sa_type, String) and not isinstance(sa_type, Enum)


def _scalar(tp: Any) -> Any:
    """``tp`` without ``Annotated`` constraints: query values need a plain scalar type."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp
