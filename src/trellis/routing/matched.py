"""``scope["route"]``: the route that answered a request, for metrics, traces and logs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["MatchedRoute"]

_PARAM = re.compile(r"{([^{}:]*)(?::[^{}]*)?}")


class MatchedRoute:
    """The route that answered a request; the application puts it in ``scope["route"]``.

    Built once per route when the application is built, so naming the route costs a request
    one dictionary store. Requests no route answered (404, the trailing-slash redirect, a
    refused host) have no ``"route"`` key.

    Attributes:
        path: The path as declared, converters included, with the prefixes of the routers it
            was included through (``/users/{id:int}``); not the mount point (``root_path``)
            of the application itself. For a request answered by a mounted application, the
            mount's path followed by ``/*`` (``/legacy/*``).
        template: ``path`` without converters (``/users/{id}``): the label for metrics and
            the ``http.route`` of traces. Never the raw path, so one series per route, not one
            per user.
        name: The route's name (for ``url_for``); ``None`` for a mount without a name, the
            automatic ``OPTIONS`` answer, and a 405 (the path matched, the method did not).
        endpoint: The handler function, or ``None`` (a mount, automatic ``OPTIONS``, 405).

    Example:
        ```python
        from trellis import App, Request
        from trellis.testing import TestClient

        app = App()


        @app.get("/users/{id:int}", name="user")
        async def user(id: int, request: Request) -> dict[str, str | None]:
            route = request.scope["route"]
            return {"path": route.path, "template": route.template, "name": route.name}


        with TestClient(app) as client:
            assert client.get("/users/7").json() == {
                "path": "/users/{id:int}",
                "template": "/users/{id}",
                "name": "user",
            }
        ```
    """

    __slots__ = ("endpoint", "name", "path", "template")

    def __init__(
        self,
        path: str,
        name: str | None = None,
        endpoint: Callable[..., Any] | None = None,
        *,
        template: str | None = None,
    ) -> None:
        self.path = path
        self.name = name
        self.endpoint = endpoint
        self.template = _PARAM.sub(r"{\1}", path) if template is None else template

    def __repr__(self) -> str:
        return f"MatchedRoute({self.path!r}, name={self.name!r})"
