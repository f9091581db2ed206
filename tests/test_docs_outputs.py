"""The docs' output, configuration and template blocks, produced or run by the real code.

Each test takes every block of the languages it checks on its page (``blocks(page, language)``,
unpacked, so that a new block fails here until a test checks it) and either

- produces the output the block shows (a log line, an error message, an HTTP stream, a
  command's usage) and compares it with the block, normalizing only what differs from run to
  run (times, request ids, ports), each said where it is done; or
- runs the configuration the block shows (``trellis.toml``, an nginx site, a probe spec, a
  browser script, a template) and checks what Trellis does with it.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import (
    chromium,
    free_port,
    needs_chromium,
    needs_playwright,
    new_page,
    serve,
    uvicorn,
)
from deploy_helpers import REDIS_SERVER, PrivateRedis, Process, server_env, trellis, wait_for
from docs_blocks import Block, blocks
from trellis import App, Request
from trellis.exceptions import ConfigurationError
from trellis.testing import TestClient


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no ``TRELLIS_*`` variable of the test run."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("TRELLIS_"):
            monkeypatch.delenv(name)
    return tmp_path


def one_line(block: Block) -> str:
    """A block that shows one line (wrapped in the docs or not) as that line."""
    return " ".join(block.code.split("\n")).strip()


# What differs from run to run in a log line, as the docs write it, and what it stands for.
_VARYING = [
    # a time: 2025-01-02 13:45:00,123 (text) or 2025-01-02T13:45:01.456Z (JSON)
    (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"),
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"),
    # the rest of a traceback in a JSON string: "Traceback (most recent call last):\n ..."
    (r'\\n \.\.\."', r'\\n.*"'),
    # a loopback address's port (the server's, or the client's)
    (r"127\.0\.0\.1:\d+", r"127\.0\.0\.1:\d+"),
]
# A request id: written in full (32 hex digits) or shortened (4 hex digits and "...").
_REQUEST_ID = re.compile(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{4}\.\.\.")


def log_pattern(shown: str, ids: dict[str, str]) -> tuple[re.Pattern[str], dict[str, str]]:
    """A pattern of the log line ``shown``, with times, ports and request ids left open.

    The same id in the docs stands for the same id in the log: ``ids`` maps the ids the docs
    show to those already seen; the second value returned names the group of each new one.
    """
    pattern, at = "", 0
    groups: dict[str, str] = {}  # ids first seen in this line -> their group
    varying = [(re.compile(shown_as), meant) for shown_as, meant in _VARYING]
    while at < len(shown):
        if found := _REQUEST_ID.match(shown, at):
            text = found.group()
            if text in ids:
                pattern += re.escape(ids[text])
            elif text in groups:
                pattern += f"(?P={groups[text]})"
            else:
                groups[text] = f"id{len(groups)}"
                pattern += f"(?P<{groups[text]}>[0-9a-f]{{32}})"
            at = found.end()
            continue
        for shown_as, meant in varying:
            if found := shown_as.match(shown, at):
                pattern += meant
                at = found.end()
                break
        else:
            pattern += re.escape(shown[at])
            at += 1
    return re.compile(pattern), groups


def find_lines(shown: list[str], log: list[str]) -> list[str]:
    """The lines of ``log`` that ``shown`` shows, in its order (the docs show a selection)."""
    ids: dict[str, str] = {}
    found: list[str] = []
    rest = iter(log)
    for line in shown:
        pattern, groups = log_pattern(line, ids)
        for actual in rest:
            if match := pattern.fullmatch(actual):
                found.append(actual)
                for shown_id, group in groups.items():
                    assert match.group(group) not in ids.values(), f"two ids the same: {line}"
                    ids[shown_id] = match.group(group)
                break
        else:
            log_text = "\n".join(log)
            pytest.fail(f"no line of the log, after {found[-1:]}, is\n{line}\nlog:\n{log_text}")
    return found


# -- api-docs.md: the pages' Content-Security-Policy -----------------------------------------


def test_api_docs_policy_is_the_one_the_pages_send() -> None:
    from trellis.openapi import APIDocs
    from trellis.openapi.docs import REDOC_CSP, SWAGGER_UI_CSP

    [policy] = blocks("api-docs.md", "text")
    shown = one_line(policy)  # wrapped at its "; " separators for the page
    app = App(debug=True)
    app.install(APIDocs())
    with TestClient(app) as client:
        swagger = client.get("/docs").headers["content-security-policy"]
        redoc = client.get("/redoc").headers["content-security-policy"]
    assert swagger == SWAGGER_UI_CSP == shown
    assert redoc == REDOC_CSP == shown + "; worker-src 'self' blob:"  # "and on the ReDoc page"


# -- config.md: trellis.toml and the error message ----------------------------------------------


def test_config_toml_is_read_from_trellis_toml_and_pyproject(workdir: Path) -> None:
    from trellis.config import load_settings

    [toml] = blocks("config.md", "toml")
    expected = {
        "debug": False,
        "allowed_hosts": ["example.com", ".example.org"],
        "trusted_proxies": ["10.0.0.0/8"],
        "max_file_size": 250 * 1024 * 1024,
        "log_format": "json",
    }
    (workdir / "trellis.toml").write_text(toml.code, encoding="utf-8")
    settings = load_settings()
    assert {name: getattr(settings, name) for name in expected} == expected

    (workdir / "trellis.toml").unlink()
    (workdir / "pyproject.toml").write_text("[tool.trellis]\n" + toml.code, encoding="utf-8")
    settings = load_settings()
    assert {name: getattr(settings, name) for name in expected} == expected


def test_config_error_message(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trellis.config import load_settings

    [message] = blocks("config.md", "text")
    # The settings the page describes: one bad environment variable, one bad file value.
    monkeypatch.setenv("TRELLIS_MAX_BODY_SIZE", "abc")
    (workdir / "trellis.toml").write_text("server_port = 99999\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    error = caught.value
    # As Python prints an uncaught exception: its qualified class name, then the message.
    printed = f"{type(error).__module__}.{type(error).__qualname__}: {error}\n"
    assert printed == message.code


# -- forms-and-uploads.md: the form limits in trellis.toml -------------------------------------


def test_form_limits_from_trellis_toml(workdir: Path) -> None:
    [toml] = blocks("forms-and-uploads.md", "toml")
    assert toml.code.startswith("# trellis.toml\n")  # the file it names
    (workdir / "trellis.toml").write_text(toml.code, encoding="utf-8")
    app = App(debug=True)

    @app.post("/form", csrf=False)
    async def form(request: Request) -> dict[str, Any]:
        data = await request.form()
        upload = data.get("file")
        return {"fields": len(data), "file": None if upload is None else upload.size}

    MiB = 1024 * 1024
    assert app.settings.max_file_size == 20 * MiB
    assert app.settings.max_form_fields == 200
    assert app.settings.form_spool_threshold == 256 * 1024
    with TestClient(app) as client:
        fields = {f"f{n}": "x" for n in range(200)}
        assert client.post("/form", data=fields).json() == {"fields": 200, "file": None}
        too_many = client.post("/form", data={**fields, "one_more": "x"})
        assert too_many.status_code == 400
        assert too_many.json()["detail"] == "too many form fields (limit 200)"
        at_limit = client.post("/form", files={"file": ("a.bin", b"x" * (20 * MiB))})
        assert at_limit.json() == {"fields": 1, "file": 20 * MiB}
        over = client.post("/form", files={"file": ("a.bin", b"x" * (20 * MiB + 1))})
        assert over.status_code == 413


# -- database.md: the start-up error -------------------------------------------------------------


def test_database_startup_error() -> None:
    from trellis.contrib.db import Database
    from trellis.testing import LifespanError

    [message] = blocks("database.md", "text")
    port = free_port()
    # Nothing listens on the port: the connection is refused, as on the page.
    app = App(debug=True)
    app.install(Database(f"postgresql://app:s3cret@127.0.0.1:{port}/app"))
    with pytest.raises(LifespanError) as caught, TestClient(app):
        pass
    # The page's database server is 10.0.0.5:5432; the test's is a free loopback port.
    shown = message.code.strip().replace("10.0.0.5", "127.0.0.1")
    shown = shown.replace("5432", str(port))
    assert str(caught.value) == shown
    assert "s3cret" not in str(caught.value)


# -- auth.md: the `trellis user` commands and the templates -------------------------------------

AUTH_APP = """
from trellis import App
from trellis.contrib.auth import Auth, PasswordHasher, requires
from trellis.contrib.db import Database

