"""``trellis run``: serve an application with uvicorn."""

from __future__ import annotations

from typing import Any

import click

from trellis.app import App
from trellis.cli._loading import TARGET_HELP, app_options, load_from_options
from trellis.exceptions import ConfigurationError, TrellisError

_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@click.command(
    "run",
    help=f"""Serve the application TARGET with uvicorn.

TARGET: {TARGET_HELP}

Options not given come from the application's settings (server_host, server_port,
server_graceful_timeout, log_level, log_format, access_log), which read TRELLIS_* variables,
.env and trellis.toml. On SIGTERM or Ctrl+C the server refuses new connections, lets requests
in flight finish (up to --graceful-timeout), closes websockets and exits.

\b
Examples:
  trellis run hello.py
  trellis run myproject.web:app --reload
  trellis run 'myproject:create_app()' --workers 4 --host 0.0.0.0 --log-format json
  trellis run myproject:app --uds /run/myproject.sock
  trellis run myproject:app --workers 4 --bind 0.0.0.0:8000 --bind unix:/run/web.sock
""",
)
@click.option("--host", metavar="ADDRESS", help="Address to bind (setting: server_host).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Port to listen on, 0 for any free one (setting: server_port).",
)
@click.option(
    "--uds",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Listen on this Unix domain socket instead of a host and port.",
)
@click.option(
    "--bind",
    "binds",
    multiple=True,
    metavar="ADDRESS",
    help=(
        "Listen on ADDRESS: HOST:PORT, [IPv6]:PORT or unix:PATH; repeatable, to listen on "
        "several at once (instead of --host, --port and --uds)."
    ),
)
@click.option("--reload", is_flag=True, help="Restart when files change (development only).")
@click.option(
    "--reload-dir",
    "reload_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False),
    help="Directory to watch with --reload (repeatable; default: the application's).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes sharing the sockets; one that dies is replaced.",
)
@click.option(
    "--graceful-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help=(
        "On SIGTERM or Ctrl+C, time the requests in flight get to finish before they are cut "
        "(setting: server_graceful_timeout, 30)."
    ),
)
@click.option(
    "--log-level",
    type=click.Choice(_LEVELS, case_sensitive=False),
    help="Lowest level logged (setting: log_level).",
)
@click.option(
    "--log-format",
    type=click.Choice(("text", "json"), case_sensitive=False),
    help="text for people, json (one object per line) for machines (setting: log_format).",
)
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="Log one line per request (setting: access_log).",
)
@click.option(
    "--root-path",
    default="",
    metavar="PATH",
    help="Path prefix the application is served under behind a proxy, such as /api.",
)
@app_options
@click.pass_context
def run_command(
    ctx: click.Context,
    target: str | None,
    app_dir: str | None,
    factory: bool,
    host: str | None,
    port: int | None,
    uds: str | None,
    binds: tuple[str, ...],
    reload: bool,
    reload_dirs: tuple[str, ...],
    workers: int,
    graceful_timeout: float | None,
    log_level: str | None,
    log_format: str | None,
    access_log: bool | None,
    root_path: str,
) -> None:
    from trellis.server import _serve, _settings_of

    if reload and workers > 1:
        raise click.UsageError("--reload and --workers cannot be used together", ctx)
    if reload_dirs and not reload:
        raise click.UsageError("--reload-dir needs --reload", ctx)
    if binds and (host is not None or port is not None or uds is not None):
        raise click.UsageError("--bind cannot be combined with --host, --port or --uds", ctx)
    loaded = load_from_options(ctx, target, app_dir, factory)
    try:
        settings = _settings_of(loaded.app)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    options: dict[str, Any] = {}
    if reload or workers > 1:
        # Every new process imports the application itself.
        app: object = loaded.import_string
        options["factory"] = loaded.factory
        if reload:
            options["reload_dirs"] = list(reload_dirs) or [loaded.path_entry]
    else:
        app = loaded.app
    if isinstance(loaded.app, App):
        try:  # mistakes in the app are reported here, once, without a traceback
            loaded.app.build()
            loaded.app.settings.check()
        except TrellisError as exc:
            raise click.ClickException(str(exc)) from None
    where: dict[str, Any] = (
        {"binds": list(binds)}
        if binds
        else {
            "host": settings.server_host if host is None else host,
            "port": settings.server_port if port is None else port,
            "uds": uds,
        }
    )
    try:
        _serve(
            app,
            **where,
            reload=reload,
            workers=workers,
            graceful_timeout=(
                settings.server_graceful_timeout if graceful_timeout is None else graceful_timeout
            ),
            log_level=(log_level or settings.log_level).upper(),
            log_format=(log_format or settings.log_format).lower(),
            access_log=settings.access_log if access_log is None else access_log,
            root_path=root_path,
            **options,
        )
    except TrellisError as exc:
        raise click.ClickException(str(exc)) from None
