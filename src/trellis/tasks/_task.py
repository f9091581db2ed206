"""A task: a function the app can run later, elsewhere, with typed and checked arguments."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import math
import random
import time
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from trellis.exceptions import ConfigurationError, TrellisError
from trellis.tasks._schedule import Schedule

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from trellis.tasks._registry import TaskRegistry

__all__ = ["Backoff", "Job", "Task", "TaskArgumentsError", "TaskError"]

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("trellis.tasks")


class TaskError(TrellisError):
    """A task cannot be sent or run as asked (no running backend, a bad schedule ...)."""


class TaskArgumentsError(TaskError, ValueError):
    """The arguments given to ``send`` do not fit the task's signature or are not JSON."""


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each retry: exponential, capped, with jitter.

    The wait before retry ``n`` (1 for the first) is ``min(max, base * factor ** (n - 1))``;
    with ``jitter`` it is drawn at random between half of that and all of it, so that jobs that
    failed together do not all come back at the same moment.

    Args:
        base: Seconds before the first retry.
        max: The longest wait, in seconds.
        factor: How much each wait grows over the one before.
        jitter: Draw each wait between half and all of its value.
    """

    base: float = 1.0
    max: float = 300.0
    factor: float = 2.0
    jitter: bool = True

    def __post_init__(self) -> None:
        values = (self.base, self.max, self.factor)
        if not all(math.isfinite(v) for v in values) or self.base < 0 or self.max < 0:
            raise ConfigurationError(f"{self!r}: base and max must be seconds, 0 or more")
        if self.factor < 1:
            raise ConfigurationError(f"{self!r}: factor must be 1 or more")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        # Capped before the power grows past what a float holds.
        exponent = min(max(retry - 1, 0), 1024)
        try:
            wait = min(self.max, self.base * self.factor**exponent)
        except OverflowError:
            wait = self.max
        if self.jitter:
            wait = random.uniform(wait / 2, wait)
        return wait


@dataclass(frozen=True)
class Job:
    """A job sent to the backend: what ``Task.send`` returns.

    Attributes:
        id: The job's id, as the backend and the log lines name it.
        task: The name of the task it runs.
        run_at: When it is due (UTC), or ``None`` for as soon as a worker is free.
    """

    id: str
    task: str
    run_at: datetime | None = None


class _Plan:
    """What ``send`` checks, computed once from the signature: a validator per parameter."""

    __slots__ = ("adapters", "signature")

    def __init__(self, signature: inspect.Signature, adapters: dict[str, TypeAdapter[Any]]):
        self.signature = signature
        self.adapters = adapters


class Task(Generic[P, R]):
    """A function registered with ``@app.task``: call it to run it here, send it to run later.

    Calling the task (``await send_welcome(42)``) runs the function directly, as if it were not
    a task: handy in tests and inside other tasks. ``send`` puts a job on the app's task
    backend instead, after checking the arguments against the type hints; a worker then
    validates them again into the declared types and runs the function, retrying on failure.

    Attributes:
        fn: The function.
        name: The name jobs carry to find the task again in a worker process.
        retries: How many times a failed job is tried again (so ``retries + 1`` attempts).
        backoff: The waits between attempts.
        timeout: Seconds an attempt may take before it counts as failed (``None``: no limit).
        schedule: When a periodic task runs by itself (``None``: only when sent).
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        registry: TaskRegistry,
        name: str | None = None,
        retries: int = 3,
        backoff: Backoff | float | None = None,
        timeout: float | timedelta | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        if not callable(fn) or inspect.isclass(fn):
            raise ConfigurationError(f"@app.task needs a function, not {fn!r}")
        self.fn = fn
        self.name = name or fn.__qualname__
        self.is_async = inspect.iscoroutinefunction(fn)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(
                f"task {self.name}: retries must be 0 or more, not {retries!r}"
            )
        self.retries = retries
        if backoff is None:
            backoff = Backoff()
        elif not isinstance(backoff, Backoff):
            backoff = Backoff(base=float(backoff))
        self.backoff: Backoff = backoff
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise ConfigurationError(f"task {self.name}: timeout must be positive seconds")
        self.timeout: float | None = timeout
        self.schedule = schedule
        self._registry = registry
        self._plan: _Plan | None = None
        self._signature = inspect.signature(fn)
        for param in self._signature.parameters.values():
            if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                raise ConfigurationError(
                    f"task {self.name}: parameter {param.name!r} is {param.kind.description}; "
                    "a job stores its arguments by name, so use named parameters only"
                )
            if schedule is not None and param.default is param.empty:
                raise ConfigurationError(
                    f"periodic task {self.name}: parameter {param.name!r} needs a default, "
                    "since a schedule sends the job without arguments"
                )
        self._call: Callable[..., Any] = fn
        functools.update_wrapper(self, fn, updated=())

    @property
    def attempts(self) -> int:
        """How many times a job of this task is tried at most."""
        return self.retries + 1

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now, as if it were not a task."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Check the arguments and put a job on the backend, to run as soon as possible.

        Raises:
            TaskArgumentsError: The arguments do not fit the signature or its type hints, or
                are not JSON-serialisable.
        """
        return await self._send(None, args, kwargs)

    async def send_in(self, delay: float | timedelta, /, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Like ``send``, for a job that runs ``delay`` (seconds or a timedelta) from now."""
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        if not math.isfinite(seconds) or seconds < 0:
            raise TaskArgumentsError(f"{self.name}.send_in(): the delay must be 0 or more")
        return await self._send(time.time() + seconds, args, kwargs)

    async def send_at(self, when: datetime, /, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Like ``send``, for a job that runs at ``when`` (an aware datetime; naive is UTC)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return await self._send(max(when.timestamp(), time.time()), args, kwargs)

    async def _send(self, run_at: float | None, args: Any, kwargs: Any) -> Job:
        arguments = self.bind(*args, **kwargs)
        job = Job(
            id=uuid.uuid4().hex,
            task=self.name,
            run_at=None if run_at is None else datetime.fromtimestamp(run_at, UTC),
        )
        await self._registry.enqueue(self, arguments, job_id=job.id, run_at=run_at)
        return job

    # -- arguments --------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Resolve the type hints into validators (done at start-up, or on first use).

        Raises:
            ConfigurationError: A type hint names something that cannot be found, or a type
                pydantic cannot validate.
        """
        if self._plan is not None:
            return
        from pydantic import PydanticSchemaGenerationError, TypeAdapter

        try:
            hints = typing.get_type_hints(self.fn, include_extras=True)
        except NameError as exc:
            raise ConfigurationError(
                f"task {self.name}: a type hint cannot be resolved ({exc}); define or import "
                "the type at module level"
            ) from None
        adapters: dict[str, TypeAdapter[Any]] = {}
        for name in self._signature.parameters:
            try:
                adapters[name] = TypeAdapter(hints.get(name, Any))
            except PydanticSchemaGenerationError as exc:
                raise ConfigurationError(
                    f"task {self.name}: parameter {name!r} has a type that cannot travel in a "
                    f"job (JSON): {exc}"
                ) from None
        self._plan = _Plan(self._signature, adapters)

    def bind(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The arguments of a call, checked against the type hints, as JSON-ready values.

        Parameters left out are not stored: the worker uses their defaults.

        Raises:
            TaskArgumentsError: The arguments do not fit the signature or its type hints, or
                are not JSON-serialisable.
        """
        from pydantic import ValidationError
        from pydantic_core import PydanticSerializationError

        self.prepare()
        assert self._plan is not None
        try:
            bound = self._plan.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TaskArgumentsError(f"{self.name}.send(): {exc}") from None
        problems: list[str] = []
        arguments: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            adapter = self._plan.adapters[name]
            try:
                valid = adapter.validate_python(value)
                arguments[name] = adapter.dump_python(valid, mode="json")
            except ValidationError as exc:
                problems += [_describe(name, error) for error in exc.errors()]
            except (PydanticSerializationError, ValueError, TypeError) as exc:
                problems.append(f"argument {name!r} is not JSON-serialisable ({exc})")
        if problems:
            raise TaskArgumentsError(f"{self.name}.send(): " + "; ".join(problems))
        return arguments

    def load(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate the JSON arguments of a job back into the declared types.

        Raises:
            TaskArgumentsError: The job's arguments no longer fit the signature (the task
                changed since the job was sent).
        """
        from pydantic import ValidationError

        self.prepare()
        assert self._plan is not None
        problems: list[str] = []
        values: dict[str, Any] = {}
        for name, value in arguments.items():
            adapter = self._plan.adapters.get(name)
            if adapter is None:
                problems.append(f"the task has no parameter {name!r}")
                continue
            try:
                values[name] = adapter.validate_python(value)
            except ValidationError as exc:
                problems += [_describe(name, error) for error in exc.errors()]
        if problems:
            raise TaskArgumentsError(
                f"task {self.name}: the job's arguments: " + "; ".join(problems)
            )
        return values

    # -- running ----------------------------------------------------------------------------------

    async def run(self, arguments: dict[str, Any], *, job_id: str, attempt: int) -> Any:
        """Run one attempt of a job: validate the arguments, call the function, honour timeout.

        Backends call this; it raises what the function raises (``TimeoutError`` when it takes
        longer than ``timeout``).
        """
        values = self.load(arguments)
        log.debug(
            "Task %s (job %s) starts attempt %d of %d",
            self.name,
            job_id,
            attempt,
            self.attempts,
            extra={"job_id": job_id, "task": self.name},
        )
        async with asyncio.timeout(self.timeout):
            if self.is_async:
                return await self._call(**values)
            loop = asyncio.get_running_loop()
            call = functools.partial(self._call, **values)
            context = contextvars.copy_context()
            return await loop.run_in_executor(self._registry.executor, context.run, call)

    def retry_delay(self, attempt: int) -> float | None:
        """Seconds to wait after failed attempt ``attempt``, or ``None`` when none are left."""
        if attempt >= self.attempts:
            return None
        return self.backoff.delay(attempt)

    def failed(self, exc: BaseException, *, job_id: str, attempt: int) -> float | None:
        """Log a failed attempt with its traceback; return the wait before the next one.

        Returns ``None`` when the job has no attempts left and is given up.
        """
        delay = self.retry_delay(attempt)
        what = "timed out" if isinstance(exc, TimeoutError) else "failed"
        extra = {"job_id": job_id, "task": self.name, "attempt": attempt}
        if delay is None:
            log.error(
                "Task %s (job %s) %s on attempt %d of %d; giving up",
                self.name,
                job_id,
                what,
                attempt,
                self.attempts,
                exc_info=exc,
                extra=extra,
            )
        else:
            log.warning(
                "Task %s (job %s) %s on attempt %d of %d; retrying in %.1f s",
                self.name,
                job_id,
                what,
                attempt,
                self.attempts,
                delay,
                exc_info=exc,
                extra=extra,
            )
        return delay


def _describe(name: str, error: Any) -> str:
    where = ".".join(str(part) for part in (name, *error["loc"]))
    return f"argument {where!r}: {error['msg']} (got {error['input']!r})"
