"""Compile a handler's signature into a plan: where each argument comes from, how it is checked.

Everything here runs once, at start-up. Per request, ``Plan.resolve`` walks a flat tuple of
prepared fields: a dict lookup and (when the type asks for it) one prepared validator each.
Dependencies are plans of their own, resolved before the parameters that use them.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import decimal
import enum
import functools
import inspect
import logging
import types
import typing
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from trellis.background import BackgroundTasks
from trellis.exceptions import (
    BadRequestError,
    ConfigurationError,
    RequestValidationError,
    UnsupportedMediaTypeError,
)
from trellis.handlers.params import _MISSING, Body, Depends, File, Form, Header, Param, Path
from trellis.http.connection import HTTPConnection
from trellis.http.request import Request

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["Plan", "RequestValidationError", "compile_plan"]

log = logging.getLogger("trellis.error")

# How a field is found
_PATH, _QUERY, _HEADER, _COOKIE, _BODY, _BODY_FIELD, _FORM, _FILE, _REQUEST, _DEPENDS = range(10)
_BACKGROUND = 10
_SOURCE_NAMES = {
    _PATH: "path",
    _QUERY: "query",
    _HEADER: "header",
    _COOKIE: "cookie",
    _BODY: "body",
    _BODY_FIELD: "body",
    _FORM: "body",
    _FILE: "body",
}

_SCALARS: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    bytes,
    decimal.Decimal,
    uuid.UUID,
    datetime.date,
    datetime.datetime,
    datetime.time,
    datetime.timedelta,
    enum.Enum,
)


def _error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def _pydantic_errors(exc: Any, prefix: list[Any]) -> list[dict[str, Any]]:
    return [
        _error([*prefix, *e["loc"]], e["msg"], e["type"])
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


class _Invalid(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def _int_from_str(value: Any) -> int:
    # PERF: plain ``int`` without constraints is the most common parameter; skip pydantic.
    if type(value) is int:
        return value
    try:
        if type(value) is str and value.isascii():
            return int(value)
    except ValueError:
        pass
    raise _Invalid(
        [
            _error(
                [],
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
            )
        ]
    )


class Field:
    """One argument of a handler or provider: its source, name on the wire and validator."""

    __slots__ = (
        "alias",
        "annotation",
        "default",
        "dep",
        "element",
        "is_list",
        "kind",
        "marker",
        "name",
        "required",
        "validate",
    )

    def __init__(
        self,
        name: str,
        kind: int,
        alias: str,
        default: Any,
        validate: Callable[[Any], Any] | None,
        is_list: bool = False,
        dep: DependencyPlan | None = None,
        element: Callable[[Any], Any] | None = None,
    ) -> None:
        # ``element``: for a body, the validator of a decoded value (used when the body is
        # shared by several parameters, each reading one member).
        self.element = element
        # For the API description: the declared type and the marker (Query(...) ...), if any.
        self.annotation: Any = Any
        self.marker: Any = None
        self.name = name
        self.kind = kind
        self.alias = alias
        self.default = default
        self.required = default is _MISSING
        self.validate = validate
        self.is_list = is_list
        self.dep = dep


class DependencyPlan:
    """A provider and the plan of its own arguments."""

    __slots__ = ("call_kind", "plan", "provider", "scope", "use_cache")

    def __init__(self, marker: Depends, plan: Plan) -> None:
        self.provider = marker.provider
        self.use_cache = marker.use_cache
        self.scope = marker.scope
        self.plan = plan
        fn = _unwrap(marker.provider)
        if inspect.isasyncgenfunction(fn):
            self.call_kind = "asyncgen"
        elif inspect.isgeneratorfunction(fn):
            self.call_kind = "gen"
        elif _is_async(marker.provider):
            self.call_kind = "async"
        else:
            self.call_kind = "sync"


class Plan:
    """The compiled arguments of one callable."""

    __slots__ = (
        "body_embedded",
        "fields",
        "has_background",
        "has_cleanup",
        "needs_body_json",
        "needs_form",
        "owner",
        "simple_path",
    )

    def __init__(self, owner: str, fields: list[Field]) -> None:
        self.owner = owner
        self.fields = tuple(fields)
        self.needs_form = any(f.kind in (_FORM, _FILE) for f in fields)
        self.needs_body_json = any(f.kind == _BODY_FIELD for f in fields)
        self.body_embedded = self.needs_body_json
        self.has_cleanup: bool = any(
            f.dep is not None and (f.dep.call_kind in ("gen", "asyncgen") or f.dep.plan.has_cleanup)
            for f in fields
        )
        # Only path values that need no checking: the handler can take the path params as is.
        self.simple_path = all(f.kind == _PATH and f.validate is None for f in fields)
        self.has_background: bool = any(f.kind == _BACKGROUND for f in fields) or any(
            f.dep is not None and f.dep.plan.has_background for f in fields
        )

    async def resolve(self, ctx: _Context) -> dict[str, Any]:
        """Return the arguments for one call; errors are collected on ``ctx``."""
        values: dict[str, Any] = {}
        request = ctx.request
        body_obj: Any = _MISSING
        form: Any = None
        if self.needs_form:
            form = await request.form()
        for field in self.fields:
            kind = field.kind
            if kind == _DEPENDS:
                assert field.dep is not None
                values[field.name] = await ctx.dependency(field.dep)
                continue
            if kind == _REQUEST:
                values[field.name] = request
                continue
            if kind == _BACKGROUND:
                values[field.name] = ctx.background_tasks()
                continue
            if kind == _PATH:
                raw = ctx.path_params.get(field.alias, _MISSING)
            elif kind == _QUERY:
                query = request.query
                if field.is_list:
                    raw = query.getlist(field.alias) or _MISSING
                else:
                    raw = query.get(field.alias, _MISSING)
            elif kind == _HEADER:
                headers = request.headers
                if field.is_list:
                    raw = headers.getlist(field.alias) or _MISSING
                else:
                    raw = headers.get(field.alias, _MISSING)
            elif kind == _COOKIE:
                raw = request.cookies.get(field.alias, _MISSING)
            elif kind == _BODY:
                raw = await self._whole_body(field, ctx)
                if raw is _INVALID:
                    continue
                values[field.name] = raw
                continue
            elif kind == _BODY_FIELD:
                if body_obj is _MISSING:
                    body_obj = await self._body_object(ctx)
                if body_obj is _INVALID:
                    continue
                raw = body_obj.get(field.alias, _MISSING)
            else:  # form or file
                if field.is_list:
                    raw = form.getlist(field.alias) or _MISSING
                else:
                    raw = form.get(field.alias, _MISSING)
                if kind == _FILE and raw is not _MISSING:
                    items = raw if field.is_list else [raw]
                    if not all(
                        hasattr(item, "filename") and hasattr(item, "read") for item in items
                    ):
                        ctx.errors.append(
                            _error(
                                [_SOURCE_NAMES[kind], field.alias],
                                "Expected an uploaded file",
                                "file_expected",
                            )
                        )
                        continue
                    values[field.name] = raw
                    continue
            if raw is _MISSING:
                if field.required:
                    ctx.errors.append(
                        _error([_SOURCE_NAMES[kind], field.alias], "Field required", "missing")
                    )
                else:
                    values[field.name] = field.default
                continue
            validate = field.validate
            if validate is None:
                values[field.name] = raw
                continue
            try:
                values[field.name] = validate(raw)
            except _Invalid as exc:
                prefix = [_SOURCE_NAMES[kind], field.alias]
                ctx.errors.extend(
                    _error([*prefix, *e["loc"]], e["msg"], e["type"]) for e in exc.errors
                )
            except ValueError as exc:  # pydantic.ValidationError is a ValueError
                if hasattr(exc, "errors"):
                    ctx.errors.extend(_pydantic_errors(exc, [_SOURCE_NAMES[kind], field.alias]))
                else:
                    ctx.errors.append(
                        _error([_SOURCE_NAMES[kind], field.alias], str(exc), "value_error")
                    )
        return values

    async def _whole_body(self, field: Field, ctx: _Context) -> Any:
        _require_json(ctx.request)
        body = await ctx.request.json_body()
        if not body.strip():
            if field.required:
                ctx.errors.append(_error(["body"], "Field required", "missing"))
                return _INVALID
            return field.default
        assert field.validate is not None
        try:
            return field.validate(body)
        except ValueError as exc:
            if not hasattr(exc, "errors"):
                raise
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            if any(e["type"] == "json_invalid" for e in errors):
                raise BadRequestError(f"Invalid JSON body: {errors[0]['msg']}") from None
            ctx.errors.extend(_pydantic_errors(exc, ["body"]))
            return _INVALID

    async def _body_object(self, ctx: _Context) -> Any:
        _require_json(ctx.request)
        body = await ctx.request.json_body()
        if not body.strip():
            return {}
        data = await ctx.request.json()
        if not isinstance(data, dict):
            ctx.errors.append(_error(["body"], "Input should be a JSON object", "dict_type"))
            return _INVALID
        return data


_INVALID: Any = object()


def _require_json(request: Request) -> None:
    # A JSON body sent as text/plain or a form is how a cross-site page forges an API call
    # (no CORS pre-flight for those types): only JSON types, or no type at all, are read.
    ctype = request.content_type
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"The body must be JSON (Content-Type: application/json), not {ctype!r}"
        )


_DONE: Any = object()


def _step(gen: Any, exc: BaseException | None) -> Any:
    # StopIteration cannot cross into an asyncio Future (it would hang the await): turn the
    # end of the generator into a sentinel inside the worker thread.
    try:
        return next(gen) if exc is None else gen.throw(exc)
    except StopIteration:
        return _DONE


class _Context:
    """What one request's resolution shares: the request, the cache, the clean-ups, errors."""

    __slots__ = (
        "app",
        "background",
        "cache",
        "cleanups",
        "errors",
        "handler_cleanups",
        "path_params",
        "request",
    )

    def __init__(self, app: App, request: Request, path_params: dict[str, Any]) -> None:
        self.app = app
        self.request = request
        self.path_params = path_params
        self.errors: list[dict[str, Any]] = []
        self.cache: dict[Callable[..., Any], Any] = {}
        self.cleanups: list[Any] = []
        self.handler_cleanups: list[Any] = []
        self.background: Any = None

    def background_tasks(self) -> Any:
        """The request's ``BackgroundTasks`` (one per request, made on first use)."""
        if self.background is None:
            self.background = BackgroundTasks(self.app._executor)
        return self.background

    async def dependency(self, dep: DependencyPlan) -> Any:
        provider = dep.provider
        overrides = self.app.dependency_overrides
        if overrides and provider in overrides:
            dep = self.app._override_plan(provider, dep.scope)
            provider = dep.provider
        if dep.scope == "app":
            store = self.app._app_dependencies
            if provider in store:
                return store[provider]
        elif dep.use_cache and provider in self.cache:
            return self.cache[provider]
        errors_before = len(self.errors)
        kwargs = await dep.plan.resolve(self)
        if len(self.errors) > errors_before:
            return None  # its inputs are invalid: the request fails with those errors
        value = await self._call(dep, kwargs)
        if dep.scope == "app":
            self.app._app_dependencies[provider] = value
        elif dep.use_cache:
            self.cache[provider] = value
        return value

    async def _call(self, dep: DependencyPlan, kwargs: dict[str, Any]) -> Any:
        kind = dep.call_kind
        provider = dep.provider
        if kind == "async":
            return await provider(**kwargs)
        if kind == "sync":
            return await self._in_thread(functools.partial(provider, **kwargs))
        cleanups = self.handler_cleanups if dep.scope == "handler" else self.cleanups
        if kind == "asyncgen":
            agen = provider(**kwargs)
            value = await agen.__anext__()
            cleanups.append(("asyncgen", agen))
            return value
        gen = provider(**kwargs)
        value = await self._in_thread(functools.partial(_step, gen, None))
        if value is _DONE:
            raise RuntimeError(
                f"dependency {getattr(provider, '__qualname__', provider)} did not yield"
            )
        cleanups.append(("gen", gen))
        return value

    async def _in_thread(self, call: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self.app._executor, ctx.run, call)

    async def finish_handler(self, exc: BaseException | None) -> None:
        """Run the ``scope="handler"`` clean-ups, innermost first, as the handler ends.

        ``exc`` (what the handler raised, or ``None``) is thrown into them. An exception a
        clean-up raises (a commit that fails) is thrown into the next ones and then raised
        here, so that it becomes the request's error.
        """
        current = exc
        while self.handler_cleanups:
            kind, gen = self.handler_cleanups.pop()
            try:
                if kind == "asyncgen":
                    if current is None:
                        await gen.__anext__()
                    else:
                        await gen.athrow(current)
                    more = True
                else:
                    more = (
                        await self._in_thread(functools.partial(_step, gen, current)) is not _DONE
                    )
            except StopAsyncIteration:
                continue
            except BaseException as raised:
                if raised is not current:
                    current = raised
                continue
            if more:
                log.error(
                    "dependency %s yielded more than once; only one yield is allowed",
                    getattr(gen, "__qualname__", repr(gen)),
                )
        if current is not exc and current is not None:
            raise current

    async def close(self, exc: BaseException | None) -> None:
        """Run the generators' clean-up, innermost first; ``exc`` is thrown into them."""
        if self.handler_cleanups:  # the handler never ran (its inputs failed)
            try:
                await self.finish_handler(exc)
            except BaseException as raised:
                log.error("a dependency's clean-up failed", exc_info=raised)
        while self.cleanups:
            kind, gen = self.cleanups.pop()
            try:
                if kind == "asyncgen":
                    if exc is None:
                        await gen.__anext__()
                    else:
                        await gen.athrow(exc)
                elif exc is None:
                    if await self._in_thread(functools.partial(_step, gen, None)) is _DONE:
                        continue
                elif await self._in_thread(functools.partial(_step, gen, exc)) is _DONE:
                    continue
            except StopAsyncIteration:
                continue
            except BaseException as raised:
                if raised is not exc:
                    log.error("a dependency's clean-up failed", exc_info=raised)
                continue
            log.error(
                "dependency %s yielded more than once; only one yield is allowed",
                getattr(gen, "__qualname__", repr(gen)),
            )


