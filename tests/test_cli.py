from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from trellis.cli import main
from trellis.cli._loading import load_app, split_target
from trellis.server import RUN_FROM_CLI_ENV
from trellis.testing import TestClient

SECRET = "a-test-secret-key-that-is-long-enough-for-production"

HELLO = """
    from trellis import App

    app = App()

    @app.get("/")
    async def index() -> str:
        return "Hello, World!"

    @app.get("/users/{id:int}", name="user")
    async def user(id: int) -> dict[str, int]:
        return {"id": id}
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in tmp_path; forget modules and sys.path entries the test imported."""
    monkeypatch.chdir(tmp_path)
    for name in ("TRELLIS_APP", "TRELLIS_APP_DIR", RUN_FROM_CLI_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRELLIS_SECRET_KEY", SECRET)
    monkeypatch.setattr(sys, "path", list(sys.path))
    modules = set(sys.modules)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def invoke(*args: str, input: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=env or None)


def assert_usage_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


# -- trellis routes -------------------------------------------------------------------------


def test_routes_table(tmp_path: Path) -> None:
    write(tmp_path / "hello.py", HELLO)
    result = invoke("routes", "hello:app")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["METHOD", "PATH", "NAME", "HANDLER"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["GET", "/", "index", "hello.index"]
    assert lines[3].split() == ["GET", "/users/{id:int}", "user", "hello.user"]
    assert "HOST" not in result.output


def test_routes_from_a_file_path_and_json(tmp_path: Path) -> None:
    write(tmp_path / "site" / "web.py", HELLO)
    result = invoke("routes", "site/web.py", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["method"], r["path"], r["name"]) for r in rows] == [
        ("GET", "/", "index"),
        ("GET", "/users/{id:int}", "user"),
    ]


def test_routes_host_column_and_mounts(tmp_path: Path) -> None:
    write(
        tmp_path / "hosts.py",
        """
        from trellis import App, Router

        app = App()
        api = Router(host="api.example.com")

        @api.get("/status")
        async def status() -> str:
            return "ok"

        @app.get("/")
        async def index() -> str:
            return "home"

        app.include(api)
        app.static("/static", ".")
        """,
    )
    result = invoke("routes", "hosts.py")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["HOST", "METHOD", "PATH", "NAME", "HANDLER"]
    body = "\n".join(lines[2:])
    assert "api.example.com  GET" in body
    assert "/static/..." in body


def test_routes_of_an_empty_app(tmp_path: Path) -> None:
    write(tmp_path / "empty.py", "from trellis import App\napp = App()\n")
    result = invoke("routes", "empty")
    assert result.exit_code == 0
    assert result.output.strip() == "No routes."


def test_target_from_env_and_from_app_option(tmp_path: Path) -> None:
    write(tmp_path / "hello.py", HELLO)
    assert "/users/{id:int}" in invoke("routes", TRELLIS_APP="hello:app").output
    assert "/users/{id:int}" in invoke("--app", "hello.py", "routes").output


def test_app_dir(tmp_path: Path) -> None:
    write(tmp_path / "src" / "hello.py", HELLO)
    assert invoke("routes", "hello").exit_code == 2
    assert invoke("routes", "hello", "--app-dir", "src").exit_code == 0
    assert invoke("--app-dir", "src", "routes", "hello").exit_code == 0


def test_routes_reports_build_errors_without_traceback(tmp_path: Path) -> None:
    write(
        tmp_path / "clash.py",
        """
        from trellis import App

        app = App()

        @app.get("/a", name="same")
        async def a() -> str:
            return "a"

        @app.get("/b", name="same")
        async def b() -> str:
            return "b"
        """,
    )
    result = invoke("routes", "clash.py")
    assert result.exit_code == 1
    assert "two routes are named 'same'" in result.output
    assert "Traceback" not in result.output


# -- finding the application ----------------------------------------------------------------


def test_no_target() -> None:
    assert_usage_error(invoke("routes"), "No application given", "TRELLIS_APP")


def test_module_not_found() -> None:
    assert_usage_error(invoke("routes", "nowhere:app"), "no module named 'nowhere'", "--app-dir")


def test_file_not_found() -> None:
    assert_usage_error(invoke("routes", "missing.py"), "No such file: 'missing.py'")


def test_attribute_missing(tmp_path: Path) -> None:
    write(tmp_path / "hello.py", HELLO)
    assert_usage_error(
        invoke("routes", "hello:ap"), "Module 'hello' has no attribute 'ap'", "hello:app"
    )


def test_not_an_asgi_app(tmp_path: Path) -> None:
    write(
        tmp_path / "things.py",
        """
        number = 3
        def make():
            return None
        class Thing:
            pass
        """,
    )
    assert_usage_error(invoke("routes", "things:number"), "things:number is a int, not an ASGI")
    assert_usage_error(invoke("routes", "things:Thing"), "is a class, not an ASGI application")
    assert_usage_error(invoke("routes", "things:make"), "not an ASGI application", "--factory")
    assert_usage_error(invoke("routes", "things"), "No application found in module 'things'")


def test_bad_target_syntax() -> None:
    assert_usage_error(invoke("routes", "hello:not-a-name"), "is not an attribute name")
    assert_usage_error(invoke("routes", "no such module"), "neither a module name nor a .py")
    assert_usage_error(invoke("routes", "hello:()"), "name the factory")


def test_error_inside_the_module_shows_where(tmp_path: Path) -> None:
    write(tmp_path / "broken.py", "from trellis import App\napp = App()\n1 / 0\n")
    result = invoke("routes", "broken.py")
    assert result.exit_code == 1
    assert "Error while importing 'broken'" in result.output
    assert 'broken.py", line 3' in result.output
    assert "ZeroDivisionError" in result.output
    assert "importlib" not in result.output


def test_missing_dependency_inside_the_module_is_not_a_missing_target(tmp_path: Path) -> None:
    write(tmp_path / "needs.py", "import not_installed_anywhere\n")
    result = invoke("routes", "needs")
    assert result.exit_code == 1
    assert "No module named 'not_installed_anywhere'" in result.output


def test_configuration_error_while_importing(tmp_path: Path) -> None:
    write(tmp_path / "conf.py", "from trellis import App\napp = App(max_body_size=0)\n")
    result = invoke("routes", "conf")
    assert result.exit_code == 1
    assert "Could not load 'conf'" in result.output
    assert "max_body_size" in result.output
    assert "Traceback" not in result.output


FACTORY = """
    from trellis import App

    def create_app(greeting: str = "hi") -> App:
        app = App()

        @app.get("/")
        async def index() -> str:
            return greeting

        return app

    def needs_args(x):
        return App()
"""


@pytest.mark.parametrize(
    ("target", "options"),
    [
        ("factory_mod", ()),
        ("factory_mod:create_app()", ()),
        ("factory_mod:create_app", ("--factory",)),
    ],
)
def test_factories(tmp_path: Path, target: str, options: tuple[str, ...]) -> None:
    write(tmp_path / "factory_mod.py", FACTORY)
    result = invoke("routes", target, *options)
    assert result.exit_code == 0, result.output
    assert "factory_mod.create_app.<locals>.index" in result.output


def test_factory_that_needs_arguments(tmp_path: Path) -> None:
    write(tmp_path / "factory_mod.py", FACTORY)
    assert_usage_error(invoke("routes", "factory_mod:needs_args()"), "needs arguments")


def test_autodetects_the_one_app_and_refuses_several(tmp_path: Path) -> None:
    write(tmp_path / "one.py", "from trellis import App\nweb = App()\n")
    loaded = load_app("one")
    assert loaded.import_string == "one:web"
    assert not loaded.factory
    write(tmp_path / "two.py", "from trellis import App\nweb = App()\napi = App()\n")
    assert_usage_error(invoke("routes", "two"), "several applications (api, web)")


def test_package_file_path_gets_its_dotted_name(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "web.py", HELLO)
    loaded = load_app("pkg/web.py")
    assert loaded.import_string == "pkg.web:app"
    assert loaded.path_entry == str(tmp_path.resolve())
    assert load_app(str(tmp_path / "pkg" / "web.py") + ":app").module == "pkg.web"


def test_any_asgi_app_runs_but_routes_needs_trellis(tmp_path: Path) -> None:
    write(
        tmp_path / "raw.py",
        """
        async def app(scope, receive, send):
            pass
        """,
    )
    assert load_app("raw").app is not None
    assert_usage_error(invoke("routes", "raw"), "not a Trellis App")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("hello", ("hello", None, False)),
        ("hello:app", ("hello", "app", False)),
        ("pkg.mod:make()", ("pkg.mod", "make", True)),
        ("dir/file.py", ("dir/file.py", None, False)),
        ("dir/file.py:web", ("dir/file.py", "web", False)),
        ("mod:obj.app", ("mod", "obj.app", False)),
        (r"C:\apps\site.py", (r"C:\apps\site.py", None, False)),
        (r"C:\apps\site.py:app", (r"C:\apps\site.py", "app", False)),
    ],
)
def test_split_target(target: str, expected: tuple[str, str | None, bool]) -> None:
    assert split_target(target) == expected


