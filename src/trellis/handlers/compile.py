"""Turn a declared route into an endpoint: an ASGI callable specialised once, at start-up.

Per request the endpoint only runs what its handler needs: handlers without parameters skip
extraction, handlers that take only path values get them as they are, routes without hooks skip
the hook loops, and the common return types (``str``, ``dict``, ``list``, a declared model) are
written straight to the ASGI ``send`` with pre-encoded headers.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trellis.csrf import UNSAFE_METHODS, check_request, origin_allowed
from trellis.exceptions import ConfigurationError
from trellis.handlers._plan import (
    DependencyPlan,
    Plan,
    RequestValidationError,
    _Context,
    _hints,
    compile_plan,
)
from trellis.handlers.params import Depends
from trellis.http import _json
from trellis.http.request import ClientDisconnectedError, Request
from trellis.http.response import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from trellis.types import Receive, Scope, Send

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.routing.router import FlatRoute

__all__ = [
    "Endpoint",
    "WebSocketEndpoint",
    "coerce_response",
    "compile_route",
    "compile_websocket_route",
]

_TEXT_CT = (b"content-type", b"text/plain; charset=utf-8")
_JSON_CT = (b"content-type", b"application/json")

# How the handler is called
_NO_ARGS = 0  # fn()
_PATH_ONLY = 1  # fn(**path_params): parameter names are exactly the path parameters
_PLAN = 2  # fn(**kwargs) built from the plan


def coerce_response(result: Any, status_code: int | None = None) -> Response:
    """Turn a handler's return value into a ``Response``.

    ``Response`` as is; ``str`` as ``text/plain``; ``bytes`` as ``application/octet-stream``;
    ``None`` as an empty 204; objects with ``__html__`` (Jinja2 markup) as HTML; everything else
    (dicts, lists, pydantic models, dataclasses ...) as JSON.
    """
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(None, status_code or 204)
    if isinstance(result, str):
        if hasattr(result, "__html__"):
            return HTMLResponse(str(result), status_code or 200)
        return PlainTextResponse(result, status_code or 200)
    if isinstance(result, bytes | bytearray | memoryview):
        return Response(bytes(result), status_code or 200, media_type="application/octet-stream")
    return JSONResponse(result, status_code or 200)


class Endpoint:
    """The compiled form of one route for one method: an ASGI callable."""

    __slots__ = (
        "_request_var",
        "after",
        "app",
        "before",
        "csrf",
        "dependencies",
        "direct",
        "encoder",
        "fn",
        "is_async",
        "max_body_size",
        "max_upload_size",
        "mode",
        "name",
        "needs_request",
        "param_names",
        "path",
        "plan",
        "renderers",
        "route",
        "simple",
        "status_code",
    )

    def __init__(self, app: App, flat: FlatRoute, path_types: dict[str, type | None]) -> None:
        self.app = app
        self.route = flat
        self.fn = flat.route.endpoint
        self.name = flat.name
        self.path = flat.path
        self.param_names = tuple(path_types)
        self.is_async = _is_async_callable(self.fn)
        opts = flat.route.options
        self.max_body_size: int | None = opts.get("max_body_size", app._max_body_size)
        # A route's own max_body_size covers uploads too; otherwise they get the upload limit.
        self.max_upload_size: int | None = opts.get(
            "max_upload_size", opts.get("max_body_size", app._max_upload_size)
        )
        self.status_code: int | None = opts.get("status_code")
        self.before = tuple(flat.before)
        self.after = tuple(flat.after)
        where = flat.route.where
        localns = flat.route.localns
        self.plan: Plan = compile_plan(
            self.fn,
            where=f"handler {where} for {flat.path!r}",
            path_params=path_types,
            app=app,
            localns=localns,
        )
        self.dependencies: tuple[DependencyPlan, ...] = tuple(
            _router_dependency(dep, path_types, app, where) for dep in flat.dependencies
        )
        self.encoder = _response_encoder(self.fn, opts, where, localns)
        self.renderers: tuple[Any, ...] | None = None
        if "renderers" in opts:
            from trellis.negotiation import check_renderers

            self.renderers = check_renderers(opts["renderers"], f"handler {where}")
        self.mode = self._mode()
        self.needs_request = self.mode == _PLAN or bool(self.before or self.after or self.renderers)
        # With templates configured, render() finds the request through a context variable.
        self._request_var: contextvars.ContextVar[Any] | None = None
        if app.templates is not None:
            from trellis.templating import current_request

            self._request_var = current_request
            self.needs_request = True
        # The session cookie whose presence makes an unsafe request need a CSRF token; None when
        # the route has no unsafe method, is exempt (csrf=False) or CSRF checks are off.
        self.csrf: str | None = _csrf_cookie(app, opts, flat.route.methods)
        # Decided once: which of the paths in __call__ this endpoint takes.
        self.simple = not (self.before or self.after or self.renderers)
        self.direct = self.simple and self.mode == _NO_ARGS and self.is_async

    def _mode(self) -> int:
        plan = self.plan
        if self.dependencies:
            return _PLAN
        if not plan.fields:
            return _NO_ARGS
        names = set(self.param_names)
        if (
            plan.simple_path
            and {f.name for f in plan.fields} == names
            and all(f.name == f.alias for f in plan.fields)
        ):
            return _PATH_ONLY
        return _PLAN

    # -- run --------------------------------------------------------------------------------

    async def _call_sync(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, **kwargs)
        return await loop.run_in_executor(self.app._executor, call)

    async def _run_hook(self, hook: Callable[..., Any], *args: Any) -> Any:
        # Sync hooks run in the thread pool too: they may block (a database).
        if _is_async_callable(hook):
            return await hook(*args)
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        out = await loop.run_in_executor(
            self.app._executor, functools.partial(ctx.run, hook, *args)
        )
        if inspect.isawaitable(out):
            out = await out
        return out

    async def _invoke(self, scope: Scope, ctx: _Context | None) -> Any:
        mode = self.mode
        if mode == _NO_ARGS:
            kwargs: dict[str, Any] = {}
        elif mode == _PATH_ONLY:
            kwargs = scope["path_params"]
        else:
            assert ctx is not None
            try:
                for dep in self.dependencies:
                    await ctx.dependency(dep)
                kwargs = await self.plan.resolve(ctx)
                if ctx.errors:
                    raise RequestValidationError(ctx.errors)
                if self.is_async:
                    result = await self.fn(**kwargs)
                else:
                    result = await self._call_sync(self.fn, kwargs)
            except BaseException as exc:
                if ctx.handler_cleanups:
                    await ctx.finish_handler(exc)
                raise
            if ctx.handler_cleanups:
                # Before the response exists: a failed commit still becomes an error answer.
                await ctx.finish_handler(None)
            return result
        if self.is_async:
            return await self.fn(**kwargs)
        return await self._call_sync(self.fn, kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the handler for one request and send its response."""
        request: Request | None = None
        ctx: _Context | None = None
        failure: BaseException | None = None
        try:
            try:
                if self.needs_request:
                    request = self._request(scope, receive)
                    if self.mode == _PLAN:
                        ctx = _Context(self.app, request, scope.get("path_params") or {})
                if self.csrf is not None and scope["method"] in UNSAFE_METHODS:
                    # Before anything of the handler runs; the form it reads is kept for it.
                    if request is None:
                        request = self._request(scope, receive)
                    await check_request(request, self.csrf)
                if self.simple:
                    # PERF: no hooks or negotiation: call the handler (with the request bound
                    # for templates) and, for the common return types, write straight to
                    # ``send``.
                    if self._request_var is None:
                        result = await self.fn() if self.direct else await self._invoke(scope, ctx)
                    else:
                        token = self._request_var.set(request)
                        try:
                            result = (
                                await self.fn() if self.direct else await self._invoke(scope, ctx)
                            )
                        finally:
                            self._request_var.reset(token)
                    if self.encoder is not None and not isinstance(result, Response):
                        body = self.encoder(result)
                        content_type = _JSON_CT
                    else:
                        rtype = type(result)
                        if rtype is str:
                            body = result.encode()
                            content_type = _TEXT_CT
                        elif rtype is dict or rtype is list:
                            body = _json.dumps(result)
                            content_type = _JSON_CT
                        else:
                            body = None
                    if body is not None:
                        await send(
                            {
                                "type": "http.response.start",
                                "status": self.status_code or 200,
                                "headers": [
                                    content_type,
                                    (b"content-length", str(len(body)).encode()),
                                ],
                            }
                        )
                        await send({"type": "http.response.body", "body": body})
                        return
                    response = coerce_response(result, self.status_code)
                else:
                    assert request is not None
                    response = await self._run_full(scope, request, ctx)
            except ClientDisconnectedError as exc:
                failure = exc
                return
            except Exception as exc:
                failure = exc
                if request is None:
                    request = self._request(scope, receive)
                response = await self.app._error_response(request, exc)
            if isinstance(response, StreamingResponse) and response.executor is None:
                # Sync iterators run in the app's bounded pool, like sync handlers.
                response.executor = self.app._executor
            await response(scope, receive, send)
        finally:
            if ctx is not None:
                if ctx.background is not None and failure is None:
                    # After the response, before clean-up: tasks may still use dependencies.
                    state = scope.get("state") or {}
                    await ctx.background.run(state.get("request_id"))
                if ctx.cleanups:
                    # Generator dependencies finish after the response; they see the error.
                    await ctx.close(failure)
            if request is not None and request._form is not None:
                await request.close()

    def _request(self, scope: Scope, receive: Receive) -> Request:
        return Request(
            scope,
            receive,
            max_body_size=self.max_body_size,
            max_upload_size=self.max_upload_size,
        )

    async def _run_full(self, scope: Scope, request: Request, ctx: _Context | None) -> Response:
        if self._request_var is None:
            return await self._run_steps(scope, request, ctx)
        token = self._request_var.set(request)
        try:
            return await self._run_steps(scope, request, ctx)
        finally:
            self._request_var.reset(token)

    async def _run_steps(self, scope: Scope, request: Request, ctx: _Context | None) -> Response:
        result: Any = None
        renderer: Any = None
        response: Response
        if self.renderers is not None:
            from trellis.negotiation import choose

            # Decided before the handler runs: a 406 costs no work.
            renderer = choose(self.renderers, request.headers.get("accept"))
        for hook in self.before:
            result = await self._run_hook(hook, request)
            if result is not None:
                break
        else:
            result = await self._invoke(scope, ctx)
        if renderer is not None and not isinstance(result, Response):
            # Plain JSON data (filtered by the declared type) for every renderer alike.
            raw = self.encoder(result) if self.encoder is not None else _json.dumps(result)
            response = renderer.render(_json.loads(raw), request)
            response.status_code = self.status_code or response.status_code
            response.headers.add_vary("Accept")
        elif self.encoder is not None and not isinstance(result, Response) and result is not None:
            response = Response(
                self.encoder(result), self.status_code or 200, media_type="application/json"
            )
        else:
            response = coerce_response(result, self.status_code)
        for hook in self.after:
            out = await self._run_hook(hook, request, response)
            if out is not None:
                response = coerce_response(out)
        return response


