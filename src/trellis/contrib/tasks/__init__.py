"""Task backends on existing queues: ``RedisTasks`` runs the app's tasks on SAQ over Redis.

```py
from trellis.contrib.tasks import RedisTasks

app.install(RedisTasks("redis://localhost:6379/0"))
```

The web processes send jobs; ``trellis worker`` runs them (and the periodic schedules) in as
many processes and machines as needed. Task code stays the same as with the in-process
backend. Needs the ``tasks`` extra: ``pip install 'trellis[tasks]'``.
"""

from trellis.contrib.tasks.redis import RedisTasks as RedisTasks

__all__ = ["RedisTasks"]