# -- compiling ---------------------------------------------------------------------------------


def _unwrap(fn: Any) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def _is_async(fn: Any) -> bool:
    target = _unwrap(fn)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(target, "__call__", None)  # noqa: B004
    return not inspect.isfunction(target) and inspect.iscoroutinefunction(call)


def _hints(fn: Any, where: str, localns: dict[str, Any] | None = None) -> dict[str, Any]:
    target = _unwrap(fn)
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
        target = type(target).__call__
    try:
        return typing.get_type_hints(target, localns=localns, include_extras=True)
    except Exception as exc:
        raise ConfigurationError(
            f"{where}: cannot resolve its type annotations ({exc}); import the names used in"
            " annotations at module level"
        ) from None


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return tp, False


def _is_scalar(tp: Any) -> bool:
    tp, _ = _strip_optional(tp)
    if tp is Any:
        return True
    if get_origin(tp) is Literal:
        return True
    if get_origin(tp) is Union:
        return all(_is_scalar(a) for a in get_args(tp))
    return isinstance(tp, type) and issubclass(tp, _SCALARS)


def _is_sequence_of_scalars(tp: Any) -> bool:
    tp, _ = _strip_optional(tp)
    origin = get_origin(tp)
    if origin in (list, tuple, set, frozenset):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return all(_is_scalar(a) for a in args)
    return False


