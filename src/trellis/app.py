"""The application: registration, build-then-freeze, and the ASGI entry point.

``App`` is a ``Router`` that also owns settings, middleware, error handlers, the lifespan and
plugins. Everything is compiled once (on lifespan start-up, or on the first request) under a
lock; after that registration raises ``AppFrozenError``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload
from urllib.parse import quote, urlencode

from trellis.datastructures import State
from trellis.exceptions import (
    AppFrozenError,
    ConfigurationError,
    HTTPError,
    MethodNotAllowedError,
    NotFoundError,
    RequestHeaderFieldsTooLargeError,
    RouteConflictError,
    URLBuildError,
)
from trellis.handlers.compile import (
    Endpoint,
    WebSocketEndpoint,
    coerce_response,
    compile_route,
    compile_websocket_route,
)
from trellis.http.errors import error_response, server_error_response, wants_html
from trellis.http.request import Request
from trellis.http.response import RedirectResponse, Response
from trellis.routing._matcher import Leaf, Matcher
from trellis.routing._template import HostTemplate, PathTemplate
from trellis.routing.matched import MatchedRoute
from trellis.routing.router import FlatMount, FlatRoute, Router, flatten
from trellis.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from contextvars import ContextVar, Token
    from datetime import timedelta

    from trellis.config import Settings
    from trellis.csrf import TrustedOrigins
    from trellis.http.forms import FormLimits
    from trellis.http.proxy import TrustedProxies
    from trellis.middleware.request_id import RequestIDMiddleware
    from trellis.middleware.sessions import _Layer
    from trellis.sessions import SessionConfig
    from trellis.tasks import Backoff, Schedule, Task, TaskRegistry

__all__ = ["App", "ErrorReporter"]

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("trellis.error")

Lifespan = Callable[["App"], contextlib.AbstractAsyncContextManager[Mapping[str, Any] | None]]
#: ``await reporter(request, exc, request_id)`` for an unhandled exception: the id of the
#: error ticket it stored (shown to the client), or ``None``.
ErrorReporter = Callable[[Request, BaseException, str], Awaitable[str | None]]

# What an error reporter's ticket id may look like: it goes into a header and the error page.
_TICKET_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")


class _Target:
    """What a leaf holds per method: the ASGI callable, its path values' names, the route."""

    __slots__ = ("asgi", "endpoint", "param_names", "route")

    def __init__(
        self,
        asgi: ASGIApp,
        param_names: tuple[str, ...],
        endpoint: Endpoint | WebSocketEndpoint | None,
        route: MatchedRoute,
    ):
        self.asgi = asgi
        self.param_names = param_names
        self.endpoint = endpoint
        self.route = route


class _HostGroup:
    __slots__ = ("host", "matcher", "mounts")

    def __init__(self, host: HostTemplate) -> None:
        self.host = host
        self.matcher = Matcher()
        self.mounts: list[FlatMount] = []


