"""Session data in Redis: server-side sessions shared by every process."""

from __future__ import annotations

from typing import Any

from trellis.contrib.cache._values import dumps, loads
from trellis.contrib.redis._client import RedisStore, milliseconds

__all__ = ["RedisSessionStore"]


class RedisSessionStore(RedisStore):
    """Session data in Redis, the session backend for several processes or servers.

    Installed, it makes the application's sessions server-side: the cookie holds only a
    random session id, the data (a JSON object) lives in Redis under ``prefix`` + id and
    expires by itself after ``ttl`` seconds without a save.

    ```python
    # needs: redis
    import os

    from trellis import App, Request
    from trellis.contrib.redis import RedisSessionStore
    from trellis.testing import TestClient

    app = App(csrf=False)  # this example posts without a token
    prefix = os.environ["REDIS_PREFIX"] + ":session:"  # default "trellis:session:"
    # app.state.session_store: the sessions of the app live in Redis
    app.install(RedisSessionStore(os.environ["REDIS_URL"], prefix=prefix))


    @app.post("/cart")
    async def add(request: Request, item: str) -> dict[str, list[str]]:
        request.session["cart"] = [*request.session.get("cart", []), item]
        return {"cart": request.session["cart"]}


    with TestClient(app) as client:
        client.post("/cart", params={"item": "tea"})
        assert client.post("/cart", params={"item": "milk"}).json() == {"cart": ["tea", "milk"]}
    ```

    Args:
        url_or_client: A Redis URL or a ``redis.asyncio.Redis`` client of yours (one
            client can serve a ``RedisCache`` too).
        prefix: Put before every session id (default ``trellis:session:``).
        connect_timeout: Seconds to wait for a connection.
        timeout: Seconds to wait for an answer to a command.
        options: More options of ``redis.asyncio.Redis.from_url``.
    """

    state_name = "session_store"
    default_prefix = "trellis:session:"

    async def load(self, session_id: str) -> dict[str, Any] | None:
        """The data of a session, or ``None`` when it is unknown or expired."""
        raw = await self.client.get(self._key(session_id))
        if raw is None:
            return None
        data = loads(raw)
        return data if isinstance(data, dict) else None

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        """Store a session's data for ``ttl`` seconds (replacing what it had)."""
        name = self._key(session_id)
        if not isinstance(data, dict):
            raise TypeError(f"session data is a dict, not {type(data).__name__}")
        text = dumps(data, "sessions keep JSON values")
        if ttl > 0:
            await self.client.set(name, text, px=milliseconds(ttl))
        else:
            await self.client.delete(name)  # expired at once

    async def delete(self, session_id: str) -> None:
        """Forget a session (nothing happens for an unknown one)."""
        await self.client.delete(self._key(session_id))
