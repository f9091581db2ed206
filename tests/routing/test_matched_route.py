"""``scope["route"]``: the route that answered, as the application matched it."""

from __future__ import annotations

from typing import Any

from trellis import App, Request, Router
from trellis.routing import MatchedRoute
from trellis.testing import TestClient
from trellis.types import Receive, Scope, Send
from trellis.websockets import WebSocket


def seen_by(app: App) -> list[MatchedRoute | None]:
    """Record ``scope["route"]`` of every HTTP request, after the app answered it."""
    seen: list[MatchedRoute | None] = []

    class Record:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.inner(scope, receive, send)
            if scope["type"] == "http":
                seen.append(scope.get("route"))

    app.add_middleware(Record)
    return seen


def described(route: MatchedRoute | None) -> tuple[str, str, str | None] | None:
    return None if route is None else (route.path, route.template, route.name)


def test_handlers_see_their_route() -> None:
    app = App(debug=True)

    @app.get("/users/{id:int}/files/{name:path}", name="user_file")
    async def user_file(id: int, name: str, request: Request) -> dict[str, Any]:
        route = request.scope["route"]
        return {"path": route.path, "template": route.template, "name": route.name}

    with TestClient(app) as client:
        assert client.get("/users/7/files/a/b.txt").json() == {
            "path": "/users/{id:int}/files/{name:path}",
            "template": "/users/{id}/files/{name}",
            "name": "user_file",
        }


def test_every_kind_of_answer() -> None:
    app = App(debug=True)
    seen = seen_by(app)

    @app.get("/")
    async def index() -> str:
        return "home"

    @app.get("/items/{id:int}")
    async def item(id: int) -> int:
        return id

    api = Router(prefix="/api", name="api")

    @api.get("/{slug}.json")
    async def doc(slug: str) -> str:
        return slug

    app.include(api)

    async def legacy(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"legacy"})

    app.mount("/legacy", legacy, name="legacy")

    with TestClient(app) as client:
        assert client.get("/").status_code == 200
        assert client.head("/items/3").status_code == 200
        assert client.get("/api/readme.json").status_code == 200
        assert client.options("/items/3").status_code == 204
        assert client.delete("/items/3").status_code == 405
        assert client.get("/legacy/x/y").text == "legacy"
        assert client.get("/nowhere").status_code == 404
        assert client.get("/items/3/").status_code == 308  # to /items/3: not that route's answer
    assert [described(r) for r in seen] == [
        ("/", "/", "index"),
        ("/items/{id:int}", "/items/{id}", "item"),
        ("/api/{slug}.json", "/api/{slug}.json", "api.doc"),
        ("/items/{id:int}", "/items/{id}", None),  # automatic OPTIONS
        ("/items/{id:int}", "/items/{id}", None),  # 405: the path matched, not the method
        ("/legacy/*", "/legacy/*", "legacy"),
        None,
        None,
    ]
    assert seen[0] is not None and seen[0].endpoint is index


def test_fast_path_sets_the_route_as_well() -> None:
    # No middleware: the app answers static paths without _dispatch; the handler reads it.
    app = App(debug=True)

    @app.get("/ping")
    async def ping(request: Request) -> str:
        return request.scope["route"].template  # type: ignore[no-any-return]

    with TestClient(app) as client:
        assert client.get("/ping").text == "/ping"
        assert client.head("/ping").status_code == 200


def test_host_routes_and_route_middleware_see_the_route() -> None:
    seen: list[str] = []

    class Peek:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["route"].template)  # before the handler: already there
            await self.app(scope, receive, send)

    teams = Router(host="{team}.example.com")

    @teams.get("/docs/{page}", middleware=[Peek])
    async def page(team: str, page: str) -> str:
        return f"{team}:{page}"

    app = App(debug=True)
    app.include(teams)
    with TestClient(app) as client:
        response = client.get("/docs/intro", headers={"host": "blue.example.com"})
        assert response.text == "blue:intro"
    assert seen == ["/docs/{page}"]


def test_websocket_routes() -> None:
    app = App(debug=True)

    @app.websocket("/ws/{room}", name="room")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        route = websocket.scope["route"]
        await websocket.send_text(f"{route.template} {route.name}")
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws/lobby") as ws:
        assert ws.receive_text() == "/ws/{room} room"


def test_a_mounted_trellis_app_keeps_its_own_route_in_its_scope() -> None:
    inner = App(debug=True)

    @inner.get("/hello/{name}")
    async def hello(name: str, request: Request) -> str:
        return request.scope["route"].template  # type: ignore[no-any-return]

    outer = App(debug=True)
    seen = seen_by(outer)
    outer.mount("/inner", inner)
    with TestClient(outer) as client:
        assert client.get("/inner/hello/ann").text == "/hello/{name}"
    assert [described(r) for r in seen] == [("/inner/*", "/inner/*", None)]


def test_matched_route_by_hand() -> None:
    route = MatchedRoute("/a/{x:int}/{y}")
    assert (route.path, route.template, route.name, route.endpoint) == (
        "/a/{x:int}/{y}",
        "/a/{x}/{y}",
        None,
        None,
    )
    assert repr(route) == "MatchedRoute('/a/{x:int}/{y}', name=None)"
    assert MatchedRoute("/x", template="/y").template == "/y"
