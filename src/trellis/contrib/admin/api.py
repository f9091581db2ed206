"""The admin as a JSON API: five endpoints per registered model, in the OpenAPI document.

Under ``admin.api_prefix`` (``/admin/api``), route names ``admin_api.*``:

| Endpoint | Name | Permission | Answers |
|---|---|---|---|
| ``GET /{slug}`` | ``{slug}_list`` | view | a ``Page``: ``?limit=&offset=&q=&sort=``, filters |
| ``POST /{slug}`` | ``{slug}_create`` | add | 201 and the object |
| ``GET /{slug}/{pk}`` | ``{slug}_get`` | view | the object |
| ``PATCH /{slug}/{pk}`` | ``{slug}_update`` | change | the object (only the fields sent change) |
| ``DELETE /{slug}/{pk}`` | ``{slug}_delete`` | delete | 204 |

Schemas come from the model (``trellis.contrib.db.model_schema``), named ``BookAdminRead``,
``BookAdminCreate`` and ``BookAdminUpdate``, with the ``ModelAdmin``'s ``fields``,
``exclude`` and ``readonly_fields`` applied and secret-looking columns left out;
many-to-many relationships are lists of primary keys. The same users as the pages may call
them, with the same checks: the session cookie (unsafe methods send ``X-CSRF-Token``), a
bearer token or an API key. Writes are logged like the pages' in the same transaction.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, create_model
from sqlalchemy import select

from trellis.contrib.admin import _log, _query
from trellis.contrib.admin.pages import AdminUser, _load
from trellis.contrib.auth.permissions import forbidden
from trellis.contrib.db.dependencies import Session
from trellis.contrib.db.filters import Filters
from trellis.contrib.db.pagination import Page, PageParams, page_params, paginate
from trellis.contrib.db.schemas import apply, model_schema, python_type
from trellis.exceptions import RequestValidationError
from trellis.handlers.params import Depends, Query
from trellis.http.request import Request

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from trellis.contrib.admin.options import ModelAdmin
    from trellis.contrib.admin.plugin import Admin

__all__ = ["add_model_api", "schemas_for"]

_NOT_FOUND = {404: {"description": "No such object"}}
_FORBIDDEN = {403: {"description": "Not allowed for this user"}}
_CONFLICT = {409: {"description": "A constraint refused the change (unique, foreign key)"}}


class Schemas:
    """The pydantic models of one registered model's endpoints."""

    def __init__(self, ma: ModelAdmin) -> None:
        name = ma.model.__name__
        self.many = [
            rel_name
            for rel_name, rel in ma.relationships.items()
            if rel.direction.name == "MANYTOMANY"
            and rel_name not in ma.exclude
            and (ma.fields is None or rel_name in ma.fields)
        ]
        visible = set(ma.visible_columns())
        hidden = [column for column in ma.columns if column not in visible]
        read = model_schema(ma.model, "read", exclude=hidden, name=f"{name}AdminBaseRead")
        writable = [n for n in ma.editable_fields() if n in ma.columns]
        not_writable = [c for c in ma.columns if c not in writable]
        create = model_schema(
            ma.model, "create", exclude=not_writable, name=f"{name}AdminBaseCreate"
        )
        update = model_schema(
            ma.model, "update", exclude=not_writable, name=f"{name}AdminBaseUpdate"
        )
        related: dict[str, Any] = {
            rel_name: list[self._related_pk_type(ma, rel_name)]  # type: ignore[misc]
            for rel_name in self.many
        }
        described = Field(description="Primary keys of the related objects.")
        read_extra: dict[str, Any] = {n: (t, described) for n, t in related.items()}
        create_extra: dict[str, Any] = {
            n: (t, Field(default_factory=list)) for n, t in related.items()
        }
        update_extra: dict[str, Any] = {n: (t | None, Field(None)) for n, t in related.items()}
        self.read: type[BaseModel] = create_model(
            f"{name}AdminRead",
            __base__=read,
            __doc__=f"{name} as the admin API shows it.",
            **read_extra,
        )
        self.create: type[BaseModel] = create_model(
            f"{name}AdminCreate",
            __base__=create,
            __doc__=f"A new {name}.",
            **create_extra,
        )
        self.update: type[BaseModel] = create_model(
            f"{name}AdminUpdate",
            __base__=update,
            __doc__=f"The fields of a {name} to change; those left out keep their value.",
            **update_extra,
        )
        self.page: Any = Page[self.read]  # type: ignore[name-defined]

    @staticmethod
    def _related_pk_type(ma: ModelAdmin, rel_name: str) -> Any:
        mapper = ma.relationships[rel_name].mapper
        column = mapper.primary_key[0]
        return python_type(column.type)

    def dump(self, ma: ModelAdmin, obj: Any) -> BaseModel:
        """``obj`` as the read schema (many-to-many relationships as primary keys)."""
        values = {name: getattr(obj, name) for name in self.read.model_fields if name in ma.columns}
        for name in self.many:
            items = obj.__dict__.get(name) or []
            values[name] = [_pk_of(item) for item in items]
        return self.read.model_validate(values)