def _is_upload(tp: Any) -> tuple[bool, bool]:
    from trellis.http.forms import UploadFile

    tp, _ = _strip_optional(tp)
    if tp is UploadFile:
        return True, False
    if get_origin(tp) is list and get_args(tp) and get_args(tp)[0] is UploadFile:
        return True, True
    return False, False


def _adapter(
    tp: Any, marker: Param | None, where: str, *, json: bool = False
) -> Callable[[Any], Any]:
    from pydantic import Field as PydanticField
    from pydantic import TypeAdapter

    constraints = marker.constraints() if marker is not None else {}
    target: Any = Annotated[tp, PydanticField(**constraints)] if constraints else tp
    try:
        adapter: Any = TypeAdapter(target)
    except Exception as exc:
        raise ConfigurationError(
            f"{where}: Trellis cannot validate the type {tp!r} ({type(exc).__name__}: {exc});"
            " use a pydantic model, a dataclass, a TypedDict or a standard type"
        ) from None
    if not getattr(adapter, "pydantic_complete", True):
        # A model naming a type defined after it: found now, not as a 500 on each request.
        try:
            adapter.rebuild()
        except Exception as exc:
            raise ConfigurationError(
                f"{where}: the type {tp!r} is not fully defined ({exc}); define the types it"
                " refers to before it, or call Model.model_rebuild() once they exist"
            ) from None
    validator: Callable[[Any], Any] = adapter.validate_json if json else adapter.validate_python
    return validator


