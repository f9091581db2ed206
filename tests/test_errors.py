"""Error responses: problem+json or HTML by ``Accept``, debug pages, production 500s with a
request id, and the exception classes themselves."""

from __future__ import annotations

import base64
import hashlib
import logging
import re

import pytest

from trellis import (
    App,
    BadRequestError,
    ForbiddenError,
    HTTPError,
    NotFoundError,
    Request,
    UnauthorizedError,
)
from trellis.exceptions import (
    AppFrozenError,
    ConflictError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RequestHeaderFieldsTooLargeError,
    UnprocessableContentError,
    UnsupportedMediaTypeError,
)
from trellis.middleware import RequestIDMiddleware
from trellis.testing import TestClient

SECRET = "s" * 40
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def error_app(debug: bool = True) -> App:
    app = App(debug=True) if debug else App(secret_key=SECRET)

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPError(
            418,
            "I am a <teapot> & proud",
            {"retry-after": "5", "x-extra": "1"},
            title="Short & stout",
            type="https://example.com/problems/teapot",
            extra={"errors": [{"loc": ["query", "cup"], "msg": "<b>missing</b>"}]},
        )

    @app.get("/forbidden")
    def forbidden() -> None:
        raise ForbiddenError("not yours")

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret <db> password in message")

    @app.get("/crash-sync")
    def crash_sync() -> None:
        raise KeyError("sync-secret")

    return app


# -- problem+json or HTML --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/problem+json",
        "application/json, text/html",
        "text/html;q=0.5, application/json",
        "text/html;q=0, */*",
        "text/plain",
    ],
)
def test_api_clients_get_problem_json(accept: str | None) -> None:
    headers = {"accept": accept} if accept else {}
    with TestClient(error_app()) as client:
        response = client.get("/teapot", headers=headers)
    assert response.status_code == 418
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-extra"] == "1"
    assert response.json() == {
        "type": "https://example.com/problems/teapot",
        "title": "Short & stout",
        "status": 418,
        "detail": "I am a <teapot> & proud",
        "instance": "/teapot",
        "errors": [{"loc": ["query", "cup"], "msg": "<b>missing</b>"}],
    }


@pytest.mark.parametrize(
    "accept",
    [BROWSER, "text/html", "text/html, application/json", "application/json;q=0.5, text/html"],
)
def test_browsers_get_an_escaped_html_page(accept: str) -> None:
    with TestClient(error_app()) as client:
        response = client.get("/teapot", headers={"accept": accept})
    assert response.status_code == 418
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["retry-after"] == "5"
    page = response.text
    assert "<title>418 Short &amp; stout</title>" in page
    assert "I am a &lt;teapot&gt; &amp; proud" in page
    assert "&lt;b&gt;missing&lt;/b&gt;" in page
    assert "<teapot>" not in page and "<b>missing" not in page


def test_router_errors_use_the_same_format() -> None:
    with TestClient(error_app()) as client:
        json_404 = client.get("/nope")
        html_404 = client.get("/nope", headers={"accept": BROWSER})
        html_405 = client.post("/teapot", headers={"accept": BROWSER})
    assert json_404.json()["title"] == "Not Found"
    assert "<h1>404 Not Found</h1>" in html_404.text
    assert html_405.status_code == 405
    assert html_405.headers["allow"] == "GET, HEAD, OPTIONS"
    assert "<h1>405 Method Not Allowed</h1>" in html_405.text


def test_head_of_an_error_has_no_body() -> None:
    with TestClient(error_app()) as client:
        response = client.head("/forbidden")
    assert response.status_code == 403
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


# -- unhandled errors: debug -----------------------------------------------------------------------


def test_debug_500_json_has_the_traceback() -> None:
    with TestClient(error_app(debug=True)) as client:
        response = client.get("/crash")
    assert response.status_code == 500
    body = response.json()
    assert body["exception"] == "RuntimeError: secret <db> password in message"
    assert body["traceback"][0] == "Traceback (most recent call last):"
    assert any("raise RuntimeError" in line for line in body["traceback"])
    assert body["request_id"] == response.headers["x-request-id"]


