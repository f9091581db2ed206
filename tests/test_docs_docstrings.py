"""The code blocks of the API reference: every one is run, or checked against the code.

The pages of ``docs/reference/`` are ``::: module`` directives: mkdocstrings renders the
docstrings of each module and of its public members. This file finds the same docstrings the
same way (griffe, the handler's own member filter, the handler options of ``mkdocs.yml``) and
takes every fenced block in them:

- a ``python`` block is a complete program, run as the docs pages' are (``TRELLIS_DEBUG=1``, an
  empty working directory, ``# needs: redis``: see ``test_docs_examples.py``);
- a block in another language is compared with the code it describes (``CHECKS``);
- anything else fails: a ``py`` fragment, and a code block that is not fenced at all (an
  indented block after ``::``, a ``>>>`` session, which the site shows as a quotation), so no
  example of the reference goes unchecked.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import griffe
import markdown
import pytest
import yaml
from mkdocstrings_handlers.python import do_filter_objects

import test_docs_examples as examples
from docs_blocks import DOCS, ROOT

REFERENCE = DOCS / "reference"
SRC = ROOT / "src"
# A fence at any indentation (inside an "Example:" section it is indented); as in docs_blocks.py.
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<language>\w*)[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)
_DIRECTIVE = re.compile(
    r"^::: *(?P<identifier>[\w.]+)[ \t]*\n(?P<options>(?:[ \t]+\S.*\n?)*)", re.M
)
# The handler options this file reproduces, with the values it reproduces them for: another
# value (or a new member-selection option) must be taught here first.
_OPTIONS = {
    "filters": "public",
    "merge_init_into_class": True,
    "inherited_members": False,
    "show_submodules": False,
    "show_if_no_docstring": False,
    "members": None,
    "docstring_style": "google",
}
# Options that change how a docstring looks, not which ones are shown.
_DISPLAY_OPTIONS = {
    "show_source",
    "show_root_heading",
    "show_root_toc_entry",
    "show_symbol_type_heading",
    "show_symbol_type_toc",
    "members_order",
    "separate_signature",
    "show_signature_annotations",
    "signature_crossrefs",
    "heading_level",
}


@dataclasses.dataclass(frozen=True)
class DocstringBlock:
    """A fenced block of a rendered docstring: where it is written, and the pages showing it."""

    file: str  # relative to the repository root
    line: int
    language: str
    code: str
    objects: tuple[str, ...]  # the objects whose docstring it is in (aliases show it twice)
    pages: tuple[str, ...]  # relative to docs/

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def _mkdocs_options() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            return dict(plugin["mkdocstrings"]["handlers"]["python"]["options"])
    raise AssertionError("mkdocs.yml configures no mkdocstrings python handler")


def _options(extra: dict[str, Any]) -> dict[str, Any]:
    options = {**_mkdocs_options(), **extra}
    unknown = set(options) - set(_OPTIONS) - _DISPLAY_OPTIONS
    assert not unknown, f"options this test does not reproduce yet: {sorted(unknown)}"
    for name, value in _OPTIONS.items():
        assert options.get(name, value) == value, (name, options[name])
    return options


def directives() -> list[tuple[str, str, dict[str, Any]]]:
    """``(page, identifier, options)`` for every ``::: identifier`` of docs/reference/."""
    found = []
    for path in sorted(REFERENCE.glob("*.md")):
        for match in _DIRECTIVE.finditer(path.read_text(encoding="utf-8")):
            extra = yaml.safe_load(textwrap.dedent(match.group("options"))) or {}
            options = _options(extra.get("options", {}))
            found.append((str(path.relative_to(DOCS)), match.group("identifier"), options))
    return found


@cache
def _modules() -> griffe.ModulesCollection:
    # As the handler loads them: static analysis of src/, Google docstrings, aliases resolved
    # within the package.
    loader = griffe.GriffeLoader(search_paths=[str(SRC)], docstring_parser=griffe.Parser.google)
    loader.load("trellis")
    loader.resolve_aliases(implicit=False, external=False)
    return loader.modules_collection


def rendered(obj: griffe.Object | griffe.Alias) -> Iterator[griffe.Object | griffe.Alias]:
    """``obj`` and the members its page shows, recursively (children.html.jinja's selection)."""
    yield obj
    if not (obj.is_module or obj.is_class):
        return
    members = do_filter_objects(
        obj.members,
        filters=_OPTIONS["filters"],
        inherited_members=_OPTIONS["inherited_members"],
        keep_no_docstrings=_OPTIONS["show_if_no_docstring"],
    )
    for member in members:
        if member.is_module:  # show_submodules: false
            continue
        if obj.is_class and member.name == "__init__":  # merged into the class
            continue
        yield from rendered(member)


def docstrings(obj: griffe.Object | griffe.Alias) -> list[griffe.Docstring]:
    """The docstrings shown for ``obj``: a class's own and its ``__init__``'s, merged."""
    found = [obj.docstring] if obj.docstring else []
    init = obj.members.get("__init__") if obj.is_class else None
    if init is not None and init.docstring and not init.inherited:
        found.append(init.docstring)
    return found


def _where(docstring: griffe.Docstring) -> tuple[str, int]:
    parent = docstring.parent
    assert parent is not None and docstring.lineno is not None
    filepath = parent.filepath
    assert isinstance(filepath, Path)
    return str(filepath.relative_to(ROOT)), docstring.lineno


def collect() -> list[DocstringBlock]:
    """Every fenced block of every docstring the reference pages show, once per place written."""
    found: dict[tuple[str, int], DocstringBlock] = {}
    for page, identifier, _ in directives():
        for obj in rendered(_modules()[identifier]):
            for docstring in docstrings(obj):
                file, first = _where(docstring)
                for match in _FENCE.finditer(docstring.value):
                    line = first + docstring.value.count("\n", 0, match.start())
                    code = textwrap.dedent(match.group("code"))
                    block = found.get((file, line)) or DocstringBlock(
                        file, line, match.group("language"), code, (), ()
                    )
                    found[file, line] = dataclasses.replace(
                        block,
                        objects=tuple(dict.fromkeys((*block.objects, obj.path))),
                        pages=tuple(dict.fromkeys((*block.pages, page))),
                    )
    return list(found.values())


BLOCKS = collect()


def test_the_collection_covers_every_reference_page() -> None:
    pages = {page for page, _, _ in directives()}
    assert pages == {
        str(path.relative_to(DOCS))
        for path in REFERENCE.glob("*.md")
        if ":::" in path.read_text(encoding="utf-8")
    }
    # every page shows documented objects, and the examples come from all over the package
    for page, identifier, _ in directives():
        shown = [obj for obj in rendered(_modules()[identifier]) if docstrings(obj)]
        assert len(shown) > 1, (page, identifier)
    assert {page for block in BLOCKS for page in block.pages} == pages
    assert len({block.file for block in BLOCKS}) > 20


# ---- python blocks: complete programs, run ----


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if b.language == "python"], ids=lambda block: block.id
)
def test_docstring_example_runs(
    block: DocstringBlock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the traceback names the docstring's file and line: docs/../src/trellis/...
    examples.test_docs_example_runs(
        f"../{block.file}", block.line, block.code, tmp_path, monkeypatch
    )


# ---- blocks in other languages: compared with the code they describe ----


def _ticket_fields(block: DocstringBlock) -> None:
    from trellis.contrib.tickets.models import Ticket

    # one line per field, "name  description", continuation lines indented further
    listed = [line.split()[0] for line in block.code.splitlines() if line[:1].strip()]
    assert listed == [field.name for field in dataclasses.fields(Ticket)]


# (object, language) -> the check of that object's block
CHECKS: dict[tuple[str, str], Callable[[DocstringBlock], None]] = {
    ("trellis.contrib.tickets", "text"): _ticket_fields,
}


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if b.language != "python"], ids=lambda block: block.id
)
def test_docstring_block_is_checked(block: DocstringBlock) -> None:
    checks = [
        CHECKS[obj, block.language] for obj in block.objects if (obj, block.language) in CHECKS
    ]
    assert checks, (
        f"{block.id} ({', '.join(block.pages)}): a ```{block.language} block that no test runs "
        "or checks; make it a complete ```python program (checked with assert), or add a check"
    )
    for check in checks:
        check(block)


