"""The runnable examples of docs/requests.md and docs/responses.md.

As in ``test_docs_examples.py``: a ```` ```python ```` block is a complete program, run with
``exec`` in a fresh namespace in an empty working directory; a ```` ```py ```` block is a
fragment and is not run. These pages write ``App()`` as an application would, so each example
runs twice: in development (``TRELLIS_DEBUG=1``) and in production (with a secret key, host
validation on).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ("requests.md", "responses.md")
_BLOCK = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _blocks(page: str) -> list[tuple[int, str, str]]:
    """Return ``(line, language, code)`` for every fenced block of ``page``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in _BLOCK.finditer(text)
    ]


EXAMPLES = [
    # Blank lines in front, so tracebacks give the line in the Markdown file.
    pytest.param(page, "\n" * line + code, id=f"{page}:{line}")
    for page in PAGES
    for line, language, code in _blocks(page)
    if language == "python"
]


@pytest.mark.parametrize("page", PAGES)
def test_page_has_runnable_examples(page: str) -> None:
    languages = [language for _, language, _ in _blocks(page)]
    assert languages.count("python") >= 5
    assert set(languages) <= {"python", "py"}, languages


@pytest.mark.parametrize("mode", ["development", "production"])
@pytest.mark.parametrize(("page", "code"), EXAMPLES)
def test_docs_example_runs(
    page: str, code: str, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("TRELLIS_"):
            monkeypatch.delenv(name)
    if mode == "development":
        monkeypatch.setenv("TRELLIS_DEBUG", "1")
    else:
        monkeypatch.setenv("TRELLIS_SECRET_KEY", "docs-example-secret-key-" + "x" * 24)
    monkeypatch.chdir(tmp_path)
    # dont_inherit: this module's `from __future__ import annotations` must not leak in.
    exec(compile(code, str(DOCS / page), "exec", dont_inherit=True), {"__name__": "docs_example"})
