"""Serve an application with uvicorn: ``App.run()`` and ``trellis run`` end up here.

``serve`` fills in what is not given from the application's settings (``server_host``,
``server_port``, ``log_level``, ``log_format``, ``access_log``), configures logging through
``trellis.logging`` so uvicorn's lines share Trellis's text or JSON format, and runs uvicorn
with uvloop and httptools when they are installed.

Trellis reads ``X-Forwarded-*`` headers itself, from the proxies listed in the
``trusted_proxies`` setting, so uvicorn's own proxy-header handling is off by default.

Example:
    ```python
    from trellis import App
    from trellis.server import serve

    app = App()

    if __name__ == "__main__":
        serve(app, port=8080)  # the same as app.run(port=8080)
    ```
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from typing import TYPE_CHECKING, Any

from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from trellis.config import Settings

__all__ = ["RUN_FROM_CLI_ENV", "cli_is_importing", "serve"]

RUN_FROM_CLI_ENV = "TRELLIS_RUN_FROM_CLI"
"""Set by the ``trellis`` command while it imports an application (and inherited by the worker
processes it starts): a ``serve()`` or ``app.run()`` reached during that import is skipped, so a
module that ends with ``app.run()`` can still be given to ``trellis run``."""


def cli_is_importing() -> bool:
    """Whether the ``trellis`` command (or a worker it started) is importing the application.

    ``serve()`` and ``app.run()`` do nothing then: the command serves the application itself.
    """
    return bool(os.environ.get(RUN_FROM_CLI_ENV))


def serve(
    app: Any,
    host: str | None = None,
    port: int | None = None,
    *,
    reload: bool = False,
    workers: int = 1,
    uds: str | None = None,
    log_level: str | None = None,
    access_log: bool | None = None,
    log_format: str | None = None,
    proxy_headers: bool = False,
    root_path: str = "",
    **uvicorn_options: Any,
) -> None:
    """Serve ``app`` with uvicorn until interrupted (Ctrl+C, SIGTERM).

    Args:
        app: The application (a Trellis ``App`` or any ASGI app), or an import string
            ``"module:attribute"``. ``reload`` and ``workers`` need the import string, because
            each new process imports the application itself.
        host: Address to bind. Default: the ``server_host`` setting (``127.0.0.1``).
        port: Port to listen on. Default: the ``server_port`` setting (``8000``).
        reload: Restart when Python files change (development only).
        workers: Number of worker processes sharing the socket.
        uds: Listen on this Unix domain socket path instead of ``host`` and ``port``.
        log_level: Lowest level logged. Default: the ``log_level`` setting.
        access_log: Log one line per request. Default: the ``access_log`` setting.
        log_format: ``"text"`` or ``"json"``. Default: the ``log_format`` setting.
        proxy_headers: Let uvicorn rewrite the client address and scheme from
            ``X-Forwarded-*``. Leave off and list your proxies in the ``trusted_proxies``
            setting instead: Trellis then handles the headers itself.
        root_path: The path prefix the application is mounted under behind a proxy
            (``/api`` when the proxy forwards ``example.com/api/...``).
        **uvicorn_options: Any other ``uvicorn.run`` option (``ssl_certfile``,
            ``timeout_keep_alive``, ``log_config`` to replace Trellis's logging ...).

    Raises:
        ConfigurationError: ``reload`` or ``workers`` was asked for with an application object
            instead of an import string; or building the app found a mistake (``App.build``
            runs before the server takes the port).
        SystemExit: The server could not start (the port is taken, the application's start-up
            failed); the exit status is 3, and the reason has been logged.

    When the ``trellis`` command is importing the module (``trellis run hello.py`` for a file
    that ends with ``app.run()``), the call does nothing: the command serves the application
    itself.
    """
    if cli_is_importing():
        if multiprocessing.parent_process() is None:  # say it once, not in every worker
            sys.stderr.write(
                "trellis: ignoring app.run() while the trellis command loads the application;"
                ' put it under `if __name__ == "__main__":` to silence this\n'
            )
        return
    _serve(
        app,
        host,
        port,
        reload=reload,
        workers=workers,
        uds=uds,
        log_level=log_level,
        access_log=access_log,
        log_format=log_format,
        proxy_headers=proxy_headers,
        root_path=root_path,
        **uvicorn_options,
    )


def _serve(
    app: Any,
    host: str | None = None,
    port: int | None = None,
    *,
    reload: bool = False,
    workers: int = 1,
    uds: str | None = None,
    log_level: str | None = None,
    access_log: bool | None = None,
    log_format: str | None = None,
    proxy_headers: bool = False,
    root_path: str = "",
    **uvicorn_options: Any,
) -> None:
    """``serve`` without the guard against being reached while the CLI imports the app."""
    import uvicorn

    from trellis.app import App
    from trellis.logging import configure_logging

    if workers < 1:
        raise ConfigurationError(f"workers={workers}: at least one worker is needed")
    if not isinstance(app, str) and (reload or workers > 1):
        what = "--reload" if reload else f"--workers {workers}"
        raise ConfigurationError(
            f"{'reload' if reload else 'several workers'} needs the application as an import "
            "string, because every new process imports it again: run "
            f"`trellis run module:app {what}` (or pass serve('module:app', ...))"
        )
    settings = (
        _settings_of(app) if None in (host, port, log_level, log_format, access_log) else None
    )
    if settings is not None:
        host = settings.server_host if host is None else host
        port = settings.server_port if port is None else port
        log_level = settings.log_level if log_level is None else log_level
        log_format = settings.log_format if log_format is None else log_format
        access_log = settings.access_log if access_log is None else access_log
    assert host is not None and port is not None and log_level is not None
    assert log_format is not None and access_log is not None
    if log_format not in ("text", "json"):
        raise ConfigurationError(f"log_format={log_format!r}: use 'text' or 'json'")
    if "log_config" not in uvicorn_options:
        uvicorn_options["log_config"] = configure_logging(
            log_level,
            "json" if log_format == "json" else "text",
            access_log,
            apply=False,
        )
    uvicorn_options.setdefault("loop", "auto")
    uvicorn_options.setdefault("http", "auto")
    # The Server header only tells attackers which server to target.
    uvicorn_options.setdefault("server_header", False)
    if isinstance(app, str):
        # uvicorn imports the module (in each worker): an app.run() at its end must not start a
        # second server there.
        os.environ[RUN_FROM_CLI_ENV] = "1"
    elif isinstance(app, App):
        # Report mistakes (clashing routes, a missing secret key ...) before taking the port,
        # as an exception rather than a log line.
        app.build()
        app.settings.check()
        # A Trellis app always speaks lifespan: a failed start-up must stop the server.
        uvicorn_options.setdefault("lifespan", "on")
    uvicorn.run(
        app,
        host=host,
        port=port,
        uds=uds,
        reload=reload,
        workers=workers,
        log_level=log_level.lower(),
        access_log=access_log,
        proxy_headers=proxy_headers,
        root_path=root_path,
        **uvicorn_options,
    )


def _settings_of(app: Any) -> Settings:
    """The settings of ``app`` when it is a Trellis app; else those of the environment."""
    settings = getattr(app, "settings", None)
    from trellis.config import Settings, load_settings

    if isinstance(settings, Settings):
        return settings
    return load_settings()
