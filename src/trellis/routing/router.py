"""Routes, mounts and routers (blueprints): what an application declares.

A ``Router`` collects routes under a prefix, a name prefix, tags, middleware, dependencies, hooks
and an optional host pattern; routers include other routers. Nothing here matches requests:
``App`` flattens every router into the compiled matcher once, at start-up.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from trellis.exceptions import ConfigurationError
from trellis.types import ASGIApp

__all__ = ["Mount", "Route", "Router"]

F = TypeVar("F", bound=Callable[..., Any])

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNSET: Any = object()


@dataclass(slots=True)
class Route:
    """One handler for some methods on one path, as declared (before flattening).

    Attributes:
        path: The path template, relative to the router's prefix.
        endpoint: The handler function (or bound method of a view).
        methods: Upper-case HTTP methods.
        name: The route name for ``url_for``; defaults to the handler's ``__name__``.
        options: Everything else given to the decorator (``max_body_size``, ``status_code``,
            ``summary`` ...), read by later build steps.
    """

    path: str
    endpoint: Callable[..., Any]
    methods: frozenset[str]
    name: str | None = None
    middleware: tuple[Any, ...] = ()
    dependencies: tuple[Any, ...] = ()
    tags: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    #: The names visible where the handler was declared, for annotations that refer to local
    #: classes or providers (a handler defined inside a function or a test).
    localns: dict[str, Any] | None = None

    @property
    def where(self) -> str:
        """``module.qualname`` of the handler, for messages."""
        return describe_handler(self.endpoint)


def describe_handler(fn: Any) -> str:
    """``module.qualname`` of a handler (a function, method, partial or callable object)."""
    suffix = ""
    while isinstance(fn, functools.partial):
        fn, suffix = fn.func, " (partial)"
    if not hasattr(fn, "__qualname__") and callable(fn):
        fn = type(fn)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}{suffix}"


def default_name(fn: Any) -> str:
    """The route name a handler gets when none is given: its ``__name__``.

    A ``functools.partial`` is named after the function it wraps, a callable object after its
    class.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None)
    if name is None:
        name = type(fn).__name__
    return str(name)


@dataclass(slots=True)
class Mount:
    """Any ASGI application served under a path prefix.

    The mounted app sees ``root_path`` extended by the prefix and the full ``path``.
    """

    path: str
    app: ASGIApp
    name: str | None = None


