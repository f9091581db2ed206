"""What ``c10k.py`` and ``soak.py`` share: wrk output parsing, server processes, RSS, reports.

Standard library plus psutil (a dev dependency of Trellis).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil  # type: ignore[import-untyped]  # no stubs; only a few calls

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass
class WrkResult:
    """The figures of one wrk run (latencies in milliseconds)."""

    requests: int = 0
    rps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)  # "50", "75", "90", "99", "max"
    socket_errors: dict[str, int] = field(
        default_factory=lambda: {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    non_2xx_3xx: int = 0
    status: dict[str, int] = field(default_factory=dict)  # from a script's "status:" line
    returncode: int = 0
    raw: str = ""

    @property
    def socket_error_total(self) -> int:
        """Connect, read, write and timeout errors together."""
        return sum(self.socket_errors.values())

    def as_json(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (without the raw output)."""
        data = asdict(self)
        del data["raw"]
        return data


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str, returncode: int = 0) -> WrkResult:
    """Read wrk's text output (run with ``--latency``)."""
    result = WrkResult(returncode=returncode, raw=output)
    for line in output.splitlines():
        text = line.strip()
        if m := re.fullmatch(r"(50|75|90|99)%\s+(\S+)", text):
            result.latency_ms[m.group(1)] = _ms(m.group(2))
        elif m := re.match(r"Latency\s+\S+\s+\S+\s+(\S+)", text):
            result.latency_ms["max"] = _ms(m.group(1))
        elif m := re.match(r"(\d+) requests in", text):
            result.requests = int(m.group(1))
        elif m := re.match(r"Requests/sec:\s+([\d.]+)", text):
            result.rps = float(m.group(1))
        elif text.startswith("Socket errors:"):
            for kind, count in re.findall(r"(connect|read|write|timeout) (\d+)", text):
                result.socket_errors[kind] = int(count)
        elif m := re.match(r"Non-2xx or 3xx responses:\s+(\d+)", text):
            result.non_2xx_3xx = int(m.group(1))
        elif text.startswith("status:"):
            for kind, count in re.findall(r"(\w+)=(\d+)", text):
                result.status[kind] = int(count)
    return result


def wrk_command(
    url: str,
    *,
    duration: float,
    threads: int,
    connections: int,
    script: Path | None = None,
    script_args: Sequence[str] = (),
    timeout: float | None = None,
    cpu: int | None = None,
) -> list[str]:
    """The wrk command line (``--latency`` always), pinned to ``cpu`` when given."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    if timeout is not None:
        cmd.append(f"--timeout={max(1, round(timeout))}s")
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    return pinned(cmd, cpu)


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """``cmd`` under ``taskset -c cpu`` (unchanged when cpu is None or taskset is missing)."""
    if cpu is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


def usable_cpu(cpu: int | None) -> int | None:
    """``cpu`` if this process may run there, else None (and pinning is skipped)."""
    if cpu is None or cpu < 0:
        return None
    return cpu if cpu in os.sched_getaffinity(0) else None


def free_port() -> int:
    """A loopback port nothing listens on (for the moment)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``: (status, body); status 0 when the server did not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (OSError, TimeoutError):
        return 0, b""


class Server:
    """A server process in its own process group, stopped with the whole group."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self._log_file: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop() ends it and its workers only
        )

    @property
    def pid(self) -> int:
        """The process id of the server (the supervisor when it has workers)."""
        return self.process.pid

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        """Wait until ``url`` answers below 500; SystemExit with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            status, _ = http_get(url, timeout=2.0)
            if 0 < status < 500:
                return
            time.sleep(0.2)
        self.stop()
        tail = self.log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"the server did not answer {url} within {timeout:.0f} s:\n{tail}")

    def workers(self) -> list[psutil.Process]:
        """The serving processes: the worker children, or the server itself without them."""
        try:
            parent = psutil.Process(self.pid)
            children = [
                p
                for p in parent.children(recursive=True)
                # multiprocessing's helper is no worker
                if "resource_tracker" not in " ".join(p.cmdline())
            ]
        except psutil.Error:
            return []
        return children or [parent]

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds."""
        if self.process.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        # Workers left behind by a supervisor that died first.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log_file.close()


def rss(process: psutil.Process) -> int:
    """Resident set size in bytes (0 when the process is gone)."""
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def mib(n_bytes: float) -> str:
    """Bytes as MiB with one decimal."""
    return f"{n_bytes / 2**20:.1f} MiB"


def markdown_table(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column markdown table (measure | value)."""
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` as indented JSON (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU model and count, memory, kernel."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": os.uname().release,
        "loadavg_1m": os.getloadavg()[0],
    }
