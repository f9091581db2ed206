"""C10k: one Trellis worker holds N idle websockets on loopback and still answers HTTP quickly.

    .venv/bin/python bench/c10k.py                                  # 10,000 connections
    .venv/bin/python bench/c10k.py --connections 500 --duration 5  # a quick look

Starts ``app_c10k.py`` (one uvicorn worker through ``trellis.server.serve``) pinned to
``--server-cpu``; this process pins itself to ``--client-cpu`` and opens ``--connections``
websockets to ``/ws`` with the ``websockets`` client, ``--batch`` at a time so the listen
backlog never overflows. With all of them open it loads ``GET /json`` with
``wrk --latency`` (``--http-connections`` connections paced to about ``--rate`` req/s; 0 =
as fast as the server goes) for ``--duration`` seconds, then sends one message on every
websocket and waits for its echo. The server's RSS is read before and after opening the
connections: memory per connection = the difference / N.

PASS = every connection opened and answered its echo at the end, the server still counts all
of them open, wrk saw no error or non-2xx answer, and HTTP p99 < ``--p99-limit`` (100 ms).
Prints a markdown table and writes the figures as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs; only a few calls
from _harness import (
    HERE,
    Server,
    WrkResult,
    free_port,
    http_get,
    machine,
    markdown_table,
    mib,
    parse_wrk,
    pinned,
    rss,
    usable_cpu,
    write_json,
    wrk_command,
)
from websockets.asyncio.client import ClientConnection, connect

APP = HERE / "app_c10k.py"
PACED = HERE / "paced.lua"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="One Trellis worker holds N idle websockets while answering HTTP.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--connections", type=int, default=10_000, help="idle websockets to hold")
    add("--duration", type=float, default=10.0, help="seconds of HTTP load (wrk) while held")
    add("--server-cpu", type=int, default=0, help="CPU the server is pinned to (-1: none)")
    add("--client-cpu", type=int, default=1, help="CPU the clients and wrk use (-1: none)")
    add("--batch", type=int, default=500, help="websockets opened at once")
    add("--backlog", type=int, default=4096, help="server listen backlog (<= somaxconn)")
    add("--http-connections", type=int, default=10, help="wrk connections")
    add("--rate", type=float, default=1000.0, help="target HTTP req/s (0: saturation)")
    add("--p99-limit", type=float, default=100.0, help="PASS needs HTTP p99 below this (ms)")
    add("--open-timeout", type=float, default=30.0, help="seconds allowed per handshake")
    add("--settle", type=float, default=2.0, help="seconds to wait after opening, before RSS")
    add(
        "--no-compression",
        action="store_true",
        help="clients do not offer permessage-deflate (browsers do; it costs server memory)",
    )
    add("--port", type=int, default=0, help="server port (0: a free one)")
    add("--json", type=Path, default=HERE / "results" / "c10k.json", help="result file")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.batch < 1 or args.http_connections < 1:
        parser.error("--connections, --batch and --http-connections must be at least 1")
    return args


def _raise_fd_limit(need: int) -> int:
    """Raise this process's soft descriptor limit (inherited by the server) to ``need``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(hard, need)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    if soft != resource.RLIM_INFINITY and soft < need:
        raise SystemExit(
            f"{need} descriptors needed per process, the hard limit is {hard}: "
            "raise it (ulimit -Hn, /etc/security/limits.conf) and run again"
        )
    return soft


def _check_kernel(args: argparse.Namespace) -> list[str]:
    """Warnings about kernel settings that would spoil the run."""
    notes = []
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        if args.connections + args.http_connections > high - low + 1:
            raise SystemExit(
                f"only {high - low + 1} ephemeral ports (net.ipv4.ip_local_port_range): "
                f"too few for {args.connections} connections from one address"
            )
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
        if args.backlog > somaxconn:
            notes.append(f"backlog {args.backlog} is capped at net.core.somaxconn={somaxconn}")
        if args.batch > min(args.backlog, somaxconn):
            notes.append(f"--batch {args.batch} exceeds the listen backlog: handshakes may fail")
    except OSError:
        pass
    return notes


