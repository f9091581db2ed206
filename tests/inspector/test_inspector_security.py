"""The inspector never runs in production, masks credentials and escapes what it shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from inspector_helpers import SECRET, make_app, record_json

from trellis import App, Request
from trellis.checks import deploy_problems
from trellis.contrib.inspector import Inspector
from trellis.exceptions import ConfigurationError
from trellis.http.response import HTMLResponse, JSONResponse
from trellis.testing import TestClient

PAYLOAD = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
# For a path segment: no "/".
TAG = "<img src=x onerror=alert(1)>"
ESCAPED_TAG = "&lt;img src=x onerror=alert(1)&gt;"


def production_app() -> App:
    return App(debug=False, secret_key=SECRET, allowed_hosts=["testserver"])


# -- production -------------------------------------------------------------------------------


def test_installing_in_production_is_refused_at_start_up() -> None:
    app = production_app()
    with pytest.raises(ConfigurationError, match=r"only runs in debug mode.*if app\.debug"):
        app.install(Inspector())
    assert getattr(app.state, "inspector", None) is None


def test_in_production_nothing_is_exposed() -> None:
    app = production_app()

    @app.get("/")
    async def home() -> HTMLResponse:
        return HTMLResponse("<html><body>home</body></html>")

    if app.debug:  # the documented way: never installed in production
        app.install(Inspector())

    with TestClient(app) as client:
        home = client.get("/")
        assert home.text == "<html><body>home</body></html>"
        assert "x-trellis-inspector" not in home.headers
        for path in (
            "/_inspector",
            "/_inspector/1",
            "/_inspector/api/requests",
            "/_inspector/static/toolbar.css",
        ):
            assert client.get(path).status_code == 404, path


def test_turning_debug_off_after_install_closes_the_pages(tmp_path: Path) -> None:
    app = make_app(tmp_path, database=False)
    app.settings = app.settings.replace(debug=False)
    inspector: Inspector = app.state.inspector
    with TestClient(app) as client:
        page = client.get("/page")
        assert "trellis-inspector" not in page.text
        assert "x-trellis-inspector" not in page.headers
        assert inspector.records == []
        assert client.get("/_inspector").status_code == 404
        assert client.get("/_inspector/api/requests").status_code == 404


def test_the_deploy_checks_flag_an_installed_inspector(tmp_path: Path) -> None:
    app = make_app(tmp_path, database=False)
    problems = {p.id: p for p in deploy_problems(app)}
    assert problems["inspector.E001"].level == "error"


def test_one_inspector_per_app_and_sane_options() -> None:
    app = App(debug=True, secret_key=SECRET)
    app.install(Inspector())
    with pytest.raises(ConfigurationError, match="already has an Inspector"):
        app.install(Inspector())
    for bad in (
        {"max_requests": 0},
        {"max_queries": -1},
        {"prefix": "_inspector"},
        {"prefix": "/_inspector/"},
        {"prefix": "/"},
    ):
        with pytest.raises(ConfigurationError):
            Inspector(**bad)  # type: ignore[arg-type]


# -- secrets ------------------------------------------------------------------------------------


def secrets_app() -> App:
    app = App(debug=True, secret_key=SECRET)

    @app.get("/login")
    async def login(request: Request) -> JSONResponse:
        request.session["user_id"] = 7
        request.session["_auth_user_hash"] = "fingerprint-value-1234"
        request.session["reset_token"] = "reset-token-value-5678"
        response = JSONResponse({"ok": True})
        response.set_cookie("remember", "remember-me-cookie-value")
        return response

    @app.get("/whoami")
    async def whoami() -> HTMLResponse:
        return HTMLResponse("<html><body>me</body></html>")

    app.install(Inspector())
    return app


SECRETS = (
    "bearer-token-value-abcd",
    "basic-credentials-xyz",
    "sid-cookie-value-9876",
    "api-key-value-5555",
    "remember-me-cookie-value",
    "fingerprint-value-1234",
    "reset-token-value-5678",
    "csrf-header-value-4321",
)


def test_credentials_are_masked_in_the_record_and_the_pages() -> None:
    with TestClient(secrets_app()) as client:
        login = client.get("/login")
        response = client.get(
            "/whoami",
            headers={
                "Authorization": "Bearer bearer-token-value-abcd",
                "Proxy-Authorization": "Basic basic-credentials-xyz",
                "Cookie": "sid=sid-cookie-value-9876; theme=dark",
                "X-Api-Key": "api-key-value-5555",
                "X-CSRF-Token": "csrf-header-value-4321",
            },
        )
        login_record = record_json(client, login)
        record = record_json(client, response)
        headers = dict(record["request_headers"])
        assert headers["authorization"] == "Bearer ********"
        assert headers["proxy-authorization"] == "Basic ********"
        assert headers["cookie"] == "sid=********; theme=********"
        assert headers["x-api-key"] == "********"
        assert headers["x-csrf-token"] == "********"
        set_cookie = dict(login_record["response_headers"])["set-cookie"]
        assert set_cookie.startswith("remember=********; ")
        assert "HttpOnly" in set_cookie
        assert login_record["session"] == {
            "user_id": 7,
            "_auth_user_hash": "********",
            "reset_token": "********",
        }
        shown = [
            str(login_record),
            str(record),
            client.get(login.headers["x-trellis-inspector"]).text,
            client.get(response.headers["x-trellis-inspector"]).text,
            client.get("/_inspector").text,
            client.get("/_inspector/api/requests").text,
        ]
        for text in shown:
            for secret in SECRETS:
                assert secret not in text


# -- escaping -----------------------------------------------------------------------------------


def test_every_page_escapes_what_the_client_sent(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.get("/echo/{value}")
    async def echo(request: Request, value: str) -> JSONResponse:
        request.session[PAYLOAD] = PAYLOAD
        return JSONResponse({"ok": True})

    with TestClient(app) as client:
        response = client.get(
            f"/echo/{TAG}",
            params={"q": PAYLOAD},
            headers={"X-Evil": PAYLOAD, "User-Agent": PAYLOAD},
        )
        assert response.status_code == 200
        record = record_json(client, response)
        assert record["path"] == f"/echo/{TAG}"
        assert record["path_params"] == {"value": TAG}
        missing = client.get(f"/{PAYLOAD}")  # a 404 is recorded too
        assert missing.status_code == 404
        pages = {
            "index": client.get("/_inspector").text,
            "detail": client.get(response.headers["x-trellis-inspector"]).text,
            "404 detail": client.get(missing.headers["x-trellis-inspector"]).text,
            "unknown record": client.get(f"/_inspector/{TAG}").text,
        }
        for name, text in pages.items():
            assert "<script" not in text, name
            assert "<img" not in text, name
        index, detail = pages["index"], pages["detail"]
        assert f"/echo/{ESCAPED_TAG}" in index
        assert f"/{ESCAPED}" in index
        assert f"<code>value={ESCAPED_TAG}</code>" in detail
        assert f'<th scope="row">x-evil</th><td>{ESCAPED}</td>' in detail
        assert f'<th scope="row">user-agent</th><td>{ESCAPED}</td>' in detail
        assert f'<th scope="row">{ESCAPED}</th>' in detail  # the session key
        assert ESCAPED_TAG in pages["unknown record"]


def test_sql_parameters_and_template_values_are_escaped(tmp_path: Path) -> None:
    from sqlalchemy import text

    from trellis.contrib.db import Session

    app = make_app(tmp_path)

    @app.get("/search")
    async def search(q: str, db: Session) -> JSONResponse:
        await db.execute(text("SELECT :q AS echo"), {"q": q})
        return JSONResponse({"q": q})

    with TestClient(app) as client:
        response = client.get("/search", params={"q": PAYLOAD})
        detail = client.get(response.headers["x-trellis-inspector"]).text
        assert "<script>" not in detail
        assert f"(&#39;{ESCAPED}&#39;)" in detail
