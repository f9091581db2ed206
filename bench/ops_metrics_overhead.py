"""In-process cost of request ids and ``trellis.contrib.ops.Metrics`` per request.

No server, no socket: calls the app's ASGI callable directly in a loop inside one coroutine,
as ``profile_app.py`` does, for four apps: without request ids (``request_id=False``), plain
(the defaults: request ids on), with a no-op middleware (what any app middleware costs: the
app leaves its inlined fast path), and with ``Metrics`` installed. The figures are CPU
microseconds per request, the best of ``--repeat`` rounds.

    .venv/bin/python bench/ops_metrics_overhead.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

os.environ.setdefault("TRELLIS_DEBUG", "0")
os.environ.setdefault("TRELLIS_SECRET_KEY", "x" * 48)

from trellis import App
from trellis.types import ASGIApp, Receive, Scope, Send


class Noop:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def make(kind: str) -> App:
    app = App(request_id=kind != "no-ids")

    @app.get("/plaintext")
    async def plaintext() -> str:
        return "Hello, World!"

    @app.get("/users/{id:int}")
    async def user(id: int) -> dict[str, int]:
        return {"id": id}

    if kind == "noop":
        app.add_middleware(Noop)
    elif kind == "metrics":
        from trellis.contrib.ops import Metrics

        app.install(Metrics())
    app.build()
    return app


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def measure(app: App, path: str, number: int, repeat: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    template = scope_for(path)
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(number):
            await app(dict(template), receive, send)
        best = min(best, (time.process_time() - start) / number)
    return best * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    apps = {kind: make(kind) for kind in ("no-ids", "plain", "noop", "metrics")}
    print(
        f"{'path':<16}{'no ids':>10}{'plain':>10}{'ids cost':>10}{'noop mw':>10}{'metrics':>10}"
        f"{'metrics-plain':>15}"
    )
    for path in ("/plaintext", "/users/42"):
        figures = {k: await measure(a, path, args.number, args.repeat) for k, a in apps.items()}
        print(
            f"{path:<16}{figures['no-ids']:>9.2f}µ{figures['plain']:>9.2f}µ"
            f"{figures['plain'] - figures['no-ids']:>9.2f}µ{figures['noop']:>9.2f}µ"
            f"{figures['metrics']:>9.2f}µ{figures['metrics'] - figures['plain']:>14.2f}µ"
        )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
