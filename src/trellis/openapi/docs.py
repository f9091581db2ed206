"""Interactive API docs: the OpenAPI document, and Swagger UI and ReDoc pages that work offline.

The browser code of both pages ships inside the package (``trellis/openapi/assets/``, vendored
by ``scripts/update_docs_assets.sh``; versions and checksums in ``assets/VERSIONS.txt``), so the
pages load nothing from a CDN or from Google Fonts and work with no network.

The pages hold no inline script: each loads its bundle and a small start-up script from the
assets, and reads its settings from ``data-*`` attributes (JSON, HTML-escaped). That keeps the
``Content-Security-Policy`` of the pages strict: scripts from ``'self'`` only.

``APIDocs`` is the plugin that wires it all into an application::

    app.install(APIDocs())

The page builders (``swagger_ui_html``, ``redoc_html``) and the assets app (``docs_assets``) are
public too, for applications that serve the pages their own way.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trellis.exceptions import ConfigurationError
from trellis.http.request import Request
from trellis.http.response import HTMLResponse, JSONResponse, Response
from trellis.static import StaticFiles

if TYPE_CHECKING:
    from trellis.app import App

__all__ = [
    "ASSETS_CACHE_CONTROL",
    "ASSETS_DIR",
    "REDOC_CSP",
    "SWAGGER_UI_CSP",
    "APIDocs",
    "assets_version",
    "docs_assets",
    "oauth2_redirect_html",
    "redoc_html",
    "swagger_ui_html",
]

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
"""The folder of the vendored Swagger UI and ReDoc files and of the pages' start-up scripts."""

ASSETS_CACHE_CONTROL = "public, max-age=31536000, immutable"
"""``Cache-Control`` of the assets: their URL holds ``assets_version()``, so they never change."""

_COMMON_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
# Why each source beyond 'self' is there:
# - style-src 'unsafe-inline': both UIs set inline styles at run time (ReDoc's styled-components
#   adds <style> elements); styles cannot run code.
# - img-src data: blob:: Swagger UI's icons are data: URLs in its stylesheet, and it shows
#   images returned by "Try it out" through blob: URLs.
# - worker-src blob: (ReDoc): its search index runs in a worker made from a blob: URL; without
#   it ReDoc fails to start.

SWAGGER_UI_CSP = _COMMON_CSP
"""The ``Content-Security-Policy`` of the Swagger UI page: scripts from ``'self'`` only."""

REDOC_CSP = _COMMON_CSP + "; worker-src 'self' blob:"
"""The ``Content-Security-Policy`` of the ReDoc page: scripts from ``'self'`` only."""

