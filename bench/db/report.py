"""Report of a database benchmark run (bench/db/run.sh): markdown, or a plain-text summary.

Usage:
    python report.py results/ > RESULTS.md
    python report.py results/ --summary
"""

import csv
import os
import re
import statistics
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")
ENDPOINTS = [("db", "GET /db (one World row, JSON)"), ("fortunes", "GET /fortunes (HTML)")]
ORDER = ["trellis-orm", "trellis-raw", "fastapi-orm", "fastapi-raw", "django-orm"]
# (numerator, denominator, meaning) of the ratio table.
RATIOS = [
    ("trellis-orm", "fastapi-orm", "Trellis ORM battery / FastAPI + SQLAlchemy ORM"),
    ("trellis-orm", "django-orm", "Trellis ORM battery / Django ORM"),
    ("trellis-raw", "fastapi-raw", "Trellis + asyncpg / FastAPI + asyncpg"),
    ("trellis-orm", "trellis-raw", "Trellis ORM battery / Trellis + asyncpg (cost of the ORM)"),
    ("fastapi-orm", "fastapi-raw", "FastAPI ORM / FastAPI + asyncpg (cost of the ORM)"),
]
DISTURBED_BELOW = 90.0


def read(path, default=""):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return default


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text or "")
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def parse_wrk(path):
    """req/s, p50/p99 ms, requests, non-2xx and socket errors of one wrk --latency output."""
    txt = read(path)
    d = {"rps": None, "p50": None, "p99": None, "requests": None, "non2xx": 0, "sock": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", txt)
    if m:
        d["rps"] = float(m.group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", txt, re.M))
    d["p50"], d["p99"] = to_ms(lat.get("50")), to_ms(lat.get("99"))
    m = re.search(r"(\d+) requests in", txt)
    if m:
        d["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", txt)
    if m:
        d["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", txt)
    if m:
        d["sock"] = sum(int(x) for x in m.groups())
    return d


def cpu_stats(before, after):
    try:
        b = [int(x) for x in before.split(",")]
        a = [int(x) for x in after.split(",")]
    except (AttributeError, ValueError):
        return None
    if len(a) != 7 or len(b) != 7:
        return None
    srv, busy0, idle0, steal0, busy1, idle1, steal1 = (y - x for x, y in zip(b, a, strict=True))
    tot0, tot1 = busy0 + idle0 + steal0, busy1 + idle1 + steal1
    if tot0 <= 0 or tot1 <= 0:
        return None
    return {
        "srv_ticks": srv,
        "server": 100 * srv / tot0,
        "idle0": 100 * idle0 / tot0,
        "busy1": 100 * busy1 / tot1,
        "idle1": 100 * idle1 / tot1,
        "tot1": tot1,
    }


def load(out):
    data, frameworks, passes = {}, {}, []
    with open(os.path.join(out, "runs.tsv")) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for r in rows:
        p = int(r["pass"])
        if p not in passes:
            passes.append(p)
        frameworks[r["config"]] = r["framework"]
        d = parse_wrk(os.path.join(out, r["raw"]))
        d["cpu"] = cpu_stats(r["cpu_before"], r["cpu_after"])
        d["rss_mb"] = int(r["main_rss_kb"] or 0) / 1024
        d["pg_backends"] = int(r["pg_backends"] or 0)
        pg_ticks = int(r["pg_after"] or 0) - int(r["pg_before"] or 0)
        us = 1e6 / CLK_TCK
        n = d["requests"]
        d["srv_us"] = d["cpu"]["srv_ticks"] * us / n if d["cpu"] and n else None
        d["pg_us"] = pg_ticks * us / n if n else None
        d["pg_share1"] = 100 * pg_ticks / d["cpu"]["tot1"] if d["cpu"] else None
        data[(p, r["config"], r["endpoint"])] = d
    configs = [c for c in ORDER if c in frameworks] + [c for c in frameworks if c not in ORDER]
    return data, frameworks, configs, sorted(passes)


OUT = sys.argv[1] if len(sys.argv) > 1 else "results"
DATA, FRAMEWORKS, CONFIGS, PASSES = load(OUT)


def fmt(x, spec="{:,.0f}", none="-"):
    return none if x is None else spec.format(x)


def mean_of(cfg, ep, key):
    vals = [DATA[(p, cfg, ep)][key] for p in PASSES if (p, cfg, ep) in DATA]
    vals = [v for v in vals if v is not None]
    return statistics.mean(vals) if vals else None


def ratio(num, den, ep):
    """Mean over passes of num req/s / den req/s in the same pass."""
    vals = []
    for p in PASSES:
        a, b = DATA.get((p, num, ep)), DATA.get((p, den, ep))
        if a and b and a["rps"] and b["rps"]:
            vals.append(a["rps"] / b["rps"])
    return statistics.mean(vals) if vals else None


def disturbed(d):
    return bool(d and d.get("cpu") and d["cpu"]["server"] < DISTURBED_BELOW)


def summary():
    lines = [
        f"Database benchmark ({len(PASSES)} pass(es); req/s mean over passes; "
        "x fastapi-orm = req/s / FastAPI + SQLAlchemy ORM req/s in the same pass, mean)",
        "",
        f"  {'app':<14}{'framework':<46}{'db req/s':>10}{'fortunes':>10}"
        f"{'db x fa-orm':>13}{'fort x fa-orm':>15}",
    ]
    for cfg in CONFIGS:
        marks = {
            ep: "!" if any(disturbed(DATA.get((p, cfg, ep))) for p in PASSES) else ""
            for ep, _ in ENDPOINTS
        }
        lines.append(
            f"  {cfg:<14}{FRAMEWORKS[cfg][:45]:<46}"
            f"{fmt(mean_of(cfg, 'db', 'rps')) + marks['db']:>10}"
            f"{fmt(mean_of(cfg, 'fortunes', 'rps')) + marks['fortunes']:>10}"
            f"{fmt(ratio(cfg, 'fastapi-orm', 'db'), '{:.2f}'):>13}"
            f"{fmt(ratio(cfg, 'fastapi-orm', 'fortunes'), '{:.2f}'):>15}"
        )
    lines += ["", "  ratios (same pass, mean over passes)                          db  fortunes"]
    for num, den, meaning in RATIOS:
        if num in CONFIGS and den in CONFIGS:
            lines.append(
                f"  {meaning:<60}{fmt(ratio(num, den, 'db'), '{:.2f}'):>6}"
                f"{fmt(ratio(num, den, 'fortunes'), '{:.2f}'):>10}"
            )
    if any(disturbed(d) for d in DATA.values()):
        lines += ["", f"! = the server got < {DISTURBED_BELOW:.0f}% of CPU 0 in that run"]
    refused = re.search(r"^refused.*$", read(os.path.join(OUT, "meta.txt")), re.M)
    if refused:
        lines += ["", refused.group(0) + " (not measured; see checks.txt)"]
    return "\n".join(lines)


if "--summary" in sys.argv[2:]:
    print(summary())
    sys.exit(0)

meta = read(os.path.join(OUT, "meta.txt")).strip()
w = print
w("# Trellis database benchmark: TechEmpower db and fortunes on PostgreSQL\n")
w("Generated by `bash bench/db/run.sh` (rewritten by each run; raw wrk output in `raw/`).\n")
w("```\n" + meta + "\n```\n")
w(
    "**Method.** One uvicorn process per app (uvloop, httptools, access log off) pinned to CPU 0; "
    "`wrk -t1 -c64 --latency` with TFB's Accept header pinned to CPU 1; the PostgreSQL backends "
    "serving the app's connections pinned to CPU 1 too (see meta). Each app passes `verify.py` "
    "(TFB rules) before its load, gets a warm-up over both endpoints, then one wrk run per "
    "endpoint. *server µs/req* = CPU time of the app process per request; *pg µs/req* = CPU time "
    "of its PostgreSQL backends per request; *pg % CPU1* = their share of CPU 1 (which wrk "
    "shares). ⚠ = the app got less than 90% of CPU 0 in that run.\n"
)
w("## Summary\n")
w("| app | framework | db req/s | fortunes req/s | db x fastapi-orm | fortunes x fastapi-orm |")
w("|---|---|---|---|---|---|")
for cfg in CONFIGS:
    w(
        f"| `{cfg}` | {FRAMEWORKS[cfg]} | {fmt(mean_of(cfg, 'db', 'rps'))} | "
        f"{fmt(mean_of(cfg, 'fortunes', 'rps'))} | {fmt(ratio(cfg, 'fastapi-orm', 'db'), '{:.2f}')}"
        f" | {fmt(ratio(cfg, 'fastapi-orm', 'fortunes'), '{:.2f}')} |"
    )
w("")
w("| ratio (req/s, same pass, mean over passes) | db | fortunes |")
w("|---|---|---|")
for num, den, meaning in RATIOS:
    if num in CONFIGS and den in CONFIGS:
        w(
            f"| {meaning} | {fmt(ratio(num, den, 'db'), '{:.2f}')} | "
            f"{fmt(ratio(num, den, 'fortunes'), '{:.2f}')} |"
        )
w("")
for ep, title in ENDPOINTS:
    w(f"## {title}\n")
    w(
        "| app | pass | req/s | p50 ms | p99 ms | server % CPU0 | server µs/req | pg µs/req "
        "| pg % CPU1 | CPU1 busy % | pg backends | RSS MB | non-2xx | socket errors |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for cfg in CONFIGS:
        for p in PASSES:
            d = DATA.get((p, cfg, ep))
            if not d:
                continue
            c = d["cpu"] or {}
            w(
                f"| `{cfg}` | {p} | {fmt(d['rps'])}{' ⚠' if disturbed(d) else ''} | "
                f"{fmt(d['p50'], '{:.2f}')} | {fmt(d['p99'], '{:.2f}')} | "
                f"{fmt(c.get('server'), '{:.0f}')} | {fmt(d['srv_us'], '{:.0f}')} | "
                f"{fmt(d['pg_us'], '{:.0f}')} | {fmt(d['pg_share1'], '{:.0f}')} | "
                f"{fmt(c.get('busy1'), '{:.0f}')} | {d['pg_backends']} | {d['rss_mb']:.1f} | "
                f"{d['non2xx']} | {d['sock']} |"
            )
    w("")
checks = read(os.path.join(OUT, "checks.txt")).strip()
w("## Verification (`verify.py`, before each app's load)\n")
w("```\n" + (checks or "(none)") + "\n```\n")
failures = read(os.path.join(OUT, "failures.txt")).strip()
w("Driver failures:\n")
w("```\n" + (failures or "(none)") + "\n```\n")
retries = read(os.path.join(OUT, "retries.tsv")).strip().splitlines()[1:]
w("Re-measured runs (first attempt kept as `raw/*_discarded.txt`):\n")
w("```\n" + ("\n".join(retries) or "(none)") + "\n```\n")
w("## Exact commands\n")
w("```\n" + read(os.path.join(OUT, "commands.txt")).strip() + "\n```\n")
