"""``trellis check [--deploy]`` and ``trellis.checks``, through the real command line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic_settings import SettingsConfigDict

from trellis import App
from trellis.checks import DeployProblem, SupportsDeployChecks, deploy_problems, settings_problems
from trellis.cli import main
from trellis.config import Settings, load_settings
from trellis.server import RUN_FROM_CLI_ENV

# Random, long, never printed: the tests check that no output contains it.
GOOD_SECRET = "Qm7vT2xK9pLr4ZsW8nYc3HbF6jDg1RaE5uNi0oPq"

HELLO = """
    from trellis import App

    app = App()

    @app.get("/")
    async def index() -> str:
        return "hi"
"""

# Production settings that pass every built-in check.
HARDENED = {
    "TRELLIS_SECRET_KEY": GOOD_SECRET,
    "TRELLIS_ALLOWED_HOSTS": "example.com,.example.com",
    "TRELLIS_HSTS_SECONDS": "31536000",
    "TRELLIS_CONTENT_SECURITY_POLICY": "default-src 'self'",
}

ALL_BUILT_IN_IDS = [
    "security.E001",
    "security.E002",
    "security.W003",
    "security.W004",
    "security.E005",
    "security.W006",
    "security.W007",
    "security.W008",
    "security.W009",
    "security.W010",
    "security.W011",
    "security.W012",
]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in tmp_path with no TRELLIS_* variable; forget the modules the test imported."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("TRELLIS_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv(RUN_FROM_CLI_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    modules = set(sys.modules)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def invoke(*args: str, **env: str | None) -> Result:
    """Run ``trellis ARGS`` with ``env`` (None unsets); the app module is imported afresh."""
    for name in [name for name in sys.modules if name in ("hello", "plugged")]:
        del sys.modules[name]
    return CliRunner().invoke(main, list(args), env=env or None)


_PROBLEM_LINE = re.compile(r"^(\S+\.[EW]\d+) \[(?:error|warning)\] ", re.MULTILINE)


def ids(result: Result) -> list[str]:
    """The problem ids at the start of the lines of a text report."""
    return [match[1] for match in _PROBLEM_LINE.finditer(result.output)]


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    return write(tmp_path / "hello.py", HELLO)


# -- plain `trellis check` ------------------------------------------------------------------


def test_check_passes_a_sound_app(hello: Path) -> None:
    result = invoke("check", "hello.py", TRELLIS_SECRET_KEY=GOOD_SECRET)
    assert result.exit_code == 0, result.output
    assert result.output == "Checked hello:app: no problems.\n"


def test_check_in_debug_mode_points_to_deploy(hello: Path) -> None:
    result = invoke("check", "hello.py", TRELLIS_DEBUG="1")
    assert result.exit_code == 0, result.output
    assert "no problems" in result.output
    assert "trellis check --deploy" in result.output


def test_check_refuses_production_without_a_secret_key(hello: Path) -> None:
    result = invoke("check", "hello.py")
    assert result.exit_code == 1
    assert "Error: TRELLIS_SECRET_KEY is not set" in result.output
    assert "Traceback" not in result.output


def test_check_reports_mistakes_in_routes(tmp_path: Path) -> None:
    write(
        tmp_path / "hello.py",
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
    result = invoke("check", "hello.py", TRELLIS_SECRET_KEY=GOOD_SECRET)
    assert result.exit_code == 1
    assert "two routes are named 'same'" in result.output
    assert "Traceback" not in result.output
    # --deploy builds the application too, and stops at the same mistake
    result = invoke("check", "hello.py", "--deploy", **HARDENED)
    assert result.exit_code == 1
    assert "two routes are named 'same'" in result.output


def test_check_json(hello: Path) -> None:
    result = invoke("check", "hello.py", "--format", "json", TRELLIS_SECRET_KEY=GOOD_SECRET)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "app": "hello:app",
        "deploy": False,
        "ok": True,
        "error": None,
        "problems": [],
    }
    result = invoke("check", "hello.py", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["ok"] is False
    assert document["error"].startswith("TRELLIS_SECRET_KEY is not set")


def test_check_finds_the_app_like_other_commands(hello: Path) -> None:
    assert invoke("check", TRELLIS_APP="hello:app", TRELLIS_SECRET_KEY=GOOD_SECRET).exit_code == 0
    result = invoke("check", "nowhere:app")
    assert result.exit_code == 2
    assert "no module named 'nowhere'" in result.output


def test_help_lists_check() -> None:
    result = invoke("--help")
    assert "check" in result.output
    result = invoke("check", "--help")
    assert result.exit_code == 0
    assert "--deploy" in result.output
    assert "--fail-level" in result.output


# -- `trellis check --deploy` ---------------------------------------------------------------


def test_insecure_app_lists_every_problem(hello: Path) -> None:
    result = invoke(
        "check",
        "hello.py",
        "--deploy",
        TRELLIS_DEBUG="1",
        TRELLIS_SECRET_KEY="hunter2hunter2",
        TRELLIS_ALLOWED_HOSTS="*",
        TRELLIS_SESSION_COOKIE_SECURE="0",
        TRELLIS_SESSION_COOKIE_SAMESITE="none",
        TRELLIS_CSRF="0",
        TRELLIS_SECURITY_HEADERS="0",
        TRELLIS_LOG_LEVEL="debug",
        TRELLIS_TRUSTED_PROXIES="*",
        TRELLIS_DATABASE_ECHO="1",
    )
    assert result.exit_code == 1
    assert ids(result) == ALL_BUILT_IN_IDS
    assert "hunter2" not in result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("security.E001 [error] Debug mode is on")
    assert "Fix: Unset TRELLIS_DEBUG or set TRELLIS_DEBUG=0." in lines[0]
    assert lines[1].startswith("security.E002 [error] TRELLIS_SECRET_KEY is only 14 characters")
    assert lines[-1].startswith("Checked hello:app for deployment: 3 errors, 9 warnings.")
    # every problem line names the environment variable that fixes it
    for line, variable in zip(
        lines,
        [
            "TRELLIS_DEBUG",
            "TRELLIS_SECRET_KEY",
            "TRELLIS_ALLOWED_HOSTS",
            "TRELLIS_SESSION_COOKIE_SECURE",
            "TRELLIS_SESSION_COOKIE_SECURE",
            "TRELLIS_HSTS_SECONDS",
            "TRELLIS_CSRF",
            "TRELLIS_SECURITY_HEADERS",
            "TRELLIS_CONTENT_SECURITY_POLICY",
            "TRELLIS_LOG_LEVEL",
            "TRELLIS_TRUSTED_PROXIES",
            "TRELLIS_DATABASE_ECHO",
        ],
        strict=False,
    ):
        assert variable in line.split(" Fix: ")[1], line


def test_hardened_app_passes(hello: Path) -> None:
    result = invoke("check", "hello.py", "--deploy", **HARDENED)
    assert result.exit_code == 0, result.output
    assert result.output == "Checked hello:app for deployment: no problems.\n"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TRELLIS_DEBUG": "1"}, ["security.E001"]),
        ({"TRELLIS_SECRET_KEY": None}, ["security.E002"]),
        ({"TRELLIS_ALLOWED_HOSTS": "*"}, ["security.W003"]),
        ({"TRELLIS_ALLOWED_HOSTS": "example.com,*"}, ["security.W003"]),
        ({"TRELLIS_ALLOWED_HOSTS": None}, ["security.W003"]),
        ({"TRELLIS_SESSION_COOKIE_SECURE": "false"}, ["security.W004"]),
        (
            {"TRELLIS_SESSION_COOKIE_SECURE": "0", "TRELLIS_SESSION_COOKIE_SAMESITE": "none"},
            ["security.W004", "security.E005"],
        ),
        ({"TRELLIS_HSTS_SECONDS": "0"}, ["security.W006"]),
        ({"TRELLIS_CSRF": "0"}, ["security.W007"]),
        ({"TRELLIS_SECURITY_HEADERS": "0"}, ["security.W008"]),
        ({"TRELLIS_CONTENT_SECURITY_POLICY": None}, ["security.W009"]),
        ({"TRELLIS_LOG_LEVEL": "DEBUG"}, ["security.W010"]),
        ({"TRELLIS_TRUSTED_PROXIES": "*"}, ["security.W011"]),
        ({"TRELLIS_TRUSTED_PROXIES": "10.0.0.1,0.0.0.0/0"}, ["security.W011"]),
        ({"TRELLIS_TRUSTED_PROXIES": "::/0"}, ["security.W011"]),
        ({"TRELLIS_DATABASE_ECHO": "1"}, ["security.W012"]),
        # fine in production: nothing to report
        ({"TRELLIS_SESSION_COOKIE_SECURE": "1"}, []),
        ({"TRELLIS_SESSION_COOKIE_SECURE": "1", "TRELLIS_SESSION_COOKIE_SAMESITE": "none"}, []),
        ({"TRELLIS_SESSION_COOKIE_SAMESITE": "strict"}, []),
        ({"TRELLIS_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.5"}, []),
        ({"TRELLIS_LOG_LEVEL": "warning"}, []),
        # without sessions, session cookies and CSRF do not matter
        (
            {
                "TRELLIS_SESSIONS": "0",
                "TRELLIS_SESSION_COOKIE_SECURE": "0",
                "TRELLIS_SESSION_COOKIE_SAMESITE": "none",
                "TRELLIS_CSRF": "0",
            },
            [],
        ),
    ],
)
def test_one_setting_one_problem(
    hello: Path, env: dict[str, str | None], expected: list[str]
) -> None:
    result = invoke("check", "hello.py", "--deploy", **{**HARDENED, **env})
    assert ids(result) == expected, result.output
    assert result.exit_code == (1 if expected else 0), result.output


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("tooshort-but-random-x7", "TRELLIS_SECRET_KEY is only 22 characters long"),
        # the key of the tests generated by `trellis new --full`
        ("test-only-secret-key-not-for-production", "looks like a placeholder"),
        ("please-change-me-before-going-to-production", "looks like a placeholder"),
        ("django-insecure-0123456789abcdefghijklmnop", "looks like a placeholder"),
        ("abababababababababababababababababababab", "only 2 different characters"),
        ("0000000000000000000000000000000000000000", "only 1 different character,"),
    ],
)
def test_weak_secret_keys(hello: Path, key: str, message: str) -> None:
    result = invoke("check", "hello.py", "--deploy", **{**HARDENED, "TRELLIS_SECRET_KEY": key})
    assert result.exit_code == 1
    assert ids(result) == ["security.E002"]
    assert message in result.output
    assert key not in result.output


def test_secret_key_is_never_printed_even_in_json(hello: Path) -> None:
    env = {**HARDENED, "TRELLIS_DEBUG": "1", "TRELLIS_ALLOWED_HOSTS": "*"}
    for args in ((), ("--format", "json")):
        result = invoke("check", "hello.py", "--deploy", *args, **env)
        assert GOOD_SECRET not in result.output
        assert GOOD_SECRET[:8] not in result.output


def test_deploy_json(hello: Path) -> None:
    result = invoke(
        "check", "hello.py", "--deploy", "--format", "json", **{**HARDENED, "TRELLIS_CSRF": "0"}
    )
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["app"] == "hello:app"
    assert document["deploy"] is True
    assert document["ok"] is False
    assert document["error"] is None
    [problem] = document["problems"]
    assert problem["id"] == "security.W007"
    assert problem["level"] == "warning"
    assert "cross-site request forgery" in problem["message"]
    assert "TRELLIS_CSRF" in problem["fix"]
    result = invoke("check", "hello.py", "--deploy", "--format", "json", **HARDENED)
    assert result.exit_code == 0
    assert json.loads(result.output)["problems"] == []


def test_fail_level_error_ignores_warnings(hello: Path) -> None:
    env = {**HARDENED, "TRELLIS_CSRF": "0"}
    result = invoke("check", "hello.py", "--deploy", "--fail-level", "error", **env)
    assert result.exit_code == 0, result.output
    assert ids(result) == ["security.W007"]  # still listed
    result = invoke(
        "check", "hello.py", "--deploy", "--fail-level", "error", **{**env, "TRELLIS_DEBUG": "1"}
    )
    assert result.exit_code == 1
    result = invoke(
        "check", "hello.py", "--deploy", "--fail-level", "error", "--format", "json", **env
    )
    assert json.loads(result.output)["ok"] is True


def test_ignore_skips_problems_by_id(hello: Path) -> None:
    env = {**HARDENED, "TRELLIS_CSRF": "0", "TRELLIS_CONTENT_SECURITY_POLICY": None}
    result = invoke("check", "hello.py", "--deploy", "--ignore", "security.W009", **env)
    assert ids(result) == ["security.W007"]
    assert result.exit_code == 1
    result = invoke(
        "check", "hello.py", "--deploy", "--ignore", "security.W007,security.W009", **env
    )
    assert result.exit_code == 0, result.output
    assert "no problems" in result.output


PLUGGED = """
    from trellis import App
    from trellis.checks import DeployProblem


    class Payments:
        def setup(self, app):
            pass

        def deploy_checks(self, app):
            assert app.settings.allowed_hosts == ["example.com", ".example.com"]
            return [
                DeployProblem(
                    "payments.E001",
                    "The payment provider key is a test key.",
                    "Set PAYMENTS_KEY to a live key.",
                    "error",
                ),
                DeployProblem("payments.W002", "Webhooks are not verified.", "Set PAYMENTS_HOOK."),
            ]


    class Broken:
        def setup(self, app):
            pass

        def deploy_checks(self, app):
            raise RuntimeError("cannot reach the provider")


    class Sloppy:
        def setup(self, app):
            pass

        def deploy_checks(self, app):
            return ["not a problem object"]


    class Quiet:  # no deploy_checks: nothing to report
        def setup(self, app):
            pass


    app = App()
    app.install(Payments())
    app.install(Quiet())
    app.install(Broken())
    app.install(Sloppy())
