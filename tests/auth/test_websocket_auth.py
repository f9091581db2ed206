"""``CurrentUser`` on websocket routes: the handshake is authenticated like a request."""

from __future__ import annotations

import pytest
from auth_helpers import PASSWORD, add_user, make_app

from trellis import Request
from trellis.contrib.auth import CurrentUser, login
from trellis.contrib.db import Database, Session
from trellis.testing import TestClient
from trellis.testing.websocket import WebSocketDenied
from trellis.websockets import WebSocket


def test_websockets_take_tokens_and_sessions(sync_database: Database) -> None:
    app, auth = make_app(sync_database)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: CurrentUser, db: Session) -> None:
        await websocket.accept()
        # the connection that authenticated went back to the pool
        await websocket.send_json({"user": user.email, "busy": db.in_transaction()})
        await websocket.close()

    @app.post("/login")
    async def sign_in(request: Request, db: Session) -> None:
        user = await auth.authenticate(db, "ann@example.com", PASSWORD)
        assert user is not None
        await login(request, user)

    async def setup() -> str:
        user = await add_user(sync_database)
        async with sync_database.transaction() as db:
            return await auth.issue_token(db, user)

    with TestClient(app) as client:
        token = client.call(setup)
        with pytest.raises(WebSocketDenied) as denied, client.websocket_connect("/ws"):
            pass
        assert denied.value.status == 401
        assert denied.value.headers.get("www-authenticate") == "Bearer"
        bearer = {"authorization": f"Bearer {token}"}
        with client.websocket_connect("/ws", headers=bearer) as websocket:
            assert websocket.receive_json() == {"user": "ann@example.com", "busy": False}
        client.post("/login")
        with client.websocket_connect("/ws") as websocket:  # the session cookie
            assert websocket.receive_json() == {"user": "ann@example.com", "busy": False}
