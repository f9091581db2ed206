"""The pytest plugin Trellis registers: ``client`` and ``async_client`` for your ``app`` fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_client_fixtures_serve_the_app_fixture(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from trellis import App

            @pytest.fixture
            def app():
                app = App(debug=True)
                started = []

                @app.on_startup
                def start() -> None:
                    started.append(True)

                @app.get("/")
                async def index() -> dict:
                    return {"started": bool(started)}

                return app

            @pytest.fixture
            def anyio_backend():
                return "asyncio"
            """
        )
    )
    (tmp_path / "test_usage.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_sync(client):
                assert client.get("/").json() == {"started": True}

            @pytest.mark.anyio
            async def test_async(async_client):
                response = await async_client.get("/")
                assert response.json() == {"started": True}
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