_OAUTH2_REDIRECT_CSP = (
    "default-src 'none'; script-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

# ReDoc's default theme names Roboto and Montserrat, which its own HTML template loads from
# Google Fonts. The pages load no remote font, so use the system's fonts instead.
# (Unquoted: CSS allows family names of several words, and the page's JSON stays readable.)
_SYSTEM_FONTS = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif"
_MONOSPACE_FONTS = "ui-monospace, SFMono-Regular, Menlo, Consolas, Liberation Mono, monospace"
_REDOC_DEFAULTS: dict[str, Any] = {
    "theme": {
        "typography": {
            "fontFamily": _SYSTEM_FONTS,
            "headings": {"fontFamily": _SYSTEM_FONTS},
            "code": {"fontFamily": _MONOSPACE_FONTS},
        }
    },
}

# A path the plugin registers: no query, fragment, spaces, quotes or route parameters.
_PATH = re.compile(r"/[A-Za-z0-9._~!$&*+,;=:@%/-]*")


@cache
def assets_version() -> str:
    """Return a short hash that changes whenever the shipped assets change.

    It covers ``VERSIONS.txt`` (which holds the sha256 of every vendored file) and the pages'
    own start-up scripts, so it is cheap to compute and still changes with any asset. The
    plugin puts it in the assets' URL, which lets browsers cache them for a year.

    Returns:
        Twelve hexadecimal digits.
    """
    digest = hashlib.sha256()
    for path in sorted(ASSETS_DIR.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def docs_assets(*, cache_control: str | None = ASSETS_CACHE_CONTROL) -> StaticFiles:
    """Return an ASGI app that serves the docs assets (mount it where ``assets_url`` points).

    Args:
        cache_control: The ``Cache-Control`` header of the files. The default (a year,
            ``immutable``) is right when the mount path holds ``assets_version()``, as
            ``APIDocs`` does; pass something shorter for an unversioned path.

    Returns:
        A ``trellis.static.StaticFiles`` for ``ASSETS_DIR``.
    """
    return StaticFiles(ASSETS_DIR, cache_control=cache_control)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _json_attr(value: Any) -> str:
    # Compact, and HTML-escaped so that quotes and "<" cannot leave the attribute.
    return _attr(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False))


def swagger_ui_html(
    *,
    openapi_url: str,
    title: str,
    assets_url: str,
    oauth2_redirect_url: str | None = None,
    init_options: Mapping[str, Any] | None = None,
    init_oauth: Mapping[str, Any] | None = None,
) -> str:
    """Build the HTML of a Swagger UI page (it holds no inline script).

    Args:
        openapi_url: URL of the OpenAPI document (``"/openapi.json"``).
        title: The page title; it is HTML-escaped.
        assets_url: URL where the assets folder is served (``docs_assets()``), without a
            trailing slash (``"/docs/assets/<version>"``).
        oauth2_redirect_url: URL of a page that serves ``oauth2_redirect_html``, for the
            OAuth2 flows of the "Authorize" dialog; a path is made absolute in the browser.
        init_options: Swagger UI options that override the defaults (``deepLinking``,
            ``docExpansion``, ``persistAuthorization`` ...). They travel as JSON, so they
            cannot hold functions.
        init_oauth: Options for ``ui.initOAuth()`` (``clientId``, ``scopes``,
            ``usePkceWithAuthorizationCodeGrant`` ...).

    Returns:
        The page, to send as ``text/html`` with ``SWAGGER_UI_CSP``.

    Raises:
        ValueError: An option cannot be encoded as JSON (a function, NaN ...).
    """
    config: dict[str, Any] = {
        "url": openapi_url,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "showExtensions": True,
        "showCommonExtensions": True,
        # The default posts the document to validator.swagger.io (from the standalone layout).
        "validatorUrl": None,
        "queryConfigEnabled": False,
    }
    if oauth2_redirect_url is not None:
        config["oauth2RedirectUrl"] = oauth2_redirect_url
    if init_options:
        config.update(init_options)
    assets = _attr(assets_url.rstrip("/"))
    oauth = f' data-oauth="{_json_attr(dict(init_oauth))}"' if init_oauth else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{assets}/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui/swagger-ui.css">
</head>
<body>
<noscript>Swagger UI needs JavaScript; the OpenAPI document is at
<a href="{_attr(openapi_url)}">{html.escape(openapi_url)}</a>.</noscript>
<div id="swagger-ui" data-config="{_json_attr(config)}"{oauth}></div>
<script src="{assets}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{assets}/trellis-swagger-ui.js"></script>
</body>
</html>
"""


def redoc_html(
    *,
    openapi_url: str,
    title: str,
    assets_url: str,
    options: Mapping[str, Any] | None = None,
) -> str:
    """Build the HTML of a ReDoc page (it holds no inline script and loads no remote font).

    ReDoc's own template loads the Roboto and Montserrat fonts from Google Fonts; this page
    does not, and sets ReDoc's theme to the system's fonts instead.

    Args:
        openapi_url: URL of the OpenAPI document (``"/openapi.json"``).
        title: The page title; it is HTML-escaped.
        assets_url: URL where the assets folder is served (``docs_assets()``), without a
            trailing slash (``"/docs/assets/<version>"``).
        options: ReDoc options that override the defaults, top-level key by key
            (``hideDownloadButton``, ``expandResponses``, ``theme`` ...); JSON values only.

    Returns:
        The page, to send as ``text/html`` with ``REDOC_CSP``.

    Raises:
        ValueError: An option cannot be encoded as JSON (a function, NaN ...).
    """
    merged = {**_REDOC_DEFAULTS, **(options or {})}
    assets = _attr(assets_url.rstrip("/"))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{assets}/swagger-ui/favicon-32x32.png">
</head>
<body>
<noscript>ReDoc needs JavaScript; the OpenAPI document is at
<a href="{_attr(openapi_url)}">{html.escape(openapi_url)}</a>.</noscript>
<div id="redoc" data-spec-url="{_attr(openapi_url)}" data-options="{_json_attr(merged)}"></div>
<script src="{assets}/redoc/redoc.standalone.js"></script>
<script src="{assets}/trellis-redoc.js"></script>
</body>
</html>
"""


def oauth2_redirect_html(*, assets_url: str) -> str:
    """Build the page an OAuth2 provider sends the browser back to from Swagger UI's dialog.

    Args:
        assets_url: URL where the assets folder is served, without a trailing slash.

    Returns:
        The page, to send as ``text/html``; it runs Swagger UI's ``oauth2-redirect.js``.
    """
    assets = _attr(assets_url.rstrip("/"))
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Swagger UI: OAuth2 redirect</title></head>
<body>
<script src="{assets}/swagger-ui/oauth2-redirect.js"></script>
</body>
</html>
"""


class APIDocs:
    """Plugin: serve the OpenAPI document and the Swagger UI and ReDoc pages.

    Every page is a ``GET`` route left out of the schema (``include_in_schema=False``); the
    assets are mounted at ``{assets_url}/{assets_version()}`` and cached by browsers for a
    year. Set any URL to ``None`` to turn that part off. Behind a path prefix (the ASGI
    ``root_path``) the pages link to the prefixed URLs.

    Args:
        openapi: A callable that returns the OpenAPI document as a dict. By default the
            application's ``app.openapi()``. It is called once, on the first request for the
            document (or for a page, when ``title`` is not given), and the result is kept.
        openapi_url: Path of the document, served as JSON; ``None`` to not serve it (then
            the pages must be off too).
        docs_url: Path of the Swagger UI page; ``None`` for none.
        redoc_url: Path of the ReDoc page; ``None`` for none.
        assets_url: Path prefix of the pages' scripts and stylesheets.
        oauth2_redirect_url: Path of Swagger UI's OAuth2 redirect page (register it with the
            identity provider); ``None`` for none. Only served when ``docs_url`` is on.
        title: Page title; by default the document's ``info.title``.
        swagger_ui_options: Swagger UI options over the defaults (see ``swagger_ui_html``).
        swagger_ui_oauth: Options for Swagger UI's ``initOAuth()`` (``clientId`` ...).
        redoc_options: ReDoc options over the defaults (see ``redoc_html``).
        csp: ``True`` for the built-in ``Content-Security-Policy`` of each page
            (``SWAGGER_UI_CSP``, ``REDOC_CSP``), ``False`` to send none (a security
            middleware may then add its own), or a policy to send on both pages.

    Raises:
        ConfigurationError: A URL is not a plain path, two parts share a URL, or the pages
            are on while ``openapi_url`` is ``None``.

    Example:
        ```python
        from trellis import App
        from trellis.openapi import APIDocs

        app = App()
        app.install(APIDocs(redoc_url=None))  # /openapi.json and /docs only
        ```
    """

    def __init__(
        self,
        openapi: Callable[[], Mapping[str, Any]] | None = None,
        *,
        openapi_url: str | None = "/openapi.json",
        docs_url: str | None = "/docs",
        redoc_url: str | None = "/redoc",
        assets_url: str = "/docs/assets",
        oauth2_redirect_url: str | None = "/docs/oauth2-redirect",
        title: str | None = None,
        swagger_ui_options: Mapping[str, Any] | None = None,
        swagger_ui_oauth: Mapping[str, Any] | None = None,
        redoc_options: Mapping[str, Any] | None = None,
        csp: bool | str = True,
    ) -> None:
        urls = {
            "openapi_url": openapi_url,
            "docs_url": docs_url,
            "redoc_url": redoc_url,
            "assets_url": assets_url,
            "oauth2_redirect_url": oauth2_redirect_url if docs_url is not None else None,
        }
        seen: dict[str, str] = {}
        for option, url in urls.items():
            if url is None:
                continue
            if not _PATH.fullmatch(url) or "//" in url or (url.endswith("/") and url != "/"):
                raise ConfigurationError(
                    f"APIDocs({option}={url!r}): give a path that starts with '/', does not end"
                    " with '/', and holds no query, spaces, quotes or {parameters}"
                )
            if url in seen:
                raise ConfigurationError(
                    f"APIDocs: {seen[url]} and {option} are both {url!r}; give each its own path"
                )
            seen[url] = option
        if openapi_url is None and (docs_url is not None or redoc_url is not None):
            raise ConfigurationError(
                "APIDocs(openapi_url=None) turns the OpenAPI document off, but the docs pages"
                " load it; also pass docs_url=None and redoc_url=None, or keep openapi_url"
            )
        if isinstance(csp, str) and any(c in csp for c in "\r\n\0"):
            raise ConfigurationError(f"APIDocs(csp=...) holds CR, LF or NUL: {csp!r}")
        self.openapi = openapi
        self.openapi_url = openapi_url
        self.docs_url = docs_url
        self.redoc_url = redoc_url
        self.assets_url = assets_url
        self.oauth2_redirect_url = oauth2_redirect_url if docs_url is not None else None
        self.title = title
        self.swagger_ui_options = dict(swagger_ui_options or {})
        self.swagger_ui_oauth = dict(swagger_ui_oauth or {})
        self.redoc_options = dict(redoc_options or {})
        self.csp = csp
        # Found at setup (a mistake shows at start-up), the document on first use.
        self._source: Callable[[], Mapping[str, Any]] | None = openapi
        self._document: Mapping[str, Any] | None = None
        self._body: bytes | None = None
        self._versioned_assets = f"{assets_url.rstrip('/')}/{assets_version()}"
        # Encode the options now: one that is not JSON fails at start-up, not per request.
        for option, value in (
            ("swagger_ui_options", self.swagger_ui_options),
            ("swagger_ui_oauth", self.swagger_ui_oauth),
            ("redoc_options", self.redoc_options),
        ):
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"APIDocs({option}=...): the options go to the browser as JSON and this"
                    f" value cannot be: {exc}"
                ) from None

    @property
    def assets_path(self) -> str:
        """Where the assets are mounted: ``assets_url`` plus ``/`` and ``assets_version()``."""
        return self._versioned_assets

    # -- plugin -----------------------------------------------------------------------------

    def setup(self, app: App) -> None:
        """Register the routes and the assets mount on ``app`` (``app.install`` calls this).

        Raises:
            ConfigurationError: No ``openapi`` callable was given and ``app`` has no
                ``openapi()`` method to build the document with.
        """
        if self.openapi_url is not None and self._source is None:
            source = getattr(app, "openapi", None)
            if not callable(source):
                raise ConfigurationError(
                    "APIDocs needs the OpenAPI document: this application has no openapi()"
                    " method, so pass a callable that returns it, APIDocs(openapi=...)"
                )
            self._source = source
        if self.openapi_url is not None:
            app.add_route(
                self.openapi_url,
                self._openapi_json,
                ("GET",),
                name="openapi",
                include_in_schema=False,
            )
        if self.docs_url is not None:
            app.add_route(
                self.docs_url,
                self._swagger_ui,
                ("GET",),
                name="swagger_ui",
                include_in_schema=False,
            )
            if self.oauth2_redirect_url is not None:
                app.add_route(
                    self.oauth2_redirect_url,
                    self._oauth2_redirect,
                    ("GET",),
                    name="swagger_ui_oauth2_redirect",
                    include_in_schema=False,
                )
        if self.redoc_url is not None:
            app.add_route(
                self.redoc_url,
                self._redoc,
                ("GET",),
                name="redoc",
                include_in_schema=False,
            )
        if self.docs_url is not None or self.redoc_url is not None:
            app.mount(self._versioned_assets, docs_assets(), name="api_docs_assets")

    # -- the document -----------------------------------------------------------------------

    def document(self) -> Mapping[str, Any]:
        """Return the OpenAPI document, building it on the first call.

        Raises:
            ConfigurationError: The plugin was not installed and no ``openapi`` was given.
        """
        if self._document is None:
            if self._source is None:
                raise ConfigurationError(
                    "APIDocs has no OpenAPI document yet: install it with app.install(...)"
                    " or pass APIDocs(openapi=...)"
                )
            document = self._source()
            self._body = JSONResponse(document).body
            self._document = document
        return self._document

    def _page_title(self) -> str:
        if self.title is not None:
            return self.title
        info = self.document().get("info")
        name = info.get("title") if isinstance(info, Mapping) else None
        return str(name) if name else "API"

    def _headers(self, policy: str) -> dict[str, str]:
        headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}
        if self.csp is True:
            headers["content-security-policy"] = policy
        elif isinstance(self.csp, str):
            headers["content-security-policy"] = self.csp
        return headers

    # -- handlers ---------------------------------------------------------------------------

    async def _openapi_json(self) -> Response:
        self.document()
        assert self._body is not None
        return Response(self._body, media_type="application/json")

    async def _swagger_ui(self, request: Request) -> Response:
        root = _root(request)
        assert self.openapi_url is not None  # checked in __init__
        page = swagger_ui_html(
            openapi_url=root + self.openapi_url,
            title=f"{self._page_title()} - Swagger UI",
            assets_url=root + self._versioned_assets,
            oauth2_redirect_url=(
                root + self.oauth2_redirect_url if self.oauth2_redirect_url is not None else None
            ),
            init_options=self.swagger_ui_options,
            init_oauth=self.swagger_ui_oauth,
        )
        return HTMLResponse(page, headers=self._headers(SWAGGER_UI_CSP))

    async def _redoc(self, request: Request) -> Response:
        root = _root(request)
        assert self.openapi_url is not None  # checked in __init__
        page = redoc_html(
            openapi_url=root + self.openapi_url,
            title=f"{self._page_title()} - ReDoc",
            assets_url=root + self._versioned_assets,
            options=self.redoc_options,
        )
        return HTMLResponse(page, headers=self._headers(REDOC_CSP))

    async def _oauth2_redirect(self, request: Request) -> Response:
        page = oauth2_redirect_html(assets_url=_root(request) + self._versioned_assets)
        return HTMLResponse(page, headers=self._headers(_OAUTH2_REDIRECT_CSP))

    def __repr__(self) -> str:
        return (
            f"APIDocs(openapi_url={self.openapi_url!r}, docs_url={self.docs_url!r},"
            f" redoc_url={self.redoc_url!r})"
        )


def _root(request: Request) -> str:
    """The path prefix the app is served under (the ASGI ``root_path``), without a final ``/``."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