def compile_plan(
    fn: Callable[..., Any],
    *,
    where: str,
    path_params: dict[str, type | None],
    app: App,
    stack: tuple[Any, ...] = (),
    localns: dict[str, Any] | None = None,
) -> Plan:
    """Compile the signature of ``fn`` (a handler or a provider) into a ``Plan``.

    Args:
        fn: The callable.
        where: Who it is, for error messages (``module.function``).
        path_params: The route's path parameters and the Python type their converter gives.
        app: The application (for dependency overrides and the thread pool).
        stack: Providers being compiled around this one, to report cycles.
        localns: Names visible where the handler was declared (local classes, providers).

    Raises:
        ConfigurationError: an annotation that cannot be resolved or validated, a parameter
            with no source, or a dependency cycle; the message names the callable and the
            parameter.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the signature of {where}: {exc}") from None
    hints = _hints(fn, where, localns)
    fields: list[Field] = []
    body_fields: list[tuple[int, Param | None]] = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, Any)
        field = _compile_param(p, annotation, where, path_params, app, stack, localns)
        if field is None:
            continue
        field.annotation, field.marker = _describe(annotation, p.default)
        if field.kind == _BODY:
            body_fields.append((len(fields), None))
        fields.append(field)
    # Several body parameters: each reads its member of one JSON object.
    if len(body_fields) > 1:
        for index, _ in body_fields:
            old = fields[index]
            new = Field(old.name, _BODY_FIELD, old.alias, old.default, old.element)
            new.annotation, new.marker = old.annotation, old.marker
            fields[index] = new
    return Plan(where, fields)


def _compile_param(
    p: inspect.Parameter,
    annotation: Any,
    where: str,
    path_params: dict[str, type | None],
    app: App,
    stack: tuple[Any, ...],
    localns: dict[str, Any] | None,
) -> Field | None:
    name = p.name
    default = p.default if p.default is not p.empty else _MISSING
    marker: Param | Depends | None = None
    tp = annotation
    if get_origin(annotation) is Annotated:
        tp, *extras = get_args(annotation)
        for extra in extras:
            if isinstance(extra, Param | Depends):
                marker = extra
    if isinstance(default, Param | Depends):
        marker, default = default, _MISSING
    if isinstance(marker, Param) and marker.default is not _MISSING:
        default = marker.default
    at = f"{where}, parameter {name!r}"

    # Injected by type: Request, WebSocket, or HTTPConnection for code that serves both.
    if isinstance(tp, type) and issubclass(tp, HTTPConnection):
        return Field(name, _REQUEST, name, _MISSING, None)
    if tp is Any and name == "request" and marker is None:
        return Field(name, _REQUEST, name, _MISSING, None)
    if tp is BackgroundTasks:
        return Field(name, _BACKGROUND, name, _MISSING, None)

    if isinstance(marker, Depends):
        provider = marker.provider
        if provider in stack:
            chain = " -> ".join(getattr(s, "__qualname__", repr(s)) for s in (*stack, provider))
            raise ConfigurationError(f"dependency cycle: {chain} (needed by {where})")
        sub = compile_plan(
            provider,
            where=f"dependency {getattr(provider, '__module__', '?')}."
            f"{getattr(provider, '__qualname__', repr(provider))}",
            path_params=path_params,
            app=app,
            stack=(*stack, provider),
            localns=localns,
        )
        return Field(name, _DEPENDS, name, _MISSING, None, dep=DependencyPlan(marker, sub))

    # The route path names it
    if name in path_params or isinstance(marker, Path):
        alias = marker.alias if isinstance(marker, Path) and marker.alias else name
        if alias not in path_params:
            raise ConfigurationError(f"{at}: the route path has no parameter {alias!r}")
        produced = path_params[alias]
        validate: Callable[[Any], Any] | None
        if (tp is Any or tp is produced) and not (marker and marker.constraints()):
            validate = None
        elif tp is int and not (marker and marker.constraints()):
            validate = _int_from_str
        else:
            validate = _adapter(tp, marker if isinstance(marker, Param) else None, at)
        return Field(name, _PATH, alias, _MISSING, validate)

    upload, upload_list = _is_upload(tp)
    if upload or isinstance(marker, File):
        alias = marker.alias if marker and marker.alias else name
        return Field(name, _FILE, alias, default, None, is_list=upload_list)

    if isinstance(marker, Form):
        alias = marker.alias or name
        is_list = _is_sequence_of_scalars(tp)
        return Field(name, _FORM, alias, default, _scalar_validator(tp, marker, at), is_list)

    if isinstance(marker, Body) or (
        marker is None and not _is_scalar(tp) and not _is_sequence_of_scalars(tp)
    ):
        body_marker = marker if isinstance(marker, Body) else None
        alias = body_marker.alias if body_marker and body_marker.alias else name
        if body_marker is not None and body_marker.embed:
            return Field(name, _BODY_FIELD, alias, default, _adapter(tp, body_marker, at))
        return Field(
            name,
            _BODY,
            alias,
            default,
            _adapter(tp, body_marker, at, json=True),
            element=_adapter(tp, body_marker, at),
        )

    if isinstance(marker, Header):
        alias = marker.alias or (name.replace("_", "-") if marker.convert_underscores else name)
        kind = _HEADER
        alias = alias.lower()
    elif isinstance(marker, Param) and marker.source == "cookie":
        alias = marker.alias or name
        kind = _COOKIE
    else:
        alias = (marker.alias if isinstance(marker, Param) and marker.alias else None) or name
        kind = _QUERY
    is_list = _is_sequence_of_scalars(tp)
    return Field(name, kind, alias, default, _scalar_validator(tp, marker, at), is_list)


def _describe(annotation: Any, default: Any) -> tuple[Any, Any]:
    """The bare type and the marker of a parameter, for the API description."""
    marker = default if isinstance(default, Param | Depends) else None
    tp = annotation
    if get_origin(annotation) is Annotated:
        tp, *extras = get_args(annotation)
        for extra in extras:
            if isinstance(extra, Param | Depends):
                marker = extra
    return tp, marker


def _scalar_validator(tp: Any, marker: Any, at: str) -> Callable[[Any], Any] | None:
    constrained = isinstance(marker, Param) and bool(marker.constraints())
    if not constrained:
        base, _ = _strip_optional(tp)
        if base is str or tp is Any:
            return None
        if base is int:
            return _int_from_str
    return _adapter(tp, marker if isinstance(marker, Param) else None, at)
