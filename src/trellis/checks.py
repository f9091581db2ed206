"""Deployment checks: settings and plugins that are unsafe in production.

``trellis check --deploy`` prints what ``deploy_problems(app)`` finds: first the built-in checks of
the settings (debug mode, the secret key, allowed hosts, cookies, CSRF, security headers, proxies,
logging), then the problems each installed plugin reports from its ``deploy_checks(app)`` method.
Every problem has a stable id (``security.E001``), listed with its fix in the documentation, so
a deployment script can ignore one it has judged harmless (``--ignore security.W009``).

A plugin adds checks of its own by defining ``deploy_checks``:

Example:
    ```python
    from trellis import App
    from trellis.checks import DeployProblem, deploy_problems


    class Mailer:
        def __init__(self, host: str) -> None:
            self.host = host

        def setup(self, app: App) -> None:
            pass

        def deploy_checks(self, app: App) -> list[DeployProblem]:
            if self.host == "localhost":
                return [
                    DeployProblem(
                        id="mailer.W001",
                        message="Mail is sent through localhost.",
                        fix="Pass the SMTP relay to Mailer(host=...).",
                    )
                ]
            return []


    app = App(debug=False, secret_key="k3Jx9-Q2vLr8TzWm5NpYd4HsBcF7gUaE")
    app.install(Mailer("localhost"))
    assert "mailer.W001" in [problem.id for problem in deploy_problems(app)]
    ```
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from trellis.config import SECRET_KEY_MIN_LENGTH, env_var_name

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.config import Settings

__all__ = ["DeployProblem", "SupportsDeployChecks", "deploy_problems", "settings_problems"]

Level = Literal["error", "warning"]

#: Fewest different characters a production secret key may have.
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 8

# Pieces of the placeholder keys found in tutorials, templates and generated test files.
_PLACEHOLDER_KEY_MARKERS = (
    "changeme",
    "change-me",
    "change_me",
    "changethis",
    "insecure",
    "not-for-production",
    "notforproduction",
    "placeholder",
    "your-secret",
    "your_secret",
    "yoursecret",
    "replace-me",
    "replace_me",
    "example",
    "dummy",
)

_SECRET_KEY_RECIPE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


@dataclass(frozen=True, slots=True)
class DeployProblem:
    """One thing that makes an application unsafe or unfit to run in production.

    Attributes:
        id: A stable identifier, ``<area>.<E or W><number>`` (``security.E001``), documented with
            its fix; ``trellis check --deploy --ignore ID`` skips it.
        message: What is wrong and why it matters, in a sentence or two. Never a secret value.
        fix: What to do about it, naming the environment variable to set when there is one.
        level: ``"error"`` for what must be fixed before deploying, ``"warning"`` for what
            usually should be.

    Raises:
        ValueError: ``level`` is neither ``"error"`` nor ``"warning"``, or ``id`` is empty.
    """

    id: str
    message: str
    fix: str
    level: Level = "warning"

    def __post_init__(self) -> None:
        if self.level not in ("error", "warning"):
            raise ValueError(
                f"DeployProblem {self.id!r}: level must be 'error' or 'warning', not {self.level!r}"
            )
        if not self.id:
            raise ValueError("DeployProblem needs an id, such as 'myplugin.W001'")

    @property
    def is_error(self) -> bool:
        """True for a problem at level ``"error"``."""
        return self.level == "error"

    def as_dict(self) -> dict[str, str]:
        """The problem as a JSON-able mapping: ``id``, ``level``, ``message`` and ``fix``."""
        return {"id": self.id, "level": self.level, "message": self.message, "fix": self.fix}


@runtime_checkable
class SupportsDeployChecks(Protocol):
    """A plugin that reports its own deployment problems to ``trellis check --deploy``."""

    def deploy_checks(self, app: App) -> Iterable[DeployProblem]:
        """Return the problems this plugin sees in ``app``'s production configuration."""
        ...


