"""The login routes: ``GET {prefix}/oauth/{name}/login`` and ``GET {prefix}/oauth/{name}/callback``.

``Auth(oauth=[...])`` includes ``oauth_router(auth)``. A login goes:

1. ``/auth/oauth/github/login?next=/account`` makes a fresh ``state``, ``nonce`` and PKCE
   verifier, keeps them in the session (one pending login per provider) and redirects to
   the provider.
2. The provider sends the browser back to ``/auth/oauth/github/callback?code=...&state=...``.
   The pending login is taken out of the session (single use); a missing or different
   ``state`` is a 400. The code is exchanged for tokens (with the PKCE verifier), the ID
   token checked, the user found, linked or created (``linking.resolve_user``), signed in
   with ``login()``, and the browser sent to ``next`` (same site only).

A failure after the state check (the person cancelled at the provider, an invalid ID token,
an unverified email ...) is flashed and the browser goes back to the login page (or to
``next`` when someone is logged in); without the auth pages it is an error page with the
status (400, 403, 409, or 502 when the provider could not be reached). Never a 500.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from trellis.contrib.auth.login import login, session_user
from trellis.contrib.auth.oauth.client import OAuthLoginError, PendingLogin
from trellis.contrib.auth.oauth.linking import resolve_user
from trellis.contrib.auth.redirects import safe_next
from trellis.contrib.db.dependencies import Session
from trellis.exceptions import BadRequestError, ConfigurationError, NotFoundError
from trellis.http.request import Request
from trellis.http.response import RedirectResponse, Response
from trellis.routing.router import Router
from trellis.sessions import flash

if TYPE_CHECKING:
    from trellis.contrib.auth.oauth.providers import OAuthProvider

__all__ = ["SESSION_KEY", "oauth_router"]

log = logging.getLogger("trellis.auth.oauth")

#: The session key holding the pending logins: ``{provider name: PendingLogin.to_dict()}``.
SESSION_KEY = "_oauth"


def _providers(auth: Any) -> dict[str, OAuthProvider]:
    from trellis.contrib.auth.oauth.providers import OAuthProvider

    providers: dict[str, OAuthProvider] = {}
    configured: Sequence[Any] = getattr(auth, "oauth", ()) or ()
    for provider in configured:
        if not isinstance(provider, OAuthProvider):
            raise ConfigurationError(
                f"Auth(oauth=[...]) takes OAuthProvider objects (GitHub(...), Google(...),"
                f" OIDCProvider(...)), got {provider!r}"
            )
        if provider.name in providers:
            raise ConfigurationError(
                f"Auth(oauth=[...]): two providers are named {provider.name!r}; give one"
                " another name (name='...')"
            )
        providers[provider.name] = provider
    return providers


def _check_cookie_policy(auth: Any) -> None:
    settings = getattr(getattr(auth, "app", None), "settings", None)
    if getattr(settings, "session_cookie_samesite", "lax") == "strict":
        raise ConfigurationError(
            "Auth(oauth=[...]) needs the session cookie sent when the provider redirects the"
            " browser back (a cross-site navigation), which SameSite=Strict forbids: set"
            " session_cookie_samesite to 'lax' (the default)"
        )


def _pending_logins(request: Request) -> dict[str, Any]:
    stored = request.session.get(SESSION_KEY)
    return dict(stored) if isinstance(stored, dict) else {}


def _live(stored: Any) -> bool:
    pending = PendingLogin.from_dict(stored)
    return pending is not None and not pending.expired


def _callback_url(request: Request, provider: OAuthProvider) -> str:
    if provider.redirect_uri:
        return provider.redirect_uri
    path = request.url_for("auth.oauth_callback", name=provider.name)
    return f"{request.scheme}://{request.host}{path}"


def oauth_router(auth: Any) -> Router:
    """The routes that log people in with the providers of ``Auth(oauth=[...])``.

    Routes (named for ``url_for``): ``auth.oauth_login`` (``GET
    {prefix}/oauth/{name}/login``, query ``next``) and ``auth.oauth_callback`` (``GET
    {prefix}/oauth/{name}/callback``). The callback URL to register with a provider is
    ``https://your.site{prefix}/oauth/{name}/callback``.

    Args:
        auth: The ``Auth`` plugin (its ``prefix``, ``oauth``, ``pages`` and ``login_url``).

    Raises:
        ConfigurationError: something in ``oauth`` is not a provider, two share a name, or
            the session cookie is ``SameSite=Strict`` (the callback would never see it).
    """
    providers = _providers(auth)
    _check_cookie_policy(auth)
    prefix: str = getattr(auth, "prefix", "/auth")
    router = Router(f"{prefix}/oauth", name="auth", tags=("auth",))

    def provider_named(name: str) -> OAuthProvider:
        provider = providers.get(name)
        if provider is None:
            raise NotFoundError(f"There is no login provider named {name!r}.")
        return provider

    def fail(request: Request, exc: OAuthLoginError, *, signed_in: bool, next_url: str) -> Response:
        """Show a failure: flashed on the login page (or ``next``), else an error page."""
        if signed_in:
            flash(request, str(exc.detail), "error")
            return RedirectResponse(next_url, 303)
        if getattr(auth, "pages", False):
            flash(request, str(exc.detail), "error")
            login_url: str = auth.login_url
            separator = "&" if "?" in login_url else "?"
            return RedirectResponse(f"{login_url}{separator}{urlencode({'next': next_url})}", 303)
        raise exc

    @router.get("/{name}/login", name="oauth_login", include_in_schema=False)
    async def oauth_login(request: Request, name: str) -> Response:
        """Start a login with provider ``name``: redirect to it."""
        provider = provider_named(name)
        default = getattr(auth, "login_redirect_url", None) or "/"
        target = safe_next(request, request.query.get("next"), default=default)
        redirect_uri = _callback_url(request, provider)
        pending = PendingLogin.start(redirect_uri=redirect_uri, next=target)
        async with provider.http_client() as client:
            url = await provider.authorization_url(
                client, redirect_uri=redirect_uri, pending=pending
            )
        logins = _pending_logins(request)
        # Only one pending login per provider; started ones that were abandoned go.
        logins = {key: value for key, value in logins.items() if key in providers and _live(value)}
        logins[name] = pending.to_dict()
        request.session[SESSION_KEY] = logins
        return RedirectResponse(url, 302)

    @router.get("/{name}/callback", name="oauth_callback", include_in_schema=False)
    async def oauth_callback(request: Request, name: str, db: Session) -> Response:
        """Finish a login with provider ``name``: check, find or create the user, sign in."""
        provider = provider_named(name)
        logins = _pending_logins(request)
        stored = logins.pop(name, None)
        if stored is not None:  # single use, whatever happens next
            request.session[SESSION_KEY] = logins
        pending = PendingLogin.from_dict(stored)
        if pending is None:
            raise BadRequestError(
                f"No login with {provider.title} was started in this browser (or it was"
                " already used). Cookies may be blocked; start the login again."
            )
        state = request.query.get("state") or ""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            log.warning("OAuth callback for %s with a wrong or missing state", name)
            raise BadRequestError(
                f"The answer from {provider.title} does not belong to the login started in"
                " this browser (wrong state). Start the login again."
            )
        if pending.expired:
            raise BadRequestError(f"The login with {provider.title} took too long; start again.")

        current = await session_user(request, db)
        signed_in = current is not None
        error = request.query.get("error")
        if error:
            # Shown to the person: kept short (the state matched, so it came from the
            # provider, but it is still text from elsewhere).
            description = (request.query.get("error_description") or "")[:200]
            if error == "access_denied":
                message = f"The login with {provider.title} was cancelled."
            else:
                message = f"{provider.title} refused the login ({error[:50]}" + (
                    f": {description})." if description else ")."
                )
            return fail(
                request, OAuthLoginError(message), signed_in=signed_in, next_url=pending.next
            )
        code = request.query.get("code")
        if not code:
            raise BadRequestError(f"The answer from {provider.title} has no code.")

        try:
            async with provider.http_client() as client:
                token = await provider.fetch_token(client, code=code, pending=pending)
                identity = await provider.fetch_identity(client, token, nonce=pending.nonce)
            result = await resolve_user(db, provider, identity, current=current)
        except OAuthLoginError as exc:
            log.warning("OAuth login with %s failed: %s", name, exc.detail)
            return fail(request, exc, signed_in=signed_in, next_url=pending.next)

        if result.action == "linked" and signed_in:
            flash(request, f"Your {provider.title} account is now connected.", "success")
        if current is None or current.id != result.user.id:
            await login(request, result.user)
        return RedirectResponse(pending.next, 303)

    return router
