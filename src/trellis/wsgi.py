"""Serve a WSGI application (Flask, Django, anything PEP 3333) inside a Trellis app.

``WSGIApp`` turns a WSGI application into an ASGI one, to be mounted with ``app.mount``. It is a
thin layer over a2wsgi's ``WSGIMiddleware`` (the ``wsgi`` extra): the WSGI application runs in a
bounded pool of threads, request bodies are read from the client as the application asks for
them (never buffered whole), and response bodies are sent as the application yields them.

Example:
    ```python
    from flask import Flask

    from trellis import App
    from trellis.wsgi import WSGIApp

    legacy = Flask(__name__)
    app = App()
    app.mount("/legacy", WSGIApp(legacy))
    ```
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from trellis.exceptions import ConfigurationError
from trellis.types import Receive, Scope, Send

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["WSGIApp"]


class WSGIApp:
    """An ASGI application that runs a WSGI application in a pool of threads.

    Mount it: ``app.mount("/legacy", WSGIApp(flask_app))``. The mount prefix (the ASGI
    ``root_path``) becomes ``SCRIPT_NAME`` and the rest of the path ``PATH_INFO``, so the WSGI
    framework builds prefixed URLs (Flask's ``url_for``, Django's ``reverse``) and routes on the
    path inside the mount.

    Each request holds one thread while the WSGI application runs, including while it streams a
    response; with every thread busy, further requests wait for one. Trellis's request limits
    (``max_body_size``) do not apply to the mounted application: set its own (Flask's
    ``MAX_CONTENT_LENGTH``, Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``). Websocket connections to
    the mount are refused.

    Args:
        app: The WSGI application (a Flask app, Django's ``get_wsgi_application()``).
        workers: Threads that run the WSGI application, so the most requests it serves at once.
        send_queue_size: Response chunks buffered between the WSGI thread and the event loop; a
            slow client makes the WSGI thread wait beyond this.

    Raises:
        ConfigurationError: a2wsgi is not installed (``pip install 'trellis[wsgi]'``), or
            ``workers`` or ``send_queue_size`` is below 1.
    """

    __slots__ = ("_asgi", "app")

    def __init__(
        self, app: WSGIApplication, *, workers: int = 10, send_queue_size: int = 10
    ) -> None:
        try:
            from a2wsgi import WSGIMiddleware
        except ModuleNotFoundError:
            raise ConfigurationError(
                "WSGIApp needs a2wsgi, which is not installed: pip install 'trellis[wsgi]'"
            ) from None
        if not callable(app):
            raise ConfigurationError(f"WSGIApp needs a WSGI application (a callable), not {app!r}")
        if workers < 1 or send_queue_size < 1:
            raise ConfigurationError(
                f"WSGIApp needs workers >= 1 and send_queue_size >= 1"
                f" (got workers={workers}, send_queue_size={send_queue_size})"
            )
        self.app = app
        self._asgi = WSGIMiddleware(
            _complete_environ(app),  # type: ignore[arg-type]  # a2wsgi's own WSGI protocol
            workers=workers,
            send_queue_size=send_queue_size,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point."""
        await self._asgi(scope, receive, send)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"WSGIApp({self.app!r})"


def _complete_environ(app: WSGIApplication) -> WSGIApplication:
    """Wrap ``app`` to correct the environ a2wsgi builds before the application sees it."""

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scope: dict[str, Any] = environ["asgi.scope"]
        # The mount prefix, even when the process has a SCRIPT_NAME variable (a2wsgi prefers it).
        environ["SCRIPT_NAME"] = scope.get("root_path", "").encode().decode("latin-1")
        # a2wsgi's input ends where the body ends, so a chunked body without Content-Length can
        # be read; without this flag Werkzeug (Flask) reads such a body as empty.
        environ["wsgi.input_terminated"] = True
        environ["wsgi.errors"] = sys.stderr
        return app(environ, start_response)

    return wsgi
