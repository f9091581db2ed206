"""Testing tools: ``TestClient`` (sync) and ``AsyncTestClient`` call the app in-process.

Both are ``httpx`` clients: every ``httpx`` method and option works. Used as context managers
they run the app's lifespan (start-up and shut-down hooks). Cookies are kept between requests.

Example:
    ```python
    from trellis.testing import TestClient

    def test_index() -> None:
        with TestClient(app) as client:
            assert client.get("/").text == "Hello, World!"
    ```
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from trellis.lifespan import Lifespan, LifespanError
from trellis.testing._transport import AsyncASGITransport, SyncASGITransport
from trellis.types import ASGIApp

if TYPE_CHECKING:
    from trellis.testing.websocket import AsyncWebSocketTestSession

T = TypeVar("T")

__all__ = ["AsyncTestClient", "LifespanError", "TestClient"]


class TestClient(httpx.Client):
    """A synchronous client for an ASGI app; the app runs on a loop in a background thread.

    Args:
        app: The application.
        base_url: Scheme and host the requests claim (``https://...`` for HTTPS behaviour).
        root_path: The ASGI ``root_path`` (as if mounted under a prefix).
        **kwargs: Passed to ``httpx.Client`` (``headers``, ``cookies``, ``follow_redirects``...).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        root_path: str = "",
        **kwargs: Any,
    ) -> None:
        self.app = app
        self._portal_cm: Any = None
        self._portal: Any = None
        self._lifespan: Lifespan | None = None
        self._lifespan_state: dict[str, Any] = {}
        self._asgi_transport = SyncASGITransport(
            app, root_path=root_path, state=self._lifespan_state
        )
        transport = self._asgi_transport
        kwargs.setdefault("follow_redirects", False)
        super().__init__(transport=transport, base_url=base_url, **kwargs)

    def __enter__(self) -> TestClient:
        from anyio.from_thread import start_blocking_portal

        super().__enter__()
        # One loop for the whole block: lifespan and requests share it, as under a server.
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._asgi_transport.portal = self._portal
        lifespan = Lifespan(self.app, self._lifespan_state)
        try:
            self._portal.call(lifespan.startup)
        except BaseException:
            self._close_portal()
            raise
        self._lifespan = lifespan
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            if self._lifespan is not None:
                self._portal.call(self._lifespan.shutdown)
                self._lifespan = None
        finally:
            super().__exit__(exc_type, exc, tb)
            self._close_portal()

    def websocket_connect(
        self,
        path: str,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Open a websocket to ``path``; use it as ``with client.websocket_connect("/ws") as ws:``.

        The client's cookies are sent; inside the client's ``with`` block the connection runs on
        the same loop as the app's lifespan. Returns a ``trellis.testing.websocket`` session.
        """
        from trellis.testing.websocket import websocket_connect

        base = str(self.base_url).replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return websocket_connect(
            self.app,
            path,
            subprotocols=subprotocols,
            headers=headers,
            cookies={cookie.name: cookie.value or "" for cookie in self.cookies.jar},
            base_url=base,
            root_path=self._asgi_transport.root_path,
            state=self._lifespan_state,
            portal=self._portal,
            **kwargs,
        )

    def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any) -> T:
        """Run ``await fn(*args)`` on the app's event loop and return its result.

        Inside the client's ``with`` block the app runs on a loop of its own; code that uses
        the app's connections (a database session, a pool) must run there:

        ```python
        from trellis import App
        from trellis.testing import TestClient

        app = App()
        notes: list[str] = []


        @app.post("/notes")
        async def add(text: str) -> None:
            notes.append(text)


        async def count_notes() -> int:  # a query on the app's database, say
            return len(notes)


        with TestClient(app) as client:
            client.post("/notes", params={"text": "hi"})
            assert client.call(count_notes) == 1
        ```

        Raises:
            RuntimeError: outside the ``with`` block (no loop is running).
        """
        if self._portal is None:
            raise RuntimeError("TestClient.call() needs the client's `with` block (its loop)")
        return cast(T, self._portal.call(fn, *args))

    def _close_portal(self) -> None:
        if self._portal_cm is not None:
            self._asgi_transport.portal = None
            self._portal = None
            cm, self._portal_cm = self._portal_cm, None
            cm.__exit__(None, None, None)

    def close(self) -> None:
        """Close the client and stop its background loop."""
        super().close()
        self._close_portal()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._close_portal()


class AsyncTestClient(httpx.AsyncClient):
    """An async client for an ASGI app, on the running event loop.

    Args:
        app: The application.
        base_url: Scheme and host the requests claim.
        root_path: The ASGI ``root_path``.
        **kwargs: Passed to ``httpx.AsyncClient``.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        root_path: str = "",
        **kwargs: Any,
    ) -> None:
        self.app = app
        self._root_path = root_path
        self._lifespan: Lifespan | None = None
        self._lifespan_state: dict[str, Any] = {}
        transport = AsyncASGITransport(app, root_path=root_path, state=self._lifespan_state)
        kwargs.setdefault("follow_redirects", False)
        super().__init__(transport=transport, base_url=base_url, **kwargs)

    def websocket_connect(
        self,
        path: str,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> AsyncWebSocketTestSession:
        """Open a websocket to ``path``: ``async with client.websocket_connect("/ws") as ws:``.

        The app runs on the test's own loop, beside the client's lifespan; the client's
        cookies are sent. Returns a ``trellis.testing.websocket.AsyncWebSocketTestSession``,
        whose methods are coroutines (``await ws.send_text("hi")``, ``await ws.receive_json()``).
        """
        from trellis.testing.websocket import AsyncWebSocketTestSession, _build_scope, _url

        base = str(self.base_url).replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        scope = _build_scope(
            _url(path, base),
            subprotocols=subprotocols,
            headers=headers,
            cookies={cookie.name: cookie.value or "" for cookie in self.cookies.jar},
            root_path=self._root_path,
            client=("testclient", 50000),
            state=self._lifespan_state,
        )
        return AsyncWebSocketTestSession(self.app, scope, timeout=timeout)

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        lifespan = Lifespan(self.app, self._lifespan_state)
        await lifespan.startup()
        self._lifespan = lifespan
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            if self._lifespan is not None:
                await self._lifespan.shutdown()
                self._lifespan = None
        finally:
            await super().__aexit__(exc_type, exc, tb)
