from __future__ import annotations

import logging
import os
import re
from typing import Any

import pytest

from trellis.exceptions import ConfigurationError
from trellis.middleware import RequestIDMiddleware
from trellis.middleware.request_id import RequestIDLogFilter, new_request_id, request_id_var
from trellis.types import ASGIApp, Receive, Scope, Send

pytestmark = pytest.mark.anyio

HEX32 = re.compile(r"[0-9a-f]{32}")


def recording_app(
    seen: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None
) -> ASGIApp:
    """Records where the id can be read from inside the application."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(
            {
                "state": scope["state"]["request_id"],
                "scope": scope["trellis.request_id"],
                "var": request_id_var.get(),
            }
        )
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": headers or []})
            await send({"type": "http.response.body", "body": b""})

    return app


async def test_generated_when_absent(asgi_client: Any) -> None:
    seen: list[dict[str, Any]] = []
    async with asgi_client(RequestIDMiddleware(recording_app(seen))) as c:
        first = await c.get("/")
        second = await c.get("/")
    rid = first.headers["x-request-id"]
    assert HEX32.fullmatch(rid)
    assert seen[0] == {"state": rid, "scope": rid, "var": rid}
    assert second.headers["x-request-id"] != rid
    assert request_id_var.get() is None  # reset once the request is done


@pytest.mark.parametrize(
    "incoming",
    ["abc-123", "3f2c1a7e-0b9d-4c51-8f6e-2a1d9b7c5e40", "00-4bf92f35-00f067aa-01", "a" * 128],
)
async def test_valid_incoming_id_is_used(asgi_client: Any, incoming: str) -> None:
    seen: list[dict[str, Any]] = []
    async with asgi_client(RequestIDMiddleware(recording_app(seen))) as c:
        r = await c.get("/", headers={"X-Request-ID": incoming})
    assert r.headers["x-request-id"] == incoming
    assert seen[0]["state"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "a" * 129, "has space", "<script>alert(1)</script>", 'quote"d', "tab\tbed", "é"],
)
async def test_invalid_incoming_id_is_replaced(asgi_client: Any, incoming: str) -> None:
    async with asgi_client(RequestIDMiddleware(recording_app([]))) as c:
        r = await c.get("/", headers={"X-Request-ID": incoming.encode()})
    assert HEX32.fullmatch(r.headers["x-request-id"])


async def test_untrusted_incoming_id_is_replaced(asgi_client: Any) -> None:
    async with asgi_client(RequestIDMiddleware(recording_app([]), trust_incoming=False)) as c:
        r = await c.get("/", headers={"X-Request-ID": "client-chosen"})
    assert HEX32.fullmatch(r.headers["x-request-id"])


async def test_custom_header_and_generator(asgi_client: Any) -> None:
    ids = iter(range(100))
    app = RequestIDMiddleware(
        recording_app([]), header_name="X-Correlation-Id", generator=lambda: f"req-{next(ids)}"
    )
    async with asgi_client(app) as c:
        r = await c.get("/")
        echoed = await c.get("/", headers={"x-correlation-id": "from-proxy"})
    assert r.headers["x-correlation-id"] == "req-1"  # req-0 was the start-up check
    assert "x-request-id" not in r.headers
    assert echoed.headers["x-correlation-id"] == "from-proxy"


async def test_response_header_set_by_app_is_kept(asgi_client: Any) -> None:
    app = RequestIDMiddleware(recording_app([], [(b"X-Request-ID", b"app-own")]))
    async with asgi_client(app) as c:
        r = await c.get("/")
    assert r.headers.get_list("x-request-id") == ["app-own"]


async def test_existing_state_kept_and_websocket_tagged(make_scope: Any, run_asgi: Any) -> None:
    seen: list[dict[str, Any]] = []
    scope = make_scope("websocket", headers={"x-request-id": "ws-1"}, state={"db": "pool"})
    messages = await run_asgi(RequestIDMiddleware(recording_app(seen)), scope)
    assert messages == []
    assert scope["state"] == {"db": "pool", "request_id": "ws-1"}
    assert seen[0]["var"] == "ws-1"


async def test_contextvar_reset_after_error(make_scope: Any, run_asgi: Any) -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await run_asgi(RequestIDMiddleware(failing), make_scope())
    assert request_id_var.get() is None


async def test_lifespan_untouched(run_asgi: Any) -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    await run_asgi(RequestIDMiddleware(inner), {"type": "lifespan"})
    assert seen == [{"type": "lifespan"}]


async def test_log_filter(asgi_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("trellis.tests.request_id")
    log_filter = RequestIDLogFilter()
    logger.addFilter(log_filter)
    try:

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            logger.warning("inside")
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        with caplog.at_level(logging.WARNING, logger=logger.name):
            async with asgi_client(RequestIDMiddleware(app)) as c:
                await c.get("/", headers={"x-request-id": "log-me"})
            logger.warning("outside")
    finally:
        logger.removeFilter(log_filter)
    assert [getattr(r, "request_id", None) for r in caplog.records] == ["log-me", "-"]


def test_new_request_ids_are_unique_in_this_process_and_in_a_forked_one() -> None:
    ids = [new_request_id() for _ in range(1000)]
    assert all(HEX32.fullmatch(rid) for rid in ids)
    assert len(set(ids)) == len(ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a worker forked by the server
        os.write(write, "".join(new_request_id() for _ in range(1000)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    child = {text[i : i + 32] for i in range(0, len(text), 32)}
    assert len(child) == 1000
    # The worker drew a prefix of its own: none of its ids can be the parent's.
    assert child.isdisjoint(ids + [new_request_id() for _ in range(1000)])
    assert {rid[:16] for rid in child}.isdisjoint({rid[:16] for rid in ids})


@pytest.mark.parametrize(
    "options",
    [
        {"header_name": ""},
        {"header_name": "X Request"},
        {"header_name": "X-Request-ID\r\n"},
        {"generator": lambda: "bad id"},
        {"generator": lambda: ""},
    ],
)
def test_configuration_errors(make_app: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="RequestIDMiddleware"):
        RequestIDMiddleware(make_app(), **options)
