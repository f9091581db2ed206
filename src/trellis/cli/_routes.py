"""``trellis routes``: the application's routes as a table (or JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from trellis.cli._loading import TARGET_HELP, app_options, load_from_options, require_trellis_app
from trellis.exceptions import TrellisError

_COLUMNS = (("method", "METHOD"), ("path", "PATH"), ("name", "NAME"), ("handler", "HANDLER"))


@click.command(
    "routes",
    help=f"""List the routes of the application TARGET: method, path, name and handler.

TARGET: {TARGET_HELP}

A HOST column is added when a route is bound to a host. Mounted applications (such as static
files) are listed with the method * and the path ending in /....

\b
Examples:
  trellis routes hello.py
  trellis routes myproject:app --json
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print the routes as a JSON array.")
@app_options
@click.pass_context
def routes_command(
    ctx: click.Context, target: str | None, app_dir: str | None, factory: bool, as_json: bool
) -> None:
    app = require_trellis_app(load_from_options(ctx, target, app_dir, factory), "routes")
    try:
        rows: list[dict[str, Any]] = app.describe_routes()
    except TrellisError as exc:  # building the app found a mistake: say which
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No routes.")
        return
    click.echo(format_table(rows))


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Align ``rows`` in columns under a header; HOST only when some route has a host."""
    columns = list(_COLUMNS)
    if any(row.get("host") for row in rows):
        columns.insert(0, ("host", "HOST"))
    cells = [[title for _, title in columns]]
    cells.extend([_cell(row.get(key)) for key, _ in columns] for row in rows)
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)