def _pk_of(obj: Any) -> Any:
    from sqlalchemy import inspect as sa_inspect

    identity = sa_inspect(obj).identity
    return identity[0] if identity else None


def schemas_for(ma: ModelAdmin) -> Schemas:
    """The ``Schemas`` of ``ma`` (made once)."""
    found: Schemas | None = ma.__dict__.get("_schemas")
    if found is None:
        found = ma.__dict__["_schemas"] = Schemas(ma)
    return found


async def _set_many(
    db: AsyncSession, ma: ModelAdmin, obj: Any, values: dict[str, list[Any] | None]
) -> None:
    for name, keys in values.items():
        if keys is None:
            continue
        rel = ma.relationships[name]
        target = rel.mapper.class_
        pk = getattr(target, str(rel.mapper.primary_key[0].key))
        wanted = list(dict.fromkeys(keys))
        found = (
            list((await db.scalars(select(target).where(pk.in_(wanted)))).all()) if wanted else []
        )
        if len(found) != len(wanted):
            missing = sorted(set(wanted) - {_pk_of(item) for item in found}, key=str)
            raise RequestValidationError(
                [
                    {
                        "loc": ["body", name],
                        "msg": f"no {target.__name__} with the primary key(s) {missing}",
                        "type": "related_missing",
                    }
                ]
            )
        by_key = {_pk_of(item): item for item in found}
        setattr(obj, name, [by_key[key] for key in wanted])


