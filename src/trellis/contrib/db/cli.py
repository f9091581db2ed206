"""``trellis db``: the migration commands, added to the CLI by ``Database.setup()``.

```text
trellis --app myproject:app db init                    # writes ./migrations
trellis --app myproject:app db makemigrations -m "add notes"
trellis --app myproject:app db upgrade                 # every branch to its head
trellis --app myproject:app db downgrade -1 --database default
trellis --app myproject:app db current | history | check
```

Every command takes ``--database NAME`` (one database of ``Database(binds=...)``; default:
all of them) and ``--directory DIR`` (default ``migrations`` in the current directory, or
``TRELLIS_MIGRATIONS_DIR``). Alembic is imported only when a ``db`` command runs.

The commands compare against ``Model.metadata``. An application whose models use another
``MetaData``, or whose migrations live elsewhere, says so once::

    app.state.migrations = Migrations(db, "src/myproject/migrations", metadata=Base.metadata)

and ``trellis db`` uses that (``--directory`` still overrides the directory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from trellis.contrib.db.database import Database
    from trellis.contrib.db.migrations import Migrations, Revision

__all__ = ["db_command"]

F = TypeVar("F", bound=Callable[..., Any])


def _options(fn: F) -> F:
    fn = click.option(
        "--directory",
        metavar="DIR",
        default=None,
        envvar="TRELLIS_MIGRATIONS_DIR",
        type=click.Path(file_okay=False),
        help="The migrations directory (default: ./migrations). Env: TRELLIS_MIGRATIONS_DIR.",
    )(fn)
    fn = click.option(
        "--database",
        "bind",
        metavar="NAME",
        default=None,
        help="Only this database (default, or a name of Database(binds=...)); default: all.",
    )(fn)
    return fn


@contextmanager
def _errors() -> Iterator[None]:
    """Migration and database errors as one-line CLI errors (exit status 1)."""
    from sqlalchemy.exc import SQLAlchemyError

    from trellis.contrib.db.migrations import MigrationsError

    try:
        yield
    except MigrationsError as exc:
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        raise click.ClickException(f"the migration failed: {exc}") from None


def _line(revision: Revision) -> str:
    labels = [*revision.branches, *(("head",) if revision.is_head else ())]
    tag = f" ({', '.join(labels)})" if labels else ""
    return f"{revision.id}{tag} {revision.message}".rstrip()


def db_command(database: Database) -> click.Group:
    """The ``db`` command group for ``database``'s application."""

    def migrations(directory: str | None) -> Migrations:
        from trellis.contrib.db.migrations import Migrations

        state = database.app.state if database.app is not None else None
        configured = getattr(state, "migrations", None)
        if isinstance(configured, Migrations):
            if directory is None:
                return configured
            return Migrations(database, directory, metadata=configured.metadata)
        return Migrations(database, directory or "migrations")

    @click.group("db")
    def db() -> None:
        """Database migrations (Alembic): init, makemigrations, upgrade, downgrade..."""

    @db.command("init")
    @_options
    def init(bind: str | None, directory: str | None) -> None:
        """Write the migrations directory (env.py, script.py.mako, versions/)."""
        with _errors():
            m = migrations(directory)
            made = m.init()
        if not made:
            click.echo(f"{m.directory}/ is already set up.")
        for path in made:
            click.echo(f"Created {path}")

    @db.command("makemigrations")
    @click.option("-m", "--message", default=None, help="What the revision does.")
    @click.option("--empty", is_flag=True, help="Write an empty revision to fill by hand.")
    @_options
    def makemigrations(
        message: str | None, empty: bool, bind: str | None, directory: str | None
    ) -> None:
        """Write a revision from the changes to the models (none when nothing changed)."""
        with _errors():
            written = migrations(directory).makemigrations(
                message, autogenerate=not empty, bind=bind
            )
        if not written:
            click.echo("No changes in the models: no revision written.")
        for name, path in written.items():
            click.echo(f"{name}: wrote {path}")

    @db.command("upgrade")
    @click.argument("target", default="heads")
    @_options
    def upgrade(target: str, bind: str | None, directory: str | None) -> None:
        """Apply the revisions up to TARGET (default: heads, every branch)."""
        with _errors():
            done = migrations(directory).upgrade(target, bind=bind)
        _report(done, "applied", "up to date")

    # -1 (one step back) is a TARGET, not an unknown option.
    @db.command("downgrade", context_settings={"ignore_unknown_options": True})
    @click.argument("target")
    @_options
    def downgrade(target: str, bind: str | None, directory: str | None) -> None:
        """Revert the revisions down to TARGET (a revision, -1, or base for all)."""
        with _errors():
            done = migrations(directory).downgrade(target, bind=bind)
        _report(done, "reverted", "nothing to revert")

    @db.command("current")
    @_options
    def current(bind: str | None, directory: str | None) -> None:
        """Show the revisions each database is at."""
        with _errors():
            m = migrations(directory)
            heads = m.current(bind=bind)
            known = {r.id: r for revs in m.history(bind=bind).values() for r in revs}
        for name, revisions in heads.items():
            if not revisions:
                click.echo(f"{name}: no revision applied")
            for revision in revisions:
                found = known.get(revision)
                click.echo(f"{name}: {_line(found) if found else revision + ' (unknown)'}")

    @db.command("history")
    @_options
    def history(bind: str | None, directory: str | None) -> None:
        """List the revisions, newest first."""
        with _errors():
            found = migrations(directory).history(bind=bind)
        for name, revisions in found.items():
            click.echo(f"{name}:")
            if not revisions:
                click.echo("  (no revisions)")
            for revision in revisions:
                parents = ", ".join(revision.parents) or "<base>"
                click.echo(f"  {parents} -> {_line(revision)}")

    @db.command("check")
    @_options
    def check(bind: str | None, directory: str | None) -> None:
        """Fail (exit status 1) when the models and the migrations disagree."""
        with _errors():
            migrations(directory).check(bind=bind)
        click.echo("OK: the models and the migrations agree.")

    return db


def _report(done: dict[str, list[Revision]], verb: str, nothing: str) -> None:
    for name, revisions in done.items():
        if not revisions:
            click.echo(f"{name}: {nothing}")
        for revision in revisions:
            click.echo(f"{name}: {verb} {_line(revision)}")