def test_debug_500_html_has_the_escaped_traceback() -> None:
    with TestClient(error_app(debug=True)) as client:
        response = client.get("/crash", headers={"accept": BROWSER})
    assert response.status_code == 500
    page = response.text
    assert "<pre>Traceback (most recent call last):" in page
    assert "RuntimeError: secret &lt;db&gt; password in message" in page
    assert "<db>" not in page
    assert response.headers["x-request-id"] in page


# -- unhandled errors: production ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/crash", "/crash-sync"])
def test_production_500_json_shows_only_a_reference_id(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="trellis.error"),
        TestClient(error_app(debug=False)) as client,
    ):
        response = client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    body = response.json()
    assert body == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": f"The server hit an unexpected error. Reference: {request_id}",
        "request_id": request_id,
    }
    for leak in ("Traceback", "secret", "RuntimeError", "KeyError", "File "):
        assert leak not in response.text
    records = [r for r in caplog.records if r.name == "trellis.error"]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.request_id == request_id  # type: ignore[attr-defined]
    assert request_id in record.getMessage()
    assert path in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] in (RuntimeError, KeyError)


def test_production_500_html_shows_only_a_reference_id(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="trellis.error"),
        TestClient(error_app(debug=False)) as client,
    ):
        response = client.get("/crash", headers={"accept": BROWSER})
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    request_id = response.headers["x-request-id"]
    assert f"Reference: {request_id}" in response.text
    assert "Traceback" not in response.text and "secret" not in response.text
    assert "<pre>" not in response.text
    assert [r.request_id for r in caplog.records if r.name == "trellis.error"] == [request_id]  # type: ignore[attr-defined]


def test_each_500_gets_its_own_request_id() -> None:
    with TestClient(error_app(debug=False)) as client:
        ids = {client.get("/crash").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_the_request_id_middleware_id_is_used(caplog: pytest.LogCaptureFixture) -> None:
    app = error_app(debug=False)
    app.add_middleware(RequestIDMiddleware)
    with caplog.at_level(logging.ERROR, logger="trellis.error"), TestClient(app) as client:
        response = client.get("/crash", headers={"x-request-id": "trace-abc.123"})
        generated = client.get("/crash")
    assert response.headers["x-request-id"] == "trace-abc.123"
    assert response.json()["request_id"] == "trace-abc.123"
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    ids = [r.request_id for r in caplog.records if r.name == "trellis.error"]  # type: ignore[attr-defined]
    assert ids == ["trace-abc.123", generated.headers["x-request-id"]]


def test_errors_in_hooks_are_500s_too() -> None:
    app = App(secret_key=SECRET)

    @app.after_request
    def broken_after(request: Request, response: object) -> None:
        raise ValueError("after hook")

    app.get("/")(lambda: "fine")
    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    assert "after hook" not in response.text


# -- error reporters (error tickets) --------------------------------------------------------------


def reporting_app(*reporters: object, debug: bool = False) -> tuple[App, list[tuple[str, str]]]:
    """``error_app`` with ``reporters``; the list records ``(exception, request id)`` per call."""
    app = error_app(debug=debug)
    calls: list[tuple[str, str]] = []

    async def recorder(request: Request, exc: BaseException, request_id: str) -> None:
        calls.append((f"{type(exc).__name__}: {exc}", request_id))

    app.add_error_reporter(recorder)
    for reporter in reporters:
        app.add_error_reporter(reporter)  # type: ignore[arg-type]
    return app, calls


async def ticket_7(request: Request, exc: BaseException, request_id: str) -> str:
    return "tk-7"


def test_a_reporter_s_ticket_replaces_the_reference(caplog: pytest.LogCaptureFixture) -> None:
    app, calls = reporting_app(ticket_7)
    with caplog.at_level(logging.ERROR, logger="trellis.error"), TestClient(app) as client:
        response = client.get("/crash")
        page = client.get("/crash-sync", headers={"accept": BROWSER})
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.headers["x-error-ticket"] == "tk-7"
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "The server hit an unexpected error. Error ticket tk-7",
        "request_id": request_id,
        "ticket": "tk-7",
    }
    assert "Error ticket tk-7" in page.text and "Traceback" not in page.text
    assert "secret" not in response.text and "<pre>" not in page.text
    assert calls == [
        ("RuntimeError: secret <db> password in message", request_id),
        ("KeyError: 'sync-secret'", page.headers["x-request-id"]),
    ]
    records = [r for r in caplog.records if r.name == "trellis.error"]
    assert [r.ticket for r in records] == ["tk-7", "tk-7"]  # type: ignore[attr-defined]
    assert "error ticket tk-7" in records[0].getMessage()


