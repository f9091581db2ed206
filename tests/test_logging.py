from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest

from browser_helpers import free_port
from trellis import App, BackgroundTasks, Depends, Request
from trellis.logging import JSONFormatter, TextFormatter, configure_logging, request_id_of
from trellis.middleware.request_id import RequestIDLogFilter, request_id_var
from trellis.testing import TestClient
from trellis.websockets import WebSocket


def make_record(
    msg: str = "hello %s",
    args: Any = ("world",),
    *,
    name: str = "trellis",
    level: int = logging.INFO,
    exc_info: Any = None,
    **extra: Any,
) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 10, msg, args, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def as_json(record: logging.LogRecord) -> dict[str, Any]:
    line = JSONFormatter().format(record)
    assert "\n" not in line
    data: dict[str, Any] = json.loads(line)
    return data


def raised() -> Any:
    try:
        raise ValueError("the database is on fire")
    except ValueError:
        return sys.exc_info()


# -- JSON -----------------------------------------------------------------------------------


def test_json_has_the_expected_keys() -> None:
    data = as_json(make_record())
    assert data["level"] == "INFO"
    assert data["logger"] == "trellis"
    assert data["message"] == "hello world"
    assert data["request_id"] is None
    assert "exception" not in data
    # ISO 8601 in UTC, with milliseconds.
    assert data["time"].endswith("Z")
    assert len(data["time"]) == len("2025-01-02T13:45:00.123Z")


def test_json_request_id_from_the_record() -> None:
    data = as_json(make_record(name="trellis.error", request_id="abc123"))
    assert data["request_id"] == "abc123"


def test_json_request_id_from_the_context() -> None:
    token = request_id_var.set("from-context")
    try:
        data = as_json(make_record())
    finally:
        request_id_var.reset(token)
    assert data["request_id"] == "from-context"


def test_record_attribute_wins_over_the_context() -> None:
    token = request_id_var.set("from-context")
    try:
        assert request_id_of(make_record(request_id="explicit")) == "explicit"
    finally:
        request_id_var.reset(token)


def test_request_id_filter_placeholder_means_no_id() -> None:
    record = make_record()
    RequestIDLogFilter().filter(record)  # sets "-" outside a request
    assert as_json(record)["request_id"] is None


def test_json_exception_text() -> None:
    data = as_json(make_record("boom", None, level=logging.ERROR, exc_info=raised()))
    assert data["level"] == "ERROR"
    assert "Traceback (most recent call last)" in data["exception"]
    assert "ValueError: the database is on fire" in data["exception"]


def test_json_stack_info() -> None:
    record = make_record()
    record.stack_info = "Stack (most recent call last):\n  here"
    assert "here" in as_json(record)["stack"]


def test_json_uvicorn_access_fields() -> None:
    record = make_record(
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/items?page=2", "1.1", 200),
        name="uvicorn.access",
    )
    data = as_json(record)
    assert data["message"] == '127.0.0.1:5000 - "GET /items?page=2 HTTP/1.1" 200'
    assert data["client"] == "127.0.0.1:5000"
    assert data["method"] == "GET"
    assert data["path"] == "/items?page=2"
    assert data["http_version"] == "1.1"
    assert data["status"] == 200


def test_json_includes_extra_values_and_strs_the_rest() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    data = as_json(make_record(user_id=7, thing=Opaque(), huge=2**70, color_message="x"))
    assert data["user_id"] == 7
    assert data["thing"] == "opaque!"
    assert data["huge"] == 2**70
    assert "color_message" not in data


def test_json_extra_cannot_replace_core_keys() -> None:
    data = as_json(make_record(logger="spoofed"))
    # "logger" is not a LogRecord attribute, so it comes from extra but loses to the real one.
    assert data["logger"] == "trellis"


# -- text -----------------------------------------------------------------------------------


def test_text_line() -> None:
    line = TextFormatter().format(make_record(name="trellis.error", level=logging.WARNING))
    assert line.endswith(" WARNING  trellis.error: hello world")


def test_text_line_with_request_id_and_exception() -> None:
    record = make_record("boom", None, level=logging.ERROR, exc_info=raised(), request_id="r1")
    first, *rest = TextFormatter().format(record).splitlines()
    assert first.endswith("ERROR    trellis [r1]: boom")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: the database is on fire"


