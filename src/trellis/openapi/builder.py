"""Build the OpenAPI 3.1 document of an application from its compiled handler plans.

Everything the document says comes from what Trellis already decided at start-up: the route
paths and methods, each parameter's source, type, alias and constraints (the handler plans,
dependencies included), the body and form fields, and the declared return type. Types become
JSON Schema through pydantic, in one pass, so every model is described once under
``components.schemas`` and referenced with ``$ref`` (a model whose input and output shapes
differ gets two entries, ``Name-Input`` and ``Name-Output``).

Example:
    ```python
    from trellis import App

    app = App()

    @app.get("/users/{user_id:int}")
    async def get_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    doc = app.openapi()  # calls build_openapi(app) once, then caches it
    assert "/users/{user_id}" in doc["paths"]
    ```
"""

from __future__ import annotations

import dataclasses
import http
import inspect
import re
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from trellis.exceptions import ConfigurationError
from trellis.handlers._plan import (
    _BODY,
    _BODY_FIELD,
    _COOKIE,
    _DEPENDS,
    _FILE,
    _FORM,
    _HEADER,
    _PATH,
    _QUERY,
    Field,
    Plan,
)
from trellis.handlers.params import Body, Depends, Param
from trellis.security import ScopedScheme, SecurityScheme

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.handlers.compile import Endpoint

__all__ = ["OPENAPI_VERSION", "build_openapi", "openapi_path"]

#: The version of the OpenAPI specification the document follows.
OPENAPI_VERSION = "3.1.0"

_PARAM_RE = re.compile(r"{([^{}:]*)(?::([^{}]*))?}")
_METHOD_ORDER = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
_LOCATIONS = {_PATH: "path", _QUERY: "query", _HEADER: "header", _COOKIE: "cookie"}
_REF = "#/components/schemas/{model}"
_PROBLEM_REF = "#/components/schemas/Problem"
_VALIDATION_PROBLEM_REF = "#/components/schemas/ValidationProblem"
_Mode = Literal["validation", "serialization"]
_BINARY: dict[str, Any] = {"type": "string", "format": "binary"}

_PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": "An error, as an RFC 9457 problem details object.",
        "type": "object",
        "properties": {
            "type": {"type": "string", "default": "about:blank"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
    },
    "ValidationProblem": {
        "title": "ValidationProblem",
        "description": "Some request values did not validate; `errors` lists every one.",
        "allOf": [
            {"$ref": _PROBLEM_REF},
            {
                "type": "object",
                "required": ["errors"],
                "properties": {
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["loc", "msg", "type"],
                            "properties": {
                                "loc": {
                                    "type": "array",
                                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                                },
                                "msg": {"type": "string"},
                                "type": {"type": "string"},
                            },
                        },
                    }
                },
            },
        ],
    },
}


def openapi_path(path: str) -> str:
    """Return a Trellis path template in OpenAPI form: ``/users/{id:int}`` -> ``/users/{id}``.

    Args:
        path: The route path, with ``{name}`` or ``{name:converter}`` placeholders.
    """
    return _PARAM_RE.sub(lambda m: "{" + m.group(1) + "}", path)


def _converter_types(path: str) -> dict[str, Any]:
    """The Python type each path parameter's converter produces (``str`` when unknown)."""
    from trellis.routing.converters import get_converter

    found: dict[str, Any] = {}
    for name, conv in _PARAM_RE.findall(path):
        produced: Any = str
        if conv:
            try:
                produced = get_converter(conv).python_type or str
            except (KeyError, ValueError, TypeError):
                produced = str
        found[name] = produced
    return found


class _Schemas:
    """Collects the types to describe, then turns them all into JSON Schema in one pass.

    Each request for a schema returns an empty dict at once; ``resolve`` fills it in. One pass
    lets pydantic give every model one stable name, even when two modules use the same one.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Any, _Mode, dict[str, Any], dict[str, Any]]] = []

    def schema(
        self, tp: Any, mode: _Mode = "validation", extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A placeholder for the schema of ``tp``; ``extra`` keys are added after generation."""
        slot: dict[str, Any] = {}
        self._pending.append((tp, mode, slot, dict(extra or {})))
        return slot

    def resolve(self) -> dict[str, Any]:
        """Fill every placeholder; return the named definitions (``components.schemas``)."""
        from pydantic import TypeAdapter

        inputs: list[tuple[int, _Mode, Any]] = []
        for index, (tp, mode, _slot, _extra) in enumerate(self._pending):
            try:
                adapter: Any = TypeAdapter(tp)
                adapter.json_schema(mode=mode)  # fails early for types with no schema
            except Exception:  # an undescribable type gets an open schema
                continue
            inputs.append((index, mode, adapter))
        definitions: dict[str, Any] = {}
        if inputs:
            schemas, defs = TypeAdapter.json_schemas(inputs, ref_template=_REF)
            definitions = dict(defs.get("$defs", {}))
            for (index, _mode), generated in schemas.items():
                self._pending[index][2].update(generated)
        for _tp, _mode, slot, extra in self._pending:
            slot.update(extra)
        self._pending.clear()
        return definitions


