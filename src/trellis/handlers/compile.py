"""Turn a declared route into an endpoint: an ASGI callable specialised once, at start-up.

Per request the endpoint only runs what its handler needs: handlers without parameters skip
extraction, routes without hooks skip the hook loops, and the common return types (``str``,
``dict``, ``list``) are written straight to the ASGI ``send`` with pre-encoded headers.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trellis.exceptions import ConfigurationError
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

__all__ = ["Endpoint", "coerce_response", "compile_route"]

_TEXT_CT = (b"content-type", b"text/plain; charset=utf-8")
_JSON_CT = (b"content-type", b"application/json")
_NO_CONTENT_START = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}

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
        "_kw",
        "_request_var",
        "after",
        "app",
        "before",
        "dependencies",
        "direct",
        "fn",
        "is_async",
        "max_body_size",
        "max_upload_size",
        "mode",
        "name",
        "needs_request",
        "param_names",
        "path",
        "route",
        "simple",
        "status_code",
    )

    def __init__(self, app: App, flat: FlatRoute, param_names: tuple[str, ...]) -> None:
        self.app = app
        self.route = flat
        self.fn = flat.route.endpoint
        self.name = flat.name
        self.path = flat.path
        self.param_names = param_names
        self.is_async = _is_async_callable(self.fn)
        opts = flat.route.options
        default_limit = app._max_body_size
        self.max_body_size: int | None = opts.get("max_body_size", default_limit)
        # A route's own max_body_size covers uploads too; otherwise they get the upload limit.
        self.max_upload_size: int | None = opts.get(
            "max_upload_size",
            opts.get("max_body_size", app._max_upload_size),
        )
        self.status_code: int | None = opts.get("status_code")
        self.before = tuple(flat.before)
        self.after = tuple(flat.after)
        self.dependencies = tuple((dep, _takes_argument(dep)) for dep in flat.dependencies)
        self._kw: tuple[tuple[str, int], ...] = ()
        self.mode, self.needs_request = self._plan(param_names)
        # With templates configured, render() finds the request through a context variable.
        self._request_var: contextvars.ContextVar[Any] | None = None
        if app.templates is not None:
            from trellis.templating import current_request

            self._request_var = current_request
            self.needs_request = True
        # Decided once: which of the paths in __call__ this endpoint takes.
        self.simple = not (self.before or self.after or self.dependencies or self._request_var)
        self.direct = self.simple and self.mode == _NO_ARGS and self.is_async

    # -- compile ----------------------------------------------------------------------------

    def _plan(self, param_names: tuple[str, ...]) -> tuple[int, bool]:
        fn = self.fn
        where = self.route.route.where
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot read the signature of handler {where}: {exc}"
            ) from None
        target: Any = fn
        while isinstance(target, functools.partial):
            target = target.func
        if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
            target = type(target).__call__
        try:
            hints = typing.get_type_hints(target, include_extras=False)
        except Exception as exc:  # NameError for an annotation that cannot be resolved
            raise ConfigurationError(
                f"handler {where}: cannot resolve its type annotations ({exc}); import the"
                " names used in annotations at module level"
            ) from None
        kw: list[tuple[str, int]] = []  # (name, source) source 0: path param, 1: request
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            ann = hints.get(p.name)
            if ann is not None and isinstance(ann, type) and issubclass(ann, Request):
                kw.append((p.name, 1))
            elif p.name in param_names:
                kw.append((p.name, 0))
            elif p.name == "request" and ann is None:
                kw.append((p.name, 1))
            elif p.default is not p.empty:
                continue
            else:
                raise ConfigurationError(
                    f"handler {where} for {self.path!r}: parameter {p.name!r} is not a path"
                    f" parameter (the path has {', '.join(param_names) or 'none'}) and has no"
                    " default; rename it to match the path, give it a default, or annotate it"
                    " as Request"
                )
        self._kw = tuple(kw)
        needs_request = any(src == 1 for _, src in kw) or bool(
            self.before or self.after or self.dependencies
        )
        if not kw:
            return _NO_ARGS, needs_request
        if all(src == 0 for _, src in kw) and len(kw) == len(param_names):
            return _PATH_ONLY, needs_request
        return _PLAN, needs_request

    # -- run --------------------------------------------------------------------------------

    async def _call_sync(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, **kwargs)
        return await loop.run_in_executor(self.app._executor, call)

    async def _run_hook(self, hook: Callable[..., Any], *args: Any) -> Any:
        # Sync hooks and dependencies run in the thread pool too: they may block (a database).
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

    async def _invoke(self, scope: Scope, request: Request | None) -> Any:
        mode = self.mode
        if mode == _NO_ARGS:
            kwargs: dict[str, Any] = {}
        elif mode == _PATH_ONLY:
            kwargs = scope["path_params"]
        else:
            params = scope.get("path_params") or {}
            kwargs = {name: (params[name] if src == 0 else request) for name, src in self._kw}
        if self.is_async:
            return await self.fn(**kwargs)
        return await self._call_sync(self.fn, kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the handler for one request and send its response."""
        request: Request | None = None
        try:
            try:
                if self.simple:
                    # PERF: no hooks, dependencies or template binding: call the handler and,
                    # for the common return types, write straight to ``send``.
                    if self.direct:
                        result = await self.fn()
                    else:
                        if self.needs_request:
                            request = self._request(scope, receive)
                        result = await self._invoke(scope, request)
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
                    request = self._request(scope, receive)
                    response = await self._run_full(scope, request)
            except ClientDisconnectedError:
                return
            except Exception as exc:
                if request is None:
                    request = self._request(scope, receive)
                response = await self.app._error_response(request, exc)
            if isinstance(response, StreamingResponse) and response.executor is None:
                # Sync iterators run in the app's bounded pool, like sync handlers.
                response.executor = self.app._executor
            await response(scope, receive, send)
        finally:
            if request is not None and request._form is not None:
                await request.close()

    def _request(self, scope: Scope, receive: Receive) -> Request:
        return Request(
            scope,
            receive,
            max_body_size=self.max_body_size,
            max_upload_size=self.max_upload_size,
        )

    async def _run_full(self, scope: Scope, request: Request) -> Response:
        if self._request_var is None:
            return await self._run_steps(scope, request)
        token = self._request_var.set(request)
        try:
            return await self._run_steps(scope, request)
        finally:
            self._request_var.reset(token)

    async def _run_steps(self, scope: Scope, request: Request) -> Response:
        result: Any = None
        for hook in self.before:
            result = await self._run_hook(hook, request)
            if result is not None:
                break
        else:
            for dep, takes_request in self.dependencies:
                await (self._run_hook(dep, request) if takes_request else self._run_hook(dep))
            result = await self._invoke(scope, request)
        response = coerce_response(result, self.status_code)
        for hook in self.after:
            out = await self._run_hook(hook, request, response)
            if out is not None:
                response = coerce_response(out)
        return response


def _is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or (
        callable(fn) and inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
    )


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        return bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False


def compile_route(app: App, flat: FlatRoute, param_names: tuple[str, ...]) -> Endpoint:
    """Compile ``flat`` into its endpoint (raises ``ConfigurationError`` for bad handlers)."""
    return Endpoint(app, flat, param_names)