def test_text_uvicorn_error_logger_reads_as_uvicorn() -> None:
    line = TextFormatter().format(make_record("Started", None, name="uvicorn.error"))
    assert line.endswith("INFO     uvicorn: Started")


def test_text_colors_and_custom_format() -> None:
    assert "\x1b[32m" in TextFormatter(use_colors=True).format(make_record())
    assert "\x1b[" not in TextFormatter(use_colors=False).format(make_record())
    custom = TextFormatter("%(levelname)s|%(message)s")
    assert custom.format(make_record()) == "INFO|hello world"


# -- configuration --------------------------------------------------------------------------


def test_config_dict_for_uvicorn() -> None:
    config = configure_logging("debug", "json", apply=False)
    assert config["formatters"]["default"]["()"] == "trellis.logging.JSONFormatter"
    assert config["formatters"]["access"]["()"] == "trellis.logging.JSONFormatter"
    loggers = config["loggers"]
    for name in ("trellis", "uvicorn", "uvicorn.access", "trellis.access"):
        assert loggers[name]["level"] == "DEBUG"
        assert loggers[name]["propagate"] is False
    assert loggers["uvicorn.access"]["handlers"] == ["access"]
    assert config["root"]["level"] == "DEBUG"


def test_config_without_access_log() -> None:
    config = configure_logging("INFO", "text", access_log=False, apply=False)
    assert config["formatters"]["default"]["()"] == "trellis.logging.TextFormatter"
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
    assert config["loggers"]["trellis.access"]["handlers"] == []


@pytest.mark.parametrize(
    ("level", "fmt", "message"),
    [("INFO", "xml", "log format 'xml'"), ("LOUD", "text", "log level 'LOUD'")],
)
def test_config_refuses_unknown_values(level: str, fmt: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_logging(level, fmt, apply=False)


def test_config_accepts_numbers_and_trace() -> None:
    assert configure_logging(logging.WARNING, apply=False)["root"]["level"] == "WARNING"
    assert configure_logging("trace", apply=False)["root"]["level"] == "TRACE"
    with pytest.raises(ValueError):
        configure_logging(13, apply=False)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    names = [None, "trellis", "trellis.error", "trellis.access", "uvicorn", "uvicorn.access"]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    yield
    for lg, (handlers, level, propagate, disabled) in zip(loggers, saved, strict=True):
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate
        lg.disabled = disabled


@pytest.mark.usefixtures("restore_logging")
def test_applied_config_logs_errors_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        raise RuntimeError("handler crashed")
    except RuntimeError as exc:
        logging.getLogger("trellis.error").error(
            "unhandled error in GET /", exc_info=exc, extra={"request_id": "req-42"}
        )
    logging.getLogger("trellis").debug("not shown at INFO")
    logging.getLogger("myapp.views").info("the application's own logger")
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["logger"] for r in records] == ["trellis.error", "myapp.views"]
    assert records[0]["request_id"] == "req-42"
    assert "RuntimeError: handler crashed" in records[0]["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_applied_config_access_lines_go_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "text")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/", "1.1", 200
    )
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.rstrip().endswith('uvicorn.access: 127.0.0.1:1 - "GET / HTTP/1.1" 200')


@pytest.mark.usefixtures("restore_logging")
def test_docs_examples_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRELLIS_DEBUG", "1")  # as tests/test_docs_examples.py runs them
    page = Path(__file__).resolve().parents[1] / "docs" / "logging.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, str(page), "exec", dont_inherit=True), {"__name__": "docs_example"})
    logging.getLogger("docs").warning("configured by the last example")
    assert json.loads(capsys.readouterr().out)["logger"] == "docs"


# -- request ids on every line of a request --------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[list[dict[str, Any]]]:
    """JSON lines of ``tests.logging.app`` and ``trellis.error``, formatted as they are logged."""
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    handler = Collect()
    handler.setFormatter(JSONFormatter())
    loggers = [logging.getLogger("tests.logging.app"), logging.getLogger("trellis.error")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        yield lines
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


def logging_app(**settings: Any) -> App:
    settings.setdefault("request_id_header", True)  # the tests read the id from the header
    app = App(debug=True, **settings)
    log = logging.getLogger("tests.logging.app")

    def dependency() -> str:
        log.info("dependency")
        return "dep"

    def sync_task() -> None:
        log.info("background, sync")

    async def async_task() -> None:
        log.info("background, async")

    @app.get("/work")
    async def work(
        request: Request, tasks: BackgroundTasks, dep: Annotated[str, Depends(dependency)]
    ) -> dict[str, Any]:
        log.info("handler")
        tasks.add_task(sync_task)
        tasks.add_task(async_task)
        await asyncio.create_task(spawned())
        return {"state": request.state.request_id, "var": request_id_var.get()}

    async def spawned() -> None:
        log.info("task started by the handler")

    @app.get("/sync")
    def sync_handler() -> str:
        log.info("sync handler")
        return "ok"

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("handler crashed")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(websocket.scope["trellis.request_id"]))
        await websocket.close()

    return app


