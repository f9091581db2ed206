"""Tests for trellis.config: sources, priority, parsing, access, production rules, errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsConfigDict

from trellis.config import (
    SECRET_KEY_MIN_LENGTH,
    ByteCount,
    CommaList,
    Settings,
    env_var_name,
    load_settings,
)
from trellis.exceptions import ConfigurationError

GOOD_KEY = "k" * SECRET_KEY_MIN_LENGTH
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "config.md"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run every test in an empty directory with no TRELLIS_* variables set."""
    for name in list(os.environ):
        if name.upper().startswith("TRELLIS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- defaults and sources ------------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings()
    assert settings.debug is False
    assert settings.secret_key is None
    assert settings.allowed_hosts == []
    assert settings.trusted_proxies == []
    assert settings.max_body_size == 4 * 1024 * 1024
    assert settings.max_json_size == 4 * 1024 * 1024
    assert settings.max_form_fields == 1000
    assert settings.max_form_parts == 1000
    assert settings.max_file_size == 100 * 1024 * 1024
    assert settings.form_spool_threshold == 1024 * 1024
    assert settings.max_headers == 100
    assert settings.thread_pool_size == 40
    assert settings.log_format == "text"
    assert settings.log_level == "INFO"
    assert settings.access_log is True
    assert settings.templates_dir is None
    assert settings.static_dir is None
    assert settings.server_host == "127.0.0.1"
    assert settings.server_port == 8000


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_DEBUG", "1")
    monkeypatch.setenv("TRELLIS_SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("TRELLIS_MAX_HEADERS", "50")
    monkeypatch.setenv("TRELLIS_LOG_FORMAT", "JSON")
    monkeypatch.setenv("TRELLIS_TEMPLATES_DIR", "templates")
    settings = load_settings()
    assert settings.debug is True
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == GOOD_KEY
    assert settings.max_headers == 50
    assert settings.log_format == "json"
    assert settings.templates_dir == Path("templates")


def test_environment_variable_names_ignore_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("trellis_server_port", "9000")
    assert load_settings().server_port == 9000


def test_unprefixed_variables_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.setenv("SERVER_PORT", "9000")
    settings = load_settings()
    assert settings.debug is False
    assert settings.server_port == 8000


def test_dotenv_file_in_working_directory(isolated: Path) -> None:
    write(isolated / ".env", "TRELLIS_SERVER_PORT=9001\nDATABASE_URL=postgres://elsewhere\n")
    # Variables that are not ours (DATABASE_URL) are allowed in a shared .env file.
    assert load_settings().server_port == 9001


def test_dotenv_file_path_is_configurable(isolated: Path) -> None:
    write(isolated / ".env", "TRELLIS_SERVER_PORT=9001\n")
    other = write(isolated / "prod.env", "TRELLIS_SERVER_PORT=9002\n")
    assert load_settings(env_file=other).server_port == 9002
    assert load_settings(env_file=str(other)).server_port == 9002
    assert load_settings(env_file=None).server_port == 8000


def test_toml_file_in_working_directory(isolated: Path) -> None:
    write(
        isolated / "trellis.toml",
        """
        debug = true
        allowed_hosts = ["example.com", ".example.org"]
        max_body_size = "8MiB"
        """,
    )
    settings = load_settings()
    assert settings.debug is True
    assert settings.allowed_hosts == ["example.com", ".example.org"]
    assert settings.max_body_size == 8 * 1024 * 1024


def test_toml_file_path_is_configurable(isolated: Path) -> None:
    write(isolated / "trellis.toml", "server_port = 9001\n")
    other = write(isolated / "prod.toml", "server_port = 9002\n")
    assert load_settings(toml_file=other).server_port == 9002
    assert load_settings(toml_file=None).server_port == 8000


def test_toml_file_path_from_model_config(isolated: Path) -> None:
    config_dir = isolated / "config"
    config_dir.mkdir()
    write(config_dir / "app.toml", "server_port = 9003\n")

    class AppSettings(Settings):
        model_config = SettingsConfigDict(toml_file="config/app.toml")

    assert load_settings(AppSettings).server_port == 9003


def test_pyproject_tool_trellis_table(isolated: Path) -> None:
    write(
        isolated / "pyproject.toml",
        """
        [project]
        name = "shop"

        [tool.trellis]
        server_port = 9004
        log_level = "debug"
        """,
    )
    settings = load_settings()
    assert settings.server_port == 9004
    assert settings.log_level == "DEBUG"


def test_pyproject_without_tool_trellis_table_is_fine(isolated: Path) -> None:
    write(isolated / "pyproject.toml", '[project]\nname = "shop"\n[tool.ruff]\nline-length = 99\n')
    assert load_settings().server_port == 8000


def test_settings_class_reads_sources_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_SERVER_PORT", "9005")
    assert Settings().server_port == 9005
    assert Settings(server_port=9006).server_port == 9006


# --- priority ------------------------------------------------------------------------------

SOURCES = ["keyword", "env", "dotenv", "toml", "pyproject"]


@pytest.mark.parametrize("highest", range(len(SOURCES) + 1))
def test_priority_order(isolated: Path, monkeypatch: pytest.MonkeyPatch, highest: int) -> None:
    """Each source wins over every source after it in SOURCES, and the default comes last."""
    present = SOURCES[highest:]
    port = {name: 9100 + i for i, name in enumerate(SOURCES)}
    overrides: dict[str, Any] = {}
    if "keyword" in present:
        overrides["server_port"] = port["keyword"]
    if "env" in present:
        monkeypatch.setenv("TRELLIS_SERVER_PORT", str(port["env"]))
    if "dotenv" in present:
        write(isolated / ".env", f"TRELLIS_SERVER_PORT={port['dotenv']}\n")
    if "toml" in present:
        write(isolated / "trellis.toml", f"server_port = {port['toml']}\n")
    if "pyproject" in present:
        write(isolated / "pyproject.toml", f"[tool.trellis]\nserver_port = {port['pyproject']}\n")
    expected = port[present[0]] if present else 8000
    assert load_settings(**overrides).server_port == expected


def test_sources_merge_per_setting(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_DEBUG", "true")
    write(isolated / "trellis.toml", 'server_port = 9007\nlog_level = "ERROR"\n')
    settings = load_settings(log_level="WARNING")
    assert (settings.debug, settings.server_port, settings.log_level) == (True, 9007, "WARNING")


# --- lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", ["example.com"]),
        ("a.com,b.com", ["a.com", "b.com"]),
        (" a.com , B.com ,", ["a.com", "b.com"]),
        ('["a.com", "b.com"]', ["a.com", "b.com"]),
        ("", []),
        ("*", ["*"]),
    ],
)
def test_lists_from_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("TRELLIS_ALLOWED_HOSTS", raw)
    assert load_settings().allowed_hosts == expected


def test_lists_from_dotenv(isolated: Path) -> None:
    write(isolated / ".env", "TRELLIS_TRUSTED_PROXIES=10.0.0.0/8, 192.168.1.1,::1\n")
    assert load_settings().trusted_proxies == ["10.0.0.0/8", "192.168.1.1", "::1"]


def test_invalid_trusted_proxy_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_TRUSTED_PROXIES", "10.0.0.1,proxy.internal")
    with pytest.raises(ConfigurationError, match=r"'proxy\.internal' is not an IP address"):
        load_settings()
    assert load_settings(trusted_proxies="*").trusted_proxies == ["*"]


def test_allowed_host_with_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="without scheme or path"):
        load_settings(allowed_hosts=["https://example.com"])