def test_module_level_app_run_is_skipped_while_loading(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "runs.py", textwrap.dedent(HELLO) + "\napp.run()\n")
    result = invoke("routes", "runs.py")  # would block forever if app.run() served
    assert result.exit_code == 0, result.output
    assert "ignoring app.run()" in result.output + capfd.readouterr().err
    assert RUN_FROM_CLI_ENV not in os.environ  # set only while importing


# -- app-defined commands -------------------------------------------------------------------

COMMANDS = (
    HELLO
    + """
    import click

    @app.command()
    @click.argument("count", type=int)
    def seed_db(count: int) -> None:
        \"\"\"Fill the database with COUNT users.\"\"\"
        click.echo(f"seeded {count} users for {len(app.describe_routes())} routes")

    @app.command("routes")
    def shadowing() -> None:
        click.echo("never called: built-in commands win")
"""
)


def test_app_command_runs(tmp_path: Path) -> None:
    write(tmp_path / "cmds.py", COMMANDS)
    result = invoke("--app", "cmds:app", "seed-db", "3")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "seeded 3 users for 2 routes"
    result = invoke("seed-db", "5", TRELLIS_APP="cmds.py")
    assert result.output.strip() == "seeded 5 users for 2 routes"


def test_builtin_commands_win(tmp_path: Path) -> None:
    write(tmp_path / "cmds.py", COMMANDS)
    result = invoke("--app", "cmds:app", "routes")
    assert result.exit_code == 0
    assert "METHOD" in result.output