def _constrained(tp: Any, marker: Any) -> Any:
    """``tp`` with the marker's constraints (``ge``, ``max_length`` ...) applied."""
    if not isinstance(marker, Param):
        return tp
    from pydantic import Field as PydanticField

    kwargs: dict[str, Any] = marker.constraints()
    if marker.title is not None:
        kwargs["title"] = marker.title
    return Annotated[tp, PydanticField(**kwargs)] if kwargs else tp


def _declared(fn: Any, localns: dict[str, Any] | None) -> dict[str, tuple[Any, Any]]:
    """Each parameter's bare type and marker, read from the signature of ``fn``.

    Used when a compiled field does not carry them itself.
    """
    from trellis.handlers._plan import _hints

    try:
        signature = inspect.signature(fn)
        hints = _hints(fn, "openapi", localns)
    except Exception:  # the plan compiled, so this is only a fallback
        return {}
    found: dict[str, tuple[Any, Any]] = {}
    for p in signature.parameters.values():
        annotation = hints.get(p.name, Any)
        marker = p.default if isinstance(p.default, Param | Depends) else None
        tp = annotation
        if get_origin(annotation) is Annotated:
            tp, *extras = get_args(annotation)
            for extra in extras:
                if isinstance(extra, Param | Depends):
                    marker = extra
        found[p.name] = (tp, marker)
    return found


@dataclasses.dataclass
class _Collected:
    """Every parameter and body field of one operation, dependencies included."""

    params: list[tuple[Field, Any, Any]] = dataclasses.field(default_factory=list)
    body: list[tuple[Field, Any, Any]] = dataclasses.field(default_factory=list)
    validated: bool = False
    #: The security schemes the operation depends on, with the scopes each asks for.
    security: list[tuple[SecurityScheme, tuple[str, ...]]] = dataclasses.field(default_factory=list)

    def add_provider(self, provider: Any) -> None:
        """Note ``provider`` when it is a security scheme (or one with scopes)."""
        if isinstance(provider, SecurityScheme):
            self.security.append((provider, ()))
        elif isinstance(provider, ScopedScheme):
            self.security.append((provider.scheme, provider.scopes))


def _collect(
    plan: Plan, fn: Any, localns: dict[str, Any] | None, out: _Collected, seen: set[int]
) -> None:
    if id(plan) in seen:
        return
    seen.add(id(plan))
    fallback: dict[str, tuple[Any, Any]] | None = None
    for field in plan.fields:
        if field.kind == _DEPENDS:
            if field.dep is not None:
                out.add_provider(field.dep.provider)
                _collect(field.dep.plan, field.dep.provider, localns, out, seen)
            continue
        if field.kind not in _LOCATIONS and field.kind not in (_BODY, _BODY_FIELD, _FORM, _FILE):
            continue
        tp, marker = field.annotation, field.marker
        if tp is Any and marker is None:
            if fallback is None:
                fallback = _declared(fn, localns)
            tp, marker = fallback.get(field.name, (Any, None))
        if field.kind != _PATH or field.validate is not None:
            out.validated = True
        if isinstance(marker, Param) and not marker.include_in_schema:
            continue
        target = out.params if field.kind in _LOCATIONS else out.body
        target.append((field, tp, marker))


def _humanize(name: str) -> str:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.rsplit(".", 1)[-1]).replace("_", " ")
    return " ".join(w[:1].upper() + w[1:] for w in words.split())


def _strip_none(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)):
            if not args:
                return type(None), True
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return tp, False


def _is_response_type(tp: Any) -> bool:
    from trellis.http.response import Response

    target = get_origin(tp) or tp
    return isinstance(target, type) and issubclass(target, Response)


def _status_text(status: str) -> str:
    try:
        return http.HTTPStatus(int(status)).phrase
    except ValueError:
        return "Response"


