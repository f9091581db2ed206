"""The inspector's pages and their JSON twins, under ``inspector.prefix`` (``/_inspector``).

| Route | Name | What |
|---|---|---|
| ``GET {prefix}`` | ``inspector.index`` | the recent requests, newest first |
| ``GET {prefix}/{id}`` | ``inspector.detail`` | one request, in full |
| ``GET {prefix}/api/requests`` | ``inspector.api_index`` | the recent requests as JSON |
| ``GET {prefix}/api/requests/{id}`` | ``inspector.api_detail`` | one request as JSON |
| ``GET {prefix}/static/...`` | ``inspector.static`` | the stylesheets |

The pages are rendered by a Jinja2 environment of the inspector's own (autoescaped, never
recorded), use no script and no inline style, and are not in the OpenAPI document.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import jinja2
import orjson

from trellis.exceptions import NotFoundError
from trellis.http.request import Request
from trellis.http.response import HTMLResponse, JSONResponse
from trellis.routing.router import Router

if TYPE_CHECKING:
    from trellis.contrib.inspector.plugin import Inspector
    from trellis.contrib.inspector.records import RequestRecord

__all__ = ["make_environment", "pages_router"]

_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _ms(value: float | None) -> str:
    if value is None:
        return "…"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _when(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def _json(value: Any) -> str:
    # Plain text: the page's autoescaping makes it safe, and it stays readable.
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(value)


def make_environment() -> jinja2.Environment:
    """The Jinja2 environment of the inspector's pages: autoescaped, its own templates only."""
    from trellis.contrib.inspector.plugin import TEMPLATES_DIRECTORY

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIRECTORY)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = _ms
    env.filters["when"] = _when
    env.filters["json"] = _json
    return env


def _summary(record: RequestRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "method": record.method,
        "path": record.path,
        "query_string": record.query_string,
        "status": record.status,
        "started_at": record.started_at,
        "duration_ms": record.duration_ms,
        "query_count": record.query_count,
        "query_time_ms": record.query_time_ms,
        "template_count": len(record.templates),
    }


def pages_router(inspector: Inspector) -> Router:
    """The inspector's routes, under ``inspector.prefix``, named ``inspector.*``."""
    router = Router(inspector.prefix, name="inspector")

    def available(request: Request) -> None:
        # Installed only in debug mode; checked again in case the settings changed since.
        if not request.app.debug:
            raise NotFoundError()

    def page(
        request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        root: str = request.scope.get("root_path", "")
        html = (
            inspector.environment()
            .get_template(template)
            .render(base=f"{root}{inspector.prefix}", sql=inspector.watching_sql, **context)
        )
        return HTMLResponse(html, status_code, headers=_NO_STORE)

    def find(record_id: str) -> RequestRecord | None:
        return inspector.get(record_id)

    @router.get("/", name="index", include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        available(request)
        return page(request, "inspector/index.html", records=inspector.records)

    @router.get("/{record_id}", name="detail", include_in_schema=False)
    async def detail(request: Request, record_id: str) -> HTMLResponse:
        available(request)
        record = find(record_id)
        if record is None:
            return page(request, "inspector/missing.html", 404, record_id=record_id)
        if record.finished:
            record.count_duplicates()
        return page(request, "inspector/detail.html", record=record)

    @router.get("/api/requests", name="api_index", include_in_schema=False)
    async def api_index(request: Request) -> JSONResponse:
        available(request)
        return JSONResponse([_summary(r) for r in inspector.records], headers=_NO_STORE)

    @router.get("/api/requests/{record_id}", name="api_detail", include_in_schema=False)
    async def api_detail(request: Request, record_id: str) -> JSONResponse:
        available(request)
        record = find(record_id)
        if record is None:
            raise NotFoundError(f"no recorded request {record_id!r} (dropped, or never seen)")
        return JSONResponse(record.as_dict(), headers=_NO_STORE)

    return router
