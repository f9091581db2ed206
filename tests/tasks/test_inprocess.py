"""The task API on the in-process backend: send, delay, retries, timeouts, periodic, typing."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from trellis import App
from trellis.exceptions import AppFrozenError, ConfigurationError
from trellis.tasks import (
    Backoff,
    InProcessBackend,
    Job,
    Schedule,
    Task,
    TaskArgumentsError,
    TaskError,
)
from trellis.testing import AsyncTestClient, TestClient

pytestmark = pytest.mark.anyio


def make_app() -> App:
    return App(debug=True)


class Address(BaseModel):
    city: str
    zip: str


# -- sending and running ---------------------------------------------------------------------


def test_a_job_sent_from_a_handler_runs_after_the_response() -> None:
    app = make_app()
    ran: list[tuple[int, str]] = []

    @app.task
    async def welcome(user_id: int, greeting: str = "hello") -> None:
        ran.append((user_id, greeting))

    @app.post("/signup")
    async def signup(user_id: int) -> dict[str, str]:
        job = await welcome.send(user_id)
        assert ran == []  # sent, not run inline
        return {"job": job.id}

    with TestClient(app) as client:
        response = client.post("/signup", params={"user_id": "7"})
        assert response.status_code == 200
        assert len(response.json()["job"]) == 32
        client.call(app.tasks.join)
        assert ran == [(7, "hello")]


def test_calling_a_task_runs_it_inline_without_a_backend() -> None:
    app = make_app()

    @app.task
    async def double(n: int) -> int:
        return n * 2

    @app.task
    def triple(n: int) -> int:
        return n * 3

    assert isinstance(double, Task) and double.name.endswith("double")
    assert asyncio.run(double(4)) == 8
    assert triple(4) == 12
    assert double.__doc__ is None and double.__wrapped__ is not None  # type: ignore[attr-defined]


async def test_sync_tasks_run_in_the_apps_thread_pool() -> None:
    import threading

    app = make_app()
    threads: list[str] = []

    @app.task
    def work() -> None:
        threads.append(threading.current_thread().name)

    async with AsyncTestClient(app):
        await work.send()
        await app.tasks.join()
    assert threads and threads[0] != threading.main_thread().name


async def test_tasks_send_tasks_and_join_waits_for_all() -> None:
    app = make_app()
    ran: list[str] = []

    @app.task
    async def second(n: int) -> None:
        await asyncio.sleep(0.05)
        ran.append(f"second {n}")

    @app.task
    async def first(n: int) -> None:
        ran.append(f"first {n}")
        await second.send(n + 1)

    async with AsyncTestClient(app):
        await first.send(1)
        await app.tasks.join()
        assert ran == ["first 1", "second 2"]


async def test_sending_outside_the_running_app_is_refused() -> None:
    app = make_app()

    @app.task
    async def noop() -> None: ...

    with pytest.raises(TaskError, match="in-process task backend runs jobs while the app runs"):
        await noop.send()


# -- typed arguments ----------------------------------------------------------------------------


async def test_arguments_are_checked_against_the_hints_at_send_time() -> None:
    app = make_app()

    @app.task
    async def ship(order: int, address: Address, *, express: bool = False) -> None: ...

    async with AsyncTestClient(app):
        with pytest.raises(TaskArgumentsError) as info:
            await ship.send("seven", {"city": "Lyon"})  # type: ignore[arg-type]
        message = str(info.value)
        assert message.startswith(f"{ship.name}.send(): ")
        assert "argument 'order': Input should be a valid integer" in message
        assert "argument 'address.zip': Field required" in message
        with pytest.raises(TaskArgumentsError, match="unexpected keyword argument 'fast'"):
            await ship.send(1, Address(city="Lyon", zip="69001"), fast=True)  # type: ignore[call-arg]
        with pytest.raises(TaskArgumentsError, match="missing a required argument: 'address'"):
            await ship.send(1)  # type: ignore[call-arg]


async def test_arguments_arrive_in_their_declared_types_as_copies() -> None:
    app = make_app()
    seen: list[Any] = []

    @app.task
    async def store(when: datetime, address: Address, tags: list[str], note: Any = None) -> None:
        seen.extend([when, address, tags, note])

    tags = ["a"]
    moment = datetime(2025, 5, 1, 12, 30, tzinfo=UTC)
    async with AsyncTestClient(app):
        await store.send(moment, {"city": "Lyon", "zip": "69001"}, tags, note={"n": 1})  # type: ignore[arg-type]
        tags.append("changed after sending")
        await app.tasks.join()
    assert seen == [moment, Address(city="Lyon", zip="69001"), ["a"], {"n": 1}]
    assert isinstance(seen[1], Address)


async def test_arguments_that_are_not_json_are_refused() -> None:
    app = make_app()

    @app.task
    async def keep(thing: Any) -> None: ...

    async with AsyncTestClient(app):
        with pytest.raises(TaskArgumentsError, match="argument 'thing' is not JSON-serialisable"):
            await keep.send(object())


# -- delays ------------------------------------------------------------------------------------


async def test_send_in_and_send_at_wait_until_the_job_is_due() -> None:
    app = make_app()
    ran: dict[str, float] = {}

    @app.task
    async def mark(label: str) -> None:
        ran[label] = time.monotonic()

    async with AsyncTestClient(app):
        start = time.monotonic()
        job = await mark.send_in(0.3, "in")
        assert isinstance(job, Job) and job.run_at is not None
        assert job.run_at.tzinfo is UTC
        await mark.send_at(datetime.now(UTC) + timedelta(seconds=0.2), "at")
        await mark.send_in(timedelta(0), "now")
        await asyncio.sleep(0.05)
        assert list(ran) == ["now"]
        await app.tasks.join()
    assert ran["in"] - start >= 0.3
    assert ran["at"] - start >= 0.19
    assert ran["at"] < ran["in"]
    with pytest.raises(TaskArgumentsError, match="the delay must be 0 or more"):
        await mark.send_in(-1, "x")


# -- retries, backoff, timeouts -------------------------------------------------------------------


async def test_failed_jobs_are_retried_with_exponential_backoff_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    calls: list[float] = []

    @app.task(retries=2, backoff=Backoff(base=0.2, factor=2, jitter=False))
    async def fragile() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("the mail server said no")

    caplog.set_level(logging.WARNING, logger="trellis.tasks")
    async with AsyncTestClient(app):
        job = await fragile.send()
        await app.tasks.join()
    assert len(calls) == 3  # retries=2: three attempts, then given up
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert 0.2 <= gaps[0] < 1.2 and 0.4 <= gaps[1] < 1.4
    records = [r for r in caplog.records if r.name == "trellis.tasks"]
    assert [r.levelname for r in records] == ["WARNING", "WARNING", "ERROR"]
    assert f"(job {job.id}) failed on attempt 1 of 3; retrying in 0.2 s" in records[0].message
    assert f"(job {job.id}) failed on attempt 3 of 3; giving up" in records[2].message
    assert all(r.exc_info and "the mail server said no" in str(r.exc_info[1]) for r in records)
    assert getattr(records[2], "job_id") == job.id  # noqa: B009 - an extra field of the record


async def test_a_job_that_succeeds_on_a_retry_stops_there() -> None:
    app = make_app()
    attempts: list[int] = []

    @app.task(retries=5, backoff=0.01)
    def sometimes() -> None:
        attempts.append(1)
        if len(attempts) < 2:
            raise ValueError("first time unlucky")

    async with AsyncTestClient(app):
        await sometimes.send()
        await app.tasks.join()
    assert len(attempts) == 2


async def test_an_attempt_longer_than_the_timeout_fails_and_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    attempts: list[int] = []

    @app.task(timeout=0.1, retries=1, backoff=0.01)
    async def slow() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(5)

    caplog.set_level(logging.WARNING, logger="trellis.tasks")
    async with AsyncTestClient(app):
        started = time.monotonic()
        await slow.send()
        await app.tasks.join()
    assert len(attempts) == 2 and time.monotonic() - started < 3
    assert "timed out on attempt 1 of 2; retrying" in caplog.text


def test_backoff_grows_is_capped_and_jitters_within_half() -> None:
    fixed = Backoff(base=1, max=5, factor=2, jitter=False)
    assert [fixed.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert fixed.delay(10_000) == 5
    jittered = Backoff(base=4, max=100, jitter=True)
    draws = [jittered.delay(2) for _ in range(200)]
    assert all(4 <= d <= 8 for d in draws) and len(set(draws)) > 1
    with pytest.raises(ConfigurationError):
        Backoff(base=-1)
    with pytest.raises(ConfigurationError):
        Backoff(factor=0.5)


# -- periodic ---------------------------------------------------------------------------------


async def test_periodic_tasks_run_on_their_ticks_while_the_app_runs() -> None:
    app = make_app()
    ticks: list[float] = []

    @app.periodic(timedelta(seconds=0.2))
    async def beat() -> None:
        ticks.append(time.time())

    @app.task(schedule=0.25)
    async def other(note: str = "scheduled") -> None:
        ticks.append(-1)

    async with AsyncTestClient(app):
        await asyncio.sleep(0.75)
    count = len(ticks)
    assert 4 <= count <= 8  # 3-4 ticks of each; the machine may be busy
    beats = [t for t in ticks if t > 0]
    assert all(b - a > 0.1 for a, b in itertools.pairwise(beats))  # no tick run twice
    await asyncio.sleep(0.3)
    assert len(ticks) == count  # stopped with the app


def test_schedules_tick_on_the_clock_strictly_after_the_time_given() -> None:
    every_5_min = Schedule(timedelta(minutes=5))
    noon = datetime(2025, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    assert every_5_min.next_after(noon) == noon + 300  # aligned on the clock, strictly after
    assert every_5_min.next_after(noon + 1) == noon + 300
    cron = Schedule("*/15 * * * *")
    assert cron.next_after(noon) == noon + 900
    assert Schedule("* * * * * */10").next_after(noon + 0.5) == noon + 10  # seconds field
    paris = Schedule("0 9 * * *", tz="Europe/Paris")  # 09:00 in Paris is 08:00 UTC in winter
    assert paris.next_after(noon) == datetime(2025, 1, 2, 8, 0, tzinfo=UTC).timestamp()
    assert repr(paris) == "Schedule('0 9 * * *', tz=Europe/Paris)"


def test_periodic_tasks_need_defaults_for_every_parameter() -> None:
    app = make_app()
    with pytest.raises(ConfigurationError, match="parameter 'user_id' needs a default"):

        @app.periodic("*/5 * * * *")
        async def report(user_id: int) -> None: ...


def test_bad_schedules_are_refused_when_declared() -> None:
    app = make_app()
    with pytest.raises(ConfigurationError, match="not a cron expression"):
        app.periodic("every day")
    with pytest.raises(ConfigurationError, match="must be positive"):
        app.periodic(timedelta(0))
    with pytest.raises(ConfigurationError, match="not a known time zone"):
        app.periodic("0 9 * * *", tz="Mars/Olympus")
    with pytest.raises(ConfigurationError, match="tz= applies to cron expressions"):
        app.periodic(60, tz="Europe/Paris")


# -- declaration mistakes -----------------------------------------------------------------------


def test_declaration_mistakes_are_reported_with_the_fix() -> None:
    app = make_app()

    @app.task(name="mail")
    async def one() -> None: ...

    with pytest.raises(ConfigurationError, match=r"two tasks are named 'mail'.*name=\.\.\."):

        @app.task(name="mail")
        async def two() -> None: ...

    with pytest.raises(ConfigurationError, match="parameter 'items' is variadic positional"):

        @app.task
        async def many(*items: int) -> None: ...

    with pytest.raises(ConfigurationError, match="retries must be 0 or more"):
        app.task(retries=-1)(one.fn)
    with pytest.raises(ConfigurationError, match="timeout must be positive"):
        app.task(timeout=0)(one.fn)
    assert "mail" in app.tasks and app.tasks["mail"] is one and len(app.tasks) == 1


def test_hints_that_do_not_resolve_fail_at_start_up() -> None:
    app = make_app()

    @app.task
    async def broken(value: Missing) -> None: ...  # type: ignore[name-defined] # noqa: F821

    with (
        pytest.raises(Exception, match="a type hint cannot be resolved"),
        TestClient(app),
    ):
        pass


def test_tasks_are_declared_before_the_app_starts() -> None:
    app = make_app()
    with TestClient(app):
        pass
    with pytest.raises(AppFrozenError, match=r"App.task\(\)"):

        @app.task
        async def late() -> None: ...


def test_one_backend_per_app() -> None:
    app = make_app()
    app.tasks.use(InProcessBackend())
    with pytest.raises(ConfigurationError, match="a task backend is installed already"):
        app.tasks.use(InProcessBackend())
    with pytest.raises(ConfigurationError, match="is not a task backend"):
        make_app().tasks.use(object())  # type: ignore[arg-type]


# -- shut-down ---------------------------------------------------------------------------------


async def test_shutdown_awaits_running_jobs_and_drops_waiting_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    finished: list[str] = []

    @app.task
    async def slow(label: str) -> None:
        await asyncio.sleep(0.3)
        finished.append(label)

    caplog.set_level(logging.WARNING, logger="trellis.tasks")
    async with AsyncTestClient(app):
        await slow.send("running")
        later = await slow.send_in(60, "later")
        await asyncio.sleep(0.05)
    assert finished == ["running"]  # the shut-down waited for it
    assert "1 waiting job(s) dropped at shut-down" in caplog.text and later.id in caplog.text


async def test_shutdown_cancels_jobs_that_outlive_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    app.tasks.use(InProcessBackend(shutdown_timeout=0.1))

    @app.task
    async def endless() -> None:
        await asyncio.sleep(60)

    caplog.set_level(logging.WARNING, logger="trellis.tasks")
    started = time.monotonic()
    async with AsyncTestClient(app):
        job = await endless.send()
        await asyncio.sleep(0.05)
    assert time.monotonic() - started < 5
    assert f"Job {job.id} still running after 0.1 s at shut-down: cancelled" in caplog.text


# -- the worker command with this backend -------------------------------------------------------


def test_trellis_worker_refuses_the_in_process_backend(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from trellis.cli import main

    (tmp_path / "inprocess_site.py").write_text(
        "from trellis import App\napp = App(debug=True)\n\n@app.task\nasync def a() -> None: ...\n"
    )
    result = CliRunner().invoke(main, ["worker", str(tmp_path / "inprocess_site.py")])
    assert result.exit_code == 2
    assert "runs its tasks in-process" in result.output
    assert "RedisTasks" in result.output


def test_import_trellis_does_not_load_the_task_machinery() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import sys, json, trellis; "
        "print(json.dumps([m for m in ('trellis.tasks', 'saq', 'croniter') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
