"""Pure ASGI middleware, and ``Middleware``, the spec the application builds its stack from.

Every middleware here is a class ``X(app, **options)`` whose instances are ASGI applications.
The application folds the registered specs into one chain once, at start-up:

```python
from trellis import App
from trellis.middleware import CORSMiddleware, GZipMiddleware
from trellis.testing import TestClient

app = App()
app.add_middleware(CORSMiddleware, allow_origins=["https://example.com"])
app.add_middleware(GZipMiddleware, minimum_size=1000)


@app.get("/")
async def index() -> str:
    return "x" * 2000


with TestClient(app) as client:
    response = client.get("/", headers={"origin": "https://example.com"})
    assert response.headers["access-control-allow-origin"] == "https://example.com"
    assert response.headers["content-encoding"] == "gzip"
```

Options are checked when the chain is built, so a misconfiguration stops start-up with a
``ConfigurationError`` instead of surfacing on a request.
"""

from __future__ import annotations

from typing import Any, ParamSpec, Protocol

from trellis.middleware.cors import CORSMiddleware as CORSMiddleware
from trellis.middleware.etag import ETagMiddleware as ETagMiddleware
from trellis.middleware.gzip import GZipMiddleware as GZipMiddleware
from trellis.middleware.hosts import TrustedHostMiddleware as TrustedHostMiddleware
from trellis.middleware.https import HTTPSRedirectMiddleware as HTTPSRedirectMiddleware
from trellis.middleware.ratelimit import RateLimitMiddleware as RateLimitMiddleware
from trellis.middleware.request_id import RequestIDMiddleware as RequestIDMiddleware
from trellis.middleware.security import SecurityHeadersMiddleware as SecurityHeadersMiddleware
from trellis.middleware.sessions import SessionMiddleware as SessionMiddleware
from trellis.types import ASGIApp

__all__ = [
    "CORSMiddleware",
    "ETagMiddleware",
    "GZipMiddleware",
    "HTTPSRedirectMiddleware",
    "Middleware",
    "MiddlewareFactory",
    "RateLimitMiddleware",
    "RequestIDMiddleware",
    "SecurityHeadersMiddleware",
    "SessionMiddleware",
    "TrustedHostMiddleware",
]

P = ParamSpec("P")


class MiddlewareFactory(Protocol[P]):
    """Anything called as ``factory(app, *args, **kwargs)`` that returns an ASGI app.

    A middleware class is one; so is a function that wraps an app.
    """

    def __call__(self, app: ASGIApp, /, *args: P.args, **kwargs: P.kwargs) -> ASGIApp: ...


class Middleware:
    """A middleware waiting to be built: its factory and the options to build it with.

    Type checkers match the options against the factory's signature, so
    ``Middleware(GZipMiddleware, minimum_size="big")`` is an error before anything runs.

    Args:
        factory: The middleware class (or function) called as ``factory(app, *args, **kwargs)``.
        *args: Positional options for the factory.
        **kwargs: Keyword options for the factory.

    Example:
        ```python
        from trellis.middleware import GZipMiddleware, Middleware

        spec = Middleware(GZipMiddleware, minimum_size=1000)
        assert repr(spec) == "Middleware(GZipMiddleware, minimum_size=1000)"
        ```
    """

    __slots__ = ("args", "factory", "kwargs")

    def __init__(self, factory: MiddlewareFactory[P], /, *args: P.args, **kwargs: P.kwargs) -> None:
        self.factory: MiddlewareFactory[Any] = factory
        self.args: tuple[Any, ...] = args
        self.kwargs: dict[str, Any] = kwargs

    def build(self, app: ASGIApp) -> ASGIApp:
        """Wrap ``app`` in this middleware and return the wrapper."""
        return self.factory(app, *self.args, **self.kwargs)

    def __repr__(self) -> str:
        name = getattr(self.factory, "__qualname__", repr(self.factory))
        options = [repr(a) for a in self.args]
        options += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Middleware({', '.join([name, *options])})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Middleware):
            return NotImplemented
        return (self.factory, self.args, self.kwargs) == (other.factory, other.args, other.kwargs)

    __hash__ = None  # type: ignore[assignment]
