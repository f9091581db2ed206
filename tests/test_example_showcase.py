"""The showcase example (the README's first command): the notes board on the full stack.

In-process tests build the app with ``create_app`` on a SQLite file per test; the main flow
also runs on PostgreSQL (``TRELLIS_TEST_POSTGRES_URL``: a database made for the test and
dropped after it) and with Redis (``TRELLIS_TEST_REDIS_URL``: a key prefix per test, deleted
after it). The server tests run the README command from an empty directory, and two server
processes sharing PostgreSQL and Redis, where a note posted to one appears live on the other.
"""

from __future__ import annotations

import asyncio
import html
import importlib.util
import os
import re
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
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import func, select

from browser_helpers import free_port, serve
from trellis import App
from trellis.contrib.auth import PasswordHasher
from trellis.contrib.mail import ConsoleEmailBackend, MemoryEmailBackend
from trellis.exceptions import ConfigurationError
from trellis.testing import TestClient

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "showcase"
MODULE_NAME = "showcase_app"
SECRET = "showcase-test-secret-" + "k" * 40
PASSWORD = "demo-password-for-tests"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
HTML = {"accept": "text/html"}
POSTGRES_ENV = "TRELLIS_TEST_POSTGRES_URL"
REDIS_ENV = "TRELLIS_TEST_REDIS_URL"


# --- loading the example ---------------------------------------------------------------------


def _forget() -> None:
    """Take the example's model off the shared ``Model`` (other tests compare its tables)."""
    from trellis.contrib.db import Model

    sys.modules.pop(MODULE_NAME, None)
    registry, metadata = Model.registry, Model.metadata
    for mapper in list(registry.mappers):
        if mapper.class_.__module__ == MODULE_NAME:
            registry._managers.pop(mapper.class_manager, None)
            registry._dispose_manager_and_mapper(mapper.class_manager)
    table = metadata.tables.get("showcase_note")
    if table is not None:
        metadata.remove(table)


@pytest.fixture(scope="module")
def showcase() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location(MODULE_NAME, EXAMPLE / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # pydantic resolves the API models through it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        _forget()


def make_app(
    showcase: ModuleType, database_url: str, *, migrate: bool = True, **options: Any
) -> App:
    """The example in production mode (as ``trellis run`` serves it), its tables made."""
    options.setdefault("secret_key", SECRET)
    options.setdefault("debug", False)
    options.setdefault("demo_password", PASSWORD)
    options.setdefault("email", MemoryEmailBackend())  # app.state.email.outbox
    app: App = showcase.create_app(database_url=database_url, hasher=FAST_HASHER, **options)
    if migrate:  # what `trellis db upgrade` does before a deployment starts
        app.state.migrations.upgrade()
    return app


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'showcase.db'}"


@pytest.fixture
def client(showcase: ModuleType, sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(showcase, sqlite_url)) as test_client:
        yield test_client


# --- what a browser does -----------------------------------------------------------------------


def csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return html.unescape(match.group(1))


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> None:
    form = client.get("/auth/login")
    response = client.post(
        "/auth/login", data={"csrf_token": csrf(form), "login": login, "password": password}
    )
    assert response.status_code == 303, response.text


def post_note(client: TestClient, text: str) -> httpx.Response:
    """Submit the home page's form."""
    page = client.get("/", headers=HTML)
    return client.post("/notes", data={"csrf_token": csrf(page), "text": text})


def note_ids(client: TestClient) -> list[int]:
    return [note["id"] for note in client.get("/api/notes").json()]


def api_token(client: TestClient, login: str) -> dict[str, str]:
    """Headers with a bearer token from ``POST /api/auth/login`` (no cookie, no CSRF)."""
    saved = httpx.Cookies(client.cookies)
    client.cookies.clear()
    try:
        response = client.post(
            "/api/auth/login", json={"login": login, "password": PASSWORD, "token": True}
        )
        assert response.status_code == 200, response.text
    finally:
        client.cookies = saved
    return {"authorization": f"Bearer {response.json()['token']}"}


