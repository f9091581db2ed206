"""`trellis new mysite --full`, then the project's own test command, in a fresh virtualenv.

The slow test of the suite (about 30 s, most of it pip): it checks what a new user does,
with nothing of this checkout's virtualenv on the path. A new virtualenv gets Trellis from
this checkout (`pip install '<repo>[all]'`, standing in for the release on PyPI; pip's wheel
cache keeps it fast), then the exact command line of the project's README runs in the
project's directory: `python -m venv .venv && .venv/bin/pip install -e '.[dev]' &&
.venv/bin/pytest`. Deselect it with `-m "not slow"`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NAME = "mysite"


def _clean_env(path_first: Path) -> dict[str, str]:
    """The environment of a new shell: no Trellis settings, no virtualenv, no pytest state."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRELLIS_", "PYTEST_", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(args: list[str] | str, cwd: Path, env: dict[str, str], timeout: float) -> str:
    completed = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        shell=isinstance(args, str),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{args} failed ({completed.returncode}):\n{output}"
    return completed.stdout


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def _made_by_the_command(project: Path) -> set[str]:
    """What installing and testing added: the virtualenv, caches, the package's metadata."""
    return {
        name
        for name in _files(project)
        if name.startswith((".venv/", ".pytest_cache/"))
        or "__pycache__" in name
        or ".egg-info/" in name
    }


def test_full_project_passes_its_tests_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    # `python` of the README's command line: this interpreter's (a virtualenv made from a
    # virtualenv is based on the same base interpreter, without its packages).
    env = _clean_env(Path(sys.executable).parent)

    started = time.monotonic()
    _run([sys.executable, "-m", "trellis.cli", "new", NAME, "--full"], tmp_path, env, 60)
    project = tmp_path / NAME
    readme = (project / "README.md").read_text()
    found = re.search(r"^python -m venv \.venv && .*$", readme, re.MULTILINE)
    assert found, "the README gives no test command"
    command = found.group(0)
    assert command == (
        "python -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/pytest"
    )

    # Trellis itself, as PyPI would give it, into the virtualenv the command then reuses.
    _run([sys.executable, "-m", "venv", str(project / ".venv")], project, env, 120)
    pip = [str(project / ".venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, f"{REPO}[all]"], project, env, 600)
    timings["trellis installed"] = time.monotonic() - started

    output = _run(command, project, env, 600)
    timings["project tested"] = time.monotonic() - started

    assert re.search(r"\b14 passed\b", output), output
    assert " failed" not in output and " error" not in output, output
    # The project's tests used the virtualenv's Trellis, not this checkout's environment.
    python = str(project / ".venv" / "bin" / "python")
    where = _run([python, "-c", "import trellis; print(trellis.__file__)"], project, env, 60)
    assert where.startswith(str(project / ".venv")), where
    # The installed package ships the whole scaffold: its `trellis new` writes the same files.
    trellis = str(project / ".venv" / "bin" / "trellis")
    _run([trellis, "new", "othersite", "--full"], tmp_path, env, 60)
    shipped = {name.replace("othersite", NAME) for name in _files(tmp_path / "othersite")}
    assert shipped == _files(project) - _made_by_the_command(project)
    print(", ".join(f"{step} after {seconds:.1f} s" for step, seconds in timings.items()))