def _csrf_cookie(app: App, opts: dict[str, Any], methods: frozenset[str]) -> str | None:
    option = opts.get("csrf", True)
    if not isinstance(option, bool):
        raise ConfigurationError(f"the route option csrf must be True or False, not {option!r}")
    config = app._session_config
    if not option or not app.settings.csrf or config is None or not methods & UNSAFE_METHODS:
        return None
    return config.cookie_name


def _router_dependency(
    dep: Any, path_types: dict[str, type | None], app: App, where: str
) -> DependencyPlan:
    marker = dep if isinstance(dep, Depends) else Depends(dep)
    provider = marker.provider
    plan = compile_plan(
        provider,
        where=f"dependency {getattr(provider, '__qualname__', repr(provider))} of {where}",
        path_params=path_types,
        app=app,
        stack=(provider,),
    )
    return DependencyPlan(marker, plan)


_NO_ENCODER_TYPES: tuple[Any, ...] = (None, type(None), Any, object, str, bytes, dict, list)


def _response_encoder(
    fn: Callable[..., Any], opts: dict[str, Any], where: str, localns: dict[str, Any] | None
) -> Callable[[Any], bytes] | None:
    """The JSON encoder the declared return type asks for, or ``None`` (plain coercion).

    Values are validated against the declared type (from attributes too, so ORM objects work)
    and serialised by it: a field the type does not declare never leaves the server.
    """
    if "response_model" in opts:
        declared = opts["response_model"]
    else:
        declared = _hints(fn, f"handler {where}", localns).get("return", inspect.Signature.empty)
    if declared is inspect.Signature.empty or declared in _NO_ENCODER_TYPES:
        return None
    origin = typing.get_origin(declared)
    if isinstance(declared, type) and issubclass(declared, Response):
        return None
    if origin is not None and isinstance(origin, type) and issubclass(origin, Response):
        return None
    if origin in (dict, list) and all(
        a in (str, int, float, bool, Any, object) for a in typing.get_args(declared)
    ):
        return None  # plain JSON data: nothing to filter, orjson writes it directly
    if typing.get_origin(declared) in (typing.Union, types.UnionType) and any(
        isinstance(a, type) and issubclass(a, Response) for a in typing.get_args(declared)
    ):
        return None
    from pydantic import TypeAdapter

    try:
        adapter: Any = TypeAdapter(declared)
    except Exception as exc:
        raise ConfigurationError(
            f"handler {where}: its return type {declared!r} cannot be serialised"
            f" ({type(exc).__name__}: {exc}); declare a pydantic model, dataclass, TypedDict or"
            " standard type, or pass response_model=None"
        ) from None
    exact = declared if isinstance(declared, type) else None
    dump = adapter.dump_json
    validate = adapter.validate_python

    def encode(result: Any) -> bytes:
        if exact is not None and type(result) is exact:
            return dump(result)  # type: ignore[no-any-return]
        return dump(validate(result, from_attributes=True))  # type: ignore[no-any-return]

    return encode


