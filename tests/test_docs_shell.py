"""Every shell command the docs show is run, or checked, here.

Each ``sh``/``bash`` block of the docs (but the tutorial's, run by tests/test_tutorial.py, and
the files of docs/deployment.md, compared by tests/deploy/test_deploy_docs.py) is split into
commands, and every command must match a rule of ``RULES``: a command no rule knows fails
``test_every_command_has_a_rule``, so a new command in the docs cannot go unchecked.

Rules run the commands for real in a scratch copy of ``tests/docs_project/``, the project the
docs' names refer to (``myproject/web.py`` with ``app``, ``hello.py``, ``app.py``,
``main.py``), with the virtualenv's ``trellis`` first on PATH. A server (``trellis run``,
``gunicorn``, ``python app.py`` ...) is started as written, must answer HTTP on each address it
was told to bind, and must exit with status 0 on SIGTERM. Only what cannot happen here is
changed, always the same way: ports the docs give become free ports (``SERVER_PORT`` env or the
port in ``--port``/``--bind``), ``/run/...`` paths move into a scratch directory. Commands that
cannot run here (``pip install``, ``docker``, the benchmarks) get a checking rule that says
what it checks.

The ``text`` blocks that show a command's output (cli.md, server.md, deployment-checklist.md,
tickets.md) or the files a command writes (cli.md, migrations.md) are compared with what the
command prints or writes.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from deploy_helpers import Process, free_port
from docs_blocks import DOCS, ROOT, Block, blocks

PROJECT = Path(__file__).resolve().parent / "docs_project"
BIN = Path(sys.executable).parent
TIMEOUT = 60.0
# Long enough for production; what the docs write as "..." or "<paste the generated key here>".
SECRET = "a-docs-shell-secret-key-that-is-long-enough"


def _file_block(block: Block) -> bool:
    """A block of deployment.md that shows a file: "`examples/deploy/NAME`:" precedes it."""
    lines = (DOCS / block.page).read_text(encoding="utf-8").splitlines()[: block.line - 1]
    before = [line for line in lines if line.strip()]
    return (
        bool(before) and re.fullmatch(r"`examples/deploy/[^`]+`:", before[-1].strip()) is not None
    )


SHELL_BLOCKS = [
    block
    for block in blocks(None, "sh", "bash")
    if not block.page.startswith("tutorial/") and not _file_block(block)
]


# --- splitting blocks into commands ---------------------------------------------------------


@dataclass
class Command:
    """One simple command: ``NAME=value`` prefixes, then the words (none for an assignment)."""

    block: Block
    line: str  # the whole line it is on (``a && b`` is one line, two commands)
    env: dict[str, str]
    argv: list[str]

    def __str__(self) -> str:
        return f"{self.block.id}: {self.line}"


_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def commands(block: Block) -> list[Command]:
    """The commands of ``block``: continuations joined, comments dropped, ``&&`` split."""
    found = []
    for line in block.code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        text = line.split(" #")[0].strip()
        while words:
            part = words[: words.index("&&")] if "&&" in words else words
            words = words[len(part) + 1 :]
            env = {}
            while part and _ASSIGNMENT.match(part[0]):
                name, _, value = part.pop(0).partition("=")
                env[name] = value
            found.append(Command(block, text, env, part))
    return found


def _env_file(block: Block) -> bool:
    """A block that is a settings file (``.env``): NAME=value lines, comments, no command."""
    lines = [line for line in block.code.splitlines() if line.strip()]
    return all(line.startswith("#") or _ASSIGNMENT.match(line) for line in lines) and any(
        not line.startswith("#") for line in lines
    )


# --- the scratch shell ------------------------------------------------------------------------


@dataclass
class Shell:
    """A scratch copy of the docs project, the current directory and exported variables."""

    root: Path
    run_dir: Path  # stands in for /run (short: a Unix socket path has ~100 characters)
    cwd: Path = field(init=False)
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        shutil.copytree(PROJECT, self.root, dirs_exist_ok=True)
        self.cwd = self.root
        (self.root / "home").mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
        self.env.update(
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            HOME=str(self.root / "home"),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        self.env.pop("VIRTUAL_ENV", None)

    def argv(self, command: Command) -> list[str]:
        """The words as the shell would pass them: ``~`` expanded, ``python`` this one."""
        words = [
            self.env["HOME"] + word[1:] if word.startswith("~/") else word for word in command.argv
        ]
        if words[0] in ("python", ".venv/bin/python"):
            words[0] = sys.executable
        return words

    def run(
        self, command: Command, *, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` to its end; its output is stdout and stderr together."""
        return subprocess.run(
            self.argv(command),
            cwd=self.cwd,
            env={**self.env, **command.env, **(env or {})},
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def sh(self, line: str, *, stdin: str = "") -> str:
        """Run a preparation command (``trellis db upgrade``); it must succeed."""
        [command] = commands(Block("(given)", 0, "sh", line + "\n"))
        done = self.run(command, stdin=stdin)
        assert done.returncode == 0, f"given `{line}` failed:\n{done.stdout}"
        return done.stdout


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir="/tmp"))
    try:
        yield Shell(tmp_path / "project", run_dir)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# --- servers ----------------------------------------------------------------------------------


