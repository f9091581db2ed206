import os

import pytest
from myproject import create_app

pytest_plugins = ["trellis.contrib.db.testing"]


@pytest.fixture
def app():
    return create_app(database_url=os.environ.get("DATABASE_URL", "sqlite:///test.db"))