def test_help_lists_app_commands(tmp_path: Path) -> None:
    write(tmp_path / "cmds.py", COMMANDS)
    result = invoke("--app", "cmds:app", "--help")
    assert result.exit_code == 0
    assert "seed-db" in result.output
    assert "Fill the database" in result.output
    assert "seed-db" not in invoke("--help").output


def test_help_still_works_with_a_broken_app(tmp_path: Path) -> None:
    result = invoke("--app", "nowhere:app", "--help")
    assert result.exit_code == 0
    assert "routes" in result.output
    assert "application's commands are not listed" in result.output


def test_unknown_command_explains_app_commands(tmp_path: Path) -> None:
    assert_usage_error(invoke("seed-db"), "No such command 'seed-db'", "--app module:app")
    write(tmp_path / "cmds.py", COMMANDS)
    result = invoke("--app", "cmds:app", "nope")
    assert_usage_error(result, "No such command 'nope'")
    assert "--app module:app" not in result.output


def test_unknown_command_with_a_broken_app() -> None:
    assert_usage_error(invoke("--app", "nowhere:app", "seed-db"), "no module named 'nowhere'")


def test_app_py_is_the_default_application(tmp_path: Path) -> None:
    write(tmp_path / "app.py", COMMANDS)
    result = invoke("seed-db", "2")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "seeded 2 users for 2 routes"
    assert "seed-db" in invoke("--help").output
    result = invoke("routes")
    assert result.exit_code == 0, result.output
    assert "app.index" in result.output
    # --app and TRELLIS_APP still win
    write(tmp_path / "other.py", HELLO)
    assert "seed-db" not in invoke("--app", "other:app", "--help").output
    assert_usage_error(invoke("seed-db", TRELLIS_APP="other.py"), "No such command 'seed-db'")


def test_app_py_in_app_dir_is_the_default_application(tmp_path: Path) -> None:
    write(tmp_path / "site" / "app.py", COMMANDS)
    result = invoke("--app-dir", "site", "seed-db", "4")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "seeded 4 users for 2 routes"