app = App(debug=True)
app.install(Database("sqlite:///app.db", check_on_startup=False))
app.install(Auth(hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)))


# The code uses articles.publish: `trellis user grant` may create it.
@app.get("/publish", dependencies=[requires("articles.publish")])
async def publish() -> str:
    return "published"
"""


def test_auth_user_commands_run_as_shown(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line of the block, run in order on a fresh database; options in [] are listed."""
    import shlex
    import sys

    import click
    from click.testing import CliRunner

    from trellis.cli import main
    from trellis.contrib.auth import Auth
    from trellis.contrib.auth.cli import user_command

    [usage] = blocks("auth.md", "text")
    (workdir / "shop.py").write_text(AUTH_APP, encoding="utf-8")
    monkeypatch.setattr(sys, "path", [str(workdir), *sys.path])
    monkeypatch.setitem(sys.modules, "shop", None)  # and no module "shop" after the test

    def trellis(*args: str, input: str | None = None) -> str:
        sys.modules.pop("shop", None)  # loaded afresh, as each command is
        result = CliRunner().invoke(main, ["--app", "shop:app", *args], input=input)
        assert result.exit_code == 0, f"trellis {' '.join(args)}:\n{result.output}"
        return result.output

    trellis("db", "init")
    trellis("db", "upgrade")
    trellis("user", "group-grant", "editors", "reports.view", "--create")  # the group exists

    user_group = user_command(Auth())  # the commands `trellis user` adds, to list options
    outputs = []
    for line in usage.code.splitlines():
        words = shlex.split(line, comments=True)
        assert words[:2] == ["trellis", "user"], line
        optional = re.findall(r"\[([^\]]*)\]", line)
        words = shlex.split(re.sub(r"\[[^\]]*\]", "", line), comments=True)
        command = user_group.get_command(click.Context(user_group), words[2])
        assert command is not None, line
        options = {opt for param in command.params for opt in param.opts}
        for choice in (alt.split()[0] for group in optional for alt in group.split("|")):
            assert choice in options, f"{choice} is not an option of {line}"
        password = "a-long-password-1\n" * 2  # asked for twice when not given
        outputs.append(trellis(*words[1:], input=password))

    created, changed, *_, shown = outputs
    assert "Password: \nRepeat for confirmation: \nCreated user ann@example.com" in created
    assert "Password: \nRepeat for confirmation: \nPassword of ann@example.com changed" in changed
    assert shown.splitlines()[0] == "ann@example.com (id 1, user name ann)"
    # After the lines: articles.publish granted directly, the group membership revoked.
    assert "  groups: -" in shown.splitlines()
    assert "  permissions: articles.publish" in shown.splitlines()