def deploy_problems(app: App) -> list[DeployProblem]:
    """Return what makes ``app`` unsafe to run in production, most serious checks first.

    The built-in checks of ``app.settings`` come first (ids ``security.*``), then the problems
    of every installed plugin (``app.plugins``) that defines ``deploy_checks(app)``, in the
    order the plugins were installed. A plugin whose ``deploy_checks`` raises, or returns
    something other than ``DeployProblem`` objects, is reported as problem ``checks.E001``
    rather than hiding the other results.

    The checks only read settings and plugins; call ``app.build()`` first to also catch
    mistakes in routes and handlers, as ``trellis check --deploy`` does.

    Args:
        app: The application, configured as it will be in production (same ``TRELLIS_*``
            environment variables).

    Returns:
        The problems found; an empty list when there are none.
    """
    problems = settings_problems(app.settings)
    for plugin in app.plugins:
        problems.extend(_plugin_problems(plugin, app))
    return problems


def settings_problems(settings: Settings) -> list[DeployProblem]:
    """Return the built-in deployment problems of ``settings`` (the ``security.*`` ids).

    Args:
        settings: The settings to judge as production settings, whatever their ``debug``.
    """
    cls = type(settings)

    def env(name: str) -> str:
        return env_var_name(cls, name)

    problems: list[DeployProblem] = []
    add = problems.append

    if settings.debug:
        add(
            DeployProblem(
                "security.E001",
                "Debug mode is on: error pages show tracebacks, source code and local variables "
                "to every visitor, a missing secret key is replaced by a random one, and any Host "
                "is accepted.",
                f"Unset {env('debug')} or set {env('debug')}=0.",
                "error",
            )
        )

    key_problem = _secret_key_issue(settings)
    if key_problem is not None:
        add(
            DeployProblem(
                "security.E002",
                f"{key_problem}: it signs sessions, CSRF tokens and reset links, so anyone who "
                "can guess it can forge them.",
                f"Set {env('secret_key')} to a random string of at least {SECRET_KEY_MIN_LENGTH} "
                f"characters, e.g. the output of {_SECRET_KEY_RECIPE}, kept out of version "
                "control and the same for every process of the deployment.",
                "error",
            )
        )

    hosts = settings.allowed_hosts
    hosts_fix = (
        f"Set {env('allowed_hosts')} to the site's host names, such as "
        f"{env('allowed_hosts')}=example.com,.example.com (a leading dot also matches subdomains)."
    )
    if "*" in hosts:
        add(
            DeployProblem(
                "security.W003",
                'allowed_hosts contains "*": any Host header is accepted, so links the app '
                "builds from it (redirects, password-reset e-mails) can point to an attacker's "
                "site.",
                hosts_fix,
            )
        )
    elif not hosts:
        add(
            DeployProblem(
                "security.W003",
                "allowed_hosts is empty: in production the app then answers only to localhost, "
                "127.0.0.1 and [::1], and every other Host gets 400 Bad Request.",
                hosts_fix,
            )
        )

    sessions = settings.sessions
    secure = settings.session_cookie_secure
    samesite = settings.session_cookie_samesite
    if sessions and secure is False:
        add(
            DeployProblem(
                "security.W004",
                "session_cookie_secure is off: browsers send the session cookie over plain HTTP "
                "too, where anyone on the network can steal the session.",
                f"Unset {env('session_cookie_secure')} (the cookie is then Secure on HTTPS "
                f"requests) or set {env('session_cookie_secure')}=1.",
            )
        )
    if sessions and samesite == "none" and secure is False:
        add(
            DeployProblem(
                "security.E005",
                "session_cookie_samesite is none but session_cookie_secure is off: browsers "
                "refuse a SameSite=None cookie without Secure, so sessions do not work.",
                f"Unset {env('session_cookie_secure')} or set {env('session_cookie_secure')}=1, "
                f"or set {env('session_cookie_samesite')}=lax unless the site is embedded in "
                "other sites.",
                "error",
            )
        )

    if settings.hsts_seconds <= 0:
        add(
            DeployProblem(
                "security.W006",
                "hsts_seconds is 0: no Strict-Transport-Security header is sent, so a visitor's "
                "first request over http:// can be intercepted and the site impersonated.",
                f"Once the site is served over HTTPS only, set {env('hsts_seconds')}=31536000 "
                "(start with 3600 and raise it: browsers remember the policy).",
            )
        )

    if sessions and not settings.csrf:
        add(
            DeployProblem(
                "security.W007",
                "csrf is off: another site can make a logged-in visitor's browser post forms to "
                "this app (cross-site request forgery).",
                f"Unset {env('csrf')} or set {env('csrf')}=1; exempt single routes (webhooks) "
                "with csrf=False on the route instead.",
            )
        )

    headers = settings.security_headers
    if not headers:
        add(
            DeployProblem(
                "security.W008",
                "security_headers is off: responses carry no X-Frame-Options, "
                "X-Content-Type-Options, Referrer-Policy, Content-Security-Policy or HSTS, so "
                "pages can be framed (clickjacking) and content types sniffed.",
                f"Unset {env('security_headers')} or set {env('security_headers')}=1.",
            )
        )

    if not settings.content_security_policy:
        add(
            DeployProblem(
                "security.W009",
                "content_security_policy is not set: without a Content-Security-Policy, any "
                "script injected into a page (cross-site scripting) runs.",
                f"Set {env('content_security_policy')}, e.g. "
                f"{env('content_security_policy')}=\"default-src 'self'\"; an API that serves no "
                "HTML can skip this check with --ignore security.W009.",
            )
        )

    if settings.log_level == "DEBUG":
        add(
            DeployProblem(
                "security.W010",
                "log_level is DEBUG: debug logs can hold request data, personal data and "
                "secrets, and cost time on every request.",
                f"Set {env('log_level')}=INFO (or unset it).",
            )
        )

    wide_open = [proxy for proxy in settings.trusted_proxies if _trusts_everyone(proxy)]
    if wide_open:
        add(
            DeployProblem(
                "security.W011",
                f"trusted_proxies contains {', '.join(wide_open)}: X-Forwarded-For and "
                "X-Forwarded-Proto are believed from every peer, so any client can fake its IP "
                "address and the request scheme.",
                f"Set {env('trusted_proxies')} to the addresses of your reverse proxies, e.g. "
                f"{env('trusted_proxies')}=10.0.0.5 or a network such as 10.0.0.0/24.",
            )
        )

    if settings.database_echo:
        add(
            DeployProblem(
                "security.W012",
                "database_echo is on: every SQL statement is logged, with the data it reads "
                "and writes.",
                f"Unset {env('database_echo')} or set {env('database_echo')}=0.",
            )
        )
    return problems


