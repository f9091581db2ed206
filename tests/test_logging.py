from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trellis.logging import JSONFormatter, TextFormatter, configure_logging, request_id_of
from trellis.middleware.request_id import RequestIDLogFilter, request_id_var


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
def test_docs_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "logging.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, str(page), "exec", dont_inherit=True), {"__name__": "docs_example"})
    logging.getLogger("docs").warning("configured by the last example")
    assert json.loads(capsys.readouterr().out)["logger"] == "docs"
