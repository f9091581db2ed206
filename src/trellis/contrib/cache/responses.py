"""``@cached``: keep a handler's whole response in the cache and answer from it.

```py
from trellis.contrib.cache import MemoryCache, cached

app.install(MemoryCache())                     # app.state.cache

@app.get("/articles/{slug}")
@cached(300, vary=("Accept",))
async def article(slug: str) -> Article:
    return await load_article(slug)            # runs once per slug (and Accept) per 5 minutes
```
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
import hashlib
import inspect
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from trellis.contrib.cache._flight import LOCK_TIMEOUT
from trellis.exceptions import ConfigurationError
from trellis.http.request import Request
from trellis.http.response import JSONResponse, Response
from trellis.i18n import get_locale
from trellis.sessions import SCOPE_KEY, config_for

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.contrib.cache._protocol import CacheBackend

__all__ = ["cached", "response_key"]

F = TypeVar("F", bound=Callable[..., Any])

#: The parameter ``@cached`` adds to the handler's signature: Trellis passes it the request.
REQUEST_PARAM = "_trellis_cached_request"

# Cache-Control directives that forbid keeping the response for others.
_PRIVATE = (b"private", b"no-store", b"no-cache")


class _Uncacheable(Exception):
    """The computed response must not be stored; it goes to this one client only."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _vary_names(vary: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(vary, str):
        vary = (vary,)
    names: list[str] = []
    for name in vary:
        if not isinstance(name, str) or not name.strip() or "," in name:
            raise ConfigurationError(
                f"@cached(vary=...) takes header names, one per item, not {name!r}"
            )
        lowered = name.strip().lower()
        if lowered not in names:
            names.append(lowered)
    return tuple(names)


def response_key(request: Request, vary: Sequence[str] = (), base: str | None = None) -> str:
    """The cache key ``@cached`` stores the response to ``request`` under.

    It names the URL (scheme, host, path, and the query with its parameters sorted by name,
    so ``?a=1&b=2`` and ``?b=2&a=1`` are one entry), the locale (``trellis.i18n``), and the
    values of the ``vary`` request headers. ``HEAD`` and ``GET`` share entries.

    Args:
        request: The request.
        vary: Lower-case header names whose values make a different entry.
        base: Replaces the URL part (``@cached(key=...)``).
    """
    scope = request.scope
    if base is None:
        raw_query: bytes = scope.get("query_string", b"")
        # Sorted by name only: values of one name keep their order (getlist order matters).
        pairs = sorted((p for p in raw_query.split(b"&") if p), key=lambda p: p.split(b"=")[0])
        root: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root and not path.startswith(root):  # servers disagree on whether path has it
            path = root + path
        host = request.headers.get("host", "")
        query = b"&".join(pairs).decode("latin-1")
        base = f"{scope.get('scheme', 'http')}://{host}{path}?{query}"
    values = [", ".join(request.headers.getlist(name)) for name in vary]
    material = orjson.dumps([base, get_locale(), values])
    return "trellis:response:" + hashlib.blake2b(material, digest_size=20).hexdigest()