def test_every_line_of_a_request_carries_its_id(json_log: list[dict[str, Any]]) -> None:
    with TestClient(logging_app()) as client:
        response = client.get("/work")
        sync = client.get("/sync")
        crash = client.get("/boom")
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # generated: new_request_id()
    assert response.json() == {"state": request_id, "var": request_id}
    assert [(line["message"], line["request_id"]) for line in json_log[:5]] == [
        ("dependency", request_id),
        ("handler", request_id),
        ("task started by the handler", request_id),
        ("background, sync", request_id),
        ("background, async", request_id),
    ]
    assert json_log[5]["message"] == "sync handler"
    assert json_log[5]["request_id"] == sync.headers["x-request-id"] != request_id
    error = json_log[6]
    assert error["logger"] == "trellis.error"
    assert error["request_id"] == crash.headers["x-request-id"]
    assert "RuntimeError: handler crashed" in error["exception"]
    assert len(json_log) == 7
    assert request_id_var.get() is None


def test_incoming_ids_are_kept_when_trusted_and_valid() -> None:
    with TestClient(logging_app()) as client:
        kept = client.get("/work", headers={"X-Request-ID": "edge-7f3a.42"})
        replaced = client.get("/work", headers={"X-Request-ID": "two words"})
    assert kept.headers["x-request-id"] == "edge-7f3a.42" == kept.json()["var"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    with TestClient(logging_app(trust_request_id=False)) as client:
        distrusted = client.get("/work", headers={"X-Request-ID": "edge-7f3a.42"})
    assert re.fullmatch(r"[0-9a-f]{32}", distrusted.headers["x-request-id"])


def test_websockets_get_an_id_too() -> None:
    with TestClient(logging_app()) as client, client.websocket_connect("/ws") as ws:
        assert re.fullmatch(r"[0-9a-f]{32}", ws.receive_text())


def test_the_header_is_off_by_default_but_the_lines_still_carry_the_id(
    json_log: list[dict[str, Any]],
) -> None:
    with TestClient(logging_app(request_id_header=False)) as client:
        response = client.get("/sync")
        crash = client.get("/boom")
    assert "x-request-id" not in response.headers
    handler_line, error = json_log
    assert re.fullmatch(r"[0-9a-f]{32}", handler_line["request_id"])
    # An error page always names its id, and it is the one of the request's log lines.
    assert error["request_id"] == crash.headers["x-request-id"] != handler_line["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", error["request_id"])


def test_request_ids_can_be_turned_off(json_log: list[dict[str, Any]]) -> None:
    with TestClient(logging_app(request_id=False)) as client:
        response = client.get("/sync")
        crash = client.get("/boom")
    assert "x-request-id" not in response.headers
    handler_line, error = json_log
    assert handler_line["request_id"] is None
    # The error page still has a reference, made up when the error happens.
    assert error["request_id"] == crash.headers["x-request-id"]


@pytest.mark.anyio
async def test_the_id_is_reset_after_the_request_and_the_first_request_gets_one() -> None:
    app = logging_app()  # not built: the first request builds it
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        first = await client.get("/work")
        assert request_id_var.get() is None  # the client runs the app in this very task
        second = await client.get("/work")
    assert first.json()["var"] == first.headers["x-request-id"]
    assert second.json()["var"] == second.headers["x-request-id"] != first.headers["x-request-id"]


def test_a_mounted_trellis_app_keeps_the_id() -> None:
    inner = App(debug=True)

    @inner.get("/id")
    async def whoami() -> str | None:
        return request_id_var.get()

    outer = App(debug=True, request_id_header=True)
    outer.mount("/inner", inner)
    with TestClient(outer) as client:
        response = client.get("/inner/id")
    assert response.json() == response.headers["x-request-id"]
    assert response.headers.get_list("x-request-id") == [response.json()]  # one header, not two


# -- over a real server: trellis run --log-format json ----------------------------------------

SERVER_APP = """
import asyncio
import logging
from typing import Annotated

from sqlalchemy import text

from trellis import App, BackgroundTasks, Depends
from trellis.contrib.db import Database, Session

log = logging.getLogger("web")
app = App()
app.install(Database("sqlite://"))
arrived = 0
both = asyncio.Event()


def dependency() -> str:
    log.info("dependency")
    return "dep"


def after_the_response() -> None:
    log.info("background task")


@app.get("/ready")
async def ready() -> str:
    return "ok"


@app.get("/work")
async def work(
    db: Session, tasks: BackgroundTasks, dep: Annotated[str, Depends(dependency)]
) -> int:
    log.info("handler")
    tasks.add_task(after_the_response)
    return int((await db.execute(text("select 41 + 1"))).scalar_one())


@app.get("/boom")
async def boom() -> None:
    log.warning("about to fail")
    raise RuntimeError("the handler crashed")


@app.get("/pair/{n}")
async def pair(n: int) -> int:
    global arrived
    log.info("pair %s waits", n)
    arrived += 1
    if arrived == 2:
        both.set()
    await asyncio.wait_for(both.wait(), 15)  # both requests are in flight together
    log.info("pair %s done", n)
    return n
"""


def _server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env.update(
        TRELLIS_SECRET_KEY="a-test-secret-key-that-is-long-enough-for-production",
        TRELLIS_REQUEST_ID_HEADER="1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@pytest.mark.server
def test_json_lines_of_a_real_server_share_the_request_id(tmp_path: Path) -> None:
    (tmp_path / "web.py").write_text(SERVER_APP, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    command = [sys.executable, "-m", "trellis.cli", "run", "web:app", "--port", str(port)]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*command, "--log-format", "json"],
            cwd=tmp_path,
            env=_server_env(TRELLIS_DATABASE_ECHO="1"),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, err.read_text()
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start:\n" + err.read_text()
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=20) as client:
            work = client.get("/work")
            boom = client.get("/boom")
            incoming = client.get("/work", headers={"X-Request-ID": "edge-42"})

        async def concurrently() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=20) as client:
                return list(await asyncio.gather(client.get("/pair/1"), client.get("/pair/2")))

        pair = asyncio.run(concurrently())
        time.sleep(0.5)  # the background task's line
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert work.json() == 42 and boom.status_code == 500 and incoming.status_code == 200
    assert incoming.headers["x-request-id"] == "edge-42"  # trusted: the proxy's id is kept

    access = [json.loads(line) for line in out.read_text().splitlines()]
    messages = [json.loads(line) for line in err.read_text().splitlines()]  # every line JSON

    def lines_of(response: httpx.Response) -> list[tuple[str, str]]:
        request_id = response.headers["x-request-id"]
        return [
            (line["logger"], line["message"])
            for line in [*access, *messages]
            if line["request_id"] == request_id
        ]

    sql = [
        ("sqlalchemy.engine.Engine", "BEGIN (implicit)"),
        ("sqlalchemy.engine.Engine", "select 41 + 1"),
        ("sqlalchemy.engine.Engine", "COMMIT"),
    ]
    for response in (work, incoming):
        found = lines_of(response)
        loggers = [logger for logger, _ in found]
        assert loggers.count("uvicorn.access") == 1
        assert ("web", "dependency") in found
        assert ("web", "handler") in found
        assert ("web", "background task") in found
        assert all(line in found for line in sql), found

    crash = lines_of(boom)
    assert ("web", "about to fail") in crash
    assert [logger for logger, _ in crash].count("uvicorn.access") == 1
    [error] = [line for line in messages if line["logger"] == "trellis.error"]
    assert error["request_id"] == boom.headers["x-request-id"]
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: the handler crashed" in error["exception"]

    first, second = pair
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    for n, response in ((1, first), (2, second)):
        found = lines_of(response)
        assert ("web", f"pair {n} waits") in found
        assert ("web", f"pair {n} done") in found
        assert not any(message.startswith(f"pair {3 - n}") for _, message in found)
    # Interleaved: the second started before the first was done, yet each kept its own id.
    order = [line["message"] for line in messages if line["message"].startswith("pair")]
    assert order.index("pair 1 done") > 1 and order.index("pair 2 done") > 1
