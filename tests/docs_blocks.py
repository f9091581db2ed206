"""The fenced code blocks of the docs pages, for the tests that run or check them."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# A fence at any indentation (blocks inside list items and admonitions count too); the closing
# fence has the opening one's indentation.
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<language>\w*)[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)
# A snippet include line of pymdownx.snippets: --8<-- "path"
INCLUDE = re.compile(r'^--8<--\s+"([^"]+)"\s*$')


@dataclass(frozen=True)
class Block:
    """One fenced block: its page (relative to docs/), first line (1-based), language, code.

    ``code`` is dedented (a block inside a list item is written indented) and ends with a
    newline, as the block's file would.
    """

    page: str
    line: int
    language: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def includes(self) -> list[str]:
        """The files a block made only of snippet include lines takes its text from."""
        lines = [line for line in self.code.splitlines() if line.strip()]
        found = [INCLUDE.match(line.strip()) for line in lines]
        if not lines or not all(found):
            return []
        return [match.group(1) for match in found if match]


def pages() -> list[str]:
    """Every docs page, relative to docs/, sorted."""
    return sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))


def blocks(page: str | None = None, *languages: str) -> list[Block]:
    """The blocks of ``page`` (every page if None), only those of ``languages`` if given."""
    found = []
    for name in [page] if page else pages():
        text = (DOCS / name).read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            language = match.group("language")
            if languages and language not in languages:
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(name, line, language, textwrap.dedent(match.group("code"))))
    return found
