"""``examples/deploy/trellis.service`` and ``examples/deploy/Dockerfile``.

Their ``trellis run`` command lines run for real here, changed only where this machine
differs from production: this virtual environment's ``trellis``, the test application, a
free port and a socket in the test's directory. The unit is checked by ``systemd-analyze
verify`` where it exists. The image is not built (no container engine here): the test checks
what can be checked without one.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server_helpers import SERVED_APP_DIR, TIMEOUT, ServerProcess, clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy"
TRELLIS = Path(sys.executable).parent / "trellis"

pytestmark = pytest.mark.server


def unit_file(path: Path) -> dict[str, dict[str, list[str]]]:
    """The sections of a systemd unit: every key with its values, in order."""
    sections: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            section.setdefault(key.strip(), []).append(value.strip())
    return sections


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """The instructions of a Dockerfile: (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def option(argv: list[str], name: str) -> list[str]:
    """The values of the option ``name`` in ``argv``."""
    return [value for flag, value in itertools.pairwise(argv) if flag == name]


def runnable_here(argv: list[str], port: int, tmp_path: Path) -> list[str]:
    """``argv``, a production ``trellis run`` command line, changed to run in this test."""
    assert Path(argv[0]).name == "trellis" and argv[1] == "run", argv
    target, options = argv[2], argv[3:]
    assert re.fullmatch(r"[\w.]+:\w+", target), target
    assert len(options) % 2 == 0, options  # --flag value pairs only
    here = [str(TRELLIS), "run", "served_app:app", "--app-dir", str(SERVED_APP_DIR)]
    for flag, value in zip(options[::2], options[1::2], strict=True):
        if flag == "--bind":
            unix = value.startswith("unix:")
            value = f"unix:{tmp_path / 'web.sock'}" if unix else f"127.0.0.1:{port}"
        elif flag == "--host":
            value = "127.0.0.1"  # not every interface of a shared machine
        elif flag == "--port":
            value = str(port)
        here += [flag, value]
    return here


def serve_and_stop(argv: list[str], tmp_path: Path, stop_within: float) -> str:
    """Run ``argv`` made runnable here; check that its workers answer and SIGTERM stops it."""
    port = free_port()
    workers = int(option(argv, "--workers")[0])
    env = clean_env(SERVED_APP_EVENTS=str(tmp_path / "events"))
    with ServerProcess(runnable_here(argv, port, tmp_path), tmp_path, env) as server:
        pids = set()
        deadline = time.monotonic() + TIMEOUT
        while len(pids) < workers:
            assert time.monotonic() < deadline, f"only {pids} answered:\n{server.stderr}"
            info = server.get("/info", url=f"http://127.0.0.1:{port}").json()
            assert info["started"]
            pids.add(info["pid"])
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < stop_within
    assert (tmp_path / "events").read_text().count("shutdown") == workers
    return server.stderr


def test_systemd_unit(tmp_path: Path) -> None:
    unit = unit_file(DEPLOY / "trellis.service")
    service = unit["Service"]
    [exec_start] = service["ExecStart"]
    argv = shlex.split(exec_start)
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["KillMode"] == ["mixed"]  # SIGTERM to the supervisor, which stops its workers
    assert service["Restart"] == ["on-failure"]
    graceful = float(option(argv, "--graceful-timeout")[0])
    stop_timeout = float(service["TimeoutStopSec"][0])
    assert stop_timeout > graceful + 5  # room for the shut-down hooks before SIGKILL
    # The Unix socket lives in the directory systemd makes for the service.
    [runtime] = service["RuntimeDirectory"]
    [socket_bind] = [bind for bind in option(argv, "--bind") if bind.startswith("unix:")]
    assert Path(socket_bind.removeprefix("unix:")).parent == Path("/run") / runtime

    if shutil.which("systemd-analyze"):
        # verify checks that the command exists: point it at this environment's trellis.
        here = tmp_path / "myproject.service"
        here.write_text(
            (DEPLOY / "trellis.service").read_text().replace(argv[0], str(TRELLIS)), "utf-8"
        )
        verified = subprocess.run(
            ["systemd-analyze", "verify", str(here)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert verified.returncode == 0 and verified.stderr == "", verified.stderr

    stderr = serve_and_stop(argv, tmp_path, stop_within=stop_timeout)
    # --log-format json: one object per line, for journald.
    assert all(json.loads(line)["message"] for line in stderr.splitlines())
    assert not (tmp_path / "web.sock").exists()


def test_dockerfile(tmp_path: Path) -> None:
    instructions = dockerfile(DEPLOY / "Dockerfile")
    values = dict(instructions)  # the last of each
    assert re.fullmatch(r"python:3\.\d+-slim", values["FROM"])
    user = values["USER"]
    assert user not in ("root", "0")
    assert any(
        kind == "RUN" and f" {user}" in args and "useradd" in args for kind, args in instructions
    )
    # USER comes after every RUN: nothing of the application runs as root.
    kinds = [kind for kind, _ in instructions]
    assert kinds.index("USER") > max(i for i, kind in enumerate(kinds) if kind == "RUN")
    assert values["STOPSIGNAL"] == "SIGTERM"
    argv = json.loads(values["CMD"])  # exec form: trellis is PID 1 and gets the signal itself
    assert option(argv, "--host") == ["0.0.0.0"]  # reachable through the published port
    assert option(argv, "--port") == [values["EXPOSE"]]
    graceful = float(option(argv, "--graceful-timeout")[0])
    assert graceful < 10  # docker stop's default wait before SIGKILL
    serve_and_stop(argv, tmp_path, stop_within=10)