# ---- code blocks that are not fenced ----


def _markdown_texts(value: object) -> Iterator[tuple[str, bool]]:
    """``(text, is_code)`` for every piece of a parsed docstring section shown as Markdown."""
    if isinstance(value, str):
        yield value, False
    elif (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], griffe.DocstringSectionKind)
    ):
        # an "Examples:" section: its ">>>" sessions are code blocks, not fenced
        yield value[1], value[0] is griffe.DocstringSectionKind.examples
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _markdown_texts(item)
    elif isinstance(value, griffe.DocstringAdmonition):
        yield value.contents, False
    elif hasattr(value, "description"):
        yield value.description, False


@cache
def _markdown() -> markdown.Markdown:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    names, configs = [], {}
    for extension in config["markdown_extensions"]:
        name, options = (
            next(iter(extension.items())) if isinstance(extension, dict) else (extension, {})
        )
        if name != "pymdownx.snippets":  # no include in a docstring
            names.append(name)
            configs[name] = options or {}
    return markdown.Markdown(extensions=names, extension_configs=configs)


def _unfenced_code() -> Iterator[str]:
    for page, identifier, _ in directives():
        for obj in rendered(_modules()[identifier]):
            for docstring in docstrings(obj):
                for section in docstring.parsed:
                    for text, is_code in _markdown_texts(section.value):
                        html = _markdown().reset().convert(text)
                        prose = _FENCE.sub("", text)
                        if is_code or html.count("<pre") > len(_FENCE.findall(text)):
                            yield f"{page}: {obj.path}: a code block that is not fenced"
                        elif re.search(r"^\s*>>>", prose, re.M):
                            yield f"{page}: {obj.path}: a >>> session outside a fence (a quote)"


def test_every_code_block_of_the_reference_is_fenced() -> None:
    # a code block written otherwise (indented after "::", a ">>>" session) would escape the
    # collection above
    assert sorted(set(_unfenced_code())) == []