"""


def test_plugin_problems_appear_after_the_built_in_ones(tmp_path: Path) -> None:
    write(tmp_path / "plugged.py", PLUGGED)
    env = {**HARDENED, "TRELLIS_CSRF": "0"}
    result = invoke("check", "plugged.py", "--deploy", **env)
    assert result.exit_code == 1
    assert ids(result) == [
        "security.W007",
        "payments.E001",
        "payments.W002",
        "checks.E001",
        "checks.E001",
    ]
    output = result.output
    assert (
        "payments.E001 [error] The payment provider key is a test key. "
        "Fix: Set PAYMENTS_KEY to a live key." in output
    )
    assert (
        "The deploy checks of the plugin plugged.Broken could not run: deploy_checks() raised "
        "RuntimeError: cannot reach the provider." in output
    )
    assert "plugged.Sloppy could not run: deploy_checks() returned str objects" in output
    assert "3 errors, 2 warnings" in output
    assert "Traceback" not in output


def test_plugin_warning_alone_fails_the_check(tmp_path: Path) -> None:
    write(
        tmp_path / "plugged.py",
        """
        from trellis import App
        from trellis.checks import DeployProblem

        class Cdn:
            def setup(self, app):
                pass

            def deploy_checks(self, app):
                return (p for p in [DeployProblem("cdn.W001", "No CDN.", "Set CDN_URL.")])

        app = App()
        app.install(Cdn())
        """,
    )
    result = invoke("check", "plugged.py", "--deploy", **HARDENED)
    assert result.exit_code == 1
    assert ids(result) == ["cdn.W001"]
    assert "1 error" not in result.output and "0 errors, 1 warning." in result.output
    result = invoke("check", "plugged.py", "--deploy", "--ignore", "cdn.W001", **HARDENED)
    assert result.exit_code == 0


def test_real_process_exit_status(tmp_path: Path) -> None:
    write(tmp_path / "hello.py", HELLO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    command = [sys.executable, "-m", "trellis.cli", "check", "hello.py", "--deploy"]
    insecure = subprocess.run(
        command,
        cwd=tmp_path,
        env={**env, "TRELLIS_DEBUG": "1", "TRELLIS_SECRET_KEY": GOOD_SECRET},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert insecure.returncode == 1, insecure.stderr
    assert "security.E001 [error]" in insecure.stdout
    assert GOOD_SECRET not in insecure.stdout + insecure.stderr
    hardened = subprocess.run(
        command,
        cwd=tmp_path,
        env={**env, **HARDENED},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert hardened.returncode == 0, hardened.stdout + hardened.stderr
    assert "no problems" in hardened.stdout


# -- trellis.checks as a library --------------------------------------------------------------


def test_deploy_problems_of_an_app() -> None:
    app = App(debug=False, secret_key=GOOD_SECRET, allowed_hosts=["example.com"])
    problems = deploy_problems(app)
    assert [problem.id for problem in problems] == ["security.W006", "security.W009"]
    assert all(isinstance(problem, DeployProblem) for problem in problems)
    assert not any(problem.is_error for problem in problems)


def test_fixes_name_the_variables_of_a_settings_subclass() -> None:
    class ShopSettings(Settings):
        model_config = SettingsConfigDict(env_prefix="SHOP_")

    settings = load_settings(ShopSettings, env_file=None, toml_file=None, debug=True)
    [debug, key, *_] = settings_problems(settings)
    assert debug.id == "security.E001"
    assert "SHOP_DEBUG=0" in debug.fix
    assert key.message.startswith("SHOP_SECRET_KEY is not set")


def test_deploy_problem() -> None:
    problem = DeployProblem("x.E001", "Wrong.", "Fix it.", "error")
    assert problem.is_error
    assert problem.as_dict() == {
        "id": "x.E001",
        "level": "error",
        "message": "Wrong.",
        "fix": "Fix it.",
    }
    assert DeployProblem("x.W001", "Odd.", "Look.").level == "warning"
    with pytest.raises(ValueError, match="level must be 'error' or 'warning'"):
        DeployProblem("x.I001", "Note.", "None.", "info")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an id"):
        DeployProblem("", "Wrong.", "Fix it.")


def test_supports_deploy_checks_protocol() -> None:
    class Plugin:
        def setup(self, app: App) -> None:
            pass

        def deploy_checks(self, app: App) -> list[DeployProblem]:
            return []

    assert isinstance(Plugin(), SupportsDeployChecks)
    assert not isinstance(object(), SupportsDeployChecks)
