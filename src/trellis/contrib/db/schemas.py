"""Pydantic schemas derived from models: what an API reads, creates and updates.

``model_schema(Article)`` is the read schema (every column, ``from_attributes``), so a handler
annotated ``-> ArticleRead`` can return ORM objects; ``mode="create"`` leaves out the columns the
database fills in (autoincrement keys, server defaults, ``onupdate`` timestamps); ``mode="update"``
makes every field optional, for ``PATCH``. ``apply(article, data)`` copies the fields a client
actually sent onto an instance.

Example:
    ```python
    ArticleRead = model_schema(Article)
    ArticleCreate = model_schema(Article, "create")
    ArticleUpdate = model_schema(Article, "update")

    @app.patch("/articles/{id:int}")
    async def edit(id: int, data: ArticleUpdate, db: Session) -> ArticleRead:
        article = await get_or_404(db, Article, id)
        apply(article, data)
        return article
    ```
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model
from pydantic.config import JsonDict
from sqlalchemy import Column, ColumnDefault, inspect
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import (
    ARRAY,
    Date,
    DateTime,
    Enum,
    LargeBinary,
    Numeric,
    String,
    Time,
    TypeDecorator,
    TypeEngine,
)

from trellis.exceptions import ConfigurationError

__all__ = ["Mode", "apply", "model_schema", "python_type"]

Mode = Literal["read", "create", "update"]
M = TypeVar("M")

_MODES = ("read", "create", "update")
_cache: weakref.WeakKeyDictionary[type, dict[tuple[Any, ...], type[BaseModel]]] = (
    weakref.WeakKeyDictionary()
)


def model_schema(
    model: type[Any],
    mode: Mode = "read",
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    name: str | None = None,
) -> type[BaseModel]:
    """A pydantic model for the column attributes of ``model``, made once and cached.

    - ``"read"``: every column, each required, ``X | None`` where the column is nullable;
      built ``from_attributes`` so it validates ORM instances.
    - ``"create"``: without the columns the database or the ORM fills in: autoincrement integer
      primary keys, identity and computed columns, columns with a server default or a SQL
      expression default, ``onupdate`` columns, and date/time columns with a Python function
      as default (``TimestampMixin``'s ``created_at``/``updated_at``). Nullable columns and
      columns with another Python default are optional.
    - ``"update"``: as ``"create"`` without any primary key, and every field optional, for
      ``PATCH``: ``data.model_dump(exclude_unset=True)`` (or ``apply``) gives only the fields the
      client sent. A field is ``null``-able only when its column is nullable.

    Types come from each column's SQL type: ``String(n)`` is ``str`` of at most ``n``
    characters, ``Numeric(p, s)`` a ``Decimal`` with those digits, ``Enum`` the enum class (or
    the ``Literal`` of its values), ``JSON`` and types without a known Python type ``Any``. A
    ``TypeDecorator`` gives its ``python_type`` if it defines one, else its ``impl``'s, unless
    that is text or bytes (often a serialised value): then ``Any``.
    Relationships and attributes whose name starts with ``_`` are left out.

    Args:
        model: A mapped class (a subclass of your declarative base).
        mode: ``"read"``, ``"create"`` or ``"update"``.
        include: Only these attributes. Naming an attribute that ``mode`` would leave out puts it
            back (optional unless it is required to insert a row).
        exclude: Leave these attributes out (``password_hash`` from a read schema ...).
        name: The class name (shown in the API docs); defaults to ``ArticleRead``,
            ``ArticleCreate``, ``ArticleUpdate``. Give each variant made with ``include`` or
            ``exclude`` its own name: API docs name schemas by class name.

    Raises:
        ConfigurationError: ``model`` is not mapped, ``mode`` is unknown, or ``include`` or
            ``exclude`` names an attribute that is not a column of ``model``.
    """
    if mode not in _MODES:
        raise ConfigurationError(f"model_schema mode is 'read', 'create' or 'update', not {mode!r}")
    included = None if include is None else frozenset(include)
    excluded = frozenset(exclude or ())
    key = (mode, included, excluded, name)
    per_model = _cache.setdefault(model, {})
    cached = per_model.get(key)
    if cached is None:
        cached = per_model[key] = _build(model, mode, included, excluded, name)
    return cached


def apply(instance: M, data: BaseModel | Mapping[str, Any]) -> M:
    """Set on ``instance`` the fields of ``data`` that were set, and return ``instance``.

    A pydantic ``data`` gives only the fields the client sent (``exclude_unset``), so a
    ``PATCH`` body ``{"title": "New"}`` leaves every other attribute alone; a mapping gives all
    its items.

    Raises:
        ValueError: ``data`` names something that is not an attribute of the model (nothing is
            set then).
    """
    values = data.model_dump(exclude_unset=True) if isinstance(data, BaseModel) else dict(data)
    known = inspect(type(instance)).all_orm_descriptors
    unknown = sorted(k for k in values if k not in known)
    if unknown:
        raise ValueError(
            f"{type(instance).__name__} has no attribute {', '.join(map(repr, unknown))} to set;"
            " drop it from the data or map it on the model"
        )
    for key, value in values.items():
        setattr(instance, key, value)
    return instance


# -- building -----------------------------------------------------------------------------------


def _mapper(model: type[Any]) -> Mapper[Any]:
    mapper = inspect(model, raiseerr=False)
    if not isinstance(mapper, Mapper):
        raise ConfigurationError(
            f"{model!r} is not a mapped class; pass a model (a subclass of your DeclarativeBase)"
        )
    return mapper


def _build(
    model: type[Any],
    mode: Mode,
    include: frozenset[str] | None,
    exclude: frozenset[str],
    name: str | None,
) -> type[BaseModel]:
    mapper = _mapper(model)
    columns: dict[str, ColumnElement[Any]] = {
        prop.key: prop.columns[0] for prop in mapper.column_attrs if not prop.key.startswith("_")
    }
    unknown = sorted(((include or frozenset()) | exclude) - columns.keys())
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ConfigurationError(
            f"model_schema({model.__name__}): {names} {'is' if len(unknown) == 1 else 'are'} not"
            f" a column attribute of {model.__name__}; its columns are {', '.join(columns)}"
        )
    fields: dict[str, Any] = {}
    for key, column in columns.items():
        if key in exclude or (include is not None and key not in include):
            continue
        field = _field(column, mode, forced=include is not None)
        if field is not None:
            fields[key] = field
    config = ConfigDict(from_attributes=True, protected_namespaces=())
    if mode != "read":
        config["extra"] = "forbid"  # a misspelt field is an error, not silently dropped
    title = {"read": "as read", "create": "to create", "update": "to update (every field optional)"}
    return create_model(
        name or f"{model.__name__}{mode.capitalize()}",
        __config__=config,
        __doc__=f"{model.__name__} {title[mode]}.",
        __module__=model.__module__,
        **fields,
    )


def _field(column: ColumnElement[Any], mode: Mode, *, forced: bool) -> tuple[Any, Any] | None:
    """The annotation and ``FieldInfo`` of one column, or ``None`` to leave it out."""
    tp = python_type(column.type)
    description = getattr(column, "comment", None) or None
    if not isinstance(column, Column):
        # A column_property over a SQL expression: computed, so read-only.
        if mode != "read":
            return None
        return tp | None, Field(description=description)
    nullable = bool(column.nullable)
    if mode == "read":
        return (tp | None if nullable else tp), Field(description=description)
    managed = _database_fills(column)
    if mode == "update":
        if column.primary_key or (managed and not forced):
            return None
        return _optional(tp, nullable, description)
    if managed and not forced:
        return None
    default = column.default
    if isinstance(default, ColumnDefault) and default.is_scalar:
        return (tp | None if nullable else tp), Field(default.arg, description=description)
    if nullable or default is not None or managed:
        # Left unset, the ORM leaves the column out of the INSERT and its default applies.
        return _optional(tp, nullable, description)
    return tp, Field(description=description)


def _optional(tp: Any, nullable: bool, description: str | None) -> tuple[Any, Any]:
    """A field that may be left out (``None`` then); ``null`` is valid only when nullable."""
    if nullable:
        return tp | None, Field(None, description=description)
    return tp, Field(None, description=description, json_schema_extra=_no_default)


def _no_default(schema: JsonDict) -> None:
    # The unset marker None is no value of the field: "default": null would be a default its
    # own schema refuses (an invalid OpenAPI document). Left out, the field is just optional.
    schema.pop("default", None)


def _database_fills(column: Column[Any]) -> bool:
    """Whether the database or the ORM computes this column's value."""
    table = column.table
    default = column.default
    return bool(
        (column.primary_key and table is not None and table.autoincrement_column is column)
        or column.identity is not None
        or column.computed is not None
        or column.server_default is not None
        or column.onupdate is not None
        or column.server_onupdate is not None
        or (default is not None and not default.is_scalar and not default.is_callable)
        # A timestamp the model stamps itself (``default=utcnow``): created_at.
        or (default is not None and default.is_callable and _is_time(column.type))
    )


def _is_time(sa_type: TypeEngine[Any]) -> bool:
    if isinstance(sa_type, TypeDecorator):
        return _is_time(sa_type.impl_instance)
    return isinstance(sa_type, DateTime | Date | Time)


def python_type(sa_type: TypeEngine[Any]) -> Any:
    """The Python type (with constraints) that values of the SQL type ``sa_type`` validate as."""
    if isinstance(sa_type, Enum):
        if sa_type.enum_class is not None:
            return sa_type.enum_class
        return Literal[tuple(sa_type.enums)]
    try:
        base: Any = sa_type.python_type
    except NotImplementedError:  # SQLAlchemy 2.0 for types without one; 2.1 gives object
        base = object
    if base is object and isinstance(sa_type, TypeDecorator):
        base = _decorated_type(sa_type)
    if base is object or base is dict:  # JSON: any JSON value, not only objects
        return Any
    if isinstance(sa_type, String) and sa_type.length:
        return Annotated[str, StringConstraints(max_length=sa_type.length)]
    if isinstance(sa_type, Numeric) and sa_type.asdecimal and sa_type.precision is not None:
        digits: dict[str, int] = {"max_digits": sa_type.precision}
        if sa_type.scale is not None:
            digits["decimal_places"] = sa_type.scale
        return Annotated[base, Field(**digits)]  # type: ignore[call-overload]
    if isinstance(sa_type, ARRAY):
        return list[python_type(sa_type.item_type)]  # type: ignore[misc]
    return base


def _decorated_type(sa_type: TypeDecorator[Any]) -> Any:
    """What Python sees of a ``TypeDecorator`` that does not declare ``python_type``.

    Its ``impl`` is how values are stored; over text or bytes that is often a serialised
    value (JSON in a ``Text``), so only other impls (``DateTime`` ...) are taken at their word.
    """
    impl = sa_type.impl_instance
    if isinstance(impl, String | LargeBinary):
        return object
    try:
        return impl.python_type
    except NotImplementedError:
        return object
