"""The ``trellis`` command: ``new``, ``run``, ``routes``, ``check``, ``shell``, the app's commands.

Built-in commands take the application as ``TARGET`` (``module:app`` or ``path/to/app.py``), or
from ``--app`` / the ``TRELLIS_APP`` environment variable, else from ``app.py`` in the current
directory (or ``--app-dir``) when there is one. Commands an application registers with
``@app.command()`` appear once the application is known::

    trellis --app myproject:app seed-db
    TRELLIS_APP=myproject:app trellis seed-db

The application is imported only when a command needs it, so ``trellis new`` and ``--help``
stay fast, and a broken application does not hide the built-in commands.
"""

from __future__ import annotations

import os

import click

from trellis.cli._check import check_command
from trellis.cli._loading import (
    AppImportError,
    AppLoadError,
    LoadedApp,
    default_target,
    load_app,
)
from trellis.cli._new import new_command
from trellis.cli._routes import routes_command
from trellis.cli._run import run_command
from trellis.cli._shell import shell_command
from trellis.cli._worker import worker_command

__all__ = ["AppImportError", "AppLoadError", "TrellisGroup", "main"]

_LOADED_KEY = "trellis.loaded_app"


class TrellisGroup(click.Group):
    """A click group that adds the commands of the application named by ``--app``.

    The application is imported lazily, the first time a command name is not a built-in one
    (or when ``--help`` lists the commands), and at most once per invocation. Built-in commands
    win over application commands of the same name.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The built-in commands, then the application's (when ``--app`` names one)."""
        names = list(super().list_commands(ctx))
        try:
            extra = self._app_commands(ctx)
        except click.ClickException as exc:  # listing must still work with a broken app
            if _named_target(ctx) is not None:  # an app.py found by default may be anything
                click.echo(
                    f"Warning: the application's commands are not listed: {exc.format_message()}",
                    err=True,
                )
            extra = {}
        names.extend(sorted(name for name in extra if name not in names))
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, else one the application defines."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        return self._app_commands(ctx).get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Resolve the command, explaining where application commands come from."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if _target(ctx) is not None or isinstance(exc, AppLoadError):
                raise
            raise click.UsageError(
                f"{exc.message} Commands defined by an application need it named: "
                "trellis --app module:app COMMAND (or set TRELLIS_APP).",
                exc.ctx,
            ) from None

    def _app_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        target = _target(ctx)
        if target is None:
            return {}
        loaded = _load_for_group(ctx, target)
        commands: dict[str, click.Command] = {}
        for command in getattr(loaded.app, "commands", ()):
            if isinstance(command, click.Command) and command.name:
                commands[command.name] = command
        return commands


def _named_target(ctx: click.Context) -> str | None:
    root = ctx.find_root()
    value = root.params.get("app") or os.environ.get("TRELLIS_APP")
    return str(value) if value else None


def _target(ctx: click.Context) -> str | None:
    return _named_target(ctx) or default_target(ctx)


def _load_for_group(ctx: click.Context, target: str) -> LoadedApp:
    root = ctx.find_root()
    loaded: LoadedApp | None = root.meta.get(_LOADED_KEY)
    if loaded is None:
        app_dir = root.params.get("app_dir") or "."
        loaded = load_app(target, str(app_dir))
        root.meta[_LOADED_KEY] = loaded
    return loaded


def _version() -> str:
    from trellis import __version__

    return __version__


@click.group(
    cls=TrellisGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--app",
    "app",
    metavar="TARGET",
    envvar="TRELLIS_APP",
    is_eager=True,  # known before --help lists the application's commands
    help="The application (module:app or path/to/app.py) for commands that need one and for "
    "the application's own commands (default: app.py, if there is one). Env: TRELLIS_APP.",
)
@click.option(
    "--app-dir",
    "app_dir",
    metavar="DIR",
    envvar="TRELLIS_APP_DIR",
    is_eager=True,
    type=click.Path(file_okay=False),
    help="Directory to import the application from (default: the current directory).",
)
@click.version_option(_version(), "-V", "--version", prog_name="trellis")
def main(app: str | None, app_dir: str | None) -> None:
    """Trellis: create, run and inspect Trellis applications."""


main.add_command(new_command)
main.add_command(run_command)
main.add_command(routes_command)
main.add_command(check_command)
main.add_command(shell_command)
main.add_command(worker_command)
