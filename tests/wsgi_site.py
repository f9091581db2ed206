"""A site for tests/test_wsgi.py: a Trellis app with a Flask app and other apps mounted in it.

Imported by the tests for the test client, and served by uvicorn (``wsgi_site:make_site``) for
the tests over a real server.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import flask
from werkzeug.wrappers import Response as WerkzeugResponse

from trellis import App, Request, Router
from trellis.wsgi import WSGIApp

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SECRET = "a-test-secret-key-that-is-long-enough-for-production"
HOSTS = [".example.com", "localhost", "127.0.0.1", "testserver"]


def make_flask() -> flask.Flask:
    legacy = flask.Flask("legacy")
    # Set after the first chunk of /stream is read, to prove the chunk left before the end.
    release = threading.Event()

    @legacy.get("/")
    def index() -> dict[str, str]:
        return {
            "url_for": flask.url_for("index", page=2),
            "external": flask.url_for("index", _external=True),
            "script_name": flask.request.script_root,
            "path": flask.request.path,
        }

    @legacy.post("/form")
    def form() -> dict[str, object]:
        return {"form": flask.request.form.to_dict(flat=False), "args": flask.request.args}

    @legacy.post("/json")
    def json() -> dict[str, object]:
        return {"got": flask.request.get_json()}

    @legacy.get("/go")
    def go() -> WerkzeugResponse:
        return flask.redirect(flask.url_for("index"))

    @legacy.get("/stream")
    def stream() -> flask.Response:
        wait = flask.request.args.get("wait") == "1"

        def chunks() -> Iterator[bytes]:
            yield b"first;"
            if wait and not release.wait(10):
                yield b"never released;"
            for i in range(3):
                yield f"chunk {i};".encode()

        release.clear()
        return flask.Response(chunks(), mimetype="text/plain")

    @legacy.get("/release")
    def release_stream() -> str:
        release.set()
        return "released"

    @legacy.post("/upload")
    def upload() -> dict[str, object]:
        digest = hashlib.sha256()
        size = reads = 0
        while chunk := flask.request.stream.read(64 * 1024):
            digest.update(chunk)
            size += len(chunk)
            reads += 1
        return {"size": size, "sha256": digest.hexdigest(), "reads": reads}

    @legacy.post("/file")
    def file() -> dict[str, object]:
        upload = flask.request.files["doc"]
        data = upload.read()
        return {
            "name": upload.filename,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "note": flask.request.form["note"],
        }

    @legacy.get("/boom")
    def boom() -> str:
        raise RuntimeError("the legacy app failed")

    @legacy.get("/slow")
    def slow() -> str:
        time.sleep(0.3)
        return threading.current_thread().name

    return legacy


def broken_wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A plain WSGI app that fails before it starts a response."""
    raise ValueError("no start_response")


def make_sub_app(label: str) -> App:
    """A Trellis app to mount; the outer app already checks the Host header."""
    sub = App(secret_key=SECRET, allowed_hosts=["*"])

    @sub.get("/")
    async def home(request: Request) -> dict[str, str]:
        return {
            "app": label,
            "self": request.url_for("home"),
            "item": request.url_for("item", id=7),
        }

    @sub.get("/items/{id:int}")
    async def item(id: int) -> dict[str, object]:
        return {"app": label, "item": id}

    return sub


def make_site() -> App:
    """The outer app: its own routes, Flask under /legacy, two apps by path, two by host."""
    site = App(secret_key=SECRET, allowed_hosts=HOSTS)

    @site.get("/")
    async def home() -> str:
        return "trellis home"

    @site.get("/legacy-ish")
    async def near_miss() -> str:
        return "trellis, not flask"

    @site.post("/echo")
    async def echo(request: Request) -> bytes:
        return await request.body()

    site.mount("/legacy", WSGIApp(make_flask()), name="legacy")
    site.mount("/raw", WSGIApp(broken_wsgi))
    site.mount("/blog", make_sub_app("blog"))
    site.mount("/shop", make_sub_app("shop"))

    admin = Router(host="admin.example.com", name="admin")
    admin.mount("/", make_sub_app("admin"))
    site.include(admin)

    old = Router(host="old.example.com", name="old")
    old.mount("/", WSGIApp(make_flask(), workers=2))
    site.include(old)
    return site
