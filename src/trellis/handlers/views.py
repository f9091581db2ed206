"""Class-based views: one method per HTTP verb (like Falcon resources or Flask MethodView)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from trellis.exceptions import ConfigurationError

__all__ = ["View"]

_VERBS = ("get", "post", "put", "patch", "delete", "options", "head")


class View:
    """Base class for class-based views.

    Define ``get``, ``post``, ``put``, ``patch``, ``delete`` (sync or async) and register the
    class with ``app.route(path)``. Each method is a handler like any other: it receives path
    parameters by name and the ``Request`` when it declares one. The class is instantiated once,
    at registration, with no arguments: keep per-request data on the request, not on ``self``.

    Example:
        ```python
        @app.route("/items/{id:int}")
        class ItemView(View):
            async def get(self, id: int) -> dict[str, int]:
                return {"id": id}

            async def delete(self, id: int) -> None:
                ...
        ```
    """


def view_routes(cls: type[Any], methods: Iterable[str]) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Yield ``(METHOD, bound method)`` for each verb the class defines."""
    instance = cls()
    wanted = {m.upper() for m in methods}
    # ``route(path)`` defaults to ("GET",): for a view that means "every verb it defines".
    every = wanted == {"GET"}
    found = False
    for verb in _VERBS:
        fn = getattr(instance, verb, None)
        if fn is None or not callable(fn):
            continue
        if every or verb.upper() in wanted:
            found = True
            yield verb.upper(), fn
    if not found:
        raise ConfigurationError(
            f"view {cls.__qualname__} defines none of the methods {', '.join(_VERBS)}"
        )