def _answers(url: str, transport: httpx.HTTPTransport | None = None) -> httpx.Response | None:
    if transport is not None:
        # Probed with a plain socket first: httpx leaks a socket per refused Unix connection.
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(url.removeprefix("unix:"))
            except OSError:
                return None
        url = "http://localhost/"
    try:
        with httpx.Client(transport=transport, timeout=5.0) as client:
            return client.get(url)
    except httpx.TransportError:
        return None


def serve(
    shell: Shell,
    command: Command,
    argv: list[str],
    tcp: list[tuple[str, int]],
    unix: list[Path],
    env: dict[str, str] | None = None,
    started: Callable[[str], bool] | None = None,
) -> None:
    """Start ``argv``, wait until every address answers HTTP, SIGTERM it: exit status 0.

    ``started``, given the server's output, says when it has finished starting (all its
    workers), if answering is not enough.
    """
    env = {**shell.env, **command.env, **(env or {})}
    (shell.cwd / "server.log").unlink(missing_ok=True)  # this server's output only
    with Process(argv, cwd=shell.cwd, name="server", env=env) as server:
        proc, log = server.proc, server.log
        targets = [(f"http://{h}:{p}/", None) for h, p in tcp] + [
            (f"unix:{path}", httpx.HTTPTransport(uds=str(path))) for path in unix
        ]
        for url, transport in targets:
            deadline = _deadline()
            while (response := _answers(url, transport)) is None:
                if proc.poll() is not None:
                    pytest.fail(f"{command}\nexited with {proc.returncode}:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{command}\nno answer on {url} {transport or ''}:\n{log.read_text()}"
                    )
                time.sleep(0.1)
            assert response.status_code < 500, f"{command}\n{response}:\n{log.read_text()}"
        deadline = _deadline()
        while started is not None and not started(log.read_text()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{command}\ndid not finish starting:\n{log.read_text()}")
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)  # to the server itself, as a supervisor does
        returncode = proc.wait(timeout=TIMEOUT)
        assert returncode == 0, (
            f"{command}\nexited with {returncode} on SIGTERM:\n{log.read_text()}"
        )


def _deadline() -> float:
    return time.monotonic() + TIMEOUT


def _option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == option]


def _replace(argv: list[str], old: str, new: str) -> list[str]:
    return [new if word == old else word for word in argv]


def _map_run_path(shell: Shell, path: str) -> Path:
    """``/run/myproject/web.sock`` -> the same path under the scratch run directory."""
    assert path.startswith("/run/"), path
    mapped = shell.run_dir / path.removeprefix("/run/")
    mapped.parent.mkdir(parents=True, exist_ok=True)
    return mapped


def _probe_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)


def rule_trellis_run(shell: Shell, command: Command) -> None:
    """``trellis run``: served as written on free ports and scratch socket paths."""
    argv = shell.argv(command)
    tcp: list[tuple[str, int]] = []
    unix: list[Path] = []
    env: dict[str, str] = {}
    ports: dict[str, int] = {}
    for path in _option_values(argv, "--uds"):
        unix.append(_map_run_path(shell, path))
        argv = _replace(argv, path, str(unix[-1]))
    for address in _option_values(argv, "--bind"):
        if address.startswith("unix:"):
            unix.append(_map_run_path(shell, address.removeprefix("unix:")))
            argv = _replace(argv, address, f"unix:{unix[-1]}")
        else:
            host, _, port = address.rpartition(":")
            ports.setdefault(port, free_port())
            tcp.append((_probe_host(host), ports[port]))
            argv = _replace(argv, address, f"{host}:{ports[port]}")
    if not unix and not tcp:
        [host] = _option_values(argv, "--host") or ["127.0.0.1"]
        port = free_port()
        if _option_values(argv, "--port"):
            argv = _replace(argv, _option_values(argv, "--port")[0], str(port))
        else:
            env["TRELLIS_SERVER_PORT"] = str(port)
        tcp.append((_probe_host(host), port))
    serve(shell, command, argv, tcp, unix, env)


