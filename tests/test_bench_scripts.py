"""The C10k and soak benchmark scripts: their options, wrk parsing, and soak.lua's counts.

The benchmarks themselves are not run here (they take minutes and want a quiet machine); these
tests check the parts whose mistakes would make a PASS meaningless.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from browser_helpers import free_port, serve

BENCH = Path(__file__).resolve().parents[1] / "bench"
# bench/ is not a package; load its helper module without putting bench/ on sys.path.
_spec = importlib.util.spec_from_file_location("bench_harness", BENCH / "_harness.py")
assert _spec is not None and _spec.loader is not None
_harness = importlib.util.module_from_spec(_spec)
sys.modules["bench_harness"] = _harness  # dataclasses look their module up
_spec.loader.exec_module(_harness)

WRK = shutil.which("wrk")


@pytest.mark.parametrize(
    ("script", "options"),
    [
        ("c10k.py", ["--connections", "--duration", "--server-cpu", "--client-cpu", "--json"]),
        ("soak.py", ["--duration", "--warmup", "--workers", "--url", "--database-url", "--json"]),
    ],
)
def test_help_lists_the_options(script: str, options: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for option in options:
        assert option in done.stdout


def test_bad_option_value_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "c10k.py"), "--connections", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--connections" in done.stderr


WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8000/json
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.31ms    2.10ms   1.20s    90.12%
    Req/Sec     6.05k   512.33     7.01k    70.00%
  Latency Distribution
     50%  812.00us
     75%    4.93ms
     90%    7.50ms
     99%    1.02s
  120516 requests in 10.00s, 20.12MB read
  Socket errors: connect 1, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:  12049.31
Transfer/sec:      2.01MB
status: 2xx=120000 3xx=504 4xx=9 5xx=3 other=0
"""


def test_parse_wrk_reads_every_figure() -> None:
    result = _harness.parse_wrk(WRK_OUTPUT)
    assert result.requests == 120516
    assert result.rps == pytest.approx(12049.31)
    assert result.latency_ms == pytest.approx(
        {"50": 0.812, "75": 4.93, "90": 7.5, "99": 1020.0, "max": 1200.0}
    )
    assert result.socket_errors == {"connect": 1, "read": 2, "write": 0, "timeout": 7}
    assert result.socket_error_total == 10
    assert result.non_2xx_3xx == 12
    assert result.status == {"2xx": 120000, "3xx": 504, "4xx": 9, "5xx": 3, "other": 0}


def test_parse_wrk_without_errors_counts_zero() -> None:
    # wrk prints no "Socket errors" or "Non-2xx" line when there were none.
    clean = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if not line.strip().startswith(("Socket", "Non"))
    )
    result = _harness.parse_wrk(clean)
    assert result.socket_error_total == 0
    assert result.non_2xx_3xx == 0


STATUS_APP = textwrap.dedent(
    """\
    async def app(scope, receive, send):
        # /s/<code> answers with that status code.
        assert scope["type"] == "http"
        code = int(scope["path"].rsplit("/", 1)[-1])
        headers = [(b"content-length", b"2")]
        if code == 302:
            headers.append((b"location", b"/s/200"))
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
    """
)


@pytest.mark.skipif(WRK is None, reason="needs wrk (apt-get install wrk)")
def test_soak_lua_counts_answers_by_class_across_threads(tmp_path: Path) -> None:
    (tmp_path / "status_app.py").write_text(STATUS_APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--port", str(port), "status_app:app"]
    env = dict(os.environ)
    with serve(command, port=port, env=env, cwd=tmp_path, name="uvicorn", ready="/s/200") as url:
        cmd = _harness.wrk_command(
            url,
            duration=1,
            threads=2,
            connections=4,
            script=BENCH / "soak.lua",
            script_args=["/s/200", "/s/302", "/s/404", "/s/503"],
        )
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    result = _harness.parse_wrk(done.stdout, done.returncode)
    assert done.returncode == 0, done.stdout + done.stderr
    status = result.status
    # Both threads' counters are added up: together they account for every request.
    assert sum(status.values()) == result.requests > 0
    for kind in ("2xx", "3xx", "4xx", "5xx"):
        assert status[kind] > 0, status
    assert status["4xx"] + status["5xx"] == result.non_2xx_3xx
