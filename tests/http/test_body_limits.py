"""Request body limits: on by default, per app and per route, refused early, bounded memory."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from trellis import App, Request
from trellis.exceptions import ConfigurationError
from trellis.http.forms import UploadFile
from trellis.testing import TestClient
from trellis.types import Message, Scope

MiB = 1024 * 1024
DEFAULT_LIMIT = 4 * MiB


def limits_app(**options: Any) -> App:
    app = App(debug=True, **options)

    @app.post("/body")
    async def body(request: Request) -> int:
        return len(await request.body())

    @app.post("/stream")
    async def stream(request: Request) -> int:
        return sum([len(chunk) async for chunk in request.stream()])

    @app.post("/json")
    async def read_json(request: Request) -> Any:
        return await request.json()

    @app.post("/form")
    async def form(request: Request) -> dict[str, int]:
        data = await request.form()
        sizes: dict[str, int] = {}
        for key, value in data.multi_items():
            sizes[key] = value.size if isinstance(value, UploadFile) else len(value)
        return sizes

    @app.post("/ten", max_body_size=10)
    async def ten(request: Request) -> int:
        return len(await request.body())

    @app.post("/unlimited", max_body_size=None)
    async def unlimited(request: Request) -> int:
        return len(await request.body())

    @app.post("/ignored")
    async def ignored() -> str:
        return "the body was never read"

    return app


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413
    assert "limit" in problem["detail"]


# --- through the test client ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/body", "/stream"])
def test_default_limit_is_4_mib(path: str) -> None:
    with TestClient(limits_app()) as client:
        assert client.post(path, content=b"x" * DEFAULT_LIMIT).json() == DEFAULT_LIMIT
        response = client.post(path, content=b"x" * (DEFAULT_LIMIT + 1))
    assert_413(response)
    assert str(DEFAULT_LIMIT) in response.json()["detail"]


def test_app_limit() -> None:
    with TestClient(limits_app(max_body_size=100)) as client:
        assert client.post("/body", content=b"x" * 100).json() == 100
        assert_413(client.post("/body", content=b"x" * 101))
        # a route's own limit still wins over the app's
        assert client.post("/unlimited", content=b"x" * 1000).json() == 1000


def test_app_limit_with_a_unit() -> None:
    with TestClient(limits_app(max_body_size="1KiB")) as client:
        assert client.post("/body", content=b"x" * 1024).json() == 1024
        assert_413(client.post("/body", content=b"x" * 1025))


@pytest.mark.parametrize("bad", [0, -1, "lots", None])
def test_app_limit_must_be_a_positive_size(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_body_size"):
        App(debug=True, max_body_size=bad)


def test_route_limit() -> None:
    with TestClient(limits_app()) as client:
        assert client.post("/ten", content=b"x" * 10).json() == 10
        assert_413(client.post("/ten", content=b"x" * 11))


def test_route_without_limit() -> None:
    with TestClient(limits_app(max_body_size=10)) as client:
        assert client.post("/unlimited", content=b"x" * (DEFAULT_LIMIT + 10)).json() == (
            DEFAULT_LIMIT + 10
        )


def test_limit_applies_only_when_the_body_is_read() -> None:
    with TestClient(limits_app(max_body_size=10)) as client:
        response = client.post("/ignored", content=b"x" * 1000)
    assert response.status_code == 200


def test_chunked_upload_over_the_limit() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 1024

    with TestClient(limits_app(max_body_size=10_000)) as client:
        response = client.post("/body", content=chunks())
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
    assert_413(response)
    assert response.json()["detail"] == "Request body is larger than the limit of 10000 bytes"


def test_json_and_urlencoded_forms_are_limited() -> None:
    with TestClient(limits_app(max_body_size=50)) as client:
        assert client.post("/json", json=["x" * 10]).status_code == 200
        assert_413(client.post("/json", json=["x" * 60]))
        assert client.post("/form", data={"a": "x" * 10}).json() == {"a": 10}
        assert_413(client.post("/form", data={"a": "x" * 60}))


def test_multipart_uses_the_upload_limit() -> None:
    app = limits_app(max_body_size=1000, max_upload_size=5000)
    with TestClient(app) as client:
        ok = client.post("/form", files={"f": ("f.bin", b"x" * 3000)})
        assert ok.json() == {"f": 3000}
        assert_413(client.post("/form", files={"f": ("f.bin", b"x" * 6000)}))
        # body() of a multipart request is held to the upload limit as well
        assert client.post("/body", files={"f": ("f.bin", b"x" * 3000)}).status_code == 200


def test_route_limit_also_limits_uploads() -> None:
    app = App(debug=True)

    @app.post("/avatar", max_body_size=1000)
    async def avatar(request: Request) -> int:
        form = await request.form()
        upload = form["file"]
        assert isinstance(upload, UploadFile)
        return upload.size

    with TestClient(app) as client:
        assert client.post("/avatar", files={"file": ("a.png", b"x" * 500)}).json() == 500
        assert_413(client.post("/avatar", files={"file": ("a.png", b"x" * 2000)}))


def test_route_upload_limit_option() -> None:
    app = App(debug=True, max_body_size=100)

    @app.post("/upload", max_upload_size=2000)
    async def upload(request: Request) -> int:
        if request.content_type == "multipart/form-data":
            form = await request.form()
            return len(form)
        return len(await request.body())

    with TestClient(app) as client:
        assert client.post("/upload", files={"f": ("f", b"x" * 1000)}).json() == 1
        assert_413(client.post("/upload", files={"f": ("f", b"x" * 3000)}))
        # other bodies keep max_body_size
        assert_413(client.post("/upload", content=b"x" * 101))


# --- Content-Length -------------------------------------------------------------------------


@dataclass
class Driven:
    status: int | None
    body: bytes
    received: int  # how many times the app called receive()
    messages: list[Message] = field(default_factory=list)

    def problem(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


async def drive(
    app: App,
    path: str,
    headers: list[tuple[bytes, bytes]],
    chunk: bytes = b"",
    chunks: int = 1,
    endless: bool = False,
) -> Driven:
    """POST to ``app`` with ``chunks`` copies of ``chunk`` (or an endless supply)."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    calls = 0
    messages: list[Message] = []

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if endless or calls < chunks:
            return {"type": "http.request", "body": chunk, "more_body": True}
        if calls == chunks:
            return {"type": "http.request", "body": chunk, "more_body": False}
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)

    await asyncio.wait_for(app(scope, receive, send), 5)
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return Driven(start["status"] if start else None, body, calls, messages)


