#!/usr/bin/env bash
# Trellis database benchmark: TechEmpower "db" and "fortunes" on PostgreSQL, in one run, for
# Trellis (ORM battery and raw asyncpg), FastAPI (SQLAlchemy ORM and raw asyncpg) and Django ORM.
#
#   bash bench/db/run.sh     # 2 passes, 5 apps, 10 s per endpoint (~7 min)
#
# Quick look (~3 min):
#   PASSES=1 DURATION=5s bash bench/db/run.sh
#
# Knobs (environment): PASSES=2 DURATION=10s WARMUP=3s CONNS=64 PORT=18090 NICE=-20
#   ONLY="trellis-orm fastapi-orm" (subset of config ids, see CONFIGS)
#   OUT=dir (raw results, wiped at start; default bench/db/results, gitignored)
#   RESULTS=path (markdown report; default $OUT/RESULTS.md)
#   VENV=bench/.venv (shared with bench/run.sh)  RETRY_BELOW=90 (see bench/run.sh)
#   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/trellis_bench
#   BENCH_POOL_SIZE=32 (connections per app, every app the same)
#   PG_CPU=1 (CPU the PostgreSQL backends serving the app are pinned to; empty: not pinned)
#   VERIFY_COUNT=first (first|all|none: passes in which verify.py also runs its 512-request
#   bursts and checks the database work counters; ~12 s per app)
#
# Every server: ONE uvicorn process pinned to CPU 0 (uvloop, httptools, access log off, log
# level warning). wrk -t1 -c64 pinned to CPU 1. Before its load runs each app must pass
# verify.py (TFB rules); an app that fails is not measured. The PostgreSQL backends that serve
# the app's own connections (found through ss: the server-side sockets whose peer is one of the
# app's connections) are pinned to PG_CPU with `taskset -p` after the warm-up and again before
# every load run; nothing else of the PostgreSQL server is touched, no setting is changed, and
# those backends exit when the app stops.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(cd "$HERE/.." && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
VENV="${VENV:-$BENCH/.venv}"
PY="$VENV/bin/python"
PASSES="${PASSES:-2}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNS="${CONNS:-64}"
PORT="${PORT:-18090}"
OUT="${OUT:-$HERE/results}"
RESULTS="${RESULTS:-$OUT/RESULTS.md}"
NICE="${NICE:--20}"
RETRY_BELOW="${RETRY_BELOW:-90}"
PG_CPU="${PG_CPU-1}"
VERIFY_COUNT="${VERIFY_COUNT:-first}"
export BENCH_DATABASE_URL="${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/trellis_bench}"
export BENCH_POOL_SIZE="${BENCH_POOL_SIZE:-32}"
SERVER_CPU=0
CLIENT_CPU=1
T_START=$(date +%s)
ACCEPT_DB='application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
ACCEPT_HTML='text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'

cd "$HERE" || exit 1

# Same autogroup handling as bench/run.sh: give this session's autogroup NICE (root only).
AUTOGROUP_NICE_WAS=""
if [ -w /proc/self/autogroup ] && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
  AUTOGROUP_NICE_WAS=$(awk '{print $NF}' /proc/self/autogroup)
  echo "$NICE" > /proc/self/autogroup 2>/dev/null || AUTOGROUP_NICE_WAS=""
