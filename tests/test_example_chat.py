"""The chat example: rooms on channels, in one process and across processes through Redis.

In-process tests use the ``TestClient`` (its websockets share the app's event loop, as under
a server). With ``TRELLIS_TEST_REDIS_URL``: two app instances, each with its own Redis
connection, stand for two worker processes; and in a real browser, two pages served by two
``trellis run`` processes chat in one room.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from browser_helpers import (
    ROOT,
    artifacts,
    chromium,
    free_port,
    needs_chromium,
    needs_playwright,
    new_page,
)
from trellis.testing import TestClient
from trellis.testing.websocket import WebSocketDenied

EXAMPLE = ROOT / "examples" / "chat"
#: Production mode (debug off), as the tests' host sees it.
PRODUCTION = {"secret_key": "chat-test-" + "k" * 40, "allowed_hosts": ["testserver"]}


def load_chat() -> ModuleType:
    """Import ``examples/chat/app.py`` as the module ``chat_app``."""
    spec = importlib.util.spec_from_file_location("chat_app", EXAMPLE / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["chat_app"] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def chat() -> ModuleType:
    return load_chat()


@pytest.fixture
def client(chat: ModuleType) -> Iterator[TestClient]:
    with TestClient(chat.create_app(redis_url=None, **PRODUCTION)) as c:
        yield c


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TRELLIS_TEST_REDIS_URL")
    if not url:
        pytest.skip("TRELLIS_TEST_REDIS_URL is not set: no Redis server to test against")
    return url


@pytest.fixture
def redis_prefix() -> str:
    # Pub/sub keeps no keys: a prefix of its own is all a test needs to hear nobody else.
    return f"trellis-test:chat:{os.getpid()}:{secrets.token_hex(4)}:"


def joined(name: str, room: str = "lobby") -> dict[str, str]:
    return {"type": "joined", "room": room, "name": name}


def said(name: str, text: str, room: str = "lobby") -> dict[str, str]:
    return {"type": "message", "room": room, "name": name, "text": text}


# --- one process ---------------------------------------------------------------------------


def test_the_page_and_its_script_under_a_strict_csp(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self';")
    assert '<script src="/static/chat.js"></script>' in page.text
    assert page.text.count("<script") == 1  # nothing inline: the policy would block it
    script = client.get("/static/chat.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "new WebSocket(" in script.text


def test_a_room_hears_its_members_and_no_other_room_does(client: TestClient) -> None:
    with (
        client.websocket_connect("/ws/lobby?name=ann") as ann,
        client.websocket_connect("/ws/kitchen?name=cy") as cy,
    ):
        assert ann.receive_json() == joined("ann")  # in the room once it hears this
        assert cy.receive_json() == joined("cy", "kitchen")
        with client.websocket_connect("/ws/lobby?name=bob") as bob:
            assert bob.receive_json() == joined("bob")
            assert ann.receive_json() == joined("bob")

            ann.send_json({"text": "hi bob"})
            assert bob.receive_json() == said("ann", "hi bob")
            assert ann.receive_json() == said("ann", "hi bob")  # the sender sees its line too
            bob.send_json({"text": "hi ann <b>!</b>"})
            assert ann.receive_json() == said("bob", "hi ann <b>!</b>")
            assert bob.receive_json() == said("bob", "hi ann <b>!</b>")

        assert ann.receive_json() == {"type": "left", "room": "lobby", "name": "bob"}

        # The kitchen heard none of the lobby: the first thing after cy's own notice is its own
        # line, said after everything above.
        cy.send_json({"text": "anyone?"})
        assert cy.receive_json() == said("cy", "anyone?", "kitchen")
        ann.send_json({"text": "still here"})
        assert ann.receive_json() == said("ann", "still here")


def test_a_bad_line_is_answered_to_its_sender_only(client: TestClient) -> None:
    with (
        client.websocket_connect("/ws/lobby?name=ann") as ann,
        client.websocket_connect("/ws/lobby?name=bob") as bob,
    ):
        assert ann.receive_json() == joined("ann")
        assert ann.receive_json() == bob.receive_json() == joined("bob")
        ann.send_json({"text": ""})
        error = ann.receive_json()
        assert error["type"] == "error"
        assert [e["loc"] for e in error["errors"]] == [["text"]]
        ann.send_text("not json")
        assert ann.receive_json()["type"] == "error"
        ann.send_json({"text": "x" * 501})
        assert ann.receive_json()["errors"][0]["type"] == "string_too_long"
        # Still connected; bob heard none of it.
        ann.send_json({"text": "sorry"})
        assert bob.receive_json() == said("ann", "sorry")
        assert ann.receive_json() == said("ann", "sorry")


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/ws/lobby", ["query", "name"]),
        ("/ws/lobby?name=", ["query", "name"]),
        ("/ws/Not%20A%20Room?name=ann", ["path", "room"]),
        ("/ws/" + "r" * 33 + "?name=ann", ["path", "room"]),
    ],
)
def test_a_bad_room_or_name_refuses_the_handshake(
    client: TestClient, path: str, location: list[str]
) -> None:
    with pytest.raises(WebSocketDenied) as denied, client.websocket_connect(path):
        pass
    assert denied.value.status == 422
    assert [e["loc"] for e in denied.value.json()["errors"]] == [location]


def test_a_message_too_big_closes_the_connection(client: TestClient) -> None:
    with client.websocket_connect("/ws/lobby?name=ann") as ann:
        assert ann.receive_json() == joined("ann")
        ann.send_text("x" * 5000)
        ann.receive()  # the close
        assert ann.close_code == 1009


# --- across processes, through Redis -------------------------------------------------------


def test_two_app_instances_share_rooms_through_redis(
    chat: ModuleType, redis_url: str, redis_prefix: str
) -> None:
    """Two apps, each with its own event loop and Redis connection, as two workers have."""
    settings = {"redis_url": redis_url, "redis_prefix": redis_prefix, **PRODUCTION}
    with (
        TestClient(chat.create_app(**settings)) as one,
        TestClient(chat.create_app(**settings)) as two,
        one.websocket_connect("/ws/lobby?name=ann") as ann,
        two.websocket_connect("/ws/kitchen?name=cy") as cy,
    ):
        assert ann.receive_json() == joined("ann")
        assert cy.receive_json() == joined("cy", "kitchen")
        with two.websocket_connect("/ws/lobby?name=bob") as bob:
            assert bob.receive_json() == joined("bob")
            assert ann.receive_json() == joined("bob")  # published on two, heard on one
            ann.send_json({"text": "from one"})
            assert bob.receive_json() == said("ann", "from one")
            assert ann.receive_json() == said("ann", "from one")
            bob.send_json({"text": "from two"})
            assert ann.receive_json() == said("bob", "from two")
        assert ann.receive_json() == {"type": "left", "room": "lobby", "name": "bob"}
        cy.send_json({"text": "anyone?"})
        assert cy.receive_json() == said("cy", "anyone?", "kitchen")


@contextmanager
def trellis_run(port: int, env: dict[str, str], cwd: Path) -> Iterator[str]:
    """``trellis run examples/chat/app.py`` in a process group of its own, killed on the way out."""
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "trellis.cli", "run", str(EXAMPLE / "app.py")]
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(url + "/", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    pytest.fail("the chat did not start:\n" + output.read().decode()[-3000:])
                time.sleep(0.1)
            yield url
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass


@pytest.mark.server
@needs_chromium
@needs_playwright
def test_two_browsers_on_two_server_processes_chat_in_one_room(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    env = {
        **os.environ,
        "TRELLIS_SECRET_KEY": "chat-browser-test-" + "k" * 40,
        "TRELLIS_ALLOWED_HOSTS": "127.0.0.1",
        "TRELLIS_REDIS_URL": redis_url,
        "TRELLIS_REDIS_PREFIX": redis_prefix,
    }
    env.pop("TRELLIS_DEBUG", None)
    problems: list[str] = []

    def watch(page: Any, name: str) -> None:
        page.on("pageerror", lambda error: problems.append(f"{name}: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"{name}: console {message.type}: {message.text}")
                if message.type in ("error", "warning")
                and not message.location.get("url", "").endswith("/favicon.ico")
                else None
            ),
        )

    ports = free_port(), free_port()
    with (
        trellis_run(ports[0], env, tmp_path) as one,
        trellis_run(ports[1], env, tmp_path) as two,
        chromium() as browser,
        new_page(browser) as a,
        new_page(browser) as b,
    ):
        watch(a, "page A")
        watch(b, "page B")
        for page, url, name in ((b, two, "bob"), (a, one, "ann")):
            page.goto(url + "/")
            page.fill("#name", name)
            page.fill("#room", "lobby")
            page.click("#join button")
            page.wait_for_selector(f"#log li:text-is('{name} joined #lobby')")
        b.wait_for_selector("#log li:text-is('ann joined #lobby')")

        a.fill("#text", "hello from one <b>")
        a.press("#text", "Enter")
        b.wait_for_selector("#log li:text-is('ann: hello from one <b>')")
        assert b.locator("#log b").count() == 0  # shown as text
        b.fill("#text", "hello from two")
        b.click("#say button")
        a.wait_for_selector("#log li:text-is('bob: hello from two')")
        b.screenshot(path=str(artifacts("chat") / "page-b.png"))

        a.close()  # ann goes away: bob is told
        b.wait_for_selector("#log li:text-is('ann left #lobby')")

    assert problems == [], problems