def auth_site() -> TestClient:
    """An app with the auth pages and GitHub sign-in; its templates folder is ``templates/``."""
    from trellis.contrib.auth import Auth, PasswordHasher
    from trellis.contrib.auth.oauth import GitHub
    from trellis.contrib.db import Database

    app = App(debug=True, templates_dir="templates")
    app.install(Database("sqlite://"))
    app.install(
        Auth(
            hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
            oauth=[GitHub(client_id="Iv1.0123456789abcdef", client_secret="github-secret")],
        )
    )
    return TestClient(app)


def test_auth_templates(workdir: Path) -> None:
    override, button = blocks("auth.md", "jinja")
    (workdir / "templates" / "auth").mkdir(parents=True)
    # The site's own layout, which the auth pages are to use.
    (workdir / "templates" / "base.html").write_text(
        "<!doctype html><html><head><title>{% block title %}{% endblock %} - Corner Shop</title>"
        "</head><body>\n"
        "{% for message in get_flashed_messages() %}<p>{{ message }}</p>{% endfor %}\n"
        "{% block content %}{% endblock %}\n</body></html>\n",
        encoding="utf-8",
    )
    name = "templates/auth/base.html"
    assert override.code.startswith("{# " + name + " #}\n")  # the file it names
    (workdir / name).write_text(override.code, encoding="utf-8")
    with auth_site() as client:
        page = client.get("/auth/login")
    assert page.status_code == 200
    assert "<title>Sign in - Corner Shop</title>" in page.text  # the page's title, in the layout
    assert '<form method="post" action="/auth/login">' in page.text  # the login form, inside
    assert '<main class="auth">' not in page.text  # instead of the battery's own layout

    # A login page of one's own with the button; the link carries the page's next.
    (workdir / "templates/auth/login.html").write_text(
        '{% extends "base.html" %}{% block content %}' + button.code + "{% endblock %}",
        encoding="utf-8",
    )
    with auth_site() as client:
        page = client.get("/auth/login?next=/orders?page=2")
        link = re.search(r'<a href="([^"]*)">Sign in with GitHub</a>', page.text)
        assert link is not None
        assert '<main class="auth">' not in page.text  # our page, not the battery's
        assert link[1] == "/auth/oauth/github/login?next=/orders%3Fpage%3D2"
        started = client.get(html.unescape(link[1]))
    assert started.status_code == 302
    assert started.headers["location"].startswith("https://github.com/login/oauth/authorize?")