class _Policy:
    """What one ``@cached`` decorator decided, and the work it does per request."""

    def __init__(
        self,
        ttl: float | None,
        vary: tuple[str, ...],
        key: str | Callable[[Request], str] | None,
        cache: CacheBackend | None,
        max_age: int | None,
        etag: bool,
        lock_timeout: float,
    ) -> None:
        self.ttl = ttl
        self.vary = vary
        self.key = key
        self.cache = cache
        self.max_age = max_age
        self.etag = etag
        self.lock_timeout = lock_timeout
        self.personal_ok = "authorization" in vary
        self.session_ok = "cookie" in vary
        self.wrapper: Callable[..., Any] | None = None
        self.where = ""
        # The endpoint of each app serving the handler: how it turns values into responses.
        self._endpoints: weakref.WeakKeyDictionary[App, Any] = weakref.WeakKeyDictionary()

    # -- per request ------------------------------------------------------------------------

    def _cache_for(self, request: Request) -> CacheBackend:
        if self.cache is not None:
            return self.cache
        cache: CacheBackend | None = getattr(request.app.state, "cache", None)
        if cache is None:
            raise ConfigurationError(
                f"@cached on {self.where}: the application has no cache; install one"
                " (app.install(MemoryCache()), RedisCache(...), DatabaseCache(...)) or pass"
                " @cached(..., cache=...)"
            )
        return cache

    def _key(self, request: Request) -> str:
        key = self.key
        base = key(request) if callable(key) else key
        return response_key(request, self.vary, base)

    def _personal(self, request: Request) -> bool:
        """Whether the request names its sender (a token, a session) in a way not varied on."""
        if not self.personal_ok and "authorization" in request.headers:
            return True
        if self.session_ok:
            return False
        if request.scope.get(SCOPE_KEY) is not None:
            return True  # loaded from a session store
        try:
            cookie = config_for(request.scope).cookie_name
        except ConfigurationError:
            return False  # sessions are off
        return cookie in request.cookies

    async def respond(self, request: Request, call: Callable[[], Any]) -> Any:
        if request.method not in ("GET", "HEAD") or self._personal(request):
            return await call()  # not ours to keep: the handler answers as if not decorated
        cache = self._cache_for(request)
        key = self._key(request)

        async def compute() -> dict[str, Any]:
            response = self._to_response(request, await call())
            entry = self._entry(request, response)
            if entry is None:
                raise _Uncacheable(response)
            return entry

        # PERF: one read on a hit; on a miss one caller computes while the others wait for
        # its answer (a stampede on a popular page costs one render). A computation whose
        # response must not be stored lets the waiters compute their own at once.
        fetch = getattr(cache, "_get_or_set", None)
        try:
            if fetch is not None:
                entry = await fetch(key, compute, self.ttl, self.lock_timeout, retry=False)
            else:  # a backend of another library: the public method
                entry = await cache.get_or_set(key, compute, self.ttl)
        except _Uncacheable as exc:
            return exc.response
        if not self._fits(request, entry):
            # Made for other values of a header the response itself varies on: make ours.
            try:
                entry = await compute()
            except _Uncacheable as exc:
                return exc.response
            await cache.set(key, entry, self.ttl)
        return _from_entry(entry)

    # -- responses ------------------------------------------------------------------------

    def _endpoint(self, app: App) -> Any:
        try:
            return self._endpoints[app]
        except (KeyError, TypeError):
            pass
        found = None
        for endpoint in getattr(app, "endpoints", ()):
            fn = getattr(endpoint, "fn", None)
            if fn is self.wrapper or getattr(fn, "__func__", None) is self.wrapper:
                found = endpoint
                break
        try:
            self._endpoints[app] = found
        except TypeError:  # pragma: no cover - an app that takes no weak reference
            pass
        return found

    def _to_response(self, request: Request, result: Any) -> Response:
        """The response the endpoint would make of ``result`` (its encoder, status, renderers)."""
        if isinstance(result, Response):
            return result
        from trellis.handlers.compile import coerce_response

        endpoint = self._endpoint(request.app)
        if endpoint is None:
            return coerce_response(result)
        status: int | None = endpoint.status_code
        encoder = endpoint.encoder
        if endpoint.renderers is not None:
            from trellis.negotiation import choose

            renderer = choose(endpoint.renderers, request.headers.get("accept"))
            raw = encoder(result) if encoder is not None else JSONResponse(result).body
            response: Response = renderer.render(orjson.loads(raw), request)
            response.status_code = status or response.status_code
            response.headers.add_vary("Accept")
            return response
        if encoder is not None and result is not None:
            return Response(encoder(result), status or 200, media_type="application/json")
        return coerce_response(result, status)

    def _entry(self, request: Request, response: Response) -> dict[str, Any] | None:
        """What is stored of ``response``, or ``None`` when it must not be stored."""
        if (
            response.status_code != 200
            or type(response).__call__ is not Response.__call__  # streamed, a file ...
            or response.background is not None
        ):
            return None
        if not self.session_ok and request.scope.get(SCOPE_KEY) is not None:
            # The handler opened the visitor's session: the page may be theirs alone.
            return None
        headers = response.headers
        extra: dict[str, str | None] = {}
        for name, value in response.raw_headers:
            lowered = name.lower()
            if lowered == b"set-cookie":
                return None
            if lowered == b"cache-control" and any(d in value.lower() for d in _PRIVATE):
                return None
            if lowered == b"vary":
                for part in value.decode("latin-1").split(","):
                    header = part.strip().lower()
                    if header == "*":
                        return None
                    if header and header not in self.vary:
                        extra[header] = _header(request, header)
        for vary_name in self.vary:
            headers.add_vary(_title(vary_name))
        if self.max_age is not None and "cache-control" not in headers:
            headers["cache-control"] = f"max-age={self.max_age}"
        body = response.body
        if self.etag and "etag" not in headers:
            tag = hashlib.blake2b(body, digest_size=16).hexdigest()
            headers["etag"] = f'"{tag}"'
        entry: dict[str, Any] = {
            "s": response.status_code,
            "h": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.raw_headers],
        }
        try:
            entry["t"] = body.decode()
        except UnicodeDecodeError:
            entry["b"] = base64.b64encode(body).decode("ascii")
        if extra:
            entry["v"] = extra
        return entry

    @staticmethod
    def _fits(request: Request, entry: dict[str, Any]) -> bool:
        extra: dict[str, str | None] | None = entry.get("v")
        if not extra:
            return True
        return all(_header(request, name) == value for name, value in extra.items())


