"""The application the server and deployment tests serve in real processes.

It writes what happens to the file named by ``SERVED_APP_EVENTS`` (one ``event pid`` line
each), so a test can see the order of requests and lifespan hooks across processes.
"""

from __future__ import annotations

import asyncio
import os

from trellis import App, Request
from trellis.websockets import WebSocket

app = App()
started = False


def record(event: str) -> None:
    path = os.environ.get("SERVED_APP_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as events:
            events.write(f"{event} {os.getpid()}\n")


@app.on_startup
async def startup() -> None:
    global started
    started = True
    record("startup")


@app.on_shutdown
async def shutdown() -> None:
    record("shutdown")


@app.get("/info")
async def info(request: Request) -> dict[str, object]:
    client = request.client
    return {"pid": os.getpid(), "started": started, "client": client[0] if client else None}


@app.get("/slow")
async def slow(seconds: float) -> dict[str, float]:
    record("slow-start")
    await asyncio.sleep(seconds)
    record("slow-end")
    return {"slept": seconds}


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    async for text in websocket.iter_text():
        await websocket.send_text(text)
