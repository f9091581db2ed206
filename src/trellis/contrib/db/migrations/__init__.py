"""Migrations: Alembic driven by the application's ``Database`` and models.

```py
from trellis.contrib.db.migrations import Migrations

migrations = Migrations(db)                  # the project's ./migrations directory
migrations.init()                            # once: env.py, script.py.mako, versions/
migrations.makemigrations("add notes")       # {"default": Path(".../versions/..._add_notes.py")}
migrations.upgrade()                         # every branch to its head
migrations.check()                           # raises MigrationCheckError when models changed
```

``trellis db init | makemigrations | upgrade | downgrade | current | history | check`` are the
same operations on the command line (``trellis.contrib.db.cli``).

The rules:

- **No alembic.ini.** The configuration is built in code. ``init()`` writes ``env.py`` (two
  lines that call ``run_migrations()``), ``script.py.mako`` (the template of revision files)
  and ``versions/``. ``env.py`` runs online on each database's async engine
  (``connection.run_sync``), in one transaction where the database has transactional DDL
  (PostgreSQL, and SQLite, which Trellis drives with explicit ``BEGIN``).
- **One history per database.** The main database's revisions live in ``versions/``; each
  bind of ``Database(binds=...)`` has its own ``<bind>/versions/`` and its own
  ``alembic_version`` table in its own database. Every operation runs on every database
  unless given ``bind=`` (``--database``); a revision target other than ``heads`` or
  ``base`` needs one database named when there are several.
- **Branches.** The project's revisions form the branch labelled ``app``. A battery ships
  its own branch (revision files whose first one has ``down_revision=None`` and
  ``branch_labels=(label,)``) and registers it with ``db.add_migration_branch(label, dir)``;
  the branch belongs to the database of the tables that name it (see below), ``default``
  when none does. ``upgrade()`` goes to ``heads``: every branch of the database.
- **Who owns a table.** A battery marks the tables its branch creates with
  ``info={"migration_branch": label}`` (``__table_args__ = {"info": {...}}`` on a model).
  Autogenerate and ``check()`` compare only the tables that are the project's in that
  database: neither a battery's tables nor another database's tables are created, altered
  or dropped by a generated revision. A table in the database that no model declares is
  dropped by the next revision only when one of the project's own revisions of that
  database created it (``op.create_table("name", ...)``, as autogenerate writes it): a
  model was removed. Other tables (a battery's on a ``MetaData`` of its own, another
  program's, a legacy schema's) are left alone and do not fail ``check()``.
- **Comparing.** Autogenerate compares tables, columns, types (``compare_type``), nullability,
  indexes, unique constraints and foreign keys; not server defaults (Alembic's default:
  their reflected text differs between databases; pass ``compare_server_default=True`` to
  ``run_migrations`` in ``env.py`` to opt in). ``makemigrations`` writes nothing when there
  is no change, and ``check()`` reports exactly what ``makemigrations`` would write, plus
  revisions not applied yet.
- **SQLite** gets ``render_as_batch=True``: column changes are written as
  ``with op.batch_alter_table(...)`` (copy, drop, rename), run with foreign keys off.
- **Types.** Types from modules outside SQLAlchemy (``UTCDateTime``, an application's own
  ``TypeDecorator``) are written with their module imported in the revision file.
  PostgreSQL enum types are created before the first column that needs them and dropped
  after the last one (``drop_enum``), so that ``downgrade base`` then ``upgrade`` works.
- **Writing revisions.** ``makemigrations`` needs the database up to date (every branch
  applied: ``upgrade`` first). Files are named ``YYYYMMDD_HHMM_<rev>_<slug>.py``; without a
  message one is made from the changes (``create note, add user.email``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from argparse import Namespace
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from alembic import command
from alembic.autogenerate import produce_migrations
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import MetaData, Table, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from trellis.contrib.db.migrations import _autogen
from trellis.contrib.db.models import Model
from trellis.contrib.db.urls import backend_of, redact
from trellis.exceptions import TrellisError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from trellis.contrib.db.database import Database

__all__ = [
    "APP_BRANCH",
    "BRANCH_KEY",
    "MigrationCheckError",
    "Migrations",
    "MigrationsError",
    "Revision",
    "drop_enum",
    "run_migrations",
]

#: The branch label of the project's own revisions.
APP_BRANCH = "app"
#: The ``Table.info`` key naming the migration branch that owns a table (a battery's label).
BRANCH_KEY = "migration_branch"

_RUN_KEY = "trellis.migrations.run"
_TEMPLATES = files("trellis.contrib.db.migrations") / "_templates"
_FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s"
_T = TypeVar("_T")


class MigrationsError(TrellisError):
    """A migration command cannot run; the message says why and what to do."""


class MigrationCheckError(MigrationsError):
    """The models and the migrations disagree (``check()``).

    Attributes:
        differences: Per database, one line per difference (or revision not applied yet).
    """

    def __init__(self, differences: dict[str, list[str]]) -> None:
        self.differences = differences
        lines = [f"{name}: {line}" for name, problems in differences.items() for line in problems]
        super().__init__(
            "the models and the migrations disagree:\n  "
            + "\n  ".join(lines)
            + "\nrun `trellis db makemigrations` (then `trellis db upgrade`)"
        )


@dataclass(frozen=True)
class Revision:
    """One revision file."""

    id: str
    message: str
    #: The revisions it follows (none for the first of a branch, two or more for a merge).
    parents: tuple[str, ...]
    #: The branch labels it carries (inherited ones included), such as ``("app",)``.
    branches: tuple[str, ...]
    path: Path
    is_head: bool

    @classmethod
    def _of(cls, script: Script) -> Revision:
        down = script.down_revision
        parents = (down,) if isinstance(down, str) else tuple(down or ())
        return cls(
            id=script.revision,
            message=(script.doc or "").strip(),
            parents=parents,
            branches=tuple(sorted(script.branch_labels)),
            path=Path(script.path),
            is_head=script.is_head,
        )


@dataclass
class _Run:
    """What one run of ``env.py`` works on, handed over through ``Config.attributes``."""

    migrations: Migrations
    name: str
    #: ``(is_upgrade, revision id)`` for every revision applied or reverted.
    steps: list[tuple[bool, str]] = field(default_factory=list)


class Migrations:
    """The migrations of an application's databases (Alembic, configured in code).

    ``trellis db`` makes one with ``Model.metadata`` and ``./migrations``; an application
    whose models use another ``MetaData`` (or whose migrations live elsewhere) puts its own
    on ``app.state.migrations``, and ``trellis db`` uses that one.

    Args:
        database: The application's ``Database`` (installed, or built with a URL).
        directory: The project's migrations directory (``env.py``, ``versions/``).
        metadata: The models' ``MetaData`` (default: ``Model.metadata``).
    """

    def __init__(
        self,
        database: Database,
        directory: str | Path = "migrations",
        *,
        metadata: MetaData | None = None,
    ) -> None:
        self.database = database
        self.directory = Path(directory)
        self.metadata = Model.metadata if metadata is None else metadata

    # -- layout -------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The databases: ``"default"`` first, then the binds."""
        names = self.database.names
        if not names:
            raise MigrationsError("the Database has no URL yet: app.install(Database(url)) first")
        return names

    def versions_dir(self, name: str = "default") -> Path:
        """Where the project's revisions of database ``name`` live."""
        return (
            self.directory / "versions" if name == "default" else self.directory / name / "versions"
        )

    def branches_of(self, name: str) -> dict[str, Path]:
        """The batteries' branches (label -> directory) that belong to database ``name``."""
        owner: dict[str, str] = {}
        for table in self.metadata.tables.values():
            label = table.info.get(BRANCH_KEY)
            if label:
                owner.setdefault(label, table.info.get("bind_key") or "default")
        return {
            label: path
            for label, path in self.database.migration_branches.items()
            if owner.get(label, "default") == name
        }

    def init(self) -> list[Path]:
        """Write the migrations directory; returns the files and directories it made.

        Idempotent: what exists is left as it is (``env.py`` may have been edited).
        """
        made: list[Path] = []
        for name, source in (
            ("env.py", "env.py.tmpl"),
            ("script.py.mako", "script.py.mako"),
            ("README.md", "README.md.tmpl"),
        ):
            path = self.directory / name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text((_TEMPLATES / source).read_text(encoding="utf-8"), "utf-8")
                made.append(path)
        for name in self.names:
            versions = self.versions_dir(name)
            if not versions.is_dir():
                versions.mkdir(parents=True)
                made.append(versions)
        return made

    def _require_init(self) -> None:
        if not (self.directory / "env.py").is_file():
            raise MigrationsError(
                f"no migrations in {self.directory}/ (env.py is missing):"
                " run `trellis db init` first"
            )

    def _selected(self, bind: str | None) -> tuple[str, ...]:
        if bind is None:
            return self.names
        if bind not in self.names:
            raise MigrationsError(
                f"no database named {bind!r}; the databases are: {', '.join(self.names)}"
            )
        return (bind,)

    def _config(self, run: _Run) -> Config:
        self._require_init()
        versions = self.versions_dir(run.name)
        versions.mkdir(parents=True, exist_ok=True)
        locations = [
            versions.resolve(),
            *(p.resolve() for p in self.branches_of(run.name).values()),
        ]
        # quiet: the API returns what happened, the CLI says it
        config = Config(attributes={_RUN_KEY: run}, cmd_opts=Namespace(quiet=True))
        config.set_main_option("script_location", _escape(self.directory.resolve()))
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", _escape(_join(locations)))
        config.set_main_option("file_template", _FILE_TEMPLATE)
        return config

    def _script(self, name: str) -> ScriptDirectory:
        return ScriptDirectory.from_config(self._config(_Run(self, name)))

    # -- operations ---------------------------------------------------------------------------

    def makemigrations(
        self, message: str | None = None, *, autogenerate: bool = True, bind: str | None = None
    ) -> dict[str, Path]:
        """Write a revision for each database whose models changed.

        Args:
            message: What the revision does (its docstring and file name); ``None`` makes one
                up from the changes.
            autogenerate: Compare the models with the database (which must be up to date);
                ``False`` writes an empty revision to fill by hand (one database only).
            bind: Only this database.

        Returns:
            The files written, by database; empty when no model changed.
        """
        names = self._selected(bind)
        if not autogenerate and len(names) > 1:
            raise MigrationsError(
                "an empty revision is for one database: name it (--database NAME); the"
                f" databases are: {', '.join(names)}"
            )
        written: dict[str, Path] = {}
        for name in names:
            path = self._revision(name, message, autogenerate)
            if path is not None:
                written[name] = path
        return written

    def _revision(self, name: str, message: str | None, autogenerate: bool) -> Path | None:
        run = _Run(self, name)
        config = self._config(run)
        script = ScriptDirectory.from_config(config)
        versions = self.versions_dir(name).resolve()
        heads = [
            rev.revision
            for rev in (script.get_revision(head) for head in script.get_heads())
            if rev is not None and Path(rev.path).resolve().parent == versions
        ]
        if len(heads) > 1:
            raise MigrationsError(
                f"database {name!r} has several heads in {versions}: {', '.join(heads)};"
                " merge them first (alembic merge)"
            )

        def directives(_context: Any, _revision: Any, scripts: list[Any]) -> None:
            migration = scripts[0]
            upgrade = migration.upgrade_ops
            if autogenerate and upgrade.is_empty():
                scripts[:] = []
                return
            if not migration.message:
                migration.message = _autogen.summary(upgrade.ops) if autogenerate else "manual"
            for container in (upgrade, migration.downgrade_ops):
                _autogen.drop_tables_whole(container)
                _autogen.enum_types(container)

        try:
            result = command.revision(
                config,
                message=message,
                autogenerate=autogenerate,
                head=heads[0] if heads else "base",
                branch_label=None if heads else APP_BRANCH,
                version_path=str(versions),
                process_revision_directives=directives,
            )
        except CommandError as exc:
            if "not up to date" in str(exc):
                pending = self._pending(name)
                raise MigrationsError(
                    f"database {name!r} is not up to date ({', '.join(pending)} not applied):"
                    " run `trellis db upgrade` before `makemigrations`"
                ) from None
            raise MigrationsError(f"database {name!r}: {exc}") from None
        scripts = result if isinstance(result, list) else [result]
        found = [s for s in scripts if s is not None]
        return Path(found[0].path) if found else None

    def upgrade(
        self, target: str = "heads", *, bind: str | None = None
    ) -> dict[str, list[Revision]]:
        """Apply revisions up to ``target`` (default: the head of every branch).

        Returns:
            The revisions applied, in order, by database.
        """
        return self._move(command.upgrade, target, bind)

    def downgrade(self, target: str, *, bind: str | None = None) -> dict[str, list[Revision]]:
        """Revert revisions down to ``target`` (``"base"``: all; ``"-1"``: the last one).

        Returns:
            The revisions reverted, in order, by database.
        """
        return self._move(command.downgrade, target, bind)

    def _move(
        self, fn: Callable[[Config, str], None], target: str, bind: str | None
    ) -> dict[str, list[Revision]]:
        names = self._selected(bind)
        if len(names) > 1 and target not in ("heads", "base"):
            raise MigrationsError(
                f"revision target {target!r} is for one database: name it (--database NAME);"
                f" the databases are: {', '.join(names)}"
            )
        done: dict[str, list[Revision]] = {}
        for name in names:
            run = _Run(self, name)
            config = self._config(run)
            try:
                fn(config, target)
            except CommandError as exc:
                raise MigrationsError(f"database {name!r}: {exc}") from None
            script = ScriptDirectory.from_config(config)
            done[name] = [Revision._of(script.get_revision(rev)) for _, rev in run.steps]
        return done

    def current(self, *, bind: str | None = None) -> dict[str, tuple[str, ...]]:
        """The revisions each database is at (one per branch applied; empty: none)."""
        return {name: tuple(self._inspect(name, _current)) for name in self._selected(bind)}

    def _pending(self, name: str) -> list[str]:
        script = self._script(name)
        applied = set(self._inspect(name, _current))
        wanted = {rev.revision for rev in script.walk_revisions() if rev is not None}
        done: set[str] = set()
        for head in applied:
            try:
                done.update(r.revision for r in script.iterate_revisions(head, "base") if r)
            except RevisionError:
                raise MigrationsError(
                    f"database {name!r}: Can't locate revision identified by {head!r}"
                    " (the database is at a revision that no revision file has)"
                ) from None
        return sorted(wanted - done)

    def history(self, *, bind: str | None = None) -> dict[str, list[Revision]]:
        """The revision files of each database, newest first (no database connection)."""
        return {
            name: [Revision._of(script) for script in self._script(name).walk_revisions()]
            for name in self._selected(bind)
        }

    def check(self, *, bind: str | None = None) -> None:
        """Fail when the models and the migrations disagree.

        A database disagrees when revisions are not applied to it yet, or when
        ``makemigrations`` would write a revision for it (the comparison it makes).

        Raises:
            MigrationCheckError: with the differences, by database.
        """
        differences: dict[str, list[str]] = {}
        for name in self._selected(bind):
            pending = self._pending(name)
            if pending:
                differences[name] = [
                    f"revision {rev} is not applied (run `trellis db upgrade`)" for rev in pending
                ]
                continue
            found = self._inspect(name, _differences)
            if found:
                differences[name] = found
        if differences:
            raise MigrationCheckError(differences)

    def _inspect(self, name: str, fn: Callable[[MigrationContext, _Run], list[str]]) -> list[str]:
        """Run ``fn(context, run)`` inside ``env.py`` on database ``name``."""
        run = _Run(self, name)
        config = self._config(run)
        script = ScriptDirectory.from_config(config)
        result: list[str] = []

        def inspect(_rev: Any, context: MigrationContext) -> list[Any]:
            result.extend(fn(context, run))
            return []

        try:
            with EnvironmentContext(config, script, fn=inspect):
                script.run_env()
        except CommandError as exc:
            raise MigrationsError(f"database {name!r}: {exc}") from None
        return result

    # -- the environment (env.py) -------------------------------------------------------------

    def _engine(self, name: str) -> AsyncEngine:
        """A connection-per-use engine for migrating ``name`` (the app's options, no pool)."""
        url, options = self.database._options(self.database.urls[name])
        for key in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"):
            options.pop(key, None)
        engine = create_async_engine(url, poolclass=NullPool, **options)
        if backend_of(url) == "sqlite":
            _sqlite_transactions(engine.sync_engine)
        return engine

    def _configure_options(self, run: _Run, connection: Connection) -> dict[str, Any]:
        name = run.name
        known = {table.name for table in self.metadata.tables.values()}
        created = _autogen.created_tables(self.versions_dir(name))
        sqlite = connection.dialect.name == "sqlite"

        def include_object(
            obj: Any, object_name: str | None, type_: str, reflected: bool, compare_to: Any
        ) -> bool:
            if type_ != "table":
                return True
            table = compare_to if reflected else obj
            if table is None:  # in the database only: drop it if our revisions made it
                return object_name in created and object_name not in known
            return self._owns(name, table)

        def on_version_apply(*, step: MigrationInfo, **_kw: Any) -> None:
            revision = step.up_revision_id
            if revision is not None and not step.is_stamp:
                run.steps.append((step.is_upgrade, revision))

        return {
            "target_metadata": self.metadata,
            "include_object": include_object,
            "compare_type": True,
            "render_as_batch": sqlite,
            # SQLite runs DDL inside BEGIN ... COMMIT: a failed upgrade leaves nothing behind.
            "transactional_ddl": True if sqlite else None,
            "render_item": _autogen.render_item,
            "on_version_apply": on_version_apply,
        }

    def _owns(self, name: str, table: Table) -> bool:
        return (table.info.get("bind_key") or "default") == name and table.info.get(
            BRANCH_KEY, APP_BRANCH
        ) == APP_BRANCH

    async def _online(self, run: _Run, context: Any, options: dict[str, Any]) -> None:
        engine = self._engine(run.name)
        try:
            try:
                connection = await engine.connect()
            except (DBAPIError, OSError) as exc:
                raise MigrationsError(
                    f"cannot connect to the database {run.name!r} at {redact(engine.url)}:"
                    f" {_reason(exc)}"
                ) from None
            try:
                await connection.run_sync(self._migrate, run, context, options)
            finally:
                await connection.close()
        finally:
            await engine.dispose()

    def _migrate(
        self, connection: Connection, run: _Run, context: Any, options: dict[str, Any]
    ) -> None:
        settings = self._configure_options(run, connection)
        settings = {key: value for key, value in settings.items() if value is not None}
        context.configure(connection=connection, **{**settings, **options})
        with context.begin_transaction():
            context.run_migrations()
        if connection.in_transaction():  # the version check alone (current, check) opened one
            connection.commit()


