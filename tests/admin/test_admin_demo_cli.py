"""The admin demo's commands, as its README gives them, in a separate process.

``trellis db upgrade`` applies the batteries' branches (the admin's action log among them)
and the demo's own revision; ``trellis user grant`` knows the admin's permissions without
``--create``, since registering a model declares them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "examples" / "admin_demo" / "app.py")


def trellis(tmp_path: Path, *args: str, input: str | None = None) -> str:
    env = {
        **os.environ,
        "TRELLIS_DEBUG": "1",
        "TRELLIS_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "trellis.cli", "--app", APP, *args],
        cwd=tmp_path,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.server
def test_migrations_and_permissions(tmp_path: Path) -> None:
    upgraded = trellis(tmp_path, "db", "upgrade")
    assert "trellis_admin_0001" in upgraded and "admin_demo_0001" in upgraded
    assert "agree" in trellis(tmp_path, "db", "check")
    trellis(
        tmp_path, "user", "create", "ann@example.com", "--username", "ann", "--password", "x" * 12
    )
    trellis(tmp_path, "user", "grant", "ann", "demo_book.change")
    trellis(tmp_path, "user", "grant", "ann", "tickets.view")
    shown = trellis(tmp_path, "user", "show", "ann")
    assert "demo_book.change" in shown and "tickets.view" in shown
