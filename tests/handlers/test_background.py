"""Background tasks run after the response, in order; a failing one is logged, not hidden."""

from __future__ import annotations

import logging
import threading

import pytest

from trellis import App, HTTPError
from trellis.background import BackgroundTasks
from trellis.testing import TestClient


def test_tasks_run_after_the_response_in_order_sync_and_async() -> None:
    done: list[str] = []
    app = App(debug=True)

    async def notify(who: str) -> None:
        done.append(f"async {who}")

    def audit(who: str) -> None:
        done.append(f"sync {who} in {threading.current_thread().name.split('_')[0]}")

    @app.post("/signup")
    async def signup(name: str, tasks: BackgroundTasks) -> dict[str, int]:
        tasks.add_task(notify, name)
        tasks.add_task(audit, who=name)
        done.append("handler")
        return {"queued": len(tasks)}

    with TestClient(app) as client:
        assert client.post("/signup?name=ann").json() == {"queued": 2}
    assert done[0] == "handler"
    assert done[1] == "async ann"
    assert done[2].startswith("sync ann in trellis-worker")


def test_a_failing_task_is_logged_and_the_next_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []
    app = App(debug=True)

    def broken() -> None:
        raise RuntimeError("smtp down")

    @app.get("/")
    async def index(tasks: BackgroundTasks) -> str:
        tasks.add_task(broken)
        tasks.add_task(done.append, "after")
        return "ok"

    with caplog.at_level(logging.ERROR, logger="trellis.error"), TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == "ok"
    assert done == ["after"]
    assert any("background task" in r.getMessage() for r in caplog.records)
    assert any("smtp down" in (r.exc_text or "") for r in caplog.records)


def test_tasks_do_not_run_when_the_handler_failed() -> None:
    done: list[str] = []
    app = App(debug=True)

    @app.get("/")
    async def index(tasks: BackgroundTasks) -> str:
        tasks.add_task(done.append, "never")
        raise HTTPError(409, "conflict")

    with TestClient(app) as client:
        assert client.get("/").status_code == 409
    assert done == []
