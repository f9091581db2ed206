"""``trellis check [--deploy]``: build the application and judge its settings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from trellis.cli._loading import TARGET_HELP, app_options, load_from_options, require_trellis_app
from trellis.exceptions import TrellisError

if TYPE_CHECKING:
    from trellis.checks import DeployProblem

_LEVEL_COLOURS = {"error": "red", "warning": "yellow"}


@click.command(
    "check",
    help=f"""Check that the application TARGET builds and that its settings can serve.

TARGET: {TARGET_HELP}

Without --deploy: build the application (routes, handlers, middleware) and run the start-up
checks of its settings, as `trellis run` does; exit status 1 on a mistake.

With --deploy: also list every setting or plugin that is unsafe in production, one per line
with its id, what is wrong and how to fix it. Run it with the environment of the production
server. The exit status is 1 when a problem is found (at --fail-level or above), else 0.

\b
Examples:
  trellis check hello.py
  TRELLIS_APP=myproject:app trellis check --deploy
  trellis check myproject:app --deploy --format json --ignore security.W009
""",
)
@click.option(
    "--deploy",
    is_flag=True,
    help="List the settings and plugins that are unsafe in production.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)
@click.option(
    "--fail-level",
    type=click.Choice(["error", "warning"]),
    default="warning",
    show_default=True,
    help="Lowest level of problem that makes the exit status 1.",
)
@click.option(
    "--ignore",
    "ignored",
    multiple=True,
    metavar="ID",
    help="Skip a problem by its id, such as security.W009 (repeatable).",
)
@app_options
@click.pass_context
def check_command(
    ctx: click.Context,
    target: str | None,
    app_dir: str | None,
    factory: bool,
    deploy: bool,
    output_format: str,
    fail_level: str,
    ignored: tuple[str, ...],
) -> None:
    loaded = load_from_options(ctx, target, app_dir, factory)
    app = require_trellis_app(loaded, "check")
    name = loaded.import_string
    as_json = output_format == "json"
    try:
        app.build()
        if not deploy:
            # --deploy reports the secret key as security.E002 along with everything else.
            app.settings.check()
    except TrellisError as exc:
        if as_json:
            _echo_json(name, deploy, ok=False, error=str(exc), problems=[])
            ctx.exit(1)
        raise click.ClickException(str(exc)) from None
    if not deploy:
        if as_json:
            _echo_json(name, deploy, ok=True, error=None, problems=[])
            return
        click.echo(f"Checked {name}: no problems.")
        if app.settings.debug:
            click.echo("Debug mode is on; run `trellis check --deploy` before deploying.")
        return

    from trellis.checks import deploy_problems

    skip = {item.strip() for value in ignored for item in value.split(",") if item.strip()}
    problems = [problem for problem in deploy_problems(app) if problem.id not in skip]
    failing = [p for p in problems if p.is_error or fail_level == "warning"]
    if as_json:
        _echo_json(name, deploy, ok=not failing, error=None, problems=problems)
    else:
        _echo_text(name, problems)
    if failing:
        ctx.exit(1)


def _echo_text(name: str, problems: list[DeployProblem]) -> None:
    if not problems:
        click.echo(f"Checked {name} for deployment: no problems.")
        return
    for problem in problems:
        level = click.style(problem.level, fg=_LEVEL_COLOURS[problem.level], bold=True)
        click.echo(f"{problem.id} [{level}] {problem.message} Fix: {problem.fix}")
    errors = sum(1 for problem in problems if problem.is_error)
    warnings = len(problems) - errors
    click.echo(
        f"\nChecked {name} for deployment: {_count(errors, 'error')}, "
        f"{_count(warnings, 'warning')}. Fix them, or skip one you have judged harmless with "
        "--ignore ID."
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _echo_json(
    name: str, deploy: bool, *, ok: bool, error: str | None, problems: list[DeployProblem]
) -> None:
    document: dict[str, Any] = {
        "app": name,
        "deploy": deploy,
        "ok": ok,
        "error": error,
        "problems": [problem.as_dict() for problem in problems],
    }
    click.echo(json.dumps(document, indent=2))
