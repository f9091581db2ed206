"""The ``Auth`` plugin's deployment checks (``trellis check --deploy``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trellis import App
from trellis.checks import deploy_problems
from trellis.contrib.auth import Auth
from trellis.contrib.auth.oauth import GitHub, OIDCProvider
from trellis.contrib.db import Database
from trellis.contrib.mail import ConsoleEmailBackend, MemoryEmailBackend, SMTPEmailBackend


def problems(tmp_path: Path, **options: Any) -> dict[str, str]:
    """The auth battery's deployment problems; the app sends mail unless told otherwise."""
    app = App(debug=False, secret_key="k3Jx9-Q2vLr8TzWm5NpYd4HsBcF7gUaE")
    app.install(Database(f"sqlite:///{tmp_path / 'x.db'}"))
    mailer = options.pop("mailer", SMTPEmailBackend("smtp.example.com", use_starttls=True))
    if mailer is not None:
        app.install(mailer)
    app.install(Auth(**options))
    return {p.id: p.message for p in deploy_problems(app) if p.id.startswith("auth.")}


def test_a_plain_http_oauth_redirect_uri_is_a_warning(tmp_path: Path) -> None:
    plain = GitHub("id", "secret", redirect_uri="HTTP://example.com/auth/oauth/github/callback")
    corp = OIDCProvider(
        "corp",
        "id",
        "secret",
        "https://sso.example.com",
        redirect_uri="https://example.com/auth/oauth/corp/callback",
    )
    found = problems(tmp_path, oauth=[plain, corp])
    assert "The OAuth redirect_uri of github is plain http://" in found["auth.W002"]
    # https, or built from the request (https behind a trusted proxy): nothing to say
    implicit = GitHub("id", "secret")
    assert problems(tmp_path, oauth=[corp, implicit]) == {}


def test_plain_http_reset_links_are_a_warning(tmp_path: Path) -> None:
    found = problems(tmp_path, site_url="http://example.com")
    assert found["auth.W003"].startswith("Auth(site_url) is plain http://")
    found = problems(
        tmp_path,
        site_url="http://example.com",
        password_reset_url="http://app.example.com/reset/{token}",
    )
    assert "Auth(site_url, password_reset_url)" in found["auth.W003"]
    assert problems(tmp_path, site_url="https://example.com") == {}


def test_reset_emails_printed_to_the_console_are_a_warning(tmp_path: Path) -> None:
    found = problems(tmp_path, mailer=ConsoleEmailBackend())
    assert "go to the ConsoleEmailBackend, which prints them" in found["auth.W004"]
    assert "auth.W004" in problems(tmp_path, mailer=None, email=ConsoleEmailBackend())
    # Auth's own backend wins over the app's
    assert problems(tmp_path, mailer=ConsoleEmailBackend(), email=MemoryEmailBackend()) == {}
    # without the pages and the API there are no reset e-mails to send
    assert problems(tmp_path, mailer=ConsoleEmailBackend(), pages=False, api=False) == {}
    # none installed: production sends through localhost:25, nothing is printed
    assert problems(tmp_path, mailer=None) == {}
