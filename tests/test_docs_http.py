"""The runnable examples of docs/requests.md and docs/responses.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.S)


@pytest.fixture
def production_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean working directory and a secret key: the examples use a production ``App()``."""
    for name in list(os.environ):
        if name.startswith("TRELLIS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRELLIS_SECRET_KEY", "docs-example-secret-key-" + "x" * 24)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("page", "index"),
    [("requests.md", i) for i in range(len(python_blocks("requests.md")))]
    + [("responses.md", i) for i in range(len(python_blocks("responses.md")))],
)
@pytest.mark.usefixtures("production_env")
def test_docs_example_runs(page: str, index: int) -> None:
    block = python_blocks(page)[index]
    # dont_inherit: this module's `from __future__ import annotations` must not leak in.
    code = compile(block, str(DOCS / page), "exec", dont_inherit=True)
    exec(code, {"__name__": "docs_example"})


@pytest.mark.parametrize(("page", "least"), [("requests.md", 5), ("responses.md", 5)])
def test_docs_pages_have_examples(page: str, least: int) -> None:
    assert len(python_blocks(page)) >= least