def test_http_errors_are_not_reported() -> None:
    app, calls = reporting_app(ticket_7)
    with TestClient(app) as client:
        assert client.get("/forbidden").status_code == 403
        assert client.get("/nope").status_code == 404
        assert client.get("/teapot").status_code == 418
    assert calls == []


def test_reporters_run_in_debug_mode_too() -> None:
    app, calls = reporting_app(ticket_7, debug=True)
    with TestClient(app) as client:
        body = client.get("/crash").json()
    assert body["ticket"] == "tk-7"
    assert body["traceback"][0] == "Traceback (most recent call last):"
    assert len(calls) == 1


def test_a_failing_reporter_never_breaks_the_500(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: Request, exc: BaseException, request_id: str) -> str:
        raise OSError("disk full")

    app, calls = reporting_app(broken)
    with caplog.at_level(logging.ERROR, logger="trellis.error"), TestClient(app) as client:
        response = client.get("/crash")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert (
        response.json()["detail"] == f"The server hit an unexpected error. Reference: {request_id}"
    )
    assert "x-error-ticket" not in response.headers and "ticket" not in response.json()
    assert len(calls) == 1
    failure, crash = [r for r in caplog.records if r.name == "trellis.error"]
    assert "error reporter" in failure.getMessage() and request_id in failure.getMessage()
    assert failure.exc_info is not None and failure.exc_info[0] is OSError
    assert crash.exc_info is not None and crash.exc_info[0] is RuntimeError


@pytest.mark.parametrize("bad", ["two words", "x\r\nset-cookie: a=b", "", "x" * 129, 42])
def test_a_reporter_s_odd_id_is_ignored(bad: object, caplog: pytest.LogCaptureFixture) -> None:
    async def odd(request: Request, exc: BaseException, request_id: str) -> object:
        return bad

    app, _ = reporting_app(odd)
    with caplog.at_level(logging.ERROR, logger="trellis.error"), TestClient(app) as client:
        response = client.get("/crash", headers={"accept": BROWSER})
    assert response.status_code == 500
    assert "Reference: " in response.text and "set-cookie" not in response.headers
    assert any("not a ticket id" in r.getMessage() for r in caplog.records)


def test_the_first_ticket_wins_and_every_reporter_runs() -> None:
    seen: list[str] = []

    async def none(request: Request, exc: BaseException, request_id: str) -> None:
        seen.append("none")

    async def first(request: Request, exc: BaseException, request_id: str) -> str:
        seen.append("first")
        return "first-1"

    async def second(request: Request, exc: BaseException, request_id: str) -> str:
        seen.append("second")
        return "second-2"

    app, _ = reporting_app(none, first, second)
    with TestClient(app) as client:
        assert client.get("/crash").json()["ticket"] == "first-1"
    assert seen == ["none", "first", "second"]


