"""``trellis db ...``: the migration commands, through the ``trellis`` CLI with an app module."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trellis.cli import main

APP = """
    import os

    from sqlalchemy import Column, Integer, MetaData, String, Table

    from trellis import App
    from trellis.contrib.db import NAMING_CONVENTION, Database
    from trellis.contrib.db.migrations import Migrations

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table(
        "note",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("text", String(255), nullable=False),
    )
    if os.environ.get("WITH_TAG"):
        Table("tag", metadata, Column("id", Integer, primary_key=True))

    app = App()
    db = app.install(Database(os.environ["TEST_DB_URL"], check_on_startup=False))
    app.state.migrations = Migrations(db, metadata=metadata)
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in tmp_path; forget the app modules and the sys.path entries the test added.

    Only the app modules: SQLAlchemy's and Alembic's, imported on first use, must stay.
    """
    monkeypatch.chdir(tmp_path)
    for name in ("TRELLIS_APP", "TRELLIS_APP_DIR", "TRELLIS_MIGRATIONS_DIR", "WITH_TAG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "notes.py").write_text(textwrap.dedent(APP))
    yield
    for name in ("notes", "plain"):
        sys.modules.pop(name, None)


def db(url: str, *args: str, **env: str) -> Result:
    sys.modules.pop("notes", None)  # the app module again: the environment may differ
    return CliRunner().invoke(
        main, ["--app", "notes:app", "db", *args], env={"TEST_DB_URL": url, **env}
    )


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def test_the_migration_workflow(db_url: str, tmp_path: Path) -> None:
    output = ok(db(db_url, "init"))
    assert "Created migrations/env.py" in output
    assert (tmp_path / "migrations" / "versions").is_dir()
    assert "migrations/ is already set up." in ok(db(db_url, "init"))

    output = ok(db(db_url, "makemigrations", "-m", "create notes"))
    assert output.startswith("default: wrote ")
    (path,) = (tmp_path / "migrations" / "versions").glob("*_create_notes.py")
    revision = path.name.split("_")[2]
    assert ok(db(db_url, "current")) == "default: no revision applied\n"
    assert ok(db(db_url, "upgrade")) == f"default: applied {revision} (app, head) create notes\n"
    assert ok(db(db_url, "upgrade")) == "default: up to date\n"
    assert ok(db(db_url, "current")) == f"default: {revision} (app, head) create notes\n"
    assert ok(db(db_url, "makemigrations")) == "No changes in the models: no revision written.\n"
    assert ok(db(db_url, "check")) == "OK: the models and the migrations agree.\n"

    result = db(db_url, "check", WITH_TAG="1")
    assert result.exit_code == 1
    assert "default: add table tag" in result.output
    assert "Traceback" not in result.output
    output = ok(db(db_url, "makemigrations", WITH_TAG="1"))
    (second,) = (tmp_path / "migrations" / "versions").glob("*_create_tag.py")
    assert str(second) in output
    ok(db(db_url, "upgrade", WITH_TAG="1"))
    ok(db(db_url, "check", WITH_TAG="1"))

    history = ok(db(db_url, "history")).splitlines()
    second_id = second.name.split("_")[2]
    assert history == [
        "default:",
        f"  {revision} -> {second_id} (app, head) create tag",
        f"  <base> -> {revision} (app) create notes",
    ]
    output = ok(db(db_url, "downgrade", "base"))
    assert output.splitlines() == [
        f"default: reverted {second_id} (app, head) create tag",
        f"default: reverted {revision} (app) create notes",
    ]
    ok(db(db_url, "upgrade", WITH_TAG="1"))
    ok(db(db_url, "check", WITH_TAG="1"))


def test_db_is_listed_with_its_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    sys.modules.pop("notes", None)
    result = CliRunner().invoke(main, ["--app", "notes:app", "--help"], env={"TEST_DB_URL": url})
    assert "db " in result.output
    output = ok(db(url, "--help"))
    for command in ("init", "makemigrations", "upgrade", "downgrade", "current", "history"):
        assert command in output
    assert "check" in output
    assert "--database NAME" in ok(db(url, "upgrade", "--help"))


def test_errors_are_one_line_messages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = db(url, "upgrade")
    assert result.exit_code == 1
    assert "run `trellis db init` first" in result.output
    assert "Traceback" not in result.output
    assert db(url, "downgrade").exit_code == 2  # TARGET is required
    ok(db(url, "init"))
    result = db(url, "current", "--database", "nope")
    assert result.exit_code == 1
    assert "no database named 'nope'; the databases are: default" in result.output
    result = db("postgresql://app:s3cret@127.0.0.1:9/nowhere", "upgrade")
    assert result.exit_code == 1
    assert "cannot connect to the database 'default' at postgresql+asyncpg://app:***@" in (
        result.output
    )
    assert "s3cret" not in result.output


def test_directory_option_and_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    ok(db(url, "init", "--directory", "db/migrations"))
    assert (tmp_path / "db" / "migrations" / "env.py").is_file()
    ok(db(url, "makemigrations", "-m", "first", "--directory", "db/migrations"))
    assert len(list((tmp_path / "db" / "migrations" / "versions").glob("*.py"))) == 1
    output = ok(db(url, "upgrade", TRELLIS_MIGRATIONS_DIR="db/migrations"))
    assert output.startswith("default: applied ")
    assert not (tmp_path / "migrations").exists()


def test_the_default_metadata_and_directory(tmp_path: Path) -> None:
    # Without app.state.migrations: Model.metadata and ./migrations.
    (tmp_path / "plain.py").write_text(
        textwrap.dedent("""
            from trellis import App
            from trellis.contrib.db import Database

            app = App()
            app.install(Database("sqlite:///plain.db", check_on_startup=False))
        """)
    )
    result = CliRunner().invoke(main, ["--app", "plain:app", "db", "init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "migrations" / "env.py").is_file()
    result = CliRunner().invoke(main, ["--app", "plain:app", "db", "history"])
    assert result.output == "default:\n  (no revisions)\n"