def rule_python_app(shell: Shell, command: Command) -> None:
    """``python examples/admin_demo/app.py``: the example, copied, serves on a free port."""
    script = command.argv[1]
    shutil.copytree(ROOT / Path(script).parent, shell.cwd / Path(script).parent)
    port = free_port()
    env = {"TRELLIS_SERVER_PORT": str(port)}
    serve(shell, command, shell.argv(command), [("127.0.0.1", port)], [], env)


def rule_uvicorn(shell: Shell, command: Command) -> None:
    """``uvicorn main:app``: served on a free port (uvicorn reads UVICORN_PORT)."""
    port = free_port()
    env = {"UVICORN_PORT": str(port), "TRELLIS_DEBUG": "1"}
    serve(shell, command, shell.argv(command), [("127.0.0.1", port)], [], env)


def rule_gunicorn(shell: Shell, command: Command) -> None:
    """``gunicorn``: on a free port (GUNICORN_CMD_ARGS), with examples/deploy's config file."""
    if "-c" in command.argv:
        config = _option_values(command.argv, "-c")[0]
        shutil.copy(ROOT / "examples" / "deploy" / config, shell.cwd / config)
    port = free_port()
    env = {"GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}"}
    serve(shell, command, shell.argv(command), [("127.0.0.1", port)], [], env)


def rule_granian(shell: Shell, command: Command) -> None:
    """``granian`` and ``./granian.sh`` (examples/deploy's): on a free port (GRANIAN_PORT)."""
    if command.argv[0] == "./granian.sh":
        shutil.copy(ROOT / "examples" / "deploy" / "granian.sh", shell.cwd / "granian.sh")
    port = free_port()
    env = {"GRANIAN_PORT": str(port)}
    # granian stops a worker that is still starting only by killing it, 30 s later: wait for all
    default = "4" if command.argv[0] == "./granian.sh" else "1"  # the script's, granian's own
    workers = int(command.env.get("GRANIAN_WORKERS", default))

    def started(output: str) -> bool:
        return output.count("[INFO] Started worker-") == workers

    serve(shell, command, shell.argv(command), [("127.0.0.1", port)], [], env, started)


def rule_hypercorn(shell: Shell, command: Command) -> None:
    """``hypercorn`` is not installed here: the target must load as an ASGI application."""
    target = command.argv[1]
    code = f"import inspect, {target.split(':')[0]} as m; assert callable(m.{target.split(':')[1]})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=shell.cwd, env=shell.env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{command}\n{done.stderr}"


