"""The inspector's plugin: ``app.install(Inspector())``, in debug mode only.

```py
app = App(debug=True)
db = app.install(Database("sqlite:///dev.db"))
if app.debug:
    app.install(Inspector())
```
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trellis.contrib.inspector.records import RecordBuffer, RequestRecord
from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    import jinja2

    from trellis.app import App
    from trellis.checks import DeployProblem
    from trellis.templating import Templates
    from trellis.types import Scope

__all__ = ["STATIC_DIRECTORY", "TEMPLATES_DIRECTORY", "Inspector"]

#: The inspector's own templates (rendered by a Jinja2 environment of its own).
TEMPLATES_DIRECTORY = Path(__file__).parent / "templates"
#: The toolbar's and the pages' stylesheet, served under ``{prefix}/static``.
STATIC_DIRECTORY = Path(__file__).parent / "static"


class Inspector:
    """The development inspector: what each request did, on a page of its own.

    For each HTTP request it records the method, path, status, timings, the request and
    response headers (credentials masked), the session's data (read, never changed), the
    signed-in user, the SQL statements of the ``Database`` battery (statement, parameters,
    duration, duplicates) and the template renders (name, duration, context names). HTML pages
    get a small toolbar before ``</body>`` linking to ``{prefix}/{id}``; every response gets an
    ``X-Trellis-Inspector`` header naming the same page. ``{prefix}`` lists the recent
    requests.

    It shows secrets of every request to whoever opens the pages, so it refuses to be
    installed unless the application is in debug mode: install it under ``if app.debug:``.

    Args:
        max_requests: How many requests are kept (in memory; the oldest is dropped first).
        prefix: Where the pages are served.
        toolbar: Add the toolbar to HTML pages (the header and the pages stay either way).
        ignore: Path prefixes not recorded (``("/static", "/favicon.ico")``).
        max_queries: SQL statements kept per request; more are counted but not kept.

    Raises:
        ConfigurationError: On ``app.install()`` when the application is not in debug mode,
            or on a bad option.

    Attributes:
        app: The application, once installed.
    """

    def __init__(
        self,
        max_requests: int = 100,
        *,
        prefix: str = "/_inspector",
        toolbar: bool = True,
        ignore: Sequence[str] = (),
        max_queries: int = 1000,
    ) -> None:
        if not isinstance(max_requests, int) or max_requests < 1:
            raise ConfigurationError(f"Inspector(max_requests={max_requests!r}): at least 1")
        if not isinstance(max_queries, int) or max_queries < 0:
            raise ConfigurationError(f"Inspector(max_queries={max_queries!r}): 0 or more")
        if not prefix.startswith("/") or prefix.endswith("/") or len(prefix) < 2:
            raise ConfigurationError(
                f"Inspector(prefix={prefix!r}): a path that starts with '/' and does not end"
                " with one, such as '/_inspector'"
            )
        if isinstance(ignore, str):
            ignore = (ignore,)
        self.prefix = prefix
        self.toolbar = toolbar
        self.ignore = tuple(ignore)
        self.max_queries = max_queries
        self.app: App | None = None
        self._records = RecordBuffer(max_requests)
        self._sql = False
        self._hooked = False
        self._env: jinja2.Environment | None = None
        self._counter = 0

    # -- installation -----------------------------------------------------------------------

    def setup(self, app: App) -> None:
        """Install on ``app``: middleware, pages, hooks (debug mode only).

        Raises:
            ConfigurationError: ``app`` is not in debug mode, or has an inspector already.
        """
        if not app.debug:
            raise ConfigurationError(
                "Inspector() shows the SQL, headers and sessions of every request to anyone who"
                " can open its pages, so it only runs in debug mode; install it under"
                " `if app.debug: app.install(Inspector())` (debug comes from App(debug=True) or"
                " TRELLIS_DEBUG=1)"
            )
        existing = getattr(app.state, "inspector", None)
        if existing is not None and existing is not self:
            raise ConfigurationError("the application already has an Inspector installed")
        from trellis.contrib.inspector.middleware import InspectorMiddleware
        from trellis.contrib.inspector.routes import pages_router
        from trellis.static import StaticFiles

        self.app = app
        app.state.inspector = self
        app.add_middleware(InspectorMiddleware, inspector=self)
        app.include(pages_router(self))
        app.mount(
            f"{self.prefix}/static",
            StaticFiles(STATIC_DIRECTORY, cache_control="no-cache"),
            name="inspector.static",
        )
        app.on_startup(self.start_hooks)
        app.on_shutdown(self.stop_hooks)

    def deploy_checks(self, app: App) -> list[DeployProblem]:
        """``inspector.E001``: the inspector is installed (it must never reach production)."""
        from trellis.checks import DeployProblem

        return [
            DeployProblem(
                id="inspector.E001",
                message=(
                    "The development inspector is installed: its pages show the SQL, headers and"
                    " session data of recent requests to anyone who can reach them."
                ),
                fix="Install Inspector() only when app.debug is on, and turn debug off.",
                level="error",
            )
        ]

    # -- hooks --------------------------------------------------------------------------------

    def start_hooks(self) -> None:
        """Watch the app's templates and, with the database battery, its SQL (idempotent).

        Runs at start-up, and on the first request when the app is served without a
        lifespan.
        """
        if self._hooked:
            return
        self._hooked = True
        app = self.app
        if app is None:
            return
        templates = getattr(app, "templates", None)
        if templates is not None:
            self.watch_templates(templates)
        if getattr(app.state, "database", None) is not None and not self._sql:
            from trellis.contrib.inspector import _sql

            _sql.install()
            self._sql = True

    def stop_hooks(self) -> None:
        """Stop watching SQL (at shut-down); templates stay watched, silently outside requests."""
        if self._sql:
            from trellis.contrib.inspector import _sql

            _sql.uninstall()
            self._sql = False
        self._hooked = False

    def watch_templates(self, templates: Templates | jinja2.Environment) -> None:
        """Record the renders of ``templates`` too (a ``Templates`` or a Jinja2 environment).

        The app's own ``app.templates`` is watched for you; call this for one you made yourself.
        """
        import jinja2

        from trellis.contrib.inspector._templates import instrument

        instrument(templates if isinstance(templates, jinja2.Environment) else templates.env)

    @property
    def watching_sql(self) -> bool:
        """Whether SQL statements are being recorded (the database battery is installed)."""
        return self._sql

    # -- records ------------------------------------------------------------------------------

    @property
    def records(self) -> list[RequestRecord]:
        """The recorded requests, newest first."""
        return list(self._records)

    def get(self, record_id: str) -> RequestRecord | None:
        """The record with this id, or ``None`` (unknown, or dropped since)."""
        return self._records.get(record_id)

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()

    def should_record(self, scope: Scope) -> bool:
        """Whether the request of ``scope`` is recorded (not the inspector's own, not ignored)."""
        app = self.app
        if app is None or not app.debug:
            return False
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        prefix = self.prefix
        if path == prefix or path.startswith(prefix + "/"):
            return False
        return not any(path.startswith(p) for p in self.ignore)

    def new_record(self, scope: Scope) -> RequestRecord:
        """Start the record of a request and keep it (its page works while it runs)."""
        from trellis.contrib.inspector.middleware import client_of, request_headers

        self._counter += 1
        # Short and unique in this process; the random part keeps an old link (from before a
        # restart) from showing another request.
        record_id = f"{self._counter:x}{secrets.token_hex(3)}"
        query: bytes = scope.get("query_string", b"")
        record = RequestRecord(
            id=record_id,
            method=scope["method"],
            path=scope["path"],
            query_string=query.decode("latin-1"),
            client=client_of(scope),
            request_headers=request_headers(scope),
            max_queries=self.max_queries,
        )
        self._records.add(record)
        return record

    # -- pages --------------------------------------------------------------------------------

    def environment(self) -> jinja2.Environment:
        """The Jinja2 environment of the inspector's pages (its own: never recorded)."""
        env = self._env
        if env is None:
            from trellis.contrib.inspector.routes import make_environment

            env = self._env = make_environment()
        return env

    def __repr__(self) -> str:
        return f"Inspector(max_requests={self._records.size}, prefix={self.prefix!r})"
