"""Dependency injection: providers, generators, caching, overrides, app scope, cycles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import pytest

from trellis import App, HTTPError, Request, Router
from trellis.exceptions import ConfigurationError
from trellis.handlers.params import Depends
from trellis.testing import TestClient

events: list[str] = []


async def get_db() -> AsyncIterator[str]:
    events.append("open")
    try:
        yield "db"
    except RuntimeError:
        events.append("rollback")
        raise
    else:
        events.append("commit")
    finally:
        events.append("close")


def get_sync_resource() -> Iterator[str]:
    events.append("sync-open")
    yield "res"
    events.append("sync-close")


def counter() -> int:
    events.append("counter")
    return len(events)


def user_from_query(name: str = "anon") -> str:
    return name.upper()


def current_user(request: Request, user: Annotated[str, Depends(user_from_query)]) -> str:
    return f"{user}@{request.url.path}"


@pytest.fixture(autouse=True)
def _reset() -> None:
    events.clear()


def test_generator_clean_up_runs_after_the_response_and_sees_errors() -> None:
    app = App(debug=True)

    @app.get("/ok")
    async def ok(db: Annotated[str, Depends(get_db)]) -> dict[str, str]:
        events.append("handler")
        return {"db": db}

    @app.get("/fail")
    async def fail(db: Annotated[str, Depends(get_db)]) -> None:
        raise RuntimeError("boom")

    with TestClient(app) as client:
        assert client.get("/ok").json() == {"db": "db"}
        assert events == ["open", "handler", "commit", "close"]
        events.clear()
        assert client.get("/fail").status_code == 500
        assert events == ["open", "rollback", "close"]


def test_sync_generators_and_one_call_per_request() -> None:
    app = App(debug=True)

    def a(n: Annotated[int, Depends(counter)]) -> int:
        return n

    def b(n: Annotated[int, Depends(counter)]) -> int:
        return n

    @app.get("/")
    def index(
        x: Annotated[int, Depends(a)],
        y: Annotated[int, Depends(b)],
        res: Annotated[str, Depends(get_sync_resource)],
    ) -> dict[str, object]:
        return {"x": x, "y": y, "res": res}

    with TestClient(app) as client:
        assert client.get("/").json() == {"x": 1, "y": 1, "res": "res"}
    assert events == ["counter", "sync-open", "sync-close"]


def test_dependencies_of_dependencies_read_the_request() -> None:
    app = App(debug=True)

    @app.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> str:
        return user

    with TestClient(app) as client:
        assert client.get("/me?name=ann").text == "ANN@/me"


def test_router_dependencies_guard_every_route() -> None:
    def require_key(key: str = "") -> None:
        if key != "secret":
            raise HTTPError(403, "bad key")

    api = Router("/api", dependencies=[Depends(require_key)])

    @api.get("/data")
    async def data() -> dict[str, int]:
        return {"n": 1}

    app = App(debug=True)
    app.include(api)
    with TestClient(app) as client:
        assert client.get("/api/data").status_code == 403
        assert client.get("/api/data?key=secret").json() == {"n": 1}


def test_overrides_for_tests() -> None:
    app = App(debug=True)

    @app.get("/")
    async def index(db: Annotated[str, Depends(get_db)]) -> str:
        return db

    async def fake_db() -> str:
        return "fake"

    app.dependency_overrides[get_db] = fake_db
    with TestClient(app) as client:
        assert client.get("/").text == "fake"
    assert events == []


def test_app_scoped_dependency_is_made_once() -> None:
    app = App(debug=True)

    def settings_client() -> str:
        events.append("made")
        return "client"

    @app.get("/")
    async def index(c: Annotated[str, Depends(settings_client, scope="app")]) -> str:
        return c

    with TestClient(app) as client:
        assert client.get("/").text == "client"
        assert client.get("/").text == "client"
    assert events == ["made"]


def a_provider(b: Annotated[str, Depends(lambda: "x")]) -> str:
    return b


def cycle_one(x: Annotated[str, Depends(lambda: "")]) -> str:
    return x


def test_cycles_fail_at_start_up_with_the_chain() -> None:
    def first(value: str = "") -> str:
        return value

    def second(v: Annotated[str, Depends(first)]) -> str:
        return v

    # make first depend on second: a cycle
    first.__annotations__["value"] = Annotated[str, Depends(second)]
    app = App(debug=True)

    @app.get("/")
    async def index(v: Annotated[str, Depends(first)]) -> str:
        return v

    with pytest.raises(ConfigurationError) as info:
        app.build()
    assert "dependency cycle" in str(info.value)
    assert "first -> " in str(info.value)
    assert "second" in str(info.value)


def test_dependency_input_errors_are_422() -> None:
    def paging(page: int = 1) -> int:
        return page

    app = App(debug=True)

    @app.get("/")
    async def index(page: Annotated[int, Depends(paging)]) -> int:
        return page

    with TestClient(app) as client:
        bad = client.get("/?page=x")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "page"]


def test_class_based_views_get_typed_parameters_and_dependencies() -> None:
    from trellis import View

    def get_store() -> dict[int, str]:
        return {1: "one", 2: "two"}

    app = App(debug=True)

    @app.route("/things/{thing_id:int}")
    class ThingView(View):
        async def get(
            self,
            thing_id: int,
            store: Annotated[dict[int, str], Depends(get_store)],
            upper: bool = False,
        ) -> dict[str, str]:
            name = store.get(thing_id, "?")
            return {"name": name.upper() if upper else name}

    with TestClient(app) as client:
        assert client.get("/things/2?upper=true").json() == {"name": "TWO"}
        assert client.get("/things/1?upper=maybe").status_code == 422


def test_app_level_dependencies_run_before_every_route() -> None:
    seen: list[str] = []

    def record(request: Request) -> None:
        seen.append(request.url.path)

    app = App(debug=True, dependencies=[Depends(record)])

    @app.get("/a")
    async def a() -> str:
        return "a"

    api = Router("/api")

    @api.get("/b")
    async def b() -> str:
        return "b"

    app.include(api)
    with TestClient(app) as client:
        assert client.get("/a").text == "a"
        assert client.get("/api/b").text == "b"
    assert seen == ["/a", "/api/b"]


# -- scope="handler": clean-up before the response ------------------------------------------


def _handler_scope_app() -> App:
    app = App(debug=True)

    async def unit_of_work() -> AsyncIterator[list[str]]:
        work: list[str] = []
        try:
            yield work
        except HTTPError:
            events.append("rolled back (http error)")
            raise
        if "fail-commit" in work:
            raise HTTPError(409, "the commit failed")
        events.append("committed")

    def sync_unit() -> Iterator[str]:
        yield "sync"
        events.append("sync committed")

    Work = Annotated[list[str], Depends(unit_of_work, scope="handler")]

    class Body:
        def __init__(self) -> None:
            events.append("response built")

        def __str__(self) -> str:
            return "body"

    @app.get("/ok")
    async def ok(work: Work) -> str:
        events.append("handler")
        Body()  # an event after the handler returns would come after this one
        return "ok"

    @app.get("/fail-commit")
    async def fail_commit(work: Work) -> str:
        work.append("fail-commit")
        return "never sent"

    @app.get("/refused")
    async def refused(work: Work) -> str:
        raise HTTPError(403, "no")

    @app.get("/sync")
    def sync(value: Annotated[str, Depends(sync_unit, scope="handler")]) -> str:
        return value

    @app.get("/invalid")
    async def invalid(work: Work, n: int) -> str:
        return "unreachable"

    return app


def test_handler_scope_cleans_up_before_the_response_is_sent() -> None:
    with TestClient(_handler_scope_app()) as client:
        assert client.get("/ok").text == "ok"
    assert events == ["handler", "response built", "committed"]


def test_an_error_in_a_handler_scope_clean_up_becomes_the_answer() -> None:
    with TestClient(_handler_scope_app()) as client:
        response = client.get("/fail-commit")
    assert response.status_code == 409
    assert response.json()["detail"] == "the commit failed"
    assert "never sent" not in response.text


def test_handler_scope_clean_up_sees_the_handlers_error() -> None:
    with TestClient(_handler_scope_app()) as client:
        assert client.get("/refused").status_code == 403
    assert events == ["rolled back (http error)"]


def test_handler_scope_works_for_sync_generators_and_invalid_input() -> None:
    with TestClient(_handler_scope_app()) as client:
        assert client.get("/sync").text == "sync"
        assert events == ["sync committed"]
        # The handler never runs; the unit of work is still closed (no commit).
        assert client.get("/invalid", params={"n": "x"}).status_code == 422
    assert "committed" not in events


def test_depends_rejects_an_unknown_scope() -> None:
    with pytest.raises(ValueError, match="'request', 'handler' or 'app'"):
        Depends(counter, scope="session")  # type: ignore[arg-type]
