"""The inspector's middleware: records each request and adds the toolbar to HTML pages.

Installed by ``Inspector.setup``; not meant to be added by hand.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from trellis.contrib.inspector._context import current_record
from trellis.contrib.inspector.records import RequestRecord, mask_headers, mask_session
from trellis.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from trellis.contrib.inspector.plugin import Inspector

__all__ = ["InspectorMiddleware", "inject_toolbar", "toolbar_html"]

HEADER = b"x-trellis-inspector"
# Responses without a body, or whose body must not change (a byte range of the real thing).
_NO_TOOLBAR_STATUS = frozenset({204, 205, 206, 304})
_BODY_END = b"</body>"


def _ms_text(value: float) -> str:
    if value < 1:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def toolbar_html(record: RequestRecord, *, link: str, css: str, queries: bool) -> bytes:
    """The toolbar for ``record``: a stylesheet link and one line linking to its page.

    Pure HTML and an external stylesheet from the application's own origin: no inline script
    or style, so a strict ``Content-Security-Policy`` lets it through. ASCII only (entities),
    so it fits a page in any ASCII-compatible encoding.
    """
    parts = [f"Inspector: {_ms_text(record.elapsed_ms())} ms"]
    if queries:
        count = record.query_count
        parts.append(f"{count} {'query' if count == 1 else 'queries'}")
        duplicates = record.duplicate_count
        if duplicates:
            parts.append(f"{duplicates} duplicate{'s' if duplicates != 1 else ''}")
    if record.templates:
        count = len(record.templates)
        parts.append(f"{count} template{'s' if count != 1 else ''}")
    text = " &middot; ".join(parts)
    html = (
        f'<link rel="stylesheet" href="{escape(css)}">'
        '<div id="trellis-inspector" role="complementary" aria-label="Trellis inspector">'
        f'<a href="{escape(link)}">{text}</a></div>'
    )
    return html.encode("ascii", "xmlcharrefreplace")


def inject_toolbar(body: bytes, toolbar: bytes) -> bytes | None:
    """``body`` with ``toolbar`` before its last ``</body>``; ``None`` when it has none.

    A fragment without ``</body>`` (an htmx partial) is left alone.
    """
    at = body.lower().rfind(_BODY_END)
    if at < 0:
        return None
    return body[:at] + toolbar + body[at:]


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _wants_toolbar(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    if method == "HEAD" or status < 200 or status in _NO_TOOLBAR_STATUS:
        return False
    content_type = (_header(headers, b"content-type") or b"").lower()
    if not content_type.startswith(b"text/html"):
        return False
    if b"utf-16" in content_type or b"utf-32" in content_type:
        return False
    if _header(headers, b"content-encoding") not in (None, b"", b"identity"):
        return False  # compressed already (gzip inside the inspector): left as it is
    disposition = (_header(headers, b"content-disposition") or b"").lower()
    return not disposition.startswith(b"attachment")


def _with_length(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    fixed: list[tuple[bytes, bytes]] = []
    for key, value in headers:
        lower = key.lower()
        if lower == b"content-length":
            value = str(length).encode()
        elif lower == b"etag" and not value.startswith(b"W/"):
            # The bytes changed, the page did not: a strong validator would lie.
            value = b"W/" + value
        fixed.append((key, value))
    return fixed


def _describe_user(user: Any) -> str:
    """``User #3 (ada)``, read from loaded attributes only (never a lazy load)."""
    name = type(user).__name__
    try:
        values = vars(user)
    except TypeError:
        values = {}
    bits = []
    ident = values.get("id")
    if ident is not None:
        bits.append(f"#{ident}")
    for attribute in ("username", "email", "name"):
        value = values.get(attribute)
        if value:
            bits.append(f"({value})")
            break
    if bits:
        return " ".join([name, *bits])
    try:
        text = str(user)
    except Exception:
        text = name
    return text[:200]


