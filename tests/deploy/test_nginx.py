"""nginx in front of Trellis: ``examples/deploy/nginx/trellis.conf`` run for real.

nginx (Debian's package) runs in the foreground with a prefix, pid file and temp folders in
the test's directory, the committed configuration included as it is but for its ports,
certificate and static folder. Behind it a real ``trellis run`` server. The test client
connects from 127.0.0.2 (Linux routes all of 127/8 to loopback), so that its address differs
from nginx's (127.0.0.1).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from deploy_helpers import ROOT, Process, free_port, server_env, trellis

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
CONFIG = ROOT / "examples" / "deploy" / "nginx" / "trellis.conf"
CLIENT = "127.0.0.2"  # the visitor
BALANCER = "127.0.0.3"  # a load balancer in front of nginx, trusted in one setup
MiB = 1024 * 1024
LIMIT = 8 * MiB  # the avatar route's max_body_size

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(NGINX is None, reason="needs Debian's nginx (apt-get install nginx)"),
]

APP = """
    import resource

    from trellis import App, Request
    from trellis.websockets import WebSocket

    app = App()
    progress = {"received": 0, "chunks": 0, "rejected": False}


    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, object]:
        return {
            "client": request.client[0] if request.client else None,
            "scheme": request.scheme,
            "host": request.host,
            "url": str(request.url),
        }


    @app.get("/progress")
    async def upload_progress() -> dict[str, object]:
        return progress


    async def receive(request: Request) -> dict[str, int]:
        progress.update(received=0, chunks=0, rejected=False)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        try:
            async for chunk in request.stream():
                progress["received"] += len(chunk)
                progress["chunks"] += 1
        except Exception:
            progress["rejected"] = True
            raise
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {
            "received": progress["received"],
            "chunks": progress["chunks"],
            "peak_growth": after - before,
        }


    @app.post("/upload", csrf=False, max_body_size=64 * 1024 * 1024)
    async def upload(request: Request) -> dict[str, int]:
        return await receive(request)


    @app.post("/avatar", csrf=False, max_body_size=LIMIT)
    async def avatar(request: Request) -> dict[str, int]:
        return await receive(request)


    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"hello": websocket.client[0], "scheme": websocket.scheme})
        async for text in websocket.iter_text():
            await websocket.send_text(text.upper())
"""


@dataclass
class Site:
    """nginx on ``https_port`` (and ``http_port``) in front of one Trellis server."""

    https_port: int
    http_port: int
    app: Process
    nginx: Process

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def client(self, source: str = CLIENT) -> httpx.Client:
        """A client connecting from ``source`` (TLS not verified: a self-signed certificate)."""
        transport = httpx.HTTPTransport(local_address=source, verify=False)
        return httpx.Client(base_url=self.url, transport=transport, timeout=30)


def render(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each key replaced, every key present exactly once (else the file moved)."""
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} is not in {CONFIG.name} exactly once"
        text = text.replace(old, new)
    return text


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def start_site(directory: Path, certificate: tuple[Path, Path], trusted: str) -> Iterator[Site]:
    (directory / "app.py").write_text(textwrap.dedent(APP).replace("LIMIT", str(LIMIT)))
    static = directory / "static"
    static.mkdir()
    (static / "site.css").write_text("body { color: teal }\n")
    app_port, https_port, http_port = free_port(), free_port(), free_port()
    env = server_env(
        TRELLIS_TRUSTED_PROXIES=trusted, TRELLIS_ALLOWED_HOSTS="shop.example.com,127.0.0.1"
    )
    command = trellis("run", "app:app", "--host", "127.0.0.1", "--port", str(app_port))
    with Process(command, cwd=directory, name="trellis", env=env) as app:
        cert, key = certificate
        site = render(
            CONFIG.read_text(),
            {
                "server 127.0.0.1:8000 ": f"server 127.0.0.1:{app_port} ",
                "    listen [::]:80;\n": "",
                "    listen [::]:443 ssl http2;\n": "",
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
                "/etc/letsencrypt/live/example.com/fullchain.pem": str(cert),
                "/etc/letsencrypt/live/example.com/privkey.pem": str(key),
                "/srv/example/static/": f"{static}/",
            },
        )
        (directory / "trellis.conf").write_text(site)
        temp = directory / "nginx-temp"
        temp.mkdir()
        # Workers run as root when the test does: they read files in the test's folder.
        user = "user root;" if os.geteuid() == 0 else ""
        (directory / "nginx.conf").write_text(
            textwrap.dedent(
                f"""
                {user}
                worker_processes 1;
                pid {directory}/nginx.pid;
                error_log {directory}/nginx-error.log info;
                events {{ worker_connections 256; }}
                http {{
                    access_log {directory}/nginx-access.log;
                    client_body_temp_path {temp}/body;
                    proxy_temp_path {temp}/proxy;
                    fastcgi_temp_path {temp}/fastcgi;
                    uwsgi_temp_path {temp}/uwsgi;
                    scgi_temp_path {temp}/scgi;
                    include {directory}/trellis.conf;
                }}
                """
            )
        )
        assert NGINX is not None
        nginx_command = [
            NGINX,
            "-p",
            str(directory),
            "-e",
            str(directory / "nginx-error.log"),
            "-c",
            str(directory / "nginx.conf"),
            "-g",
            "daemon off;",
        ]
        with Process(nginx_command, cwd=directory, name="nginx") as nginx:
            nginx.wait_listening(https_port)
            app.wait_listening(app_port)
            yield Site(https_port, http_port, app, nginx)


