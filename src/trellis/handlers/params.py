"""Parameter markers: where a handler parameter comes from, and its constraints.

A parameter's source is decided once, at start-up, from its annotation:

- a name that appears in the route path is a path parameter;
- ``Request`` / ``WebSocket`` (by type) are injected;
- ``Annotated[T, Query(...)]`` (or ``Path``, ``Header``, ``Cookie``, ``Body``, ``Form``,
  ``File``) says so explicitly, with an alias and constraints;
- ``Depends(provider)`` (as the default or inside ``Annotated``) is a dependency;
- a pydantic model, dataclass, TypedDict or ``list``/``dict`` of them is the JSON body;
- ``UploadFile`` is a file of a multipart form;
- anything else (``int``, ``str | None``, ``list[int]``, enums, dates ...) is a query parameter.

Example:
    ```python
    from typing import Annotated
    from trellis import App
    from trellis.handlers.params import Header, Query

    app = App()

    @app.get("/items")
    async def items(
        q: Annotated[str | None, Query(max_length=50)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        agent: Annotated[str | None, Header(alias="user-agent")] = None,
    ) -> dict[str, object]:
        return {"q": q, "limit": limit, "agent": agent}
    ```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

__all__ = [
    "Body",
    "Cookie",
    "Depends",
    "File",
    "Form",
    "Header",
    "Param",
    "Path",
    "Query",
]

_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "<missing>"})()


class Param:
    """Base of the parameter markers; use ``Query``, ``Path``, ``Header`` ... instead.

    Args:
        default: The value when the client sends none; omit it to make the parameter
            required (or give the default in the signature: ``limit: ... = 10``).
        alias: The name on the wire when it differs from the Python name.
        title: A short title for the API docs.
        description: Text for the API docs.
        gt: Greater than (numbers).
        ge: Greater than or equal (numbers).
        lt: Less than (numbers).
        le: Less than or equal (numbers).
        multiple_of: The value must be a multiple of this (numbers).
        min_length: Shortest length (strings, lists).
        max_length: Longest length (strings, lists).
        pattern: A regular expression the string must match.
        examples: Example values for the API docs.
        deprecated: Mark the parameter deprecated in the API docs.
        include_in_schema: Leave the parameter out of the API docs when false.
    """

    source: str = "query"

    __slots__ = (
        "alias",
        "default",
        "deprecated",
        "description",
        "examples",
        "ge",
        "gt",
        "include_in_schema",
        "le",
        "lt",
        "max_length",
        "min_length",
        "multiple_of",
        "pattern",
        "title",
    )

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        alias: str | None = None,
        title: str | None = None,
        description: str | None = None,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
        le: float | None = None,
        multiple_of: float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        examples: list[Any] | None = None,
        deprecated: bool = False,
        include_in_schema: bool = True,
    ) -> None:
        self.default = default
        self.alias = alias
        self.title = title
        self.description = description
        self.gt = gt
        self.ge = ge
        self.lt = lt
        self.le = le
        self.multiple_of = multiple_of
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = pattern
        self.examples = examples
        self.deprecated = deprecated
        self.include_in_schema = include_in_schema

    def constraints(self) -> dict[str, Any]:
        """The validation constraints that are set, as ``pydantic.Field`` keywords."""
        names = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alias={self.alias!r})"


class Path(Param):
    """A value from the route path (the default for names that appear in the path)."""

    source = "path"
    __slots__ = ()


class Query(Param):
    """A query-string value; ``list[T]`` collects every occurrence (``?tag=a&tag=b``)."""

    source = "query"
    __slots__ = ()


class Header(Param):
    """A request header; ``user_agent`` reads ``User-Agent`` (underscores become hyphens).

    Args:
        convert_underscores: Turn ``_`` into ``-`` in the Python name to find the header.
        **kwargs: As for ``Param``.
    """

    source = "header"
    __slots__ = ("convert_underscores",)

    def __init__(self, default: Any = _MISSING, *, convert_underscores: bool = True, **kwargs: Any):
        super().__init__(default, **kwargs)
        self.convert_underscores = convert_underscores


class Cookie(Param):
    """A cookie value."""

    source = "cookie"
    __slots__ = ()


class Body(Param):
    """The JSON body, or one member of it.

    A single body parameter receives the whole body. With several, or with ``embed=True``,
    each reads the member of the JSON object named like the parameter (or its alias).

    Args:
        embed: Read ``{"<name>": ...}`` instead of the whole body.
        media_type: The content type documented for the body.
        **kwargs: As for ``Param``.
    """

    source = "body"
    __slots__ = ("embed", "media_type")

    def __init__(
        self,
        default: Any = _MISSING,
        *,
        embed: bool = False,
        media_type: str = "application/json",
        **kwargs: Any,
    ) -> None:
        super().__init__(default, **kwargs)
        self.embed = embed
        self.media_type = media_type


class Form(Param):
    """A field of an urlencoded or multipart form."""

    source = "form"
    __slots__ = ()


class File(Param):
    """An uploaded file of a multipart form (``UploadFile``, or ``list[UploadFile]``)."""

    source = "file"
    __slots__ = ()


class Depends:
    """A dependency: the value ``provider`` returns (or yields) for this request.

    Providers are functions (sync or async) or generators (sync or async: the code after
    ``yield`` runs once the response is sent, and also when the handler raised; with
    ``scope="handler"`` it runs as soon as the handler returns, before the response). Their own
    parameters are resolved like a handler's: path, query, headers, other dependencies.
    Within one request each provider runs once, however many parameters ask for it.

    Args:
        provider: The callable that makes the value.
        use_cache: Share one value per request (the default); ``False`` calls it every time.
        scope: ``"request"`` (the default); ``"handler"``: like ``"request"``, but a generator's
            clean-up runs when the handler returns or raises, before the response is sent, and
            an exception it raises becomes the request's error (a database session commits
            there, so a failed commit still answers with an error); or ``"app"``: computed on
            first use and kept for the life of the application (a client, a pool, settings).

    Example:
        ```python
        from typing import Annotated

        from trellis import App, Depends
        from trellis.testing import TestClient

        opened: list[str] = []


        async def get_db():
            opened.append("open")  # db = await connect()
            try:
                yield {"7": "Ada"}
            finally:
                opened.append("closed")  # await db.close(), once the response is sent


        app = App()


        @app.get("/users/{id:int}")
        async def user(id: int, db: Annotated[dict[str, str], Depends(get_db)]) -> dict[str, str]:
            return {"name": db[str(id)]}


        with TestClient(app) as client:
            assert client.get("/users/7").json() == {"name": "Ada"}
        assert opened == ["open", "closed"]
        ```
    """

    __slots__ = ("provider", "scope", "use_cache")

    def __init__(
        self,
        provider: Callable[..., Any],
        *,
        use_cache: bool = True,
        scope: Literal["request", "handler", "app"] = "request",
    ) -> None:
        if not callable(provider):
            raise TypeError(f"Depends() needs a callable, got {provider!r}")
        if scope not in ("request", "handler", "app"):
            raise ValueError("Depends(scope=...) is 'request', 'handler' or 'app'")
        self.provider = provider
        self.use_cache = use_cache
        self.scope = scope

    def __repr__(self) -> str:
        name = getattr(self.provider, "__qualname__", repr(self.provider))
        return f"Depends({name})"
