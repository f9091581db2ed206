"""Run the other framework's side of the "coming from" pages: their Flask, FastAPI and Django code.

These pages show each idiom twice, the other framework's spelling and then Trellis's. The
Trellis side is run by ``test_docs_examples.py``. The other side is a ``python`` block whose
first line names its framework (``# Flask``, ``# FastAPI`` or ``# Django``); it is run here,
with that framework, so the page never shows its code wrong. Like the Trellis side, such a
block is a complete program that checks what it shows with ``assert``, through the framework's
own test client (``app.test_client()``, FastAPI's ``TestClient``, Django's ``Client``).

A Flask or FastAPI block runs with ``exec`` in a fresh module, in an empty working directory
(Flask's ``root_path``, so a ``templates/`` folder the block makes there is found).

A Django block is a small project. Each line ``# path/name.py`` starts a file (``polls/``
makes ``polls`` an installed app); the files are written to an empty directory, and a Python
process of their own (Django is set up once per process) runs them with the settings the page
leaves out, the ones a project's ``settings.py`` would hold:

- ``INSTALLED_APPS``: the block's packages; ``ROOT_URLCONF``: its ``urls.py``, if it has one;
- ``DATABASES``: SQLite in memory, its tables made from the models (``migrate --run-syncdb``);
- ``TEMPLATES``: Django's engine, with the ``templates`` folder and the apps' own;
- ``MIDDLEWARE``: ``CommonMiddleware`` and ``CsrfViewMiddleware``;
- ``ALLOWED_HOSTS``, ``SECRET_KEY`` and the test environment, as ``manage.py test`` sets them.

The system checks must pass, warnings included. Then ``tests.py`` (the whole block when it
names no file) is imported, which runs its top-level code, and its ``TestCase`` classes run
as ``manage.py test`` runs them. The process runs with ``-W error``, as this suite does.
"""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from docs_blocks import Block, blocks

# Each page and the framework it comes from.
PAGES = {
    "coming-from-flask.md": "Flask",
    "coming-from-fastapi.md": "FastAPI",
    "coming-from-django.md": "Django",
}
# A line that starts a file of a Django block.
_FILE = re.compile(r"^# (?P<path>[\w/]+\.py)$", re.MULTILINE)

DJANGO_MAIN = """
import sys
import unittest
from pathlib import Path

import django
from django.conf import settings

files = list(Path().rglob("*.py"))
settings.configure(
    SECRET_KEY="an-example-key-for-the-docs-tests-only",
    INSTALLED_APPS=sorted({path.parts[0] for path in files if len(path.parts) > 1}),
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": ["templates"],
            "APP_DIRS": True,
        }
    ],
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    **({"ROOT_URLCONF": "urls"} if Path("urls.py").exists() else {}),
)
django.setup()

from django.core.management import call_command
from django.test.utils import setup_test_environment

setup_test_environment()  # ALLOWED_HOSTS gets "testserver", as in manage.py test
call_command("check", fail_level="WARNING")
call_command("migrate", run_syncdb=True, verbosity=0)
import tests

result = unittest.TextTestRunner(verbosity=2).run(
    unittest.defaultTestLoader.loadTestsFromModule(tests)
)
sys.exit(not result.wasSuccessful())
"""


def framework(code: str) -> str | None:
    """The framework a block's first line names, or None for a Trellis block."""
    first = code.partition("\n")[0]
    return next((name for name in PAGES.values() if first == f"# {name}"), None)


EXAMPLES = [
    pytest.param(block, id=block.id)
    for page in PAGES
    for block in blocks(page, "python")
    if framework(block.code)
]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_shows_its_framework(page: str) -> None:
    shown = [framework(block.code) for block in blocks(page, "python")]
    assert set(shown) == {PAGES[page], None}, f"{page} shows {set(shown)}"


@pytest.mark.parametrize("block", EXAMPLES)
def test_other_framework_example_runs(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if framework(block.code) == "Django":
        _run_django(block, tmp_path)
        return
    # a real module, as a reader's file would be: Flask and pydantic look it up
    name = re.sub(r"\W", "_", f"docs_{block.page.removesuffix('.md')}_{block.line}")
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    # dont_inherit: the examples must not get this file's `from __future__ import annotations`
    exec(compile(block.code, f"docs/{block.id}", "exec", dont_inherit=True), module.__dict__)


def _run_django(block: Block, directory: Path) -> None:
    sections = _FILE.split(block.code)
    files = dict(zip(sections[1::2], sections[2::2], strict=True)) or {"tests.py": block.code}
    if len(sections) > 1:
        assert sections[0] == "# Django\n", f"{block.id}: code before its first file"
    assert "tests.py" in files, f"{block.id}: a Django block checks what it shows in tests.py"
    for path, text in files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(text, encoding="utf-8")
    for package in {path.split("/")[0] for path in files if "/" in path}:
        (directory / package / "__init__.py").touch()
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", DJANGO_MAIN],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"docs/{block.id} failed:\n{done.stdout}{done.stderr}"
