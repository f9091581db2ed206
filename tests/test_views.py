"""Class-based views: one method per HTTP verb."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from trellis import App, Request, Response, Router, View
from trellis.exceptions import ConfigurationError
from trellis.testing import TestClient


def make_app() -> tuple[App, list[Any]]:
    app = App(debug=True)
    instances: list[Any] = []

    @app.route("/items/{id:int}")
    class ItemView(View):
        def __init__(self) -> None:
            instances.append(self)
            self.store: dict[int, str] = {1: "one"}

        async def get(self, id: int) -> dict[str, Any]:
            return {"id": id, "name": self.store.get(id)}

        def put(self, request: Request, id: int) -> str:
            self.store[id] = request.query["name"]
            return f"stored {id}"

        async def delete(self, id: int) -> None:
            self.store.pop(id, None)

    return app, instances


def test_every_verb_the_view_defines_is_routed() -> None:
    app, instances = make_app()
    with TestClient(app) as client:
        assert client.get("/items/1").json() == {"id": 1, "name": "one"}
        assert client.put("/items/2?name=two").text == "stored 2"
        assert client.get("/items/2").json() == {"id": 2, "name": "two"}
        assert client.delete("/items/2").status_code == 204
        assert client.get("/items/2").json() == {"id": 2, "name": None}
        head = client.head("/items/1")
        assert head.status_code == 200 and head.content == b""
        response = client.post("/items/1")
        assert response.status_code == 405
        assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
        assert client.options("/items/1").headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert len(instances) == 1  # one instance, made at registration
    assert app.url_for("ItemView", id=3) == "/items/3"


def test_sync_view_methods_run_in_the_thread_pool() -> None:
    app = App(debug=True)

    @app.route("/where")
    class Where(View):
        def get(self) -> str:
            return threading.current_thread().name

        async def post(self) -> str:
            return threading.current_thread().name

    with TestClient(app) as client:
        assert client.get("/where").text.startswith("trellis-worker")
        assert not client.post("/where").text.startswith("trellis-worker")


def test_methods_restrict_the_verbs_registered() -> None:
    app = App(debug=True)

    class Both(View):
        async def get(self) -> str:
            return "get"

        async def post(self) -> str:
            return "post"

    app.route("/only-post", methods=["POST"], name="only_post")(Both)
    app.route("/only-get", methods=["GET"], name="only_get")(Both)
    app.get("/get-decorator", name="get_decorator")(Both)
    app.route("/all", name="all")(Both)
    with TestClient(app) as client:
        assert client.post("/only-post").text == "post"
        assert client.get("/only-post").status_code == 405
        assert client.get("/only-get").text == "get"
        assert client.post("/only-get").status_code == 405
        assert client.get("/get-decorator").text == "get"
        assert client.post("/get-decorator").status_code == 405
        assert client.get("/all").text == "get"
        assert client.post("/all").text == "post"


def test_asking_for_a_verb_the_view_lacks_is_an_error() -> None:
    class ReadOnly(View):
        async def get(self) -> str:
            return "x"

    app = App(debug=True)
    with pytest.raises(
        ConfigurationError, match=r"registered for DELETE but defines no delete\(\)"
    ):
        app.route("/r", methods=["GET", "DELETE"])(ReadOnly)
    # HEAD and OPTIONS are automatic: asking for them is fine
    app.route("/r", methods=["GET", "HEAD", "OPTIONS"])(ReadOnly)


def test_a_view_without_verbs_is_an_error() -> None:
    class Empty(View):
        def helper(self) -> None:
            pass

    with pytest.raises(ConfigurationError, match="Empty defines none of the methods"):
        App(debug=True).route("/e")(Empty)


def test_a_view_needing_constructor_arguments_is_an_error() -> None:
    class NeedsArgs(View):
        def __init__(self, db: object) -> None:
            self.db = db

        async def get(self) -> str:
            return "x"

    with pytest.raises(ConfigurationError, match="NeedsArgs cannot be created with no arguments"):
        App(debug=True).route("/n")(NeedsArgs)


def test_views_with_explicit_head_and_options() -> None:
    app = App(debug=True)

    @app.route("/doc")
    class Doc(View):
        async def get(self) -> str:
            return "body"

        async def head(self) -> Response:
            return Response(None, 200, {"x-head": "custom"})

        async def options(self) -> Response:
            return Response(None, 204, {"allow": "GET, HEAD, OPTIONS", "x-options": "custom"})

    with TestClient(app) as client:
        assert client.head("/doc").headers["x-head"] == "custom"
        assert client.options("/doc").headers["x-options"] == "custom"
        assert client.get("/doc").text == "body"


def test_views_in_routers_with_names_and_hooks() -> None:
    calls: list[str] = []
    api = Router("/api", name="api")
    api.before_request(lambda request: calls.append(f"before {request.method}"))

    @api.route("/things/{slug:slug}", name="thing")
    class Thing(View):
        async def get(self, slug: str) -> str:
            return slug

        async def patch(self, slug: str) -> str:
            return f"patched {slug}"

    app = App(debug=True)
    app.include(api)
    with TestClient(app) as client:
        assert client.get("/api/things/a-b").text == "a-b"
        assert client.patch("/api/things/a-b").text == "patched a-b"
    assert calls == ["before GET", "before PATCH"]
    assert app.url_for("api.thing", slug="x") == "/api/things/x"


def test_two_view_classes_with_the_same_name_clash() -> None:
    from trellis.exceptions import RouteConflictError

    def make() -> type[View]:
        class Page(View):
            async def get(self) -> str:
                return "page"

        return Page

    app = App(debug=True)
    app.route("/a")(make())
    app.route("/b")(make())
    with pytest.raises(RouteConflictError, match="'Page'"):
        app.build()


def test_plain_classes_work_as_views_too() -> None:
    app = App(debug=True)

    @app.route("/plain")
    class Plain:
        def get(self) -> str:
            return "plain"

    with TestClient(app) as client:
        assert client.get("/plain").text == "plain"
