"""In-process cost of one request through an ASGI app: no server, no socket, no wrk.

Calls each app's ASGI callable directly with a uvicorn-like scope, a ``receive`` that returns
the body at once and a ``send`` that drops the messages, in a loop inside one coroutine under
uvloop. What it measures is the framework's own per-request cost (routing, request object,
handler call, response encoding, the two ``send`` messages); the server's cost (HTTP parsing,
transport writes, the event loop) is what the wrk benchmark adds on top.

    bench/.venv/bin/python bench/profile_app.py                    # table: µs/request
    bench/.venv/bin/python bench/profile_app.py --apps bare trellis --endpoints plaintext json
    bench/.venv/bin/python bench/profile_app.py --profile trellis json   # cProfile hot spots

Figures are CPU time (``time.process_time``) per request, the best of ``--repeat`` rounds of
``--number`` requests, so other processes on the machine inflate them less than wall time.

Relating it to the wrk ratio: if a server-side request costs S µs with the bare app
(``server CPU µs/req`` in RESULTS.md), a framework that adds D µs over the bare app gets
about S / (S + D) of bare ASGI's req/s; 0.85 x bare needs D <= 0.18 x S.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import os
import pstats
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

APPS = {  # name -> (module, attribute)
    "bare": ("app_bare", "app"),
    "trellis": ("app_trellis", "app"),
    "blacksheep": ("app_blacksheep", "app"),
    "falcon": ("app_falcon", "app"),
    "starlette": ("app_starlette", "app"),
    "fastapi": ("app_fastapi", "app"),
    "litestar": ("app_litestar", "app"),
}
ITEM = b'{"name":"widget","price":9.99,"tags":["a","b","c"]}'
ENDPOINTS = {  # name -> (method, path, query, body)
    "plaintext": ("GET", "/plaintext", b"", b""),
    "json": ("GET", "/json", b"", b""),
    "users": ("GET", "/users/42", b"limit=5", b""),
    "items": ("POST", "/items", b"", ITEM),
}
GET_ONLY = {"bare"}


def make_scope(method: str, path: str, query: bytes, body: bytes) -> dict[str, Any]:
    """A scope shaped like the one uvicorn's httptools protocol builds for a wrk request."""
    headers = [(b"host", b"127.0.0.1:18080")]
    if body:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 18080),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
        "state": {},
    }


class Lifespan:
    """Run an app's lifespan start-up (and later shut-down) like a server does."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        try:
            await self.app(scope, self.inbox.get, self.outbox.put)
        except Exception:  # apps without lifespan support may raise; servers ignore that
            await self.outbox.put({"type": "lifespan.unsupported"})

    async def startup(self) -> None:
        self.task = asyncio.ensure_future(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        msg = await self.outbox.get()
        if msg["type"] == "lifespan.startup.failed":
            raise RuntimeError(msg.get("message", "lifespan start-up failed"))

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(self.outbox.get(), 5)


async def one_request(app: Any, template: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    """Serve one request and return (status, body), to check the app answers correctly."""
    out: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(dict(template), receive, send)
    return out["status"], out["body"]


async def serve_many(app: Any, template: dict[str, Any], body: bytes, n: int) -> None:
    """Serve ``n`` requests back to back (a fresh scope dict each, as a server makes)."""
    request_message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return request_message

    async def send(message: dict[str, Any]) -> None:
        return None

    for _ in range(n):
        await app(dict(template), receive, send)


def measure(app: Any, endpoint: str, number: int, repeat: int) -> tuple[float, float]:
    """(best CPU µs/request, best wall µs/request) over ``repeat`` rounds."""
    method, path, query, body = ENDPOINTS[endpoint]
    template = make_scope(method, path, query, body)
    loop = asyncio.get_event_loop()
    status, content = loop.run_until_complete(one_request(app, template, body))
    if not 200 <= status < 300:
        raise RuntimeError(f"{endpoint}: status {status}: {content[:200]!r}")
    loop.run_until_complete(serve_many(app, template, body, min(number, 2000)))  # warm-up
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        loop.run_until_complete(serve_many(app, template, body, number))
        c1, w1 = time.process_time(), time.perf_counter()
        best_cpu = min(best_cpu, (c1 - c0) / number * 1e6)
        best_wall = min(best_wall, (w1 - w0) / number * 1e6)
    return best_cpu, best_wall


def load_app(name: str) -> Any:
    module, attr = APPS[name]
    return getattr(importlib.import_module(module), attr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--apps",
        nargs="+",
        default=["bare", "trellis", "blacksheep", "falcon", "starlette", "fastapi"],
        choices=sorted(APPS),
    )
    parser.add_argument("--endpoints", nargs="+", default=list(ENDPOINTS), choices=list(ENDPOINTS))
    parser.add_argument("--number", type=int, default=20000, help="requests per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best is kept")
    parser.add_argument(
        "--profile",
        nargs=2,
        metavar=("APP", "ENDPOINT"),
        help="cProfile one app/endpoint instead of the table",
    )
    parser.add_argument("--top", type=int, default=30, help="rows of the profile to print")
    args = parser.parse_args()

    try:
        import uvloop
    except ImportError:
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    if args.profile:
        name, endpoint = args.profile
        app = load_app(name)
        lifespan = Lifespan(app)
        loop.run_until_complete(lifespan.startup())
        method, path, query, body = ENDPOINTS[endpoint]
        template = make_scope(method, path, query, body)
        loop.run_until_complete(serve_many(app, template, body, 2000))
        prof = cProfile.Profile()
        prof.enable()
        loop.run_until_complete(serve_many(app, template, body, args.number))
        prof.disable()
        loop.run_until_complete(lifespan.shutdown())
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime")
        stats.print_stats(args.top)
        print(f"cProfile of {args.number} requests: {name} {method} {path} (sorted by tottime)")
        print(buf.getvalue())
        return 0

    results: dict[tuple[str, str], tuple[float, float]] = {}
    for name in args.apps:
        app = load_app(name)
        lifespan = Lifespan(app)
        loop.run_until_complete(lifespan.startup())
        for endpoint in args.endpoints:
            if name in GET_ONLY and endpoint not in ("plaintext", "json"):
                continue
            results[(name, endpoint)] = measure(app, endpoint, args.number, args.repeat)
        loop.run_until_complete(lifespan.shutdown())

    print(
        f"In-process CPU µs per request (best of {args.repeat} x {args.number}; "
        "+µs = over the bare app on the same endpoint, or over bare /json for users/items)"
    )
    print(f"{'app':<12}" + "".join(f"{ep:>20}" for ep in args.endpoints))
    for name in args.apps:
        cells = []
        for endpoint in args.endpoints:
            res = results.get((name, endpoint))
            if res is None:
                cells.append(f"{'-':>20}")
                continue
            ref = results.get(("bare", endpoint)) or results.get(("bare", "json"))
            extra = f" (+{res[0] - ref[0]:.2f})" if ref and name != "bare" else ""
            cells.append(f"{res[0]:.2f}{extra:>11}".rjust(20))
        print(f"{name:<12}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