class App(Router):
    """A Trellis application: an ASGI 3 callable.

    Args:
        settings: Settings to use; by default they are loaded from ``TRELLIS_*`` environment
            variables, ``.env`` and ``trellis.toml`` (see ``trellis.config``).
        debug: Shortcut for the ``debug`` setting (tracebacks in error pages).
        lifespan: An async context manager factory ``lifespan(app)`` run around serving; what
            it yields (a dict, optional) is added to ``app.state``.
        middleware: ASGI middleware for every request, outermost first: ``Middleware`` specs
            or ``(cls, options)`` pairs (see ``add_middleware``).
        dependencies: Dependencies run before every handler (``Depends(check)`` or plain
            callables), on HTTP and websocket routes alike.
        **settings_overrides: Other setting values (``max_body_size=...``).

    Example:
        ```python
        from trellis import App

        app = App()

        @app.get("/")
        async def index() -> str:
            return "Hello, World!"

        if __name__ == "__main__":
            app.run()
        ```
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        debug: bool | None = None,
        lifespan: Lifespan | None = None,
        middleware: Sequence[Any] = (),
        dependencies: Sequence[Any] = (),
        **settings_overrides: Any,
    ) -> None:
        super().__init__(dependencies=dependencies)
        if settings is None:
            from trellis.config import load_settings

            if debug is not None:
                settings_overrides["debug"] = debug
            settings = load_settings(**settings_overrides)
        elif debug is not None or settings_overrides:
            settings = settings.replace(
                **settings_overrides, **({} if debug is None else {"debug": debug})
            )
        self.settings: Settings = settings
        self.state = State()
        self._lifespan_factory = lifespan
        self._middleware: list[Any] = list(middleware)
        self._startup: list[Callable[..., Any]] = []
        self._shutdown: list[Callable[..., Any]] = []
        self._exception_handlers: dict[type[BaseException] | int, Callable[..., Any]] = {}
        self._error_reporters: list[ErrorReporter] = []
        self._plugins: list[Any] = []
        self._commands: list[Any] = []
        self._lock = threading.Lock()
        self._built = False
        self._stack: ASGIApp | None = None
        self._entry: ASGIApp | None = None
        self._fast = False
        # The built-in layer (sessions + security headers), built with the app.
        self._layer: _Layer | None = None
        # Gives each request its id (the request_id setting).
        self._request_ids: RequestIDMiddleware | None = None
        self._request_id_var: ContextVar[str | None] | None = None
        self._preload = False
        self._session_config: SessionConfig | None = None
        self._csrf_origins: TrustedOrigins | None = None
        self._known_hosts: set[bytes] | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        # Filled by build():
        self._matcher = Matcher()
        self._static = self._matcher.static
        self._hosts: list[_HostGroup] = []
        self._mounts: list[FlatMount] = []
        self._names: dict[str, list[tuple[PathTemplate, FlatRoute]]] = {}
        self._mount_names: dict[str, FlatMount] = {}
        self._mount_routes: dict[int, MatchedRoute] = {}
        self._routes: list[FlatRoute] = []
        self._endpoints: list[Endpoint | WebSocketEndpoint] = []
        self._executor: ThreadPoolExecutor | None = None
        self._proxies: TrustedProxies | None = None
        self._form_limits: FormLimits | None = None
        self._max_body_size: int | None = settings.max_body_size
        self._max_headers: int = settings.max_headers
        self._max_upload_size: int | None = settings.max_upload_size
        self.templates: Any = None
        self._openapi: dict[str, Any] | None = None
        #: Title, version and description of the API document (``app.openapi()``).
        self.openapi_info: dict[str, Any] = {"title": "Trellis API", "version": "0.1.0"}
        #: Replace a dependency's provider, for tests: ``{get_db: get_test_db}``.
        self.dependency_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._app_dependencies: dict[Callable[..., Any], Any] = {}
        self._override_plans: dict[Callable[..., Any], Any] = {}
        self._template_sources: list[Any] = []
        self._tasks: TaskRegistry | None = None

    # -- settings shortcuts -----------------------------------------------------------------

    @property
    def debug(self) -> bool:
        """Whether the app runs in debug (development) mode."""
        return bool(self.settings.debug)

    # -- registration -------------------------------------------------------------------------

    def _check_open(self, method: str) -> None:
        if self._built:
            raise AppFrozenError(
                f"App.{method}() was called after the application started serving; register"
                " routes, middleware, hooks and plugins before the first request (at import"
                " time or in a create_app() factory)"
            )

    def add_middleware(self, middleware: Any, /, **options: Any) -> None:
        """Wrap every request in ASGI ``middleware`` (a class called as ``cls(app, **options)``).

        The last added runs first (outermost). The chain is built once at start-up.
        """
        self._check_open("add_middleware")
        self._middleware.insert(0, (middleware, options))

    def exception_handler(self, exc_or_status: type[BaseException] | int) -> Callable[[F], F]:
        """Decorator: handle an exception class (and subclasses) or an HTTP error status.

        The handler is called as ``handler(request, exc)`` and returns a response or a value
        that becomes one. Example: ``@app.exception_handler(404)``.
        """
        self._check_open("exception_handler")

        def decorator(fn: F) -> F:
            self._exception_handlers[exc_or_status] = fn
            return fn

        return decorator

    def add_error_reporter(self, reporter: ErrorReporter) -> None:
        """Report every unhandled exception (a 500, not an ``HTTPError``) to ``reporter``.

        It is awaited as ``reporter(request, exc, request_id)`` before the 500 is sent, in
        debug mode too (the reporter decides), and returns the id of the error ticket it
        stored, or ``None``. The client then sees "Error ticket <id>" instead of the request
        id (``trellis.contrib.tickets`` is such a reporter). A reporter that raises, or returns
        an id that is not 1-128 URL-safe characters, is logged and skipped: the client still
        gets its 500.
        """
        self._check_open("add_error_reporter")
        self._error_reporters.append(reporter)

    def on_startup(self, fn: F) -> F:
        """Decorator: run ``fn()`` (sync or async) when the server starts, before serving."""
        self._check_open("on_startup")
        self._startup.append(fn)
        return fn

    def on_shutdown(self, fn: F) -> F:
        """Decorator: run ``fn()`` (sync or async) when the server stops."""
        self._check_open("on_shutdown")
        self._shutdown.append(fn)
        return fn

    def install(self, plugin: Any) -> Any:
        """Install a plugin: an object with ``setup(app)`` that adds routes, middleware, hooks.

        Returns the plugin, so ``db = app.install(Database(url))`` reads naturally.
        """
        self._check_open("install")
        setup = getattr(plugin, "setup", None)
        if setup is None or not callable(setup):
            raise ConfigurationError(f"{plugin!r} is not a plugin: it has no setup(app) method")
        self._plugins.append(plugin)
        setup(self)
        return plugin

    @property
    def plugins(self) -> tuple[Any, ...]:
        """The installed plugins, in order."""
        return tuple(self._plugins)

    def static(self, path: str, directory: str, *, name: str = "static", **options: Any) -> None:
        """Serve the files of ``directory`` under ``path`` (``app.static("/static", "static")``).

        ``url_for("static", path="css/site.css")`` builds their URLs. Options go to
        ``trellis.static.StaticFiles``.
        """
        from trellis.static import StaticFiles

        self.mount(path, StaticFiles(directory, **options), name=name)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """Decorator: add a command to the ``trellis`` CLI for this app (a click command)."""
        self._check_open("command")
        import click

        def decorator(fn: F) -> F:
            cmd = click.command(*args, **kwargs)(fn)
            self._commands.append(cmd)
            return fn

        return decorator

    def add_command(self, command: Any) -> None:
        """Add a ready click command or group to the ``trellis`` CLI for this app.

        Plugins use it in ``setup(app)``: ``app.add_command(db_group)`` gives ``trellis db``.
        """
        self._check_open("add_command")
        self._commands.append(command)

    @property
    def commands(self) -> tuple[Any, ...]:
        """The click commands the app adds to the CLI."""
        return tuple(self._commands)

    # -- tasks (trellis.tasks, imported on first use) --------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        retries: int = 3,
        backoff: Backoff | float | None = None,
        timeout: float | timedelta | None = None,
        schedule: Schedule | str | timedelta | float | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Decorator: make a function (async, or sync for the thread pool) a ``Task``.

        ``await fn.send(...)`` then runs it later on the app's task backend, checking the
        arguments against the type hints first; calling it still runs it directly. Options:
        ``name`` (default: the function's qualified name), ``retries`` (3: attempts after the
        first), ``backoff`` (a ``trellis.tasks.Backoff`` or the first wait in seconds),
        ``timeout`` (seconds per attempt) and ``schedule`` (a cron string or an interval, as
        for ``periodic``). See ``trellis.tasks``.
        """
        return self.tasks.task(fn, **options)

    def periodic(
        self, schedule: Schedule | str | timedelta | float, /, **options: Any
    ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """Decorator: a task that runs on ``schedule`` (``"*/5 * * * *"`` or a timedelta).

        Options as for ``task``, plus ``tz`` (the time zone of a cron expression; UTC by
        default).
        """
        return self.tasks.periodic(schedule, **options)

    @property
    def tasks(self) -> TaskRegistry:
        """The app's tasks and their backend (``trellis.tasks.TaskRegistry``)."""
        if self._tasks is None:
            from trellis.tasks import TaskRegistry

            self._tasks = TaskRegistry(self)
        return self._tasks

    # -- build ---------------------------------------------------------------------------------

    def build(self) -> None:
        """Compile routes, handlers and middleware; after this the app is frozen.

        Called for you on start-up or on the first request. Every mistake in how routes and
        handlers are declared (clashing routes, bad signatures) raises here; the settings are
        checked when serving starts (``startup()`` or the first request).
        """
        with self._lock:
            if self._built:
                return
            self._build()
            self._built = True

    def _build(self) -> None:
        settings = self.settings
        from trellis.http.forms import FormLimits

        self._form_limits = FormLimits(
            max_fields=settings.max_form_fields,
            max_parts=settings.max_form_parts,
            max_file_size=settings.max_file_size,
            max_field_size=settings.max_form_field_size,
            max_form_memory=settings.max_form_memory,
            spool_threshold=settings.form_spool_threshold,
        )
        self._max_upload_size = settings.max_upload_size
        self._max_body_size = settings.max_body_size
        self._max_headers = settings.max_headers
        if settings.trusted_proxies:
            from trellis.http.proxy import TrustedProxies

            self._proxies = TrustedProxies(settings.trusted_proxies)
        self._ensure_executor()
        self._build_protections()
        routes, mounts = flatten(self)
        self._routes = routes
        self._bind_templates()
        hosts: dict[str, _HostGroup] = {}
        names: dict[str, list[tuple[PathTemplate, FlatRoute]]] = {}
        for flat in routes:
            template = PathTemplate(flat.path, flat.route.where)
            if flat.host is None:
                matcher = self._matcher
            else:
                group = hosts.get(flat.host)
                if group is None:
                    group = hosts[flat.host] = _HostGroup(HostTemplate(flat.host))
                matcher = group.matcher
            host_names = hosts[flat.host].host.names if flat.host is not None else ()
            clash = set(template.param_names) & set(host_names)
            if clash:
                raise ConfigurationError(
                    f"route {flat.path!r} ({flat.route.where}) and its host {flat.host!r} both"
                    f" define the parameter(s) {', '.join(repr(n) for n in sorted(clash))};"
                    " rename one"
                )
            path_types: dict[str, type | None] = {
                name: template.converters[name].python_type for name in template.param_names
            }
            path_types.update(dict.fromkeys(host_names, str))
            endpoint = (
                compile_websocket_route(self, flat, path_types)
                if "WEBSOCKET" in flat.route.methods
                else compile_route(self, flat, path_types)
            )
            self._endpoints.append(endpoint)
            asgi: ASGIApp = endpoint
            for mw in reversed(flat.middleware):
                asgi = _build_middleware(mw, asgi)
            if flat.middleware:
                asgi = _ErrorGuard(asgi, self)
            matched = MatchedRoute(flat.path, flat.name, flat.route.endpoint)
            for method in sorted(flat.route.methods):
                matcher.add(
                    template,
                    method,
                    _Target(asgi, template.param_names, endpoint, matched),
                    f"{flat.route.where} ({method} {flat.path})",
                )
            existing = names.setdefault(flat.name, [])
            for other_template, other in existing:
                if other.route.endpoint is not flat.route.endpoint and (
                    getattr(other.route.endpoint, "__self__", None) is None
                    or getattr(other.route.endpoint, "__self__", None)
                    is not getattr(flat.route.endpoint, "__self__", None)
                ):
                    raise RouteConflictError(
                        f"two routes are named {flat.name!r}: {other.route.where} for"
                        f" {other_template.path!r} and {flat.route.where} for {flat.path!r};"
                        " pass name=... to one of them"
                    )
            existing.append((template, flat))
        self._names = names
        for flat_mount in mounts:
            if flat_mount.name:
                if flat_mount.name in names or flat_mount.name in self._mount_names:
                    raise RouteConflictError(
                        f"the mount at {flat_mount.path!r} is named {flat_mount.name!r}, a name"
                        " already used by another route or mount"
                    )
                self._mount_names[flat_mount.name] = flat_mount
            self._mount_routes[id(flat_mount)] = MatchedRoute(
                flat_mount.path + "/*", flat_mount.name
            )
            if flat_mount.host is None:
                self._mounts.append(flat_mount)
            else:
                group = hosts.get(flat_mount.host)
                if group is None:
                    group = hosts[flat_mount.host] = _HostGroup(HostTemplate(flat_mount.host))
                group.mounts.append(flat_mount)
        # Longest prefix first, so "/static/admin" wins over "/static".
        self._mounts.sort(key=lambda m: -len(m.path))
        for group in hosts.values():
            group.mounts.sort(key=lambda m: -len(m.path))
        self._hosts = list(hosts.values())
        for matcher in [self._matcher, *(g.matcher for g in self._hosts)]:
            for leaf in matcher.leaves():
                _complete_leaf(leaf)
        stack: ASGIApp = self._dispatch
        if self._middleware:
            for mw in reversed(self._middleware):
                stack = _build_middleware(mw, stack)
            stack = _ErrorGuard(stack, self)
        host_patterns = _host_patterns(settings.allowed_hosts, debug=settings.debug)
        self._known_hosts = None
        if host_patterns is not None:
            from trellis.middleware.hosts import TrustedHostMiddleware

            # Outermost: a forged Host never reaches middleware that builds URLs from it.
            guard = TrustedHostMiddleware(stack, allowed_hosts=host_patterns, www_redirect=False)
            stack = guard
            # PERF: __call__ lets a Host the guard already accepted skip the guard's frame.
            self._known_hosts = guard._known
        self._stack = stack
        self._entry = stack
        if self._layer is not None:
            # Outermost, so every answer (a refused host, a middleware's 500) gets the headers.
            self._layer.app = stack
            self._entry = self._layer
        self._fast = not self._middleware and not self._hosts
        self._request_ids = None
        if settings.request_id:
            from trellis.middleware.request_id import RequestIDMiddleware, request_id_var

            self._request_ids = RequestIDMiddleware(
                self,
                trust_incoming=settings.trust_request_id,
                echo=settings.request_id_header,
            )
            self._request_id_var = request_id_var

    def _build_protections(self) -> None:
        """Build the session settings, the trusted CSRF origins and the built-in layer."""
        settings = self.settings
        sessions = None
        if settings.sessions:
            from trellis.sessions import SessionConfig

            sessions = SessionConfig(
                settings.effective_secret_key,
                cookie_name=settings.session_cookie,
                max_age=settings.session_max_age,
                sliding=settings.session_sliding,
                secure=settings.session_cookie_secure,
                samesite=settings.session_cookie_samesite,
                domain=settings.session_cookie_domain,
            )
        self._session_config = sessions
        if settings.csrf:
            from trellis.csrf import TrustedOrigins

            self._csrf_origins = TrustedOrigins(settings.csrf_trusted_origins)
        headers: tuple[tuple[bytes, bytes], ...] = ()
        https_headers: tuple[tuple[bytes, bytes], ...] | None = None
        document: tuple[tuple[bytes, bytes], ...] = ()
        if settings.security_headers:
            from trellis.middleware.security import SecurityHeadersMiddleware

            defaults = SecurityHeadersMiddleware(
                self._dispatch,
                content_security_policy=settings.content_security_policy,
                hsts=settings.hsts_seconds or None,
                hsts_include_subdomains=settings.hsts_include_subdomains,
                hsts_preload=settings.hsts_preload,
            )
            # nosniff and HSTS matter on every response; the rest only on pages (documents).
            # PERF: each header costs the server a few hundred ns to write; a JSON API
            # sends one, not five.
            every = {b"x-content-type-options", b"strict-transport-security"}
            headers = tuple(h for h in defaults._http_headers if h[0] in every)
            https_headers = tuple(h for h in defaults._https_headers if h[0] in every)
            document = tuple(h for h in defaults._http_headers if h[0] not in every)
        self._layer = None
        if sessions is not None or headers or document:
            from trellis.middleware.sessions import _Layer

            self._layer = _Layer(
                self._dispatch,
                sessions=sessions,
                headers=headers,
                https_headers=https_headers,
                document_headers=document,
                owner=self,
            )
        self._find_session_store()

    def _find_session_store(self) -> None:
        """Use ``app.state.session_store`` for sessions, if a plugin or the app set one."""
        config = self._session_config
        if config is not None:
            config.set_store(getattr(self.state, "session_store", None))
            self._preload = config.store is not None

    def add_templates(self, source: Any) -> None:
        """Add a template folder or a Jinja2 loader, searched after the app's own folder.

        Plugins call this in ``setup(app)`` to ship their templates (for example a
        ``jinja2.PackageLoader``); the app's ``templates_dir`` still wins for the same name.
        """
        self._check_open("add_templates")
        self._template_sources.append(source)

    def _ensure_executor(self) -> None:
        # Sync handlers run here; re-created when the app starts again after a shutdown.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.settings.thread_pool_size, thread_name_prefix="trellis-worker"
            )

    def _bind_templates(self) -> None:
        sources: list[Any] = []
        if self.settings.templates_dir is not None:
            sources.append(str(self.settings.templates_dir))
        for flat in self._routes:
            sources.extend(d for d in flat.templates if d not in sources)
        sources.extend(s for s in self._template_sources if s not in sources)
        if not sources:
            return
        if self.templates is None:
            from trellis.templating import Templates

            self.templates = Templates(sources, app=self)
        else:
            # A Templates the user built keeps its own folders first; routers' are added after.
            for source in sources:
                if isinstance(source, str):
                    self.templates.add_directory(source)
                else:
                    self.templates.add_loader(source)

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        scope["app"] = self
        token: Token[str | None] | None = None
        ids = self._request_ids
        if ids is not None and scope["type"] != "lifespan" and "trellis.request_id" not in scope:
            # First, so everything below (and the server's access line, written in send) logs
            # with the id. A mounted Trellis app keeps the id of the app it is mounted in.
            # PERF: no middleware frame; try/finally costs nothing until it runs.
            token, send = ids.start(scope, send)
        try:
            if self._fast and scope["type"] == "http":
                # PERF: the common case inlined: no app middleware, a Host already accepted, a
                # static path. One frame less than going through the stack and _dispatch.
                layer = self._layer
                if layer is not None:
                    # PERF: the built-in layer is a wrapper of send, not one more frame.
                    send = layer.wrap(scope, send)
                if len(scope["headers"]) > self._max_headers:
                    await self._too_many_headers(scope, receive, send)
                    return
                if self._preload and layer is not None and layer.must_load(scope):
                    await layer.load(scope)
                known = self._known_hosts
                if known is not None:
                    host: bytes | None = None
                    for name, value in scope["headers"]:
                        if name == b"host":
                            host = value
                            break
                    if host not in known:
                        await self._stack(scope, receive, send)  # type: ignore[misc]
                        return
                if not scope.get("root_path"):
                    leaf = self._static.get(scope["path"])
                    if leaf is not None:
                        target = leaf.targets.get(scope["method"])
                        if target is not None:
                            scope["route"] = target.route
                            await target.asgi(scope, receive, send)
                            return
                await self._dispatch(scope, receive, send)
                return
            stack = self._entry
            if stack is None or scope["type"] == "lifespan":
                if scope["type"] == "lifespan":
                    await self._lifespan(scope, receive, send)
                    return
                self.build()
                self.settings.check()
                stack = self._entry
                assert stack is not None
                if self._request_ids is not None:
                    await self(scope, receive, send)  # the first request gets its id too
                    return
            if scope["type"] == "http" and len(scope["headers"]) > self._max_headers:
                if self._layer is not None:
                    send = self._layer._headers_only(scope, send)
                await self._too_many_headers(scope, receive, send)
                return
            await stack(scope, receive, send)
        finally:
            if token is not None:
                self._request_id_var.reset(token)  # type: ignore[union-attr]

    async def _too_many_headers(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._max_headers
        # Only this many headers are looked at while answering: the rest may be hostile.
        scope["headers"] = list(scope["headers"])[:limit]
        error = RequestHeaderFieldsTooLargeError(
            f"The request has more than {limit} headers (the max_headers setting)"
        )
        await self._send_error(scope, receive, send, error)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope.get("root_path"):
            root = scope["root_path"]
            # Strip the mount point only at a segment boundary: "/st" is not a prefix of "/static".
            if path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
                path = path[len(root) :] or "/"
        if self._hosts:
            host = _host_of(scope)
            for group in self._hosts:
                host_params = group.host.match(host)
                if host_params is not None and await self._route(
                    scope, receive, send, path, group.matcher, group.mounts, host_params
                ):
                    return
        else:
            # PERF: a static path is one dict lookup; no match() call, no tuple, no params.
            leaf = self._static.get(path)
            if leaf is not None and scope["type"] == "http":
                target = leaf.targets.get(scope["method"])
                if target is not None:
                    scope["route"] = target.route
                    await target.asgi(scope, receive, send)
                    return
        await self._route(scope, receive, send, path, self._matcher, self._mounts, None, True)

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        matcher: Matcher,
        mounts: list[FlatMount],
        host_params: dict[str, str] | None,
        final: bool = False,
    ) -> bool:
        is_http = scope["type"] == "http"
        method = scope["method"] if is_http else "WEBSOCKET"
        found = matcher.match(path, method)
        if found is not None:
            leaf, values = found
            target = leaf.targets.get(method)
            if target is not None:
                if values or host_params:
                    params = dict(zip(target.param_names, values, strict=False))
                    if host_params:
                        params.update(host_params)
                    scope["path_params"] = params
                scope["route"] = target.route
                await target.asgi(scope, receive, send)
                return True
            if is_http and leaf.allow:
                scope["route"] = leaf.route
                allowed = leaf.allow.split(", ")
                await self._send_error(scope, receive, send, MethodNotAllowedError(allowed))
                return True
        for mount in mounts:
            mp = mount.path
            if path == mp or path.startswith(mp + "/") or mp == "":
                scope["route"] = self._mount_routes[id(mount)]
                child = dict(scope)
                child["root_path"] = scope.get("root_path", "") + mp
                if mount.state is not None:  # what its own lifespan set up, as a server gives
                    child["state"] = dict(mount.state)
                if host_params:
                    child["path_params"] = dict(host_params)
                await mount.app(child, receive, send)
                return True
        if not final:
            return False
        if scope["type"] == "http":
            alternate = path[:-1] if path.endswith("/") and len(path) > 1 else path + "/"
            matchers = [matcher]
            if self._hosts:
                host = _host_of(scope)
                matchers += [g.matcher for g in self._hosts if g.host.match(host) is not None]
            if any(m.match(alternate) is not None for m in matchers):
                # Re-encode: the decoded path may hold "?" or "#" that must stay in the path.
                target_url = quote(
                    scope.get("root_path", "") + alternate, safe="/:@!$&'()*+,;=~-._"
                )
                query = scope.get("query_string", b"")
                if query:
                    target_url += "?" + query.decode("latin-1")
                await RedirectResponse(target_url, 308)(scope, receive, send)
                return True
            await self._send_error(scope, receive, send, NotFoundError())
        else:
            from trellis.websockets import WebSocket

            await WebSocket(scope, receive, send).deny(404, "No websocket route here")
        return True

    async def _send_error(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        response = await self._error_response(Request(scope, receive), exc)
        await response(scope, receive, send)

    # -- errors ----------------------------------------------------------------------------------

    def _find_handler(self, exc: BaseException) -> Callable[..., Any] | None:
        handlers = self._exception_handlers
        if not handlers:
            return None
        # A handler for the exact status is more specific than one for a base class.
        if isinstance(exc, HTTPError):
            handler = handlers.get(exc.status)
            if handler is not None:
                return handler
        for cls in type(exc).__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                return handler
        return None

    async def _error_response(self, request: Request, exc: BaseException) -> Response:
        handler = self._find_handler(exc)
        if handler is not None:
            try:
                if self.templates is not None:
                    from trellis.templating import bind_request

                    with bind_request(request):
                        result = handler(request, exc)
                        if inspect.isawaitable(result):
                            result = await result
                else:
                    result = handler(request, exc)
                    if inspect.isawaitable(result):
                        result = await result
                status = exc.status if isinstance(exc, HTTPError) else None
                return coerce_response(result, status)
            except Exception as handler_exc:  # the handler itself failed: report both
                handler_exc.__context__ = exc
                exc = handler_exc
        accept = request.headers.get("accept")
        if isinstance(exc, HTTPError):
            try:
                return error_response(exc, html_page=wants_html(accept), instance=request.path)
            except ValueError as render_exc:  # headers with CR/LF: refuse, report as a crash
                render_exc.__context__ = exc
                exc = render_exc
        request_id = _request_id(request.scope)
        ticket = await self._report(request, exc, request_id) if self._error_reporters else None
        log.error(
            "unhandled error in %s %s (request id %s%s)",
            request.scope.get("method"),
            request.scope.get("path"),
            request_id,
            "" if ticket is None else f", error ticket {ticket}",
            exc_info=exc,
            extra={"request_id": request_id, "ticket": ticket},
        )
        return server_error_response(
            exc,
            html_page=wants_html(accept),
            request_id=request_id,
            debug=self.debug,
            ticket=ticket,
        )

    async def _report(self, request: Request, exc: BaseException, request_id: str) -> str | None:
        """Run the error reporters; the first ticket id one returns. Never raises."""
        ticket: str | None = None
        for reporter in self._error_reporters:
            try:
                result = await reporter(request, exc, request_id)
            except Exception as report_exc:
                log.error(
                    "error reporter %r failed (request id %s)",
                    reporter,
                    request_id,
                    exc_info=report_exc,
                    extra={"request_id": request_id},
                )
                continue
            if result is None or ticket is not None:
                continue
            if isinstance(result, str) and _TICKET_ID.fullmatch(result):
                ticket = result
            else:
                log.error(
                    "error reporter %r returned %.80r, not a ticket id (1-128 URL-safe"
                    " characters): ignored (request id %s)",
                    reporter,
                    result,
                    request_id,
                    extra={"request_id": request_id},
                )
        return ticket

    # -- lifespan --------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Build the app, run start-up hooks and enter the lifespan (the server calls this).

        Raises:
            ConfigurationError: the settings are not fit to serve (production without a
                proper secret key ...), or a route or handler is declared wrongly.
        """
        self.build()
        self.settings.check()
        self._ensure_executor()
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        self._exit_stack = stack
        try:
            for hook in self._startup:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            if self._lifespan_factory is not None:
                state = await stack.enter_async_context(self._lifespan_factory(self))
                if state:
                    for key, value in dict(state).items():
                        setattr(self.state, key, value)
            await self._start_mounted_apps(stack)
            # A store set by a start-up hook or the lifespan counts too.
            self._find_session_store()
            if self._tasks is not None:  # last: jobs may use what the hooks set up
                await self._tasks.start()
        except BaseException:
            await stack.__aexit__(None, None, None)
            self._exit_stack = None
            raise

    async def _start_mounted_apps(self, stack: contextlib.AsyncExitStack) -> None:
        """Run the lifespan of every mounted application: started now, shut down with ours.

        A server sends the lifespan events to the outer application only; without this a
        mounted app's start-up (its database pool, its caches) would never run. What its
        start-up puts in ``scope["state"]`` is in the scope of the requests it serves.
        """
        mounts = [*self._mounts, *(m for group in self._hosts for m in group.mounts)]
        if not mounts:
            return
        from trellis.lifespan import Lifespan, LifespanError

        started: dict[int, Lifespan] = {}
        for mount in mounts:
            lifespan = started.get(id(mount.app))
            if lifespan is None:
                lifespan = Lifespan(mount.app)
                try:
                    await lifespan.startup()
                except LifespanError as exc:
                    where = mount.path or "/"
                    message = f"the app mounted at {where!r} failed to start: {exc}"
                    raise LifespanError(message) from None
                started[id(mount.app)] = lifespan
                stack.push_async_callback(lifespan.shutdown)  # in reverse order, before ours
            mount.state = lifespan.state if lifespan.state else None

    async def shutdown(self) -> None:
        """Leave the lifespan and run shut-down hooks (the server calls this)."""
        errors: list[BaseException] = []
        if self._tasks is not None:  # first: running jobs still have the database ...
            try:
                await self._tasks.stop()
            except Exception as exc:
                errors.append(exc)
        if self._exit_stack is not None:
            try:
                await self._exit_stack.__aexit__(None, None, None)
            except Exception as exc:
                errors.append(exc)
            self._exit_stack = None
        for hook in self._shutdown:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                errors.append(exc)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if errors:
            raise errors[0]

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await self.startup()
        except BaseException as exc:
            text = f"Trellis could not start: {type(exc).__name__}: {exc}"
            # A configuration mistake, or a mounted app's failed start-up, is explained by its
            # message; a crash needs its traceback.
            from trellis.lifespan import LifespanError

            explained = isinstance(exc, ConfigurationError | LifespanError)
            trace = None if explained else exc
            logging.getLogger("trellis").error(text, exc_info=trace)
            await send({"type": "lifespan.startup.failed", "message": text})
            if not isinstance(exc, Exception):
                raise
            return
        if "state" in scope:
            scope["state"].update(self.state._state)
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        try:
            await self.shutdown()
        except Exception as exc:
            text = f"Trellis shut down with an error: {type(exc).__name__}: {exc}"
            logging.getLogger("trellis").error(text, exc_info=exc)
            await send({"type": "lifespan.shutdown.failed", "message": text})
            return
        await send({"type": "lifespan.shutdown.complete"})

    def _override_plan(self, provider: Callable[..., Any], scope: str = "request") -> Any:
        """The compiled plan of the override registered for ``provider`` (compiled once)."""
        from trellis.handlers._plan import DependencyPlan, compile_plan
        from trellis.handlers.params import Depends

        override = self.dependency_overrides[provider]
        cached = self._override_plans.get(provider)
        if cached is not None and cached.provider is override and cached.scope == scope:
            return cached
        plan = compile_plan(
            override,
            where=f"override {getattr(override, '__qualname__', repr(override))}",
            path_params={},
            app=self,
            stack=(override,),
        )
        dep = DependencyPlan(Depends(override, scope=scope), plan)  # type: ignore[arg-type]
        self._override_plans[provider] = dep
        return dep

    # -- URLs ------------------------------------------------------------------------------------

    def url_for(self, name: str, /, **params: Any) -> str:
        """Return the path of the route named ``name``.

        Path parameters are filled from ``params``; the rest become the query string
        (lists repeat the key). ``_anchor="x"`` adds a fragment. For a mount (such as
        ``"static"``) pass ``path="css/site.css"``.

        Raises:
            URLBuildError: no route has that name, or a path parameter is missing or invalid.
        """
        if not self._built:
            self.build()
        anchor = params.pop("_anchor", None)
        candidates = self._names.get(name)
        if candidates is None:
            mount = self._mount_names.get(name)
            if mount is None:
                raise URLBuildError(f"no route is named {name!r}")
            sub = str(params.pop("path", "")).lstrip("/")
            url = mount.path + "/" + quote(sub, safe="/-._~!$&'()*+,;=:@")
        else:
            chosen = None
            for template, flat in candidates:
                host_names = HostTemplate(flat.host).names if flat.host else ()
                if all(n in params for n in template.param_names):
                    chosen = (template, host_names)
                    break
            if chosen is None:
                template, _ = candidates[0]
                chosen = (template, ())
            template, host_names = chosen
            url = template.build(params)
            for used in (*template.param_names, *host_names):
                params.pop(used, None)
        if params:
            pairs: list[tuple[str, Any]] = []
            for key, value in params.items():
                if isinstance(value, list | tuple):
                    pairs.extend((key, v) for v in value)
                elif value is not None:
                    pairs.append((key, value))
            if pairs:
                url += "?" + urlencode(pairs)
        if anchor:
            url += "#" + quote(str(anchor))
        return url

    @property
    def endpoints(self) -> tuple[Endpoint | WebSocketEndpoint, ...]:
        """The compiled endpoints (route, handler, parameter plan), built on first access."""
        if not self._built:
            self.build()
        return tuple(self._endpoints)

    def openapi(self) -> dict[str, Any]:
        """Return the OpenAPI 3.1 document of the app (built once, then cached).

        Routes declared with ``include_in_schema=False`` and mounted apps are left out.
        """
        if self._openapi is None:
            from trellis.openapi.builder import build_openapi

            self._openapi = build_openapi(self)
        return self._openapi

    def describe_routes(self) -> list[dict[str, Any]]:
        """Describe every route (method, path, name, handler, host), for ``trellis routes``."""
        if not self._built:
            self.build()
        rows = [
            {
                "method": method,
                "path": flat.path,
                "name": flat.name,
                "handler": flat.route.where,
                "host": flat.host,
            }
            for flat in self._routes
            for method in sorted(flat.route.methods)
        ]
        rows += [
            {
                "method": "*",
                "path": mount.path + "/...",
                "name": mount.name,
                "handler": type(mount.app).__name__,
                "host": mount.host,
            }
            for mount in self._mounts
        ]
        return rows

    # -- serving ---------------------------------------------------------------------------------

    def run(self, host: str | None = None, port: int | None = None, **options: Any) -> None:
        """Serve the app with the built-in server (uvicorn) until interrupted.

        ``app.run()`` is the development server of a single-file app: unless ``debug`` was set
        explicitly (``App(debug=...)`` or ``TRELLIS_DEBUG``), it turns debug mode on, so a
        five-line app runs without a secret key. Deploy with ``trellis run module:app`` (or
        any ASGI server), which keeps production defaults.

        Args:
            host: Address to bind (default: the ``server_host`` setting, 127.0.0.1).
            port: Port (default: the ``server_port`` setting, 8000).
            **options: Passed to ``trellis.server.serve`` (``log_level``, ``access_log`` ...).
        """
        from trellis.server import cli_is_importing, serve

        if cli_is_importing():
            # `trellis run file.py` imports this module: the command serves the app itself,
            # with the settings it was given, so do not switch debug on here.
            serve(self)
            return
        if "debug" not in self.settings.model_fields_set and not self._built:
            self.settings = self.settings.replace(debug=True)
            logging.getLogger("trellis").warning(
                "app.run() starts the development server with debug on; set TRELLIS_DEBUG=0"
                " and TRELLIS_SECRET_KEY, or use `trellis run module:app`, in production"
            )
        if options.get("binds") is not None:  # the addresses are all in binds
            serve(self, host, port, **options)
            return
        serve(
            self,
            host=host or self.settings.server_host,
            port=self.settings.server_port if port is None else port,
            **options,
        )


def _complete_leaf(leaf: Leaf) -> None:
    """Add HEAD for GET, automatic OPTIONS, and the ``Allow`` value."""
    targets = leaf.targets
    leaf.route = MatchedRoute(leaf.template.path)
    if "GET" in targets and "HEAD" not in targets:
        get = targets["GET"]
        targets["HEAD"] = _Target(_HeadOnly(get.asgi), get.param_names, get.endpoint, get.route)
    http_methods = {m for m in targets if m != "WEBSOCKET"}
    if not http_methods:
        return  # a websocket-only path: plain HTTP requests to it are 404
    allowed = sorted({*http_methods, "OPTIONS"})
    leaf.allow = ", ".join(allowed)
    if "OPTIONS" not in targets:
        targets["OPTIONS"] = _Target(_Options(leaf.allow), (), None, leaf.route)


class _HeadOnly:
    """Answer HEAD with the GET handler, dropping the body but keeping the headers."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_headers_only(message: Any) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(scope, receive, send_headers_only)


class _Options:
    """Automatic OPTIONS: 204 with ``Allow``."""

    __slots__ = ("headers",)

    def __init__(self, allow: str) -> None:
        self.headers = [(b"allow", allow.encode()), (b"content-length", b"0")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": self.headers})
        await send({"type": "http.response.body", "body": b""})


class _ErrorGuard:
    """Outermost layer when middleware exists: turn a middleware's crash into a 500."""

    __slots__ = ("app", "owner")

    def __init__(self, app: ASGIApp, owner: App) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                log.error("error after the response started", exc_info=exc)
                raise
            response = await self.owner._error_response(Request(scope, receive), exc)
            await response(scope, receive, send)


def _build_middleware(spec: Any, app: ASGIApp) -> ASGIApp:
    build = getattr(spec, "build", None)
    if build is not None and callable(build):
        return build(app)  # type: ignore[no-any-return]
    if isinstance(spec, tuple):
        cls, options = spec
        return cls(app, **options)  # type: ignore[no-any-return]
    if callable(spec):
        return spec(app)  # type: ignore[no-any-return]
    raise ConfigurationError(f"{spec!r} is not middleware")


# Production with no allowed_hosts answers only to the local machine and to TestClient.
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")


def _host_patterns(allowed: Sequence[str], *, debug: bool) -> list[str] | None:
    """Host patterns to enforce, or ``None`` when any host is accepted.

    ``"example.com"`` is exact, ``".example.com"`` is the domain and all its subdomains,
    ``"*"`` is any host. In debug mode an empty list accepts any host; in production it
    accepts only the local machine (``localhost``, ``127.0.0.1``, ``[::1]``, ``testserver``).
    """
    if not allowed:
        return None if debug else list(_LOCAL_HOSTS)
    if "*" in allowed:
        return None
    patterns: list[str] = []
    for host in allowed:
        if host.startswith("."):
            patterns += [host[1:], "*" + host]
        else:
            patterns.append(host)
    return patterns


def _host_of(scope: Scope) -> str:
    for k, v in scope.get("headers", ()):
        if k == b"host":
            return str(v.decode("latin-1"))
    return ""


def _request_id(scope: Scope) -> str:
    state = scope.get("state")
    if state and state.get("request_id"):
        return str(state["request_id"])
    rid = scope.get("trellis.request_id")
    if rid:
        return str(rid)
    return uuid.uuid4().hex
