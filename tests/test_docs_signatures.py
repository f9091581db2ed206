"""The signatures the docs show as ```` ```py ```` blocks are the code's own.

On the pages listed in ``SIGNATURES`` every ``py`` block is a signature sketch, compared with
the real object it names:

- a call ``Name(arg, option=default, ..., **rest)`` (docs/app.md, docs/tasks.md): the real
  callable's parameters, in order, with the same defaults, and ``**`` when it takes any other
  keyword;
- a class ``class Name(Protocol): async def method(...) -> ...: ...`` (docs/websockets.md):
  the real protocol's methods, each with the same parameters, annotations and return type.

A ``py`` block that is neither fails: it would be a fragment nothing checks.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

import pytest

from docs_blocks import blocks
from trellis import App
from trellis.channels import Backend
from trellis.contrib.tasks import RedisTasks

# page -> the objects its signature blocks may name
SIGNATURES: dict[str, dict[str, Any]] = {
    "app.md": {"App": App},
    "tasks.md": {"RedisTasks": RedisTasks},
    "websockets.md": {"Backend": Backend},
}

SKETCHES = [
    pytest.param(block.page, block.code, id=block.id)
    for page in SIGNATURES
    for block in blocks(page, "py")
]


def test_every_signature_page_has_a_sketch() -> None:
    assert {page for page, _ in (param.values for param in SKETCHES)} == set(SIGNATURES)


@pytest.mark.parametrize(("page", "code"), SKETCHES)
def test_signature_matches_the_code(page: str, code: str) -> None:
    [statement] = ast.parse(code).body
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        call = statement.value
        assert isinstance(call.func, ast.Name), "a signature is a call of a plain name"
        _check_call(call, SIGNATURES[page][call.func.id])
    elif isinstance(statement, ast.ClassDef):
        _check_protocol(statement, SIGNATURES[page][statement.name])
    else:
        pytest.fail(f"docs/{page}: a py block that is no signature:\n{code}")


def _check_call(call: ast.Call, real: Any) -> None:
    positional = [arg for arg in call.args if isinstance(arg, ast.Name)]
    assert len(positional) == len(call.args), "positional parameters are written as bare names"
    documented = [(arg.id, inspect.Parameter.empty) for arg in positional]
    documented += [
        (keyword.arg, ast.literal_eval(keyword.value)) for keyword in call.keywords if keyword.arg
    ]
    documented_rest = any(keyword.arg is None for keyword in call.keywords)

    parameters = inspect.signature(real).parameters.values()
    rest = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    actual = [(p.name, p.default) for p in parameters if p.kind is not p.VAR_KEYWORD]
    assert documented == actual, f"docs show {documented}, {real.__name__} takes {actual}"
    assert documented_rest == rest, f"**: docs {documented_rest}, {real.__name__} {rest}"


def _check_protocol(documented: ast.ClassDef, real: type) -> None:
    assert [ast.unparse(base) for base in documented.bases] == ["Protocol"]
    [source] = ast.parse(textwrap.dedent(inspect.getsource(real))).body
    assert isinstance(source, ast.ClassDef)
    assert _methods(documented) == _methods(source)


def _methods(cls: ast.ClassDef) -> dict[str, str]:
    """Each method's signature as text: ``async def name(args) -> returns``."""
    methods = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            kind = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
            returns = ast.unparse(node.returns) if node.returns else "None"
            methods[node.name] = f"{kind} {node.name}({ast.unparse(node.args)}) -> {returns}"
    return methods