class _Builder:
    def __init__(self, app: App) -> None:
        self.app = app
        self.schemas = _Schemas()
        self.operation_ids: set[str] = set()
        self.tags: list[str] = []
        self.security_schemes: dict[str, dict[str, Any]] = {}

    def build(self) -> dict[str, Any]:
        from trellis.handlers.compile import Endpoint

        paths: dict[str, dict[str, Any]] = {}
        for endpoint in self.app.endpoints:
            if not isinstance(endpoint, Endpoint):
                continue  # websocket routes have no place in an OpenAPI document
            route = endpoint.route.route
            if not route.options.get("include_in_schema", True):
                continue
            path = openapi_path(endpoint.route.path)
            item = paths.setdefault(path, {})
            methods = sorted(
                route.methods,
                key=lambda m: _METHOD_ORDER.index(m) if m in _METHOD_ORDER else 99,
            )
            for method in methods:
                item[method.lower()] = self.operation(endpoint, method, len(methods) > 1)
        components = self.schemas.resolve()
        for name, schema in _PROBLEM_SCHEMAS.items():
            components.setdefault(name, schema)
        doc: dict[str, Any] = {
            "openapi": OPENAPI_VERSION,
            "info": dict(self.app.openapi_info),
            "paths": paths,
            "components": {"schemas": dict(sorted(components.items()))},
        }
        if self.security_schemes:
            doc["components"]["securitySchemes"] = dict(sorted(self.security_schemes.items()))
        doc["info"].setdefault("title", "Trellis API")
        doc["info"].setdefault("version", "0.1.0")
        for key in ("servers", "tags", "externalDocs"):
            if key in doc["info"]:
                doc[key] = doc["info"].pop(key)
        return doc

    def operation_id(self, endpoint: Endpoint, method: str, several: bool) -> str:
        opts = endpoint.route.route.options
        base = str(opts.get("operation_id") or endpoint.route.name)
        candidate = f"{base}_{method.lower()}" if several and "operation_id" not in opts else base
        if candidate in self.operation_ids:
            candidate = f"{base}_{method.lower()}"
        unique, n = candidate, 2
        while unique in self.operation_ids:
            unique, n = f"{candidate}_{n}", n + 1
        self.operation_ids.add(unique)
        return unique

    def operation(self, endpoint: Endpoint, method: str, several: bool) -> dict[str, Any]:
        flat = endpoint.route
        route = flat.route
        opts = route.options
        fn = route.endpoint
        op: dict[str, Any] = {}
        if flat.tags:
            op["tags"] = list(flat.tags)
        op["summary"] = str(opts.get("summary") or _humanize(flat.name))
        description = opts.get("description") or inspect.getdoc(fn)
        if description and not (inspect.isfunction(fn) or inspect.ismethod(fn)):
            # A callable object's docstring is its class's: keep it only when given.
            description = opts.get("description")
        if description:
            op["description"] = str(description)
        op["operationId"] = self.operation_id(endpoint, method, several)
        if opts.get("deprecated"):
            op["deprecated"] = True

        collected = _Collected()
        seen: set[int] = set()
        for dep in endpoint.dependencies:
            collected.add_provider(dep.provider)
            _collect(dep.plan, dep.provider, route.localns, collected, seen)
        _collect(endpoint.plan, fn, route.localns, collected, seen)
        parameters = self.parameters(collected.params, flat.path)
        if parameters:
            op["parameters"] = parameters
        body = self.request_body(collected.body)
        if body is not None:
            op["requestBody"] = body
        op["responses"] = self.responses(endpoint, collected.validated)
        for dep in endpoint.dependencies:
            # A dependency may refuse with its own status (a rate limit's 429): it says so.
            for code, spec in (getattr(dep.provider, "openapi_responses", None) or {}).items():
                op["responses"].setdefault(
                    str(code),
                    {
                        "content": {"application/problem+json": {"schema": {"$ref": _PROBLEM_REF}}},
                        **spec,
                    },
                )
        security = self.security(collected.security)
        if security:
            op["security"] = security
            op["responses"].setdefault(
                "401",
                {
                    "description": "Authentication is missing or wrong",
                    "content": {"application/problem+json": {"schema": {"$ref": _PROBLEM_REF}}},
                },
            )
        return op

    def security(
        self, found: list[tuple[SecurityScheme, tuple[str, ...]]]
    ) -> list[dict[str, list[str]]]:
        """The operation's security requirements; registers each scheme in the components.

        Schemes that refuse the request themselves (``auto_error``, the default) are all
        required: one requirement names them all. Each scheme with ``auto_error=False`` is an
        alternative, and so is sending none of them.
        """
        required: dict[str, list[str]] = {}
        optional: dict[str, list[str]] = {}
        for scheme, scopes in found:
            name = scheme.scheme_name
            definition = scheme.openapi()
            known = self.security_schemes.setdefault(name, definition)
            if known != definition:
                raise ConfigurationError(
                    f"two security schemes are named {name!r} but differ ({known!r} and"
                    f" {definition!r}); give one another scheme_name"
                )
            target = required if scheme.auto_error else optional
            listed = target.setdefault(name, [])
            listed.extend(s for s in scopes if s not in listed)
        for name, needed in required.items():
            if name in optional:
                needed.extend(s for s in optional.pop(name) if s not in needed)
        if not optional:
            return [required] if required else []
        return [*({**required, name: needed} for name, needed in optional.items()), required]

    def parameters(self, params: list[tuple[Field, Any, Any]], path: str) -> list[dict[str, Any]]:
        produced = _converter_types(path)
        out: list[dict[str, Any]] = []
        done: set[tuple[str, str]] = set()
        for field, tp, marker in params:
            where = _LOCATIONS[field.kind]
            key = (where, field.alias.lower() if where == "header" else field.alias)
            if key in done:
                continue
            if where == "path" and field.alias not in produced:
                continue  # a host parameter: not part of the path
            done.add(key)
            if where == "path" and (tp is Any or tp is str):
                tp = produced[field.alias]
            elif tp is Any:
                tp = str
            extra: dict[str, Any] = {}
            if isinstance(marker, Param) and marker.examples:
                extra["examples"] = list(marker.examples)
            if not field.required and field.default is not None and where != "path":
                default = _json_default(field.default)
                if default is not _NO_DEFAULT:
                    extra["default"] = default
            param: dict[str, Any] = {
                "name": field.alias,
                "in": where,
                "required": True if where == "path" else field.required,
                "schema": self.schemas.schema(_constrained(tp, marker), extra=extra),
            }
            if isinstance(marker, Param):
                if marker.description:
                    param["description"] = marker.description
                if marker.deprecated:
                    param["deprecated"] = True
                if marker.examples:
                    param["examples"] = {
                        f"example{i}": {"value": v} for i, v in enumerate(marker.examples, 1)
                    }
            if field.is_list and where == "query":
                param["style"] = "form"
                param["explode"] = True
            out.append(param)
        return out

    def request_body(self, fields: list[tuple[Field, Any, Any]]) -> dict[str, Any] | None:
        if not fields:
            return None
        forms = [f for f in fields if f[0].kind in (_FORM, _FILE)]
        if forms:
            has_file = any(f.kind == _FILE for f, _tp, _m in forms)
            media = "multipart/form-data" if has_file else "application/x-www-form-urlencoded"
            return {
                "required": any(f.required for f, _tp, _m in forms),
                "content": {media: {"schema": self.object_schema(forms)}},
            }
        single = [f for f in fields if f[0].kind == _BODY]
        if single:
            field, tp, marker = single[0]
            media = marker.media_type if isinstance(marker, Body) else "application/json"
            body: dict[str, Any] = {
                "required": field.required,
                "content": {media: {"schema": self.schemas.schema(_constrained(tp, marker))}},
            }
            if isinstance(marker, Param) and marker.description:
                body["description"] = marker.description
            return body
        members = [f for f in fields if f[0].kind == _BODY_FIELD]
        media = next(
            (m.media_type for _f, _tp, m in members if isinstance(m, Body)), "application/json"
        )
        return {
            "required": any(f.required for f, _tp, _m in members),
            "content": {media: {"schema": self.object_schema(members)}},
        }

    def object_schema(self, fields: Iterable[tuple[Field, Any, Any]]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field, tp, marker in fields:
            if field.alias in properties:
                continue
            extra: dict[str, Any] = {}
            if isinstance(marker, Param):
                if marker.description:
                    extra["description"] = marker.description
                if marker.examples:
                    extra["examples"] = list(marker.examples)
                if marker.deprecated:
                    extra["deprecated"] = True
            if field.kind == _FILE:
                schema: dict[str, Any] = dict(_BINARY)
                if field.is_list:
                    schema = {"type": "array", "items": schema}
                schema.update(extra)
            else:
                schema = self.schemas.schema(_constrained(tp, marker), extra=extra)
            properties[field.alias] = schema
            if field.required:
                required.append(field.alias)
        out: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            out["required"] = required
        return out

    def responses(self, endpoint: Endpoint, validated: bool) -> dict[str, Any]:
        from trellis.handlers._plan import _hints

        route = endpoint.route.route
        opts = route.options
        if "response_model" in opts:
            declared: Any = opts["response_model"]
        else:
            try:
                hints = _hints(route.endpoint, "openapi", route.localns)
            except Exception:  # it compiled; an unreadable hint is undocumented
                hints = {}
            declared = hints.get("return", inspect.Signature.empty)
        if get_origin(declared) is Annotated:
            declared = get_args(declared)[0]
        status_code = opts.get("status_code") or endpoint.status_code
        empty = declared is None or declared is type(None)
        status = str(status_code or (204 if empty else 200))
        success: dict[str, Any] = {"description": _status_text(status)}
        content = None if empty or status in ("204", "304") else self.content(declared)
        renderers = getattr(endpoint, "renderers", None)
        if content and renderers:
            # Negotiated routes: the JSON schema for JSON, a string for the other renderings.
            schema = next(iter(content.values())).get("schema", {})
            content = {
                r.media_type: {
                    "schema": schema if r.media_type.endswith("json") else {"type": "string"}
                }
                for r in renderers
            }
        if content:
            success["content"] = content
        responses: dict[str, Any] = {status: success}
        if validated:
            responses["422"] = {
                "description": "The request did not validate",
                "content": {
                    "application/problem+json": {"schema": {"$ref": _VALIDATION_PROBLEM_REF}}
                },
            }
        extra_responses: dict[Any, Any] = opts.get("responses") or {}
        for code, spec in extra_responses.items():
            key = str(code)
            entry: dict[str, Any] = dict(responses.get(key, {}))
            spec = dict(spec or {})
            model = spec.pop("model", None)
            entry["description"] = str(spec.pop("description", None) or _status_text(key))
            if model is not None:
                entry["content"] = {
                    "application/json": {"schema": self.schemas.schema(model, "serialization")}
                }
            elif "content" not in spec and key.isdigit() and int(key) >= 400:
                entry["content"] = {"application/problem+json": {"schema": {"$ref": _PROBLEM_REF}}}
            entry.update(spec)
            responses[key] = entry
        return responses

    def content(self, declared: Any) -> dict[str, Any] | None:
        if declared is inspect.Signature.empty or declared is Any or declared is object:
            return {"application/json": {"schema": {}}}
        origin = get_origin(declared)
        if origin is Union or origin is types.UnionType:
            args = [a for a in get_args(declared) if not _is_response_type(a)]
            if not args:
                return self.content(get_args(declared)[0])
            if len(args) < len(get_args(declared)):
                declared = args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
        if _is_response_type(declared):
            cls: Any = get_origin(declared) or declared
            media = getattr(cls, "media_type", None)
            if media == "application/json":
                return {media: {"schema": {}}}
            if media:
                return {media: {"schema": {"type": "string"}}}
            return None
        bare, _ = _strip_none(declared)
        if bare is str:
            return {"text/plain": {"schema": {"type": "string"}}}
        if bare in (bytes, bytearray):
            return {"application/octet-stream": {"schema": dict(_BINARY)}}
        return {"application/json": {"schema": self.schemas.schema(declared, "serialization")}}


_NO_DEFAULT: Any = object()


def _json_default(value: Any) -> Any:
    """``value`` as JSON for a schema's ``default``, or ``_NO_DEFAULT`` when it has no form."""
    from pydantic_core import to_jsonable_python

    try:
        return to_jsonable_python(value)
    except Exception:  # a default with no JSON form is left out
        return _NO_DEFAULT


def build_openapi(app: App) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document describing ``app``'s routes.

    ``App.openapi()`` calls this once and caches the result. Routes declared with
    ``include_in_schema=False`` are left out, as are parameters whose marker says so.

    Args:
        app: The application; its routes are compiled if they are not yet.

    Returns:
        The document as plain JSON data: ``openapi``, ``info`` (from ``app.openapi_info``;
        ``servers``, ``tags`` and ``externalDocs`` given there move to the top level),
        ``paths`` and ``components.schemas`` (every model, plus ``Problem`` and
        ``ValidationProblem`` for the error responses), and ``components.securitySchemes``
        when some operation depends on a ``trellis.security`` scheme.
    """
    return _Builder(app).build()
