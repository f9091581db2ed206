"""Liveness and readiness endpoints for load balancers and orchestrators.

```py
from trellis.contrib.ops import Health

app.install(Health())       # GET /healthz (liveness), GET /readyz (readiness)
```

**Liveness** (``/healthz``) answers ``200 {"status": "ok"}`` as long as the process serves
requests: it touches nothing else, so a database outage never gets healthy workers
restarted. **Readiness** (``/readyz``) checks, concurrently and each within ``timeout``
seconds, everything the application needs:

- the ``Database`` (``app.state.database``): every database, replicas too;
- every store on ``app.state`` with an async ``ping()`` (``RedisCache``,
  ``RedisSessionStore``, a ``redis.asyncio.Redis`` client ...), named by its attribute;
- your own checks: ``async def fn() -> bool | str``, true (or ``"ok"``) when ready.

All pass: ``200 {"status": "ready", "checks": {...}}``. One fails: ``503`` with
``"status": "unavailable"`` and the names in ``"failed"``. The answer says only ``ok``,
``failed``, ``timeout`` or ``error`` per check: the reasons (hosts, driver messages) go to the
``trellis.ops`` log, once when a check starts failing and once when it recovers.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from trellis.exceptions import ConfigurationError
from trellis.http.response import JSONResponse

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["Check", "Health"]

log = logging.getLogger("trellis.ops")

#: A readiness check of yours: true or ``"ok"`` when ready; false or a reason when not.
Check = Callable[[], Awaitable[bool | str]]

_NO_STORE = {"cache-control": "no-store"}


class Health:
    """The health plugin: ``app.install(Health())`` adds the liveness and readiness routes.

    Both routes are ``GET`` (and ``HEAD``), left out of the OpenAPI schema, and answered with
    ``Cache-Control: no-store``.

    Args:
        prefix: Put before both paths (``"/-"`` gives ``/-/healthz`` and ``/-/readyz``).
        liveness: The liveness path.
        readiness: The readiness path.
        checks: Your own readiness checks: async functions named by their ``__name__``, or a
            mapping ``{name: function}``.
        timeout: Seconds each check may take; a slower one counts as failed (``timeout``).
    """

    def __init__(
        self,
        prefix: str = "",
        liveness: str = "/healthz",
        readiness: str = "/readyz",
        checks: Sequence[Check] | Mapping[str, Check] = (),
        *,
        timeout: float = 2.0,
    ) -> None:
        for what, path in (("liveness", liveness), ("readiness", readiness)):
            if not path.startswith("/"):
                raise ConfigurationError(f"Health({what}={path!r}): the path starts with '/'")
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigurationError(
                f"Health(prefix={prefix!r}): a prefix starts with '/' and does not end with one"
            )
        if timeout <= 0:
            raise ConfigurationError(f"Health(timeout={timeout!r}): give a positive number")
        named = dict(checks) if isinstance(checks, Mapping) else {}
        if not isinstance(checks, Mapping):
            for fn in checks:
                name = getattr(fn, "__name__", None) or repr(fn)
                if name in named:
                    raise ConfigurationError(
                        f"two readiness checks are named {name!r}: pass a mapping"
                        " {name: function} to name them"
                    )
                named[name] = fn
        for name, fn in named.items():
            if not callable(fn):
                raise ConfigurationError(f"readiness check {name!r} is not callable: {fn!r}")
        self.prefix = prefix
        self.liveness = prefix + liveness
        self.readiness = prefix + readiness
        self.checks: dict[str, Check] = named
        self.timeout = timeout
        self.app: App | None = None
        # The reason each failing check gave last: a change is logged, a repeat is not.
        self._failing: dict[str, str] = {}

    def setup(self, app: App) -> None:
        """Install on ``app``: the two routes (``app.state.health`` is this plugin).

        Raises:
            ConfigurationError: the application has a ``Health`` already.
        """
        existing = getattr(app.state, "health", None)
        if existing is not None and existing is not self:
            raise ConfigurationError("the application already has a Health installed")
        self.app = app
        app.state.health = self
        app.get(self.liveness, include_in_schema=False, name="ops.liveness")(self._live)
        app.get(self.readiness, include_in_schema=False, name="ops.readiness")(self._ready)

    async def _live(self) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def _ready(self) -> JSONResponse:
        verdicts = await self.check()
        failed = [name for name, verdict in verdicts.items() if verdict != "ok"]
        if failed:
            body = {"status": "unavailable", "checks": verdicts, "failed": failed}
            return JSONResponse(body, 503, headers=_NO_STORE)
        return JSONResponse({"status": "ready", "checks": verdicts}, headers=_NO_STORE)

    # -- the checks ---------------------------------------------------------------------------

    def _gather(self) -> dict[str, _Probe]:
        """Every check to run now, by name (read from ``app.state`` each time: cheap)."""
        probes: dict[str, _Probe] = {}
        state: dict[str, Any] = self.app.state._state if self.app is not None else {}
        seen: set[int] = set()
        for name, value in state.items():
            if id(value) in seen:
                continue
            if name == "database" and callable(getattr(value, "check", None)):
                seen.add(id(value))
                probes["database"] = _database_probe(value)
            elif inspect.iscoroutinefunction(getattr(value, "ping", None)):
                seen.add(id(value))
                probes[name] = _ping_probe(name, value)
        for name, fn in self.checks.items():
            probes[name] = _user_probe(name, fn)
        return probes

    async def check(self) -> dict[str, str]:
        """Run every readiness check now: ``{name: "ok" | "failed" | "timeout" | "error"}``.

        The database has one entry per database: ``database`` for the main one,
        ``database:<name>`` for the others (``database:replica:default`` for a replica).
        """
        probes = self._gather()
        results: dict[str, dict[str, tuple[str, str]]] = {}

        async def run(name: str, probe: _Probe) -> None:
            try:
                with anyio.fail_after(self.timeout):
                    found = await probe()
            except TimeoutError:
                results[name] = {name: ("timeout", f"no answer within {self.timeout:g} s")}
            except Exception as exc:
                results[name] = {name: ("error", f"{type(exc).__name__}: {exc}")}
            else:
                results[name] = {
                    entry: ("ok", "") if reason == "ok" else ("failed", reason)
                    for entry, reason in found.items()
                }

        async with anyio.create_task_group() as group:
            for name, probe in probes.items():
                group.start_soon(run, name, probe)
        verdicts: dict[str, str] = {}
        for name in probes:  # in a stable order: the order of app.state, then yours
            for entry, (verdict, reason) in results[name].items():
                verdicts[entry] = verdict
                self._note(entry, verdict, reason)
        for entry in [e for e in self._failing if e not in verdicts]:
            del self._failing[entry]  # a store that left app.state
        return verdicts

    def _note(self, name: str, verdict: str, reason: str) -> None:
        if verdict == "ok":
            if self._failing.pop(name, None) is not None:
                log.info("readiness check %r passes again", name)
            return
        if self._failing.get(name) != reason:
            self._failing[name] = reason
            log.warning("readiness check %r: %s (%s)", name, verdict, reason)


#: A check as run: ``{entry: "ok" or the reason it fails}`` (the database has several).
_Probe = Callable[[], Awaitable[dict[str, str]]]


def _database_probe(database: Any) -> _Probe:
    async def probe() -> dict[str, str]:
        # Database.check() never raises for a database that is down; its reasons name the
        # database with the password hidden.
        found: dict[str, str] = await database.check()
        return {
            "database" if name == "default" else f"database:{name}": problem
            for name, problem in found.items()
        }

    return probe


def _ping_probe(name: str, store: Any) -> _Probe:
    async def probe() -> dict[str, str]:
        answer = await store.ping()
        return {name: "ok" if answer else f"{store!r} does not answer"}

    return probe


def _user_probe(name: str, fn: Check) -> _Probe:
    async def probe() -> dict[str, str]:
        answer = await fn()
        if answer is True or answer == "ok":
            return {name: "ok"}
        return {name: answer if isinstance(answer, str) and answer else "returned false"}

    return probe
