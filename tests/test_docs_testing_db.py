"""The project of examples/testing_db/, shown in docs/database.md, passes its own tests.

docs/database.md includes its ``conftest.py`` and ``test_notes.py`` ("Testing with a
database"): here pytest runs them in a copy of the project, as its developers would, with
warnings as errors. The tests themselves check that each test's writes are rolled back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from docs_blocks import ROOT, blocks

PROJECT = ROOT / "examples" / "testing_db"


def test_the_page_shows_the_project_files() -> None:
    included = {name for block in blocks("database.md") for name in block.includes}
    assert {"examples/testing_db/conftest.py", "examples/testing_db/test_notes.py"} <= included


def test_the_project_tests_pass(tmp_path: Path) -> None:
    project = tmp_path / "testing_db"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRELLIS_", "PYTEST_"))}
    env.update(TRELLIS_DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'test.db'}")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "error", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # all three ran: the one that writes, the one that sees nothing, the async one
    assert "3 passed" in result.stdout, result.stdout
