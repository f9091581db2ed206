"""The toolbar: added to complete HTML pages only, with a correct length and no inline code."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

from inspector_helpers import SECRET, make_app, record_id, record_json

from trellis import App
from trellis.contrib.inspector import Inspector
from trellis.contrib.inspector.middleware import inject_toolbar
from trellis.http.response import HTMLResponse, JSONResponse, Response, StreamingResponse
from trellis.middleware.gzip import GZipMiddleware
from trellis.testing import TestClient

PAGE = "<!doctype html><html><body><p>Bonjour</p></body></html>"
LONG_PAGE = "<!doctype html><html><body>" + "<p>Bonjour</p>" * 200 + "</body></html>"
TOOLBAR = re.compile(
    r'<link rel="stylesheet" href="/_inspector/static/toolbar\.css">'
    r'<div id="trellis-inspector" role="complementary" aria-label="Trellis inspector">'
    r'<a href="(/_inspector/[0-9a-f]+)">Inspector: [0-9.]+ ms( &middot; [^<]+)?</a></div>'
)


def plain_app(**options: object) -> App:
    app = App(debug=True, secret_key=SECRET)

    @app.get("/html")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"ETag": '"v1"'})

    @app.get("/long")
    async def long() -> HTMLResponse:
        return HTMLResponse(LONG_PAGE)

    @app.get("/upper")
    async def upper() -> HTMLResponse:
        return HTMLResponse("<HTML><BODY>shout</BODY></HTML>")

    @app.get("/fragment")
    async def fragment() -> HTMLResponse:
        return HTMLResponse("<li>an htmx partial</li>")

    @app.get("/json")
    async def data() -> JSONResponse:
        return JSONResponse({"html": "</body>"})

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[str]:
            yield "<html><body>"
            yield "streamed</body></html>"

        return StreamingResponse(chunks(), media_type="text/html")

    @app.get("/download")
    async def download() -> Response:
        return Response(
            PAGE,
            media_type="text/html",
            headers={"Content-Disposition": 'attachment; filename="page.html"'},
        )

    @app.get("/empty")
    async def empty() -> Response:
        return Response(status_code=204)

    app.install(Inspector(**options))  # type: ignore[arg-type]
    return app


def test_an_html_page_gets_the_toolbar_before_body_end_with_the_length_fixed() -> None:
    with TestClient(plain_app()) as client:
        response = client.get("/html")
        assert response.status_code == 200
        body = response.text
        match = TOOLBAR.search(body)
        assert match is not None, body
        assert body.endswith(match.group(0) + "</body></html>")
        assert body.startswith("<!doctype html><html><body><p>Bonjour</p>")
        assert int(response.headers["content-length"]) == len(response.content)
        assert match.group(1) == response.headers["x-trellis-inspector"]
        # The bytes changed, the page did not: the validator says so.
        assert response.headers["etag"] == 'W/"v1"'
        assert client.get(match.group(1)).status_code == 200
        css = client.get("/_inspector/static/toolbar.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "#trellis-inspector" in css.text


def test_the_tag_is_found_in_any_case() -> None:
    with TestClient(plain_app()) as client:
        body = client.get("/upper").text
        assert TOOLBAR.search(body) is not None
        assert body.endswith("</div></BODY></HTML>")


def test_the_toolbar_counts_queries_and_templates(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        response = client.get("/books")
        match = TOOLBAR.search(response.text)
        assert match is not None
        record = record_json(client, response)
        count = record["query_count"]
        assert match.group(2) == f" &middot; {count} queries &middot; 1 template"
        twice = client.get("/twice")  # JSON: counted in the record, no toolbar
        assert "trellis-inspector" not in twice.text


def test_json_gets_the_header_and_an_untouched_body() -> None:
    with TestClient(plain_app()) as client:
        response = client.get("/json")
        assert response.content == b'{"html":"</body>"}'
        assert response.headers["content-length"] == str(len(response.content))
        assert response.headers["x-trellis-inspector"].startswith("/_inspector/")
        assert record_json(client, response)["toolbar"] is False


def test_fragments_downloads_streams_head_and_bodiless_answers_are_left_alone() -> None:
    with TestClient(plain_app()) as client:
        fragment = client.get("/fragment")
        assert fragment.text == "<li>an htmx partial</li>"
        download = client.get("/download")
        assert download.text == PAGE
        assert download.headers["content-length"] == str(len(PAGE))
        stream = client.get("/stream")
        assert stream.text == "<html><body>streamed</body></html>"
        assert "x-trellis-inspector" in stream.headers
        head = client.head("/html")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(PAGE))
        empty = client.get("/empty")
        assert empty.status_code == 204
        assert empty.content == b""
        for response in (fragment, download, stream, head, empty):
            assert record_json(client, response)["toolbar"] is False


def test_a_response_compressed_inside_the_inspector_is_left_alone() -> None:
    app = App(debug=True, secret_key=SECRET)
    # Added first, so it runs inside the inspector (the last added runs outermost): the
    # inspector sees a compressed page.
    app.add_middleware(GZipMiddleware, minimum_size=10)

    @app.get("/long")
    async def long() -> HTMLResponse:
        return HTMLResponse(LONG_PAGE)

    app.install(Inspector())
    with TestClient(app) as client:
        response = client.get("/long", headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert response.text == LONG_PAGE  # httpx decompressed it: no toolbar inside
        assert record_json(client, response)["toolbar"] is False


def test_a_response_compressed_outside_the_inspector_has_the_toolbar() -> None:
    app = plain_app()
    app.add_middleware(GZipMiddleware, minimum_size=10)  # after: outermost, compresses last
    with TestClient(app) as client:
        response = client.get("/long", headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        page = response.text  # httpx decompressed it
        assert TOOLBAR.search(page) is not None
        assert page.endswith("</div></body></html>")
        assert record_json(client, response)["toolbar"] is True


def test_toolbar_false_keeps_pages_as_they_are_but_records_them() -> None:
    with TestClient(plain_app(toolbar=False)) as client:
        response = client.get("/html")
        assert response.text == PAGE
        assert record_id(response)
        assert record_json(client, response)["status"] == 200


def test_the_toolbar_and_the_pages_carry_no_script_and_no_inline_style(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with TestClient(app) as client:
        response = client.get("/books")
        toolbar = TOOLBAR.search(response.text)
        assert toolbar is not None
        pages = [
            toolbar.group(0),
            client.get("/_inspector").text,
            client.get(response.headers["x-trellis-inspector"]).text,
            client.get("/_inspector/nope").text,
        ]
        for html in pages:
            assert "<script" not in html.lower()
            assert "style=" not in html.lower()
            assert "<style" not in html.lower()
            assert " on" not in re.sub(r">[^<]*<", "><", html).lower()  # no onclick=...


def test_the_pages_work_under_a_strict_content_security_policy(tmp_path: Path) -> None:
    app = App(
        debug=True,
        secret_key=SECRET,
        content_security_policy="default-src 'self'; style-src 'self'; script-src 'none'",
    )

    @app.get("/")
    async def home() -> HTMLResponse:
        return HTMLResponse(PAGE)

    app.install(Inspector())
    with TestClient(app) as client:
        response = client.get("/")
        assert "style-src 'self'" in response.headers["content-security-policy"]
        match = TOOLBAR.search(response.text)
        assert match is not None
        # The stylesheets come from the application's own origin, as 'self' allows.
        for css in ("/_inspector/static/toolbar.css", "/_inspector/static/inspector.css"):
            assert client.get(css).status_code == 200
        page = client.get(match.group(1))
        assert "content-security-policy" in page.headers


def test_inject_toolbar_puts_it_before_the_last_body_end() -> None:
    body = b"<body><pre>&lt;/body&gt; </body></pre></body>"
    assert inject_toolbar(body, b"[T]") == b"<body><pre>&lt;/body&gt; </body></pre>[T]</body>"
    assert inject_toolbar(b"<p>no end</p>", b"[T]") is None
