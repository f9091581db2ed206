"""The test kit (``trellis.contrib.db.testing``): a user's test suite, run by pytest itself.

Each scenario writes a small project (an app, its conftest, its tests) and runs pytest on it
in a subprocess (a clean interpreter: the project's models are its own), once per database.
"""

from __future__ import annotations

import textwrap

import pytest

from trellis.contrib.db import Database
from trellis.contrib.db.migrations import Migrations

pytest_plugins = ["pytester"]

APP = """
from __future__ import annotations

from sqlalchemy import ForeignKey, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis import App
from trellis.contrib.db import Database, IdMixin, Model, Session
from trellis.contrib.db.factories import Factory, LazyAttribute, Sequence, SubFactory
from trellis.exceptions import HTTPError


class Author(IdMixin, Model):
    name: Mapped[str] = mapped_column(unique=True)
    articles: Mapped[list[Article]] = relationship(back_populates="author")


class Article(IdMixin, Model):
    title: Mapped[str]
    slug: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="articles")


class AuthorFactory(Factory[Author]):
    name = Sequence(lambda n: f"Author {n}")


class ArticleFactory(Factory[Article]):
    title = Sequence(lambda n: f"Article {n}")
    slug = LazyAttribute(lambda a: a.title.lower().replace(" ", "-"))
    author = SubFactory(AuthorFactory)


async def count(session, model) -> int:
    return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def create_app(url: str, *, stores: bool = False) -> App:
    app = App(debug=True)
    db = app.install(Database(url))
    if stores:
        from trellis.contrib.db.stores import DatabaseCache

        app.install(DatabaseCache(db))

    @app.post("/authors")
    async def add_author(name: str, db: Session) -> dict[str, int]:
        author = Author(name=name)
        db.add(author)
        await db.flush()
        if name == "fails":
            raise HTTPError(422, "written, then refused")
        return {"id": author.id}

    @app.get("/count")
    async def counts(db: Session) -> dict[str, int]:
        return {"authors": await count(db, Author), "articles": await count(db, Article)}

    @app.post("/hits")
    async def hit() -> dict[str, int]:
        return {"hits": await app.state.cache.incr("hits")}

    return app
"""

CONFTEST = """
import os

import pytest

from myapp import create_app

pytest_plugins = ["trellis.contrib.db.testing"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app():
    return create_app(os.environ["KIT_DATABASE_URL"], stores=STORES)
"""

TESTS = """
import pytest

from myapp import Article, ArticleFactory, Author, AuthorFactory, count


def test_a_handler_commits_and_the_test_sees_it(client, db_rollback):
    assert client.post("/authors", params={"name": "Ann"}).status_code == 200
    assert client.post("/authors", params={"name": "Bob"}).status_code == 200
    assert client.get("/count").json() == {"authors": 2, "articles": 0}


def test_the_next_test_starts_empty(db_rollback, client):
    assert client.get("/count").json() == {"authors": 0, "articles": 0}


def test_the_readiness_check_answers_inside_the_test_transaction(client, db_rollback):
    assert client.call(db_rollback.check) == {"default": "ok"}


def test_failed_requests_roll_back_to_their_savepoint(client, db_rollback):
    assert client.post("/authors", params={"name": "Ann"}).status_code == 200
    assert client.post("/authors", params={"name": "fails"}).status_code == 422
    assert client.post("/authors", params={"name": "Ann"}).status_code == 409  # unique
    assert client.post("/authors", params={"name": "Cy"}).status_code == 200  # still usable
    assert client.get("/count").json() == {"authors": 2, "articles": 0}


def test_client_call_runs_on_the_apps_loop(client, db_rollback):
    client.post("/authors", params={"name": "Ann"})

    async def authors() -> int:
        async with db_rollback.session() as session:
            return await count(session, Author)

    assert client.call(authors) == 1


@pytest.mark.anyio
async def test_async_client_and_direct_sessions(async_client, db_rollback):
    assert (await async_client.post("/authors", params={"name": "Ann"})).status_code == 200
    async with db_rollback.transaction() as session:
        assert await count(session, Author) == 1
        await ArticleFactory.create(session, title="Hello World")
    response = await async_client.get("/count")
    assert response.json() == {"authors": 2, "articles": 1}


@pytest.mark.anyio
async def test_async_without_a_client(db_rollback):
    async with db_rollback.transaction() as session:
        articles = await ArticleFactory.create_batch(session, 2)  # an author each
        assert all(a.id is not None and a.author.id is not None for a in articles)
        dee = await AuthorFactory.create(session, name="Dee")
        await ArticleFactory.create_batch(session, 3, author=dee)
    async with db_rollback.session() as session:
        assert await count(session, Article) == 5
        assert await count(session, Author) == 3


@pytest.mark.anyio
async def test_everything_was_rolled_back(database):
    try:
        async with database.session() as session:
            assert await count(session, Author) == 0
            assert await count(session, Article) == 0
    finally:
        await database.dispose()
"""

STORE_TESTS = """
def test_cache_writes_are_rolled_back_too(client, db_rollback):
    assert client.post("/hits").json() == {"hits": 1}
    assert client.post("/hits").json() == {"hits": 2}


def test_the_cache_starts_empty(client, db_rollback):
    assert client.post("/hits").json() == {"hits": 1}


def test_migrated_once(migrations_run):
    assert len(migrations_run) == 1
"""

MIGRATING_CONFTEST = """

from trellis.contrib.db.testing import migrate

RUNS = []


@pytest.fixture(scope="session")
def migrations_run():
    return RUNS


@pytest.fixture(scope="session")
def db_migrate(pytestconfig):
    def counted(database):
        RUNS.append(database)
        migrate(database, pytestconfig.rootpath / "migrations")

    return counted
"""

REVISION = '''
"""Authors and articles."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("app",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "author",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
    )
    op.create_table(
        "article",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("slug", sa.String(255), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("author.id"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("article")
    op.drop_table("author")
'''

INI = """
[pytest]
addopts = -p no:cacheprovider
filterwarnings = error
"""


def write_project(pytester: pytest.Pytester, *, stores: bool) -> None:
    pytester.makeini(INI)
    conftest = CONFTEST.replace("STORES", repr(stores))
    if stores:
        conftest += MIGRATING_CONFTEST
    pytester.makeconftest(conftest)
    pytester.makepyfile(myapp=APP, test_kit=TESTS)
    if stores:
        pytester.makepyfile(test_stores_kit=STORE_TESTS)


def test_rolled_back_tests_on_every_database(
    pytester: pytest.Pytester, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No migrations directory: the models' tables are made with create_all.
    monkeypatch.setenv("KIT_DATABASE_URL", db_url)
    write_project(pytester, stores=False)
    result = pytester.runpytest_subprocess("-v", timeout=300)
    result.assert_outcomes(passed=8)


def test_migrations_run_once_and_batteries_are_rolled_back(
    pytester: pytest.Pytester, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_DATABASE_URL", db_url)
    write_project(pytester, stores=True)
    migrations = pytester.path / "migrations"
    Migrations(Database(db_url), migrations).init()
    (migrations / "versions" / "0001_authors.py").write_text(textwrap.dedent(REVISION))
    result = pytester.runpytest_subprocess("-v", timeout=300)
    result.assert_outcomes(passed=11)


def test_without_the_app_fixture_the_plugin_stays_out_of_the_way(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(INI)
    pytester.makeconftest('pytest_plugins = ["trellis.contrib.db.testing"]')
    pytester.makepyfile(
        test_plain="""
        def test_plain():
            assert True

        def test_rollback_needs_an_app(db_rollback):
            pass
        """
    )
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'app' not found*"])
