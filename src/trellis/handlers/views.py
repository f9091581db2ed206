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
    class with ``app.route(path)`` (every verb it defines) or ``app.route(path, methods=[...])``
    (only those; each must be defined). Each method is a handler like any other: it receives path
    parameters by name and the ``Request`` when it declares one. The class is instantiated once,
    at registration, with no arguments: keep per-request data on the request, not on ``self``.

    Example:
        ```python
        from trellis import App, View
        from trellis.testing import TestClient

        app = App()


        @app.route("/items/{id:int}")
        class ItemView(View):
            async def get(self, id: int) -> dict[str, int]:
                return {"id": id}

            async def delete(self, id: int) -> None: ...


        with TestClient(app) as client:
            assert client.get("/items/3").json() == {"id": 3}
            assert client.delete("/items/3").status_code == 204
            assert client.put("/items/3").status_code == 405  # no put method
        ```
    """


def view_routes(
    cls: type[Any], methods: Iterable[str] | None = None
) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Yield ``(METHOD, bound method)`` for each verb of the view that is registered.

    Args:
        cls: The view class; it is instantiated once, with no arguments.
        methods: The verbs to register; ``None`` (what ``route(path)`` passes) means every
            verb the class defines.

    Raises:
        ConfigurationError: the class cannot be instantiated without arguments, defines none
            of the verbs, or lacks one that ``methods`` asks for.
    """
    try:
        instance = cls()
    except TypeError as exc:
        raise ConfigurationError(
            f"view {cls.__module__}.{cls.__qualname__} cannot be created with no arguments"
            f" ({exc}); a view is instantiated once, at registration"
        ) from None
    defined = {
        verb.upper(): fn
        for verb in _VERBS
        if (fn := getattr(instance, verb, None)) is not None and callable(fn)
    }
    if not defined:
        raise ConfigurationError(
            f"view {cls.__module__}.{cls.__qualname__} defines none of the methods"
            f" {', '.join(_VERBS)}"
        )
    if methods is None:
        yield from defined.items()
        return
    wanted = [m.upper() for m in ([methods] if isinstance(methods, str) else methods)]
    # HEAD and OPTIONS are answered automatically, so a view need not define them.
    missing = [m for m in wanted if m not in defined and m not in ("HEAD", "OPTIONS")]
    if missing:
        raise ConfigurationError(
            f"view {cls.__module__}.{cls.__qualname__} was registered for"
            f" {', '.join(missing)} but defines no {', '.join(m.lower() for m in missing)}()"
            " method; add it, or leave methods out to register every method it defines"
        )
    for verb, fn in defined.items():
        if verb in wanted:
            yield verb, fn