def test_a_default_app_py_that_is_no_app_does_not_disturb_help(tmp_path: Path) -> None:
    write(tmp_path / "app.py", "raise RuntimeError('not a web app')\n")
    result = invoke("--help")
    assert result.exit_code == 0
    assert "routes" in result.output
    assert "not listed" not in result.output
    result = invoke("routes")
    assert result.exit_code == 1
    assert "not a web app" in result.output


# -- trellis run (without serving: what reaches the server) ---------------------------------


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    calls: list[tuple[Any, dict[str, Any]]] = []

    def fake_serve(app: Any, **options: Any) -> None:
        calls.append((app, options))

    monkeypatch.setattr("trellis.server._serve", fake_serve)
    return calls


def test_run_defaults_come_from_the_app_settings(
    tmp_path: Path, served: list[tuple[Any, dict[str, Any]]]
) -> None:
    write(
        tmp_path / "conf.py",
        """
        from trellis import App
        app = App(server_port=9123, log_format="json", log_level="warning", access_log=False)
        """,
    )
    result = invoke("run", "conf.py")
    assert result.exit_code == 0, result.output
    [(app, options)] = served
    assert type(app).__name__ == "App"
    assert options["host"] == "127.0.0.1"
    assert options["port"] == 9123
    assert options["log_format"] == "json"
    assert options["log_level"] == "WARNING"
    assert options["access_log"] is False
    assert options["workers"] == 1
    assert options["reload"] is False


def test_run_options_win(tmp_path: Path, served: list[tuple[Any, dict[str, Any]]]) -> None:
    write(tmp_path / "hello.py", HELLO)
    args = ["run", "hello", "--host", "0.0.0.0", "--port", "9000", "--log-level", "DEBUG"]
    args += ["--log-format", "text", "--access-log", "--root-path", "/api", "--uds", "x.sock"]
    assert invoke(*args).exit_code == 0
    [(_, options)] = served
    assert options["host"] == "0.0.0.0"
    assert options["port"] == 9000
    assert options["log_level"] == "DEBUG"
    assert options["root_path"] == "/api"
    assert options["uds"] == "x.sock"


def test_run_workers_and_reload_pass_an_import_string(
    tmp_path: Path, served: list[tuple[Any, dict[str, Any]]]
) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "web.py", FACTORY)
    assert invoke("run", "pkg/web.py:create_app()", "--workers", "3").exit_code == 0
    assert invoke("run", "pkg.web", "--reload").exit_code == 0
    (app1, options1), (app2, options2) = served
    assert app1 == app2 == "pkg.web:create_app"
    assert options1["workers"] == 3
    assert options1["factory"] is True
    assert options2["reload"] is True
    assert options2["reload_dirs"] == [str(tmp_path.resolve())]


def test_run_refuses_reload_with_workers(tmp_path: Path) -> None:
    write(tmp_path / "hello.py", HELLO)
    assert_usage_error(invoke("run", "hello", "--reload", "--workers", "2"), "cannot be used")
    assert_usage_error(invoke("run", "hello", "--reload-dir", "."), "--reload-dir needs --reload")
    assert_usage_error(invoke("run", "hello", "--workers", "0"), "--workers")


# -- trellis shell --------------------------------------------------------------------------


def test_shell_has_the_app_loaded(tmp_path: Path) -> None:
    write(tmp_path / "hello.py", HELLO)
    code = "print(type(app).__name__, app.url_for('user', id=7), HTTPError.__name__)\n"
    result = invoke("shell", "hello", "--plain", input=code)
    assert result.exit_code == 0, result.output
    assert "Trellis" in result.output
    assert "shell: app = hello:app" in result.output
    assert "App /users/7 HTTPError" in result.output


# -- trellis new ----------------------------------------------------------------------------


def test_new_single_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke("new", "blog")
    assert result.exit_code == 0, result.output
    project = tmp_path / "blog"
    assert sorted(p.name for p in project.iterdir()) == [".env", "app.py"]
    env = (project / ".env").read_text()
    assert "TRELLIS_DEBUG=1" in env
    key = env.split("TRELLIS_SECRET_KEY=")[1].strip()
    assert len(key) >= 32
    assert "__NAME__" not in (project / "app.py").read_text()
    assert "python app.py" in result.output
    # The generated app works (its .env is read from the directory it is started in).
    monkeypatch.chdir(project)
    monkeypatch.delenv("TRELLIS_SECRET_KEY")
    loaded = load_app("app:app")
    with TestClient(loaded.app) as client:
        assert client.get("/").json() == {"message": "Hello from blog!"}
        assert client.get("/hello/Ada").text == "Hello, Ada!"


