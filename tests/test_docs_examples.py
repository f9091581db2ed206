"""Run the Python examples of the docs pages that have no example test of their own.

Convention for these pages:

- a block fenced ```` ```python ```` is a complete program: it is run here with ``exec`` in a
  fresh namespace, so it must import what it uses and should check what it shows with
  ``assert`` (usually through ``TestClient``);
- a block fenced ```` ```py ```` is a fragment (a signature, a sketch, a server start) and is
  not run;
- a block made of snippet includes (``--8<-- "examples/..."``) shows files of ``examples/``,
  which their own tests run.

The blocks run as in development: ``TRELLIS_DEBUG=1``, in an empty working directory so no
``.env`` or ``trellis.toml`` leaks in. A block that wants production says so itself
(``App(debug=False, secret_key=...)``).

A ``python`` block whose first line is the comment ``# needs: redis`` needs a Redis server:
it runs with ``REDIS_URL`` set to ``TRELLIS_TEST_REDIS_URL`` and ``REDIS_PREFIX`` set to a
name of its own (letters, digits and dashes, no colon: it also serves as a queue name). The
block puts it in every key, queue and channel name it uses (``f"{name}:cache:"``), and every
key containing it is deleted afterwards, so runs share the server without seeing each other's
keys. Without ``TRELLIS_TEST_REDIS_URL`` the block is skipped, with that reason. The marker
stays in the docs: it tells readers what the example needs.

A ``python`` block whose first line is ``# needs: smtp`` sends e-mail: it runs with
``SMTP_HOST``, ``SMTP_PORT`` and ``SMTP_PASSWORD`` (user name ``app``) naming a server on
loopback (``smtp_sink.py``) that offers STARTTLS with a certificate of its own, trusted through
``SSL_CERT_FILE`` as a private CA would be. The block must send at least one message there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from docs_blocks import blocks
from smtp_sink import smtp_sink
from test_docs_other_frameworks import framework

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ("routing.md", "app.md")
# Pages with fewer examples, run the same way.
OTHER_PAGES = (
    "index.md",
    "testing.md",
    "middleware.md",
    "forms-and-uploads.md",
    "typed-handlers.md",
    "websockets.md",
    "api-docs.md",
    "coming-from-fastapi.md",
    "coming-from-flask.md",
    "coming-from-django.md",
    "security.md",
    "database.md",
    "migrations.md",
    "db-queries.md",
    "cache-and-redis.md",
    "deployment-checklist.md",
    "auth.md",
    "sessions.md",
    "inspector.md",
    "i18n.md",
    "tickets.md",
    "forms.md",
    "admin.md",
    "operations.md",
    "rate-limits.md",
    "tasks.md",
)
# The first line of a block that needs a Redis server (see the module docstring).
NEEDS_REDIS = "# needs: redis"
REDIS_ENV = "TRELLIS_TEST_REDIS_URL"
# The first line of a block that sends e-mail through an SMTP server (see the module docstring).
NEEDS_SMTP = "# needs: smtp"


def _blocks(page: str) -> list[tuple[int, str, str]]:
    """Return ``(line, language, code)`` for every fenced block of ``page``."""
    return [(block.line, block.language, block.code) for block in blocks(page)]


EXAMPLES = [
    pytest.param(block.page, block.line, block.code, id=block.id)
    for page in PAGES + OTHER_PAGES
    for block in blocks(page, "python")
    # a block that includes a file of examples/ (`--8<-- "examples/..."`) is that example's:
    # its own test runs it; the Flask, FastAPI and Django side of the "coming from" pages
    # runs with that framework (test_docs_other_frameworks.py)
    if not block.includes and framework(block.code) is None
]


def test_every_page_has_runnable_examples() -> None:
    for page in PAGES:
        languages = [language for _, language, _ in _blocks(page)]
        assert languages.count("python") >= 5, page
        # every block says what it is: a runnable program or a fragment
        assert set(languages) <= {"python", "py"}, (page, languages)


@pytest.mark.parametrize(("page", "line", "code"), EXAMPLES)
def test_docs_example_runs(
    page: str,
    line: int,
    code: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("TRELLIS_SECRET_KEY", "TRELLIS_TEMPLATES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRELLIS_DEBUG", "1")
    if code.startswith(NEEDS_REDIS + "\n"):
        redis_url = os.environ.get(REDIS_ENV)
        if not redis_url:
            pytest.skip(f"{REDIS_ENV} is not set: this example needs a Redis server")
        name = f"trellis-docs-{os.getpid()}-{secrets.token_hex(4)}"
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("REDIS_PREFIX", name)
        with _deleting_keys(redis_url, name):
            _run(page, line, code, monkeypatch)
    elif code.startswith(NEEDS_SMTP + "\n"):
        with smtp_sink(tmp_path) as sink:
            monkeypatch.setenv("SMTP_HOST", sink.host)
            monkeypatch.setenv("SMTP_PORT", str(sink.port))
            monkeypatch.setenv("SMTP_PASSWORD", sink.password)
            monkeypatch.setenv("SSL_CERT_FILE", str(sink.certificate))  # the CA clients trust
            _run(page, line, code, monkeypatch)
        assert sink.messages, "the example sent nothing to the SMTP server"
    else:
        _run(page, line, code, monkeypatch)


def _run(page: str, line: int, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # a real module, as a reader's file would be: dataclasses and pydantic look it up
    module = types.ModuleType(f"docs_{page.removesuffix('.md')}_{line}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    # dont_inherit: the examples must not get this file's `from __future__ import annotations`
    compiled = compile(code, f"docs/{page}:{line}", "exec", dont_inherit=True)
    try:
        exec(compiled, module.__dict__)
    finally:
        _forget_models()


@contextlib.contextmanager
def _deleting_keys(url: str, name: str) -> Iterator[None]:
    """Delete every key whose name contains ``name`` (the block's own), even on failure."""
    from redis.client import Redis  # only the examples that need Redis import it

    try:
        yield
    finally:
        with Redis.from_url(url) as client:
            keys = list(client.scan_iter(match=f"*{name}*", count=1000))
            if keys:
                client.delete(*keys)


def _forget_models() -> None:
    # Examples declare models on the one shared ``Model``: each starts with none of its own.
    # The batteries' models (trellis.contrib.auth's User ...) stay, as in an application that
    # imports them once: other tests of the run hold their classes.
    db = sys.modules.get("trellis.contrib.db.models")
    if db is None:
        return
    registry, metadata = db.Model.registry, db.Model.metadata
    kept = [m for m in registry.mappers if m.class_.__module__.startswith("trellis.")]
    if not kept:
        registry.dispose(cascade=True)
        metadata.clear()
        return
    for mapper in list(registry.mappers):
        if mapper not in kept:
            # SQLAlchemy disposes a whole registry only; this is its per-class step.
            registry._managers.pop(mapper.class_manager, None)
            registry._dispose_manager_and_mapper(mapper.class_manager)
    branches = {m.local_table.info.get("migration_branch") for m in kept} - {None}
    for table in list(metadata.tables.values()):
        if table.info.get("migration_branch") not in branches:
            metadata.remove(table)


@pytest.mark.parametrize("page", PAGES)
def test_fragments_at_least_parse(page: str) -> None:
    for line, language, code in _blocks(page):
        if language == "py":
            compile(code, f"docs/{page}:{line}", "exec", dont_inherit=True)