def test_comma_list_in_a_subclass(monkeypatch: pytest.MonkeyPatch) -> None:
    class AppSettings(Settings):
        admin_ids: CommaList[int] = []

    monkeypatch.setenv("TRELLIS_ADMIN_IDS", "1, 2,3")
    assert load_settings(AppSettings).admin_ids == [1, 2, 3]
    monkeypatch.setenv("TRELLIS_ADMIN_IDS", "1,two")
    with pytest.raises(ConfigurationError, match=r"admin_ids\[1\] = 'two'"):
        load_settings(AppSettings)


# --- sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1024", 1024),
        ("4MiB", 4 * 1024 * 1024),
        ("4 mib", 4 * 1024 * 1024),
        ("512KB", 512_000),
        ("512KiB", 512 * 1024),
        ("1.5GiB", 1536 * 1024 * 1024),
        ("2GB", 2_000_000_000),
        ("100B", 100),
    ],
)
def test_sizes_accept_units(monkeypatch: pytest.MonkeyPatch, raw: str, expected: int) -> None:
    monkeypatch.setenv("TRELLIS_MAX_FILE_SIZE", raw)
    assert load_settings().max_file_size == expected


@pytest.mark.parametrize("raw", ["abc", "4 parsecs", "1.5", "-1", "MiB", "0"])
def test_invalid_sizes_are_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("TRELLIS_MAX_BODY_SIZE", raw)
    with pytest.raises(ConfigurationError, match="TRELLIS_MAX_BODY_SIZE"):
        load_settings()


