"""The models' pages (five per model), and what every admin page shares.

Under ``admin.prefix`` (``/admin``), route names ``admin.*`` (the dashboard, the log and the
tickets are ``trellis.contrib.admin.site``'s):

| Route | Name | What |
|---|---|---|
| ``GET /{slug}`` | ``admin.{slug}_list`` | the list: search, filters, sort, pages |
| ``POST /{slug}`` | ``admin.{slug}_action`` | a bulk action on the selected rows |
| ``GET/POST /{slug}/add`` | ``admin.{slug}_add`` | the form for a new object |
| ``GET /{slug}/{pk}`` | ``admin.{slug}_detail`` | one object, its history |
| ``GET/POST /{slug}/{pk}/edit`` | ``admin.{slug}_edit`` | its form |
| ``GET/POST /{slug}/{pk}/delete`` | ``admin.{slug}_delete`` | the confirmation, then the deletion |

Anonymous browsers go to the auth battery's login page (and come back after); signed-in users
who are neither superusers nor hold any admin permission get 403; every page and action also
checks the model's permission (``has_*_permission``). Forms carry the CSRF token; pages are
``Cache-Control: no-store``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from trellis.contrib.admin import _log, _query
from trellis.contrib.admin._display import column_label, format_value, raw_value
from trellis.contrib.admin.models import AdminLogEntry
from trellis.contrib.admin.options import ActionInfo, ModelAdmin, humanize
from trellis.contrib.admin.plugin import (
    TICKETS_PERMISSION,
)
from trellis.contrib.auth.dependencies import login_required, optional_user
from trellis.contrib.auth.models import User
from trellis.contrib.auth.permissions import forbidden
from trellis.contrib.db.database import conflict_detail
from trellis.contrib.db.dependencies import Session
from trellis.contrib.db.pagination import paginate
from trellis.contrib.db.schemas import python_type
from trellis.exceptions import NotFoundError, URLBuildError
from trellis.handlers.params import Depends
from trellis.http.connection import HTTPConnection
from trellis.http.request import Request
from trellis.http.response import RedirectResponse, Response
from trellis.i18n import gettext, ngettext
from trellis.sessions import flash

if TYPE_CHECKING:
    from trellis.contrib.admin.plugin import Admin

__all__ = ["AdminUser", "add_model_pages", "admin_user"]

#: Admin pages show private data and carry CSRF tokens: never cached.
NO_STORE = {"Cache-Control": "no-store"}


async def admin_user(
    conn: HTTPConnection,
    db: Session,
    user: Annotated[User | None, Depends(optional_user)],
) -> User:
    """The signed-in user, if they may enter the admin.

    Raises:
        LoginRequiredError: nobody is signed in (browsers go to the login page).
        ForbiddenError: neither a superuser nor a holder of any admin permission (403).
    """
    admin: Admin = conn.app.state.admin
    if user is None:
        raise login_required(conn)
    if not await admin.is_staff(db, user, conn):
        raise forbidden()
    return user


#: The user of an admin page or endpoint: ``user: AdminUser``.
AdminUser = Annotated[User, Depends(admin_user)]


# -- shared -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NavItem:
    """A model in the side menu."""

    label: str
    url: str
    slug: str


async def _nav(request: Request, admin: Admin) -> list[NavItem]:
    items: list[NavItem] = []
    for ma in admin.registry.values():
        if await ma.has_module_permission(request):
            url = request.url_for(f"admin.{ma.url_slug}_list")
            items.append(NavItem(ma.verbose_name_plural, url, ma.url_slug))
    return items


async def _may(request: Request, user: User, codename: str) -> bool:
    scopes = getattr(request.state, "auth_scopes", None)
    if scopes is not None and codename not in scopes:
        return False
    admin: Admin = request.app.state.admin
    return await admin.auth.has_perm(user, codename)


async def _render(
    request: Request,
    template: str,
    *,
    title: str,
    status: int = 200,
    current: str | None = None,
    **context: Any,
) -> Response:
    from trellis.templating import render

    admin: Admin = request.app.state.admin
    user = request.state.user
    tickets = getattr(request.app.state, "tickets", None)
    try:
        logout_url: str | None = request.url_for("auth.logout")
    except URLBuildError:  # Auth(pages=False): the project signs people out its own way
        logout_url = None
    return render(
        f"admin/{template}",
        request=request,
        status_code=status,
        headers=NO_STORE,
        admin=admin,
        site_title=admin.title,
        title=title,
        user=user,
        nav=await _nav(request, admin),
        current=current,
        logout_url=logout_url,
        show_tickets=tickets is not None and await _may(request, user, TICKETS_PERMISSION),
        **context,
    )


def _page_number(request: Request) -> int:
    raw = request.query.get("page", "1")
    try:
        return max(1, min(int(raw), 1_000_000))
    except ValueError:
        return 1


@dataclass(frozen=True, slots=True)
class Pager:
    """Where a list is: page ``number`` of ``pages``, and the links around it."""

    number: int
    pages: int
    total: int
    first_row: int
    last_row: int
    links: list[tuple[int | None, str]]  # (page number or None for a gap, URL)

    @property
    def previous(self) -> str | None:
        """The link to the previous page."""
        return self._link(self.number - 1)

    @property
    def next(self) -> str | None:
        """The link to the next page."""
        return self._link(self.number + 1)

    def _link(self, number: int) -> str | None:
        for page, url in self.links:
            if page == number:
                return url
        return None


def _pager(base: str, query: dict[str, str], number: int, per_page: int, total: int) -> Pager:
    pages = max(1, math.ceil(total / per_page))
    wanted = sorted({1, pages, *range(max(1, number - 2), min(pages, number + 2) + 1)})
    links: list[tuple[int | None, str]] = []
    last = 0
    for page in wanted:
        if page - last > 1:
            links.append((None, ""))
        links.append((page, _with_query(base, {**query, "page": str(page)})))
        last = page
    first_row = 0 if total == 0 else (number - 1) * per_page + 1
    return Pager(number, pages, total, first_row, min(total, number * per_page), links)


def _with_query(base: str, query: dict[str, str]) -> str:
    items = {
        k: v for k, v in query.items() if v not in ("", None) and not (k == "page" and v == "1")
    }
    return base + ("?" + urlencode(items) if items else "")


def _pk_value(ma: ModelAdmin, raw: str) -> Any:
    column = ma.columns[ma.pk_name]
    try:
        return TypeAdapter(python_type(column.type)).validate_python(raw, strict=False)
    except ValidationError:
        return None


async def _load(request: Request, db: AsyncSession, ma: ModelAdmin, pk: Any) -> Any:
    value = _pk_value(ma, str(pk))
    if value is None:
        raise NotFoundError(f"{ma.verbose_name} {pk} not found")
    statement = (
        ma.get_queryset(request)
        .where(getattr(ma.model, ma.pk_name) == value)
        .options(*_query.all_relationship_options(ma))
    )
    obj = (await db.scalars(statement)).first()
    if obj is None:
        raise NotFoundError(f"{ma.verbose_name} {pk} not found")
    return obj


@dataclass(frozen=True, slots=True)
class LogRow:
    """An action log entry as the pages show it."""

    entry: AdminLogEntry
    model: str  # the model's name (its table's when it is not registered any more)
    action: str  # "Added", "Changed", "Deleted" or the bulk action's label
    url: str | None  # the object's page, unless it was deleted


def _log_rows(request: Request, admin: Admin, entries: Sequence[AdminLogEntry]) -> list[LogRow]:
    by_table = {ma.table_name: ma for ma in admin.registry.values()}
    words = {"add": gettext("Added"), "change": gettext("Changed"), "delete": gettext("Deleted")}
    rows = []
    for entry in entries:
        ma = by_table.get(entry.model)
        action = words.get(entry.action, entry.action)
        if entry.action == "action" and entry.action_name:
            info = ma.all_actions().get(entry.action_name) if ma is not None else None
            action = info.label if info is not None else entry.action_name
        url = None
        if (
            ma is not None
            and entry.action != "delete"
            and _pk_value(ma, entry.object_pk) is not None
        ):
            url = request.url_for(f"admin.{ma.url_slug}_detail", pk=_pk_value(ma, entry.object_pk))
        rows.append(LogRow(entry, ma.verbose_name if ma is not None else entry.model, action, url))
    return rows


# -- a model's pages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the list: its header, and the sort links when it sorts."""

    label: str
    sort_url: str | None
    sorted: str | None  # "asc", "desc" or None


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the list."""

    pk: str
    url: str
    cells: list[Any]


@dataclass(frozen=True, slots=True)
class FieldView:
    """One field of the detail page."""

    name: str
    label: str
    value: Any


def add_model_pages(admin: Admin, ma: ModelAdmin) -> None:
    """Add the list, detail, add, edit, delete and bulk action pages of ``ma``."""
    router = admin.pages
    slug = ma.url_slug
    pk_column = ma.columns[ma.pk_name]
    pk_path = "{pk:int}" if python_type(pk_column.type) is int else "{pk}"
    names = {
        "list": f"admin.{slug}_list",
        "add": f"admin.{slug}_add",
        "detail": f"admin.{slug}_detail",
        "edit": f"admin.{slug}_edit",
        "delete": f"admin.{slug}_delete",
        "action": f"admin.{slug}_action",
    }

    def urls(request: Request) -> dict[str, Any]:
        return {
            "list": request.url_for(names["list"]),
            "add": request.url_for(names["add"]),
            "action": request.url_for(names["action"]),
            "detail": lambda pk: request.url_for(names["detail"], pk=pk),
            "edit": lambda pk: request.url_for(names["edit"], pk=pk),
            "delete": lambda pk: request.url_for(names["delete"], pk=pk),
        }

    async def require(request: Request, allowed: bool) -> None:
        if not allowed:
            raise forbidden()

    # -- list -------------------------------------------------------------------------------

    async def list_page(request: Request, db: Session, user: AdminUser) -> Response:
        await require(request, await ma.has_view_permission(request))
        query = request.query
        q = (query.get("q") or "").strip()[:200]
        sort = query.get("sort") or None
        filters, applied = _query.page_filters(ma, query, sort)
        statement = _query.search(ma, ma.get_queryset(request), q)
        display = ma.display_names()
        statement = filters.apply(statement).options(*_query.relationship_options(ma, display))
        number = _page_number(request)
        per_page = ma.list_per_page
        page = await paginate(db, statement, limit=per_page, offset=(number - 1) * per_page)
        total = page.total if page.total is not None else (number - 1) * per_page + len(page.items)
        base = request.url_for(names["list"])
        state = {"q": q, **applied, "sort": ",".join(filters.sort) if sort else ""}
        sortable = set(_query.sortable_fields(ma))
        current_sort = {item.removeprefix("-"): item for item in filters.sort}
        columns = []
        for item in display:
            sort_url = None
            direction = None
            if isinstance(item, str) and item in sortable:
                now = current_sort.get(item)
                direction = None if now is None else "desc" if now.startswith("-") else "asc"
                flipped = item if direction == "desc" else "-" + item
                if direction is None:
                    flipped = item
                sort_url = _with_query(base, {**state, "sort": flipped, "page": "1"})
            columns.append(Column(column_label(ma, item), sort_url, direction))
        rows = []
        for obj in page.items:
            pk = ma.pk_text(obj)
            cells = [
                format_value(request, ma, raw_value(ma, obj, item), links=index > 0)
                for index, item in enumerate(display)
            ]
            rows.append(Row(pk, request.url_for(names["detail"], pk=pk), cells))
        actions = [
            info for info in ma.action_infos() if await ma.check_operation(request, info.permission)
        ]
        filter_groups = []
        for group in await _query.filter_choices(ma, db):
            chosen = applied.get(group.name)
            links = [
                (
                    gettext("All"),
                    _with_query(base, {**state, group.name: "", "page": "1"}),
                    chosen is None,
                )
            ]
            links.extend(
                (
                    choice.label,
                    _with_query(base, {**state, group.name: choice.value, "page": "1"}),
                    chosen == choice.value,
                )
                for choice in group.choices
            )
            filter_groups.append((group.label, links))
        return await _render(
            request,
            "list.html",
            title=ma.verbose_name_plural,
            current=slug,
            ma=ma,
            urls=urls(request),
            columns=columns,
            rows=rows,
            q=q,
            searchable=bool(ma.search_fields),
            state=state,
            filter_groups=filter_groups,
            actions=actions,
            can_add=await ma.has_add_permission(request),
            pager=_pager(base, state, number, per_page, total),
            list_url=_with_query(base, {**state, "page": str(number)}),
        )

    # -- bulk actions -----------------------------------------------------------------------

    async def action_submit(request: Request, db: Session, user: AdminUser) -> Response:
        form = await request.form()
        name = form.get("action")
        back = _safe_back(request, form.get("next"), request.url_for(names["list"]))
        infos = {info.name: info for info in ma.action_infos()}
        info = infos.get(name) if isinstance(name, str) else None
        if info is None or not await ma.check_operation(request, info.permission):
            flash(request, gettext("Choose an action."), "error")
            return RedirectResponse(back, 303)
        raw_ids = [v for v in form.getlist("selected") if isinstance(v, str)]
        values = [v for v in (_pk_value(ma, raw) for raw in raw_ids[:1000]) if v is not None]
        if not values:
            flash(request, gettext("Select the rows to act on first."), "error")
            return RedirectResponse(back, 303)
        statement = ma.get_queryset(request).where(getattr(ma.model, ma.pk_name).in_(values))
        statement = statement.options(*_query.all_relationship_options(ma))
        objects = list((await db.scalars(statement)).unique().all())
        for obj in objects:
            if not await ma.check_operation(request, info.permission, obj):
                raise forbidden()
        if info.confirm and form.get("confirm") != "yes":
            return await _render(
                request,
                "action_confirm.html",
                title=gettext("Are you sure?"),
                current=slug,
                ma=ma,
                urls=urls(request),
                info=info,
                objects=[(ma.pk_text(o), ma.object_repr(o)) for o in objects],
                next=back,
            )
        try:
            async with db.begin_nested():  # a refused deletion undoes the whole action
                message = await _run_action(request, db, ma, info, objects)
        except IntegrityError as exc:
            flash(
                request,
                gettext(
                    "%(action)s failed: %(reason)s", action=info.label, reason=conflict_detail(exc)
                ),
                "error",
            )
            return RedirectResponse(back, 303)
        flash(request, message, "success")
        return RedirectResponse(back, 303)

    # -- detail ----------------------------------------------------------------------------------

    async def detail_page(request: Request, pk: Any, db: Session, user: AdminUser) -> Response:
        obj = await _load(request, db, ma, pk)
        await require(request, await ma.has_view_permission(request, obj))
        fields = [
            FieldView(name, humanize(name), format_value(request, ma, raw_value(ma, obj, name)))
            for name in ma.detail_names()
        ]
        history = list(
            (
                await db.scalars(
                    select(AdminLogEntry)
                    .where(
                        AdminLogEntry.model == ma.table_name,
                        AdminLogEntry.object_pk == ma.pk_text(obj),
                    )
                    .order_by(AdminLogEntry.created_at.desc(), AdminLogEntry.id.desc())
                    .limit(20)
                )
            ).all()
        )
        return await _render(
            request,
            "detail.html",
            title=ma.object_repr(obj),
            current=slug,
            ma=ma,
            urls=urls(request),
            obj=obj,
            pk=ma.pk_text(obj),
            fields=fields,
            history=_log_rows(request, admin, history),
            can_change=await ma.has_change_permission(request, obj),
            can_delete=await ma.has_delete_permission(request, obj),
        )

    # -- delete ------------------------------------------------------------------------------------

    async def delete_page(request: Request, pk: Any, db: Session, user: AdminUser) -> Response:
        obj = await _load(request, db, ma, pk)
        await require(request, await ma.has_delete_permission(request, obj))
        if request.method == "POST":
            text = ma.object_repr(obj)
            pk_text = ma.pk_text(obj)
            try:
                async with db.begin_nested():
                    await ma.delete_model(request, db, obj)
            except IntegrityError as exc:
                flash(
                    request,
                    gettext(
                        "%(name)s cannot be deleted: %(reason)s",
                        name=text,
                        reason=conflict_detail(exc),
                    ),
                    "error",
                )
                return RedirectResponse(request.url_for(names["detail"], pk=pk_text), 303)
            _log.log(db, request, ma, [(obj, text)], "delete")
            flash(
                request,
                gettext('%(label)s "%(name)s" was deleted.', label=ma.verbose_name, name=text),
                "success",
            )
            return RedirectResponse(request.url_for(names["list"]), 303)
        return await _render(
            request,
            "delete.html",
            title=gettext("Delete %(name)s?", name=ma.object_repr(obj)),
            current=slug,
            ma=ma,
            urls=urls(request),
            obj=obj,
            pk=ma.pk_text(obj),
        )

    # -- add and edit ------------------------------------------------------------------------------

    async def add_page(request: Request, db: Session, user: AdminUser) -> Response:
        await require(request, await ma.has_add_permission(request))
        from trellis.contrib.admin import _forms

        return await _forms.form_page(request, db, ma, None, urls(request))

    async def edit_page(request: Request, pk: Any, db: Session, user: AdminUser) -> Response:
        obj = await _load(request, db, ma, pk)
        await require(request, await ma.has_change_permission(request, obj))
        from trellis.contrib.admin import _forms

        return await _forms.form_page(request, db, ma, obj, urls(request))

    # PERF: the pk's annotation follows its column, so path values are converted once, by the
    # router; the handlers are closures, annotated here rather than in their signatures.
    pk_type = python_type(pk_column.type)
    for fn in (detail_page, delete_page, edit_page):
        fn.__annotations__["pk"] = pk_type if pk_type in (int, str) else str
    router.add_route(f"/{slug}", list_page, ["GET"], name=f"{slug}_list", include_in_schema=False)
    router.add_route(
        f"/{slug}", action_submit, ["POST"], name=f"{slug}_action", include_in_schema=False
    )
    router.add_route(
        f"/{slug}/add", add_page, ["GET", "POST"], name=f"{slug}_add", include_in_schema=False
    )
    router.add_route(
        f"/{slug}/{pk_path}", detail_page, ["GET"], name=f"{slug}_detail", include_in_schema=False
    )
    router.add_route(
        f"/{slug}/{pk_path}/edit",
        edit_page,
        ["GET", "POST"],
        name=f"{slug}_edit",
        include_in_schema=False,
    )
    router.add_route(
        f"/{slug}/{pk_path}/delete",
        delete_page,
        ["GET", "POST"],
        name=f"{slug}_delete",
        include_in_schema=False,
    )


def _safe_back(request: Request, value: Any, default: str) -> str:
    from trellis.contrib.auth.redirects import is_safe_next

    if isinstance(value, str) and value.startswith("/") and is_safe_next(request, value):
        return value
    return default


async def _run_action(
    request: Request,
    db: AsyncSession,
    ma: ModelAdmin,
    info: ActionInfo,
    objects: Sequence[Any],
) -> str:
    """Run a bulk action on ``objects`` and log it; its message for the page."""
    count = len(objects)
    if info.name == "delete_selected":
        described = [(obj, ma.object_repr(obj)) for obj in objects]
        for obj in objects:
            await ma.delete_model(request, db, obj)
        _log.log(db, request, ma, described, "delete", action_name=info.name)
        return ngettext(
            "%(num)d %(label)s deleted.",
            "%(num)d %(label)s deleted.",
            count,
            label=ma.verbose_name if count == 1 else ma.verbose_name_plural,
        )
    before = {id(obj): _log.snapshot(ma, obj) for obj in objects}
    method = getattr(ma, info.name)
    message = await method(request, db, list(objects))
    await db.flush()
    for obj in objects:
        changed = _log.changed_fields(before[id(obj)], _log.snapshot(ma, obj))
        _log.log(
            db,
            request,
            ma,
            [(obj, ma.object_repr(obj))],
            "action",
            changed=changed,
            action_name=info.name,
        )
    if message:
        return str(message)
    return ngettext(
        "%(action)s: done for %(num)d object.",
        "%(action)s: done for %(num)d objects.",
        count,
        action=info.label,
    )