def run_migrations(**options: Any) -> None:
    """Run the migration command Trellis started; the body of a project's ``env.py``.

    Args:
        options: More keyword arguments for Alembic's ``context.configure()``.
    """
    from alembic import context

    run = context.config.attributes.get(_RUN_KEY)
    if not isinstance(run, _Run):
        raise MigrationsError(
            "this env.py runs through `trellis db ...` (or trellis.contrib.db.migrations"
            ".Migrations), not the alembic command: it needs the application's Database"
        )
    if context.is_offline_mode():
        raise MigrationsError("Trellis runs migrations online only (no --sql)")
    _run_coroutine(run.migrations._online(run, context, options))


def drop_enum(name: str, schema: str | None = None) -> None:
    """In a revision: drop the PostgreSQL enum type ``name`` unless a column still uses it.

    Autogenerated revisions call it after dropping a table or column that had the type;
    on other databases it does nothing.
    """
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    used = bind.execute(
        text(
            "SELECT 1 FROM pg_attribute a JOIN pg_type t ON a.atttypid = t.oid"
            " JOIN pg_namespace n ON t.typnamespace = n.oid"
            " WHERE t.typname = :name AND n.nspname = coalesce(:schema, current_schema())"
            " AND a.attnum > 0 AND NOT a.attisdropped LIMIT 1"
        ),
        {"name": name, "schema": schema},
    ).first()
    if used is None:
        quote = bind.dialect.identifier_preparer.quote
        where = f"{quote(schema)}." if schema else ""
        op.execute(f"DROP TYPE IF EXISTS {where}{quote(name)}")


# -- helpers -----------------------------------------------------------------------------------


def _current(context: MigrationContext, _run: _Run) -> list[str]:
    return sorted(context.get_current_heads())


def _differences(context: MigrationContext, _run: _Run) -> list[str]:
    metadata = context.opts["target_metadata"]
    upgrade = produce_migrations(context, metadata).upgrade_ops
    assert upgrade is not None
    return [_autogen.describe(diff) for diff in upgrade.as_diffs()]


def _run_coroutine(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` to the end from sync code, in a thread if a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _sqlite_transactions(engine: Engine) -> None:
    # Python's sqlite3 commits around DDL on its own; emit BEGIN ourselves (SQLAlchemy's
    # documented recipe) so that a migration is one transaction. Foreign keys stay off
    # (SQLite's default): batch mode drops and re-creates tables that others may reference.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _escape(value: object) -> str:
    return str(value).replace("%", "%%")  # configparser interpolation


def _join(paths: Iterable[Path]) -> str:
    return os.pathsep.join(str(path) for path in paths)