def _secret_key_issue(settings: Settings) -> str | None:
    """Describe what is wrong with the secret key, without ever showing it; None when fine."""
    cls = type(settings)
    variable = env_var_name(cls, "secret_key")
    secret = settings.secret_key
    if secret is None:
        return f"{variable} is not set"
    key = secret.get_secret_value()
    # The start-up rule of Settings.check() first, so both always agree.
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"{variable} is only {len(key)} characters long (fewer than {SECRET_KEY_MIN_LENGTH})"
    folded = key.lower()
    if any(marker in folded for marker in _PLACEHOLDER_KEY_MARKERS):
        return f"{variable} looks like a placeholder copied from an example or a test"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        unique = len(set(key))
        return (
            f"{variable} uses only {unique} different character{'' if unique == 1 else 's'}, "
            "so it is easy to guess"
        )
    return None


def _trusts_everyone(proxy: str) -> bool:
    """Whether a trusted_proxies entry matches every address (``*``, ``0.0.0.0/0``, ``::/0``)."""
    if proxy.strip() == "*":
        return True
    try:
        return ipaddress.ip_network(proxy, strict=False).prefixlen == 0
    except ValueError:  # the settings validator refuses these; nothing to add here
        return False


def _plugin_problems(plugin: Any, app: App) -> list[DeployProblem]:
    check = getattr(plugin, "deploy_checks", None)
    if check is None or not callable(check):
        return []
    name = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    try:
        found = list(check(app))
    except Exception as exc:
        return [_broken_plugin(name, f"raised {type(exc).__name__}: {exc}")]
    wrong = [item for item in found if not isinstance(item, DeployProblem)]
    if wrong:
        return [
            _broken_plugin(
                name,
                f"returned {type(wrong[0]).__name__} objects; it must return DeployProblem objects",
            )
        ]
    return found


def _broken_plugin(name: str, what: str) -> DeployProblem:
    return DeployProblem(
        "checks.E001",
        f"The deploy checks of the plugin {name} could not run: deploy_checks() {what}.",
        "Fix the plugin's deploy_checks(app), or report it to the plugin's authors.",
        "error",
    )