# -- cache-and-redis.md: the log line of a Redis outage -----------------------------------------


@pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason=f"needs {REDIS_SERVER}")
def test_redis_outage_log_line(tmp_path: Path) -> None:
    from trellis.contrib.redis import RedisCache
    from trellis.logging import TextFormatter

    [shown] = blocks("cache-and-redis.md", "text")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))  # in the request: the id is known here

    handler = Collect()
    handler.setFormatter(TextFormatter())  # the text format of `trellis run`
    logger = logging.getLogger("trellis.redis")
    logger.addHandler(handler)
    try:
        with PrivateRedis(tmp_path) as redis_server:
            app = App(debug=True)
            cache = app.install(RedisCache(redis_server.url))

            @app.get("/cart")
            async def cart() -> Any:
                return await cache.get("cart", [])

            with TestClient(app) as client:
                assert client.get("/cart").status_code == 200
                redis_server.kill()  # Redis goes away while the application runs
                assert client.get("/cart").status_code == 503
    finally:
        logger.removeHandler(handler)
    # The page's Redis is at 10.0.0.5:6379; the test's, on loopback, at a port of its own.
    expected = shown.code.strip().replace("10.0.0.5:6379", f"127.0.0.1:{redis_server.port}")
    expected = expected.replace("('10.0.0.5', 6379)", f"('127.0.0.1', {redis_server.port})")
    assert find_lines([expected], lines) == lines


# -- inspector.md: the toolbar -------------------------------------------------------------------


def test_inspector_toolbar(workdir: Path) -> None:
    from sqlalchemy import text

    from trellis.contrib.db import Database, Session
    from trellis.contrib.inspector import Inspector
    from trellis.templating import render

    [toolbar] = blocks("inspector.md", "text")
    (workdir / "templates").mkdir()
    (workdir / "templates" / "page.html").write_text("<html><body>{{ n }}</body></html>")
    app = App(debug=True, templates_dir="templates")
    app.install(Database("sqlite://"))
    app.install(Inspector())

    @app.get("/")
    async def page(db: Session) -> Any:
        n = 0
        for k in range(3):  # the page's request: three queries (none the same), one template
            n += (await db.execute(text(f"select {k}"))).scalar_one()
        return render("page.html", n=n)

    with TestClient(app) as client:
        response = client.get("/")
    link = response.headers["X-Trellis-Inspector"]
    found = re.search(f'<a href="{link}">(.*?)</a>', response.text)
    assert found is not None
    shown = html.unescape(found[1])  # the toolbar is ASCII: "&middot;" for the dots
    # The time is the request's own; the page shows 12 ms.
    assert re.sub(r"^Inspector: [\d.]+ ms", "Inspector: 12 ms", shown) == toolbar.code.strip()