async def _open(uri: str, args: argparse.Namespace) -> ClientConnection:
    return await connect(
        uri,
        compression=None if args.no_compression else "deflate",
        ping_interval=None,  # idle clients: only the server's keep-alive pings cross the wire
        open_timeout=args.open_timeout,
        proxy=None,
        max_queue=4,
    )


async def _open_many(
    uri: str, count: int, args: argparse.Namespace, errors: collections.Counter[str]
) -> list[ClientConnection]:
    """Open ``count`` websockets, ``--batch`` at a time; count failures by reason."""
    opened: list[ClientConnection] = []
    for start in range(0, count, args.batch):
        size = min(args.batch, count - start)
        results = await asyncio.gather(
            *(_open(uri, args) for _ in range(size)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, ClientConnection):
                opened.append(result)
            else:
                errors[f"{type(result).__name__}: {str(result)[:80]}"] += 1
    return opened


async def _echo(conn: ClientConnection, text: str, timeout: float) -> bool:
    try:
        await conn.send(text)
        return await asyncio.wait_for(conn.recv(), timeout) == text
    except Exception:  # any failure means the connection was not held
        return False


async def _echo_all(conns: list[ClientConnection], batch: int, timeout: float) -> int:
    ok = 0
    for start in range(0, len(conns), batch):
        chunk = conns[start : start + batch]
        answers = await asyncio.gather(
            *(_echo(c, f"still here {start + i}", timeout) for i, c in enumerate(chunk))
        )
        ok += sum(answers)
    return ok


async def _close_all(conns: list[ClientConnection], batch: int) -> None:
    for start in range(0, len(conns), batch):
        await asyncio.gather(*(c.close() for c in conns[start : start + batch]))


async def _wrk(url: str, args: argparse.Namespace, duration: float, cpu: int | None) -> WrkResult:
    script_args: list[str] = []
    if args.rate > 0:
        script_args = [str(max(1, round(args.http_connections * 1000 / args.rate)))]
    cmd = wrk_command(
        url,
        duration=duration,
        threads=1,
        connections=args.http_connections,
        script=PACED if script_args else None,
        script_args=script_args,
        cpu=cpu,
    )
    # A subprocess the event loop waits on: the held websockets keep answering pings meanwhile.
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return parse_wrk(out.decode(errors="replace"), proc.returncode or 0)


def _stats(base: str) -> dict[str, int]:
    status, body = http_get(base + "/stats")
    if status != 200:
        return {"open": -1, "accepted": -1}
    data: dict[str, int] = json.loads(body)
    return data


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.connections
    fd_limit = _raise_fd_limit(n + args.http_connections + 200)
    notes = _check_kernel(args)
    server_cpu, client_cpu = usable_cpu(args.server_cpu), usable_cpu(args.client_cpu)
    if server_cpu is not None and server_cpu == client_cpu:
        notes.append("server and clients share one CPU")
    port = args.port or free_port()
    base, uri = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
    cmd = [sys.executable, str(APP), "--port", str(port), "--backlog", str(args.backlog)]
    if args.no_compression:
        cmd.append("--no-compression")
    server = Server(pinned(cmd, server_cpu), log=args.json.with_suffix(".server.log"))
    errors: collections.Counter[str] = collections.Counter()
    conns: list[ClientConnection] = []
    try:
        server.wait_ready(base + "/json")
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        proc = psutil.Process(server.pid)

        # Warm-up: both code paths run once before the baseline is taken.
        warm_errors: collections.Counter[str] = collections.Counter()
        await _close_all(await _open_many(uri, min(50, n), args, warm_errors), args.batch)
        await _wrk(base + "/json", args, 2, client_cpu)
        await asyncio.sleep(1)
        rss_before = rss(proc)

        started = time.monotonic()
        conns = await _open_many(uri, n, args, errors)
        connect_s = time.monotonic() - started
        await asyncio.sleep(args.settle)
        rss_open = rss(proc)
        stats_open = _stats(base)

        http = await _wrk(base + "/json", args, args.duration, client_cpu)
        rss_load = rss(proc)

        held = await _echo_all(conns, args.batch, args.open_timeout)
        stats_end = _stats(base)
        client_rss = rss(psutil.Process())
        await _close_all(conns, args.batch)
    finally:
        server.stop()

    p99 = http.latency_ms.get("99", float("inf"))
    reasons = []
    if len(conns) < n:
        reasons.append(f"{n - len(conns)} connections failed to open")
    if held < n:
        reasons.append(f"{n - held} connections did not answer at the end")
    if stats_end["open"] != n:
        reasons.append(f"the server counts {stats_end['open']} open websockets, not {n}")
    if http.requests == 0 or http.returncode != 0:
        reasons.append(f"wrk made no requests (exit status {http.returncode})")
    if http.socket_error_total or http.non_2xx_3xx:
        reasons.append(
            f"HTTP errors: {http.socket_errors}, {http.non_2xx_3xx} non-2xx/3xx responses"
        )
    if not p99 < args.p99_limit:
        reasons.append(f"HTTP p99 {p99:.2f} ms is not below {args.p99_limit:g} ms")
    per_conn = (rss_open - rss_before) / n
    return {
        "benchmark": "c10k",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "settings": {
            "connections": n,
            "duration_s": args.duration,
            "server_cpu": server_cpu,
            "client_cpu": client_cpu,
            "batch": args.batch,
            "backlog": args.backlog,
            "http_connections": args.http_connections,
            "rate": args.rate,
            "compression": not args.no_compression,
            "fd_limit": fd_limit,
            "server": "one uvicorn worker via trellis.server.serve (app_c10k.py)",
        },
        "notes": notes,
        "opened": len(conns),
        "open_errors": dict(errors.most_common(5)),
        "connect_seconds": round(connect_s, 2),
        "held_at_end": held,
        "server_open_after_connect": stats_open["open"],
        "server_open_at_end": stats_end["open"],
        "rss_before": rss_before,
        "rss_with_connections": rss_open,
        "rss_after_http": rss_load,
        "kib_per_connection": round(per_conn / 1024, 2),
        "client_rss": client_rss,
        "http": http.as_json(),
        "pass": not reasons,
        "fail_reasons": reasons,
    }


def report(r: dict[str, Any]) -> str:
    s, http = r["settings"], r["http"]
    lat = http["latency_ms"]
    pace = f"paced to ~{s['rate']:g} req/s" if s["rate"] > 0 else "saturation"
    cpus = f"server on CPU {s['server_cpu']}, clients and wrk on CPU {s['client_cpu']}"
    rows = [
        ("setup", f"1 Trellis worker (uvicorn), {cpus}"),
        ("websockets requested", f"{s['connections']:,} (batches of {s['batch']})"),
        ("opened / failed", f"{r['opened']:,} / {s['connections'] - r['opened']:,}"),
        ("connect time", f"{r['connect_seconds']} s"),
        ("held at the end (echo answered)", f"{r['held_at_end']:,}"),
        ("server's open count (after connect / at end)",
         f"{r['server_open_after_connect']:,} / {r['server_open_at_end']:,}"),
        ("server RSS before", mib(r["rss_before"])),
        ("server RSS with all open", mib(r["rss_with_connections"])),
        ("server RSS after the HTTP load", mib(r["rss_after_http"])),
        ("memory per connection", f"{r['kib_per_connection']} KiB"),
        ("HTTP load", f"wrk -t1 -c{s['http_connections']} {s['duration_s']:g} s, {pace}"),
        ("HTTP req/s", f"{http['rps']:,.0f}"),
        ("HTTP latency p50 / p90 / p99 / max",
         " / ".join(f"{lat.get(k, float('nan')):.2f}" for k in ("50", "90", "99", "max"))
         + " ms"),
        ("HTTP errors (socket / non-2xx-3xx)",
         f"{sum(http['socket_errors'].values())} / {http['non_2xx_3xx']}"),
        ("result", "**PASS**" if r["pass"] else "**FAIL**: " + "; ".join(r["fail_reasons"])),
    ]  # fmt: skip
    text = f"## C10k: {s['connections']:,} idle websockets + HTTP\n\n" + markdown_table(rows)
    if r["open_errors"]:
        text += "\n\nOpen errors: " + "; ".join(f"{k} (x{v})" for k, v in r["open_errors"].items())
    if r["notes"]:
        text += "\n\nNotes: " + "; ".join(r["notes"])
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    print(report(result))
    write_json(args.json, result)
    print(f"\nwrote {args.json}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
