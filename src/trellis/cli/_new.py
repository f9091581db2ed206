"""``trellis new``: create a single-file application or a project that runs and has tests."""

from __future__ import annotations

import importlib.util
import keyword
import secrets
import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import click

_RESERVED = frozenset({"trellis", "test", "tests", "app", "site"})


@click.command(
    "new",
    help="""Create a new application called NAME in the directory NAME.

Without --full: NAME/app.py, a one-file app (run it with `python app.py`), and NAME/.env with
development settings. With --full: a full-stack project with pyproject.toml, the package NAME
(an application factory, a model and its migration, pages, a JSON API, accounts, the admin,
health checks, templates, static files) and tests that pass out of the box.

The .env file turns debug on and holds a fresh secret key: keep it out of version control.

\b
Examples:
  trellis new hello
  trellis new shop --full
  trellis new shop --full --dir ~/projects
""",
)
@click.argument("name")
@click.option("--full", is_flag=True, help="Create a project layout instead of a single file.")
@click.option(
    "--dir",
    "parent",
    default=".",
    show_default=True,
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Directory to create NAME in.",
)
def new_command(name: str, full: bool, parent: str) -> None:
    check_name(name, package=full)
    target = Path(parent) / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise click.UsageError(
            f"{target} already exists and is not empty; choose another NAME or --dir "
            "(trellis new never overwrites files)"
        )
    written = create_project(target, name, full=full)
    shown = [str(path.relative_to(target.parent)) for path in written]
    click.echo(f"Created {'project' if full else 'application'} {name!r} in {target}:")
    for path in shown:
        click.echo(f"  {path}")
    click.echo("\nNext:")
    click.echo(f"  cd {target}")
    if full:
        click.echo(
            "  python -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/pytest"
        )
        click.echo("  . .venv/bin/activate")
        click.echo(f"  trellis --app {name} db upgrade")
        click.echo(f"  trellis run {name} --reload")
    else:
        click.echo("  python app.py              # or: trellis run app:app --reload")
    click.echo("\n.env turns debug on and holds the secret key: do not commit it.")


def check_name(name: str, *, package: bool) -> None:
    """Refuse a NAME that is not a Python identifier (or, for a package, would shadow one)."""
    if not name.isidentifier() or keyword.iskeyword(name):
        suggestion = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_")
        hint = f" such as {suggestion!r}" if suggestion and suggestion.isidentifier() else ""
        raise click.BadParameter(
            f"{name!r} is not a valid Python identifier; use letters, digits and underscores, "
            f"not starting with a digit{hint}",
            param_hint="NAME",
        )
    if not package:
        return
    if name in _RESERVED or name in sys.stdlib_module_names:
        raise click.BadParameter(
            f"{name!r} would shadow a module Python or Trellis needs; choose another name",
            param_hint="NAME",
        )
    try:
        taken = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        taken = True
    if taken:
        raise click.BadParameter(
            f"{name!r} is already the name of an installed module; the project's package "
            "would shadow it. Choose another name.",
            param_hint="NAME",
        )


def create_project(target: Path, name: str, *, full: bool) -> list[Path]:
    """Copy the ``single`` or ``full`` scaffold into ``target``; return the files written."""
    from trellis import __version__

    replacements = {
        "__NAME__": name,
        "__SECRET_KEY__": secrets.token_urlsafe(48),
        "__TRELLIS_VERSION__": __version__,
    }
    source = files("trellis.cli") / "_templates" / ("full" if full else "single")
    written: list[Path] = []
    target.mkdir(parents=True, exist_ok=True)
    _copy(source, target, replacements, written)
    return sorted(written)


def _copy(
    source: Traversable, target: Path, replacements: dict[str, str], written: list[Path]
) -> None:
    for item in source.iterdir():
        name = _render(item.name, replacements)
        if name.startswith("dot-"):
            name = "." + name[4:]
        if item.is_dir():
            if name == "__pycache__":
                continue
            (target / name).mkdir(exist_ok=True)
            _copy(item, target / name, replacements, written)
        elif name.endswith(".tmpl"):
            path = target / name.removesuffix(".tmpl")
            path.write_text(
                _render(item.read_text(encoding="utf-8"), replacements), encoding="utf-8"
            )
            written.append(path)


def _render(text: str, replacements: dict[str, str]) -> str:
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    return text