# -- static-files.md: static() in templates ------------------------------------------------------


def test_static_helper_in_templates(workdir: Path) -> None:
    from trellis.templating import render

    [link] = blocks("static-files.md", "jinja")
    (workdir / "static" / "css").mkdir(parents=True)
    (workdir / "static" / "css" / "site.css").write_text("body { color: teal }\n")
    (workdir / "templates").mkdir()
    (workdir / "templates" / "page.html").write_text(link.code, encoding="utf-8")
    app = App(debug=True, templates_dir="templates")
    app.static("/static", "static")

    @app.get("/")
    async def index() -> Any:
        return render("page.html")

    with TestClient(app) as client:
        page = client.get("/").text
        assert page == '<link rel="stylesheet" href="/static/css/site.css">'
        stylesheet = client.get(re.search(r'href="([^"]+)"', page)[1])  # type: ignore[index]
    assert stylesheet.status_code == 200
    assert stylesheet.text == "body { color: teal }\n"


# -- operations.md: the probes of a pod spec -----------------------------------------------------


def test_kubernetes_probes_name_the_health_endpoints() -> None:
    import yaml

    from trellis.config import load_settings
    from trellis.contrib.ops import Health

    [spec] = blocks("operations.md", "yaml")
    probes = yaml.safe_load(spec.code)
    liveness, readiness = probes["livenessProbe"], probes["readinessProbe"]
    # The port the probes knock on is the server's default.
    port = load_settings(env_file=None, toml_file=None).server_port
    assert liveness["httpGet"]["port"] == readiness["httpGet"]["port"] == port

    healthy = True

    async def database() -> bool:
        return healthy

    health = Health(checks=[database])  # the default paths and timeout
    app = App(debug=True)
    app.install(health)
    with TestClient(app) as client:
        assert client.get(liveness["httpGet"]["path"]).status_code == 200
        assert client.get(readiness["httpGet"]["path"]).status_code == 200
        healthy = False
        assert client.get(liveness["httpGet"]["path"]).status_code == 200  # still alive
        assert client.get(readiness["httpGet"]["path"]).status_code == 503  # not ready
    # The probe waits longer than Health's checks take at most, so it sees the 503.
    assert readiness["timeoutSeconds"] > health.timeout


# -- sse.md: the stream the page's example sends -------------------------------------------------


def sse_app() -> App:
    """The app of the page's first example."""
    [first, *_] = blocks("sse.md", "python")
    namespace: dict[str, Any] = {"__name__": "sse_example"}
    exec(compile(first.code, first.id, "exec", dont_inherit=True), namespace)
    app: App = namespace["app"]
    return app


def test_sse_stream_as_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    [stream] = blocks("sse.md", "text")
    shown = stream.code
    assert shown.endswith("\n...\n")  # the rest of the stream left out
    monkeypatch.setenv("TRELLIS_DEBUG", "1")
    with TestClient(sse_app()) as client:
        sent = client.get("/events").text
    assert sent.replace("\r\n", "\n").startswith(shown.removesuffix("...\n"))
    assert sent.endswith("event: end\ndata: done\n\n")


# -- logging.md: what `trellis run` writes, in both formats ---------------------------------------

