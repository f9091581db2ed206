"""The showcase app (README's first command) works end to end through its public pages."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
from types import ModuleType

import httpx
import pytest

from browser_helpers import free_port, serve
from trellis.testing import TestClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "showcase_app", ROOT / "examples" / "showcase" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["showcase_app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def showcase(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("TRELLIS_DEBUG", "1")
    return _load()


def test_home_page_lists_the_seeded_note(showcase: ModuleType) -> None:
    with TestClient(showcase.app) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "Welcome to Trellis!" in page.text
        assert 'href="/static/site.css"' in page.text
        css = client.get("/static/site.css")
        assert css.status_code == 200
        assert "font" in css.text


def test_posting_a_note_redirects_and_escapes_html(showcase: ModuleType) -> None:
    with TestClient(showcase.app) as client:
        r = client.post("/notes", data={"text": "<script>x</script> hi", "author": "Ann Lee"})
        assert r.status_code == 303
        assert r.headers["location"] == "/"
        assert "HttpOnly" in r.headers["set-cookie"]
        page = client.get("/")
        assert "&lt;script&gt;x&lt;/script&gt; hi" in page.text
        assert "<script>x</script>" not in page.text
        assert 'value="Ann Lee"' in page.text  # the name cookie came back


def test_api_document_and_docs_pages(showcase: ModuleType) -> None:
    from openapi_spec_validator import validate

    with TestClient(showcase.app) as client:
        document = client.get("/openapi.json").json()
        validate(document)
        assert "/api/notes" in document["paths"]
        assert "/api/notes/{id}" in document["paths"]
        assert "/" not in document["paths"]  # pages are not part of the API
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200
            assert "https://" not in html.text  # every asset is served by the app itself


def test_json_api_crud_and_errors(showcase: ModuleType) -> None:
    with TestClient(showcase.app) as client:
        created = client.post("/api/notes", json={"text": "from the API", "author": "bot"})
        assert created.status_code == 201
        note = created.json()
        assert note["text"] == "from the API"
        assert client.get(f"/api/notes/{note['id']}").json()["author"] == "bot"
        assert any(n["id"] == note["id"] for n in client.get("/api/notes").json())
        assert client.delete(f"/api/notes/{note['id']}").status_code == 204
        missing = client.get(f"/api/notes/{note['id']}")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        empty = client.post("/api/notes", json={"text": "  "})
        assert empty.status_code == 422
        bad = client.post(
            "/api/notes", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400


@pytest.mark.server
def test_showcase_serves_over_http_with_live_events(tmp_path: pathlib.Path) -> None:
    """``python examples/showcase/app.py`` (the README command) serves pages and live events."""
    port = free_port()
    env = {**os.environ, "TRELLIS_SERVER_PORT": str(port)}
    env.pop("TRELLIS_DEBUG", None)
    command = [sys.executable, str(ROOT / "examples" / "showcase" / "app.py")]
    with (
        serve(command, port=port, env=env, cwd=tmp_path, name="the showcase", ready="/") as base,
        httpx.Client(base_url=base, timeout=10) as client,
        client.stream("GET", "/events") as events,
    ):
        assert events.headers["content-type"].startswith("text/event-stream")
        posted = client.post("/api/notes", json={"text": "live!", "author": "t"})
        assert posted.status_code == 201
        seen = ""
        for line in events.iter_lines():
            seen += line + "\n"
            if "live!" in line:
                break
        assert "event: note" in seen
