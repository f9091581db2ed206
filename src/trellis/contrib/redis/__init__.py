"""Redis batteries: a cache, a session store and channels shared by every process.

```py
from trellis.channels import Channels
from trellis.contrib.redis import RedisCache, RedisChannels, RedisSessionStore

app.install(RedisCache("redis://localhost:6379/0"))          # app.state.cache
app.install(RedisSessionStore("redis://localhost:6379/0"))   # app.state.session_store
channels = app.install(Channels(RedisChannels("redis://localhost:6379/0")))
```

All connect at start-up (the app does not start when Redis is unreachable) and close at
shut-down. Outside an app: ``async with RedisCache(url) as cache: ...``, or ``await
cache.connect()`` and ``await cache.close()``. Needs the ``redis`` extra: ``pip install
'trellis[redis]'``.
"""

from trellis.contrib.redis._client import RedisUnavailableError as RedisUnavailableError
from trellis.contrib.redis.cache import RedisCache as RedisCache
from trellis.contrib.redis.channels import RedisChannels as RedisChannels
from trellis.contrib.redis.sessions import RedisSessionStore as RedisSessionStore

__all__ = ["RedisCache", "RedisChannels", "RedisSessionStore", "RedisUnavailableError"]
