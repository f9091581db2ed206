"""How one model appears in the admin: ``ModelAdmin`` and the ``@action`` decorator.

```py
from trellis.contrib.admin import ModelAdmin, action


class BookAdmin(ModelAdmin):
    list_display = ("title", "author", "published", "price")
    search_fields = ("title", "isbn")
    list_filter = ("published", "author_id")
    ordering = ("-published_on", "title")
    readonly_fields = ("created_at",)

    @action(label="Mark as published", permission="change")
    async def publish(self, request, db, books):
        for book in books:
            book.published = True
        return f"{len(books)} books published."


admin.register(Book, BookAdmin)
```

Permissions are Django's, one codename per model and operation: ``<table>.view``,
``<table>.add``, ``<table>.change`` and ``<table>.delete`` (``book.change``). Registering a
model declares them to the auth battery, so ``trellis user grant ann book.change`` knows them.
``change`` includes ``view``. Superusers may do everything. Override ``has_*_permission``
to decide otherwise (per object too: ``obj`` is given on detail, edit and delete pages, and
for every object of a bulk action).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from sqlalchemy import Select, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, RelationshipProperty

from trellis.i18n import gettext

if TYPE_CHECKING:
    from trellis.contrib.admin.plugin import Admin
    from trellis.http.request import Request

__all__ = ["OPERATIONS", "SECRET_FIELD", "ActionInfo", "ModelAdmin", "action"]

#: The four permissions of every registered model, as ``<table>.<operation>``.
OPERATIONS = ("view", "add", "change", "delete")
#: Column names taken for secrets: never shown, never in forms or the API unless a
#: ``ModelAdmin`` lists them in ``fields``.
SECRET_FIELD = re.compile(r"password|secret|token|api_?key|(^|_)hash($|_)|salt", re.IGNORECASE)

ActionFunction = Callable[..., Awaitable[str | None]]
F = TypeVar("F", bound=ActionFunction)


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """What ``@action`` says about a bulk action.

    Attributes:
        name: The method's name (what the form posts, what the log records).
        label: What the action menu shows.
        permission: ``"view"``, ``"add"``, ``"change"`` or ``"delete"`` (checked on each
            selected object), or a full codename (``"books.publish"``).
        confirm: Show a confirmation page listing the objects before running.
    """

    name: str
    label: str
    permission: str
    confirm: bool


@overload
def action(function: F, /) -> F: ...


@overload
def action(
    *, label: str | None = None, permission: str = "change", confirm: bool = False
) -> Callable[[F], F]: ...


def action(
    function: F | None = None,
    /,
    *,
    label: str | None = None,
    permission: str = "change",
    confirm: bool = False,
) -> Any:
    """Mark a ``ModelAdmin`` method as a bulk action of the list page.

    The method is ``async def name(self, request, db, objects) -> str | None``: it gets the
    selected objects (each one the user has ``permission`` on) and the request's database
    session, and returns a message for the page (or ``None`` for a default one). What it
    changes is committed with the request, together with one log entry per object; if it
    raises, nothing is kept.

    Args:
        function: The method (when used as ``@action`` without arguments).
        label: The text of the menu (default: the name, humanised).
        permission: The operation needed (``"change"`` by default) or a full codename.
        confirm: Ask for confirmation on a page listing the objects first.
    """

    def decorate(fn: F) -> F:
        name = fn.__name__
        info = ActionInfo(
            name=name,
            label=label or name.replace("_", " ").capitalize(),
            permission=permission,
            confirm=confirm,
        )
        fn.admin_action = info  # type: ignore[attr-defined]
        return fn

    if function is not None:
        return decorate(function)
    return decorate


def humanize(name: str) -> str:
    """``published_on`` -> ``Published on``; ``BlogPost`` -> ``Blog post``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower() if words else name


