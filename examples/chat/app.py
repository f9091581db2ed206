"""A websocket chat with rooms, on Trellis's broadcast groups (``trellis.channels``).

Run it with ``python examples/chat/app.py`` and open http://127.0.0.1:8000 in two windows:
pick a name and a room in each; what one says, everyone in that room sees, and nobody in
another room. Joins and departures are announced to the room.

- ``GET /``: the page ([templates/index.html]) and its script ([static/chat.js]); no inline
  script, so the strict Content-Security-Policy below holds.
- ``/ws/{room}?name=...``: the websocket. The room and the name are checked on the handshake
  (a bad one is refused with 422 before anything is accepted); each message the client sends
  is JSON, ``{"text": "..."}``, validated by a pydantic model.
- Every message the server sends is JSON with a ``type``: ``joined``, ``message``, ``left``
  (to the whole room), or ``error`` (to the sender only).
- Rooms are channel groups. Without ``TRELLIS_REDIS_URL`` they live in the process; with it
  they go through Redis pub/sub (``RedisChannels``), so that people connected to different
  worker processes or machines chat together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from trellis import App, Query, Response
from trellis import Path as PathParam
from trellis.channels import Channels
from trellis.config import Settings, load_settings
from trellis.templating import render
from trellis.websockets import WebSocket, WebSocketDataError

HERE = Path(__file__).resolve().parent

#: Scripts, styles and websockets from this site only (CSP 'self' covers ws:// and wss://).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
ROOM_PATTERN = r"^[a-z0-9][a-z0-9\-]{0,31}$"
NAME_MAX = 32
TEXT_MAX = 500


class ChatSettings(Settings):
    """Trellis's settings and the chat's own, each read from ``TRELLIS_<NAME>``."""

    redis_url: str | None = Field(
        default=None,
        description="Redis for the rooms, shared by every process; unset: rooms in the process.",
    )
    redis_prefix: str = Field(default="chat:", description="Put before every room's channel.")


class Say(BaseModel):
    """What a client sends: one line of chat."""

    text: str = Field(min_length=1, max_length=TEXT_MAX)


class Event(BaseModel):
    """What the room hears: someone joined, said something, or left."""

    type: Literal["joined", "message", "left"]
    room: str
    name: str
    text: str | None = None


def create_app(**settings: Any) -> App:
    """Build the chat.

    Args:
        **settings: Settings to override (``redis_url=...``, ``redis_prefix=...``,
            ``debug=True``); the others come from ``TRELLIS_*``.
    """
    settings.setdefault("templates_dir", HERE / "templates")
    settings.setdefault("content_security_policy", CONTENT_SECURITY_POLICY)
    # A chat line is short: anything bigger closes the connection (1009).
    settings.setdefault("max_websocket_message_size", 4096)
    config = load_settings(ChatSettings, **settings)
    app = App(settings=config)
    app.static("/static", str(HERE / "static"))

    if config.redis_url:
        from trellis.contrib.redis import RedisChannels

        channels = app.install(
            Channels(RedisChannels(config.redis_url, prefix=config.redis_prefix))
        )
    else:
        channels = app.install(Channels())

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return render("index.html", name_max=NAME_MAX, room_pattern=ROOM_PATTERN[1:-1])

    @app.websocket("/ws/{room}")
    async def chat(
        websocket: WebSocket,
        room: Annotated[str, PathParam(pattern=ROOM_PATTERN)],
        name: Annotated[str, Query(min_length=1, max_length=NAME_MAX)],
    ) -> None:
        await websocket.accept()
        # Joined before the notice goes out, so the newcomer hears its own "joined": the
        # client knows from it that it is in the room.
        await channels.join(room, websocket)
        joined = Event(type="joined", room=room, name=name)
        await channels.publish(room, joined.model_dump(exclude_none=True))
        try:
            while True:
                try:
                    say = await websocket.receive_model(Say)
                except WebSocketDataError as exc:
                    # Only the sender hears of its mistake; the connection stays open.
                    await websocket.send_json(
                        {"type": "error", "detail": str(exc), "errors": exc.errors}
                    )
                    continue
                said = Event(type="message", room=room, name=name, text=say.text)
                await channels.publish(room, said.model_dump())
        finally:
            # The client has gone (receive_model raised WebSocketDisconnect): it left the
            # group with its connection; tell the others.
            left = Event(type="left", room=room, name=name)
            await channels.publish(room, left.model_dump(exclude_none=True))

    return app


app = create_app()

if __name__ == "__main__":
    app.run()
