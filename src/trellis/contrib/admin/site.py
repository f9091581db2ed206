"""The admin's own pages: the dashboard, the action log and the error tickets.

Under ``admin.prefix`` (``/admin``): ``GET /`` (``admin.index``), ``GET /log``
(``admin.log``), ``GET /tickets`` and ``GET /tickets/{id}`` (``admin.tickets``,
``admin.ticket``), and the static files under ``/static`` (``admin.static``). The models'
pages are added by ``trellis.contrib.admin.pages`` as models are registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trellis.contrib.admin._charts import Series, chart, clock, format_number
from trellis.contrib.admin.models import AdminLogEntry
from trellis.contrib.admin.pages import (
    AdminUser,
    _log_rows,
    _may,
    _page_number,
    _pager,
    _render,
    _with_query,
)
from trellis.contrib.admin.plugin import (
    LOG_PERMISSION,
    STATIC_DIRECTORY,
    TEMPLATES_DIRECTORY,
    TICKETS_PERMISSION,
)
from trellis.contrib.auth.models import User
from trellis.contrib.auth.permissions import forbidden
from trellis.contrib.db.dependencies import Session
from trellis.exceptions import NotFoundError
from trellis.http.request import Request
from trellis.http.response import Response
from trellis.i18n import gettext
from trellis.routing.router import Router

if TYPE_CHECKING:
    from trellis.contrib.admin.plugin import Admin

__all__ = ["site_router"]

_LOG_PAGE = 50
_TICKETS_PAGE = 25


def site_router(admin: Admin) -> Router:
    """The dashboard, the log, the tickets and the static files, under ``admin.prefix``."""
    from trellis.static import StaticFiles

    router = Router(admin.prefix, name="admin", templates=TEMPLATES_DIRECTORY)
    router.mount(
        "/static",
        StaticFiles(STATIC_DIRECTORY, cache_control="public, max-age=3600"),
        name="static",
    )

    @router.get("/", name="index", include_in_schema=False)
    async def dashboard(request: Request, db: Session, user: AdminUser) -> Response:
        counts = []
        for ma in admin.registry.values():
            if await ma.has_view_permission(request):
                statement = select(func.count()).select_from(
                    ma.get_queryset(request).order_by(None).subquery()
                )
                count = await db.scalar(statement) or 0
                counts.append((ma, count, request.url_for(f"admin.{ma.url_slug}_list")))
        recent = await _visible_log(request, db, user, limit=10)
        tickets = getattr(request.app.state, "tickets", None)
        latest_tickets: list[Any] = []
        ticket_count = None
        if tickets is not None and await _may(request, user, TICKETS_PERMISSION):
            latest_tickets = list(await tickets.list(limit=5, offset=0))
            ticket_count = await tickets.count()
        return await _render(
            request,
            "dashboard.html",
            title=gettext("Dashboard"),
            current="index",
            counts=counts,
            recent=_log_rows(request, admin, recent),
            latest_tickets=latest_tickets,
            ticket_count=ticket_count,
            metrics=_metrics_context(admin),
        )

    @router.get("/log", name="log", include_in_schema=False)
    async def log_page(request: Request, db: Session, user: AdminUser) -> Response:
        model = request.query.get("model") or None
        number = _page_number(request)
        entries = await _visible_log(
            request, db, user, limit=_LOG_PAGE + 1, offset=(number - 1) * _LOG_PAGE, model=model
        )
        more = len(entries) > _LOG_PAGE
        base = request.url_for("admin.log")
        query = {"model": model or ""}
        return await _render(
            request,
            "log.html",
            title=gettext("Action log"),
            current="log",
            entries=_log_rows(request, admin, entries[:_LOG_PAGE]),
            model=model,
            previous_url=_with_query(base, {**query, "page": str(number - 1)})
            if number > 1
            else None,
            next_url=_with_query(base, {**query, "page": str(number + 1)}) if more else None,
        )

    @router.get("/tickets", name="tickets", include_in_schema=False)
    async def tickets_page(request: Request, user: AdminUser) -> Response:
        tickets = await _tickets_of(request, user)
        number = _page_number(request)
        total = await tickets.count()
        rows = list(await tickets.list(limit=_TICKETS_PAGE, offset=(number - 1) * _TICKETS_PAGE))
        pager = _pager(request.url_for("admin.tickets"), {}, number, _TICKETS_PAGE, total)
        return await _render(
            request,
            "tickets.html",
            title=gettext("Error tickets"),
            current="tickets",
            tickets=rows,
            pager=pager,
        )

    @router.get("/tickets/{ticket_id}", name="ticket", include_in_schema=False)
    async def ticket_page(request: Request, ticket_id: str, user: AdminUser) -> Response:
        tickets = await _tickets_of(request, user)
        ticket = await tickets.get(ticket_id)
        if ticket is None:
            raise NotFoundError(f"No error ticket {ticket_id}")
        return await _render(
            request,
            "ticket.html",
            title=gettext("Error ticket %(id)s", id=ticket.id),
            current="tickets",
            ticket=ticket,
        )

    return router


async def _tickets_of(request: Request, user: User) -> Any:
    tickets = getattr(request.app.state, "tickets", None)
    if tickets is None:
        raise NotFoundError("Error tickets are not installed (trellis.contrib.tickets)")
    if not await _may(request, user, TICKETS_PERMISSION):
        raise forbidden()
    return tickets


async def _visible_log(
    request: Request,
    db: AsyncSession,
    user: User,
    *,
    limit: int,
    offset: int = 0,
    model: str | None = None,
) -> list[AdminLogEntry]:
    """The newest log entries the user may see: all with ``admin.log``, else their models'."""
    admin: Admin = request.app.state.admin
    statement = select(AdminLogEntry).order_by(
        AdminLogEntry.created_at.desc(), AdminLogEntry.id.desc()
    )
    if not await _may(request, user, LOG_PERMISSION):
        tables = [
            ma.table_name for ma in admin.registry.values() if await ma.has_view_permission(request)
        ]
        statement = statement.where(AdminLogEntry.model.in_(tables))
    if model:
        statement = statement.where(AdminLogEntry.model == model)
    return list((await db.scalars(statement.limit(limit).offset(offset))).all())


def _metrics_context(admin: Admin) -> dict[str, Any] | None:
    recorder = admin.metrics
    if recorder is None:
        return None
    series = recorder.series()
    times = [m.start for m in series]
    totals = recorder.totals()
    minutes = recorder.minutes
    return {
        "minutes": minutes,
        "totals": totals,
        "p50": format_number(totals.p50, "s") if totals.p50 is not None else "—",
        "p95": format_number(totals.p95, "s") if totals.p95 is not None else "—",
        "rows": [
            (
                clock(m.start),
                m.requests,
                m.errors,
                format_number(m.p50, "s") if m.p50 is not None else "—",
                format_number(m.p95, "s") if m.p95 is not None else "—",
            )
            for m in reversed(series)
            if m.requests
        ],
        "requests_chart": chart(
            gettext("Requests per minute"),
            times,
            [Series(gettext("Requests"), [float(m.requests) for m in series], "line-requests")],
        ),
        "latency_chart": chart(
            gettext("Response time per minute (median and 95th percentile)"),
            times,
            [
                Series("p50", [m.p50 for m in series], "line-p50"),
                Series("p95", [m.p95 for m in series], "line-p95"),
            ],
            unit="s",
        ),
        "errors_chart": chart(
            gettext("Server errors per minute"),
            times,
            [Series(gettext("Errors"), [float(m.errors) for m in series], "bar-errors")],
            kind="bar",
        ),
    }
