"""What the inspector records: SQL, template renders, headers, session, user, timings."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from inspector_helpers import SECRET, make_app, record_id, record_json
from sqlalchemy import text

from trellis import App, Request
from trellis.contrib.db import Database, Session
from trellis.contrib.inspector import Inspector, RequestRecord, _sql
from trellis.http.response import JSONResponse
from trellis.testing import AsyncTestClient, TestClient


def _selects(record: dict[str, object]) -> list[dict[str, object]]:
    queries = record["queries"]
    assert isinstance(queries, list)
    return [q for q in queries if str(q["statement"]).startswith("SELECT")]


def test_a_page_with_two_queries_and_a_template_is_recorded(client: TestClient) -> None:
    response = client.get("/books", headers={"X-Custom": "hello"})
    assert response.status_code == 200
    record = record_json(client, response)

    assert record["method"] == "GET"
    assert record["path"] == "/books"
    assert record["status"] == 200
    assert record["duration_ms"] > 0
    assert 0 < record["response_start_ms"] <= record["duration_ms"]

    selects = _selects(record)
    assert len(selects) == 2
    assert "FROM inspector_book ORDER BY inspector_book.id" in " ".join(
        str(selects[0]["statement"]).split()
    )
    assert "WHERE inspector_book.title = ?" in str(selects[1]["statement"])
    assert selects[1]["parameters"] == "('Dune')"
    for query in selects:
        assert isinstance(query["duration_ms"], float) and query["duration_ms"] >= 0
        assert "books.db" in str(query["database"])
    assert record["query_count"] == 2
    assert record["statement_count"] == len(record["queries"])
    assert all(q["transaction"] for q in record["queries"] if q not in selects)
    assert record["query_time_ms"] > 0
    assert selects[0]["start_ms"] < selects[1]["start_ms"]

    [render] = record["templates"]
    assert render["name"] == "books.html"
    assert render["context_keys"] == ["books", "request", "title"]
    assert render["duration_ms"] >= 0
    assert render["start_ms"] > selects[1]["start_ms"]

    assert ["x-custom", "hello"] in record["request_headers"]
    assert ["content-type", "text/html; charset=utf-8"] in record["response_headers"]
    assert record["session"] == {"cart": ["dune"], "visits": 1}
    assert record["session_info"] == {"new": True, "modified": True}
    assert record["user"] is None
    assert record["toolbar"] is True


def test_the_detail_page_shows_queries_template_headers_and_session(client: TestClient) -> None:
    response = client.get("/books", headers={"X-Custom": "hello"})
    page = client.get(response.headers["x-trellis-inspector"])
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    body = page.text
    assert "WHERE inspector_book.title = ?" in body
    assert "(&#39;Dune&#39;)" in body
    assert "books.html" in body
    assert '<th scope="row">x-custom</th><td>hello</td>' in body
    assert '<th scope="row">cart</th><td><code>[&#34;dune&#34;]</code></td>' in body
    # Its own requests are not recorded, and get no header of their own.
    assert "x-trellis-inspector" not in page.headers
    assert [r["path"] for r in client.get("/_inspector/api/requests").json()] == ["/books"]


def test_the_index_lists_recent_requests_newest_first(client: TestClient) -> None:
    client.get("/page")
    client.get("/api/books?sort=title")
    index = client.get("/_inspector")
    assert index.status_code == 200
    body = index.text
    assert body.index("/api/books?sort=title") < body.index(">/page<")
    summaries = client.get("/_inspector/api/requests").json()
    assert [s["path"] for s in summaries] == ["/api/books", "/page"]
    assert summaries[0]["query_count"] >= 1
    assert summaries[1]["template_count"] == 1


def test_a_sync_handler_s_queries_are_recorded(client: TestClient) -> None:
    response = client.get("/sync-books")
    assert response.json() == ["Dune", "Emma"]
    selects = _selects(record_json(client, response))
    assert len(selects) == 1
    assert "inspector_book.title" in str(selects[0]["statement"])
    assert "pysqlite" in str(selects[0]["database"]) or "sqlite://" in str(selects[0]["database"])


def test_duplicate_queries_are_detected(client: TestClient) -> None:
    response = client.get("/twice")
    record = record_json(client, response)
    assert record["duplicate_count"] == 1
    selects = _selects(record)
    assert [q["duplicates"] for q in selects] == [2, 2, 1]
    assert [q["similar"] for q in selects] == [3, 3, 3]
    page = client.get(response.headers["x-trellis-inspector"]).text
    assert "duplicate: ran 2 times with the same parameters" in page
    assert "similar: this statement ran 3 times" in page
    assert "1 duplicate</strong>" in page


def test_a_failing_statement_is_recorded_with_its_error(tmp_path: Path) -> None:
    app = App(debug=True, secret_key=SECRET)
    app.install(Database(f"sqlite:///{tmp_path / 'x.db'}"))
    app.install(Inspector())

    @app.get("/broken")
    async def broken(db: Session) -> dict[str, int]:
        try:
            await db.execute(text("SELECT * FROM no_such_table"))
        except Exception:
            return {"failed": 1}
        return {"failed": 0}

    with TestClient(app) as client:
        response = client.get("/broken")
        assert response.json() == {"failed": 1}
        record = record_json(client, response)
        [failed] = [q for q in record["queries"] if "no_such_table" in q["statement"]]
        assert "no such table" in failed["error"]
        assert failed["duration_ms"] >= 0


def test_the_signed_in_user_is_described_from_loaded_attributes(client: TestClient) -> None:
    response = client.get("/me")
    assert record_json(client, response)["user"] == "FakeUser #7 (ada)"


def test_a_session_the_handler_did_not_open_is_read_without_being_saved(
    client: TestClient,
) -> None:
    first = client.get("/books")
    assert "set-cookie" in first.headers
    second = client.get("/page")  # does not touch the session
    assert "set-cookie" not in second.headers
    record = record_json(client, second)
    assert record["session"] == {"cart": ["dune"], "visits": 1}
    assert record["session_info"] == {"new": False, "modified": False}


def test_without_a_session_cookie_there_is_no_session(client: TestClient) -> None:
    record = record_json(client, client.get("/page"))
    assert record["session"] is None


def test_template_render_errors_are_recorded(tmp_path: Path) -> None:
    app = make_app(tmp_path, database=False)

    @app.get("/broken")
    async def broken(request: Request) -> object:
        from trellis.templating import render

        return render("broken.html", request)

    with TestClient(app) as client:
        response = client.get("/broken")
        assert response.status_code == 500
        record = record_json(client, response)
        [render] = record["templates"]
        assert render["name"] == "broken.html"
        assert "UndefinedError" in render["error"] or "undefined" in render["error"]


def test_without_the_database_battery_no_sql_is_watched(tmp_path: Path) -> None:
    app = make_app(tmp_path, database=False)
    with TestClient(app) as client:
        response = client.get("/page")
        assert "queries" not in response.text.split('id="trellis-inspector"')[1]
        page = client.get(response.headers["x-trellis-inspector"]).text
        assert 'id="sql"' not in page
        assert app.state.inspector.watching_sql is False


def test_queries_outside_a_request_are_not_recorded_and_hooks_stop_at_shutdown(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    inspector: Inspector = app.state.inspector
    assert not _sql.installed()
    with TestClient(app) as client:
        assert _sql.installed()
        # The start-up hook created tables and rows: no request, no record.
        assert inspector.records == []
        client.get("/api/books")
        assert len(inspector.records) == 1
    assert not _sql.installed()


def test_only_the_last_max_requests_are_kept(tmp_path: Path) -> None:
    app = make_app(tmp_path, database=False, max_requests=3)
    with TestClient(app) as client:
        ids = [record_id(client.get(f"/page?n={n}")) for n in range(5)]
        inspector: Inspector = app.state.inspector
        assert [r.id for r in inspector.records] == ids[:1:-1]
        gone = client.get(f"/_inspector/{ids[0]}")
        assert gone.status_code == 404
        assert "not in memory" in gone.text
        assert client.get(f"/_inspector/api/requests/{ids[0]}").status_code == 404
        assert client.get(f"/_inspector/{ids[4]}").status_code == 200
        inspector.clear()
        assert inspector.records == []


def test_statements_past_max_queries_are_counted_not_kept(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_queries=1)
    with TestClient(app) as client:
        response = client.get("/twice")
        record = record_json(client, response)
        assert len(record["queries"]) == 1
        assert record["query_count"] >= 3
        page = client.get(response.headers["x-trellis-inspector"]).text
        assert "only the first 1 are kept" in page


def test_long_parameters_are_cut(tmp_path: Path) -> None:
    app = App(debug=True, secret_key=SECRET)
    app.install(Database(f"sqlite:///{tmp_path / 'x.db'}"))
    app.install(Inspector())

    @app.get("/long")
    async def long(db: Session) -> dict[str, int]:
        await db.execute(text("SELECT :value"), {"value": "x" * 5000})
        await db.execute(
            text("SELECT " + ", ".join(f":p{i}" for i in range(80))),
            {f"p{i}": i for i in range(80)},
        )
        return {"ok": 1}

    with TestClient(app) as client:
        record = record_json(client, client.get("/long"))
        first, second = _selects(record)
        assert len(first["parameters"]) < 300
        assert first["parameters"].endswith("…')") or "…" in first["parameters"]
        assert "30 more" in second["parameters"]


def test_ignored_paths_are_not_recorded(tmp_path: Path) -> None:
    app = make_app(tmp_path, database=False, ignore=("/me",))
    with TestClient(app) as client:
        response = client.get("/me")
        assert "x-trellis-inspector" not in response.headers
        assert "trellis-inspector" not in response.text
        assert app.state.inspector.records == []


def test_links_keep_the_root_path(tmp_path: Path) -> None:
    app = make_app(tmp_path, database=False)
    with TestClient(app, root_path="/shop") as client:
        response = client.get("/page")  # the client adds the root path
        assert response.status_code == 200
        link = response.headers["x-trellis-inspector"]
        assert link.startswith("/shop/_inspector/")
        assert f'href="{link}"' in response.text
        assert 'href="/shop/_inspector/static/toolbar.css"' in response.text
        page = client.get(link.removeprefix("/shop"))
        assert page.status_code == 200
        assert 'href="/shop/_inspector/static/inspector.css"' in page.text


def test_a_crashing_handler_is_recorded_with_its_500_page() -> None:
    app = App(debug=True, secret_key=SECRET)
    app.install(Inspector())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    with TestClient(app) as client:
        response = client.get("/boom", headers={"Accept": "text/html"})
        assert response.status_code == 500
        record = record_json(client, response)
        assert record["status"] == 500
        # The app answered with its error page: nothing escaped it.
        assert record["error"] is None
        assert record["toolbar"] is ("</body>" in response.text)


def test_a_jinja_environment_of_your_own_can_be_watched() -> None:
    import jinja2
    from jinja2.nativetypes import NativeEnvironment

    app = App(debug=True, secret_key=SECRET)
    inspector = app.install(Inspector())
    env = jinja2.Environment(loader=jinja2.DictLoader({"mail.txt": "Hi {{ name }}"}))
    native = NativeEnvironment()
    inspector.watch_templates(env)
    inspector.watch_templates(env)  # once is enough
    inspector.watch_templates(native)

    @app.get("/mail")
    async def mail() -> dict[str, object]:
        text = env.get_template("mail.txt").render(name="Ada")
        total = native.from_string("{{ a + b }}").render(a=1, b=2)
        return {"text": text, "total": total}

    with TestClient(app) as client:
        response = client.get("/mail")
        assert response.json() == {"text": "Hi Ada", "total": 3}
        renders = record_json(client, response)["templates"]
        assert [(r["name"], r["context_keys"]) for r in renders] == [
            ("mail.txt", ["name"]),
            ("<string>", ["a", "b"]),
        ]
    # Outside a request, renders are not recorded and work as before.
    assert env.get_template("mail.txt").render(name="Bob") == "Hi Bob"


@pytest.mark.anyio
async def test_concurrent_requests_keep_their_own_queries(tmp_path: Path) -> None:
    app = App(debug=True, secret_key=SECRET)
    app.install(Database(f"sqlite:///{tmp_path / 'x.db'}"))
    app.install(Inspector())

    @app.get("/slow/{n}")
    async def slow(n: int, db: Session) -> JSONResponse:
        await db.execute(text(f"SELECT {n} AS first"))
        await anyio.sleep(0.01 * (3 - n))
        await db.execute(text(f"SELECT {n} AS second"))
        return JSONResponse({"n": n})

    async with AsyncTestClient(app) as client:
        responses: dict[int, object] = {}

        async def fetch(n: int) -> None:
            responses[n] = await client.get(f"/slow/{n}")

        async with anyio.create_task_group() as group:
            for n in range(3):
                group.start_soon(fetch, n)
        inspector: Inspector = app.state.inspector
        for n, response in responses.items():
            record = inspector.get(record_id(response))
            assert isinstance(record, RequestRecord)
            statements = [q.statement for q in record.queries if q.statement.startswith("SELECT")]
            assert statements == [f"SELECT {n} AS first", f"SELECT {n} AS second"]
