"""Caches: one async interface, three backends that behave the same.

```py
from trellis.contrib.cache import MemoryCache

cache = app.install(MemoryCache())           # app.state.cache

await cache.set("weather:paris", {"temp": 21.5}, ttl=600)
await cache.get("weather:paris")             # {"temp": 21.5}
await cache.incr(f"hits:{ip}", ttl=60)       # a counter, atomic
```

- ``MemoryCache``: in this process (tests, development, a single process).
- ``trellis.contrib.redis.RedisCache``: shared by every process, needs the ``redis`` extra.
- ``trellis.contrib.db.stores.DatabaseCache``: in a database table, for deployments without
  Redis.

Code that only needs "a cache" types it as ``CacheBackend`` and takes ``app.state.cache``.
"""

from trellis.contrib.cache._protocol import CacheBackend as CacheBackend
from trellis.contrib.cache.fragments import FragmentCache as FragmentCache
from trellis.contrib.cache.memory import MemoryCache as MemoryCache
from trellis.contrib.cache.responses import cached as cached

__all__ = ["CacheBackend", "FragmentCache", "MemoryCache", "cached"]