fi
pid=""
cleanup() {  # on exit (Ctrl-C too): stop the server this script started, restore the autogroup
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null; fi
  if [ -n "$AUTOGROUP_NICE_WAS" ]; then echo "$AUTOGROUP_NICE_WAS" > /proc/self/autogroup 2>/dev/null; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- prerequisites
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update && apt-get install -y wrk || { echo "wrk not available" >&2; exit 1; }
fi
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
MARKER="$VENV/.bench-db-installed"
want="$(cat "$BENCH/requirements.lock.txt" "$HERE/requirements.lock.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$PY" ]; then
  echo "creating $VENV"
  "$PYTHON" -m venv "$VENV" || exit 1
fi
if [ "$(cat "$MARKER" 2>/dev/null)" != "$want" ]; then
  echo "installing bench/requirements.lock.txt, bench/db/requirements.lock.txt and Trellis[db] (editable) into $VENV"
  "$VENV/bin/pip" install -q -r "$BENCH/requirements.lock.txt" -r "$HERE/requirements.lock.txt" \
    && "$VENV/bin/pip" install -q -e "$ROOT[db]" || exit 1
  echo "$want" > "$MARKER"
fi
"$PY" -c "import trellis, asyncpg, sqlalchemy, psycopg, psycopg_pool, django, fastapi" \
  || { echo "the bench venv $VENV lacks a package" >&2; exit 1; }

read -r PGHOST PGPORT <<< "$("$PY" -c 'import os, urllib.parse as u; p = u.urlsplit(os.environ["BENCH_DATABASE_URL"]); print(p.hostname or "localhost", p.port or 5432)')"
case "$PGHOST" in
  127.0.0.1|localhost|::1) ;;
  *) [ -n "$PG_CPU" ] && echo "database host $PGHOST is not local: PostgreSQL backends are not pinned"; PG_CPU="" ;;
esac

"$PY" setup_db.py "$BENCH_DATABASE_URL" || { echo "setup_db.py failed" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/raw" "$OUT/logs"
RUNS="$OUT/runs.tsv"
FAIL="$OUT/failures.txt"
CHECKS="$OUT/checks.txt"
CMDS="$OUT/commands.txt"
RETRIES="$OUT/retries.tsv"
printf 'pass\tconfig\tendpoint\tdiscarded_raw\tserver_share_pct\tcpu_before\tcpu_after\n' > "$RETRIES"
printf 'pass\tconfig\tframework\tendpoint\traw\tmain_rss_kb\tpg_backends\tcpu_before\tcpu_after\tpg_before\tpg_after\n' > "$RUNS"
: > "$FAIL"; : > "$CHECKS"; : > "$CMDS"

# ---------------------------------------------------------------- servers
UVICORN="$VENV/bin/uvicorn --loop uvloop --http httptools --no-access-log --log-level warning --host 127.0.0.1 --port $PORT"

# id | framework (report label) | command (run under taskset -c 0)
CONFIGS=(
  "trellis-orm|Trellis + ORM battery (SQLAlchemy, asyncpg)|$UVICORN app_trellis_orm:app"
  "trellis-raw|Trellis + raw asyncpg|$UVICORN app_trellis_raw:app"
  "fastapi-orm|FastAPI + SQLAlchemy ORM (asyncpg)|$UVICORN app_fastapi_orm:app"
  "fastapi-raw|FastAPI + raw asyncpg|$UVICORN app_fastapi_raw:app"
  "django-orm|Django ORM (ASGI, psycopg 3 pool)|$UVICORN app_django_orm:application"
)
# endpoint | path | Accept header
ENDPOINTS=("db|/db|$ACCEPT_DB" "fortunes|/fortunes|$ACCEPT_HTML")

# ---------------------------------------------------------------- helpers
rss_kb() { awk '/^VmRSS:/{print $2; f=1} END{if(!f) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }

ticks_of() {  # pids -> summed utime+stime (jiffies)
  local t=0 p v
  for p in "$@"; do
    v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}')
    t=$(( t + ${v:-0} ))
  done
  echo "$t"
}

# As bench/run.sh: server ticks, then for cpu0 and cpu1: busy, idle+iowait, steal.
cpu_snap() {
  echo "$(ticks_of "$@"),$(awk '/^cpu0 |^cpu1 /{printf "%d,%d,%d,", $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat)" | sed 's/,$//'
}

server_share() {  # before after -> integer % of CPU 0 wall time used by the server
  local b a
  IFS=, read -r -a b <<< "$1"
  IFS=, read -r -a a <<< "$2"
  local srv=$(( a[0] - b[0] ))
  local tot=$(( (a[1] + a[2] + a[3]) - (b[1] + b[2] + b[3]) ))
  if [ "$tot" -le 0 ]; then echo 100; else echo $(( 100 * srv / tot )); fi
}

children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }

port_busy() { ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

# The PostgreSQL backends serving the connections of process $1: the app's sockets to PGPORT
# give their local ports; the server-side sockets whose peer is one of those belong to them.
pg_backends() {
  local ports
  ports=$(ss -Htnp "( dport = :$PGPORT )" 2>/dev/null | grep -F "pid=$1," | awk '{print $4}' | sed 's/.*://' | sort -u)
  [ -z "$ports" ] && return 0
  ss -Htnp "( sport = :$PGPORT )" 2>/dev/null \
    | awk -v ports=" $(echo $ports) " '{n=split($5, a, ":"); if (index(ports, " " a[n] " ")) print $0}' \
    | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

pin_pg() {  # server pid -> pins its backends to PG_CPU; prints their pids
  local b pids
  pids=$(pg_backends "$1")
  if [ -n "$PG_CPU" ]; then
    for b in $pids; do taskset -p -c "$PG_CPU" "$b" > /dev/null 2>&1; done
  fi
  echo $pids
}

wait_ready() {
  local i
  for i in $(seq 1 150); do
    kill -0 "$1" 2>/dev/null || return 1
    curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/db" && return 0
    sleep 0.2
  done
  return 1
}

stop_server() {  # pid
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$(date +%T) pid $pid did not stop on SIGTERM in 10 s; sent SIGKILL" >> "$FAIL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  for i in $(seq 1 50); do port_busy || return 0; sleep 0.2; done
  echo "$(date +%T) port $PORT still busy after stopping pid $pid" >> "$FAIL"
}

secs() { echo "${1%s}"; }

run_wrk() {  # out-file url accept
  local limit=$(( $(secs "$DURATION") + 30 ))
  timeout -k 5 "$limit" nice -n "$NICE" taskset -c $CLIENT_CPU wrk -t1 -c"$CONNS" -d"$DURATION" \
    --timeout 8 --latency -H "Accept: $3" -H "Connection: keep-alive" "$2" > "$1" 2>&1
}

# ---------------------------------------------------------------- metadata
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc) cores"
  echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "python: $($PY -c 'import sys; print(sys.version.split()[0])')"
  echo "trellis: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ] && echo ' + uncommitted changes in src/')"
  echo "postgresql: $("$PY" -c 'import os, psycopg; c = psycopg.connect(os.environ["BENCH_DATABASE_URL"]); print(c.execute("show server_version").fetchone()[0], "max_connections", c.execute("show max_connections").fetchone()[0], "synchronous_commit", c.execute("show synchronous_commit").fetchone()[0])' 2>&1)"
  echo "database: $BENCH_DATABASE_URL  pool per app: $BENCH_POOL_SIZE  postgres backends pinned to: ${PG_CPU:-not pinned}"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "passes: $PASSES  duration: $DURATION  warmup: $WARMUP  connections: $CONNS  nice: $NICE"
  echo "autogroup: $(cat /proc/self/autogroup 2>/dev/null || echo n/a) (was nice ${AUTOGROUP_NICE_WAS:-unchanged})"
} > "$OUT/meta.txt"
"$VENV/bin/pip" freeze > "$OUT/pip-freeze.txt" 2>/dev/null

