"""Server processes for the tests of ``trellis run``, ``serve()`` and the deployment configs.

Importable from every test folder (``from server_helpers import ServerProcess``), as
``browser_helpers`` is. Every process is started in a new session and its whole process group
is killed on the way out, so worker processes cannot outlive a failed test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

TIMEOUT = 20.0
SECRET = "a-test-secret-key-that-is-long-enough-for-production"
SERVED_APP_DIR = Path(__file__).resolve().parent / "server"
"""Where ``served_app`` lives: the application the server and deployment tests serve."""


def free_port() -> int:
    """A port on loopback that nothing listens on (for the moment)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without ``TRELLIS_*`` variables, plus a production secret key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env["TRELLIS_SECRET_KEY"] = SECRET
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def write(path: Path, source: str) -> Path:
    """Write the dedented ``source`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def trellis(*args: str) -> list[str]:
    """The ``trellis`` command line with ``args``."""
    return [sys.executable, "-m", "trellis.cli", *args]


class ServerProcess:
    """A server subprocess whose output goes to files; its process group is always killed."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.out_path = cwd / "server.out"
        self.err_path = cwd / "server.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=env or clean_env(),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def get(self, path: str = "/", *, url: str, transport: Any = None) -> httpx.Response:
        """GET ``url + path``, retrying until the server answers or ``TIMEOUT`` passes."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.stderr}")
            try:
                with httpx.Client(transport=transport, timeout=5.0) as client:
                    return client.get(url + path)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not answer in {TIMEOUT}s:\n{self.stderr}")
                time.sleep(0.05)

    def wait_for_socket(self, path: Path) -> None:
        """Wait until the server accepts connections on the Unix socket ``path``.

        Probed with a plain socket: httpx leaks a socket for each refused Unix connection.
        """
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.stderr}")
            with socket.socket(socket.AF_UNIX) as sock:
                try:
                    sock.connect(str(path))
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"server did not listen in {TIMEOUT}s:\n{self.stderr}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        return self.wait_exit()

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=TIMEOUT)


def refused(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` is refused (nothing listens there)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