def test_new_full_project_passes_its_own_tests(tmp_path: Path) -> None:
    result = invoke("new", "shop", "--full", "--dir", "projects")
    assert result.exit_code == 0, result.output
    project = tmp_path / "projects" / "shop"
    for relative in [
        "pyproject.toml",
        "README.md",
        ".env",
        ".gitignore",
        "shop/__init__.py",
        "shop/app.py",
        "shop/models.py",
        "shop/routes.py",
        "shop/admin.py",
        "shop/migrations/env.py",
        "shop/migrations/script.py.mako",
        "shop/migrations/versions/shop_0001_notes.py",
        "shop/templates/base.html",
        "shop/templates/index.html",
        "shop/templates/auth/base.html",
        "shop/static/style.css",
        "tests/conftest.py",
        "tests/test_pages.py",
        "tests/test_api.py",
        "tests/test_admin.py",
        "tests/test_operations.py",
    ]:
        assert (project / relative).is_file(), relative
    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "shop"' in pyproject
    assert '"trellis[db,auth]>=' in pyproject
    assert 'trellis_migrations = "shop/migrations"' in pyproject
    assert "TRELLIS_DATABASE_URL=sqlite:///shop.db" in (project / ".env").read_text()
    assert "trellis run shop" in result.output
    assert "trellis --app shop db upgrade" in result.output
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRELLIS_", "PYTEST_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "14 passed" in completed.stdout


def test_new_full_project_is_found_by_trellis_routes(tmp_path: Path) -> None:
    assert invoke("new", "shop", "--full").exit_code == 0
    result = invoke("routes", "shop", "--app-dir", "shop")
    assert result.exit_code == 0, result.output
    for path in ("/api/notes", "/notes/new", "/auth/login", "/admin/note", "/readyz"):
        assert path in result.output
    assert "/static/..." in result.output


def test_new_full_project_migrates_with_trellis_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's commands: `trellis db upgrade` with TRELLIS_APP set, then `db check`,
    # on the SQLite file that .env names.
    assert invoke("new", "shop", "--full").exit_code == 0
    monkeypatch.chdir(tmp_path / "shop")
    monkeypatch.delenv("TRELLIS_DATABASE_URL", raising=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRELLIS_", "PYTEST_"))}
    env["TRELLIS_APP"] = "shop"
    trellis = [sys.executable, "-m", "trellis.cli"]
    upgrade = subprocess.run(
        [*trellis, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert "applied shop_0001 (app, head) Notes." in upgrade.stdout
    assert (tmp_path / "shop" / "shop.db").is_file()
    check = subprocess.run(
        [*trellis, "db", "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "the models and the migrations agree" in check.stdout


def test_new_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert_usage_error(invoke("new", "taken"), "already exists and is not empty")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("")
    assert_usage_error(invoke("new", "file"), "already exists")
    (tmp_path / "empty").mkdir()
    assert invoke("new", "empty").exit_code == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("my-app", "not a valid Python identifier; use letters, digits and underscores"),
        ("1st", "not a valid Python identifier"),
        ("class", "not a valid Python identifier"),
    ],
)
def test_new_refuses_bad_names(name: str, message: str) -> None:
    assert_usage_error(invoke("new", name), message)


def test_new_suggests_a_name() -> None:
    assert "such as 'my_app'" in invoke("new", "my-app").output


@pytest.mark.parametrize("name", ["json", "trellis", "click", "tests"])
def test_new_full_refuses_names_that_shadow_modules(name: str) -> None:
    assert_usage_error(invoke("new", name, "--full"), f"'{name}'", "shadow")


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.startswith("trellis, version ")


def test_unknown_options_are_usage_errors() -> None:
    assert isinstance(click.UsageError("x"), click.ClickException)
    assert invoke("run", "--nope").exit_code == 2


def test_docs_examples_run() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert blocks
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for block in blocks:
        exec(compile(block, str(page), "exec", dont_inherit=True), namespace)
    [command] = namespace["app"].commands
    result = CliRunner().invoke(command, ["100"])
    assert result.output == "created 100 users\n"
