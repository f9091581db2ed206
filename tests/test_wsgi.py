"""``trellis.wsgi.WSGIApp``: a Flask app mounted under /legacy, and several apps in one site."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from trellis import App, ConfigurationError
from trellis.testing import TestClient
from trellis.testing.websocket import WebSocketDenied
from trellis.wsgi import WSGIApp
from wsgi_site import make_flask, make_site

MiB = 1024 * 1024
BIG = os.urandom(3 * MiB) + b"end"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(make_site()) as client:
        yield client


# -- the Flask app under /legacy -----------------------------------------------------------


def test_flask_sees_the_mount_as_script_name_and_builds_prefixed_urls(client: TestClient) -> None:
    assert client.get("/legacy/").json() == {
        "url_for": "/legacy/?page=2",
        "external": "http://testserver/legacy/",
        "script_name": "/legacy",
        "path": "/",
    }


def test_the_bare_mount_path_reaches_flask(client: TestClient) -> None:
    response = client.get("/legacy", follow_redirects=False)
    assert response.status_code == 308  # Werkzeug's redirect to the slash, with the prefix
    assert response.headers["location"] == "http://testserver/legacy/"


def test_form_post(client: TestClient) -> None:
    response = client.post("/legacy/form?x=1", data={"name": "Ada", "tags": ["a", "b"]})
    assert response.status_code == 200
    assert response.json() == {"form": {"name": ["Ada"], "tags": ["a", "b"]}, "args": {"x": "1"}}


def test_json_post(client: TestClient) -> None:
    payload = {"n": 1, "s": "é", "list": [1, 2, None]}
    assert client.post("/legacy/json", json=payload).json() == {"got": payload}


def test_redirect_keeps_the_prefix(client: TestClient) -> None:
    response = client.get("/legacy/go", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/legacy/"
    assert client.get("/legacy/go", follow_redirects=True).json()["path"] == "/"


def test_streamed_response(client: TestClient) -> None:
    response = client.get("/legacy/stream")
    assert response.text == "first;chunk 0;chunk 1;chunk 2;"


def test_large_upload_is_read_in_chunks_fully_and_correctly(client: TestClient) -> None:
    response = client.post("/legacy/upload", content=BIG)
    assert response.json() == {
        "size": len(BIG),
        "sha256": hashlib.sha256(BIG).hexdigest(),
        "reads": len(BIG) // (64 * 1024) + 1,
    }


def test_chunked_upload_without_content_length(client: TestClient) -> None:
    def body() -> Iterator[bytes]:
        for start in range(0, len(BIG), MiB):
            yield BIG[start : start + MiB]

    # Werkzeug reads a body without Content-Length only when wsgi.input_terminated is set.
    response = client.post("/legacy/upload", content=body())
    assert response.json()["size"] == len(BIG)
    assert response.json()["sha256"] == hashlib.sha256(BIG).hexdigest()


def test_multipart_file_upload(client: TestClient) -> None:
    response = client.post(
        "/legacy/file", files={"doc": ("big.bin", BIG)}, data={"note": "three MiB"}
    )
    assert response.json() == {
        "name": "big.bin",
        "size": len(BIG),
        "sha256": hashlib.sha256(BIG).hexdigest(),
        "note": "three MiB",
    }


def test_an_exception_in_flask_is_flasks_500_and_the_site_carries_on(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get("/legacy/boom")
    assert response.status_code == 500
    assert "Internal Server Error" in response.text
    assert "the legacy app failed" in caplog.text  # logged by Flask
    assert client.get("/").text == "trellis home"
    assert client.get("/legacy/").status_code == 200


def test_flask_404_and_405_are_flasks(client: TestClient) -> None:
    assert client.get("/legacy/nope").status_code == 404
    assert client.get("/legacy/json").status_code == 405
    assert set(client.get("/legacy/json").headers["allow"].split(", ")) == {"OPTIONS", "POST"}


def test_head(client: TestClient) -> None:
    get = client.get("/legacy/")
    head = client.head("/legacy/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == "application/json"


def test_trellis_routes_beside_the_mount(client: TestClient) -> None:
    assert client.get("/").text == "trellis home"
    assert client.get("/legacy-ish").text == "trellis, not flask"  # whole segments only
    assert client.post("/echo", content=b"abc").content == b"abc"


def test_url_for_a_named_mount() -> None:
    assert make_site().url_for("legacy", path="go") == "/legacy/go"


def test_trellis_middleware_wraps_the_mount(client: TestClient) -> None:
    # The outer app's security headers and host check cover the WSGI app too.
    assert client.get("/legacy/").headers["x-content-type-options"] == "nosniff"
    assert client.get("/legacy/", headers={"host": "evil.test"}).status_code == 400


def test_requests_run_in_the_bounded_thread_pool() -> None:
    app = App(debug=True)
    app.mount("/legacy", WSGIApp(make_flask(), workers=2))
    names: list[str] = []
    with TestClient(app) as client:

        def call() -> None:
            names.append(client.get("/legacy/slow").text)

        started = time.monotonic()
        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    assert len(names) == 4
    assert len(set(names)) <= 2 and all(name.startswith("WSGI") for name in names)
    assert elapsed >= 0.55  # four 0.3 s requests on two threads: two rounds


def test_script_name_comes_from_the_mount_not_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCRIPT_NAME", "/elsewhere")
    app = App(debug=True)
    app.mount("/legacy", WSGIApp(make_flask()))
    with TestClient(app) as client:
        assert client.get("/legacy/").json()["url_for"] == "/legacy/?page=2"


def test_a_plain_wsgi_app_that_raises_reaches_the_server(client: TestClient) -> None:
    # As from any mounted ASGI app: the test client re-raises it, a server answers 500
    # (test_flask_over_a_real_server).
    with pytest.raises(ValueError, match="no start_response"):
        client.get("/raw/x")
    assert client.get("/").text == "trellis home"


def test_a_websocket_to_the_mount_is_refused(client: TestClient) -> None:
    with pytest.raises(WebSocketDenied) as denied, client.websocket_connect("/legacy/ws"):
        pass
    assert denied.value.status == 403


@pytest.mark.parametrize(("workers", "queue"), [(0, 10), (10, 0)])
def test_bad_pool_sizes(workers: int, queue: int) -> None:
    with pytest.raises(ConfigurationError, match="workers >= 1"):
        WSGIApp(make_flask(), workers=workers, send_queue_size=queue)


def test_repr() -> None:
    assert repr(WSGIApp(make_flask())) == "WSGIApp(<Flask 'legacy'>)"


def test_importing_trellis_wsgi_does_not_load_a2wsgi() -> None:
    code = (
        "import sys, trellis.wsgi; assert 'a2wsgi' not in sys.modules; "
        "from flask import Flask; trellis.wsgi.WSGIApp(Flask('x')); print('a2wsgi' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "True"


def test_a_missing_a2wsgi_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "a2wsgi", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'trellis\[wsgi\]'"):
        WSGIApp(make_flask())


# -- several apps in one site, by path and by host ------------------------------------------


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("example.com", "/blog/", {"app": "blog", "self": "/blog/", "item": "/blog/items/7"}),
        ("example.com", "/shop/items/3", {"app": "shop", "item": 3}),
        ("admin.example.com", "/", {"app": "admin", "self": "/", "item": "/items/7"}),
        ("ADMIN.example.com:8000", "/items/5", {"app": "admin", "item": 5}),
    ],
)
def test_apps_by_path_and_by_host(
    client: TestClient, host: str, path: str, expected: dict[str, object]
) -> None:
    assert client.get(path, headers={"host": host}).json() == expected


def test_other_hosts_get_the_outer_app(client: TestClient) -> None:
    assert client.get("/", headers={"host": "www.example.com"}).text == "trellis home"
    assert client.get("/items/5", headers={"host": "example.com"}).status_code == 404


def test_a_flask_app_by_host(client: TestClient) -> None:
    body = client.get("/", headers={"host": "old.example.com"}).json()
    assert body["script_name"] == ""
    assert body["external"] == "http://old.example.com/"
    assert client.get("/", headers={"host": "example.com"}).text == "trellis home"


# -- over a real server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn serving ``wsgi_site:make_site`` on a socket bound here (no race for a port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    args = [sys.executable, "-m", "uvicorn", "wsgi_site:make_site", "--factory"]
    args += ["--app-dir", str(Path(__file__).parent), "--fd", str(sock.fileno())]
    args += ["--log-level", "warning", "--no-access-log"]
    err_path = tmp_path_factory.mktemp("wsgi") / "server.err"
    with err_path.open("w") as err:
        process = subprocess.Popen(
            args, env=env, pass_fds=[sock.fileno()], stdout=subprocess.DEVNULL, stderr=err
        )
    sock.close()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/", timeout=1).text == "trellis home":
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{err_path.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.server
def test_flask_over_a_real_server(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        index = http.get("/legacy/").json()
        assert index["url_for"] == "/legacy/?page=2"
        assert index["external"].endswith("/legacy/")
        assert http.post("/legacy/form", data={"a": "1"}).json()["form"] == {"a": ["1"]}
        assert http.post("/legacy/json", json={"k": [1]}).json() == {"got": {"k": [1]}}
        assert http.get("/legacy/go", follow_redirects=True).json()["path"] == "/"
        head = http.head("/legacy/")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == http.get("/legacy/").headers["content-length"]

        upload = http.post("/legacy/upload", content=BIG).json()
        assert upload["size"] == len(BIG)
        assert upload["sha256"] == hashlib.sha256(BIG).hexdigest()
        chunked = http.post("/legacy/upload", content=iter([BIG[:MiB], BIG[MiB:]])).json()
        assert chunked["sha256"] == hashlib.sha256(BIG).hexdigest()
        file = http.post("/legacy/file", files={"doc": ("f", BIG)}, data={"note": "n"}).json()
        assert file["sha256"] == hashlib.sha256(BIG).hexdigest()

        assert http.get("/legacy/boom").status_code == 500
        assert http.get("/raw/x").status_code == 500
        assert http.get("/").text == "trellis home"
        assert http.get("/blog/items/2").json() == {"app": "blog", "item": 2}
        admin = http.get("/", headers={"host": "admin.example.com"}).json()
        assert admin["app"] == "admin"
        old = http.get("/", headers={"host": "old.example.com"}).json()
        assert old["script_name"] == ""


@pytest.mark.server
def test_a_streamed_response_reaches_the_client_before_it_ends(server: str) -> None:
    with (
        httpx.Client(base_url=server, timeout=10) as http,
        http.stream("GET", "/legacy/stream?wait=1") as response,
    ):
        chunks = response.iter_raw()
        first = next(chunks)
        assert first == b"first;"
        # The Flask generator is still waiting: release it from a second connection.
        with httpx.Client(base_url=server, timeout=10) as other:
            assert other.get("/legacy/release").text == "released"
        rest = b"".join(chunks)
    assert rest == b"chunk 0;chunk 1;chunk 2;"
    assert response.headers["transfer-encoding"] == "chunked"


def test_a_wsgi_app_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="a WSGI application"):
        WSGIApp("not an app")  # type: ignore[arg-type]
