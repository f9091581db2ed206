from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from trellis.exceptions import ConfigurationError
from trellis.static import StaticFiles
from trellis.types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


def mounted(app: ASGIApp, prefix: str = "/static") -> ASGIApp:
    """Mount ``app`` at ``prefix`` the way Trellis does: root_path grows, path stays full."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if not scope["path"].startswith(prefix):
            raise AssertionError(f"not under {prefix}: {scope['path']}")
        scope = dict(scope, root_path=scope.get("root_path", "") + prefix)
        await app(scope, receive, send)

    return asgi


async def get(
    app: ASGIApp, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, path, headers=headers)


async def call_raw(
    app: ASGIApp, path: str, *, root_path: str = "/static", method: str = "GET"
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Call ``app`` with a hand-made scope: httpx would normalise ``..`` and friends away."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
    }
    sent: list[Message] = []
    done = asyncio.Event()
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    (root / "css").mkdir(parents=True)
    (root / "css" / "site.css").write_text("body { color: red }")
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "empty-dir").mkdir()
    (root / "%2e%2e").write_text("a file with a literal name")
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "public-other").mkdir()
    (tmp_path / "public-other" / "x.txt").write_text("sibling with a shared prefix")
    return root


async def test_serves_a_file(site: Path) -> None:
    r = await get(mounted(StaticFiles(site)), "/static/css/site.css")
    assert r.status_code == 200
    assert r.text == "body { color: red }"
    assert r.headers["content-type"] == "text/css; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert "etag" in r.headers
    assert "last-modified" in r.headers
    assert r.headers["accept-ranges"] == "bytes"


async def test_head(site: Path) -> None:
    r = await get(mounted(StaticFiles(site)), "/static/css/site.css", "HEAD")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "19"


async def test_path_already_stripped(site: Path) -> None:
    r = await get(StaticFiles(site), "/css/site.css")
    assert r.status_code == 200
    assert r.text == "body { color: red }"
    status, _, body = await call_raw(StaticFiles(site), "/css/site.css", root_path="/static")
    assert (status, body) == (200, b"body { color: red }")


async def test_root_path_prefix_must_end_at_a_segment(site: Path) -> None:
    # root_path "/st" must not eat the start of "/static/...": the path is then taken as is.
    status, _, _ = await call_raw(StaticFiles(site), "/static/css/site.css", root_path="/st")
    assert status == 404


async def test_cache_control_option(site: Path) -> None:
    r = await get(mounted(StaticFiles(site, cache_control=None)), "/static/css/site.css")
    assert "cache-control" not in r.headers
    app = StaticFiles(site, cache_control="public, max-age=31536000, immutable")
    r = await get(mounted(app), "/static/css/site.css")
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    with pytest.raises(ConfigurationError, match="CR, LF"):
        StaticFiles(site, cache_control="a\r\nb: c")


async def test_etag_304_and_range(site: Path) -> None:
    app = mounted(StaticFiles(site))
    first = await get(app, "/static/css/site.css")
    r = await get(app, "/static/css/site.css", headers={"if-none-match": first.headers["etag"]})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["cache-control"] == "public, max-age=3600"
    r = await get(
        app, "/static/css/site.css", headers={"if-modified-since": first.headers["last-modified"]}
    )
    assert r.status_code == 304
    r = await get(app, "/static/css/site.css", headers={"range": "bytes=0-3"})
    assert r.status_code == 206
    assert r.text == "body"
    assert r.headers["content-range"] == "bytes 0-3/19"


async def test_missing_gives_404(site: Path) -> None:
    app = mounted(StaticFiles(site))
    r = await get(app, "/static/nope.css")
    assert r.status_code == 404
    assert r.text == "Not Found"
    assert (await get(app, "/static/css/nope/deeper.css")).status_code == 404
    assert (await get(app, "/static/css/site.css/x")).status_code == 404  # file as a directory


async def test_directory_without_html_mode_gives_404(site: Path) -> None:
    app = mounted(StaticFiles(site))
    for path in ("/static/", "/static/docs/", "/static/docs", "/static/css/"):
        assert (await get(app, path)).status_code == 404, path


async def test_file_with_trailing_slash_gives_404(site: Path) -> None:
    r = await get(mounted(StaticFiles(site)), "/static/css/site.css/")
    assert r.status_code == 404


async def test_html_mode_serves_index(site: Path) -> None:
    app = mounted(StaticFiles(site, html=True))
    r = await get(app, "/static/")
    assert r.status_code == 200
    assert r.text == "<h1>home</h1>"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    r = await get(app, "/static/docs/")
    assert r.text == "<h1>docs</h1>"
    r = await get(app, "/static/docs/index.html")
    assert r.text == "<h1>docs</h1>"
    assert (await get(app, "/static/empty-dir/")).status_code == 404
    assert (await get(app, "/static/css/")).status_code == 404


async def test_html_mode_redirects_directory_to_trailing_slash(site: Path) -> None:
    app = mounted(StaticFiles(site, html=True))
    r = await get(app, "/static/docs?x=1")
    assert r.status_code == 307
    assert r.headers["location"] == "/static/docs/?x=1"
    r = await get(app, "/static")
    assert r.status_code == 307
    assert r.headers["location"] == "/static/"


async def test_redirect_cannot_point_to_another_host(site: Path) -> None:
    (site / "evil.example").mkdir()
    (site / "evil.example" / "index.html").write_text("x")
    app = StaticFiles(site, html=True)
    status, headers, _ = await call_raw(app, "//evil.example", root_path="")
    assert status == 307
    assert headers[b"location"] == b"/evil.example/"


async def test_html_mode_404_page(site: Path) -> None:
    app = mounted(StaticFiles(site, html=True))
    assert (await get(app, "/static/nope")).text == "Not Found"
    (site / "404.html").write_text("<h1>lost</h1>")
    r = await get(app, "/static/nope")
    assert r.status_code == 404
    assert r.text == "<h1>lost</h1>"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    r = await get(mounted(StaticFiles(site)), "/static/nope")
    assert r.text == "Not Found"  # only in html mode


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_give_405(site: Path, method: str) -> None:
    r = await get(mounted(StaticFiles(site)), "/static/css/site.css", method)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/css/../../secret.txt",
        "/static/..",
        "/static/../public-other/x.txt",  # shares the directory's name as a prefix
        "/static/..\\secret.txt",
        "/static/css\\..\\..\\secret.txt",
        "/static/css/site.css\x00.png",
        "/static/\x00",
        "/static/..%2fsecret.txt".replace("%2f", "/"),  # "%2f" decoded by the server
        "/static/%2e%2e/secret.txt".replace("%2e", "."),  # "%2e%2e" decoded by the server
        "/static/css/%2e%2e/%2e%2e/secret.txt".replace("%2e", "."),
        "/static/./../secret.txt",
        "/static//../secret.txt",
    ],
)
async def test_traversal_is_refused(site: Path, path: str) -> None:
    for html in (False, True):
        status, _, body = await call_raw(StaticFiles(site, html=html), path)
        assert status == 404, path
        assert body == b"Not Found"
    status, _, _ = await call_raw(StaticFiles(site, follow_symlinks=True), path)
    assert status == 404, path


async def test_absolute_path_stays_inside(site: Path, tmp_path: Path) -> None:
    target = str(tmp_path / "secret.txt")
    status, _, _ = await call_raw(StaticFiles(site), "/static/" + target)
    assert status == 404
    status, _, _ = await call_raw(StaticFiles(site), target, root_path="")
    assert status == 404
    status, _, _ = await call_raw(StaticFiles(site), "/static/C:/Windows/win.ini")
    assert status == 404


async def test_double_encoded_dots_are_a_literal_name(site: Path) -> None:
    # "%252e%252e" decodes once to "%2e%2e", which is never decoded again.
    status, _, body = await call_raw(StaticFiles(site), "/static/%2e%2e")
    assert (status, body) == (200, b"a file with a literal name")
    status, _, _ = await call_raw(StaticFiles(site), "/static/%2e%2e/secret.txt")
    assert status == 404


async def test_dot_segments_inside_are_harmless(site: Path) -> None:
    status, _, body = await call_raw(StaticFiles(site), "/static/./css//./site.css")
    assert (status, body) == (200, b"body { color: red }")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
async def test_symlink_outside_is_refused(site: Path, tmp_path: Path) -> None:
    (site / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (site / "leakdir").symlink_to(tmp_path)
    app = mounted(StaticFiles(site))
    assert (await get(app, "/static/leak.txt")).status_code == 404
    assert (await get(app, "/static/leakdir/secret.txt")).status_code == 404
    assert StaticFiles(site).lookup("leak.txt") is None
    followed = mounted(StaticFiles(site, follow_symlinks=True))
    r = await get(followed, "/static/leak.txt")
    assert (r.status_code, r.text) == (200, "top secret")
    assert (await get(followed, "/static/leakdir/secret.txt")).text == "top secret"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
async def test_symlinked_index_outside_is_refused(site: Path, tmp_path: Path) -> None:
    (site / "empty-dir" / "index.html").symlink_to(tmp_path / "secret.txt")
    r = await get(mounted(StaticFiles(site, html=True)), "/static/empty-dir/")
    assert r.status_code == 404


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
async def test_symlink_inside_is_served(site: Path) -> None:
    (site / "latest.css").symlink_to(site / "css" / "site.css")
    (site / "styles").symlink_to(site / "css", target_is_directory=True)
    app = mounted(StaticFiles(site))
    r = await get(app, "/static/latest.css")
    assert (r.status_code, r.text) == (200, "body { color: red }")
    assert r.headers["content-type"] == "text/css; charset=utf-8"
    assert (await get(app, "/static/styles/site.css")).status_code == 200


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
async def test_directory_itself_may_be_a_symlink(site: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-to-public"
    link.symlink_to(site, target_is_directory=True)
    r = await get(mounted(StaticFiles(link)), "/static/css/site.css")
    assert r.status_code == 200


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
async def test_symlink_name_gives_media_type(site: Path) -> None:
    (site / "data.bin").write_text("{}")
    (site / "data.json").symlink_to(site / "data.bin")
    r = await get(mounted(StaticFiles(site)), "/static/data.json")
    assert r.headers["content-type"] == "application/json"


def test_lookup(site: Path) -> None:
    app = StaticFiles(site)
    found = app.lookup("css/site.css")
    assert found is not None
    path, st = found
    assert path == os.path.realpath(site / "css" / "site.css")
    assert st.st_size == 19
    assert app.lookup("/css/site.css") == found
    assert app.lookup("../secret.txt") is None
    assert app.lookup("docs") is None
    assert StaticFiles(site, html=True).lookup("docs") is not None


def test_check_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="check_dir=False"):
        StaticFiles(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="not a directory"):
        StaticFiles(tmp_path / "file")


async def test_directory_created_later(tmp_path: Path) -> None:
    app = mounted(StaticFiles(tmp_path / "later", check_dir=False))
    assert (await get(app, "/static/a.txt")).status_code == 404
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "a.txt").write_text("now")
    assert (await get(app, "/static/a.txt")).text == "now"


async def test_websocket_is_closed(site: Path) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await StaticFiles(site)({"type": "websocket", "path": "/x"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000}]
    await StaticFiles(site)({"type": "lifespan"}, receive, send)
    assert len(sent) == 1


def test_repr(site: Path) -> None:
    assert repr(StaticFiles(site)) == f"StaticFiles({str(site)!r}, html=False)"


# --- the examples of docs/static-files.md ---------------------------------------------------

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "static-files.md"


async def test_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRELLIS_DEBUG", "1")
    for d in ("static/css", "uploads", "dist/assets", "site", "reports", "assets", "exports"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "downloads" / "sub").mkdir(parents=True)
    (tmp_path / "static" / "css" / "site.css").write_text("body{}")
    (tmp_path / "reports" / "latest.pdf").write_bytes(b"%PDF-1.7")
    (tmp_path / "exports" / "7.csv").write_text("a,b\n")
    (tmp_path / "downloads" / "sub" / "notes.txt").write_text("notes")
    (tmp_path / "secret.txt").write_text("secret")

    blocks = re.findall(r"```python\n(.*?)```", DOCS_PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for block in blocks:
        # dont_inherit: this module's `from __future__ import annotations` must not leak in.
        exec(compile(block, str(DOCS_PAGE), "exec", dont_inherit=True), namespace)
    app = namespace["app"]
    assert callable(app)

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)

    assert (await get("/")).json() == {"stylesheet": "/static/css/site.css"}
    assert (await get("/static/css/site.css")).text == "body{}"
    r = await get("/report")
    assert r.content == b"%PDF-1.7"
    assert r.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''Rapport%20%C3%A9t%C3%A9.pdf" in r.headers["content-disposition"]
    assert (await get("/logo")).status_code == 404  # no assets/logo.png
    assert (await get("/exports/7")).headers["content-disposition"].endswith('"export-7.csv"')
    assert (await get("/exports/8")).status_code == 404
    r = await get("/download/sub/notes.txt")
    assert r.text == "notes"
    assert r.headers["content-disposition"] == 'attachment; filename="notes.txt"'
    assert (await get("/download/sub/missing.txt")).status_code == 404
    assert (await get("/download/%2e%2e/secret.txt")).status_code == 404
