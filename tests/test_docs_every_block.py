"""Every code block of the docs is run by a test or taken from a file that is.

A block is accounted for when:

- it is made only of snippet includes (``--8<-- "examples/..."``) of files that exist under
  ``examples/``, each example having a test of its own; or
- a test runs or checks every block of its language on its page: ``CHECKED`` names that test,
  and the test file names the page.

A new page or a block in a new language fails here until a test takes it. The API reference
pages (``docs/reference/``) hold no blocks of their own: theirs come from docstrings, which
``test_docs_docstrings.py`` collects as the site renders them and runs or checks.
"""

from __future__ import annotations

import pytest

from docs_blocks import ROOT, blocks
from test_docs_examples import OTHER_PAGES, PAGES

# (page, language) -> the test file(s) that run or check every such block; page "*" is every page.
CHECKED: dict[tuple[str, str], str | tuple[str, ...]] = {
    # python blocks: complete programs, executed (the pages that file lists)
    **{
        (page, "python"): "tests/test_docs_examples.py"
        for page in PAGES + OTHER_PAGES
        if not page.startswith("coming-from-")
    },
    # Trellis's side, and the other framework's (blocks starting "# Flask", "# FastAPI", "# Django")
    **{
        (page, "python"): ("tests/test_docs_examples.py", "tests/test_docs_other_frameworks.py")
        for page in ("coming-from-fastapi.md", "coming-from-flask.md", "coming-from-django.md")
    },
    # shell commands, run in a scratch project (or checked where they cannot run here), and the
    # outputs and file trees they print
    ("*", "sh"): "tests/test_docs_shell.py",
    ("*", "bash"): "tests/test_docs_shell.py",
    **dict.fromkeys(
        (
            ("cli.md", "text"),
            ("server.md", "text"),
            ("deployment-checklist.md", "text"),
            ("tickets.md", "text"),
            ("migrations.md", "text"),
        ),
        "tests/test_docs_shell.py",
    ),
    # the tutorial's commands, run in copies of its steps, and its folder trees
    **dict.fromkeys(
        (
            ("tutorial/index.md", "sh"),
            ("tutorial/routes.md", "sh"),
            ("tutorial/database.md", "sh"),
            ("tutorial/users.md", "sh"),
            ("tutorial/admin.md", "sh"),
            ("tutorial/tests.md", "sh"),
            ("tutorial/templates.md", "text"),
            ("tutorial/tests.md", "text"),
        ),
        "tests/test_tutorial.py",
    ),
    # signature sketches, compared with the real signatures
    ("app.md", "py"): "tests/test_docs_signatures.py",
    ("tasks.md", "py"): "tests/test_docs_signatures.py",
    ("websockets.md", "py"): "tests/test_docs_signatures.py",
    ("requests.md", "python"): "tests/test_docs_http.py",
    ("responses.md", "python"): "tests/test_docs_http.py",
    ("cli.md", "python"): "tests/test_cli.py",
    ("config.md", "python"): "tests/test_config.py",
    ("logging.md", "python"): "tests/test_logging.py",
    ("server.md", "python"): "tests/test_server.py",
    ("static-files.md", "python"): "tests/test_static.py",
    ("templates.md", "python"): "tests/test_templating.py",
    ("templates.md", "jinja"): "tests/test_templating.py",  # written as the files they name
    ("sse.md", "python"): "tests/http/test_sse.py",
    # the files of examples/deploy/, compared with the files the deployment tests run
    **{
        ("deployment.md", language): "tests/deploy/test_deploy_docs.py"
        for language in ("ini", "sh", "dockerfile", "nginx", "python")
    },
    # outputs, messages, configuration and templates, produced or loaded by the real code
    **dict.fromkeys(
        (
            ("api-docs.md", "text"),
            ("auth.md", "text"),
            ("auth.md", "jinja"),
            ("cache-and-redis.md", "text"),
            ("config.md", "toml"),
            ("config.md", "text"),
            ("database.md", "text"),
            ("forms-and-uploads.md", "toml"),
            ("inspector.md", "text"),
            ("logging.md", "text"),
            ("logging.md", "json"),
            ("operations.md", "yaml"),
            ("server.md", "nginx"),
            ("sse.md", "js"),
            ("sse.md", "text"),
            ("static-files.md", "jinja"),
        ),
        "tests/test_docs_outputs.py",
    ),
}


def _checker(page: str, language: str) -> str | tuple[str, ...] | None:
    return CHECKED.get((page, language)) or CHECKED.get(("*", language))


def test_every_block_is_run_or_included() -> None:
    unchecked = []
    for block in blocks():
        if block.includes:
            for name in block.includes:
                assert name.startswith("examples/"), f"{block.id} includes {name}, not an example"
                assert (ROOT / name).is_file(), f"{block.id} includes {name}, which is missing"
        elif _checker(block.page, block.language) is None:
            unchecked.append(f"{block.id} ({block.language or 'no language'})")
    assert not unchecked, "no test runs or checks these docs blocks:\n" + "\n".join(unchecked)


@pytest.mark.parametrize(("page", "language"), sorted(CHECKED))
def test_each_checker_reads_its_page(page: str, language: str) -> None:
    checkers = CHECKED[page, language]
    for checker in (checkers,) if isinstance(checkers, str) else checkers:
        source = (ROOT / checker).read_text(encoding="utf-8")
        if page != "*":
            assert (ROOT / "docs" / page).is_file(), f"no docs/{page}"
            assert page in source, f"{checker} does not name docs/{page}"