def add_model_api(admin: Admin, ma: ModelAdmin) -> None:
    """Add the list, create, get, update and delete endpoints of ``ma``."""
    router = admin.api
    slug = ma.url_slug
    schemas = schemas_for(ma)
    fs = _query.filterset(ma)
    label = ma.verbose_name.lower()
    plural = ma.verbose_name_plural.lower()
    tags = [f"admin: {ma.verbose_name_plural}"]
    pk_type = python_type(ma.columns[ma.pk_name].type)
    pk_path = "{pk:int}" if pk_type is int else "{pk}"
    pages = page_params(default_limit=ma.list_per_page, max_limit=ma.list_max_per_page)
    # The parameters every endpoint has (annotations set by hand: they name local values).
    types: dict[str, Any] = {"request": Request, "db": Session, "user": AdminUser}

    async def list_objects(
        request: Request,
        db: Session,
        user: AdminUser,
        page: PageParams,
        filters: Filters,
        q: str | None = None,
    ) -> Any:
        if not await ma.has_view_permission(request):
            raise forbidden()
        statement = _query.search(ma, ma.get_queryset(request), q)
        statement = filters.apply(statement).options(*_query.all_relationship_options(ma))
        found = await paginate(db, statement, limit=page.limit, offset=page.offset)
        items = [schemas.dump(ma, obj) for obj in found.items]
        return schemas.page(items=items, total=found.total, limit=found.limit, offset=found.offset)

    list_annotations: dict[str, Any] = {
        **types,
        "page": Annotated[PageParams, Depends(pages)],
        "filters": Annotated[Filters, Depends(fs)],
        "return": schemas.page,
    }
    parameters = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name in ("request", "db", "user", "page", "filters")
    ]
    if ma.search_fields:
        list_annotations["q"] = Annotated[
            str | None,
            Query(
                max_length=200,
                description="Words to look for in " + ", ".join(ma.search_fields) + ".",
            ),
        ]
        parameters.append(
            inspect.Parameter("q", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
        )
    list_objects.__annotations__ = list_annotations
    list_objects.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    list_objects.__doc__ = f"The {plural}, a page at a time: search, filter and sort."

    async def create_object(request: Request, data: Any, db: Session, user: AdminUser) -> Any:
        if not await ma.has_add_permission(request):
            raise forbidden()
        obj = ma.model()
        sent = await _save(request, db, ma, obj, data, created=True)
        _log.log(db, request, ma, [(obj, ma.object_repr(obj))], "add", changed=sent)
        return schemas.dump(ma, obj)

    create_object.__annotations__ = {**types, "data": schemas.create, "return": schemas.read}
    create_object.__doc__ = f"Add a {label}."

    async def get_object(request: Request, pk: Any, db: Session, user: AdminUser) -> Any:
        obj = await _load(request, db, ma, pk)
        if not await ma.has_view_permission(request, obj):
            raise forbidden()
        return schemas.dump(ma, obj)

    get_object.__annotations__ = {**types, "pk": pk_type, "return": schemas.read}
    get_object.__doc__ = f"One {label}."

    async def update_object(
        request: Request, pk: Any, data: Any, db: Session, user: AdminUser
    ) -> Any:
        obj = await _load(request, db, ma, pk)
        if not await ma.has_change_permission(request, obj):
            raise forbidden()
        before = _log.snapshot(ma, obj)
        await _save(request, db, ma, obj, data, created=False)
        changed = _log.changed_fields(before, _log.snapshot(ma, obj))
        if changed:
            _log.log(db, request, ma, [(obj, ma.object_repr(obj))], "change", changed=changed)
        return schemas.dump(ma, obj)

    update_object.__annotations__ = {
        **types,
        "pk": pk_type,
        "data": schemas.update,
        "return": schemas.read,
    }
    update_object.__doc__ = f"Change a {label}: only the fields sent change."

    async def delete_object(request: Request, pk: Any, db: Session, user: AdminUser) -> None:
        obj = await _load(request, db, ma, pk)
        if not await ma.has_delete_permission(request, obj):
            raise forbidden()
        text = ma.object_repr(obj)
        await ma.delete_model(request, db, obj)
        _log.log(db, request, ma, [(obj, text)], "delete")

    delete_object.__annotations__ = {**types, "pk": pk_type, "return": None}
    delete_object.__doc__ = f"Delete a {label}."

    common: dict[str, Any] = {"include_in_schema": True, "tags": tags}
    router.add_route(
        f"/{slug}",
        list_objects,
        ["GET"],
        name=f"{slug}_list",
        summary=f"List {plural}",
        responses=_FORBIDDEN,
        **common,
    )
    router.add_route(
        f"/{slug}",
        create_object,
        ["POST"],
        name=f"{slug}_create",
        status_code=201,
        summary=f"Add a {label}",
        responses={**_FORBIDDEN, **_CONFLICT},
        **common,
    )
    router.add_route(
        f"/{slug}/{pk_path}",
        get_object,
        ["GET"],
        name=f"{slug}_get",
        summary=f"Get a {label}",
        responses={**_FORBIDDEN, **_NOT_FOUND},
        **common,
    )
    router.add_route(
        f"/{slug}/{pk_path}",
        update_object,
        ["PATCH"],
        name=f"{slug}_update",
        summary=f"Change a {label}",
        responses={**_FORBIDDEN, **_NOT_FOUND, **_CONFLICT},
        **common,
    )
    router.add_route(
        f"/{slug}/{pk_path}",
        delete_object,
        ["DELETE"],
        name=f"{slug}_delete",
        status_code=204,
        summary=f"Delete a {label}",
        responses={**_FORBIDDEN, **_NOT_FOUND, **_CONFLICT},
        **common,
    )


async def _save(
    request: Request, db: AsyncSession, ma: ModelAdmin, obj: Any, data: BaseModel, *, created: bool
) -> list[str]:
    """Set on ``obj`` the fields ``data`` sent, save it and read it back; the names sent."""
    values = data.model_dump(exclude_unset=True)
    many = {name: values.pop(name) for name in schemas_for(ma).many if name in values}
    apply(obj, values)
    await _set_many(db, ma, obj, many)
    await ma.save_model(request, db, obj, created=created)
    await _refresh(db, ma, obj)
    return [*values, *many]


async def _refresh(db: AsyncSession, ma: ModelAdmin, obj: Any) -> None:
    """Read back the columns the database filled in (server defaults, computed columns)."""
    names = [
        name
        for name, column in ma.columns.items()
        if getattr(column, "server_default", None) is not None
        or getattr(column, "computed", None) is not None
        or getattr(column, "server_onupdate", None) is not None
    ]
    if names:
        await db.refresh(obj, attribute_names=names)