def _is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or (
        callable(fn) and inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
    )


class WebSocketEndpoint:
    """The compiled form of a websocket route: an ASGI callable for websocket scopes."""

    __slots__ = (
        "app",
        "check_origin",
        "dependencies",
        "fn",
        "name",
        "param_names",
        "path",
        "plan",
        "route",
    )

    def __init__(self, app: App, flat: FlatRoute, path_types: dict[str, type | None]) -> None:
        from trellis.handlers._plan import _BODY, _BODY_FIELD, _FILE, _FORM

        self.app = app
        self.route = flat
        self.fn = flat.route.endpoint
        self.name = flat.name
        self.path = flat.path
        self.param_names = tuple(path_types)
        where = f"websocket handler {flat.route.where} for {flat.path!r}"
        if not _is_async_callable(self.fn):
            raise ConfigurationError(f"{where} must be an async function (async def)")
        self.plan = compile_plan(
            self.fn, where=where, path_params=path_types, app=app, localns=flat.route.localns
        )
        for field in self.plan.fields:
            if field.kind in (_BODY, _BODY_FIELD, _FORM, _FILE):
                raise ConfigurationError(
                    f"{where}: parameter {field.name!r} reads a request body, which a websocket"
                    " has not; receive messages with websocket.receive_json() or"
                    " receive_model()"
                )
        self.dependencies: tuple[DependencyPlan, ...] = tuple(
            _router_dependency(dep, path_types, app, flat.route.where) for dep in flat.dependencies
        )
        # Cross-site websocket hijacking: a handshake that carries the session cookie must
        # come from this site (browsers send the cookie with any page's handshake).
        # The handshake counts as an unsafe request.
        self.check_origin: str | None = _csrf_cookie(app, flat.route.options, UNSAFE_METHODS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Resolve the handler's parameters and run it for one connection."""
        from trellis.websockets import WebSocket, serve_websocket

        websocket = WebSocket(scope, receive, send)
        if (
            self.check_origin is not None
            and self.check_origin in websocket.cookies
            and not origin_allowed(websocket)
        ):
            await websocket.deny(
                403,
                "Origin not allowed: a websocket handshake with the session cookie must come"
                " from this site or one of the csrf_trusted_origins",
            )
            return
        ctx = _Context(self.app, websocket, scope.get("path_params") or {})  # type: ignore[arg-type]

        async def run() -> None:
            for dep in self.dependencies:
                await ctx.dependency(dep)
            kwargs = await self.plan.resolve(ctx)
            if ctx.errors:
                raise RequestValidationError(ctx.errors)
            await self.fn(**kwargs)

        try:
            await serve_websocket(websocket, run)
        finally:
            if ctx.cleanups:
                await ctx.close(None)


def compile_websocket_route(
    app: App, flat: FlatRoute, path_types: dict[str, type | None]
) -> WebSocketEndpoint:
    """Compile a websocket route (raises ``ConfigurationError`` for bad handlers)."""
    return WebSocketEndpoint(app, flat, path_types)


def compile_route(app: App, flat: FlatRoute, path_types: dict[str, type | None]) -> Endpoint:
    """Compile ``flat`` into its endpoint (raises ``ConfigurationError`` for bad handlers).

    Args:
        app: The application.
        flat: The route with its routers' settings folded in.
        path_types: The path (and host) parameters and the type their converter produces.
    """
    return Endpoint(app, flat, path_types)
