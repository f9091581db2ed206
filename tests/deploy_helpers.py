"""Processes the deployment and fault tests run: Trellis servers, nginx, a private Redis.

Every process gets a session (process group) of its own and is killed with its group on the
way out, workers included, even when the test fails. Output goes to files, not pipes (a full
pipe would stall the process), and is shown when a process dies before it is ready.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECRET = "a-deployment-test-secret-key-that-is-long-enough"
REDIS_SERVER = "/usr/bin/redis-server"
# The machine is shared and loaded: generous waits, each ended as soon as the thing is ready.
START_TIMEOUT = 30.0


def free_port() -> int:
    """A loopback port nothing listens on (for the moment)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def trellis(*args: str) -> list[str]:
    """The command line of ``trellis ARGS`` in this interpreter."""
    return [sys.executable, "-m", "trellis.cli", *args]


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server process: no ``TRELLIS_*`` of the test run, a secret key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env["TRELLIS_SECRET_KEY"] = SECRET
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def wait_for(check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    """Call ``check`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


class Process:
    """A subprocess in a process group of its own, output in ``log``; killed on exit."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        name: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = cwd / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The process id (the group id too)."""
        return self.proc.pid

    @property
    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        """Fail the test with the process's output when it has exited."""
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.output[-4000:]}")

    def wait_listening(self, port: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until the process accepts connections on ``port``."""

        def ready() -> bool:
            self.check_alive()
            return listening(port)

        wait_for(ready, f"{self.name} listening on {port}", timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` to the whole group, wait; SIGKILL the group when it lingers."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.kill()
        finally:
            self._kill_group()

    def kill(self) -> int:
        """SIGKILL the whole group at once (a crash, not a shutdown)."""
        self._kill_group()
        return self.proc.wait(timeout=15)

    def _kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> Process:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PrivateRedis:
    """A Redis server of the test's own on a free port: killed and restarted at will.

    Nothing is saved to disk, so a restarted server starts empty (as after a crash without
    persistence).
    """

    def __init__(self, directory: Path, password: str | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.process: Process | None = None

    @property
    def url(self) -> str:
        """The URL of the server (with its password)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it listens."""
        command = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = Process(command, cwd=self.directory, name="redis")
        self.process.wait_listening(self.port)

    def kill(self) -> None:
        """Kill the server (SIGKILL: a crash) and wait until the port is closed."""
        assert self.process is not None
        self.process.kill()
        wait_for(lambda: not listening(self.port), "the killed Redis's port closing")

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.kill()
