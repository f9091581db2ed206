"""The C10k benchmark's server: idle websockets held open beside a small JSON route.

``/ws`` accepts a websocket and echoes every text message until the client leaves; nothing
else happens on an idle connection (uvicorn's keep-alive ping aside). ``/json`` is the HTTP
route whose latency ``c10k.py`` measures while the connections are held, and ``/stats`` says
how many websockets are open right now, so the driver can check that none was dropped.

Run by ``c10k.py`` as ``python bench/app_c10k.py --port N --backlog N``: one uvicorn worker
started through ``trellis.server.serve`` (production settings, access log off).
"""

from __future__ import annotations

import argparse

from trellis import App
from trellis.server import serve
from trellis.websockets import WebSocket

SECRET_KEY = "bench-" + "x" * 40  # production mode (debug off) requires a secret key

app = App(debug=False, secret_key=SECRET_KEY)


class _Counts:
    open = 0  # websockets accepted and not yet closed
    accepted = 0  # websockets accepted since start


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"open": _Counts.open, "accepted": _Counts.accepted}


@app.websocket("/ws")
async def hold(websocket: WebSocket) -> None:
    await websocket.accept()
    _Counts.open += 1
    _Counts.accepted += 1
    try:
        async for text in websocket.iter_text():
            await websocket.send_text(text)
    finally:
        _Counts.open -= 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--backlog",
        type=int,
        default=4096,
        help="listen backlog (the kernel caps it at net.core.somaxconn; default %(default)s)",
    )
    parser.add_argument(
        "--no-compression",
        action="store_true",
        help="refuse permessage-deflate (by default it is accepted when a client offers it)",
    )
    args = parser.parse_args()
    serve(
        app,
        args.host,
        args.port,
        log_level="warning",
        access_log=False,
        backlog=args.backlog,
        ws_per_message_deflate=not args.no_compression,
    )


if __name__ == "__main__":
    main()
