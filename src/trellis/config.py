"""Typed settings read from keyword arguments, ``TRELLIS_*`` variables, ``.env`` and TOML.

``Settings`` is a pydantic-settings model. Each value comes from the first of these that has it:

1. keyword arguments (``load_settings(debug=True)`` or ``Settings(debug=True)``),
2. environment variables (``TRELLIS_DEBUG=1``),
3. the ``.env`` file,
4. files in ``model_config["secrets_dir"]`` (off unless configured),
5. ``trellis.toml``,
6. the ``[tool.trellis]`` table of ``pyproject.toml``,
7. the field default.

Applications add their own settings by subclassing ``Settings``. ``load_settings`` turns every
invalid value into a ``ConfigurationError`` that names the variable, where it came from and what
was expected; ``Settings.check`` refuses a production start without a proper secret key.

Example:
    ```python
    from trellis.config import Settings, load_settings


    class MySettings(Settings):
        stripe_key: str = ""


    settings = load_settings(MySettings, debug=True)
    assert settings.debug and settings["stripe_key"] == ""
    ```
"""

from __future__ import annotations

import re
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, get_args, overload

from pydantic import (
    BeforeValidator,
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Self

    from pydantic.fields import FieldInfo

__all__ = [
    "SECRET_KEY_MIN_LENGTH",
    "ByteCount",
    "CommaList",
    "Settings",
    "env_var_name",
    "load_settings",
]

KiB = 1024
MiB = 1024 * KiB

SECRET_KEY_MIN_LENGTH = 32
"""Shortest secret key accepted in production, in characters."""

_SECRET_KEY_RECIPE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"

_T = TypeVar("_T")
_S = TypeVar("_S", bound="Settings")


def _split_commas(value: Any) -> Any:
    """Read ``"a, b"`` as ``["a", "b"]`` and ``'["a", "b"]'`` as JSON; pass other values on."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        import json  # only needed when a list is written as JSON

        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


CommaList = Annotated[list[_T], NoDecode, BeforeValidator(_split_commas)]
"""A list that environment variables may write as ``a,b,c`` as well as JSON ``["a","b","c"]``.

Use it for list settings of your own: ``admins: CommaList[str] = []``. ``NoDecode`` stops
pydantic-settings from insisting on JSON, so the comma form reaches the validator.
"""

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": KiB,
    "mib": MiB,
    "gib": 1024 * MiB,
    "tib": 1024 * 1024 * MiB,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)")


def _parse_size(value: Any) -> Any:
    """Read ``"4MiB"``, ``"512 KB"`` or ``"4194304"`` as a number of bytes."""
    if not isinstance(value, str):
        return value
    match = _SIZE_RE.fullmatch(value.strip())
    unit = match[2].lower() if match else ""
    if match is None or unit not in _SIZE_UNITS or ("." in match[1] and unit in ("", "b")):
        raise ValueError(
            "expected a size in bytes: a whole number such as 4194304, or a number and a unit "
            "such as 4MiB, 512KB or 1.5GiB"
        )
    return int(float(match[1]) * _SIZE_UNITS[unit])


ByteCount = Annotated[int, BeforeValidator(_parse_size)]
"""A size in bytes that may also be written with a unit: ``4MiB``, ``512KB``, ``1GiB``."""


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _empty_is_none(value: Any) -> Any:
    # TRELLIS_X= (set but empty) means "not set" for optional settings.
    return None if isinstance(value, str) and not value.strip() else value


class _Unset:
    """Marks a ``load_settings`` argument that was not given."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()


class _LoadContext:
    """What ``load_settings`` tells ``settings_customise_sources`` and learns back from it."""

    __slots__ = ("sources", "toml_file")

    def __init__(self, toml_file: str | Path | _Unset | None) -> None:
        self.toml_file = toml_file
        self.sources: tuple[PydanticBaseSettingsSource, ...] = ()


# A context variable rather than a class attribute: settings_customise_sources is a classmethod
# that pydantic-settings calls without our arguments, and concurrent loads must not see each other.
_load_context: ContextVar[_LoadContext | None] = ContextVar("trellis_load_settings", default=None)

_dev_secret_key: str | None = None
_dev_secret_key_lock = threading.Lock()


def _development_secret_key() -> str:
    """Return this process's random secret key for debug mode, made on first use."""
    global _dev_secret_key  # one key per process, shared by every Settings
    with _dev_secret_key_lock:
        if _dev_secret_key is None:
            import secrets  # only debug mode without a key needs it

            _dev_secret_key = secrets.token_urlsafe(48)
        return _dev_secret_key


class Settings(BaseSettings):
    """The settings of a Trellis application.

    Every field can be set with a ``TRELLIS_``-prefixed environment variable (``TRELLIS_DEBUG=1``),
    in ``.env``, in ``trellis.toml`` or in ``[tool.trellis]`` of ``pyproject.toml``; keyword
    arguments win over all of them. Values are read by attribute (``settings.debug``) or by key
    (``settings["debug"]``). Settings are frozen: the application compiles them into its routes at
    start-up, so a change made later would be silently ignored.

    Subclass it to add settings of your own; they are read the same way. Use ``load_settings``
    rather than calling the class, to get readable errors.

    Example:
        ```python
        from pathlib import Path

        from trellis.config import Settings, load_settings


        class MySettings(Settings):
            stripe_key: str  # from TRELLIS_STRIPE_KEY, .env or trellis.toml


        Path(".env").write_text("TRELLIS_STRIPE_KEY=sk_test_123")
        assert load_settings(MySettings).stripe_key == "sk_test_123"
        ```
    """

    model_config = SettingsConfigDict(
        env_prefix="TRELLIS_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        toml_file="trellis.toml",
        pyproject_toml_table_header=("tool", "trellis"),
        # .env files are shared with other tools (docker compose, database URLs ...), so unknown
        # names there are ignored; unknown keys in TOML and in keyword arguments are refused.
        extra="ignore",
        frozen=True,
    )

    # --- mode and secrets -------------------------------------------------------------------
    debug: bool = Field(
        default=False,
        description=(
            "Development mode: debug pages with tracebacks, a generated secret key, relaxed "
            "start-up checks. Never turn it on in production."
        ),
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Signs sessions, CSRF tokens and other signed values. Required in production, at "
            f"least {SECRET_KEY_MIN_LENGTH} characters."
        ),
    )

    # --- hosts and proxies ------------------------------------------------------------------
    allowed_hosts: CommaList[str] = Field(
        default_factory=list,
        description=(
            "Host names the application answers to, matched against the Host header. "
            '"example.com" matches exactly, ".example.com" also matches subdomains, "*" matches '
            "any host. Empty: any host in debug mode; in production only localhost, 127.0.0.1, "
            "[::1] and testserver (the test client)."
        ),
    )
    trusted_proxies: CommaList[str] = Field(
        default_factory=list,
        description=(
            "IP addresses or networks (CIDR) of reverse proxies whose X-Forwarded-* headers are "
            'believed. "*" trusts every peer: only safe when nothing reaches the app directly.'
        ),
    )

    # --- request limits ---------------------------------------------------------------------
    max_body_size: ByteCount = Field(
        default=4 * MiB,
        ge=1,
        description=(
            "Largest request body read into memory (request.body(), JSON, urlencoded forms), "
            "in bytes; larger bodies get 413. Multipart uploads have their own limits below."
        ),
    )
    max_json_size: ByteCount = Field(
        default=4 * MiB,
        ge=1,
        description="Largest JSON request body, in bytes; applies on top of max_body_size.",
    )
    max_form_fields: int = Field(
        default=1000, ge=1, description="Most fields in one form (urlencoded or multipart)."
    )
    max_form_parts: int = Field(
        default=1000, ge=1, description="Most parts in one multipart body, files included."
    )
    max_file_size: ByteCount = Field(
        default=100 * MiB, ge=1, description="Largest uploaded file, in bytes; larger gets 413."
    )
    form_spool_threshold: ByteCount = Field(
        default=1 * MiB,
        ge=0,
        description="Uploaded files larger than this, in bytes, are spooled to a temporary file.",
    )
    max_form_field_size: ByteCount = Field(
        default=1 * MiB,
        ge=1,
        description="Largest text field of a form, in bytes; larger gets 413.",
    )
    max_form_memory: ByteCount = Field(
        default=8 * MiB,
        ge=1,
        description="All text fields of one form together, in bytes; more gets 413.",
    )
    max_upload_size: ByteCount = Field(
        default=200 * MiB,
        ge=1,
        description=(
            "Largest multipart (file upload) body, in bytes, replacing max_body_size for it; "
            "larger gets 413. Bounds the disk one request can fill."
        ),
    )
    max_headers: int = Field(default=100, ge=1, description="Most request headers; more gets 431.")
    max_websocket_message_size: ByteCount = Field(
        default=1 * MiB,
        ge=1,
        description="Largest websocket message, in bytes; larger closes the connection (1009).",
    )

    # --- execution --------------------------------------------------------------------------
    thread_pool_size: int = Field(
        default=40,
        ge=1,
        description="Threads that run synchronous handlers, so they never block the event loop.",
    )

    # --- logging ----------------------------------------------------------------------------
    log_format: Annotated[Literal["text", "json"], BeforeValidator(_lower)] = Field(
        default="text", description='"text" for people, "json" (one object per line) for machines.'
    )
    log_level: Annotated[
        Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"], BeforeValidator(_upper)
    ] = Field(default="INFO", description="Lowest level logged; case does not matter.")
    access_log: bool = Field(default=True, description="Log one line per request.")
    request_id: bool = Field(
        default=True,
        description=(
            "Give each request an id: on every log line of the request and on error pages "
            "(request_id_header also sends it back in X-Request-ID)."
        ),
    )
    request_id_header: bool = Field(
        default=False,
        description=(
            "Send each response's request id back in X-Request-ID (off: the header costs the "
            "server about 2 us per response)."
        ),
    )
    trust_request_id: bool = Field(
        default=True,
        description=(
            "Keep a valid incoming X-Request-ID instead of making a new id; turn off unless a "
            "proxy of yours sets or cleans the header."
        ),
    )

    # --- files ------------------------------------------------------------------------------
    templates_dir: Path | None = Field(
        default=None, description="Directory of Jinja2 templates; None disables templating."
    )
    static_dir: Path | None = Field(
        default=None, description="Directory served under /static; None serves nothing."
    )

    # --- data (read by the database battery, trellis.contrib.db) -----------------------------
    database_url: str = Field(
        default="sqlite:///app.db",
        description="The main database: sqlite:///app.db, postgresql://user@host/db, mysql://...",
    )
    database_binds: dict[str, str] = Field(
        default_factory=dict,
        description='More databases by name, as JSON: {"analytics": "postgresql://..."}.',
    )
    database_replicas: dict[str, str] = Field(
        default_factory=dict,
        description='Read replicas by database name, as JSON: {"default": "postgresql://..."}.',
    )
    database_echo: bool = Field(default=False, description="Log every SQL statement.")
    database_pool_size: int | None = Field(
        default=None, ge=1, description="Connections kept open per database and process."
    )
    database_max_overflow: int | None = Field(
        default=None, ge=0, description="Connections opened beyond the pool under load."
    )
    database_pool_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for a free connection before failing."
    )
    database_pool_recycle: int | None = Field(
        default=None, description="Seconds after which a connection is replaced (MariaDB: 3600)."
    )
    database_connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds the start-up check waits for each database."
    )

    # --- sessions, CSRF and security headers ------------------------------------------------
    sessions: bool = Field(
        default=True,
        description=(
            "request.session: data kept per visitor in a signed cookie, or on the server when "
            "app.state.session_store is set. Costs nothing for requests that do not use it."
        ),
    )
    session_cookie: str = Field(
        default="session", min_length=1, description="Name of the session cookie."
    )
    session_max_age: int = Field(
        default=14 * 24 * 3600,
        ge=1,
        description="Idle lifetime of a session, in seconds (two weeks); enforced server-side.",
    )
    session_sliding: bool = Field(
        default=True,
        description=(
            "Renew the lifetime while the session is used (at most once per tenth of "
            "session_max_age, capped at an hour); off: it expires session_max_age after it "
            "was created or rotated."
        ),
    )
    session_cookie_secure: Annotated[bool | None, BeforeValidator(_empty_is_none)] = Field(
        default=None,
        description="Secure session cookie: true, false, or empty (None) for HTTPS requests only.",
    )
    session_cookie_samesite: Annotated[
        Literal["lax", "strict", "none"], BeforeValidator(_lower)
    ] = Field(default="lax", description="SameSite of the session cookie: lax, strict or none.")
    session_cookie_domain: Annotated[str | None, BeforeValidator(_empty_is_none)] = Field(
        default=None,
        description="Domain of the session cookie (None: this host only, the safest).",
    )
    csrf: bool = Field(
        default=True,
        description=(
            "Check the CSRF token and Origin of unsafe requests (POST, PUT, PATCH, DELETE) "
            "that carry the session cookie and no Authorization header."
        ),
    )
    csrf_trusted_origins: CommaList[str] = Field(
        default_factory=list,
        description=(
            "Other origins allowed to send unsafe requests: https://app.example.com, or "
            "https://*.example.com for every subdomain."
        ),
    )
    security_headers: bool = Field(
        default=True,
        description=(
            "Add X-Content-Type-Options: nosniff, X-Frame-Options: DENY, Referrer-Policy: "
            "strict-origin-when-cross-origin and Cross-Origin-Opener-Policy: same-origin to "
            "responses that do not set them, plus the CSP and HSTS settings below."
        ),
    )
    content_security_policy: Annotated[str | None, BeforeValidator(_empty_is_none)] = Field(
        default=None,
        description="Content-Security-Policy header of every response (None: none sent).",
    )
    hsts_seconds: int = Field(
        default=0,
        ge=0,
        description=(
            "max-age of Strict-Transport-Security, sent on HTTPS responses only; 0 sends none. "
            "Browsers remember it: start small."
        ),
    )
    hsts_include_subdomains: bool = Field(
        default=False, description="Add includeSubDomains to Strict-Transport-Security."
    )
    hsts_preload: bool = Field(
        default=False,
        description="Add preload to Strict-Transport-Security (needs a year and subdomains).",
    )

    # --- development server -----------------------------------------------------------------
    server_host: str = Field(default="127.0.0.1", description="Address `trellis run` binds to.")
    server_port: int = Field(
        default=8000, ge=0, le=65535, description="Port `trellis run` listens on (0: any free)."
    )
    server_graceful_timeout: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Seconds `trellis run` gives requests in flight to finish on SIGTERM or Ctrl+C "
            "before it cuts them; websockets are closed at once (code 1012)."
        ),
    )

    # --- validators -------------------------------------------------------------------------
    @field_validator("secret_key", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: Any) -> Any:
        # TRELLIS_SECRET_KEY= (set but empty) means "no key", not a zero-length key.
        return None if value == "" else value

    @field_validator("allowed_hosts", mode="after")
    @classmethod
    def _check_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if "/" in host or not host:
                raise ValueError(
                    f"{host!r} is not a host name; write only the name, such as example.com, "
                    "without scheme or path"
                )
        return [host.lower() for host in hosts]

    @field_validator("session_cookie", mode="after")
    @classmethod
    def _check_cookie_name(cls, name: str) -> str:
        if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
            raise ValueError(
                f"{name!r} is not a valid cookie name; use letters, digits and - _ . only"
            )
        return name

    @field_validator("csrf_trusted_origins", mode="after")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        from trellis.csrf import TrustedOrigins  # only validation needs it

        TrustedOrigins(origins)  # raises ValueError naming the bad entry
        return origins

    @field_validator("hsts_include_subdomains", "hsts_preload", mode="after")
    @classmethod
    def _check_hsts(cls, value: bool, info: ValidationInfo) -> bool:
        seconds = info.data.get("hsts_seconds")
        if value and not seconds:
            raise ValueError(
                "needs hsts_seconds > 0 (the max-age of Strict-Transport-Security), e.g."
                " hsts_seconds=31536000"
            )
        if (
            value
            and info.field_name == "hsts_preload"
            and (not info.data.get("hsts_include_subdomains") or (seconds or 0) < 31536000)
        ):
            raise ValueError(
                "needs hsts_include_subdomains=True and hsts_seconds >= 31536000 (one year), as"
                " the browsers' preload list requires"
            )
        return value

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _check_proxies(cls, proxies: list[str]) -> list[str]:
        import ipaddress  # only validation needs it

        for proxy in proxies:
            if proxy == "*":
                continue
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"{proxy!r} is not an IP address or network; expected entries such as "
                    '10.0.0.1, 10.0.0.0/8, ::1 or "*"'
                ) from None
        return proxies

    # --- sources ----------------------------------------------------------------------------
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read, highest priority first: arguments, environment, .env, secrets, TOML, pyproject.

        Args:
            settings_cls: The settings class being loaded.
            init_settings: Keyword arguments.
            env_settings: ``TRELLIS_*`` environment variables.
            dotenv_settings: The ``.env`` file.
            file_secret_settings: Files in ``model_config["secrets_dir"]``, if set.

        Returns:
            The sources in priority order.
        """
        if isinstance(init_settings, InitSettingsSource):
            _refuse_unknown_names(
                settings_cls, init_settings.init_kwargs, "passed as a keyword argument"
            )
        context = _load_context.get()
        toml_file: Any = settings_cls.model_config.get("toml_file")
        if context is not None and not isinstance(context.toml_file, _Unset):
            toml_file = context.toml_file
        sources: tuple[PydanticBaseSettingsSource, ...] = (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            _TomlSource(settings_cls, toml_file=toml_file),
            _PyprojectSource(settings_cls),
        )
        if context is not None:
            context.sources = sources
        return sources

    # --- access -----------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        """Return the setting ``key``: ``settings["debug"]`` is ``settings.debug``.

        Raises:
            KeyError: There is no setting called ``key``; the message names close matches.
        """
        if key not in type(self).model_fields:
            raise KeyError(
                f"{type(self).__name__} has no setting {key!r}"
                f"{_did_you_mean(key, type(self).model_fields)}"
            )
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` names a setting (declared on this class or a base)."""
        return key in type(self).model_fields

    def get(self, key: str, default: Any = None) -> Any:
        """Return the setting ``key``, or ``default`` if there is no such setting.

        Args:
            key: The setting's field name, such as ``"debug"``.
            default: What to return for an unknown name.
        """
        return getattr(self, key) if key in type(self).model_fields else default

    def replace(self, **changes: Any) -> Self:
        """Return a copy with some settings changed, validated like every other value.

        Unlike ``model_copy(update=...)``, values are parsed and checked (``"16MiB"`` becomes
        ``16777216``, ``-1`` is refused), and no source is read again.

        Args:
            **changes: New values by setting name.

        Raises:
            TypeError: A name is not a setting.
            ConfigurationError: A value is invalid; the message names it and what was expected.
        """
        cls = type(self)
        _refuse_unknown_names(cls, changes, "passed as a keyword argument")
        values = {name: getattr(self, name) for name in cls.model_fields}
        try:
            # model_validate skips BaseSettings.__init__, so the environment and files stay unread.
            return cls.model_validate({**values, **changes})
        except ValidationError as exc:
            message = _describe_validation_error(cls, exc, (), "an argument to replace()")
            raise ConfigurationError(message) from None

    # --- production rules -------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        """True unless ``debug`` is on: production rules apply."""
        return not self.debug

    def check(self) -> Self:
        """Refuse to start in production without a proper secret key.

        ``App`` calls this at start-up. In debug mode everything passes (a missing secret key is
        replaced by a per-process random key, see ``effective_secret_key``).

        Returns:
            The settings themselves, so ``load_settings().check()`` reads naturally.

        Raises:
            ConfigurationError: ``debug`` is off and ``secret_key`` is missing or shorter than
                ``SECRET_KEY_MIN_LENGTH`` characters; the message says how to fix it.
        """
        if self.is_production:
            problem = _secret_key_problem(type(self), self.secret_key)
            if problem is not None:
                raise ConfigurationError(problem)
        return self

    def effective_secret_key(self) -> str:
        """Return the secret key to sign with.

        This is ``secret_key`` when set. In debug mode without one it is a random key made once
        per process: sessions and signed values then do not survive a restart, and workers in
        different processes do not accept each other's signatures.

        Raises:
            ConfigurationError: In production, for the same reasons as ``check``.
        """
        self.check()
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _development_secret_key()


