"""Soak: the showcase with 2 workers on PostgreSQL and Redis under wrk at saturation.

    .venv/bin/python bench/soak.py                           # 10 s warm-up, 60 s soak
    .venv/bin/python bench/soak.py --duration 10 --warmup 5  # a quick look

Creates a fresh PostgreSQL database, applies the showcase's migrations (``SETUP_COMMANDS``),
starts ``trellis run examples/showcase/app.py --workers 2`` with the database and Redis
(``SHOWCASE_ENV``, under a Redis key prefix of its own), checks that every URL answers, warms
up with wrk, reads each worker's RSS, runs wrk at saturation for ``--duration`` seconds over
the URLs in turn (``soak.lua`` counts the answers by status class), reads the RSS again, then
stops the server, drops the database and deletes its Redis keys.

PASS = zero 5xx answers, zero socket errors (connect, read, write, timeout), every worker
still the same process, and no worker's RSS grown by ``--growth-limit`` % (10) or more
since the end of the warm-up. Prints a markdown table and writes the figures as JSON
(``--json``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs; only a few calls
from _harness import (
    HERE,
    ROOT,
    Server,
    WrkResult,
    free_port,
    http_get,
    machine,
    markdown_table,
    mib,
    parse_wrk,
    rss,
    write_json,
    wrk_command,
)

# --- what to run against: change here (or with the options) -------------------------------
SHOWCASE = "examples/showcase/app.py"
#: Where the fresh database is created and dropped (a role that may create databases).
ADMIN_DATABASE_URL = os.environ.get(
    "SOAK_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
#: The showcase's database; {name} is the fresh database made for the run.
DATABASE_URL = os.environ.get("SOAK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/{name}")
REDIS_URL = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/0")
#: The server's environment besides the database and Redis URLs; {prefix} is the run's own
#: Redis key prefix, {secret} a fresh secret key.
SHOWCASE_ENV = {
    "TRELLIS_DEBUG": "false",
    "TRELLIS_SECRET_KEY": "{secret}",
    "TRELLIS_REDIS_PREFIX": "{prefix}",
    "TRELLIS_ACCESS_LOG": "false",
    "TRELLIS_LOG_LEVEL": "WARNING",
    # The PostgreSQL server is shared: at most 2 x (5 + 5) connections.
    "TRELLIS_DATABASE_POOL_SIZE": "5",
    "TRELLIS_DATABASE_MAX_OVERFLOW": "5",
}
DATABASE_VAR, REDIS_VAR = "TRELLIS_DATABASE_URL", "TRELLIS_REDIS_URL"
#: Run in the repository with the server's environment before the server starts.
SETUP_COMMANDS = [f"{{python}} -m trellis.cli --app {SHOWCASE} db upgrade"]
#: Read-only pages and API calls, requested in turn. Not /readyz: a probe asks every few
#: seconds, and at saturation its database check (2 s timeout) rightly answers 503 when the
#: pool is busy; list the paths with --url (repeatable) to include it.
URLS = [
    "/",
    "/api/notes",
    "/api/notes?limit=2&offset=1",
    "/api/notes/1",
    "/openapi.json",
    "/fr/",
    "/healthz",
    "/static/site.css",
]
# -------------------------------------------------------------------------------------------

SOAK_LUA = HERE / "soak.lua"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The showcase, 2 workers on PostgreSQL and Redis, under wrk at saturation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--duration", type=float, default=60.0, help="seconds of the soak (after warm-up)")
    add("--warmup", type=float, default=10.0, help="seconds of wrk before the first RSS")
    add("--workers", type=int, default=2, help="server worker processes")
    add("--threads", type=int, default=2, help="wrk threads")
    add("--connections", type=int, default=64, help="wrk connections")
    add("--timeout", type=float, default=10.0, help="wrk: an answer later than this is an error")
    add("--growth-limit", type=float, default=10.0, help="PASS needs RSS growth below this %%")
    add("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    add(
        "--url",
        dest="urls",
        action="append",
        metavar="PATH",
        help=f"a path to request (repeatable; default: {' '.join(URLS)})",
    )
    add(
        "--database-url",
        help="use this database as it is instead of a fresh one (not created, not dropped)",
    )
    add("--redis-url", default=REDIS_URL, help="Redis for sessions, cache and channels")
    add("--no-redis", action="store_true", help="run without Redis")
    add(
        "--setup",
        action="append",
        metavar="COMMAND",
        help="a command run before the server starts (repeatable; replaces the default "
        f"{SETUP_COMMANDS[0]!r}; 'none' runs nothing)",
    )
    add("--app", default=SHOWCASE, help="the application given to trellis run")
    add("--port", type=int, default=0, help="server port (0: a free one)")
    add("--json", type=Path, default=HERE / "results" / "soak.json", help="result file")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.threads < 1 or args.connections < args.threads:
        parser.error("--workers and --threads must be at least 1, --connections >= --threads")
    args.urls = args.urls or URLS
    return args


# --- the database and Redis ---------------------------------------------------------------


def _create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _delete_redis_keys(url: str, prefix: str) -> int:
    """Delete the run's own keys (those under its prefix); never anything else."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
        return deleted
    finally:
        client.close()