def test_byte_count_in_a_subclass() -> None:
    class AppSettings(Settings):
        avatar_limit: ByteCount = 1024

    assert load_settings(AppSettings, avatar_limit="2KiB").avatar_limit == 2048


# --- access --------------------------------------------------------------------------------


def test_item_access_matches_attribute_access() -> None:
    settings = load_settings(debug=True, server_port=9010)
    for name in Settings.model_fields:
        assert settings[name] == getattr(settings, name)
    assert settings["server_port"] == 9010
    assert settings["debug"] is True


def test_unknown_key_raises_key_error_naming_it() -> None:
    settings = load_settings()
    with pytest.raises(KeyError, match=r"no setting 'degub'.*did you mean 'debug'"):
        settings["degub"]
    with pytest.raises(KeyError, match="no setting 'is_production'"):
        settings["is_production"]  # a property, not a setting


def test_get_and_contains() -> None:
    settings = load_settings(server_port=9011)
    assert settings.get("server_port") == 9011
    assert settings.get("server_port", 1) == 9011
    assert settings.get("nope") is None
    assert settings.get("nope", 42) == 42
    assert settings.get("is_production", 42) == 42  # attributes that are not settings
    assert settings.get("model_config") is None
    assert "server_port" in settings
    assert "nope" not in settings


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.debug = True  # type: ignore[misc]
    assert settings.debug is False


def test_replace_validates_and_keeps_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(server_port=9013)
    changed = settings.replace(max_body_size="16MiB", debug=True)
    assert changed.max_body_size == 16 * 1024 * 1024
    assert (changed.debug, changed.server_port) == (True, 9013)
    assert (settings.debug, settings.max_body_size) == (False, 4 * 1024 * 1024)
    # No source is read again: the environment does not leak into the copy.
    monkeypatch.setenv("TRELLIS_SERVER_PORT", "9999")
    assert settings.replace(debug=True).server_port == 9013


def test_replace_keeps_the_subclass_and_secrets() -> None:
    settings = load_settings(ShopSettings, stripe_key="sk", secret_key=GOOD_KEY)
    changed = settings.replace(currency="CHF")
    assert isinstance(changed, ShopSettings)
    assert changed.stripe_key == "sk"
    assert changed.effective_secret_key() == GOOD_KEY


def test_replace_refuses_bad_values_and_names() -> None:
    settings = load_settings()
    with pytest.raises(ConfigurationError, match=r"max_headers = -1 \(from an argument to replace"):
        settings.replace(max_headers=-1)
    with pytest.raises(TypeError, match=r"Unknown setting 'degub'.*'debug'"):
        settings.replace(degub=True)


# --- subclassing ---------------------------------------------------------------------------


class ShopSettings(Settings):
    stripe_key: str
    currency: str = "EUR"


