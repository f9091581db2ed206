"""The tutorial's app at every step (examples/tutorial/stepN), run the way the tutorial says.

Each step is served for real (``python app.py``, or ``start.sh`` for the deployment) and
checked over HTTP; the migrations are applied and checked with ``trellis db``; the tests
the tutorial writes are run with pytest. docs/tutorial/ includes these very files.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from browser_helpers import free_port

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial"
BIN = Path(sys.executable).parent
SECRET = "a-long-random-production-secret-key-0123456789"
pytestmark = pytest.mark.server


def _env(**extra: str) -> dict[str, str]:
    # No TRELLIS_* of the caller leaks in; the venv's `trellis` comes first on PATH.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ in examples/
    env.update(extra)
    return env


@contextmanager
def _serve(
    command: Sequence[str], step: str, env: Mapping[str, str], ready: str = "/", timeout: float = 40
) -> Iterator[str]:
    """Run ``command`` in ``step``'s folder until ``ready`` answers; yield the server's URL."""
    port = env["TRELLIS_SERVER_PORT"]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        # A session of its own: the whole group (workers too) is stopped at the end.
        proc = subprocess.Popen(
            list(command),
            cwd=TUTORIAL / step,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(url + ready, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    pytest.fail(f"{step} did not start:\n" + output.read().decode()[-3000:])
                time.sleep(0.1)
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _trellis(step: str, env: Mapping[str, str], *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [str(BIN / "trellis"), *args],
        cwd=TUTORIAL / step,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


def _dev_env(tmp_path: Path) -> dict[str, str]:
    return _env(
        TRELLIS_SERVER_PORT=str(free_port()),
        TRELLIS_DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
    )


def _sign_up(client: httpx.Client, username: str) -> None:
    page = client.get("/auth/register").text
    password = "a long enough password"
    response = client.post(
        "/auth/register",
        data={
            "email": f"{username}@example.com",
            "username": username,
            "password": password,
            "password2": password,
            "csrf_token": _csrf(page),
        },
    )
    assert response.status_code == 303, response.text


def _write_note(client: httpx.Client, title: str) -> httpx.Response:
    page = client.get("/new").text
    return client.post("/new", data={"title": title, "csrf_token": _csrf(page)})


def test_step1_the_single_file_app(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    with _serve([sys.executable, "app.py"], "step1", env) as url:
        response = httpx.get(url)
        assert response.text == "Hello, notes!"
        assert response.headers["content-type"].startswith("text/plain")


def test_step2_routes_and_typed_parameters(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    with (
        _serve([sys.executable, "app.py"], "step2", env) as url,
        httpx.Client(base_url=url) as client,
    ):
        created = client.post("/notes", json={"title": "Milk", "body": "two litres"})
        assert created.status_code == 201
        assert created.json() == {"title": "Milk", "body": "two litres", "id": 1}
        client.post("/notes", json={"title": "Bread"})
        assert [n["title"] for n in client.get("/notes?limit=1").json()] == ["Bread"]
        assert client.get("/notes/1").json()["title"] == "Milk"
        assert client.get("/notes/7").status_code == 404
        assert client.get("/notes?limit=0").status_code == 422
        assert client.post("/notes", json={"title": ""}).status_code == 422


def test_step3_templates_and_a_form(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    with (
        _serve([sys.executable, "app.py"], "step3", env) as url,
        httpx.Client(base_url=url) as client,
    ):
        assert "No notes yet." in client.get("/").text
        saved = _write_note(client, "<script>x</script>")
        assert saved.status_code == 303
        assert saved.headers["location"] == "/"
        assert "&lt;script&gt;x&lt;/script&gt;" in client.get("/").text
        wrong = _write_note(client, "")
        assert wrong.status_code == 422
        assert "This field is required." in wrong.text
        # without the CSRF token, nothing is written
        assert client.post("/new", data={"title": "forged"}).status_code == 403
        assert [n["title"] for n in client.get("/notes").json()] == ["<script>x</script>"]


def test_step4_the_database(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    assert "applied" in _trellis("step4", env, "db", "upgrade")
    assert "agree" in _trellis("step4", env, "db", "check")
    with _serve([sys.executable, "app.py"], "step4", env) as url, httpx.Client(base_url=url) as c:
        assert _write_note(c, "Kept").status_code == 303
        assert c.get("/notes/1").json()["title"] == "Kept"
    # a new process, the same database: the note is still there
    with _serve([sys.executable, "app.py"], "step4", env) as url:
        assert "<strong>Kept</strong>" in httpx.get(url).text


def test_step5_users_and_login(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    upgraded = _trellis("step5", env, "db", "upgrade")
    assert "trellis_auth" in upgraded
    assert "note authors" in upgraded
    _trellis("step5", env, "db", "check")
    with _serve([sys.executable, "app.py"], "step5", env) as url, httpx.Client(base_url=url) as c:
        browser = c.get("/new", headers={"Accept": "text/html"})
        assert browser.status_code == 303
        assert browser.headers["location"] == "/auth/login?next=%2Fnew"
        assert c.post("/notes", json={"title": "anonymous"}).status_code == 401
        _sign_up(c, "ann")
        assert _write_note(c, "Mine").status_code == 303
        assert "(by ann)" in c.get("/").text
        assert c.get("/notes").json()[0]["author_id"] == 1


def test_step6_the_admin(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    assert "trellis_admin" in _trellis("step6", env, "db", "upgrade")
    _trellis("step6", env, "db", "check")
    password = "a long enough password"
    created = _trellis(
        "step6",
        env,
        "user",
        "create",
        "admin@example.com",
        "--username",
        "admin",
        "--superuser",
        stdin=f"{password}\n{password}\n",
    )
    assert "Created superuser" in created
    with _serve([sys.executable, "app.py"], "step6", env) as url, httpx.Client(base_url=url) as c:
        _sign_up(c, "ann")
        _write_note(c, "Seen by the admin")
        assert c.get("/admin").status_code == 403  # ann is no staff
        c.cookies.clear()
        page = c.get("/auth/login").text
        login = {"login": "admin", "password": password, "csrf_token": _csrf(page)}
        assert c.post("/auth/login", data=login).status_code == 303
        assert "/admin/notes_note" in c.get("/admin").text
        listing = c.get("/admin/notes_note")
        assert listing.status_code == 200
        assert "Seen by the admin" in listing.text


def test_step7_the_tests_pass() -> None:
    for step in ("step7", "step8"):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q"],
            cwd=TUTORIAL / step,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "4 passed" in result.stdout


def test_step8_deployment(tmp_path: Path) -> None:
    env = _env(
        TRELLIS_SERVER_PORT=str(free_port()),
        TRELLIS_DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        TRELLIS_SECRET_KEY=SECRET,
        # 127.0.0.1 too: the test talks to the server directly, without the proxy
        TRELLIS_ALLOWED_HOSTS="notes.example.com,127.0.0.1",
    )
    server = _serve(["sh", "start.sh"], "step8", env, ready="/auth/login", timeout=60)
    with server as url, httpx.Client(base_url=url) as c:
        home = c.get("/")
        assert home.status_code == 200
        assert home.headers["content-security-policy"].startswith("default-src 'self'")
        assert home.headers["x-frame-options"] == "DENY"
        assert c.get("/", headers={"Host": "evil.example"}).status_code == 400
        _sign_up(c, "ann")
        assert _write_note(c, "In production").status_code == 303
        assert "(by ann)" in c.get("/").text
        # production errors show no traceback
        assert "Traceback" not in c.get("/notes/x").text

    # start.sh refuses unsafe settings: no secret key, no start
    unsafe = {k: v for k, v in env.items() if k != "TRELLIS_SECRET_KEY"}
    result = subprocess.run(
        ["sh", "start.sh"],
        cwd=TUTORIAL / "step8",
        env=unsafe,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_the_pages_show_the_tested_files() -> None:
    # Code on the tutorial's pages is included from examples/tutorial (the files tested
    # above), never copied; only shell commands and folder trees are written in the page.
    pages = sorted((TUTORIAL.parents[1] / "docs" / "tutorial").glob("*.md"))
    assert len(pages) == 8
    included = set()
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for language, code in re.findall(r"^```(\w+)[^\n]*\n(.*?)^```$", text, re.M | re.S):
            if language in ("sh", "text"):
                continue
            match = re.fullmatch(r'--8<-- "(examples/tutorial/[^"]+)"\n', code)
            assert match is not None, (page.name, code)
            assert (TUTORIAL.parents[1] / match.group(1)).is_file(), match.group(1)
            included.add(match.group(1).split("/")[2])
    assert included == {f"step{n}" for n in range(1, 9)}
