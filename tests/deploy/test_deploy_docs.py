"""docs/deployment.md shows the files of examples/deploy/ exactly as they are tested."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "deployment.md"
DEPLOY = ROOT / "examples" / "deploy"
# A block of a file: "`examples/deploy/NAME`:", a blank line, then the fenced block.
SHOWN = re.compile(r"^`(examples/deploy/[^`]+)`:\n\n```(\w+)\n(.*?)^```$", re.M | re.S)
COMMANDS = ("bash", "text")  # what a reader types or sees, not a file


def test_every_config_block_is_the_file_it_names() -> None:
    text = PAGE.read_text(encoding="utf-8")
    shown = {match.group(1): match.group(3) for match in SHOWN.finditer(text)}
    assert shown, "no file shown"
    for name, block in shown.items():
        assert (ROOT / name).read_text(encoding="utf-8") == block, (
            f"docs/deployment.md shows {name} differently from the tested file: copy the file "
            "into the page again"
        )
    # Every other block is a command, so no configuration escapes the comparison.
    fences = re.findall(r"^```(\w*)\n.*?^```$", text, re.M | re.S)  # the opening fences
    assert len(fences) == len(shown) + sum(language in COMMANDS for language in fences)


def test_every_deployment_file_is_shown() -> None:
    shown = set(SHOWN.findall(PAGE.read_text(encoding="utf-8")))
    names = {name for name, _, _ in shown}
    files = {
        str(path.relative_to(ROOT))
        for path in DEPLOY.rglob("*")
        if path.is_file() and path.name != "README.md" and "__pycache__" not in path.parts
    }
    assert files <= names, f"not in docs/deployment.md: {sorted(files - names)}"
