"""Flash messages, and the session helpers templates get: csrf_token, csrf_input, flashes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from session_helpers import MakeApp

from trellis import App, Request
from trellis.http.response import RedirectResponse
from trellis.sessions import flash, get_flashed_messages
from trellis.templating import render
from trellis.testing import TestClient
from trellis.websockets import WebSocket


def flash_app(make_app: MakeApp, **settings: Any) -> App:
    app = make_app(**settings)

    @app.post("/save", csrf=False)
    async def save(request: Request) -> RedirectResponse:
        flash(request, "Saved.", "success")
        flash(request, "Check your e-mail.")
        flash(request, "Disk almost full", "warning")
        return RedirectResponse("/", 303)

    @app.get("/all")
    async def all_messages(request: Request) -> list[Any]:
        return get_flashed_messages(request, with_categories=True)

    @app.get("/plain")
    async def plain(request: Request) -> list[Any]:
        return get_flashed_messages(request)

    @app.get("/warnings")
    async def warnings(request: Request) -> list[Any]:
        return get_flashed_messages(request, category_filter=["warning"])

    return app


def test_flash_then_read_once(make_app: MakeApp) -> None:
    with TestClient(flash_app(make_app)) as client:
        assert client.post("/save").status_code == 303
        assert client.get("/all").json() == [
            ["success", "Saved."],
            ["info", "Check your e-mail."],
            ["warning", "Disk almost full"],
        ]
        assert client.get("/all").json() == []
        client.post("/save")
        assert client.get("/plain").json() == ["Saved.", "Check your e-mail.", "Disk almost full"]


def test_category_filter_keeps_the_others(make_app: MakeApp) -> None:
    with TestClient(flash_app(make_app)) as client:
        client.post("/save")
        assert client.get("/warnings").json() == ["Disk almost full"]
        assert client.get("/warnings").json() == []
        assert client.get("/plain").json() == ["Saved.", "Check your e-mail."]


def test_no_flashes_costs_no_cookie(make_app: MakeApp) -> None:
    with TestClient(flash_app(make_app)) as client:
        response = client.get("/all")
        assert response.json() == []
        assert "set-cookie" not in response.headers


def test_websocket_sees_flashes_without_consuming_them(make_app: MakeApp) -> None:
    app = flash_app(make_app)

    @app.websocket("/ws")
    async def session_ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(get_flashed_messages(websocket))

    with TestClient(app) as client:
        client.post("/save")
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == ["Saved.", "Check your e-mail.", "Disk almost full"]
        assert len(client.get("/plain").json()) == 3


PAGE = """<form method="post">{{ csrf_input() }}</form>
<p data-token="{{ csrf_token() }}"></p>
{% for category, message in get_flashed_messages(with_categories=true) %}
<div class="{{ category }}">{{ message }}</div>{% endfor %}"""


def test_template_globals(make_app: MakeApp, tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    app = make_app(templates_dir=str(tmp_path))

    @app.get("/page")
    async def page(request: Request) -> object:
        flash(request, "<b>hello</b>", "note")
        return render("page.html")

    @app.post("/submit")
    async def submit(request: Request) -> str:
        return "accepted"

    with TestClient(app) as client:
        html = client.get("/page").text
        field = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', html)
        assert field is not None
        data_token = re.search(r'data-token="([^"]+)"', html)
        assert data_token is not None and data_token.group(1) != field.group(1)
        assert '<div class="note">&lt;b&gt;hello&lt;/b&gt;</div>' in html
        assert client.post("/submit", data={"csrf_token": field.group(1)}).text == "accepted"
        by_header = client.post("/submit", headers={"X-CSRF-Token": data_token.group(1)})
        assert by_header.status_code == 200
        assert client.post("/submit").status_code == 403