class Router:
    """A group of routes: a blueprint.

    Args:
        prefix: Prepended to every path in the router (``"/api"``).
        name: Prepended with a dot to every route name (``"api"`` gives ``"api.list_users"``).
        tags: Added to every route (for the API docs).
        middleware: ASGI middleware applied to these routes only, outermost first.
        dependencies: Callables run before every handler of the router.
        host: Serve these routes only for a matching ``Host`` (``"{tenant}.example.com"``);
            host parameters join the path parameters.
        templates: A folder of templates for this router, searched after the app's own.

    Example:
        ```python
        from trellis import App, Router
        from trellis.testing import TestClient

        api = Router("/api", name="api")


        @api.get("/users/{id:int}")
        async def get_user(id: int) -> dict[str, int]:
            return {"id": id}


        app = App()
        app.include(api)

        with TestClient(app) as client:
            assert client.get("/api/users/7").json() == {"id": 7}
        ```
    """

    def __init__(
        self,
        prefix: str = "",
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
        middleware: Sequence[Any] = (),
        dependencies: Sequence[Any] = (),
        host: str | None = None,
        templates: str | os.PathLike[str] | None = None,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigurationError(
                f"router prefix {prefix!r} must start with '/' and not end with '/'"
            )
        self.prefix = prefix
        self.name = name
        self.tags = tuple(tags)
        self.middleware = tuple(middleware)
        self.dependencies = tuple(dependencies)
        self.host = host
        self.templates = os.fspath(templates) if templates is not None else None
        self.routes: list[Route] = []
        self.mounts: list[Mount] = []
        self.children: list[tuple[Router, str]] = []
        self.before_request_hooks: list[Callable[..., Any]] = []
        self.after_request_hooks: list[Callable[..., Any]] = []
        # The applications that folded this router in (see ``flatten``): once one of them is
        # built, a change here would be silently ignored, so it is refused instead.
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()

    # -- registration -----------------------------------------------------------------------

    def _check_open(self, method: str) -> None:
        """Refuse changes once an application that includes this router has been built.

        ``App`` overrides this for its own registrations.
        """
        for owner in self._owners:
            if getattr(owner, "_built", False):
                from trellis.exceptions import AppFrozenError

                raise AppFrozenError(
                    f"Router.{method}() was called on a router that an application already"
                    " serves (it was built on start-up or by the first request); register"
                    " routes, hooks and included routers before then"
                )

    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        methods: Iterable[str] | None = None,
        *,
        name: str | None = None,
        middleware: Sequence[Any] = (),
        dependencies: Sequence[Any] = (),
        tags: Sequence[str] = (),
        **options: Any,
    ) -> None:
        """Register ``endpoint`` for ``methods`` on ``path`` (see ``route``).

        ``methods`` defaults to ``GET`` for a function, and to every verb it defines for a
        view class.
        """
        self._check_open("add_route")
        if inspect.isclass(endpoint):
            from trellis.handlers.views import view_routes

            for method, bound in view_routes(endpoint, methods):
                self.add_route(
                    path,
                    bound,
                    (method,),
                    name=name or endpoint.__name__,
                    middleware=middleware,
                    dependencies=dependencies,
                    tags=tags,
                    **options,
                )
            return
        if not callable(endpoint):
            raise ConfigurationError(f"route {path!r}: the handler {endpoint!r} is not callable")
        if methods is None:
            methods = ("GET",)
        elif isinstance(methods, str):
            methods = (methods,)
        upper = frozenset(m.upper() for m in methods)
        unknown = upper - HTTP_METHODS
        if unknown:
            raise ConfigurationError(
                f"route {path!r}: unknown HTTP method(s) {', '.join(sorted(unknown))}"
            )
        if not upper:
            raise ConfigurationError(f"route {path!r}: no methods given")
        self.routes.append(
            Route(
                path,
                endpoint,
                upper,
                name,
                tuple(middleware),
                tuple(dependencies),
                tuple(tags),
                options,
            )
        )

    def route(
        self, path: str, methods: Iterable[str] | None = None, **options: Any
    ) -> Callable[[F], F]:
        """Decorator: register the function (or view class) for ``methods`` on ``path``.

        Args:
            path: The path; ``{name}`` or ``{name:converter}`` capture parameters.
            methods: HTTP methods; ``GET`` for a function and every verb a view class defines
                when not given (``HEAD`` is answered for every ``GET`` automatically).
            **options: ``name``, ``middleware``, ``dependencies``, ``tags``, ``max_body_size``
                (bytes, or ``None`` for no limit), ``status_code``, ``csrf=False`` (no
                automatic CSRF check: a webhook called by another server), and options read
                by the typed-API layer.
        """
        self._check_open("route")
        return self._decorator(path, methods, options)

    def _decorator(
        self, path: str, methods: Iterable[str] | None, options: dict[str, Any]
    ) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            before = len(self.routes)
            self.add_route(path, fn, methods, **options)
            self._remember_namespace(before, sys._getframe(1))
            return fn

        return decorator

    def _remember_namespace(self, first: int, caller: Any) -> None:
        # The locals where the handler was declared resolve annotations that name local types
        # and providers (a handler inside a function or a test); module globals need nothing.
        if caller.f_code.co_name != "<module>":
            localns = dict(caller.f_locals)
            for route in self.routes[first:]:
                route.localns = localns

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        """Decorator: a ``GET`` (and ``HEAD``) route."""
        self._check_open("get")
        return self._decorator(path, ("GET",), options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        """Decorator: a ``POST`` route."""
        self._check_open("post")
        return self._decorator(path, ("POST",), options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        """Decorator: a ``PUT`` route."""
        self._check_open("put")
        return self._decorator(path, ("PUT",), options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        """Decorator: a ``PATCH`` route."""
        self._check_open("patch")
        return self._decorator(path, ("PATCH",), options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        """Decorator: a ``DELETE`` route."""
        self._check_open("delete")
        return self._decorator(path, ("DELETE",), options)

    def options(self, path: str, **options: Any) -> Callable[[F], F]:
        """Decorator: an explicit ``OPTIONS`` route (otherwise answered automatically)."""
        self._check_open("options")
        return self._decorator(path, ("OPTIONS",), options)

    def websocket(self, path: str, **options: Any) -> Callable[[F], F]:
        """Decorator: a websocket route; the handler is ``async def`` and takes a ``WebSocket``.

        Its other parameters are read like an HTTP handler's (path, query, headers, cookies,
        dependencies); a value that does not validate refuses the handshake with 422.
        """

        def decorator(fn: F) -> F:
            self._check_open("websocket")
            before = len(self.routes)
            self.routes.append(
                Route(
                    path,
                    fn,
                    frozenset({"WEBSOCKET"}),
                    options.pop("name", None),
                    tuple(options.pop("middleware", ())),
                    tuple(options.pop("dependencies", ())),
                    tuple(options.pop("tags", ())),
                    options,
                )
            )
            self._remember_namespace(before, sys._getframe(1))
            return fn

        return decorator

    def include(self, router: Router, *, prefix: str = "") -> None:
        """Include ``router`` (and its own included routers) under this one.

        Args:
            router: The router to include.
            prefix: An extra prefix before the router's own.
        """
        self._check_open("include")
        if router is self:
            raise ConfigurationError("a router cannot include itself")
        if not isinstance(router, Router) or callable(router):
            raise ConfigurationError(
                f"include() takes a Router, got {router!r}; serve an application (an ASGI"
                " callable) under a path with mount(path, app)"
            )
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigurationError(
                f"include prefix {prefix!r} must start with '/' and not end with '/'"
            )
        self.children.append((router, prefix))

    def mount(self, path: str, app: ASGIApp, *, name: str | None = None) -> None:
        """Serve any ASGI application under ``path`` (``"/legacy"``).

        ``url_for(name, path="x")`` builds URLs into it when ``name`` is given.
        """
        self._check_open("mount")
        if not path.startswith("/") or (path.endswith("/") and path != "/"):
            raise ConfigurationError(
                f"mount path {path!r} must start with '/' and not end with '/'"
            )
        if not callable(app):
            raise ConfigurationError(f"mount {path!r}: {app!r} is not an ASGI application")
        self.mounts.append(Mount(path.rstrip("/") or "", app, name))

    def before_request(self, fn: F) -> F:
        """Decorator: run ``fn(request)`` before each handler of this router.

        A hook that returns a value (not ``None``) answers the request with it instead of the
        handler (use it to refuse, redirect, or serve from a cache).
        """
        self._check_open("before_request")
        self.before_request_hooks.append(fn)
        return fn

    def after_request(self, fn: F) -> F:
        """Decorator: run ``fn(request, response)`` after each handler of this router.

        The hook returns the response to send (the same one, changed, or another).
        """
        self._check_open("after_request")
        self.after_request_hooks.append(fn)
        return fn


@dataclass(slots=True)
class FlatRoute:
    """A route with everything from its routers folded in, ready to compile."""

    route: Route
    path: str
    name: str
    host: str | None
    middleware: tuple[Any, ...]
    dependencies: tuple[Any, ...]
    tags: tuple[str, ...]
    before: tuple[Callable[..., Any], ...]
    after: tuple[Callable[..., Any], ...]
    templates: tuple[str, ...]


@dataclass(slots=True)
class FlatMount:
    """A mount with its full path; ``state``: what the app's own lifespan put in its state."""

    path: str
    app: ASGIApp
    name: str | None
    host: str | None
    state: dict[str, Any] | None = None


def flatten(
    router: Router,
    prefix: str = "",
    name_prefix: str = "",
    host: str | None = None,
    middleware: tuple[Any, ...] = (),
    dependencies: tuple[Any, ...] = (),
    tags: tuple[str, ...] = (),
    before: tuple[Callable[..., Any], ...] = (),
    after: tuple[Callable[..., Any], ...] = (),
    templates: tuple[str, ...] = (),
    seen: tuple[Router, ...] = (),
) -> tuple[list[FlatRoute], list[FlatMount]]:
    """Fold ``router`` and its children into flat routes and mounts, outer settings first."""
    if router in seen:
        raise ConfigurationError("routers include each other in a cycle")
    seen = (*seen, router)
    if len(seen) > 1:
        router._owners.add(seen[0])
    prefix = prefix + router.prefix
    if router.name:
        name_prefix = f"{name_prefix}{router.name}."
    if router.host is not None:
        if host is not None and host != router.host:
            raise ConfigurationError(
                f"router with host {router.host!r} is inside a router with host {host!r}"
            )
        host = router.host
    middleware = middleware + router.middleware
    dependencies = dependencies + router.dependencies
    tags = tags + tuple(t for t in router.tags if t not in tags)
    before = before + tuple(router.before_request_hooks)
    # after-hooks run innermost first, like unwinding middleware
    after = tuple(router.after_request_hooks) + after
    if router.templates:
        templates = (router.templates, *templates)
    routes: list[FlatRoute] = []
    mounts: list[FlatMount] = []
    for r in router.routes:
        if not r.path.startswith("/"):
            raise ConfigurationError(f"route path {r.path!r} must start with '/' ({r.where})")
        # "/" inside a prefixed router is the prefix itself: "/api", not "/api/".
        full = prefix + r.path if r.path != "/" else (prefix or "/")
        name = name_prefix + (r.name or default_name(r.endpoint))
        routes.append(
            FlatRoute(
                r,
                full,
                name,
                host,
                middleware + r.middleware,
                dependencies + r.dependencies,
                tags + tuple(t for t in r.tags if t not in tags),
                before,
                after,
                templates,
            )
        )
    for m in router.mounts:
        mname = f"{name_prefix}{m.name}" if m.name else None
        mounts.append(FlatMount(prefix + m.path, m.app, mname, host))
    for child, extra in router.children:
        r2, m2 = flatten(
            child,
            prefix + extra,
            name_prefix,
            host,
            middleware,
            dependencies,
            tags,
            before,
            after,
            templates,
            seen,
        )
        routes += r2
        mounts += m2
    return routes, mounts