@pytest.fixture(scope="module")
def trusting(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[Site]:
    """nginx and the load balancer's address trusted, as the example says."""
    yield from start_site(tmp_path_factory.mktemp("trusting"), certificate, f"127.0.0.1,{BALANCER}")


@pytest.fixture(scope="module")
def distrusting(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[Site]:
    """No trusted proxies: the app believes no X-Forwarded-* header."""
    yield from start_site(tmp_path_factory.mktemp("distrusting"), certificate, "")


def test_the_app_sees_the_visitor_through_a_trusted_nginx(trusting: Site) -> None:
    with trusting.client() as client:
        seen = client.get("/whoami", headers={"host": "shop.example.com"}).json()
        # A forged X-Forwarded-For is kept in the list, but never believed.
        forged = client.get("/whoami", headers={"x-forwarded-for": "6.6.6.6"}).json()
        # A forged X-Forwarded-Proto and -Host are replaced by nginx.
        proto = client.get(
            "/whoami", headers={"x-forwarded-proto": "http", "x-forwarded-host": "evil.test"}
        ).json()
    assert seen == {
        "client": CLIENT,
        "scheme": "https",
        "host": "shop.example.com",
        "url": "https://shop.example.com/whoami",
    }
    assert forged["client"] == CLIENT
    assert proto["scheme"] == "https" and proto["host"] == "127.0.0.1"
    # A trusted hop in front of nginx (a load balancer) speaks for its visitor.
    with trusting.client(BALANCER) as balancer:
        behind = balancer.get("/whoami", headers={"x-forwarded-for": "203.0.113.7"}).json()
    assert behind["client"] == "203.0.113.7"


def test_without_trusted_proxies_forwarded_headers_are_ignored(distrusting: Site) -> None:
    with distrusting.client() as client:
        seen = client.get("/whoami", headers={"x-forwarded-for": "6.6.6.6"}).json()
    # nginx's own address and the scheme of its connection to the app.
    assert seen["client"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["url"] == "http://127.0.0.1/whoami"


def test_http_redirects_to_https_and_static_files_come_from_nginx(trusting: Site) -> None:
    with httpx.Client(timeout=30) as client:
        response = client.get(f"http://127.0.0.1:{trusting.http_port}/whoami?x=1")
    assert response.status_code == 301
    assert response.headers["location"] == "https://127.0.0.1/whoami?x=1"
    with trusting.client() as client:
        css = client.get("/static/site.css")
    assert css.status_code == 200 and css.text == "body { color: teal }\n"
    assert "GET /static/site.css" not in trusting.app.output  # never reached the app


def test_a_websocket_works_both_ways_through_nginx(trusting: Site) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    uri = f"wss://127.0.0.1:{trusting.https_port}/ws"
    with connect(uri, ssl=context, source_address=(CLIENT, 0), open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30)) == {"hello": CLIENT, "scheme": "wss"}
        for word in ("ping", "through", "nginx"):
            ws.send(word)
            assert ws.recv(timeout=30) == word.upper()


def test_a_large_upload_streams_through_nginx(trusting: Site) -> None:
    size, piece = 50 * MiB, 64 * 1024
    waited: list[float] = []

    def body() -> Iterator[bytes]:
        sent = 0
        with trusting.client() as watcher:
            while sent < size:
                yield b"x" * piece
                sent += piece
                if sent == 4 * MiB:
                    # Stop until the handler has seen data: with nginx buffering the body,
                    # it would see nothing before the end, and this would time out.
                    started = time.monotonic()
                    while watcher.get("/progress").json()["received"] < MiB:
                        assert time.monotonic() - started < 20, "the app got nothing yet"
                        time.sleep(0.02)
                    waited.append(time.monotonic() - started)

    with trusting.client() as client:
        response = client.post("/upload", content=body())
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["received"] == size
    assert result["chunks"] > 50  # in pieces, as they arrived
    assert result["peak_growth"] < 16 * MiB  # never the whole body in memory
    assert waited  # the pause happened


def test_an_upload_over_the_limit_is_refused_by_trellis_as_it_streams(trusting: Site) -> None:
    refused = threading.Event()

    def body() -> Iterator[bytes]:
        sent = 0
        with trusting.client() as watcher:
            while sent < 3 * LIMIT:
                yield b"y" * MiB
                sent += MiB
                if sent == LIMIT + 2 * MiB and not refused.is_set():
                    # Trellis refuses while the client is still sending: nginx passed the
                    # first LIMIT bytes on without waiting for the rest.
                    started = time.monotonic()
                    while not watcher.get("/progress").json()["rejected"]:
                        assert time.monotonic() - started < 20, "not refused while streaming"
                        time.sleep(0.02)
                    refused.set()

    with trusting.client() as client:
        response = client.post("/avatar", content=body())
    assert refused.is_set()
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    # Trellis's own answer, counted while reading (no Content-Length to refuse up front).
    assert response.json()["detail"] == f"Request body is larger than the limit of {LIMIT} bytes"
