"""The micro core stands alone: ``import trellis`` loads no battery and no heavy library."""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "trellis"

# Libraries that only batteries or optional features may load.
BATTERY_LIBS = (
    "sqlalchemy",
    "alembic",
    "babel",
    "redis",
    "argon2",
    "jwt",
    "authlib",
    "prometheus_client",
    "opentelemetry",
    "saq",
)
# Loaded on first use by the core, never by ``import trellis`` itself.
LAZY_LIBS = (
    "jinja2",
    "pydantic",
    "pydantic_settings",
    "python_multipart",
    "click",
    "uvicorn",
    "a2wsgi",
    "croniter",
)


def test_import_trellis_loads_no_battery_and_nothing_heavy() -> None:
    code = (
        "import sys, json, trellis; "
        f"print(json.dumps(sorted(m for m in {BATTERY_LIBS + LAZY_LIBS + ('trellis.contrib',)!r}"
        " if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout) == []


def _core_modules() -> list[pathlib.Path]:
    return [p for p in SRC.rglob("*.py") if "contrib" not in p.relative_to(SRC).parts]


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_core_module_never_imports_a_battery(path: pathlib.Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.append(node.module)
    bad = [
        name
        for name in imported
        if name.startswith("trellis.contrib") or name.split(".")[0] in BATTERY_LIBS
    ]
    assert bad == [], f"{path.relative_to(SRC)} imports {bad}"