def test_subclass_fields_use_the_trellis_prefix(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRELLIS_STRIPE_KEY", "sk_test")
    write(isolated / "trellis.toml", 'currency = "CHF"\nserver_port = 9012\n')
    settings = load_settings(ShopSettings)
    assert isinstance(settings, ShopSettings)
    assert settings.stripe_key == "sk_test"
    assert settings["currency"] == "CHF"
    assert settings.server_port == 9012


def test_subclass_missing_required_setting_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(ShopSettings)
    message = str(info.value)
    assert "stripe_key is required" in message
    assert "TRELLIS_STRIPE_KEY" in message


def test_subclass_can_change_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    class ShopOnly(Settings):
        model_config = SettingsConfigDict(env_prefix="SHOP_")
        stripe_key: str = ""

    monkeypatch.setenv("SHOP_STRIPE_KEY", "sk_shop")
    monkeypatch.setenv("SHOP_DEBUG", "1")
    monkeypatch.setenv("TRELLIS_DEBUG", "0")
    settings = load_settings(ShopOnly)
    assert settings.stripe_key == "sk_shop"
    assert settings.debug is True
    monkeypatch.delenv("SHOP_DEBUG")
    message = _production_error(load_settings(ShopOnly))
    assert "SHOP_SECRET_KEY is not set" in message
    assert "SHOP_DEBUG=1" in message
    assert env_var_name(ShopOnly, "secret_key") == "SHOP_SECRET_KEY"
    assert env_var_name(Settings, "hsts_seconds") == "TRELLIS_HSTS_SECONDS"


def test_subclass_nested_model_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    class Database(BaseModel):
        url: str = "sqlite:///db.sqlite3"
        pool_size: int = 5

    class AppSettings(Settings):
        database: Database = Database()

    monkeypatch.setenv("TRELLIS_DATABASE__URL", "postgresql://db/shop")
    monkeypatch.setenv("TRELLIS_DATABASE__POOL_SIZE", "20")
    settings = load_settings(AppSettings)
    assert settings.database == Database(url="postgresql://db/shop", pool_size=20)


def test_subclass_bad_json_value_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class AppSettings(Settings):
        quotas: dict[str, int] = {}

    monkeypatch.setenv("TRELLIS_QUOTAS", "{not json")
    with pytest.raises(ConfigurationError, match="quotas"):
        load_settings(AppSettings)


# --- production rules ----------------------------------------------------------------------


def _production_error(settings: Settings) -> str:
    with pytest.raises(ConfigurationError) as info:
        settings.check()
    return str(info.value)


def test_production_without_secret_key_refuses_and_says_how_to_fix() -> None:
    settings = load_settings()
    assert settings.is_production
    message = _production_error(settings)
    assert "TRELLIS_SECRET_KEY is not set" in message
    assert "production" in message
    assert f"at least {SECRET_KEY_MIN_LENGTH} characters" in message
    assert "python -c 'import secrets; print(secrets.token_urlsafe(48))'" in message
    assert "TRELLIS_DEBUG=1" in message


def test_production_with_short_secret_key_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_SECRET_KEY", "hunter2")
    message = _production_error(load_settings())
    assert "TRELLIS_SECRET_KEY is only 7 characters long" in message
    assert "hunter2" not in message


def test_empty_secret_key_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_SECRET_KEY", "")
    settings = load_settings()
    assert settings.secret_key is None
    assert "TRELLIS_SECRET_KEY is not set" in _production_error(settings)


def test_production_with_good_secret_key_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_SECRET_KEY", GOOD_KEY)
    settings = load_settings()
    assert settings.check() is settings
    assert settings.effective_secret_key() == GOOD_KEY


def test_debug_without_secret_key_passes_with_a_per_process_key() -> None:
    settings = load_settings(debug=True)
    assert not settings.is_production
    assert settings.check() is settings
    key = settings.effective_secret_key()
    assert len(key) >= SECRET_KEY_MIN_LENGTH
    # The same key for every Settings in this process, so all apps in it agree.
    assert load_settings(debug=True).effective_secret_key() == key


def test_debug_uses_the_configured_key_even_if_short() -> None:
    assert load_settings(debug=True, secret_key="dev").effective_secret_key() == "dev"


def test_effective_secret_key_refuses_in_production() -> None:
    with pytest.raises(ConfigurationError, match="TRELLIS_SECRET_KEY is not set"):
        load_settings().effective_secret_key()


def test_debug_key_is_new_in_every_process() -> None:
    code = (
        "from trellis.config import load_settings; "
        "print(load_settings(debug=True).effective_secret_key())"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(keys) == 2


# --- errors --------------------------------------------------------------------------------


def test_invalid_environment_value_names_variable_and_expectation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRELLIS_MAX_BODY_SIZE", "abc")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "max_body_size = 'abc'" in message
    assert "environment variable TRELLIS_MAX_BODY_SIZE" in message
    assert "expected a size in bytes" in message


def test_invalid_values_report_every_problem_and_its_source(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRELLIS_MAX_HEADERS", "many")
    write(isolated / ".env", "TRELLIS_LOG_LEVEL=loud\n")
    write(isolated / "trellis.toml", "server_port = 99999\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(thread_pool_size=0)
    message = str(info.value)
    assert "(4 problems)" in message
    assert re.search(
        r"max_headers = 'many' \(from environment variable TRELLIS_MAX_HEADERS\)"
        r": Input should be a valid integer",
        message,
    )
    assert "log_level = 'LOUD' (from TRELLIS_LOG_LEVEL in .env)" in message
    assert "server_port = 99999 (from server_port in trellis.toml)" in message
    assert "less than or equal to 65535" in message
    assert "thread_pool_size = 0 (from a keyword argument)" in message


def test_invalid_value_from_pyproject_names_the_table(isolated: Path) -> None:
    write(isolated / "pyproject.toml", '[tool.trellis]\nmax_headers = "lots"\n')
    with pytest.raises(ConfigurationError, match=r"in \[tool\.trellis\] of .*pyproject\.toml"):
        load_settings()


def test_secret_values_are_not_echoed_in_errors(isolated: Path) -> None:
    write(isolated / "trellis.toml", "secret_key = 123456789012345678901234567890123\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "secret_key = '**********'" in message
    assert "123456789" not in message


def test_unknown_toml_key_is_refused_with_a_suggestion(isolated: Path) -> None:
    write(isolated / "trellis.toml", "debgu = true\n")
    with pytest.raises(
        ConfigurationError, match=r"Unknown setting 'debgu' in trellis\.toml.*'debug'"
    ):
        load_settings()


def test_unknown_pyproject_key_is_refused(isolated: Path) -> None:
    write(isolated / "pyproject.toml", "[tool.trellis]\nserver_prot = 1\n")
    with pytest.raises(ConfigurationError, match=r"Unknown setting 'server_prot'.*'server_port'"):
        load_settings()


def test_invalid_toml_names_the_file(isolated: Path) -> None:
    write(isolated / "trellis.toml", "debug = \n")
    with pytest.raises(ConfigurationError, match=r"trellis\.toml is not valid TOML"):
        load_settings()


def test_unknown_keyword_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"Unknown setting 'degub'.*'debug'"):
        load_settings(degub=True)
    with pytest.raises(TypeError, match="Unknown setting 'degub'"):
        Settings(degub=True)


def test_subclass_fields_are_known_to_the_toml_check(isolated: Path) -> None:
    write(isolated / "trellis.toml", 'stripe_key = "sk_toml"\n')
    assert load_settings(ShopSettings).stripe_key == "sk_toml"
    with pytest.raises(ConfigurationError, match="Unknown setting 'stripe_key'"):
        load_settings()


# --- import cost and docs ------------------------------------------------------------------


def test_module_imports_only_light_dependencies() -> None:
    """At import time config.py needs only the stdlib, pydantic(-settings) and exceptions.

    Imports inside functions run only on error paths or during validation, so they are not
    counted; module-level ones (including under ``if TYPE_CHECKING``) are.
    """
    import ast

    import trellis.config

    tree = ast.parse(Path(trellis.config.__file__).read_text(encoding="utf-8"))
    statements = [
        n for stmt in tree.body for n in (stmt.body if isinstance(stmt, ast.If) else [stmt])
    ]
    names: list[str] = []
    for node in statements:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    assert "pydantic_settings" in names  # the walk does see the imports
    allowed = set(sys.stdlib_module_names) | {"__future__", "pydantic", "pydantic_settings"}
    for name in names:
        assert name.split(".")[0] in allowed or name == "trellis.exceptions", name


def test_docs_python_examples_run(isolated: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOCS_PAGE.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/config.md has no Python examples"
    for block in blocks:
        # dont_inherit: this module's `from __future__ import annotations` must not leak in.
        code = compile(block, str(DOCS_PAGE), "exec", dont_inherit=True)
        exec(code, {"__name__": "docs_example"})