@pytest.mark.anyio
async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    app = limits_app()
    sent = await drive(app, "/body", [(b"content-length", str(200 * MiB).encode())], endless=True)
    assert sent.status == 413
    assert sent.received == 0  # not one byte of the body was read
    assert sent.problem()["detail"] == (
        f"Request body of {200 * MiB} bytes is larger than the limit of {DEFAULT_LIMIT}"
    )


@pytest.mark.anyio
async def test_declared_length_on_a_route_limit() -> None:
    sent = await drive(limits_app(), "/ten", [(b"content-length", b"11")], endless=True)
    assert (sent.status, sent.received) == (413, 0)


@pytest.mark.anyio
async def test_body_without_length_is_refused_as_soon_as_it_crosses_the_limit() -> None:
    # An endless chunked body: reading stops right after the limit is crossed.
    sent = await drive(limits_app(), "/body", [], chunk=b"x" * 65536, endless=True)
    assert sent.status == 413
    assert sent.received == DEFAULT_LIMIT // 65536 + 1


@pytest.mark.anyio
async def test_body_longer_than_its_declared_length_is_still_limited() -> None:
    sent = await drive(
        limits_app(), "/stream", [(b"content-length", b"10")], chunk=b"x" * 65536, endless=True
    )
    assert sent.status == 413
    assert sent.received == DEFAULT_LIMIT // 65536 + 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "values",
    [
        [b"abc"],
        [b"-1"],
        [b""],
        [b"1.5"],
        [b"+5"],
        [b" 5"],
        [b"5 "],
        [b"0x10"],
        [b"1e3"],
        [b"\xd9\xa3"],  # a non-ASCII digit
        [b"5, 5"],
        [b"3", b"4"],  # two different values
    ],
)
async def test_invalid_content_length_is_a_400(values: list[bytes]) -> None:
    headers = [(b"content-length", v) for v in values]
    sent = await drive(limits_app(), "/body", headers, chunk=b"abc")
    assert sent.status == 400
    assert "Content-Length" in sent.problem()["detail"]
    assert sent.received == 0


@pytest.mark.anyio
async def test_repeated_equal_content_length_is_accepted() -> None:
    headers = [(b"content-length", b"3"), (b"content-length", b"3")]
    sent = await drive(limits_app(), "/body", headers, chunk=b"abc")
    assert (sent.status, sent.body) == (200, b"3")


@pytest.mark.anyio
async def test_content_length_with_leading_zeros() -> None:
    sent = await drive(limits_app(), "/body", [(b"content-length", b"0003")], chunk=b"abc")
    assert (sent.status, sent.body) == (200, b"3")


@pytest.mark.anyio
@pytest.mark.parametrize("digits", [19, 30, 5000])
async def test_absurd_content_length_is_a_413_not_a_crash(digits: int) -> None:
    sent = await drive(limits_app(), "/body", [(b"content-length", b"9" * digits)], endless=True)
    assert (sent.status, sent.received) == (413, 0)


