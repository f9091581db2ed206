"""The API docs pages render in a real browser with no network but the app's own server."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import httpx
import pytest

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, needs_chromium, serve, uvicorn

pytestmark = [pytest.mark.server, needs_chromium]


@pytest.fixture(scope="module")
def showcase_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TRELLIS_SERVER_PORT": str(port)}
    env.pop("TRELLIS_DEBUG", None)
    command = [sys.executable, str(ROOT / "examples" / "showcase" / "app.py")]
    # The showcase keeps its SQLite database in the working directory: not the checkout's.
    cwd = tmp_path_factory.mktemp("showcase")
    with serve(command, port=port, env=env, cwd=cwd, name="the showcase") as url:
        yield url


@pytest.fixture(scope="module")
def todo_api_url() -> Iterator[str]:
    """The typed example API, in production mode under uvicorn."""
    port = free_port()
    env = {**os.environ, "TRELLIS_SECRET_KEY": "browser-test-" + "k" * 40}
    env.pop("TRELLIS_DEBUG", None)
    command = uvicorn(port, app_dir=ROOT / "examples" / "todo_api")
    with serve(command, port=port, env=env, cwd=ROOT, name="the example API") as url:
        yield url


def _rendered_dom(url: str) -> str:
    """The page's DOM after its scripts ran, from headless chromium."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                *CHROMIUM_ARGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_swagger_ui_renders_every_operation(showcase_url: str) -> None:
    dom = _rendered_dom(showcase_url + "/docs")
    assert "swagger-ui" in dom
    assert "Trellis showcase" in dom
    for operation in ("List Notes", "Create Note", "/api/notes/{id}"):
        assert operation in dom, operation


def test_redoc_renders_every_operation(showcase_url: str) -> None:
    dom = _rendered_dom(showcase_url + "/redoc")
    assert "Trellis showcase" in dom
    for operation in ("List Notes", "Create Note"):
        assert operation in dom, operation


def test_the_example_api_docs_render_offline(todo_api_url: str) -> None:
    document = httpx.get(todo_api_url + "/openapi.json", timeout=5).json()
    title = document["info"]["title"]
    swagger = _rendered_dom(todo_api_url + "/docs")
    redoc = _rendered_dom(todo_api_url + "/redoc")
    for dom in (swagger, redoc):
        assert title in dom
        assert "/todos/{todo_id}" in dom or "todo_id" in dom
