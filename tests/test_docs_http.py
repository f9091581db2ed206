"""The runnable examples of docs/requests.md and docs/responses.md.

As in ``test_docs_examples.py``: a ```` ```python ```` block is a complete program, run with
``exec`` in a fresh namespace in an empty working directory; a ```` ```py ```` block is a
fragment and is not run. These pages write ``App()`` as an application would, so each example
runs twice: in development (``TRELLIS_DEBUG=1``) and in production (with a secret key, host
validation on).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docs_blocks import DOCS, blocks

PAGES = ("requests.md", "responses.md")


EXAMPLES = [
    # Blank lines in front, so tracebacks give the line in the Markdown file.
    pytest.param(block.page, "\n" * block.line + block.code, id=block.id)
    for page in PAGES
    for block in blocks(page, "python")
]


@pytest.mark.parametrize("page", PAGES)
def test_page_has_runnable_examples(page: str) -> None:
    languages = [block.language for block in blocks(page)]
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
