"""Error responses: RFC 9457 problem documents for API clients, HTML pages for browsers."""

from __future__ import annotations

import base64
import hashlib
import html
import traceback
from typing import Any

from trellis import status as _status
from trellis.exceptions import HTTPError
from trellis.http import _json
from trellis.http.response import HTMLResponse, Response

__all__ = ["error_response", "server_error_response", "wants_html"]

PROBLEM_JSON = "application/problem+json"

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:46rem;padding:0 1rem;"
    "color:#222}h1{font-size:1.6rem}pre{background:#f6f6f6;padding:1rem;overflow:auto;"
    "font-size:13px}code{background:#f6f6f6;padding:0 .2rem}"
)
_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{status} {title}</title>\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "<style>" + _STYLE.replace("{", "{{").replace("}", "}}") + "</style></head>\n"
    "<body><h1>{status} {title}</h1>{body}</body></html>"
)
# The error pages bring their own policy: nothing loads, and only their own inline style (by its
# hash) applies, so they render under any strict policy of the app's (whose header they win).
_PAGE_CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    + "'; frame-ancestors 'none'"
)


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def wants_html(accept: str | None) -> bool:
    """Whether the client prefers an HTML page to JSON (a browser navigating).

    HTML wins when ``text/html`` (or XHTML) has a higher quality than any JSON type
    (``application/json``, ``*/*+json``), or the same quality and comes first. ``*/*`` alone
    gets JSON.
    """
    if not accept or "html" not in accept:
        return False
    html_q = json_q = 0.0
    html_at = json_at = -1
    for index, item in enumerate(accept.split(",")):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        is_html = media in _HTML_TYPES
        is_json = media.endswith("/json") or media.endswith("+json")
        if not (is_html or is_json):
            continue
        q = _quality(params)
        if is_html and q > html_q:
            html_q, html_at = q, index
        elif is_json and q > json_q:
            json_q, json_at = q, index
    if html_q <= 0.0:
        return False
    return html_q > json_q or (html_q == json_q and html_at < json_at)


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
        # other parameters (charset, version ...) do not change the preference
    return 1.0


def _page_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with the page's ``Content-Security-Policy`` unless the error set its own."""
    if any(name.lower() == "content-security-policy" for name, _ in headers):
        return list(headers)
    return [*headers, ("content-security-policy", _PAGE_CSP)]


def _problem(status: int, problem: dict[str, Any], headers: list[tuple[str, str]]) -> Response:
    response = Response(_json.dumps(problem), status, headers, media_type=PROBLEM_JSON)
    return response


def error_response(exc: HTTPError, *, html_page: bool, instance: str | None = None) -> Response:
    """Render ``exc`` as a problem document, or as an HTML page for browsers."""
    problem = exc.to_problem(instance)
    if html_page:
        body = f"<p>{html.escape(exc.detail)}</p>" if exc.detail else ""
        errors = exc.extra.get("errors")
        if isinstance(errors, list) and errors:
            items = "".join(f"<li><code>{html.escape(str(e))}</code></li>" for e in errors)
            body += f"<ul>{items}</ul>"
        page = _PAGE.format(status=exc.status, title=html.escape(exc.title), body=body)
        return HTMLResponse(page, exc.status, _page_headers(exc.headers))
    return _problem(exc.status, problem, exc.headers)


def server_error_response(
    exc: BaseException,
    *,
    html_page: bool,
    request_id: str,
    debug: bool,
    ticket: str | None = None,
) -> Response:
    """Render an unhandled exception as a 500.

    In production the client sees only a reference to quote when reporting the problem: the
    error ticket (``ticket``, from an error reporter such as ``trellis.contrib.tickets``) when
    there is one, else the request id. In debug mode it also sees the traceback.
    """
    title = _status.phrase(500)
    headers = [("x-request-id", request_id)]
    if ticket is None:
        detail = f"The server hit an unexpected error. Reference: {request_id}"
    else:
        detail = f"The server hit an unexpected error. Error ticket {ticket}"
        headers.append(("x-error-ticket", ticket))
    tb = "".join(traceback.format_exception(exc)) if debug else None
    if html_page:
        body = f"<p>{html.escape(detail)}</p>"
        if tb is not None:
            body += f"<h2>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</h2>"
            body += f"<pre>{html.escape(tb)}</pre>"
        page = _PAGE.format(status=500, title=title, body=body)
        return HTMLResponse(page, 500, _page_headers(headers))
    problem: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": 500,
        "detail": detail,
        "request_id": request_id,
    }
    if ticket is not None:
        problem["ticket"] = ticket
    if tb is not None:
        problem["exception"] = f"{type(exc).__name__}: {exc}"
        problem["traceback"] = tb.splitlines()
    return _problem(500, problem, headers)