# --- databases and Redis on servers ------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _pg(url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database made for this test."""
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against")
    name = f"showcase_t_{os.getpid()}_{secrets.token_hex(3)}"
    _pg(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin_url, name)
    finally:
        _pg(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: no Redis server to test against")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix for this test alone; its keys are deleted afterwards."""
    from redis.client import Redis

    prefix = f"showcase-test:{os.getpid()}:{secrets.token_hex(4)}:"
    yield prefix
    with Redis.from_url(redis_url) as raw:
        names = list(raw.scan_iter(match=prefix + "*"))
        if names:
            raw.delete(*names)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("postgres_url")
    return url


# --- development: the first start ----------------------------------------------------------


def test_first_start_in_development_migrates_and_makes_demo_data(
    showcase: ModuleType, sqlite_url: str
) -> None:
    app = showcase.create_app(database_url=sqlite_url, hasher=FAST_HASHER, debug=True)
    with TestClient(app) as client:  # no `trellis db upgrade`: debug mode migrates
        page = client.get("/", headers=HTML)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "Welcome to Trellis!" in page.text
        assert "trellis-demo" in page.text  # the demo password, in development only
        assert "set-cookie" not in page.headers  # an anonymous visit opens no session
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert 'href="/static/site.css"' in page.text
        assert "font" in client.get("/static/site.css").text
        sign_in(client, "editor@example.com", "trellis-demo")
        assert 'action="/notes/1/pin"' in client.get("/", headers=HTML).text

    again = showcase.create_app(database_url=sqlite_url, hasher=FAST_HASHER, debug=True)
    with TestClient(again) as client:  # a second start makes nothing twice
        assert len(note_ids(client)) == len(showcase.WELCOME)


def test_production_shows_no_demo_password_and_makes_accounts_only_when_told(
    showcase: ModuleType, sqlite_url: str
) -> None:
    with TestClient(make_app(showcase, sqlite_url, demo_password=None)) as client:
        page = client.get("/", headers=HTML)
        assert "Welcome to Trellis!" in page.text
        assert "demo@example.com" not in page.text
        form = client.get("/auth/login")
        refused = client.post(
            "/auth/login",
            data={"csrf_token": csrf(form), "login": "demo", "password": "trellis-demo"},
        )
        assert refused.status_code == 401  # no demo accounts in production by default


def test_two_processes_starting_together_make_the_demo_data_once(
    showcase: ModuleType, database_url: str
) -> None:
    auth = make_app(showcase, database_url).state.auth  # the tables made, nothing started

    async def start_two() -> tuple[int, int]:
        from trellis.contrib.auth import User
        from trellis.contrib.db import Database

        # Two connection pools, as two worker processes have; both find an empty board.
        databases = [Database(database_url), Database(database_url)]
        try:
            await asyncio.gather(
                *(showcase.create_demo_data(db, auth, PASSWORD) for db in databases)
            )
            async with databases[0].session() as session:
                notes = await session.scalar(select(func.count()).select_from(showcase.Note))
                users = await session.scalar(select(func.count()).select_from(User))
                return int(notes or 0), int(users or 0)
        finally:
            for db in databases:
                await db.dispose()

    notes, users = asyncio.run(start_two())
    assert notes == len(showcase.WELCOME)
    assert users == 1 + len(showcase.DEMO_ACCOUNTS)  # the notes' author and the demo accounts


# --- pages, forms, roles -----------------------------------------------------------------------


def test_signed_in_users_post_notes_with_errors_next_to_the_field(
    showcase: ModuleType, database_url: str
) -> None:
    with TestClient(make_app(showcase, database_url)) as client:
        anonymous = client.get("/", headers=HTML)
        assert 'href="/auth/login?next=/"' in anonymous.text  # no form before signing in
        assert client.post("/notes", data={"text": "hi"}).status_code == 401

        sign_in(client, "demo@example.com")
        blank = post_note(client, "   ")
        assert blank.status_code == 422
        assert 'aria-invalid="true"' in blank.text
        assert re.search(r'id="id_text_errors"[^>]*>\s*<li>This field is required.', blank.text)
        too_long = post_note(client, "x" * 501)
        assert too_long.status_code == 422
        assert "500 characters" in too_long.text

        posted = post_note(client, "<script>x</script> hi")
        assert posted.status_code == 303
        assert posted.headers["location"] == "/"
        page = client.get("/", headers=HTML).text
        assert "&lt;script&gt;x&lt;/script&gt; hi" in page
        assert "<script>x</script>" not in page
        assert "Your note is on the board." in page
        newest = client.get("/api/notes").json()[0]
        assert (newest["text"], newest["author"]) == ("<script>x</script> hi", "demo")


def test_authors_delete_their_notes_and_editors_pin_and_delete_any(
    showcase: ModuleType, sqlite_url: str
) -> None:
    with TestClient(make_app(showcase, sqlite_url)) as client:
        sign_in(client, "demo")
        post_note(client, "mine")
        mine, welcome = note_ids(client)[0], note_ids(client)[-1]
        page = client.get("/", headers=HTML)
        token = csrf(page)
        assert f'action="/notes/{mine}/delete"' in page.text
        assert f'action="/notes/{welcome}/delete"' not in page.text
        assert "/pin" not in page.text
        assert (
            client.post(f"/notes/{welcome}/delete", data={"csrf_token": token}).status_code == 403
        )
        assert client.post(f"/notes/{welcome}/pin", data={"csrf_token": token}).status_code == 403
        assert client.post(f"/notes/{mine}/delete", data={"csrf_token": token}).status_code == 303
        assert mine not in note_ids(client)

        client.cookies.clear()
        sign_in(client, "editor")
        token = csrf(client.get("/", headers=HTML))
        assert client.post(f"/notes/{welcome}/pin", data={"csrf_token": token}).status_code == 303
        assert note_ids(client)[0] == welcome  # pinned notes come first
        assert client.get("/api/notes").json()[0]["pinned"] is True
        other = note_ids(client)[1]
        assert client.post(f"/notes/{other}/delete", data={"csrf_token": token}).status_code == 303
        assert other not in note_ids(client)


def test_the_admin_is_for_editors_and_superusers(showcase: ModuleType, sqlite_url: str) -> None:
    with TestClient(make_app(showcase, sqlite_url)) as client:
        sign_in(client, "demo")
        assert client.get("/admin/showcase_note", headers=HTML).status_code == 403
        client.cookies.clear()
        sign_in(client, "editor")
        notes = client.get("/admin/showcase_note", headers=HTML)
        assert notes.status_code == 200
        assert "Welcome to Trellis!" in notes.text
        assert client.get("/admin/auth_user", headers=HTML).status_code == 404  # not registered
        client.cookies.clear()
        sign_in(client, "admin")
        assert client.get("/admin", headers=HTML).status_code == 200


# --- the JSON API ------------------------------------------------------------------------------


def test_api_document_and_docs_pages(client: TestClient) -> None:
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").json()
    validate(document)
    assert "/api/notes" in document["paths"]
    assert "/api/notes/{id}" in document["paths"]
    assert "/" not in document["paths"]  # pages are not part of the API
    note = document["components"]["schemas"]["NoteOut"]
    assert set(note["required"]) == {"id", "text", "author", "pinned", "created"}
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200
        assert "https://" not in response.text  # every asset is served by the app itself


def test_json_api_crud_and_errors(client: TestClient) -> None:
    assert client.post("/api/notes", json={"text": "anonymous"}).status_code == 401
    demo, editor = api_token(client, "demo"), api_token(client, "editor")
    created = client.post("/api/notes", json={"text": "from the API"}, headers=demo)
    assert created.status_code == 201, created.text
    note = created.json()
    assert (note["text"], note["author"], note["pinned"]) == ("from the API", "demo", False)
    assert client.get(f"/api/notes/{note['id']}").json() == note
    assert client.get("/api/notes", params={"limit": 1}).json() == [note]

    pin = {"pinned": True}
    assert client.patch(f"/api/notes/{note['id']}", json=pin, headers=demo).status_code == 403
    pinned = client.patch(f"/api/notes/{note['id']}", json=pin, headers=editor)
    assert pinned.json()["pinned"] is True
    assert client.delete(f"/api/notes/{note['id']}", headers=demo).status_code == 204
    missing = client.get(f"/api/notes/{note['id']}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    empty = client.post("/api/notes", json={"text": "  "}, headers=demo)
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["loc"] == ["body", "text"]
    bad = client.post(
        "/api/notes",
        content=b"{nope",
        headers={"content-type": "application/json", **demo},
    )
    assert bad.status_code == 400
    assert client.get("/api/notes", params={"limit": 0}).status_code == 422


# --- tasks, rate limits, the inspector ---------------------------------------------------------


def test_a_background_task_runs_after_each_new_note(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="showcase")
    posted = client.post(
        "/api/notes", json={"text": "three small words"}, headers=api_token(client, "demo")
    )
    assert posted.status_code == 201, posted.text
    app: App = client.app  # type: ignore[assignment]
    client.call(app.tasks.join)  # the in-process backend: the job ran on the app's loop
    assert f"note {posted.json()['id']} by demo: 3 words" in caplog.messages
    # the editors hear of it by e-mail, through the app's mail backend
    [notice] = app.state.email.outbox
    assert notice.to == ["editor@example.com"]
    assert notice.subject == "New note from demo"
    assert "three small words" in notice.text
    assert "The board: http://testserver/\n" in notice.text

    sign_in(client, "demo")
    assert post_note(client, "from the form").status_code == 303
    client.call(app.tasks.join)
    assert caplog.messages[-1].endswith("by demo: 3 words")
    assert len(app.state.email.outbox) == 2
    # an editor's own note e-mails nobody (the only editor is its author)
    client.post("/api/notes", json={"text": "mine"}, headers=api_token(client, "editor"))
    client.call(app.tasks.join)
    assert len(app.state.email.outbox) == 2


def test_mail_goes_where_the_settings_say(showcase: ModuleType) -> None:
    settings = showcase.ShowcaseSettings
    development = showcase.mail_backend(settings(debug=True))
    assert isinstance(development, ConsoleEmailBackend)  # printed, with the showcase's sender
    assert development.from_email == "Trellis showcase <showcase@localhost>"
    production = showcase.mail_backend(settings(debug=False, secret_key=SECRET))
    assert (production.host, production.port) == ("localhost", 25)
    smtp = showcase.mail_backend(
        settings(smtp_url="smtp://app%40example.com:p%2Fw@mail.example.com:2525")
    )
    assert (smtp.host, smtp.port, smtp.username, smtp.password) == (
        "mail.example.com",
        2525,
        "app@example.com",
        "p/w",
    )
    assert smtp.use_starttls and not smtp.use_ssl
    tls = showcase.mail_backend(settings(smtp_url="smtps://mail.example.com"))
    assert (tls.port, tls.use_ssl) == (465, True)
    with pytest.raises(ConfigurationError, match="smtp_url: give smtp://"):
        showcase.mail_backend(settings(smtp_url="mail.example.com"))


def test_password_reset_emails_go_through_the_showcase_mail(client: TestClient) -> None:
    form = client.get("/auth/password/reset")
    asked = client.post(
        "/auth/password/reset", data={"csrf_token": csrf(form), "email": "demo@example.com"}
    )
    assert asked.status_code in (200, 303), asked.text
    app: App = client.app  # type: ignore[assignment]
    [message] = app.state.email.outbox
    assert message.to == ["demo@example.com"]
    link = re.search(r"http://testserver(/auth/password/reset/\S+)", message.text)
    assert link, message.text
    page = client.get(link.group(1))
    assert page.status_code == 200 and "csrf_token" in page.text


def test_posting_is_limited_per_user_on_the_page_and_the_api(client: TestClient) -> None:
    app: App = client.app  # type: ignore[assignment]
    app.state.posting_limit.clock = lambda: 1_000_040.0  # 20 s into a minute
    demo = api_token(client, "demo")
    for n in range(19):
        created = client.post("/api/notes", json={"text": f"note {n}"}, headers=demo)
        assert created.status_code == 201, created.text
    sign_in(client, "demo")
    assert post_note(client, "the twentieth").status_code == 303  # one budget for both

    refused = post_note(client, "one too many")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "40"
    assert refused.headers["content-type"] == "text/html; charset=utf-8"
    assert 'role="alert"><li>You are posting too fast: try again in 40 s.' in refused.text
    assert "one too many</textarea>" in refused.text  # the text as typed
    api = client.post("/api/notes", json={"text": "one too many"}, headers=demo)
    assert api.status_code == 429
    assert api.headers["retry-after"] == "40"
    assert api.headers["content-type"] == "application/problem+json"
    assert "one too many" not in [note["text"] for note in client.get("/api/notes").json()]

    editor = api_token(client, "editor")  # another user has a budget of their own
    assert client.post("/api/notes", json={"text": "hi"}, headers=editor).status_code == 201
    app.state.posting_limit.clock = lambda: 1_000_080.0  # the next minute
    assert client.post("/api/notes", json={"text": "again"}, headers=demo).status_code == 201
    limited = client.get("/openapi.json").json()["paths"]["/api/notes"]["post"]["responses"]
    assert "429" in limited


def test_the_inspector_runs_in_development_only(
    showcase: ModuleType, sqlite_url: str, client: TestClient
) -> None:
    app = showcase.create_app(database_url=sqlite_url, hasher=FAST_HASHER, debug=True)
    with TestClient(app) as dev:
        page = dev.get("/", headers=HTML)
        link = page.headers["x-trellis-inspector"]
        assert f'<a href="{link}">Inspector: ' in page.text  # the toolbar
        assert "<style" not in page.text  # nothing inline: the strict CSP holds
        record = dev.get(link.replace("/_inspector/", "/_inspector/api/requests/")).json()
        assert record["path"] == "/"
        assert record["query_count"] >= 1
        assert record["templates"][0]["name"] == "home.html"
        assert dev.get("/_inspector", headers=HTML).status_code == 200

    production = client.get("/", headers=HTML)  # the `client` fixture: debug off
    assert "x-trellis-inspector" not in production.headers
    assert "Inspector:" not in production.text
    assert client.get("/_inspector", headers=HTML).status_code == 404


# --- languages, operations -------------------------------------------------------------------


def test_language_links_switch_the_pages_to_french(client: TestClient) -> None:
    english = client.get("/", headers=HTML).text
    assert '<html lang="en">' in english
    assert 'href="/fr/" hreflang="fr" lang="fr"' in english
    french = client.get("/fr/", headers=HTML)
    assert '<html lang="fr">' in french.text
    assert "Se connecter pour publier une note." in french.text  # the showcase's catalog
    assert ">Se connecter</a>" in french.text
    assert 'href="/fr/static/site.css"' in french.text
    assert client.get("/fr/static/site.css").status_code == 200
    assert "set-cookie" not in french.headers
    login = client.get("/fr/auth/login", headers=HTML).text
    assert '<html lang="fr">' in login
    assert "Mot de passe" in login  # the auth battery's own catalog
    assert 'href="/en/auth/login" hreflang="en"' in login  # the same page in English


def test_requests_are_traced_with_opentelemetry(showcase: ModuleType, sqlite_url: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(make_app(showcase, sqlite_url, tracer_provider=provider)) as client:
        [first, *_] = client.get("/api/notes").json()
        assert client.get(f"/api/notes/{first['id']}").status_code == 200
        assert client.get("/api/notes/999999").status_code == 404
        assert client.get("/healthz").status_code == 200  # a probe: no span
    spans = {
        (span.name, span.attributes["http.response.status_code"])
        for span in exporter.get_finished_spans()
    }
    assert spans == {
        ("GET /api/notes", 200),
        ("GET /api/notes/{id}", 200),
        ("GET /api/notes/{id}", 404),
    }


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}
    client.get("/api/notes")
    scrape = client.get("/metrics").text
    assert 'trellis_requests_total{method="GET",route="/api/notes",status="200"} 1.0' in scrape


# --- PostgreSQL and Redis ----------------------------------------------------------------------


def test_sessions_cache_and_live_updates_on_redis(
    showcase: ModuleType, sqlite_url: str, redis_url: str, redis_prefix: str
) -> None:
    from redis.client import Redis

    app = make_app(showcase, sqlite_url, redis_url=redis_url, redis_prefix=redis_prefix)
    with TestClient(app) as client:
        assert client.get("/readyz").json()["checks"] == {
            "database": "ok",
            "cache": "ok",
            "session_store": "ok",
        }
        sign_in(client, "demo")
        session_id = client.cookies["session"]
        assert len(session_id) == 43  # only an id: the data is in Redis
        with Redis.from_url(redis_url) as raw:
            assert raw.exists(f"{redis_prefix}session:{session_id}")
            assert list(raw.scan_iter(match=f"{redis_prefix}cache:*"))  # the sign-in counters

        async def hear_a_note() -> str:
            channels = app.state.channels
            async with channels.subscribe(showcase.LIVE) as updates:
                token = {"X-CSRF-Token": await _csrf_of(client)}
                await asyncio.get_running_loop().run_in_executor(
                    None,
                    lambda: client.post("/api/notes", json={"text": "over Redis"}, headers=token),
                )
                return str(await updates.get(timeout=10))

        message = client.call(hear_a_note)
        assert '"event":"note"' in message and "over Redis" in message


async def _csrf_of(client: TestClient) -> str:
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: client.get("/api/auth/csrf").json()["csrf_token"]
    )


# --- real servers ------------------------------------------------------------------------------


@pytest.mark.server
def test_the_readme_command_serves_a_fresh_directory(tmp_path: Path) -> None:
    """``python examples/showcase/app.py`` from an empty directory: pages, API, live events."""
    port = free_port()
    env = {**os.environ, "TRELLIS_SERVER_PORT": str(port)}
    for name in ("TRELLIS_DEBUG", "TRELLIS_DATABASE_URL", "TRELLIS_REDIS_URL"):
        env.pop(name, None)
    command = [sys.executable, str(EXAMPLE / "app.py")]
    with (
        serve(command, port=port, env=env, cwd=tmp_path, name="the showcase", ready="/") as base,
        httpx.Client(base_url=base, timeout=10) as client,
        client.stream("GET", "/events") as events,
    ):
        assert (tmp_path / "showcase.db").exists()  # SQLite, in the current directory
        home = client.get("/")
        assert "Welcome to Trellis!" in home.text
        assert home.headers["x-trellis-inspector"].startswith("/_inspector/")  # debug mode
        assert events.headers["content-type"].startswith("text/event-stream")
        login = {"login": "demo@example.com", "password": "trellis-demo", "token": True}
        token = client.post("/api/auth/login", json=login).json()["token"]
        posted = client.post(
            "/api/notes", json={"text": "live!"}, headers={"authorization": f"Bearer {token}"}
        )
        assert posted.status_code == 201, posted.text
        assert _read_until(events, "live!").startswith("event: note")


def _read_until(events: httpx.Response, text: str) -> str:
    """The lines of an event stream up to the one that holds ``text``."""
    seen = ""
    for line in events.iter_lines():
        seen += line + "\n"
        if text in line:
            return seen.strip()
    raise AssertionError(f"the stream ended before {text!r}:\n{seen}")


@contextmanager
def _server(command: list[str], env: dict[str, str], cwd: Path, port: int) -> Iterator[str]:
    """A server in a process group of its own (its workers too), killed on the way out."""
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            command,
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
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    pytest.fail("the showcase did not start:\n" + output.read().decode()[-3000:])
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
def test_a_note_posted_to_one_worker_appears_live_on_the_other(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Two server processes share PostgreSQL and Redis only, as ``--workers 2`` do."""
    env = {
        **os.environ,
        "TRELLIS_SECRET_KEY": SECRET,
        "TRELLIS_DATABASE_URL": postgres_url,
        "TRELLIS_REDIS_URL": redis_url,
        "TRELLIS_REDIS_PREFIX": redis_prefix,
        "TRELLIS_DEMO_PASSWORD": PASSWORD,
    }
    env.pop("TRELLIS_DEBUG", None)
    trellis = [sys.executable, "-m", "trellis.cli"]
    target = str(EXAMPLE / "app.py")
    upgrade = subprocess.run(
        [*trellis, "--app", target, "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    ports = free_port(), free_port()
    with (
        _server([*trellis, "run", target, "--port", str(ports[0])], env, tmp_path, ports[0]) as one,
        _server([*trellis, "run", target, "--port", str(ports[1])], env, tmp_path, ports[1]) as two,
        httpx.Client(timeout=10) as client,
        client.stream("GET", one + "/events") as events,
    ):
        login = {"login": "demo", "password": PASSWORD, "token": True}
        token = client.post(two + "/api/auth/login", json=login).json()["token"]
        posted = client.post(
            two + "/api/notes",
            json={"text": "from two"},
            headers={"authorization": f"Bearer {token}"},
        )
        assert posted.status_code == 201, posted.text
        assert '"author":"demo"' in _read_until(events, "from two")
        assert client.get(one + "/api/notes").json()[0]["text"] == "from two"