# ---------------------------------------------------------------- load runs
declare -A REFUSED=()
for pass in $(seq 1 "$PASSES"); do
  for cfg in "${CONFIGS[@]}"; do
    IFS='|' read -r id fw cmd <<< "$cfg"
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $id "* ]]; then continue; fi
    log="$OUT/logs/p${pass}_${id}.log"
    [ "$pass" = 1 ] && echo "$id: nice -n $NICE taskset -c $SERVER_CPU $cmd" >> "$CMDS"
    echo "[$(date +%T)] pass $pass: $id"

    if port_busy; then
      echo "pass $pass $id: port $PORT busy before start; skipped" >> "$FAIL"; continue
    fi
    # shellcheck disable=SC2086
    nice -n "$NICE" taskset -c $SERVER_CPU $cmd > "$log" 2>&1 &
    pid=$!
    if ! wait_ready "$pid"; then
      echo "pass $pass $id: server did not answer within 30 s (log: logs/p${pass}_${id}.log)" >> "$FAIL"
      echo "    did not start: $(tail -1 "$log")"
      stop_server "$pid"; continue
    fi

    count=--no-count
    if [ "$VERIFY_COUNT" = all ] || { [ "$VERIFY_COUNT" = first ] && [ "$pass" = 1 ]; }; then count=""; fi
    echo "== pass $pass $id" >> "$CHECKS"
    # shellcheck disable=SC2086
    if ! "$PY" verify.py "$PORT" --database-url "$BENCH_DATABASE_URL" $count >> "$CHECKS" 2>&1; then
      echo "pass $pass $id: verify.py failed (see checks.txt): not measured" >> "$FAIL"
      echo "    verify.py FAILED: not measured (see $CHECKS)"
      REFUSED[$id]=1
      stop_server "$pid"; continue
    fi

    timeout -k 5 $(( $(secs "$WARMUP") + 30 )) nice -n "$NICE" taskset -c $CLIENT_CPU \
      wrk -t1 -c"$CONNS" -d"$WARMUP" -s warmup.lua "http://127.0.0.1:$PORT/" \
      > "$OUT/raw/p${pass}_${id}_warmup.txt" 2>&1

    for spec in "${ENDPOINTS[@]}"; do
      IFS='|' read -r ep path accept <<< "$spec"
      raw="raw/p${pass}_${id}_${ep}.txt"
      for attempt in 1 2; do
        kids=$(children_of "$pid")
        pg=$(pin_pg "$pid")
        # shellcheck disable=SC2086
        before=$(cpu_snap "$pid" $kids); pg_before=$(ticks_of $pg)
        run_wrk "$OUT/$raw" "http://127.0.0.1:$PORT$path" "$accept"
        rc=$?
        # shellcheck disable=SC2086
        after=$(cpu_snap "$pid" $kids); pg_after=$(ticks_of $pg)
        [ $rc -ne 0 ] && echo "pass $pass $id $ep: wrk exited with status $rc" >> "$FAIL"
        share=$(server_share "$before" "$after")
        if [ "$attempt" = 1 ] && [ "$share" -lt "$RETRY_BELOW" ]; then
          mv "$OUT/$raw" "$OUT/${raw%.txt}_discarded.txt"
          printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pass" "$id" "$ep" "${raw%.txt}_discarded.txt" \
            "$share" "$before" "$after" >> "$RETRIES"
          echo "    $ep: server had ${share}% of CPU $SERVER_CPU (< $RETRY_BELOW%), measuring again"
          sleep 1
          continue
        fi
        break
      done
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pass" "$id" "$fw" "$ep" "$raw" \
        "$(rss_kb "$pid")" "$(echo $pg | wc -w)" "$before" "$after" "$pg_before" "$pg_after" >> "$RUNS"
      printf '    %-10s %s  (server %s%% of CPU 0, %s postgres backends)\n' "$ep" \
        "$(grep -E 'Requests/sec' "$OUT/$raw" | tr -s ' ')" "$share" "$(echo $pg | wc -w)"
      sleep 0.2
    done
    stop_server "$pid"
  done
done

T_END=$(date +%s)
echo "total wall time: $(( T_END - T_START )) s" >> "$OUT/meta.txt"
[ ${#REFUSED[@]} -gt 0 ] && echo "refused (failed verify.py): ${!REFUSED[*]}" >> "$OUT/meta.txt"

# ---------------------------------------------------------------- report
"$PY" report.py "$OUT" > "$RESULTS" && echo "wrote $RESULTS ($(( T_END - T_START )) s)"
echo
"$PY" report.py "$OUT" --summary
