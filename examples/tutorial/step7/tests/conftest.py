import pytest
from app import create_app

from trellis import App
from trellis.contrib.auth import PasswordHasher

# db_rollback: what a test writes is rolled back when it ends
pytest_plugins = ["trellis.contrib.db.testing"]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    # One database for the run: the migrations are applied to it once.
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture
def app(database_url: str) -> App:
    app = create_app(database_url=database_url, debug=True)
    # A fast password hasher: argon2's real cost is for production.
    app.state.auth.hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return app