def _header(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    return ", ".join(values) if values else None


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _from_entry(entry: dict[str, Any]) -> Response:
    body = entry["t"].encode() if "t" in entry else base64.b64decode(entry["b"])
    response = Response(body, entry["s"])
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in entry["h"]]
    return response


def cached(
    ttl: float | None,
    *,
    vary: str | Sequence[str] = (),
    key: str | Callable[[Request], str] | None = None,
    cache: CacheBackend | None = None,
    max_age: int | None = None,
    etag: bool = True,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Callable[[F], F]:
    """Decorator: keep the handler's response in the cache for ``ttl`` seconds.

    The whole response is kept (status, headers, body) for ``GET`` and ``HEAD`` requests
    that get ``200``; a request with the same URL (query parameters in any order), locale
    and ``vary`` headers gets it back without the handler running. A stampede on an entry
    that expired costs one render: concurrent requests wait for it.

    Never kept: a response that sets a cookie, says ``Cache-Control: private``,
    ``no-store`` or ``no-cache``, varies on ``*``, streams, has background tasks, or opened
    the visitor's session. Requests that name their sender (an ``Authorization`` header, the
    session cookie) are neither answered from the cache nor kept, unless ``vary`` names
    that header (``Authorization``, ``Cookie``): they get the handler's own answer.

    A response that varies on a header ``vary`` does not name (``Vary: Accept`` from content
    negotiation) is kept with that header's value and given only to requests with the same
    value.

    Put it under the route decorator. The handler keeps its signature (typed parameters,
    dependencies and the OpenAPI document work as before); parameters are still read and
    dependencies still run on a hit.

    Args:
        ttl: Seconds to keep a response (``None``: until evicted).
        vary: Request headers whose values make a different entry (``"Accept-Language"``,
            ``"Cookie"`` for pages per visitor, ``"Authorization"`` per API client).
        key: A fixed name, or a function of the request, replacing the URL in the key
            (``vary`` values and the locale are still added).
        cache: The cache to use; ``app.state.cache`` when not given.
        max_age: Also send ``Cache-Control: max-age=<max_age>`` (when the response has no
            ``Cache-Control``), so browsers and proxies keep it too.
        etag: Give stored responses an ``ETag`` (the body's hash, computed once), for
            ``ETagMiddleware`` to answer ``304``.
        lock_timeout: The longest the others wait for one render.

    Raises:
        ConfigurationError: ``vary`` holds something that is not a header name.
        TypeError: what is decorated is not a function.
    """
    names = _vary_names(vary)
    if max_age is not None and (not isinstance(max_age, int) or max_age < 0):
        raise ConfigurationError(f"@cached(max_age=...) is a number of seconds, not {max_age!r}")
    if key is not None and not (isinstance(key, str) or callable(key)):
        raise ConfigurationError(f"@cached(key=...) is a string or a function, not {key!r}")

    def decorator(fn: F) -> F:
        if inspect.isclass(fn) or not callable(fn):
            raise TypeError(f"@cached decorates a handler function, not {fn!r}")
        policy = _Policy(ttl, names, key, cache, max_age, etag, lock_timeout)
        policy.where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
        signature = inspect.signature(fn)
        if REQUEST_PARAM in signature.parameters:
            raise TypeError(f"@cached is applied twice to {policy.where}")
        is_async = inspect.iscoroutinefunction(fn)

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            request: Request = kwargs.pop(REQUEST_PARAM)
            if is_async:
                return await policy.respond(request, lambda: fn(*args, **kwargs))
            return await policy.respond(request, lambda: _in_thread(request, fn, args, kwargs))

        # Trellis reads the handler's parameters from the signature: the handler's own,
        # plus the request for the key (keyword-only, before any **kwargs).
        params = list(signature.parameters.values())
        extra = inspect.Parameter(REQUEST_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        at = len(params)
        if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
            at -= 1
        params.insert(at, extra)
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        # A new dict: functools.wraps shares the handler's own.
        wrapper.__annotations__ = {**getattr(fn, "__annotations__", {}), REQUEST_PARAM: Request}
        policy.wrapper = wrapper
        return wrapper  # type: ignore[return-value]

    return decorator


async def _in_thread(request: Request, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    # A sync handler runs in the app's thread pool, as it would undecorated.
    executor = getattr(request.app, "_executor", None)
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)
