"""The tasks of one app and the backend that runs them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from datetime import timedelta, tzinfo
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

from trellis.exceptions import ConfigurationError
from trellis.tasks._schedule import Schedule
from trellis.tasks._task import Backoff, Task, TaskError

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["TaskBackend", "TaskRegistry"]

P = ParamSpec("P")
R = TypeVar("R")


@runtime_checkable
class TaskBackend(Protocol):
    """Where jobs wait and what runs them: ``InProcessBackend``, ``RedisTasks``, or yours.

    A backend stores a job's task name, its JSON arguments and when it is due; whatever runs
    the job calls ``task.run(arguments, job_id=..., attempt=...)`` and, when that raises,
    ``task.failed(exc, ...)``, which logs the failure and says how long to wait before the next
    attempt (``None``: give up).
    """

    async def start(self, registry: TaskRegistry) -> None:
        """Connect (or start running jobs): called when the app starts."""

    async def stop(self) -> None:
        """Disconnect (or finish the jobs running): called when the app stops."""

    async def enqueue(
        self,
        task: Task[..., Any],
        arguments: dict[str, Any],
        *,
        job_id: str,
        run_at: float | None,
    ) -> None:
        """Store a job: ``arguments`` are JSON-ready; ``run_at`` is epoch seconds or ``None``."""

    async def work(self, registry: TaskRegistry, *, concurrency: int, grace: float) -> None:
        """Run jobs (and the periodic schedules) in this process until told to stop.

        ``trellis worker`` calls it after the app has started. On SIGTERM or SIGINT, jobs that
        are running get ``grace`` seconds to finish; the others go back to the queue.
        """


class TaskRegistry:
    """The tasks of an app (``app.tasks``) and the backend they are sent to.

    The backend is the ``InProcessBackend`` unless a plugin installs another one (such as
    ``app.install(RedisTasks(url))``); it starts and stops with the app.
    """

    def __init__(self, app: App | None = None) -> None:
        self._app = app
        self._tasks: dict[str, Task[..., Any]] = {}
        self._backend: TaskBackend | None = None
        self._started = False

    # -- registration ----------------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        retries: int = 3,
        backoff: Backoff | float | None = None,
        timeout: float | timedelta | None = None,
        schedule: Schedule | str | timedelta | float | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        retries: int = 3,
        backoff: Backoff | float | None = None,
        timeout: float | timedelta | None = None,
        schedule: Schedule | str | timedelta | float | None = None,
    ) -> Any:
        """Register a task (``app.task`` delegates here); see ``App.task``."""
        if self._app is not None:
            self._app._check_open("task")
        plan = None if schedule is None else Schedule.of(schedule)

        def register(func: Callable[..., Any]) -> Task[..., Any]:
            task: Task[..., Any] = Task(
                func,
                registry=self,
                name=name,
                retries=retries,
                backoff=backoff,
                timeout=timeout,
                schedule=plan,
            )
            other = self._tasks.get(task.name)
            if other is not None:
                raise ConfigurationError(
                    f"two tasks are named {task.name!r} ({_where(other.fn)} and {_where(func)}); "
                    "give one another name: @app.task(name=...)"
                )
            self._tasks[task.name] = task
            return task

        return register if fn is None else register(fn)

    def periodic(
        self,
        schedule: Schedule | str | timedelta | float,
        /,
        *,
        tz: str | tzinfo | None = None,
        name: str | None = None,
        retries: int = 3,
        backoff: Backoff | float | None = None,
        timeout: float | timedelta | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """Register a task that runs on a schedule (``app.periodic`` delegates here)."""
        if tz is not None:
            if isinstance(schedule, Schedule):
                raise ConfigurationError("give tz= to Schedule(...), not next to it")
            if not isinstance(schedule, str):
                raise ConfigurationError("tz= applies to cron expressions, not to intervals")
            schedule = Schedule(schedule, tz=tz)
        return self.task(
            name=name, retries=retries, backoff=backoff, timeout=timeout, schedule=schedule
        )

    def use(self, backend: TaskBackend) -> None:
        """Send this app's jobs to ``backend`` (plugins call it in ``setup(app)``).

        Raises:
            ConfigurationError: ``backend`` is not a ``TaskBackend``, another one is installed
                already, or the app has started.
        """
        if not isinstance(backend, TaskBackend):
            raise ConfigurationError(
                f"{backend!r} is not a task backend (it needs start, stop, enqueue and work)"
            )
        if self._started:
            raise ConfigurationError("the task backend cannot change while the app runs")
        if self._backend is not None and self._backend is not backend:
            raise ConfigurationError(
                f"a task backend is installed already ({self._backend!r}); install one only"
            )
        self._backend = backend

    # -- what is registered ----------------------------------------------------------------------

    @property
    def backend(self) -> TaskBackend:
        """The backend jobs go to: the one installed, else an ``InProcessBackend``."""
        if self._backend is None:
            from trellis.tasks._inprocess import InProcessBackend

            self._backend = InProcessBackend()
        return self._backend

    @property
    def periodic_tasks(self) -> tuple[Task[..., Any], ...]:
        """The tasks that have a schedule."""
        return tuple(task for task in self._tasks.values() if task.schedule is not None)

    @property
    def executor(self) -> Executor | None:
        """Where sync tasks run: the app's thread pool (``None``: the event loop's default)."""
        return None if self._app is None else self._app._executor

    def __getitem__(self, name: str) -> Task[..., Any]:
        """The task called ``name``."""
        try:
            return self._tasks[name]
        except KeyError:
            raise KeyError(f"no task is named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task[..., Any]]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    # -- running ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check every task's type hints, then start the backend (the app calls this)."""
        for task in self._tasks.values():
            task.prepare()
        await self.backend.start(self)
        self._started = True

    async def stop(self) -> None:
        """Stop the backend (the app calls this when it shuts down)."""
        if self._started:
            self._started = False
            await self.backend.stop()

    async def enqueue(
        self,
        task: Task[..., Any],
        arguments: dict[str, Any],
        *,
        job_id: str,
        run_at: float | None,
    ) -> None:
        """Hand a checked job to the backend (``Task.send`` calls this)."""
        await self.backend.enqueue(task, arguments, job_id=job_id, run_at=run_at)

    async def work(self, *, concurrency: int = 10, grace: float = 30.0) -> None:
        """Run jobs in this process until SIGTERM or SIGINT (``trellis worker`` calls this)."""
        if not self._started:
            raise TaskError("start the app before its worker: await app.startup()")
        await self.backend.work(self, concurrency=concurrency, grace=grace)

    async def join(self, timeout: float | None = 10.0) -> None:
        """Wait until every job sent so far, and those they send, has finished.

        For tests with the ``InProcessBackend``: ``client.call(app.tasks.join)``.

        Raises:
            TaskError: The backend cannot tell (jobs run in other processes).
            TimeoutError: Jobs were still waiting or running after ``timeout`` seconds.
        """
        join = getattr(self.backend, "join", None)
        if join is None:
            raise TaskError(f"{self.backend!r} runs jobs in other processes: it cannot join them")
        await join(timeout)


def _where(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
