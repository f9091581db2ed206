"""``ModelForm``: a form whose fields come from a SQLAlchemy model, and that saves rows.

```py
class ArticleForm(ModelForm):
    class Meta:
        model = Article
        fields = ["title", "body", "status", "author_id", "tags"]  # or exclude = [...]
        labels = {"author_id": "Written by"}

    body = TextField(required=False)            # declared fields win over generated ones


@app.route("/articles/{id:int}/edit", methods=["GET", "POST"])
async def edit(request: Request, id: int, db: Session) -> object:
    article = await get_or_404(db, Article, id)
    form = await ArticleForm.from_request(request, db=db, instance=article)
    if form.is_valid:
        await form.save(db)
        return redirect(...)
    return render("edit.html", form=form)
```

From each column: its type (``String(n)`` -> ``StringField(max_length=n)``, ``Text`` ->
``TextField``, numbers, ``Boolean`` -> checkbox, ``Date``/``DateTime``/``Time``, ``Enum`` ->
select), whether it is required (not nullable and no default), its initial value (a scalar
default) and help text (the column's ``comment``). A foreign key becomes a select of the rows
it may point to, a many-to-many relationship a multi-select; both are read through ``db``.
Columns the database fills in (autoincrement keys, server defaults, timestamps) are left out
unless ``Meta.fields`` names them. Unique columns are checked before saving.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Column, UniqueConstraint, and_, exists, inspect, or_, select
from sqlalchemy.orm import ColumnProperty, Mapper, RelationshipProperty
from sqlalchemy.types import (
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    TypeDecorator,
    TypeEngine,
)

from trellis.contrib.db.schemas import _database_fills
from trellis.contrib.forms.choices import ChoiceField, MultipleChoiceField
from trellis.contrib.forms.fields import (
    MISSING,
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    Field,
    FloatField,
    IntegerField,
    StringField,
    TextField,
    TimeField,
    humanize,
)
from trellis.contrib.forms.form import Form
from trellis.exceptions import ConfigurationError
from trellis.i18n import gettext as _

__all__ = ["ModelForm"]

FormT = TypeVar("FormT", bound="ModelForm")

#: Attribute names tried, in order, for the label of a related row without its own ``__str__``.
LABEL_ATTRIBUTES = ("name", "title", "label", "username", "email", "slug")


@dataclass(frozen=True)
class _ColumnInfo:
    key: str
    column: Column[Any]


@dataclass(frozen=True)
class _RelationInfo:
    key: str
    related: type[Any]
    pk: str


def row_label(row: Any) -> str:
    """The text of a related row in a select.

    Its ``__str__`` if its class defines one, else its ``name``/``title``/... attribute, else
    ``Class #id``.
    """
    cls: Any = type(row)
    if cls.__str__ is not object.__str__:
        return str(row)
    for attr in LABEL_ATTRIBUTES:
        value = getattr(row, attr, None)
        if isinstance(value, str) and value:
            return value
    identity = inspect(row).identity
    key = ", ".join(str(v) for v in identity) if identity else "?"
    return f"{cls.__name__} #{key}"


def _unwrap(sa_type: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(sa_type, TypeDecorator):
        sa_type = sa_type.impl_instance
    return sa_type


def _python_type(sa_type: TypeEngine[Any]) -> Any:
    try:
        return _unwrap(sa_type).python_type
    except NotImplementedError:
        return str


def _related_class(mapper: Mapper[Any], column: Column[Any]) -> tuple[type[Any], str] | None:
    fk = next(iter(column.foreign_keys))
    target = fk.column
    for candidate in mapper.registry.mappers:
        if candidate.local_table is target.table:
            prop = candidate.get_property_by_column(target)
            return candidate.class_, prop.key
    return None


def _rows_loader(related: type[Any], key: str, form_name: str) -> Callable[[Form], Any]:
    async def load(form: Form) -> list[tuple[Any, str]]:
        db = form.db
        if db is None:
            raise ConfigurationError(
                f"{form_name}: its choices of {related.__name__} rows come from the database;"
                " pass db= (the request's Session) to the form"
            )
        # PERF: every row of the related table, once per form; for large tables declare the
        # field yourself with choices that fit (a search, a filter).
        attr = getattr(related, key)
        rows = (await db.scalars(select(related).order_by(attr))).all()
        return [(getattr(row, key), row_label(row)) for row in rows]

    load.__qualname__ = f"{form_name}.{related.__name__}_choices"
    return load


def _column_field(
    cls_name: str,
    mapper: Mapper[Any],
    prop: ColumnProperty[Any],
    column: Column[Any],
    label: str | None,
    help_text: str | None,
) -> Field | None:
    key = prop.key
    sa_type = _unwrap(column.type)
    nullable = bool(column.nullable)
    default = column.default
    has_default = default is not None or column.server_default is not None
    common: dict[str, Any] = {
        "label": label,
        "help_text": help_text or getattr(column, "comment", None) or None,
        "required": not nullable and not has_default,
    }
    if default is not None and getattr(default, "is_scalar", False):
        common["initial"] = default.arg  # type: ignore[attr-defined]
    if column.foreign_keys:
        found = _related_class(mapper, column)
        if found is None:
            return None
        related, target_key = found
        if common["label"] is None:
            for rel in mapper.relationships:
                if column in rel.local_columns and rel.direction.name == "MANYTOONE":
                    common["label"] = humanize(rel.key)
                    break
            else:
                common["label"] = humanize(key.removesuffix("_id"))
        return ChoiceField(
            coerce=_python_type(column.type),
            choices=_rows_loader(related, target_key, cls_name),
            **common,
        )
    if isinstance(sa_type, Enum):
        choices: Any = sa_type.enum_class if sa_type.enum_class is not None else sa_type.enums
        if isinstance(common.get("initial"), str) and sa_type.enum_class is not None:
            common["initial"] = _enum_member(sa_type.enum_class, common["initial"])
        return ChoiceField(choices=choices, **common)
    if isinstance(sa_type, Boolean):
        common["required"] = False
        return BooleanField(**common)
    if isinstance(sa_type, Integer):
        return IntegerField(**common)
    if isinstance(sa_type, Float) or (isinstance(sa_type, Numeric) and not sa_type.asdecimal):
        return FloatField(**common)
    if isinstance(sa_type, Numeric):
        return DecimalField(max_digits=sa_type.precision, decimal_places=sa_type.scale, **common)
    if isinstance(sa_type, DateTime):
        return DateTimeField(**common)
    if isinstance(sa_type, Date):
        return DateField(**common)
    if isinstance(sa_type, Time):
        return TimeField(**common)
    if isinstance(sa_type, Text) or (isinstance(sa_type, String) and not sa_type.length):
        return TextField(**common)
    if isinstance(sa_type, String):
        if key == "email" or key.endswith("_email"):
            return EmailField(max_length=sa_type.length or 254, **common)
        return StringField(max_length=sa_type.length, **common)
    return None


def _enum_member(enum_class: type[enum.Enum], value: str) -> Any:
    for member in enum_class:
        if member.name == value or member.value == value:
            return member
    return value


class ModelForm(Form):
    """A form for a SQLAlchemy model (``trellis.contrib.db.Model``).

    Options in ``class Meta``: ``model`` (required), ``fields`` (the names to include, in
    order: columns, many-to-many relationship names, declared fields) or ``exclude``,
    ``labels`` and ``help_texts`` (by name), ``csrf``.

    Pass ``db=`` (the request's ``Session``) to ``from_request`` / the constructor: foreign
    key and many-to-many selects read their choices through it, and unique columns are
    checked with it. ``ArticleForm.Json`` takes the request's ``Session`` itself.
    """

    _lazy = True
    _columns: ClassVar[dict[str, _ColumnInfo]] = {}
    _relations: ClassVar[dict[str, _RelationInfo]] = {}

    class Meta:
        """``model``, ``fields`` / ``exclude``, ``labels``, ``help_texts``, ``csrf``."""

        csrf = True
        model: Any = None
        fields: Sequence[str] | None = None
        exclude: Sequence[str] = ()

    @classmethod
    def for_model(
        cls: type[FormT],
        model: type[Any],
        *,
        fields: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        labels: dict[str, str] | None = None,
        help_texts: dict[str, str] | None = None,
        name: str | None = None,
        **declared: Field,
    ) -> type[FormT]:
        """A ``ModelForm`` class for ``model`` (what ``class Meta`` would say, as arguments).

        Args:
            model: The mapped class.
            fields: Only these names, in this order.
            exclude: Leave these out.
            labels: Labels by name.
            help_texts: Help texts by name.
            name: The class name; defaults to ``<Model>Form``.
            **declared: Fields to use instead of the generated ones (or to add).
        """
        meta_base: Any = getattr(cls, "Meta", object)
        meta = type(
            "Meta",
            (meta_base,),
            {
                "model": model,
                "fields": fields,
                "exclude": tuple(exclude),
                "labels": dict(labels or {}),
                "help_texts": dict(help_texts or {}),
            },
        )
        attrs: dict[str, Any] = {"Meta": meta, "__module__": model.__module__, **declared}
        return type(name or f"{model.__name__}Form", (cls,), attrs)

    @classmethod
    def _collect_fields(cls) -> dict[str, Field]:
        meta = getattr(cls, "Meta", None)
        model = getattr(meta, "model", None)
        if model is None:
            raise ConfigurationError(
                f"{cls.__qualname__}: a ModelForm needs the model: class Meta: model = Article"
            )
        mapper = inspect(model, raiseerr=False)
        if not isinstance(mapper, Mapper):
            raise ConfigurationError(
                f"{cls.__qualname__}: Meta.model {model!r} is not a mapped SQLAlchemy class"
            )
        wanted = getattr(meta, "fields", None)
        if wanted == "__all__":
            wanted = None
        exclude = set(getattr(meta, "exclude", ()) or ())
        labels: dict[str, str] = dict(getattr(meta, "labels", {}) or {})
        help_texts: dict[str, str] = dict(getattr(meta, "help_texts", {}) or {})
        declared = cls._declared_fields()

        columns: dict[str, tuple[ColumnProperty[Any], Column[Any]]] = {}
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            if isinstance(column, Column) and not prop.key.startswith("_"):
                columns[prop.key] = (prop, column)
        relations: dict[str, RelationshipProperty[Any]] = {
            rel.key: rel
            for rel in mapper.relationships
            if rel.secondary is not None and rel.uselist and not rel.viewonly
        }
        known = {*columns, *relations, *declared}
        unknown = sorted(({*(wanted or ())} | exclude | labels.keys()) - known)
        if unknown:
            raise ConfigurationError(
                f"{cls.__qualname__}: {', '.join(map(repr, unknown))} not a column, many-to-many"
                f" relationship or declared field of {model.__name__}"
            )

        if wanted is not None:
            names = [n for n in wanted if n not in exclude]
            names += [n for n in declared if n not in names and n not in exclude]
        else:
            names = [
                key
                for key, (_prop, column) in columns.items()
                if key in declared or not _database_fills(column)
            ]
            names += [key for key in relations if key not in names]
            names += [key for key in declared if key not in names]
            names = [n for n in names if n not in exclude]

        fields: dict[str, Field] = {}
        column_infos: dict[str, _ColumnInfo] = {}
        relation_infos: dict[str, _RelationInfo] = {}
        for name in names:
            if name in columns:
                column_infos[name] = _ColumnInfo(name, columns[name][1])
            if name in declared:
                fields[name] = declared[name]
            elif name in columns:
                prop, column = columns[name]
                field = _column_field(
                    cls.__qualname__, mapper, prop, column, labels.get(name), help_texts.get(name)
                )
                if field is None and wanted is None:
                    del column_infos[name]  # a type with no form field (JSON ...): left out
                    continue
                if field is None:
                    raise ConfigurationError(
                        f"{cls.__qualname__}: no form field for the column {name!r} of type"
                        f" {column.type!r}; declare one on the form ({name} = ...Field()) or"
                        " leave it out"
                    )
                fields[name] = field
            else:
                rel = relations[name]
                related_mapper = rel.mapper
                pk_column = related_mapper.primary_key[0]
                pk = related_mapper.get_property_by_column(pk_column).key
                fields[name] = MultipleChoiceField(
                    labels.get(name),
                    help_text=help_texts.get(name),
                    required=False,
                    coerce=_python_type(pk_column.type),
                    choices=_rows_loader(related_mapper.class_, pk, cls.__qualname__),
                )
            if name in relations:
                rel = relations[name]
                pk_column = rel.mapper.primary_key[0]
                relation_infos[name] = _RelationInfo(
                    rel.key, rel.mapper.class_, rel.mapper.get_property_by_column(pk_column).key
                )
        for name, field in fields.items():
            if name in labels and field.label is None:
                field.label = labels[name]
        type.__setattr__(cls, "_columns", column_infos)
        type.__setattr__(cls, "_relations", relation_infos)
        return fields

    @classmethod
    def _make_provider(cls) -> Callable[..., Any]:
        from trellis.contrib.db.dependencies import Session
        from trellis.http.request import Request

        async def provider(request: Any, body: Any, db: Any) -> Any:
            form = cls(request=request, db=db)
            await form._bind_validated(body)
            if not form.is_valid:
                raise form.validation_error()
            return form

        provider.__annotations__ = {
            "request": Request,
            "body": cls.model,
            "db": Session,
            "return": cls,
        }
        provider.__qualname__ = f"{cls.__qualname__}.Json"
        return provider

    # -- instances ------------------------------------------------------------------------

    async def load(self) -> None:
        """Load the selects' choices and, when editing, the instance's related rows."""
        if self._loaded:
            return
        await super().load()
        self._related_initial: dict[str, list[Any]] = {}
        instance = self.instance
        if instance is None:
            return
        state = inspect(instance)
        for name, info in type(self)._relations.items():
            if info.key in state.unloaded and state.session is not None:
                if self.db is None:
                    raise ConfigurationError(
                        f"{type(self).__name__}: reading the {info.key} of the instance needs the"
                        " database; pass db= (the request's Session) to the form"
                    )
                await self.db.refresh(instance, [info.key])
            rows = getattr(instance, info.key) or []
            self._related_initial[name] = [getattr(row, info.pk) for row in rows]

    def _instance_value(self, field: Field) -> Any:
        related = getattr(self, "_related_initial", {})
        if field.name in related:
            return related[field.name]
        info = type(self)._columns.get(field.name)
        if info is None:
            return getattr(self.instance, field.name, MISSING)
        return getattr(self.instance, info.key, MISSING)

    async def _finish(self, cleaned: dict[str, Any], *, model_checked: bool) -> None:
        await super()._finish(cleaned, model_checked=model_checked)
        if self.db is not None:
            await self._check_unique(cleaned)  # the fields that are valid, whatever the rest

    async def _check_unique(self, cleaned: dict[str, Any]) -> None:
        cls = type(self)
        model = cls.Meta.model
        mapper: Mapper[Any] = inspect(model)
        unique: set[str] = set()
        for name, info in cls._columns.items():
            if info.column.unique or any(
                len(c.columns) == 1 and any(col is info.column for col in c.columns)
                for c in info.column.table.constraints
                if isinstance(c, UniqueConstraint)
            ):
                unique.add(name)
        instance = self.instance
        identity = inspect(instance).identity if instance is not None else None
        for name in unique:
            value = cleaned.get(name)
            if value is None or name in self._field_errors:
                continue
            column = getattr(model, cls._columns[name].key)
            condition = column == value
            if identity is not None:
                others = or_(
                    *(
                        getattr(model, mapper.get_property_by_column(pk).key) != key
                        for pk, key in zip(mapper.primary_key, identity, strict=True)
                    )
                )
                condition = and_(condition, others)
            taken = await self.db.scalar(select(exists().where(condition)))
            if taken:
                self._add(
                    name,
                    (),
                    _(
                        "%(model)s with this %(field)s already exists.",
                        model=humanize(model.__name__),
                        field=self[name].label_text,
                    ),
                    "unique",
                )
                cleaned.pop(name, None)

    async def save(self, db: Any = None, instance: Any = None) -> Any:
        """Create the row (or update ``instance`` / the form's instance) and flush it.

        Column fields are set from ``form.data``; many-to-many fields replace the related
        rows. The request's session commits when the handler returns.

        Args:
            db: The session; defaults to the form's ``db``.
            instance: The row to update; defaults to the form's ``instance``; a new row
                when neither is given.

        Returns:
            The saved row (with its primary key, after the flush).

        Raises:
            RuntimeError: the form is not valid.
        """
        db = db if db is not None else self.db
        if db is None:
            raise ConfigurationError(f"{type(self).__name__}.save() needs the session: save(db)")
        if not self.is_valid:
            raise RuntimeError(
                f"{type(self).__name__}.save(): the form is not valid ({self.errors}); check"
                " form.is_valid first"
            )
        cls = type(self)
        target = instance if instance is not None else self.instance
        creating = target is None
        if target is None:
            target = cls.Meta.model()
        data = self.data
        for name, info in cls._columns.items():
            if name not in data:
                continue
            value = data[name]
            if value is None and not info.column.nullable:
                # Left blank, a column that cannot be NULL gets its default: the database's
                # for a new row; for an edited one its scalar default, else it keeps its value.
                default = info.column.default
                if creating or default is None or not getattr(default, "is_scalar", False):
                    continue
                value = default.arg  # type: ignore[attr-defined]
            setattr(target, info.key, value)
        state = inspect(target)
        for name, rel in cls._relations.items():
            if name not in data:
                continue
            ids = list(data[name] or [])
            rows: list[Any] = []
            if ids:
                pk = getattr(rel.related, rel.pk)
                found = {
                    getattr(r, rel.pk): r
                    for r in (await db.scalars(select(rel.related).where(pk.in_(ids)))).all()
                }
                rows = [found[i] for i in ids if i in found]
            if not creating and rel.key in state.unloaded and state.session is not None:
                await db.refresh(target, [rel.key])  # the old rows, to know what to unlink
            setattr(target, rel.key, rows)
        if creating:
            db.add(target)
        await db.flush()
        self.instance = target
        return target