def rule_worker(shell: Shell, command: Command) -> None:
    """``trellis worker``: on Redis, it runs a job sent to the queue, and stops on SIGTERM."""
    url = os.environ.get("TRELLIS_TEST_REDIS_URL")
    if not url:
        pytest.skip("trellis worker needs Redis: set TRELLIS_TEST_REDIS_URL")
    prefix = f"docs-shell-{os.getpid()}-{secrets.token_hex(4)}"
    env = {"REDIS_URL": url, "REDIS_PREFIX": prefix}
    done_file = shell.cwd / "job-done"
    with Process(
        shell.argv(command), cwd=shell.cwd, name="worker", env={**shell.env, **env}
    ) as worker:
        proc, log = worker.proc, worker.log
        send = (
            "from trellis.testing import TestClient\n"
            "from myproject.web import app\n"
            "with TestClient(app) as client:\n"
            f"    client.post('/touch', params={{'path': {str(done_file)!r}}}).raise_for_status()\n"
        )
        sent = subprocess.run(
            [sys.executable, "-c", send],
            cwd=shell.cwd,
            env={**shell.env, **env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert sent.returncode == 0, sent.stderr
        deadline = _deadline()
        while not done_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{command}\nran no job:\n{log.read_text()}")
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0, log.read_text()


# --- commands that run to their end ------------------------------------------------------------

PASSWORD = "a long password for the docs"


def _subcommand(argv: list[str]) -> list[str]:
    """``trellis --app X i18n init fr`` -> ``["i18n", "init", "fr"]``."""
    words = argv[1:]
    while words and words[0] in ("--app", "--app-dir"):
        words = words[2:]
    return words


def rule_trellis(shell: Shell, command: Command) -> None:
    """Other ``trellis`` commands run in the project and succeed.

    ``trellis check`` exits with 1 when it lists problems and ``trellis db check`` when the
    database is behind: they must then say so. ``trellis shell`` reads ``app`` from stdin.
    ``trellis user create`` is given the password it asks for twice.
    """
    words = _subcommand(command.argv)
    stdin = ""
    if words[0] == "shell":
        stdin = "print(type(app).__name__, 'at', app.url_for('user', id=7))\n"
    if words[:2] == ["user", "create"] and "--password" not in words:
        stdin = f"{PASSWORD}\n{PASSWORD}\n"
    done = shell.run(command, stdin=stdin)
    output = done.stdout
    if words[0] == "check":
        assert done.returncode in (0, 1), f"{command}\n{output}"
        if "--format" in words:
            assert json.loads(output)["ok"] is (done.returncode == 0), output
        else:
            assert "Checked " in output, output
        return
    if words[:2] == ["db", "check"] and done.returncode == 1:
        assert "Error: the models and the migrations disagree" in output, output
        return
    assert done.returncode == 0, f"{command}\nexited with {done.returncode}:\n{output}"
    if words[0] == "shell":
        assert "App at /users/7" in output, output
    if words[0] == "new":
        found = _option_values(shell.argv(command), "--dir")
        directory = Path(found[0]) if found else shell.cwd
        made = directory / words[1]
        assert (made / ("shop/app.py" if "--full" in words else "app.py")).is_file(), output
    if words[0] == "i18n":
        # the files the comments name
        expected = {
            "extract": "locale/messages.pot",
            "init": "locale/fr/LC_MESSAGES/messages.po",
            "compile": "locale/fr/LC_MESSAGES/messages.mo",
            "update": "locale/fr/LC_MESSAGES/messages.po",
        }[words[1]]
        assert (shell.cwd / "myproject" / expected).is_file() or (shell.cwd / expected).is_file(), (
            f"{command}: no {expected}\n{output}"
        )


def rule_python_c(shell: Shell, command: Command) -> None:
    """``python -c 'import secrets; ...'``: prints a key fit for TRELLIS_SECRET_KEY."""
    done = shell.run(command)
    assert done.returncode == 0, done.stdout
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}\n", done.stdout), done.stdout
    _check_setting("TRELLIS_SECRET_KEY", done.stdout.strip())


def rule_cd(shell: Shell, command: Command) -> None:
    """``cd DIR``: later commands run there."""
    shell.cwd = shell.cwd / command.argv[1]
    assert shell.cwd.is_dir(), command


def rule_export(shell: Shell, command: Command) -> None:
    """``export NAME=value``: later commands see it; a TRELLIS_ setting must accept it."""
    for word in command.argv[1:]:
        name, _, value = word.partition("=")
        _check_setting(name, value)
        shell.env[name] = value


def rule_assignment(shell: Shell, command: Command) -> None:
    """``NAME=value`` on its own line: a TRELLIS_ setting that accepts the value."""
    for name, value in command.env.items():
        _check_setting(name, value)


def _check_setting(name: str, value: str) -> None:
    """``value`` is valid for the setting ``name`` (TRELLIS_APP is a target, not a setting)."""
    if name == "TRELLIS_APP" or not name.startswith("TRELLIS_"):
        return
    from trellis.config import Settings

    if value in ("...",) or value.startswith("<"):
        value = SECRET  # a placeholder for a secret key
    field_name = name.removeprefix("TRELLIS_").lower()
    assert field_name in Settings.model_fields, f"{name} is no Trellis setting"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    code = (
        f"from trellis.config import Settings; print(repr(Settings(_env_file=None).{field_name}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "TRELLIS_SECRET_KEY": SECRET, name: value},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"{name}={value} is refused:\n{done.stderr}"


NEW_PROJECT_LINE = "python -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/pytest"


def rule_new_project_venv(shell: Shell, command: Command) -> None:
    """A new project's virtualenv, install and tests: tests/test_new_full_venv.py runs them.

    That test is slow (pip); this one checks the docs show the commands it runs.
    """
    assert command.line == NEW_PROJECT_LINE, command
    source = (ROOT / "tests" / "test_new_full_venv.py").read_text(encoding="utf-8")
    assert f'"{NEW_PROJECT_LINE}"' in source


def rule_activate(shell: Shell, command: Command) -> None:
    """``. .venv/bin/activate``: the new project's virtualenv, made by the line before.

    Not made here (see ``rule_new_project_venv``): this test's PATH starts with the virtualenv
    that has the project's dependencies, which is what activating it does.
    """
    assert command.argv == [".", ".venv/bin/activate"], command
    assert (BIN / "activate").is_file() and (BIN / "trellis").is_file()


def _installed_names() -> set[str]:
    return {
        (dist.metadata["Name"] or "").lower().replace("_", "-")
        for dist in importlib.metadata.distributions()
    }


# Packages the docs tell deployments to install that the dev environment does not need.
NOT_INSTALLED_HERE = {
    "opentelemetry-exporter-otlp": "the OTLP exporter: the deployment's choice of exporter",
}


def rule_pip_install(shell: Shell, command: Command) -> None:
    """``pip install`` (not run): every requirement parses, trellis' extras exist in
    pyproject.toml, the other packages are installed in the dev environment (or listed in
    ``NOT_INSTALLED_HERE`` with the reason).
    """
    assert command.argv[:2] == ["pip", "install"], command
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installed = _installed_names()
    for word in command.argv[2:]:
        requirement = Requirement(word)
        name = requirement.name.lower().replace("_", "-")
        if name == "trellis":
            assert requirement.extras <= set(extras), f"{command}: no extra {requirement.extras}"
        else:
            assert name in installed or name in NOT_INSTALLED_HERE, f"{command}: {name}?"


def rule_docker(shell: Shell, command: Command) -> None:
    """``docker build/run`` (no Docker daemon here): the image is examples/deploy/Dockerfile's,
    which tests/deploy/test_service_and_container.py checks, and it serves on the port mapped.
    """
    dockerfile = (ROOT / "examples" / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    tests = (ROOT / "tests" / "deploy" / "test_service_and_container.py").read_text()
    assert "Dockerfile" in tests
    if command.argv[1] == "build":
        assert command.argv[2:] == ["-t", "myproject", "."], command
    else:
        assert command.argv[1] == "run" and command.argv[-1] == "myproject", command
        port = _option_values(command.argv, "-p")[0].split(":")[1]
        assert f"EXPOSE {port}" in dockerfile and f'"--port", "{port}"' in dockerfile


def _bench_script_options(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def rule_bench_run(shell: Shell, command: Command) -> None:
    """``bash bench/run.sh`` (minutes of load): its variables and configs exist in the script."""
    assert command.argv == ["bash", "bench/run.sh"], command
    script = (ROOT / "bench" / "run.sh").read_text(encoding="utf-8")
    for name, value in command.env.items():
        assert re.search(rf"^{name}=\"\$\{{{name}:-", script, re.M), f"run.sh reads no {name}"
        if name == "ONLY":
            configs = re.findall(r'^  "([a-z0-9-]+)\|', script, re.M)
            assert set(value.split()) <= set(configs), f"{value} not in {configs}"


def rule_bench_python(shell: Shell, command: Command) -> None:
    """``bench/c10k.py``, ``bench/soak.py`` (minutes of load): their options exist."""
    assert command.argv[0] == ".venv/bin/python", command
    assert (ROOT / ".venv" / "bin" / "python").exists()
    options = _bench_script_options(command.argv[1])
    for word in command.argv[2:]:
        if word.startswith("--"):
            assert word in options, f"{command}: {word} is no option of {command.argv[1]}"


@dataclass(frozen=True)
class Rule:
    """A kind of command: which commands it takes and what it does with them."""

    name: str
    matches: Callable[[Command], bool]
    run: Callable[[Shell, Command], None]


def _is_trellis(command: Command, *subcommands: str) -> bool:
    return command.argv[:1] == ["trellis"] and _subcommand(command.argv)[:1] in (
        [[name] for name in subcommands] or [_subcommand(command.argv)[:1]]
    )


RULES = [
    Rule("assignment", lambda c: not c.argv, rule_assignment),
    Rule("export", lambda c: c.argv[0] == "export", rule_export),
    Rule("cd", lambda c: c.argv[0] == "cd", rule_cd),
    Rule("activate", lambda c: c.argv[0] == ".", rule_activate),
    Rule("new project venv", lambda c: c.line == NEW_PROJECT_LINE, rule_new_project_venv),
    Rule("pip install", lambda c: c.argv[:2] == ["pip", "install"], rule_pip_install),
    Rule("trellis run", lambda c: _is_trellis(c, "run"), rule_trellis_run),
    Rule("trellis worker", lambda c: _is_trellis(c, "worker"), rule_worker),
    Rule(
        "trellis",
        lambda c: _is_trellis(
            c, "new", "routes", "check", "shell", "db", "user", "i18n", "tickets", "seed-db"
        ),
        rule_trellis,
    ),
    Rule("python -c", lambda c: c.argv[:2] == ["python", "-c"], rule_python_c),
    Rule(
        "python example app",
        lambda c: c.argv[0] == "python" and c.argv[1].startswith("examples/"),
        rule_python_app,
    ),
    Rule("uvicorn", lambda c: c.argv[0] == "uvicorn", rule_uvicorn),
    Rule("gunicorn", lambda c: c.argv[0] == "gunicorn", rule_gunicorn),
    Rule("granian", lambda c: c.argv[0] in ("granian", "./granian.sh"), rule_granian),
    Rule("hypercorn", lambda c: c.argv[0] == "hypercorn", rule_hypercorn),
    Rule("docker", lambda c: c.argv[0] == "docker", rule_docker),
    Rule("bench/run.sh", lambda c: c.argv[:2] == ["bash", "bench/run.sh"], rule_bench_run),
    Rule(
        "bench script",
        lambda c: c.argv[0] == ".venv/bin/python" and c.argv[1].startswith("bench/"),
        rule_bench_python,
    ),
]


def rule_for(command: Command) -> Rule:
    """The first rule that takes ``command``; fails the test when none does."""
    for rule in RULES:
        if rule.matches(command):
            return rule
    pytest.fail(
        f"no rule for the docs command {command}: add one to RULES in tests/test_docs_shell.py "
        "that runs it (or, if it cannot run here, checks it)"
    )


# --- what the prose around a block assumes -----------------------------------------------------

NOTES_APP = '''\
"""A notes app on the data battery only, as on the migrations pages."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from trellis import App
from trellis.contrib.db import Database, IdMixin, Model


class Note(IdMixin, Model):
    text: Mapped[str] = mapped_column(String(500))


app = App()
db = app.install(Database("sqlite:///notes.db"))
'''


def _notes_app(shell: Shell) -> None:
    (shell.root / "app.py").write_text(NOTES_APP)


def _migrations(shell: Shell) -> None:
    # The project's migrations are set up (`trellis db init`, once, see migrations.md).
    shell.sh("trellis db init")


def _admin_users(shell: Shell) -> None:
    # admin.md: a user "ann" and the group "editors" exist.
    _migrations(shell)
    shell.sh("trellis db upgrade")
    shell.sh(f"trellis user create ann@example.com --username ann --password '{PASSWORD}'")
    shell.sh("trellis user group-grant editors book.view --create")


# (page, the block's first command) -> what the prose before the block has set up
GIVEN: dict[tuple[str, str], Callable[[Shell], None]] = {
    # The models' pages: an app of notes on the data battery.
    ("migrations.md", "trellis db init"): _notes_app,
    ("coming-from-flask.md", "trellis db init"): _notes_app,
    # "manage.py makemigrations" in a project whose migrations are set up.
    ("coming-from-django.md", 'trellis db makemigrations -m "questions"'): lambda shell: (
        _notes_app(shell),
        _migrations(shell),
    ),
    ("admin.md", "trellis user grant ann book.change"): _admin_users,
    ("auth.md", "trellis db upgrade"): _migrations,
    ("coming-from-django.md", "trellis run app.py --reload"): _migrations,
    # "cd shop": the project `trellis new shop --full` made just above.
    ("cli.md", "cd shop"): lambda shell: shell.sh("trellis new shop --full"),
}


def _env_file_block(shell: Shell, block: Block) -> None:
    """A settings file: written as ``.env``, its values load (a placeholder key replaced)."""
    text = re.sub(r"=(\.\.\.|<[^>]*>)", f"={SECRET}", block.code)
    text = re.sub(r"\s+# .*", "", text)
    (shell.root / ".env").write_text(text)
    done = shell.run(
        Command(block, "", {}, ["trellis", "check", "hello.py", "--deploy"]),
    )
    if block.id == "deployment-checklist.md:77":
        # "A production settings file that passes every built-in check"
        assert done.returncode == 0, done.stdout
        assert "0 errors, 0 warnings" in done.stdout or "no problems" in done.stdout, done.stdout
    else:
        assert "security.E001" not in done.stdout and done.returncode in (0, 1), done.stdout


# --- the tests ---------------------------------------------------------------------------------


def test_every_command_has_a_rule() -> None:
    unknown = []
    for block in SHELL_BLOCKS:
        if _env_file(block):
            continue
        unknown += [str(c) for c in commands(block) if not any(r.matches(c) for r in RULES)]
    assert not unknown, (
        "no rule in tests/test_docs_shell.py runs or checks these docs commands; add one:\n"
        + "\n".join(unknown)
    )


@pytest.mark.server
@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda block: block.id)
def test_shell_block(block: Block, shell: Shell) -> None:
    given = GIVEN.get((block.page, commands(block)[0].line))
    if given is not None:
        given(shell)
    if _env_file(block):
        _env_file_block(shell, block)
        return
    for command in commands(block):
        rule_for(command).run(shell, command)


def test_every_given_names_a_block() -> None:
    firsts = {(block.page, commands(block)[0].line) for block in SHELL_BLOCKS}
    assert set(GIVEN) <= firsts, f"GIVEN names no block: {set(GIVEN) - firsts}"


# --- the text blocks that show what a command prints or writes ---------------------------------


def text_block(page: str, first_line: str) -> Block:
    """The ``text`` block of ``page`` that starts with ``first_line``."""
    [block] = [b for b in blocks(page, "text") if b.code.startswith(first_line)]
    return block


def sessions(block: Block) -> list[tuple[str, list[str]]]:
    """``$ command`` lines and the output shown after each (blank lines at the end dropped)."""
    found: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            found[-1][1].append(line)
    return [(command, "\n".join(out).rstrip("\n").split("\n")) for command, out in found]


def same_output(expected: list[str], actual: list[str]) -> bool:
    """Line by line; a line ``...`` stands for any lines, ``...`` in a line for any text."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(same_output(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*".join(re.escape(part) for part in head.split("..."))
    return re.fullmatch(pattern, actual[0]) is not None and same_output(rest, actual[1:])


def run_shown(
    shell: Shell, block: Block, line: str, *, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    [command] = commands(Block(block.page, block.line, "sh", line + "\n"))
    return shell.run(command, env=env, stdin=stdin)


def check_shown(
    done: subprocess.CompletedProcess[str], expected: list[str], block: Block, line: str
) -> None:
    actual = done.stdout.rstrip("\n").split("\n")
    assert same_output(expected, actual), (
        f"{block.id}: `{line}` prints\n{done.stdout}\nnot what the docs show:\n"
        + "\n".join(expected)
    )


# cli.md
def test_cli_routes_and_wrong_target(shell: Shell) -> None:
    for first in ("$ trellis routes hello.py", "$ trellis routes hello:ap"):
        block = text_block("cli.md", first)
        [(line, expected)] = sessions(block)
        done = run_shown(shell, block, line)
        if line.endswith(":ap"):
            assert done.returncode == 2  # "exits with status 2"
            expected = ["...", *expected]  # after click's usage lines
        else:
            assert done.returncode == 0
            # the notice about app.run() (hello.py ends with it) goes to stderr
            done.stdout = "\n".join(
                out for out in done.stdout.splitlines() if not out.startswith("trellis: ignoring")
            )
        check_shown(done, expected, block, line)


@pytest.mark.parametrize(
    ("page", "first", "env", "status"),
    [
        # "secret key, HSTS and CSP set in the environment": .env has the key and the CSP
        ("cli.md", "$ trellis check hello.py --deploy", {"TRELLIS_HSTS_SECONDS": "31536000"}, 1),
        # "secret key and CSP set in .env"
        ("deployment-checklist.md", "$ TRELLIS_DEBUG=1 trellis check", {}, 1),
    ],
)
def test_check_deploy_output(
    shell: Shell, page: str, first: str, env: dict[str, str], status: int
) -> None:
    block = text_block(page, first)
    [(line, expected)] = sessions(block)
    done = run_shown(shell, block, line, env=env)
    assert done.returncode == status
    done.stdout = "\n".join(
        out for out in done.stdout.splitlines() if not out.startswith("trellis: ignoring")
    )
    check_shown(done, expected, block, line)


def test_shell_prompt_output(shell: Shell) -> None:
    block = text_block("cli.md", ">>> ")
    [prompt, shown] = block.code.splitlines()
    done = run_shown(shell, block, "trellis shell myproject.web:app", stdin=prompt[4:] + "\n")
    assert done.returncode == 0, done.stdout
    # the prompt is printed, the line it reads from stdin is not echoed
    assert f">>> {shown}" in done.stdout.splitlines(), done.stdout


def _tree(block: Block) -> list[str]:
    """The paths of a file tree block: names at their indentation, comments dropped."""
    paths: list[str] = []
    parents: list[tuple[int, str]] = []
    for line in block.code.splitlines():
        if not line.strip() or not line.lstrip().split()[0].rstrip("/"):
            continue
        indent = len(line) - len(line.lstrip())
        name = line.split()[0]
        if indent >= 10:  # a comment's continuation line
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = "".join(parent for _, parent in parents) + name
        paths.append(path)
        if name.endswith("/"):
            parents.append((indent, name))
    return paths


def _covered(made: Path, tree: list[str]) -> None:
    files = sorted(
        str(p.relative_to(made.parent))
        for p in made.rglob("*")
        if p.is_file() or not any(p.iterdir())
    )
    for path in tree:
        assert (
            any(Path(f).match(path.rstrip("/")) or f.startswith(path) for f in files)
            or (made.parent / path).exists()
        ), f"the docs show {path}, not made:\n{files}"
    for f in files:  # each under an entry below the root
        assert any(
            f == p or (p.endswith("/") and f.startswith(p)) or Path(f).match(p) for p in tree[1:]
        ), f"{f} is made but not shown in the docs' tree"


def test_new_trees(shell: Shell) -> None:
    for command, first in (("trellis new hello", "hello/"), ("trellis new shop --full", "shop/")):
        shell.sh(command)
        _covered(shell.root / first.rstrip("/"), _tree(text_block("cli.md", first)))


def test_migrations_tree(shell: Shell) -> None:
    block = text_block("migrations.md", "migrations/")
    app = NOTES_APP.replace(
        'Database("sqlite:///notes.db")',
        'Database("sqlite:///notes.db", binds={"analytics": "sqlite:///analytics.db"})',
    )
    (shell.root / "app.py").write_text(app)
    shell.sh("trellis db init")
    shell.sh('trellis db makemigrations -m "add notes"')
    tree = _tree(block)
    _covered(shell.root / "migrations", tree)
    # versions/ holds <date>_<time>_<rev>_add_notes.py, as the comment says
    [revision] = (shell.root / "migrations" / "versions").glob("*.py")
    assert re.fullmatch(r"\d{8}_\d{4}_[0-9a-f]+_add_notes\.py", revision.name), revision.name


# server.md
def test_address_in_use(shell: Shell) -> None:
    block = text_block("server.md", "$ trellis run myproject.web:app --bind 127.0.0.1:8000")
    [(line, expected)] = sessions(block)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = run_shown(shell, block, line.replace(":8000", f":{port}"))
    assert done.returncode == 1
    done.stdout = done.stdout.replace(f":{port}", ":8000")  # the port is the one taken here
    check_shown(done, expected, block, line)


# tickets.md
def test_ticket_answer(tmp_path: Path) -> None:
    from trellis import App
    from trellis.contrib.tickets import FileTicketStore, Tickets
    from trellis.testing import TestClient

    [status, sentence] = text_block("tickets.md", "500 ").code.splitlines()
    app = App(debug=False, secret_key=SECRET)
    app.install(Tickets(FileTicketStore(tmp_path / "tickets")))

    @app.get("/")
    def crash() -> None:
        raise RuntimeError("the shop crashed")

    with TestClient(app) as client:
        for accept in ("application/json", "text/html"):
            response = client.get("/", headers={"Accept": accept})
            assert f"{response.status_code} {response.reason_phrase}" == status
            ticket = response.headers["x-error-ticket"]
            # the id is random: the docs show one
            shown = re.sub(r" [a-z2-7]{16}$", f" {ticket}", sentence)
            assert shown in response.text, response.text


# Two tickets in the store (the date of the first is the docs'; the second is older).
TICKETS = [
    {
        "id": "74umyyzpbixsvoy7",
        "created_at": "2026-05-01T14:30:00+00:00",
        "exception_type": "RuntimeError",
        "message": "the shop crashed",
        "traceback": "Traceback (most recent call last):\nRuntimeError: the shop crashed\n",
        "request": {"method": "POST", "path": "/crash"},
        "user": {"id": 7, "email": "ann@example.com"},
    },
    {
        "id": "d2fw5lq7kx3mrzae",
        "created_at": "2026-04-12T09:15:00+00:00",
        "exception_type": "ZeroDivisionError",
        "message": "division by zero",
        "traceback": "Traceback (most recent call last):\nZeroDivisionError: division by zero\n",
        "request": {"method": "GET", "path": "/report"},
    },
]


def test_tickets_command_line(shell: Shell) -> None:
    block = text_block("tickets.md", "$ trellis tickets list")
    _migrations(shell)
    shell.sh("trellis db upgrade")
    save = (
        "import json, sys\n"
        "from trellis.contrib.tickets import Ticket\n"
        "from trellis.testing import TestClient\n"
        "from app import app\n"
        "with TestClient(app) as client:\n"
        "    for data in json.load(sys.stdin):\n"
        "        client.call(app.state.tickets.store.save, Ticket.from_dict(data))\n"
    )
    (shell.cwd / "save_tickets.py").write_text(save)
    shell.sh("python save_tickets.py", stdin=json.dumps(TICKETS))
    for line, expected in sessions(block):
        done = run_shown(shell, block, line)
        assert done.returncode == 0, done.stdout
        check_shown(done, expected, block, line)