@pytest.mark.anyio
async def test_absurd_content_length_without_a_limit_is_read_as_it_comes() -> None:
    headers = [(b"content-length", b"9" * 100)]
    sent = await drive(limits_app(), "/unlimited", headers, chunk=b"abc", chunks=2)
    assert (sent.status, sent.body) == (200, b"6")


@pytest.mark.anyio
async def test_invalid_content_length_is_ignored_when_the_body_is_not_read() -> None:
    sent = await drive(limits_app(), "/ignored", [(b"content-length", b"abc")])
    assert sent.status == 200


# --- a real server: memory stays bounded ----------------------------------------------------

SERVER_APP = """
from trellis import App, Request

app = App()


@app.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@app.get("/ping")
async def ping() -> str:
    return "pong"
"""


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return _proc_status(self.process.pid, "VmRSS")

    def peak(self) -> int:
        """Highest resident memory so far, in bytes."""
        return _proc_status(self.process.pid, "VmHWM")


def _proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{key} not in /proc/{pid}/status")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One uvicorn process for the module's tests (starting one takes a few seconds)."""
    if not Path("/proc/self/status").exists():
        pytest.fail("this test reads /proc/PID/status (Linux)")
    tmp_path = tmp_path_factory.mktemp("server")
    (tmp_path / "bigapp.py").write_text(textwrap.dedent(SERVER_APP))
    # Bind here and hand the socket over: no race for a free port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env["TRELLIS_SECRET_KEY"] = "s" * 48
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bigapp:app",
            "--fd",
            str(sock.fileno()),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=tmp_path,
        env=env,
        pass_fds=[sock.fileno()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sock.close()
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/ping", timeout=1).text == "pong":
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate(timeout=5)
                pytest.fail(f"the server did not start: {err.decode(errors='replace')}")
            time.sleep(0.05)
        yield Server(url, port, process)
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.server
def test_streamed_200_mib_upload_is_refused_with_bounded_memory(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        # Warm up: the code paths of a body read and a 413 are imported and compiled.
        assert client.post("/upload", content=b"x" * 1000).json() == {"size": 1000}
        assert client.post("/upload", content=b"x" * (DEFAULT_LIMIT + 1)).status_code == 413
        before_rss, before_peak = server.rss(), server.peak()

        chunk = b"x" * MiB
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            for _ in range(200):
                sent += len(chunk)
                yield chunk

        response = client.post("/upload", content=body())
        after_rss, after_peak = server.rss(), server.peak()
        # The server is fine, and so is the connection the oversized body came on.
        assert client.get("/ping").text == "pong"

    assert_413(response)
    assert (
        response.json()["detail"]
        == f"Request body is larger than the limit of {DEFAULT_LIMIT} bytes"
    )
    growth = max(after_rss - before_rss, after_peak - before_peak)
    print(
        f"\n200 MiB chunked upload, sent {sent // MiB} MiB: RSS {before_rss / MiB:.1f} ->"
        f" {after_rss / MiB:.1f} MiB, peak {before_peak / MiB:.1f} -> {after_peak / MiB:.1f} MiB"
    )
    assert growth < 50 * MiB, f"the server grew by {growth / MiB:.1f} MiB"


@pytest.mark.server
def test_declared_200_mib_is_refused_without_sending_the_body(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Content-Length: {200 * MiB}\r\n".encode()
            + b"Content-Type: application/octet-stream\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            if not data:
                break
            head += data
        elapsed = time.monotonic() - started
    assert head.startswith(b"HTTP/1.1 413 "), head[:200]
    assert b"application/problem+json" in head
    assert elapsed < 5


@pytest.mark.server
def test_small_upload_to_the_real_server(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/upload", content=b"x" * MiB).json() == {"size": MiB}

        def body() -> Iterator[bytes]:
            for _ in range(3):
                yield b"x" * 1000

        assert client.post("/upload", content=body()).json() == {"size": 3000}


def test_too_many_headers_is_a_431_problem() -> None:
    app = App(debug=True, max_headers=20)

    @app.get("/")
    async def index(request: Request) -> str:
        return str(len(request.headers.raw))

    with TestClient(app) as client:
        assert client.get("/", headers={f"x-h{i}": "v" for i in range(5)}).status_code == 200
        response = client.get("/", headers={f"x-h{i}": "v" for i in range(40)})
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert "more than 20 headers" in response.json()["detail"]


def test_too_many_headers_is_refused_before_app_middleware() -> None:
    seen: list[str] = []

    class Spy:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["path"])
            await self.app(scope, receive, send)

    app = App(debug=True, max_headers=10)
    app.add_middleware(Spy)

    @app.get("/")
    async def index() -> str:
        return "ok"

    with TestClient(app) as client:
        assert client.get("/", headers={f"x-h{i}": "v" for i in range(30)}).status_code == 431
        assert client.get("/").status_code == 200
    assert seen == ["/"]