LOGGING_APP = """
import logging
from typing import Annotated

from sqlalchemy import text

from trellis import App, BackgroundTasks, Depends
from trellis.contrib.db import Database, Session

log = logging.getLogger("web")
app = App()
app.install(Database("sqlite://"))


@app.get("/")
async def index() -> str:
    return "ok"


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("the handler crashed")


def dependency() -> str:
    log.info("dependency")
    return "dep"


def after_the_response() -> None:
    log.info("background task")


@app.get("/work")
async def work(
    db: Session, tasks: BackgroundTasks, dep: Annotated[str, Depends(dependency)]
) -> int:
    answer = (await db.execute(text("select 41 + 1"))).scalar_one()
    log.info("handler")
    tasks.add_task(after_the_response)
    return int(answer)
"""


def server_log(directory: Path, log_format: str) -> list[str]:
    """The lines `trellis run` writes (both streams) for GET /, GET /boom and GET /work."""
    import httpx

    (directory / "web.py").write_text(LOGGING_APP, encoding="utf-8")
    port = free_port()
    command = trellis("run", "web:app", "--port", str(port), "--log-format", log_format)
    # The SQL of the database battery is logged when database_echo is on.
    env = server_env(TRELLIS_DATABASE_ECHO="1")
    with Process(command, cwd=directory, name=f"trellis-{log_format}", env=env) as server:
        server.wait_listening(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            assert client.get("/").status_code == 200
            assert client.get("/boom").status_code == 500
            assert client.get("/work").json() == 42
        wait_for(lambda: "background task" in server.output, "the background task's line")
    return server.output.splitlines()


@pytest.mark.server
def test_logging_formats_as_a_server_writes_them(tmp_path: Path) -> None:
    [text] = blocks("logging.md", "text")
    formats, request_ids = blocks("logging.md", "json")

    # The docs leave out the rest of the traceback ("  ..."), and lines between those shown.
    shown = [line for line in text.code.splitlines() if line.strip() != "..."]
    (tmp_path / "text").mkdir()
    log = server_log(tmp_path / "text", "text")
    found = find_lines(shown, log)
    assert log[log.index(found[-2]) + 1] == found[-1]  # the traceback follows its line

    (tmp_path / "json").mkdir()
    log = server_log(tmp_path / "json", "json")
    assert all(isinstance(json.loads(line), dict) for line in log)  # every line one object
    find_lines(formats.code.splitlines(), log)
    # Every line of GET /work, whoever logged it, carries the request's id.
    found = find_lines(request_ids.code.splitlines(), log)
    request_id = json.loads(found[0])["request_id"]
    assert [line for line in log if request_id in line][-1] == found[-1]


# -- server.md: the nginx site for the Unix socket -----------------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
NGINX_APP = """
from trellis import App, Request
from trellis.websockets import WebSocket

app = App()


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, object]:
    client = request.client[0] if request.client else None
    return {"client": client, "scheme": request.scheme, "url": str(request.url)}


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"client": websocket.client[0], "scheme": websocket.scheme})
"""


@pytest.mark.server
@pytest.mark.skipif(NGINX is None, reason="needs Debian's nginx (apt-get install nginx)")
def test_nginx_site_for_the_unix_socket(tmp_path: Path) -> None:
    import ssl
    import subprocess

    import httpx
    from websockets.sync.client import connect

    [site] = blocks("server.md", "nginx")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=example.com", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    socket_path, port = tmp_path / "web.sock", free_port()
    # The site as the page writes it, but for where the socket, the port and the certificate are.
    config = site.code
    for old, new in {
        "unix:/run/myproject/web.sock;": f"unix:{socket_path};",
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "/etc/letsencrypt/live/example.com/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/example.com/privkey.pem": str(key),
    }.items():
        assert config.count(old) == 1, f"{old} is not in the site once"
        config = config.replace(old, new)
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    user = "user root;" if os.geteuid() == 0 else ""  # workers read files in the test's folder
    (tmp_path / "nginx.conf").write_text(
        f"{user}\nworker_processes 1;\npid {tmp_path}/nginx.pid;\n"
        "events { worker_connections 64; }\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {temp}/body;\n"
        f"proxy_temp_path {temp}/proxy;\nfastcgi_temp_path {temp}/fastcgi;\n"
        f"uwsgi_temp_path {temp}/uwsgi;\nscgi_temp_path {temp}/scgi;\n{config}}}\n",
        encoding="utf-8",
    )
    (tmp_path / "app.py").write_text(NGINX_APP, encoding="utf-8")
    # As the page says: the socket's only peer is nginx, trusted with "*".
    env = server_env(TRELLIS_TRUSTED_PROXIES="*", TRELLIS_ALLOWED_HOSTS="example.com,127.0.0.1")
    nginx_command = [NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "nginx-error.log")]
    nginx_command += ["-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"]
    app_command = trellis("run", "app:app", "--uds", str(socket_path))

    def nginx_errors() -> str:
        return (tmp_path / "nginx-error.log").read_text(errors="replace")

    with (
        Process(app_command, cwd=tmp_path, name="app", env=env),
        Process(nginx_command, cwd=tmp_path, name="nginx") as nginx,
    ):
        nginx.wait_listening(port)
        wait_for(socket_path.exists, "the application's socket")

        def app_listens() -> bool:
            # The socket file exists from bind(); connections are refused until listen().
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(socket_path))
                except OSError:
                    return False
            return True

        wait_for(app_listens, "the application listening on its socket")
        visitor = "127.0.0.2"  # not nginx's own address
        transport = httpx.HTTPTransport(local_address=visitor, verify=False)
        with httpx.Client(transport=transport, timeout=20) as client:
            url = f"https://127.0.0.1:{port}/whoami"
            answer = client.get(url, headers={"host": "example.com"})
            assert answer.status_code == 200, (answer, answer.text, nginx_errors())
            seen = answer.json()
            forged = client.get(
                url, headers={"host": "example.com", "x-forwarded-for": "6.6.6.6"}
            ).json()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with connect(
            f"wss://127.0.0.1:{port}/ws",
            ssl=context,
            source_address=(visitor, 0),
            open_timeout=20,
        ) as websocket:
            greeting = json.loads(websocket.recv(timeout=20))
    assert seen == {"client": visitor, "scheme": "https", "url": "https://example.com/whoami"}
    assert forged["client"] == visitor  # the forged address never reached the application
    assert greeting == {"client": visitor, "scheme": "wss"}


