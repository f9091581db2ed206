"""``{% cache %}``: keep a rendered piece of a template and reuse it.

```jinja
{% cache "sidebar", 300 %}                  {# one copy, for 5 minutes #}
  {{ expensive_menu() }}
{% endcache %}

{% cache "post", 600, post.id, post.updated_at %}   {# one copy per post and version #}
  {{ post.body|markdown }}
{% endcache %}
```

The first expression names the fragment, the second is its lifetime in seconds (``None``:
until evicted; left out: the extension's default), and any more are added to the key
(what the fragment depends on). The current locale (``trellis.i18n.get_locale()``) is part
of every key, so each language gets its own copy.

Templates render synchronously in Trellis (``render()`` returns at once), so the fragments
live in a ``MemoryCache`` of the process: a network cache would block the event loop for
each fragment. In an environment with ``enable_async=True`` any cache backend works (Redis
included), through ``get_or_set``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import jinja2
import orjson
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from trellis.contrib.cache._flight import MISSING
from trellis.contrib.cache.memory import MemoryCache
from trellis.i18n import get_locale

__all__ = ["CacheExtension", "fragment_key"]

#: The lifetime of a fragment whose tag gives none, unless the environment says otherwise.
DEFAULT_TTL = 300.0
#: The size of the ``MemoryCache`` an environment gets when it is given none.
DEFAULT_ENTRIES = 1000


def fragment_key(name: Any, *parts: Any, locale: str | None = None) -> str:
    """The cache key of ``{% cache name, ttl, *parts %}``, to delete a fragment yourself.

    ``await cache.delete(fragment_key("post", post.id, post.updated_at))`` forgets the
    fragment of the current locale (or of ``locale``).
    """
    if locale is None:
        locale = get_locale()
    material = orjson.dumps(
        [name, list(parts), locale], default=str, option=orjson.OPT_NON_STR_KEYS
    )
    return "trellis:fragment:" + hashlib.blake2b(material, digest_size=20).hexdigest()


class CacheExtension(Extension):
    """The Jinja2 extension behind ``{% cache name, ttl, *parts %} ... {% endcache %}``.

    ``FragmentCache`` adds it to the application's templates; elsewhere add it yourself
    (``jinja2.Environment(extensions=[CacheExtension])``). It keeps fragments in
    ``environment.fragment_cache`` (a ``MemoryCache`` of its own unless set) for
    ``environment.fragment_cache_ttl`` seconds unless the tag says.
    """

    tags = {"cache"}

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        # extend() sets only what is not set yet: a cache given before is kept.
        environment.extend(
            fragment_cache=MemoryCache(DEFAULT_ENTRIES), fragment_cache_ttl=DEFAULT_TTL
        )

    def parse(self, parser: Parser) -> nodes.Node:
        """Read the tag's expressions and its body."""
        lineno = next(parser.stream).lineno
        name = parser.parse_expression()
        ttl: nodes.Expr = nodes.Const(None)
        has_ttl = False
        parts: list[nodes.Expr] = []
        if parser.stream.skip_if("comma"):
            ttl, has_ttl = parser.parse_expression(), True
            while parser.stream.skip_if("comma"):
                parts.append(parser.parse_expression())
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        method = "_fragment_async" if self.environment.is_async else "_fragment"
        call = self.call_method(
            method, [name, ttl, nodes.Const(has_ttl), nodes.List(parts)], lineno=lineno
        )
        return nodes.CallBlock(call, [], [], body, lineno=lineno)

    def _store_and_ttl(self, ttl: Any, has_ttl: bool) -> tuple[Any, float | None]:
        env: Any = self.environment
        if not has_ttl:
            ttl = env.fragment_cache_ttl
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)):
            raise TypeError(f"{{% cache %}}: the lifetime is a number of seconds, not {ttl!r}")
        return env.fragment_cache, ttl

    def _fragment(
        self, name: Any, ttl: Any, has_ttl: bool, parts: list[Any], caller: Callable[[], str]
    ) -> str:
        store, seconds = self._store_and_ttl(ttl, has_ttl)
        if not isinstance(store, MemoryCache):
            raise TypeError(
                "{% cache %} in a template rendered synchronously keeps fragments in a"
                f" MemoryCache, not {type(store).__name__} (a network cache would block the"
                " event loop); use FragmentCache(store=MemoryCache()) or an async environment"
            )
        key = fragment_key(name, *parts)
        # PERF: one dictionary lookup on a hit; the body is not rendered at all.
        found = store.get_now(key, MISSING)
        if found is not MISSING:
            return Markup(found)
        rendered = caller()
        store.set_now(key, str(rendered), seconds)
        return rendered

    async def _fragment_async(
        self, name: Any, ttl: Any, has_ttl: bool, parts: list[Any], caller: Callable[..., Any]
    ) -> str:
        store, seconds = self._store_and_ttl(ttl, has_ttl)
        key = fragment_key(name, *parts)

        async def render() -> str:
            return str(await caller())

        # One render per key at a time, in every process that shares the cache.
        return Markup(await store.get_or_set(key, render, seconds))
