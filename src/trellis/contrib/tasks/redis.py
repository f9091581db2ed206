"""``RedisTasks``: the app's jobs in a Redis queue (SAQ), run by ``trellis worker``.

SAQ keeps each job in Redis with its status, moves due jobs from a schedule to the queue, and
sweeps the jobs of workers that died: a worker touches each running job every third of
``heartbeat``; a job left untouched longer than that is put back on the queue (an attempt
spent), so a worker killed mid-job delays the job, it does not lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq.job import Job as SaqJob
from saq.job import Status
from saq.queue.redis import RedisQueue
from saq.utils import cancel_tasks
from saq.worker import Worker

from trellis.contrib.redis._client import RedisUnavailableError, redact
from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.tasks import Task, TaskRegistry

__all__ = ["RedisTasks"]

log = logging.getLogger("trellis.tasks")

# A claimed tick is kept this long after it is due: long past the moment any worker could
# still compute the same tick.
_TICK_MEMORY = 3600
# How long a job found in the active list without the active status may stay so before it
# counts as abandoned: a worker writes the status a few milliseconds after taking the job.
_SETTLE = 2.0


class RedisTasks:
    """Send the app's jobs to a Redis queue that ``trellis worker`` processes share.

    Args:
        url: The Redis server (``redis://[:password@]host:6379/0``, ``rediss://`` for TLS).
        queue: The queue's name; apps (or groups of tasks) with their own workers use their
            own names.
        heartbeat: Seconds a running job may go without a sign of life from its worker before
            it is taken back and retried elsewhere (the worker signs every third of it).
        sweep_interval: How often, in seconds, one of the workers looks for such jobs
            (default: ``heartbeat``). A killed worker's job is retried within about
            ``heartbeat + sweep_interval + 5`` seconds.
        keep_results: Seconds a finished job (status, result or error) stays in Redis.
        connect_timeout: Seconds to wait for a connection to Redis.

    Raises:
        ConfigurationError: An option is out of range or the URL is not a Redis URL.
    """

    def __init__(
        self,
        url: str,
        *,
        queue: str = "trellis",
        heartbeat: int = 30,
        sweep_interval: int | None = None,
        keep_results: int = 600,
        connect_timeout: float = 5.0,
    ) -> None:
        for label, value in (("heartbeat", heartbeat), ("sweep_interval", sweep_interval)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigurationError(f"RedisTasks: {label} is whole seconds, not {value!r}")
            if value is not None and value < 1:
                raise ConfigurationError(f"RedisTasks: {label} must be 1 second or more")
        if not queue or ":" in queue:
            raise ConfigurationError(f"RedisTasks: {queue!r} is not a queue name (no colons)")
        if keep_results < 1:
            raise ConfigurationError("RedisTasks: keep_results must be 1 second or more")
        self.url = redact(url)
        self._raw_url = url
        try:  # the URL checked now, not at the first job
            Redis.from_url(url)
        except ValueError as exc:
            raise ConfigurationError(f"invalid Redis URL {self.url!r}: {exc}") from None
        self.queue_name = queue
        self.heartbeat = heartbeat
        self.sweep_interval = heartbeat if sweep_interval is None else sweep_interval
        self.keep_results = keep_results
        self.connect_timeout = connect_timeout
        self._queue: RedisQueue | None = None

    def __repr__(self) -> str:
        return f"RedisTasks({self.url!r}, queue={self.queue_name!r})"

    def setup(self, app: App) -> None:
        """Install on ``app``: its tasks are sent to this queue from now on."""
        app.tasks.use(self)

    # -- the backend protocol ----------------------------------------------------------------------

    async def start(self, registry: TaskRegistry) -> None:
        """Connect to Redis (the app calls this at start-up): fail early when it is down.

        Raises:
            ConfigurationError: A periodic interval is not whole seconds.
            RedisUnavailableError: Redis does not answer.
        """
        for task in registry.periodic_tasks:
            interval = task.schedule.interval if task.schedule else None
            if interval is not None and not float(interval).is_integer():
                raise ConfigurationError(
                    f"periodic task {task.name}: RedisTasks schedules whole seconds, not "
                    f"every {interval:g} s"
                )
        self._queue = await self._connect()

    async def stop(self) -> None:
        """Close the connections (the app calls this at shut-down)."""
        queue, self._queue = self._queue, None
        if queue is not None:
            await queue.disconnect()

    async def enqueue(
        self,
        task: Task[..., Any],
        arguments: dict[str, Any],
        *,
        job_id: str,
        run_at: float | None,
    ) -> None:
        """Store the job in Redis; outside the app's lifespan through a short connection."""
        job = self._job(task, arguments, key=job_id, run_at=run_at)
        if self._queue is not None:
            await self._queue.enqueue(job)
            return
        queue = await self._connect()  # a script or a command: no app running
        try:
            await queue.enqueue(job)
        finally:
            await queue.disconnect()

    async def work(self, registry: TaskRegistry, *, concurrency: int, grace: float) -> None:
        """Run jobs and the periodic schedules until SIGTERM or SIGINT."""
        queue = self._queue
        if queue is None:
            raise RuntimeError("start the app before its worker")
        functions = [(task.name, self._function(task)) for task in registry]
        worker = _Worker(
            queue,
            functions,
            backend=self,
            periodic=registry.periodic_tasks,
            grace=grace,
            concurrency=concurrency,
            timers={"schedule": 1, "sweep": self.sweep_interval, "abort": 1},
            cancellation_hard_deadline_s=5.0,
        )
        log.info(
            "Worker %s takes jobs from queue %r at %s (concurrency %d): %s",
            worker.id,
            self.queue_name,
            self.url,
            concurrency,
            ", ".join(name for name, _ in functions) or "no tasks",
        )
        await worker.start()
        log.info("Worker %s stopped", worker.id)

    # -- helpers ------------------------------------------------------------------------------

    async def _connect(self) -> RedisQueue:
        client = Redis.from_url(self._raw_url, socket_connect_timeout=self.connect_timeout)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise RedisUnavailableError(
                f"cannot connect to Redis at {self.url}: {exc or type(exc).__name__}"
                " (is the server running, and is the URL right?)"
            ) from exc
        queue = _Queue(client, name=self.queue_name)
        await queue.connect()
        return queue

    def _job(
        self, task: Task[..., Any], arguments: dict[str, Any], *, key: str, run_at: float | None
    ) -> SaqJob:
        return SaqJob(
            function=task.name,
            kwargs=arguments,
            key=key,
            # The task enforces its own timeout; the heartbeat finds dead workers.
            timeout=0,
            heartbeat=self.heartbeat,
            retries=task.attempts,
            ttl=self.keep_results,
            # Whole seconds in SAQ: never early.
            scheduled=0 if run_at is None else math.ceil(run_at),
        )

    def _function(self, task: Task[..., Any]) -> Any:
        async def run(ctx: dict[str, Any], /, **arguments: Any) -> Any:
            job: SaqJob = ctx["job"]
            # The sender set the job's heartbeat; a third of it leaves room for a late beat.
            beat = asyncio.create_task(_beat(job, (job.heartbeat or self.heartbeat) / 3))
            try:
                result = await task.run(arguments, job_id=job.key, attempt=job.attempts)
            except Exception as exc:
                delay = task.failed(exc, job_id=job.key, attempt=job.attempts)
                # SAQ retries a failed job while it has attempts left, after retry_delay: the
                # task's backoff decides both.
                if delay is None:
                    job.retries = job.attempts
                else:
                    job.retries = max(job.retries, job.attempts + 1)
                    job.retry_delay = delay
                    job.retry_backoff = False
                raise
            finally:
                # Stopped before SAQ writes the outcome, so a late beat cannot overwrite it.
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            return to_jsonable_python(result, fallback=repr)

        run.__qualname__ = task.name
        return run

    async def _enqueue_tick(self, queue: RedisQueue, task: Task[..., Any], tick: int) -> bool:
        """Send the job of one tick of a periodic task, unless another worker did."""
        claim = queue.namespace(f"tick:{task.name}:{tick}")
        if not await queue.redis.set(claim, "1", nx=True, exat=tick + _TICK_MEMORY):
            return False
        job = self._job(task, {}, key=f"periodic:{task.name}:{tick}", run_at=tick)
        await queue.enqueue(job)
        return True


async def _beat(job: SaqJob, every: float) -> None:
    """Touch ``job`` in Redis every ``every`` seconds: its worker is alive."""
    while True:
        await asyncio.sleep(every)
        try:
            await job.update()
        except (RedisError, OSError) as exc:  # the next beat may get through
            log.warning("Job %s: heartbeat not written: %s", job.key, exc)


class _Worker(Worker[Any]):
    """SAQ's worker, plus the periodic tasks' ticks and a shut-down that lets jobs finish."""

    def __init__(
        self,
        queue: RedisQueue,
        functions: Any,
        *,
        backend: RedisTasks,
        periodic: tuple[Task[..., Any], ...],
        grace: float,
        **options: Any,
    ) -> None:
        super().__init__(queue, functions, **options)
        self._backend = backend
        self._periodic = periodic
        self._grace = grace
        self._redis_queue = queue
        self._claimed: dict[str, int] = {}

    async def schedule(self, lock: int = 1) -> None:
        # Every worker computes the same next tick; one claim per tick in Redis picks the one
        # that sends its job, so a tick runs once however many workers there are.
        now = time.time()
        for task in self._periodic:
            assert task.schedule is not None
            tick = math.ceil(task.schedule.next_after(now))
            if self._claimed.get(task.name) != tick:
                if await self._backend._enqueue_tick(self._redis_queue, task, tick):
                    log.debug("Periodic task %s: tick %d claimed", task.name, tick)
                self._claimed[task.name] = tick
        await super().schedule(lock)

    async def stop(self) -> None:
        self.event.set()  # no more jobs taken
        running = {job.key: ctx["task"] for job, ctx in list(self.job_task_contexts.items())}
        pending = [task for task in running.values() if not task.done()]
        if pending and self._grace > 0:
            log.info("Waiting up to %g s for %d running job(s)", self._grace, len(pending))
            await asyncio.wait(pending, timeout=self._grace)
        late = [key for key, task in running.items() if not task.done()]
        if late:
            log.warning(
                "Job(s) %s still running at shut-down: cancelled, back on the queue",
                ", ".join(late),
            )
        # Cancelled here, SAQ puts a job that was running back on the queue; idle loops just end.
        await cancel_tasks(list(self.tasks), timeout=self._cancellation_hard_deadline_s + 1)
        await super().stop()


class _Queue(RedisQueue):
    """SAQ's Redis queue, with a sweep that leaves alone the jobs workers have just taken."""

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        # SAQ sweeps every job of the active list whose status is not "active". A job a worker
        # has just taken looks like that until the worker writes its status (saq issue #277),
        # and sweeping it runs it twice. Here such a job is swept only if it is still there,
        # and still not active, a moment later; a job whose heartbeat stopped is swept at once.
        if self._cleanup_script is None:
            self._cleanup_script = self.redis.register_script(_SWEEP_SCRIPT)
        found = await self._cleanup_script(
            keys=[self._sweep, self._active], args=[lock], client=self.redis
        )
        swept: list[bytes] = []
        suspects: list[tuple[bytes, SaqJob]] = []
        for job_id, job_bytes in found:
            job = self.deserialize(job_bytes)
            if job is None:  # its record expired: only the id is left
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lrem(self._active, 0, job_id)
                    pipe.zrem(self._incomplete, job_id)
                    await pipe.execute()
                swept.append(job_id)
            elif job.stuck:
                await self._sweep_job(job, abort)
                swept.append(job_id)
            elif job.status != Status.ACTIVE:
                suspects.append((job_id, job))
        if suspects:
            await asyncio.sleep(_SETTLE)
            active = set(await self.redis.lrange(self._active, 0, -1))
            for job_id, seen in suspects:
                job = await self._get_job_by_id(job_id)
                if job_id not in active or job is None or job.touched != seen.touched:
                    continue  # taken up since (or finished): not abandoned
                await self._sweep_job(job, abort)
                swept.append(job_id)
        return [job_id.decode() for job_id in swept]

    async def _sweep_job(self, job: SaqJob, abort: float) -> None:
        """What SAQ does with a swept job: abort it, then retry it while it has attempts."""
        log.warning("Job %s of task %s abandoned by its worker: swept", job.key, job.function)
        await self.abort(job, error=self.swept_error_message)
        with contextlib.suppress(asyncio.TimeoutError):
            await job.refresh(abort)  # a live worker that lost its heartbeat cancels it now
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
        else:
            await self.finish(job, Status.ABORTED, error=self.swept_error_message)


# SAQ's: one sweeper per interval (the lock), then the active jobs with their records.
_SWEEP_SCRIPT = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
end
return id_jobs
"""