def _snapshot_session(scope: Scope, record: RequestRecord) -> None:
    """Copy the session's data into ``record`` without opening, changing or saving it."""
    from trellis.sessions import SCOPE_KEY, Session

    session: Session | None = scope.get(SCOPE_KEY)
    if session is None:
        # Not used by the handler. A signed-cookie session can still be read, on the side
        # (not put in the scope, so nothing is saved); a stored one was loaded already if the
        # request named one.
        from trellis.exceptions import ConfigurationError
        from trellis.sessions import config_for

        try:
            config = config_for(scope)
        except ConfigurationError:
            return  # sessions are off
        if config.store is not None:
            return
        from trellis.http.connection import HTTPConnection

        conn = HTTPConnection(scope)
        if config.cookie_name not in conn.cookies:
            return
        session = config.open_cookie(conn)
    try:
        data = orjson.loads(orjson.dumps(dict(session)))
    except (TypeError, orjson.JSONEncodeError):
        data = {key: repr(value) for key, value in session.items()}
    record.session = mask_session(data)
    record.session_info = {"new": session.new, "modified": session.modified}


class InspectorMiddleware:
    """Record every HTTP request into ``inspector`` and add the toolbar to complete HTML pages.

    The toolbar goes before the last ``</body>`` of a ``text/html`` response sent in one body
    message (``Content-Length`` corrected). Streamed responses (``more_body``), compressed ones
    (``Content-Encoding``), downloads, ``HEAD`` and bodiless statuses are passed on untouched.
    Every recorded response gets ``X-Trellis-Inspector: <its page>``.

    Args:
        app: The ASGI application to wrap.
        inspector: The ``Inspector`` that keeps the records.
    """

    def __init__(self, app: ASGIApp, *, inspector: Inspector) -> None:
        self.app = app
        self.inspector = inspector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        inspector = self.inspector
        if scope["type"] != "http" or not inspector.should_record(scope):
            await self.app(scope, receive, send)
            return
        inspector.start_hooks()
        record = inspector.new_record(scope)
        root: str = scope.get("root_path", "")
        link = f"{root}{inspector.prefix}/{record.id}"
        css = f"{root}{inspector.prefix}/static/toolbar.css"
        header_value = quote(link, safe="/:@!$&'()*+,;=~-._").encode("latin-1")
        method: str = scope["method"]
        toolbar = inspector.toolbar
        queries = inspector.watching_sql
        held: Message | None = None

        async def recording_send(message: Message) -> None:
            nonlocal held
            kind = message["type"]
            if kind == "http.response.start":
                headers = list(message.get("headers") or ())
                record.status = int(message["status"])
                record.response_start_ms = record.elapsed_ms()
                record.response_headers = mask_headers(headers)
                record.path_params = {
                    str(k): str(v) for k, v in (scope.get("path_params") or {}).items()
                }
                _fill_from_scope(scope, record)
                headers.append((HEADER, header_value))
                message = {**message, "headers": headers}
                if toolbar and _wants_toolbar(method, record.status, headers):
                    held = message  # until the body says whether it comes in one piece
                    return
                await send(message)
                return
            if kind != "http.response.body":
                if held is not None:
                    start, held = held, None
                    await send(start)
                await send(message)
                return
            more = bool(message.get("more_body", False))
            if held is not None:
                start, held = held, None
                if not more:
                    body = bytes(message.get("body", b""))
                    record.count_duplicates()
                    page = inject_toolbar(
                        body, toolbar_html(record, link=link, css=css, queries=queries)
                    )
                    if page is not None:
                        record.toolbar = True
                        start = {**start, "headers": _with_length(start["headers"], len(page))}
                        message = {**message, "body": page}
                await send(start)
            await send(message)
            if not more:
                record.duration_ms = record.elapsed_ms()

        token = current_record.set(record)
        try:
            await self.app(scope, receive, recording_send)
        except BaseException as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            current_record.reset(token)
            if record.duration_ms is None:
                record.duration_ms = record.elapsed_ms()
            record.count_duplicates()


def _fill_from_scope(scope: Scope, record: RequestRecord) -> None:
    """The session and the user, as they are when the response starts."""
    try:
        _snapshot_session(scope, record)
    except Exception as exc:  # the inspector must never break the page it inspects
        record.session_info = {}
        record.session = {"(inspector)": f"could not read the session: {exc}"}
    state = scope.get("state")
    user = state.get("user") if isinstance(state, dict) else None
    if user is not None:
        record.user = _describe_user(user)


def request_headers(scope: Scope) -> list[tuple[str, str]]:
    """The request's headers, secrets masked."""
    return mask_headers(scope.get("headers") or ())


def client_of(scope: Scope) -> str | None:
    """``host:port`` of the client, when the server says."""
    client = scope.get("client")
    if not client:
        return None
    host, port = client[0], client[1]
    return f"{host}:{port}"