class ModelAdmin:
    """The admin of one model: its pages, its API and who may use them.

    Subclass it and set the options; ``admin.register(Model, YourAdmin)`` makes one
    instance. Every option has a default that works for any model.

    Attributes:
        list_display: What the list shows per row: column names, relationship names
            (many-to-one: the related object; many-to-many: the list), names of methods of
            this class taking ``(obj)``, or callables ``fn(obj)``. Default: up to six columns.
        search_fields: Text columns the search box looks in (every word must match one of
            them, case-insensitively). Empty: no search box.
        list_filter: Columns to filter on (booleans, foreign keys, enums, or any column, by
            its distinct values): a side panel of links, ``?field=value`` in the URL.
        ordering: The default sort, as names with a leading ``-`` for descending
            (default: the primary key, newest first).
        sortable_by: The columns whose header sorts the list (default: the columns of
            ``list_display``).
        list_per_page: Rows per page of the list (and the API's default page size).
        list_max_per_page: The largest page the API gives.
        readonly_fields: Shown on the edit page, never written (by the form or the API).
        fields: The columns of the forms and the API, in order (default: every column but
            the primary key, secret-looking ones and what the database fills in).
        exclude: Columns left out of the forms, the detail page and the API.
        actions: The bulk actions offered, by name; ``None`` (default): ``delete_selected``
            and every ``@action`` method of the class; ``()``: none.
        label: The model's name in the pages (default: the class name, humanised).
        label_plural: Its plural (default: ``label`` + "s").
        slug: Its part of the URLs (default: the table name).
        api: Give the model JSON endpoints under the admin's ``api_prefix``.
        model: The model (set by ``register``).
        admin: The ``Admin`` it belongs to (set by ``register``).
    """

    list_display: ClassVar[Sequence[str | Callable[[Any], Any]]] = ()
    search_fields: ClassVar[Sequence[str]] = ()
    list_filter: ClassVar[Sequence[str]] = ()
    ordering: ClassVar[Sequence[str]] = ()
    sortable_by: ClassVar[Sequence[str] | None] = None
    list_per_page: ClassVar[int] = 25
    list_max_per_page: ClassVar[int] = 100
    readonly_fields: ClassVar[Sequence[str]] = ()
    fields: ClassVar[Sequence[str] | None] = None
    exclude: ClassVar[Sequence[str]] = ()
    actions: ClassVar[Sequence[str] | None] = None
    label: ClassVar[str | None] = None
    label_plural: ClassVar[str | None] = None
    slug: ClassVar[str | None] = None
    api: ClassVar[bool] = True

    def __init__(self, model: type[Any], admin: Admin) -> None:
        self.model = model
        self.admin = admin
        mapper = sa_inspect(model, raiseerr=False)
        if not isinstance(mapper, Mapper):
            from trellis.exceptions import ConfigurationError

            raise ConfigurationError(f"admin.register({model!r}): not a mapped model class")
        self.mapper: Mapper[Any] = mapper
        self.table_name: str = mapper.local_table.name  # type: ignore[attr-defined]
        self.columns: dict[str, Any] = {
            prop.key: prop.columns[0]
            for prop in mapper.column_attrs
            if not prop.key.startswith("_")
        }
        self.relationships: dict[str, RelationshipProperty[Any]] = {
            rel.key: rel for rel in mapper.relationships if not rel.key.startswith("_")
        }
        #: The model's part of the URLs (``slug``, or the table name).
        self.url_slug: str = self.slug or self.table_name

    # -- names -----------------------------------------------------------------------------

    @property
    def verbose_name(self) -> str:
        """The model's name as the pages show it (``label`` or the humanised class name)."""
        return gettext(self.label) if self.label else humanize(self.model.__name__)

    @property
    def verbose_name_plural(self) -> str:
        """The plural name (``label_plural`` or ``verbose_name`` + "s")."""
        if self.label_plural:
            return gettext(self.label_plural)
        return self.verbose_name + "s"

    def codename(self, operation: str) -> str:
        """The permission codename of ``operation`` on this model: ``"book.change"``.

        A name with a dot in it is already a codename and is returned as it is.
        """
        return operation if "." in operation else f"{self.table_name}.{operation}"

    @property
    def codenames(self) -> tuple[str, ...]:
        """The model's four codenames (view, add, change, delete)."""
        return tuple(self.codename(op) for op in OPERATIONS)

    # -- permissions ----------------------------------------------------------------------------

    async def has_permission(self, request: Request, operation: str, obj: Any = None) -> bool:
        """Whether the request's user may ``operation`` (on ``obj`` when given).

        A superuser may; so may a user with the codename (directly or through a group), or one
        an object rule of the auth battery allows on ``obj``. A token limited to scopes may
        only what they list.
        """
        user = getattr(request.state, "user", None)
        if user is None or not user.is_active:
            return False
        codename = self.codename(operation)
        scopes = getattr(request.state, "auth_scopes", None)
        if scopes is not None and codename not in scopes:
            return False
        auth = self.admin.auth
        return await auth.has_perm(user, codename, obj)

    async def has_view_permission(self, request: Request, obj: Any = None) -> bool:
        """May the user see the list and the objects? (``view`` or ``change``)."""
        return await self.has_permission(request, "view", obj) or await self.has_permission(
            request, "change", obj
        )

    async def has_add_permission(self, request: Request) -> bool:
        """May the user add objects? (``add``)."""
        return await self.has_permission(request, "add")

    async def has_change_permission(self, request: Request, obj: Any = None) -> bool:
        """May the user change objects (``obj``, when given)? (``change``)."""
        return await self.has_permission(request, "change", obj)

    async def has_delete_permission(self, request: Request, obj: Any = None) -> bool:
        """May the user delete objects (``obj``, when given)? (``delete``)."""
        return await self.has_permission(request, "delete", obj)

    async def has_module_permission(self, request: Request) -> bool:
        """Does the model appear in the admin for this user at all (any of the four)?"""
        return (
            await self.has_view_permission(request)
            or await self.has_add_permission(request)
            or await self.has_delete_permission(request)
        )

    async def check_operation(self, request: Request, operation: str, obj: Any = None) -> bool:
        """``has_<operation>_permission`` by name (custom codenames: ``has_permission``)."""
        if operation == "view":
            return await self.has_view_permission(request, obj)
        if operation == "add":
            return await self.has_add_permission(request)
        if operation == "change":
            return await self.has_change_permission(request, obj)
        if operation == "delete":
            return await self.has_delete_permission(request, obj)
        return await self.has_permission(request, operation, obj)

    # -- queries ------------------------------------------------------------------------------

    def get_queryset(self, request: Request) -> Select[Any]:
        """The statement every page and the API start from (``select(Model)``).

        Override it to hide rows (``.where(Book.deleted_at.is_(None))``) or to load related
        objects with the rows (``.options(selectinload(...))``).
        """
        return select(self.model)

    # -- saving ---------------------------------------------------------------------------------

    async def save_model(
        self, request: Request, db: AsyncSession, obj: Any, *, created: bool
    ) -> None:
        """Save ``obj`` (new when ``created``): adds it to ``db`` and flushes.

        Override it to set fields the form does not have (``obj.editor_id = user.id``).
        """
        if created:
            db.add(obj)
        await db.flush()

    async def delete_model(self, request: Request, db: AsyncSession, obj: Any) -> None:
        """Delete ``obj`` and flush."""
        await db.delete(obj)
        await db.flush()

    # -- display -----------------------------------------------------------------------------------

    def object_repr(self, obj: Any) -> str:
        """How an object is named in pages and the log.

        ``str(obj)`` when the model defines ``__str__``; else its first text column named
        ``name``, ``title``, ``username`` or ``email``; else "Book 3".
        """
        if getattr(type(obj), "__str__", None) is not object.__str__:
            return str(obj)
        for name in ("name", "title", "label", "username", "email", "slug", "code"):
            if name in self.columns:
                value = getattr(obj, name, None)
                if value:
                    return str(value)
        return f"{self.verbose_name} {self.pk_text(obj)}"

    def pk_text(self, obj: Any) -> str:
        """The primary key of ``obj`` as text (what URLs and the log use)."""
        return str(getattr(obj, self.pk_name))

    @property
    def pk_name(self) -> str:
        """The attribute of the primary key."""
        column = self.mapper.primary_key[0]
        for key, candidate in self.columns.items():
            if candidate is column:
                return key
        return str(column.key)  # pragma: no cover - a primary key is a column attribute

    # -- fields -----------------------------------------------------------------------------

    def is_secret(self, name: str) -> bool:
        """Whether ``name`` looks like a secret (``password_hash``, ``api_token``)."""
        return bool(SECRET_FIELD.search(name)) and name not in (self.fields or ())

    def visible_columns(self) -> list[str]:
        """The columns the detail page and the API show: not excluded, not secret."""
        excluded = set(self.exclude)
        return [name for name in self.columns if name not in excluded and not self.is_secret(name)]

    def editable_fields(self) -> list[str]:
        """The fields of the add and edit forms and of the API's bodies, in order.

        ``fields`` when given; else every column but the primary key, secret-looking columns
        and what the database fills in (timestamps, server defaults), then the many-to-many
        relationships. ``exclude`` and ``readonly_fields`` are left out of both.
        """
        from trellis.contrib.db.schemas import _database_fills

        skip = set(self.exclude) | set(self.readonly_fields)
        if self.fields is not None:
            return [name for name in self.fields if name not in skip]
        names: list[str] = []
        for name, column in self.columns.items():
            if name in skip or self.is_secret(name) or column.primary_key:
                continue
            if hasattr(column, "table") and _database_fills(column):
                continue
            names.append(name)
        names.extend(
            name
            for name, rel in self.relationships.items()
            if rel.direction.name == "MANYTOMANY" and name not in skip
        )
        return names

    def detail_names(self) -> list[str]:
        """What the detail page shows: the visible columns, a foreign key as its object.

        ``author_id`` gives way to the ``author`` relationship (shown as a link) in its place;
        many-to-many relationships come last.
        """
        excluded = set(self.exclude)
        related = {
            rel.key: rel
            for rel in self.relationships.values()
            if rel.direction.name in ("MANYTOONE", "MANYTOMANY") and rel.key not in excluded
        }
        names: list[str] = []
        for name in self.visible_columns():
            column = self.columns[name]
            rel = next(
                (
                    r
                    for r in related.values()
                    if r.direction.name == "MANYTOONE" and column in r.local_columns
                ),
                None,
            )
            names.append(rel.key if rel is not None else name)
        names.extend(key for key in related if key not in names)
        return list(dict.fromkeys(names))

    def display_names(self) -> list[str | Callable[[Any], Any]]:
        """``list_display``, or up to six of the detail page's fields (many-to-one as objects)."""
        if self.list_display:
            return list(self.list_display)
        many = {n for n, r in self.relationships.items() if r.direction.name == "MANYTOMANY"}
        shown: list[str | Callable[[Any], Any]] = [
            name for name in self.detail_names() if name not in many
        ]
        return shown[:6]

    def all_actions(self) -> dict[str, ActionInfo]:
        """Every bulk action the class defines (``delete_selected`` and ``@action`` methods)."""
        found: dict[str, ActionInfo] = {
            "delete_selected": ActionInfo(
                "delete_selected", gettext("Delete selected"), "delete", True
            )
        }
        for klass in reversed(type(self).__mro__):
            for name, member in vars(klass).items():
                info = getattr(member, "admin_action", None)
                if isinstance(info, ActionInfo):
                    found[name] = info
        return found

    def action_infos(self) -> list[ActionInfo]:
        """The bulk actions of the list page, in order (``actions``, or all of them)."""
        found = self.all_actions()
        if self.actions is None:
            return list(found.values())
        return [found[name] for name in self.actions]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self.model.__name__}>"
