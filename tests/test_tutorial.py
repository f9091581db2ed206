"""The tutorial's app at every step (examples/tutorial/stepN), run the way the tutorial says.

Each step is served for real (``python app.py``, or ``start.sh`` for the deployment) and
checked over HTTP; the migrations are applied and checked with ``trellis db``; the tests
the tutorial writes are run with pytest. docs/tutorial/ includes these very files; the shell
commands its pages show (`sh` blocks) are run as a reader of the page would, in a copy of the
step's folder, and its folder trees (`text` blocks) are compared with the steps' files.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from importlib.metadata import metadata, version
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from browser_helpers import free_port
from docs_blocks import ROOT, Block, blocks
from trellis.config import Settings

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial"
BIN = Path(sys.executable).parent
SECRET = "a-long-random-production-secret-key-0123456789"
pytestmark = pytest.mark.server


def _env(**extra: str) -> dict[str, str]:
    # No TRELLIS_* of the caller leaks in; the venv's `trellis` comes first on PATH.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ in examples/
    env.update(extra)
    return env


@contextmanager
def _serve(
    command: Sequence[str],
    step: str | Path,
    env: Mapping[str, str],
    ready: str = "/",
    timeout: float = 40,
) -> Iterator[str]:
    """Run ``command`` in ``step``'s folder (or a folder) until ``ready`` answers; yield its URL."""
    folder = TUTORIAL / step
    port = env["TRELLIS_SERVER_PORT"]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        # A session of its own: the whole group (workers too) is stopped at the end.
        proc = subprocess.Popen(
            list(command),
            cwd=folder,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(url + ready, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    pytest.fail(f"{folder.name} did not start:\n" + output.read().decode()[-3000:])
                time.sleep(0.1)
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _trellis(step: str, env: Mapping[str, str], *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [str(BIN / "trellis"), *args],
        cwd=TUTORIAL / step,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


def _dev_env(tmp_path: Path) -> dict[str, str]:
    return _env(
        TRELLIS_SERVER_PORT=str(free_port()),
        TRELLIS_DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
    )


def _sign_up(client: httpx.Client, username: str) -> None:
    page = client.get("/auth/register").text
    password = "a long enough password"
    response = client.post(
        "/auth/register",
        data={
            "email": f"{username}@example.com",
            "username": username,
            "password": password,
            "password2": password,
            "csrf_token": _csrf(page),
        },
    )
    assert response.status_code == 303, response.text


def _write_note(client: httpx.Client, title: str) -> httpx.Response:
    page = client.get("/new").text
    return client.post("/new", data={"title": title, "csrf_token": _csrf(page)})


def test_step1_the_single_file_app(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    with _serve([sys.executable, "app.py"], "step1", env) as url:
        response = httpx.get(url)
        assert response.text == "Hello, notes!"
        assert response.headers["content-type"].startswith("text/plain")


def test_step2_routes_and_typed_parameters(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    with (
        _serve([sys.executable, "app.py"], "step2", env) as url,
        httpx.Client(base_url=url) as client,
    ):
        created = client.post("/notes", json={"title": "Milk", "body": "two litres"})
        assert created.status_code == 201
        assert created.json() == {"title": "Milk", "body": "two litres", "id": 1}
        client.post("/notes", json={"title": "Bread"})
        assert [n["title"] for n in client.get("/notes?limit=1").json()] == ["Bread"]
        assert client.get("/notes/1").json()["title"] == "Milk"
        assert client.get("/notes/7").status_code == 404
        assert client.get("/notes?limit=0").status_code == 422
        assert client.post("/notes", json={"title": ""}).status_code == 422


def test_step3_templates_and_a_form(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    with (
        _serve([sys.executable, "app.py"], "step3", env) as url,
        httpx.Client(base_url=url) as client,
    ):
        assert "No notes yet." in client.get("/").text
        saved = _write_note(client, "<script>x</script>")
        assert saved.status_code == 303
        assert saved.headers["location"] == "/"
        assert "&lt;script&gt;x&lt;/script&gt;" in client.get("/").text
        wrong = _write_note(client, "")
        assert wrong.status_code == 422
        assert "This field is required." in wrong.text
        # without the CSRF token, nothing is written
        assert client.post("/new", data={"title": "forged"}).status_code == 403
        assert [n["title"] for n in client.get("/notes").json()] == ["<script>x</script>"]


def test_step4_the_database(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    assert "applied" in _trellis("step4", env, "db", "upgrade")
    assert "agree" in _trellis("step4", env, "db", "check")
    with _serve([sys.executable, "app.py"], "step4", env) as url, httpx.Client(base_url=url) as c:
        assert _write_note(c, "Kept").status_code == 303
        assert c.get("/notes/1").json()["title"] == "Kept"
    # a new process, the same database: the note is still there
    with _serve([sys.executable, "app.py"], "step4", env) as url:
        assert "<strong>Kept</strong>" in httpx.get(url).text


def test_step5_users_and_login(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    upgraded = _trellis("step5", env, "db", "upgrade")
    assert "trellis_auth" in upgraded
    assert "note authors" in upgraded
    _trellis("step5", env, "db", "check")
    with _serve([sys.executable, "app.py"], "step5", env) as url, httpx.Client(base_url=url) as c:
        browser = c.get("/new", headers={"Accept": "text/html"})
        assert browser.status_code == 303
        assert browser.headers["location"] == "/auth/login?next=%2Fnew"
        assert c.post("/notes", json={"title": "anonymous"}).status_code == 401
        _sign_up(c, "ann")
        assert _write_note(c, "Mine").status_code == 303
        assert "(by ann)" in c.get("/").text
        assert c.get("/notes").json()[0]["author_id"] == 1


def test_step6_the_admin(tmp_path: Path) -> None:
    env = _dev_env(tmp_path)
    assert "trellis_admin" in _trellis("step6", env, "db", "upgrade")
    _trellis("step6", env, "db", "check")
    password = "a long enough password"
    created = _trellis(
        "step6",
        env,
        "user",
        "create",
        "admin@example.com",
        "--username",
        "admin",
        "--superuser",
        stdin=f"{password}\n{password}\n",
    )
    assert "Created superuser" in created
    with _serve([sys.executable, "app.py"], "step6", env) as url, httpx.Client(base_url=url) as c:
        _sign_up(c, "ann")
        _write_note(c, "Seen by the admin")
        assert c.get("/admin").status_code == 403  # ann is no staff
        c.cookies.clear()
        page = c.get("/auth/login").text
        login = {"login": "admin", "password": password, "csrf_token": _csrf(page)}
        assert c.post("/auth/login", data=login).status_code == 303
        assert "/admin/notes_note" in c.get("/admin").text
        listing = c.get("/admin/notes_note")
        assert listing.status_code == 200
        assert "Seen by the admin" in listing.text


def test_step8_the_tests_still_pass() -> None:
    # step 7's `pytest` is run by test_the_shell_commands_of_the_page; step 8 adds files
    # around the same tests, which must still pass.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"],
        cwd=TUTORIAL / "step8",
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_step8_deployment(tmp_path: Path) -> None:
    env = _env(
        TRELLIS_SERVER_PORT=str(free_port()),
        TRELLIS_DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        TRELLIS_SECRET_KEY=SECRET,
        # 127.0.0.1 too: the test talks to the server directly, without the proxy
        TRELLIS_ALLOWED_HOSTS="notes.example.com,127.0.0.1",
    )
    server = _serve(["sh", "start.sh"], "step8", env, ready="/auth/login", timeout=60)
    with server as url, httpx.Client(base_url=url) as c:
        home = c.get("/")
        assert home.status_code == 200
        assert home.headers["content-security-policy"].startswith("default-src 'self'")
        assert home.headers["x-frame-options"] == "DENY"
        assert c.get("/", headers={"Host": "evil.example"}).status_code == 400
        _sign_up(c, "ann")
        assert _write_note(c, "In production").status_code == 303
        assert "(by ann)" in c.get("/").text
        # production errors show no traceback
        assert "Traceback" not in c.get("/notes/x").text

    # start.sh refuses unsafe settings: no secret key, no start
    unsafe = {k: v for k, v in env.items() if k != "TRELLIS_SECRET_KEY"}
    result = subprocess.run(
        ["sh", "start.sh"],
        cwd=TUTORIAL / "step8",
        env=unsafe,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_the_pages_show_the_tested_files() -> None:
    # Code on the tutorial's pages is included from examples/tutorial (the files tested
    # above), never copied; only shell commands and folder trees are written in the page.
    pages = sorted((TUTORIAL.parents[1] / "docs" / "tutorial").glob("*.md"))
    assert len(pages) == 8
    included = set()
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for language, code in re.findall(r"^```(\w+)[^\n]*\n(.*?)^```$", text, re.M | re.S):
            if language in ("sh", "text"):
                continue
            match = re.fullmatch(r'--8<-- "(examples/tutorial/[^"]+)"\n', code)
            assert match is not None, (page.name, code)
            assert (TUTORIAL.parents[1] / match.group(1)).is_file(), match.group(1)
            included.add(match.group(1).split("/")[2])
    assert included == {f"step{n}" for n in range(1, 9)}


# --- the shell commands and folder trees written in the pages ---------------------------------
#
# Each page is played as a reader would: its step's folder (a copy of examples/tutorial/stepN,
# without what the page's commands make), the database the previous step left, then every
# command of the page's `sh` blocks, in order, each checked for what it does. A `# ` line right
# after a command is the output the page shows for it.

# The tutorial's pages, in the reader's order (test_every_page_is_played checks the list).
PAGES = [
    "tutorial/index.md",
    "tutorial/routes.md",
    "tutorial/templates.md",
    "tutorial/database.md",
    "tutorial/users.md",
    "tutorial/admin.md",
    "tutorial/tests.md",
    "tutorial/deploy.md",
]
# What the reader's tools add to the folder; not part of the project the trees show.
MADE_BY_TOOLS = {".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "app.db"}
PASSWORD = "a long enough password"


def _written(page: str, language: str) -> list[Block]:
    """The page's blocks of ``language`` written in the page (the others include files)."""
    return [block for block in blocks(page, language) if not block.includes]


def _step_folder(page: str) -> Path:
    """The step a page is about: the one folder of examples/tutorial its blocks include."""
    steps = {
        Path(name).parts[2]
        for block in blocks(page)
        for name in block.includes
        if name.startswith("examples/tutorial/")
    }
    assert len(steps) == 1, f"{page} includes the files of {sorted(steps) or 'no step'}"
    return TUTORIAL / steps.pop()


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    """The commands of a `sh` block, each with the output lines shown after it."""
    commands: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("# "):
            assert commands, f"{block.id}: output shown before any command"
            commands[-1][1].append(line[2:])
        elif line.strip():
            commands.append((line, []))
    return commands


def _copy(source: Path, target: Path) -> Path:
    ignored = shutil.ignore_patterns(*MADE_BY_TOOLS)
    return Path(shutil.copytree(source, target, ignore=ignored))


def _revision(source: str) -> tuple[str, str, list[str], object]:
    """A revision file's message, id, other statements (as normalised source) and ``depends_on``."""
    module = ast.parse(source)
    docstring = ast.get_docstring(module) or ""
    statements, values = [], {}
    for node in module.body[1:]:  # after the docstring: message, ids and date
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id in ("revision", "depends_on"):
            assert isinstance(node, ast.AnnAssign) and node.value is not None
            values[target.id] = ast.literal_eval(node.value)
            continue
        statements.append(ast.unparse(node))
    return docstring.splitlines()[0], values["revision"], statements, values["depends_on"]


class Reader:
    """Runs a page's commands in its step's folder, as a reader of the page would."""

    COMMANDS = {
        r"python -m venv \.venv": "venv",
        r"\. \.venv/bin/activate": "activate",
        r"pip install .+": "pip_install",
        r"python app\.py": "python_app",
        r"curl .+": "curl",
        r"trellis db init": "db_init",
        r"trellis db makemigrations -m .+": "makemigrations",
        r"trellis db upgrade": "db_upgrade",
        r"trellis user create .+": "user_create",
        r"pytest": "pytest",
    }

    def __init__(self, page: str, tmp_path: Path, servers: ExitStack) -> None:
        self.page = page
        self.text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        self.step = _step_folder(page)
        self.commands = [command for block in _written(page, "sh") for command in _commands(block)]
        self.env = _env(TRELLIS_SERVER_PORT=str(free_port()))  # the database: app.db, the default
        self.servers = servers
        self.url: str | None = None
        self.superuser: str | None = None
        self.folder = _copy(self.step, tmp_path / "notes")
        # The folder holds what the page's commands make only once they have run.
        lines = [line for line, _ in self.commands]
        for line in lines:
            if line.startswith("trellis db makemigrations"):
                self._shown_revision(line, self.folder).unlink()
        if "trellis db init" in lines:
            shutil.rmtree(self.folder / "migrations")
        # The reader comes with the database the previous step made.
        previous = self.step.with_name(f"step{int(self.step.name[4:]) - 1}")
        if (
            any(line.startswith("trellis db") for line in lines)
            and (previous / "migrations").exists()
        ):
            before = _copy(previous, tmp_path / "before")
            self.run("trellis", "db", "upgrade", cwd=before)
            shutil.copy(before / "app.db", self.folder / "app.db")

    @staticmethod
    def _slug(line: str) -> str:
        return shlex.split(line)[-1].lower().replace(" ", "_")

    def _shown_revision(self, line: str, folder: Path) -> Path:
        """The revision the page shows for a `makemigrations -m` line: the step's file."""
        found = list((folder / "migrations" / "versions").glob(f"*_{self._slug(line)}.py"))
        assert len(found) == 1, f"{self.step.name} has no revision for {line!r}"
        return found[0]

    def run(self, *args: str, cwd: Path | None = None, stdin: str = "") -> str:
        """Run a command, found on the reader's PATH (this virtualenv's bin first)."""
        program = shutil.which(args[0], path=self.env["PATH"])
        assert program is not None, args[0]
        result = subprocess.run(
            [program, *args[1:]],
            cwd=cwd or self.folder,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}{result.stderr}"
        return result.stdout

    def __call__(self, line: str, output: list[str]) -> None:
        for pattern, name in self.COMMANDS.items():
            if re.fullmatch(pattern, line):
                getattr(self, name)(line, output)
                return
        pytest.fail(f"{self.page}: test_tutorial.py does not know how to run {line!r}")

    # -- installing ------------------------------------------------------------------------------

    def venv(self, line: str, output: list[str]) -> None:
        # This virtualenv's `python`: a virtualenv made from it is based on the same interpreter.
        self.run(*shlex.split(line))
        assert (self.folder / ".venv" / "bin" / "python").exists()

    def activate(self, line: str, output: list[str]) -> None:
        found = subprocess.run(
            ["sh", "-c", f"{line} && command -v python && command -v pip"],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        bin_ = self.folder / ".venv" / "bin"
        assert found.split() == [str(bin_ / "python"), str(bin_ / "pip")]

    def pip_install(self, line: str, output: list[str]) -> None:
        # Not installed again (pip would fetch every dependency: tests/test_new_full_venv.py
        # installs Trellis into a fresh virtualenv); the rest of the page runs on this
        # virtualenv, which has it. Checked: the requirement names an installed package, and
        # for Trellis extras it has and the requirement the tutorial's project declares.
        pip, install, argument = shlex.split(line)
        assert (pip, install) == ("pip", "install")
        requirement = Requirement(argument)
        assert version(requirement.name)
        if requirement.name != "trellis":
            return
        assert requirement.extras <= set(metadata("trellis").get_all("Provides-Extra") or [])
        project = tomllib.loads((TUTORIAL / "step7" / "pyproject.toml").read_text())
        assert [argument] == project["project"]["dependencies"]

    # -- serving ---------------------------------------------------------------------------------

    def python_app(self, line: str, output: list[str]) -> None:
        # The pages say 127.0.0.1:8000, the default; the server here gets a free port.
        assert Settings.model_fields["server_port"].default == 8000
        assert self.url is None, f"{self.page}: a second server"
        self.url = self.servers.enter_context(_serve(shlex.split(line), self.folder, self.env))
        with httpx.Client(base_url=self.url) as client:
            assert client.get("/").status_code == 200
            if self.superuser:  # made by the page: it signs in to the admin
                page = client.get("/auth/login").text
                login = {"login": self.superuser, "password": PASSWORD, "csrf_token": _csrf(page)}
                assert client.post("/auth/login", data=login).status_code == 303
                assert client.get("/admin").status_code == 200

    def curl(self, line: str, output: list[str]) -> None:
        if self.url is None:  # "Try it with `python app.py` and a second terminal"
            assert "`python app.py`" in self.text
            self.python_app("python app.py", [])
        assert output, f"{self.page}: show what {line!r} answers"
        port = self.env["TRELLIS_SERVER_PORT"]
        args = [
            re.sub(r"^(localhost|127\.0\.0\.1):8000/", rf"\1:{port}/", arg)
            for arg in shlex.split(line)
        ]
        assert args != shlex.split(line), f"{line!r} names no localhost:8000 URL"
        assert self.run(*args) == "\n".join(output)

    # -- the database ----------------------------------------------------------------------------

    def db_init(self, line: str, output: list[str]) -> None:
        self.run(*shlex.split(line))
        made = self.folder / "migrations"
        assert (made / "versions").is_dir()
        # the step's migrations folder is what the command writes, plus the revisions
        for path in (self.step / "migrations").glob("*.*"):
            assert (made / path.name).read_text() == path.read_text(), path.name

    def makemigrations(self, line: str, output: list[str]) -> None:
        versions = self.folder / "migrations" / "versions"
        before = set(versions.iterdir())
        self.run(*shlex.split(line))
        (written,) = set(versions.iterdir()) - before
        shown = self._shown_revision(line, self.step)
        # The page shows the revision it wrote, formatted, with its own id and date.
        message, revision, _, depends_on = _revision(written.read_text())
        shown_message, shown_revision, shown_statements, shown_depends_on = _revision(
            shown.read_text()
        )
        assert message == shown_message == shlex.split(line)[-1]
        source = written.read_text().replace(revision, shown_revision)
        assert _revision(source)[2] == shown_statements
        if shown_depends_on != depends_on:
            # the line the page says was added by hand: add it, as the reader did
            assert f'`depends_on = "{shown_depends_on}"`' in self.text
            edited = re.sub(
                r"^(depends_on: .*= )None$", rf'\1"{shown_depends_on}"', source, flags=re.M
            )
            written.write_text(edited.replace(shown_revision, revision))

    def db_upgrade(self, line: str, output: list[str]) -> None:
        before = self.schema()
        assert " applied " in self.run(*shlex.split(line))
        assert self.schema() != before, "the tables did not change"

    def schema(self) -> set[str]:
        """What the database has: its tables, their columns, indexes and keys."""
        if not (self.folder / "app.db").exists():
            return set()
        with closing(sqlite3.connect(self.folder / "app.db")) as db:
            return {sql for (sql,) in db.execute("SELECT sql FROM sqlite_master") if sql}

    def user_create(self, line: str, output: list[str]) -> None:
        args = shlex.split(line)
        # the command asks for the password twice
        assert "Created superuser" in self.run(*args, stdin=f"{PASSWORD}\n{PASSWORD}\n")
        assert "--superuser" in args
        self.superuser = args[args.index("--username") + 1]

    # -- testing ---------------------------------------------------------------------------------

    def pytest(self, line: str, output: list[str]) -> None:
        tests = sum(
            len(re.findall(r"^(?:async )?def test_", path.read_text(), re.M))
            for path in (self.folder / "tests").glob("test_*.py")
        )
        result = self.run(*shlex.split(line))
        assert re.search(rf"^=+ {tests} passed in ", result, re.M), result


def test_every_page_is_played() -> None:
    written = {f"tutorial/{path.name}" for path in (ROOT / "docs" / "tutorial").glob("*.md")}
    assert set(PAGES) == written
    # each page is the step after the previous page's
    assert [_step_folder(page).name for page in PAGES] == [f"step{n}" for n in range(1, 9)]


@pytest.mark.parametrize("page", [page for page in PAGES if _written(page, "sh")])
def test_the_shell_commands_of_the_page(page: str, tmp_path: Path) -> None:
    with ExitStack() as servers:
        reader = Reader(page, tmp_path, servers)
        for line, output in reader.commands:
            reader(line, output)
        if (reader.folder / "app.db").exists():
            # the models, the migrations and the database the page leaves all agree
            assert "agree" in reader.run("trellis", "db", "check")


def _tree(block: Block) -> dict[str, set[str]]:
    """A folder tree written in a page: each folder whose content is shown, and its names.

    A folder shown without its content (``migrations/``) is only said to exist.
    """
    lines = block.code.splitlines()
    assert lines[0] == "notes/", f"{block.id}: the tutorial's folder is notes/"
    shown: dict[str, set[str]] = {"": set()}
    parents = [""]
    for line in lines[1:]:
        name = line.lstrip(" ")
        depth = (len(line) - len(name)) // 2
        assert len(line) - len(name) == 2 * depth and 1 <= depth <= len(parents), line
        del parents[depth:]
        shown.setdefault(parents[-1], set()).add(name)
        if name.endswith("/"):
            parents.append(parents[-1] + name)
    return shown


@pytest.mark.parametrize(
    "block", [b for page in PAGES for b in _written(page, "text")], ids=lambda block: block.id
)
def test_the_folder_trees_are_the_steps(block: Block) -> None:
    step = _step_folder(block.page)
    for folder, names in _tree(block).items():
        real = {
            path.name + "/" * path.is_dir()
            for path in (step / folder).iterdir()
            if path.name not in MADE_BY_TOOLS
        }
        assert names == real, f"{block.id}: {folder or 'notes/'}"
