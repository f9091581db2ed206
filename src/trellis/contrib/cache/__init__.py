"""Caches: one async interface, three backends that behave the same.

```python
from trellis import App
from trellis.contrib.cache import MemoryCache
from trellis.testing import TestClient

app = App()
cache = app.install(MemoryCache())  # app.state.cache


@app.get("/weather")
async def weather() -> dict[str, float]:
    views = await cache.incr("views:weather", ttl=60)  # a counter, atomic
    if await cache.get("weather:paris") is None:
        await cache.set("weather:paris", {"temp": 21.5}, ttl=600)
    return {"views": views, **await cache.get("weather:paris")}


with TestClient(app) as client:
    assert client.get("/weather").json() == {"views": 1, "temp": 21.5}
    assert client.get("/weather").json() == {"views": 2, "temp": 21.5}
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
