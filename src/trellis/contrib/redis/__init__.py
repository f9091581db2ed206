"""Redis batteries: a cache, a session store and channels shared by every process.

```python
# needs: redis
import os

from trellis import App
from trellis.channels import Channels
from trellis.contrib.redis import RedisCache, RedisChannels, RedisSessionStore
from trellis.testing import TestClient

url = os.environ["REDIS_URL"]  # redis://localhost:6379/0
name = os.environ["REDIS_PREFIX"]  # this app's keys, apart from other apps'

app = App()
cache = app.install(RedisCache(url, prefix=f"{name}:cache:"))  # app.state.cache
app.install(RedisSessionStore(url, prefix=f"{name}:session:"))  # app.state.session_store
channels = app.install(Channels(RedisChannels(url, prefix=f"{name}:channels:")))

with TestClient(app) as client:
    client.call(cache.set, "greeting", "hello")
    assert client.call(cache.get, "greeting") == "hello"
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