# --- memory ---------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Reads every worker's RSS every ``every`` seconds until stopped."""

    def __init__(self, workers: list[psutil.Process], every: float) -> None:
        super().__init__(daemon=True)
        self.workers, self.every = workers, every
        self.samples: list[dict[str, Any]] = []
        self._stop_event = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            self.take()

    def take(self) -> None:
        """Record one sample now."""
        self.samples.append(
            {
                "t": round(time.monotonic() - self._t0, 1),
                "rss": {str(w.pid): rss(w) for w in self.workers},
            }
        )

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop_event.set()
        self.join()


# --- the run --------------------------------------------------------------------------------


def _wrk(args: argparse.Namespace, base: str, duration: float) -> WrkResult:
    cmd = wrk_command(
        base,
        duration=duration,
        threads=args.threads,
        connections=args.connections,
        script=SOAK_LUA,
        script_args=args.urls,
        timeout=args.timeout,
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    return parse_wrk(done.stdout + done.stderr, done.returncode)


def _setup_commands(args: argparse.Namespace) -> list[str]:
    given = args.setup if args.setup is not None else SETUP_COMMANDS
    return [c.format(python=shlex.quote(sys.executable)) for c in given if c != "none"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = f"{os.getpid()}_{int(time.time())}"
    fresh_db = None if args.database_url else f"trellis_soak_{run_id}"
    prefix = f"soak-{run_id}:"
    database_url = args.database_url or DATABASE_URL.format(name=fresh_db)
    env = dict(os.environ)
    secret = secrets.token_urlsafe(48)
    env.update({k: v.format(prefix=prefix, secret=secret) for k, v in SHOWCASE_ENV.items()})
    env[DATABASE_VAR] = database_url
    if args.no_redis:
        env.pop(REDIS_VAR, None)
    else:
        env[REDIS_VAR] = args.redis_url
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    notes: list[str] = []
    server: Server | None = None
    try:
        if fresh_db is not None:
            _create_database(fresh_db)
        for command in _setup_commands(args):
            done = subprocess.run(
                command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise SystemExit(f"setup command failed: {command}\n{done.stdout}{done.stderr}")
        cmd = [
            sys.executable, "-m", "trellis.cli", "run", args.app,
            "--workers", str(args.workers), "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        server = Server(cmd, env=env, log=args.json.with_suffix(".server.log"))
        server.wait_ready(base + args.urls[0], timeout=90)

        # Every URL must work before load makes its failures hard to read.
        checks = {path: http_get(base + path, timeout=10)[0] for path in args.urls}
        broken = {p: s for p, s in checks.items() if not 200 <= s < 400}
        if any(s == 0 or s >= 500 for s in broken.values()):
            raise SystemExit(f"URLs that do not work before the soak: {broken}")
        if broken:
            notes.append(f"URLs answering 4xx before the soak: {broken}")

        warm = _wrk(args, base, args.warmup)
        workers = server.workers()
        if len(workers) != args.workers:
            notes.append(f"{len(workers)} worker processes found, {args.workers} expected")
        sampler = Sampler(workers, args.sample_every)
        sampler.take()
        rss_warm = sampler.samples[0]["rss"]
        sampler.start()
        soak = _wrk(args, base, args.duration)
        sampler.stop()
        sampler.take()
        rss_end = sampler.samples[-1]["rss"]
        workers_after = {p.pid for p in server.workers()}
        supervisor_rss = rss(psutil.Process(server.pid))
    finally:
        if server is not None:
            server.stop()
        if fresh_db is not None:
            try:
                _drop_database(fresh_db)
            except Exception as exc:  # report, but do not hide the run's own error
                print(f"could not drop database {fresh_db}: {exc}", file=sys.stderr)
        if not args.no_redis:
            try:
                _delete_redis_keys(args.redis_url, prefix)
            except Exception as exc:
                print(f"could not delete Redis keys {prefix}*: {exc}", file=sys.stderr)

    growth = {
        pid: round(100 * (rss_end[pid] - before) / before, 2) if before else None
        for pid, before in rss_warm.items()
    }
    peak = {pid: max(s["rss"][pid] for s in sampler.samples) for pid in rss_warm}
    s5xx = soak.status.get("5xx", -1)
    reasons = []
    if soak.requests == 0 or soak.returncode != 0:
        reasons.append(f"wrk made no requests (exit status {soak.returncode})")
    if "5xx" not in soak.status:
        reasons.append("soak.lua did not report status counts")
    elif s5xx:
        reasons.append(f"{s5xx} 5xx answers")
    if soak.socket_error_total:
        reasons.append(f"socket errors: {soak.socket_errors}")
    if workers_after != {int(pid) for pid in rss_warm}:
        reasons.append("the worker processes changed during the soak (a worker died)")
    worst = max((g for g in growth.values() if g is not None), default=None)
    if worst is None:
        reasons.append("no worker RSS was read")
    elif not worst < args.growth_limit:
        reasons.append(f"worker RSS grew {worst}% (limit {args.growth_limit:g}%)")
    return {
        "benchmark": "soak",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "settings": {
            "app": args.app,
            "workers": args.workers,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "wrk_threads": args.threads,
            "wrk_connections": args.connections,
            "wrk_timeout_s": args.timeout,
            "urls": args.urls,
            "database": "fresh" if fresh_db else "given",
            "redis": not args.no_redis,
        },
        "notes": notes,
        "url_status_before": checks,
        "warmup": warm.as_json(),
        "soak": soak.as_json(),
        "rss_after_warmup": rss_warm,
        "rss_at_end": rss_end,
        "rss_peak": peak,
        "rss_growth_pct": growth,
        "rss_samples": sampler.samples,
        "supervisor_rss": supervisor_rss,
        "pass": not reasons,
        "fail_reasons": reasons,
    }


def report(r: dict[str, Any]) -> str:
    s, soak = r["settings"], r["soak"]
    lat, status = soak["latency_ms"], soak["status"]
    memory = "; ".join(
        f"{mib(r['rss_after_warmup'][pid])} -> {mib(r['rss_at_end'][pid])} "
        f"({r['rss_growth_pct'][pid]:+.1f}%, peak {mib(r['rss_peak'][pid])})"
        for pid in r["rss_after_warmup"]
    )
    rows = [
        ("setup", f"{s['app']}, {s['workers']} workers, PostgreSQL"
         + (" + Redis" if s["redis"] else "")),
        ("load", f"wrk -t{s['wrk_threads']} -c{s['wrk_connections']} {s['duration_s']:g} s "
         f"(after {s['warmup_s']:g} s warm-up), {len(s['urls'])} URLs in turn"),
        ("requests", f"{soak['requests']:,}"),
        ("req/s", f"{soak['rps']:,.0f}"),
        ("latency p50 / p90 / p99 / max",
         " / ".join(f"{lat.get(k, float('nan')):.2f}" for k in ("50", "90", "99", "max"))
         + " ms"),
        ("answers 2xx / 3xx / 4xx / 5xx",
         " / ".join(f"{status.get(k, 0):,}" for k in ("2xx", "3xx", "4xx", "5xx"))),
        ("wrk non-2xx/3xx", f"{soak['non_2xx_3xx']:,}"),
        ("socket errors (connect / read / write / timeout)",
         " / ".join(str(soak["socket_errors"][k]) for k in ("connect", "read", "write",
                                                             "timeout"))),
        ("worker RSS after warm-up -> end", memory),
        ("result", "**PASS**" if r["pass"] else "**FAIL**: " + "; ".join(r["fail_reasons"])),
    ]  # fmt: skip
    text = f"## Soak: {s['app']}, {s['workers']} workers\n\n" + markdown_table(rows)
    if r["notes"]:
        text += "\n\nNotes: " + "; ".join(r["notes"])
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(report(result))
    write_json(args.json, result)
    print(f"\nwrote {args.json}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