def test_reporters_see_crashing_exception_handlers_and_middleware() -> None:
    app, calls = reporting_app(ticket_7)

    @app.exception_handler(ValueError)
    def broken_handler(request: Request, exc: Exception) -> None:
        raise LookupError("handler broke")

    @app.get("/value")
    def value() -> None:
        raise ValueError("v")

    class Crash:
        def __init__(self, app: object) -> None:
            self.app = app

        async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
            if scope.get("path") == "/mw":
                raise RuntimeError("middleware broke")
            await self.app(scope, receive, send)  # type: ignore[operator]

    app.add_middleware(Crash)
    with TestClient(app) as client:
        assert client.get("/value").headers["x-error-ticket"] == "tk-7"
        assert client.get("/mw").headers["x-error-ticket"] == "tk-7"
    assert [c[0] for c in calls] == ["LookupError: handler broke", "RuntimeError: middleware broke"]


def test_reporters_are_registered_before_serving() -> None:
    app = App(secret_key=SECRET)
    app.build()
    with pytest.raises(AppFrozenError, match=r"App.add_error_reporter\(\)"):
        app.add_error_reporter(ticket_7)


# -- the exception classes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (BadRequestError, 400),
        (UnauthorizedError, 401),
        (ForbiddenError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (PayloadTooLargeError, 413),
        (UnsupportedMediaTypeError, 415),
        (UnprocessableContentError, 422),
        (RequestHeaderFieldsTooLargeError, 431),
    ],
)
def test_fixed_status_errors_take_the_detail_first(cls: type[HTTPError], status: int) -> None:
    exc = cls("what went wrong", {"x-a": "b"})  # type: ignore[arg-type]
    assert exc.status == status
    assert exc.detail == "what went wrong"
    assert exc.headers == [("x-a", "b")]
    assert isinstance(exc, HTTPError)
    assert str(exc).startswith(f"{status} ")
    assert str(exc).endswith(": what went wrong")


def test_http_error_basics() -> None:
    exc = HTTPError(404)
    assert (exc.status, exc.detail, exc.title, exc.type) == (404, None, "Not Found", "about:blank")
    assert str(exc) == "404 Not Found"
    assert repr(exc) == "HTTPError(status=404, detail=None)"
    assert exc.to_problem() == {"type": "about:blank", "title": "Not Found", "status": 404}
    assert HTTPError().status == 500
    assert HTTPError(503, headers=[("retry-after", "1")]).headers == [("retry-after", "1")]
    for bad in (200, 302, 399, 600):
        with pytest.raises(ValueError, match="4xx or 5xx"):
            HTTPError(bad)


def test_method_not_allowed_error_carries_allow() -> None:
    exc = MethodNotAllowedError(["GET", "POST"])
    assert exc.status == 405
    assert exc.allowed == ("GET", "POST")
    assert exc.headers == [("allow", "GET, POST")]


def test_http_errors_raised_by_handlers_keep_their_status_and_headers() -> None:
    app = App(debug=True)

    @app.get("/login")
    def login() -> None:
        raise UnauthorizedError("log in first", {"www-authenticate": 'Bearer realm="api"'})

    with TestClient(app) as client:
        response = client.get("/login")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert response.json()["detail"] == "log in first"


def test_error_pages_carry_a_policy_that_allows_only_their_own_style() -> None:
    app = App(debug=False, secret_key="k" * 40, content_security_policy="default-src 'self'")

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("boom")

    with TestClient(app) as client:
        for path, status in (("/missing", 404), ("/boom", 500)):
            page = client.get(path, headers={"Accept": "text/html"})
            assert page.status_code == status
            style = re.search(r"<style>(.*?)</style>", page.text, re.S)
            assert style is not None
            digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
            policy = page.headers.get_list("content-security-policy")
            assert policy == [
                f"default-src 'none'; style-src 'sha256-{digest}'; frame-ancestors 'none'"
            ]
        # data answers keep the app's policy rules (none on JSON)
        assert "content-security-policy" not in client.get("/missing").headers
