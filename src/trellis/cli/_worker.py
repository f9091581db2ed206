"""``trellis worker``: run the app's jobs (and periodic tasks) from its task queue."""

from __future__ import annotations

import asyncio

import click

from trellis.cli._loading import TARGET_HELP, app_options, load_from_options, require_trellis_app
from trellis.exceptions import TrellisError

_LEVELS = ("critical", "error", "warning", "info", "debug")


@click.command(
    "worker",
    help=f"""Run the jobs of the application TARGET from its task queue.

TARGET: {TARGET_HELP}

The application starts as under a server (start-up hooks, lifespan, databases ...), then the
worker takes jobs from the queue the application installed (such as RedisTasks) and sends the
periodic tasks' jobs; with several workers each tick still runs once. On SIGTERM or Ctrl+C the
running jobs get --grace seconds to finish; the others go back to the queue.

\b
Examples:
  trellis worker myproject.web:app
  trellis worker app.py --concurrency 20 --log-format json
""",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Jobs run at the same time in this process.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM, how long running jobs may take to finish before they are requeued.",
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
@app_options
@click.pass_context
def worker_command(
    ctx: click.Context,
    target: str | None,
    app_dir: str | None,
    factory: bool,
    concurrency: int,
    grace: float,
    log_level: str | None,
    log_format: str | None,
) -> None:
    from trellis.logging import configure_logging
    from trellis.tasks import InProcessBackend

    loaded = load_from_options(ctx, target, app_dir, factory)
    app = require_trellis_app(loaded, "worker")
    if isinstance(app.tasks.backend, InProcessBackend):
        raise click.UsageError(
            f"{loaded.import_string} runs its tasks in-process (the default backend, which runs "
            "jobs inside the web process): install a queue for separate workers, such as "
            "app.install(RedisTasks(url)) from trellis.contrib.tasks",
            ctx,
        )
    settings = app.settings
    configure_logging(
        (log_level or settings.log_level).upper(),
        "json" if (log_format or settings.log_format).lower() == "json" else "text",
        access_log=False,
    )
    try:
        asyncio.run(_work(app, concurrency=concurrency, grace=grace))
    except TrellisError as exc:
        raise click.ClickException(str(exc)) from None


async def _work(app: object, *, concurrency: int, grace: float) -> None:
    from trellis.app import App

    assert isinstance(app, App)
    await app.startup()
    try:
        await app.tasks.work(concurrency=concurrency, grace=grace)
    finally:
        await app.shutdown()