# -- sse.md: the browser side, in Chromium -------------------------------------------------------

SSE_PAGE = """

from trellis.http.response import HTMLResponse, Response


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse('<!doctype html><title>Count</title><script src="/count.js"></script>')


@app.get("/count.js")
async def script() -> Response:
    return Response(SCRIPT, media_type="text/javascript")
"""


@pytest.mark.server
@needs_chromium
@needs_playwright
def test_sse_event_source_in_a_browser(tmp_path: Path) -> None:
    [first, *_] = blocks("sse.md", "python")
    [script] = blocks("sse.md", "js")
    # The page's app, with a page that runs the page's script.
    app_code = first.code + SSE_PAGE.replace("SCRIPT", repr(script.code))
    (tmp_path / "app.py").write_text(app_code, encoding="utf-8")
    port = free_port()
    env = {**os.environ, "TRELLIS_DEBUG": "1"}
    command = uvicorn(port, "app:app", tmp_path)
    logged: list[str] = []
    streams: list[str] = []
    with (
        serve(command, port=port, env=env, cwd=tmp_path, name="sse app", ready="/") as url,
        chromium() as browser,
        new_page(browser) as page,
    ):
        # console.log lines only (not the browser's own, such as a missing favicon)
        page.on("console", lambda m: logged.append(m.text) if m.type == "log" else None)
        page.on("request", lambda request: streams.append(request.url))
        page.goto(url + "/")
        page.wait_for_function("typeof source === 'object' && source.readyState === 2")
        closed = page.evaluate("source.readyState")
    assert logged == ["1", "2", "3"]  # each "count" event's n, in order
    assert closed == 2  # EventSource.CLOSED: closed on "end", so it does not reconnect
    assert streams.count(url + "/events") == 1
