"""The legacy_mount example: a Flask site under /legacy inside a Trellis app.

Over the ``TestClient`` (each test with a fresh copy of the example, so a fresh guestbook),
then over a real ``trellis run examples/legacy_mount/app.py`` server in production mode.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from browser_helpers import ROOT, free_port, serve
from trellis.testing import TestClient

EXAMPLE = ROOT / "examples" / "legacy_mount"
PRODUCTION = {"secret_key": "legacy-test-" + "k" * 40, "allowed_hosts": ["testserver"]}


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``examples/legacy_mount/app.py`` imported afresh, with a fresh ``legacy`` module."""
    monkeypatch.syspath_prepend(str(EXAMPLE))  # where app.py finds legacy.py, as when run
    sys.modules.pop("legacy", None)
    spec = importlib.util.spec_from_file_location("legacy_mount_app", EXAMPLE / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["legacy_mount_app"] = module  # pydantic resolves the models through it
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("legacy_mount_app", None)
    sys.modules.pop("legacy", None)


@pytest.fixture
def client(example: ModuleType) -> Iterator[TestClient]:
    with TestClient(example.create_app(**PRODUCTION)) as c:
        yield c


def entry_names(page: str) -> list[str]:
    return re.findall(r"<li><strong>(.*?)</strong>", page)


def test_trellis_routes_and_the_flask_site_side_by_side(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200
    assert "Served by Trellis" in home.text
    assert client.get("/api/entries").json() == [{"id": 1, "name": "Ada", "message": "First!"}]

    page = client.get("/legacy/")
    assert page.status_code == 200
    assert "Served by Flask at <code>/legacy/</code>" in page.text  # SCRIPT_NAME + PATH_INFO
    assert 'action="/legacy/entries"' in page.text  # Flask's url_for knows the mount
    assert entry_names(page.text) == ["Ada"]
    assert client.get("/legacy/api/entries").json() == [
        {"id": 1, "name": "Ada", "message": "First!"}
    ]
    # Flask's own routing and errors inside the mount; Trellis's outside it.
    slashless = client.get("/legacy", follow_redirects=False)
    assert slashless.status_code == 308
    assert slashless.headers["location"].endswith("/legacy/")
    missing = client.get("/legacy/nowhere")
    assert missing.status_code == 404
    assert "<title>404 Not Found</title>" in missing.text  # Flask's page
    assert client.get("/nowhere").headers["content-type"] == "application/problem+json"


def test_the_flask_form_posts_and_both_apis_see_the_entry(client: TestClient) -> None:
    signed = client.post(
        "/legacy/entries",
        data={"name": "Bob", "message": "Hello <b>there</b>"},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/legacy/"
    page = client.get("/legacy/")
    assert entry_names(page.text) == ["Ada", "Bob"]
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in page.text  # Jinja's autoescape, on Flask's side

    bob = {"id": 2, "name": "Bob", "message": "Hello <b>there</b>"}
    assert client.get("/legacy/api/entries").json()[-1] == bob  # Flask's JSON
    assert client.get("/api/entries").json()[-1] == bob  # Trellis's typed API, same data


def test_a_bad_form_comes_back_with_the_error_and_what_was_typed(client: TestClient) -> None:
    refused = client.post("/legacy/entries", data={"name": "", "message": "kept"})
    assert refused.status_code == 400
    assert '<p id="error" role="alert">Give a name and a message.</p>' in refused.text
    assert 'value="kept"' in refused.text
    too_long = client.post("/legacy/entries", data={"name": "Cy", "message": "x" * 201})
    assert too_long.status_code == 400
    assert entry_names(client.get("/legacy/").text) == ["Ada"]


def test_trellis_middleware_wraps_the_flask_site(client: TestClient) -> None:
    page = client.get("/legacy/")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    # Production: a host that is not allowed never reaches Flask.
    refused = client.get("/legacy/", headers={"host": "evil.example"})
    assert refused.status_code == 400
    assert "Guestbook" not in refused.text


def test_only_the_trellis_routes_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert list(paths) == ["/api/entries"]
    schema = paths["/api/entries"]["get"]["responses"]["200"]["content"]["application/json"]
    assert schema["schema"]["items"] == {"$ref": "#/components/schemas/Entry"}


@pytest.mark.server
def test_trellis_run_serves_both_sides(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TRELLIS_SECRET_KEY": "legacy-test-" + "k" * 40,
        "TRELLIS_ALLOWED_HOSTS": "127.0.0.1",
    }
    env.pop("TRELLIS_DEBUG", None)
    command = [sys.executable, "-m", "trellis.cli", "run", str(EXAMPLE / "app.py")]
    with (
        serve(
            [*command, "--port", str(port)],
            port=port,
            env=env,
            cwd=tmp_path,
            name="the legacy_mount example",
            ready="/",
            timeout=30,
        ) as url,
        httpx.Client(base_url=url, timeout=10, follow_redirects=True) as http,
    ):
        assert "Served by Trellis" in http.get("/").text
        assert "Served by Flask at <code>/legacy/</code>" in http.get("/legacy/").text

        signed = http.post("/legacy/entries", data={"name": "Dee", "message": "over HTTP"})
        assert signed.status_code == 200  # after the 303, on the list
        assert [r.status_code for r in signed.history] == [303]
        assert str(signed.url) == url + "/legacy/"
        assert entry_names(signed.text) == ["Ada", "Dee"]

        assert http.post("/legacy/entries", data={"name": "Dee"}).status_code == 400
        dee = {"id": 2, "name": "Dee", "message": "over HTTP"}
        assert http.get("/legacy/api/entries").json()[-1] == dee
        assert http.get("/api/entries").json()[-1] == dee
