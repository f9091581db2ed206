"""The auth models and their migration branch, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from auth_helpers import AUTH_TABLES, add_user
from sqlalchemy import MetaData, func, inspect, select
from sqlalchemy.exc import IntegrityError

from trellis import App
from trellis.contrib.auth import Auth, AuthToken, Group, OAuthAccount, Permission, User
from trellis.contrib.auth.models import MIGRATION_BRANCH
from trellis.contrib.auth.plugin import MIGRATIONS_DIRECTORY
from trellis.contrib.db import Database, Model
from trellis.contrib.db.migrations import Migrations
from trellis.exceptions import ConfigurationError


def test_every_table_belongs_to_the_branch() -> None:
    names = {table.name for table in AUTH_TABLES}
    assert names == {
        "auth_user",
        "auth_group",
        "auth_permission",
        "auth_user_group",
        "auth_group_permission",
        "auth_user_permission",
        "auth_token",
        "auth_oauth_account",
    }
    for table in AUTH_TABLES:
        assert table.metadata is Model.metadata
        assert table.info == {"migration_branch": MIGRATION_BRANCH}


def test_email_and_username_are_normalized() -> None:
    user = User(email="  Ann.Lee@Example.COM ", username=" \uff21nnLee ")  # a full-width A
    assert user.email == "ann.lee@example.com"
    assert user.username == "annlee"  # NFKC folds the full-width letter
    assert User(email="b@x.org").username is None
    with pytest.raises(ValueError, match="email: 1 to 320"):
        User(email="   ")
    with pytest.raises(ValueError, match="username: 1 to 150"):
        User(email="c@x.org", username=" ")
    assert str(user) == "annlee"
    assert str(User(email="d@x.org")) == "d@x.org"
    assert User(email="e@x.org").is_authenticated is True


def test_permission_codenames_have_no_spaces() -> None:
    assert Permission(codename=" articles.publish ").codename == "articles.publish"
    with pytest.raises(ValueError, match="without spaces"):
        Permission(codename="articles publish")


@pytest.mark.anyio
async def test_defaults_and_uniqueness(database: Database) -> None:
    user = await add_user(database, "Ann@Example.com", username="ann")
    assert user.is_active is True
    assert user.is_superuser is False
    assert user.created_at.tzinfo is not None
    assert user.last_login is None
    assert user.password_changed_at is None
    for duplicate in (
        {"email": "ANN@example.com"},
        {"email": "other@example.com", "username": "ANN"},
    ):
        with pytest.raises(IntegrityError):
            async with database.transaction() as db:
                db.add(User(**duplicate))
    # several users without a user name
    await add_user(database, "b@example.com")
    await add_user(database, "c@example.com")


@pytest.mark.anyio
async def test_oauth_subjects_and_token_hashes_are_exact(database: Database) -> None:
    user = await add_user(database)
    async with database.transaction() as db:
        db.add(OAuthAccount(user_id=user.id, provider="oidc", subject="AbC"))
        db.add(OAuthAccount(user_id=user.id, provider="oidc", subject="abc"))  # not the same
        db.add(AuthToken(user_id=user.id, token_hash="a" * 64))
        db.add(AuthToken(user_id=user.id, token_hash="A" * 64))
    async with database.session() as db:
        found = await db.scalar(select(OAuthAccount).where(OAuthAccount.subject == "abc"))
        assert found is not None and found.subject == "abc"
    with pytest.raises(IntegrityError):
        async with database.transaction() as db:
            db.add(OAuthAccount(user_id=user.id, provider="oidc", subject="abc"))


@pytest.mark.anyio
async def test_deleting_a_user_deletes_what_hangs_on_it(database: Database) -> None:
    user = await add_user(database)
    async with database.transaction() as db:
        found = await db.get(User, user.id)
        assert found is not None
        group = Group(name="editors", permissions=[Permission(codename="a.b")])
        (await found.awaitable_attrs.groups).append(group)
        (await found.awaitable_attrs.permissions).append(Permission(codename="c.d"))
        db.add(AuthToken(user_id=user.id, token_hash="f" * 64))
        db.add(OAuthAccount(user_id=user.id, provider="github", subject="1"))
    async with database.transaction() as db:
        found = await db.get(User, user.id)
        await db.delete(found)
    async with database.session() as db:
        for model in (AuthToken, OAuthAccount, Group, Permission):
            count = await db.scalar(select(func.count()).select_from(model))
            assert count == (1 if model is Group else 2 if model is Permission else 0), model


# -- the migration branch --------------------------------------------------------------------


def load_revision() -> ModuleType:
    path = MIGRATIONS_DIRECTORY / "0001_trellis_auth.py"
    spec = importlib.util.spec_from_file_location("trellis_auth_0001", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_branch_is_an_alembic_branch() -> None:
    scripts = ScriptDirectory(
        str(MIGRATIONS_DIRECTORY), version_locations=[str(MIGRATIONS_DIRECTORY)]
    )
    head = scripts.get_revision(f"{MIGRATION_BRANCH}@head")
    assert head is not None
    assert head.revision == "trellis_auth_0001"
    assert head.branch_labels == {MIGRATION_BRANCH}
    assert head.down_revision is None


@pytest.fixture
def migration_db(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    try:
        yield db
    finally:
        db.sync_engine_for().dispose()


def test_the_revision_creates_what_the_models_declare(migration_db: Database) -> None:
    revision = load_revision()
    expected = MetaData(naming_convention=Model.metadata.naming_convention)
    for table in AUTH_TABLES:
        table.to_metadata(expected)
    engine = migration_db.sync_engine_for()
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        revision.upgrade()
    with engine.connect() as conn:
        assert {t.name for t in AUTH_TABLES} <= set(inspect(conn).get_table_names())
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, expected) == []
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        revision.downgrade()
    with engine.connect() as conn:
        assert not {t.name for t in AUTH_TABLES} & set(inspect(conn).get_table_names())


def test_upgrade_and_downgrade_through_the_projects_migrations(db_url: str, tmp_path: Path) -> None:
    app = App(debug=True)
    db = app.install(Database(db_url, check_on_startup=False))
    app.install(Auth(pages=False, api=False))
    assert db.migration_branches == {MIGRATION_BRANCH: MIGRATIONS_DIRECTORY}
    migrations = Migrations(db, tmp_path / "migrations")
    migrations.init()
    applied = migrations.upgrade()["default"]
    assert [(r.id, r.branches) for r in applied] == [("trellis_auth_0001", (MIGRATION_BRANCH,))]
    # the project's own autogenerate leaves the battery's tables alone
    assert migrations.makemigrations() == {}
    migrations.check()
    reverted = migrations.downgrade("base")["default"]
    assert [r.id for r in reverted] == ["trellis_auth_0001"]
    engine = db.sync_engine_for()
    try:
        with engine.connect() as conn:
            assert not {t.name for t in AUTH_TABLES} & set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert migrations.upgrade()["default"][0].id == "trellis_auth_0001"
    migrations.downgrade("base")


def test_auth_needs_a_database_first() -> None:
    app = App(debug=True)
    with pytest.raises(ConfigurationError, match=r"app.install\(Database\(url\)\) before"):
        app.install(Auth())


def test_one_auth_per_app(tmp_path: Path) -> None:
    app = App(debug=True)
    app.install(Database(f"sqlite:///{tmp_path / 'x.db'}"))
    app.install(Auth(pages=False, api=False))
    with pytest.raises(ConfigurationError, match="already has an Auth"):
        app.install(Auth(pages=False, api=False))
