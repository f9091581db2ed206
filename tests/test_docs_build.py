"""The documentation site builds with no broken link or page missing from the navigation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_docs_build_strict(tmp_path: Path) -> None:
    # The theme's announcements are not warnings about the docs.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "site"
    assert (site / "routing" / "index.html").is_file()
    # the API reference is generated from the docstrings
    reference = (site / "reference" / "trellis" / "index.html").read_text(encoding="utf-8")
    assert 'id="trellis.App"' in reference
    assert 'id="trellis.App.url_for"' in reference
    db = (site / "reference" / "contrib-db" / "index.html").read_text(encoding="utf-8")
    assert 'id="trellis.contrib.db.Database"' in db
    # the tutorial shows the tested files, the changelog page the root CHANGELOG.md
    tutorial = (site / "tutorial" / "index.html").read_text(encoding="utf-8")
    assert "Hello, notes!" in tutorial
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in changelog
    # Nothing is fetched from the internet to show a page (fonts, scripts, styles).
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:link|script)[^>]+(?:href|src)="(https?:)?//[^"]+"', html)
        assert remote == [], (page, remote)
    assert time.monotonic() - started < 60


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert [p for p in pages if f" {p}" not in nav] == []
