"""``trellis shell``: a Python prompt with the application loaded."""

from __future__ import annotations

import code
import sys
from typing import Any

import click

from trellis.cli._loading import TARGET_HELP, app_options, load_from_options


@click.command(
    "shell",
    help=f"""Start a Python prompt with the application TARGET loaded as `app`.

TARGET: {TARGET_HELP}

The prompt also has `settings` (the application's settings) and the names of the trellis
package (App, Request, Response, HTTPError ...). IPython is used when it is installed, unless
--plain is given. The application is imported but not started: start-up hooks do not run.

\b
Examples:
  trellis shell hello.py
  TRELLIS_APP=myproject:app trellis shell
""",
)
@click.option("--plain", is_flag=True, help="Use the standard Python prompt even with IPython.")
@app_options
@click.pass_context
def shell_command(
    ctx: click.Context, target: str | None, app_dir: str | None, factory: bool, plain: bool
) -> None:
    loaded = load_from_options(ctx, target, app_dir, factory)
    namespace = shell_namespace(loaded.app)
    banner = (
        f"Python {sys.version.split()[0]} on {sys.platform}\n"
        f"Trellis {namespace['trellis'].__version__} shell: app = {loaded.import_string}\n"
        "Also loaded: settings, trellis, and the names of the trellis package."
    )
    if not plain:
        try:
            from IPython import start_ipython  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            pass
        else:
            click.echo(banner)
            start_ipython(argv=[], user_ns=namespace)
            return
    _enable_completion(namespace)
    code.interact(banner=banner, local=namespace, exitmsg="")


def shell_namespace(app: Any) -> dict[str, Any]:
    """The names the shell starts with: ``app``, ``settings``, ``trellis`` and its exports."""
    import trellis

    namespace: dict[str, Any] = {name: getattr(trellis, name) for name in trellis.__all__}
    namespace["trellis"] = trellis
    namespace["app"] = app
    namespace["settings"] = getattr(app, "settings", None)
    return namespace


def _enable_completion(namespace: dict[str, Any]) -> None:
    if not sys.stdin.isatty():
        return
    try:
        import readline
        import rlcompleter
    except ImportError:  # not available on every platform
        return
    readline.set_completer(rlcompleter.Completer(namespace).complete)
    readline.parse_and_bind("tab: complete")
