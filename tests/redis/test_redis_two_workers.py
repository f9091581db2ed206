"""Two worker processes of one ``trellis run --workers 2`` server, sharing one Redis.

Every response names the worker that made it (``X-Worker``: its pid). The kernel spreads new
connections over the workers, so each check opens new connections until the worker it needs
answers: a websocket on one worker hears what a request on the other published, a session
begun on one is read on the other, and a rate limit counts the requests of both.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from deploy_helpers import Process, free_port, server_env, trellis

pytestmark = pytest.mark.server

LIMIT = 5
ATTEMPTS = 200  # new connections tried before giving up on reaching the other worker

APP = """
    import os

    from trellis import App, Request
    from trellis.channels import Channels
    from trellis.contrib.redis import RedisCache, RedisChannels, RedisSessionStore
    from trellis.ratelimit import RateLimit
    from trellis.websockets import WebSocket

    URL, PREFIX = os.environ["WORKERS_REDIS_URL"], os.environ["WORKERS_PREFIX"]
    PID = str(os.getpid()).encode()

    app = App()
    app.install(RedisCache(URL, prefix=PREFIX + "cache:"))
    app.install(RedisSessionStore(URL, prefix=PREFIX + "session:"))
    channels = app.install(Channels(RedisChannels(URL, prefix=PREFIX + "channels:")))


    def name_the_worker(inner):
        async def app(scope, receive, send):
            async def send_named(message):
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), (b"x-worker", PID)]
                await send(message)

            await inner(scope, receive, send_named)

        return app


    app.add_middleware(name_the_worker)


    @app.get("/pid")
    async def pid() -> dict[str, int]:
        return {"pid": os.getpid()}


    @app.post("/publish", csrf=False)
    async def publish(request: Request) -> dict[str, int]:
        await channels.publish("news", {"from": os.getpid(), "text": await request.json()})
        return {"pid": os.getpid()}


    @app.post("/login", csrf=False)
    async def login(request: Request) -> dict[str, int]:
        request.session["user"] = "ada"
        request.session["begun_by"] = os.getpid()
        return {"pid": os.getpid()}


    @app.get("/me")
    async def me(request: Request) -> dict[str, object]:
        return {"user": request.session.get("user"), "begun_by": request.session.get("begun_by")}


    @app.get("/limited", dependencies=[RateLimit("LIMIT/hour", name="shared")])
    async def limited() -> str:
        return "ok"


    @app.websocket("/ws")
    async def news(websocket: WebSocket) -> None:
        await websocket.accept()
        await channels.join("news", websocket)
        await websocket.send_json({"pid": os.getpid()})
        async for _ in websocket.iter_text():
            pass
"""


def worker(response: httpx.Response) -> int:
    return int(response.headers["x-worker"])


def fresh(url: str, method: str, path: str, **options: object) -> httpx.Response:
    """One request on a new connection (so the kernel may give it to either worker)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.request(method, path, **options)  # type: ignore[arg-type]


def until(
    url: str, method: str, path: str, wanted: Callable[[httpx.Response], bool], **options: object
) -> httpx.Response:
    """Send the request on new connections until a response is ``wanted``."""
    for _ in range(ATTEMPTS):
        response = fresh(url, method, path, **options)
        if wanted(response):
            return response
    pytest.fail(f"{method} {path}: no wanted answer in {ATTEMPTS} new connections")


@pytest.fixture
def server(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[tuple[str, set[int]]]:
    """The server's URL and the pids of its two workers (each has answered)."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP).replace("LIMIT", str(LIMIT)))
    port = free_port()
    env = server_env(WORKERS_REDIS_URL=redis_url, WORKERS_PREFIX=prefix)
    command = trellis("run", "app:app", "--port", str(port), "--workers", "2")
    with Process(command, cwd=tmp_path, name="trellis", env=env) as process:
        process.wait_listening(port)
        url = f"http://127.0.0.1:{port}"
        pids: set[int] = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2:
            assert time.monotonic() < deadline, f"saw only workers {pids}:\n{process.output}"
            try:
                pids.add(worker(fresh(url, "GET", "/pid")))
            except httpx.TransportError:
                time.sleep(0.05)  # a worker still starting
        yield url, pids


def test_a_message_published_on_one_worker_reaches_a_websocket_on_the_other(
    server: tuple[str, set[int]],
) -> None:
    url, _ = server
    with connect(url.replace("http", "ws") + "/ws", open_timeout=30) as ws:
        listener = json.loads(ws.recv(timeout=30))["pid"]
        response = until(url, "POST", "/publish", lambda r: worker(r) != listener, json="hi")
        publisher = worker(response)
        # Messages of publishes the same worker handled on the way may come first.
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message["from"] == publisher:
                break
    assert message == {"from": publisher, "text": "hi"}
    assert publisher != listener


def test_a_session_begun_on_one_worker_is_read_on_the_other(
    server: tuple[str, set[int]],
) -> None:
    url, _ = server
    login = fresh(url, "POST", "/login")
    cookie = {"cookie": f"session={login.cookies['session']}"}
    other = until(url, "GET", "/me", lambda r: worker(r) != worker(login), headers=cookie)
    assert other.json() == {"user": "ada", "begun_by": worker(login)}


def test_a_rate_limit_counts_the_requests_of_both_workers(
    server: tuple[str, set[int]],
) -> None:
    url, pids = server
    served: list[int] = []
    refused: set[int] = set()
    for _ in range(ATTEMPTS):
        response = fresh(url, "GET", "/limited")
        if response.status_code == 200:
            served.append(worker(response))
        else:
            assert response.status_code == 429, response.text
            assert len(served) == LIMIT  # the first refusal is the (LIMIT + 1)th request
            refused.add(worker(response))
            if refused == pids:
                break
    # Both workers refused once the budget was spent, whoever spent it.
    assert refused == pids
    assert len(served) == LIMIT