class _TomlSource(TomlConfigSettingsSource):
    """``trellis.toml``: unreadable files and unknown keys are reported, not ignored."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return _read_toml(super()._read_file, file_path)

    def __call__(self) -> dict[str, Any]:
        _refuse_unknown_names(self.settings_cls, self.toml_data, f"in {self.toml_file_path}")
        return super().__call__()


class _PyprojectSource(PyprojectTomlConfigSettingsSource):
    """``[tool.trellis]`` in ``pyproject.toml``, with the same strictness as ``trellis.toml``."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return _read_toml(super()._read_file, file_path)

    def __call__(self) -> dict[str, Any]:
        _refuse_unknown_names(
            self.settings_cls, self.toml_data, f"in [tool.trellis] of {self.toml_file_path}"
        )
        return super().__call__()


def _read_toml(read: Any, file_path: Any) -> dict[str, Any]:
    import tomllib  # pydantic-settings imports it lazily too

    try:
        data: dict[str, Any] = read(file_path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{file_path} is not valid TOML: {exc}") from exc
    return data


def _field_names(settings_cls: type[BaseSettings]) -> set[str]:
    names: set[str] = set()
    for name, field in settings_cls.model_fields.items():
        names.add(name)
        for alias in (field.alias, field.validation_alias):
            if isinstance(alias, str):
                names.add(alias)
    return names


def _refuse_unknown_names(
    settings_cls: type[BaseSettings], values: dict[str, Any], what: str
) -> None:
    """Raise on names that match no field: typos must not be silently ignored."""
    known = _field_names(settings_cls)
    if not settings_cls.model_config.get("case_sensitive", False):
        known |= {name.lower() for name in known}
    for name in values:
        if name not in known:
            message = (
                f"Unknown setting {name!r} {what}{_did_you_mean(name, known)}. Remove it, or "
                f"declare it as a field on a subclass of {settings_cls.__name__}."
            )
            if what.endswith("keyword argument"):
                raise TypeError(message)
            raise ConfigurationError(message)


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    import difflib  # only error messages need it

    matches = difflib.get_close_matches(name, list(options), n=3)
    return f" (did you mean {' or '.join(repr(m) for m in matches)}?)" if matches else ""


def env_var_name(settings_cls: type[BaseSettings], field_name: str) -> str:
    """The environment variable that sets ``field_name`` of ``settings_cls``.

    ``env_var_name(Settings, "secret_key")`` is ``"TRELLIS_SECRET_KEY"``; a settings class
    with another ``env_prefix`` (or ``case_sensitive``) gets its own name. For messages that
    tell the user what to set, as ``trellis check --deploy`` does.
    """
    config = settings_cls.model_config
    name = f"{config.get('env_prefix', '')}{field_name}"
    return name if config.get("case_sensitive", False) else name.upper()


def _secret_key_problem(settings_cls: type[BaseSettings], key: SecretStr | None) -> str | None:
    variable = env_var_name(settings_cls, "secret_key")
    debug_variable = env_var_name(settings_cls, "debug")
    if key is None:
        problem = f"{variable} is not set"
    elif len(key.get_secret_value()) < SECRET_KEY_MIN_LENGTH:
        problem = f"{variable} is only {len(key.get_secret_value())} characters long"
    else:
        return None
    return (
        f"{problem}, and production mode (debug off) needs a secret key of at least "
        f"{SECRET_KEY_MIN_LENGTH} characters: it signs sessions and CSRF tokens, so a missing or "
        f"guessable key would let anyone forge them. Set {variable} to a random string of at "
        f"least {SECRET_KEY_MIN_LENGTH} characters, e.g. the output of {_SECRET_KEY_RECIPE}, "
        f"or set {debug_variable}=1 for development."
    )


# --- loading -----------------------------------------------------------------------------------


@overload
def load_settings(
    cls: None = None,
    /,
    *,
    env_file: str | Path | _Unset | None = ...,
    toml_file: str | Path | _Unset | None = ...,
    **overrides: Any,
) -> Settings: ...
@overload
def load_settings(
    cls: type[_S],
    /,
    *,
    env_file: str | Path | _Unset | None = ...,
    toml_file: str | Path | _Unset | None = ...,
    **overrides: Any,
) -> _S: ...
def load_settings(
    cls: type[Settings] | None = None,
    /,
    *,
    env_file: str | Path | _Unset | None = _UNSET,
    toml_file: str | Path | _Unset | None = _UNSET,
    **overrides: Any,
) -> Settings:
    """Load settings from every source, turning invalid values into readable errors.

    Args:
        cls: The settings class; ``Settings`` or a subclass of it.
        env_file: The dotenv file to read instead of ``model_config["env_file"]`` (``.env``);
            ``None`` reads none.
        toml_file: The TOML file to read instead of ``model_config["toml_file"]``
            (``trellis.toml``); ``None`` reads none.
        **overrides: Setting values; they win over every other source.

    Returns:
        The loaded settings. Call ``check()`` on them before serving.

    Raises:
        ConfigurationError: A value is invalid or a required setting is missing; the message
            names each setting, where its value came from (environment variable, file, argument)
            and what was expected. Also raised for an unreadable TOML file or an unknown key in
            one.
        TypeError: An override names no setting.

    Example:
        ```python
        from trellis.config import load_settings

        settings = load_settings(env_file=None, toml_file=None, debug=True)
        assert settings.is_production is False
        ```
    """
    settings_cls = Settings if cls is None else cls
    context = _LoadContext(toml_file)
    token = _load_context.set(context)
    try:
        kwargs: dict[str, Any] = dict(overrides)
        if not isinstance(env_file, _Unset):
            # Passed through **kwargs: type checkers only see the fields in a model's signature.
            kwargs["_env_file"] = env_file
        return settings_cls(**kwargs)
    except ValidationError as exc:
        raise ConfigurationError(
            _describe_validation_error(settings_cls, exc, context.sources)
        ) from None
    except SettingsError as exc:
        # pydantic-settings could not decode a JSON value (a list or model written wrongly).
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigurationError(
            f"Invalid settings for {settings_cls.__name__}: {exc}{cause}. Lists may be written "
            'as a,b,c or as JSON ["a","b","c"]; other structured values must be JSON.'
        ) from exc
    finally:
        _load_context.reset(token)


def _describe_validation_error(
    settings_cls: type[Settings],
    exc: ValidationError,
    sources: Sequence[PydanticBaseSettingsSource],
    fallback_origin: str = "the default value",
) -> str:
    errors = exc.errors(include_url=False)
    lines = [
        f"Invalid settings for {settings_cls.__name__} "
        f"({len(errors)} problem{'s' if len(errors) != 1 else ''}):"
    ]
    for error in errors:
        loc = error["loc"]
        if not loc:  # raised by a model validator, not about one field
            lines.append(f"- {error['msg']}")
            continue
        key = str(loc[0])
        field_name, field = _find_field(settings_cls, key)
        path = key + "".join(
            f"[{part!r}]" if isinstance(part, int) else f".{part}" for part in loc[1:]
        )
        if error["type"] == "missing":
            lines.append(
                f"- {path} is required but not set: set the environment variable "
                f"{env_var_name(settings_cls, field_name)}, or add {field_name} to .env or "
                "trellis.toml"
            )
            continue
        origin = _origin(settings_cls, key, sources) or fallback_origin
        shown = "'**********'" if field is not None and _is_secret(field) else repr(error["input"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"- {path} = {shown} (from {origin}): {message}")
    return "\n".join(lines)


def _find_field(settings_cls: type[Settings], key: str) -> tuple[str, FieldInfo | None]:
    """Return the field that ``key`` (a field name or alias) belongs to."""
    for name, field in settings_cls.model_fields.items():
        if key in (name, field.alias, field.validation_alias):
            return name, field
    return key, None


def _is_secret(field: FieldInfo) -> bool:
    """Whether the field holds a secret whose value must not be echoed in error messages."""
    stack: list[Any] = [field.annotation]
    while stack:
        annotation = stack.pop()
        if isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes):
            return True
        stack.extend(get_args(annotation))
    return False


def _origin(
    settings_cls: type[Settings], key: str, sources: Sequence[PydanticBaseSettingsSource]
) -> str | None:
    """Name the source that supplied ``key``: the first, in priority order, that has it."""
    for source in sources:
        try:
            found = key in source()
        except Exception:  # a source that fails here cannot be the one we want
            continue
        if not found:
            continue
        # Subclasses before their bases: DotEnv is an Env source, the TOML sources are Init ones.
        if isinstance(source, DotEnvSettingsSource):
            return f"{env_var_name(settings_cls, key)} in {_files(source.env_file)}"
        if isinstance(source, EnvSettingsSource):
            return f"environment variable {env_var_name(settings_cls, key)}"
        if isinstance(source, PyprojectTomlConfigSettingsSource):
            return f"{key} in [tool.trellis] of {source.toml_file_path}"
        if isinstance(source, TomlConfigSettingsSource):
            return f"{key} in {source.toml_file_path}"
        if isinstance(source, InitSettingsSource):
            return "a keyword argument"
        return type(source).__name__
    return None


def _files(value: Any) -> str:
    if isinstance(value, str | Path):
        return str(value)
    return ", ".join(str(item) for item in value)
