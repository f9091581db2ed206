"""The auth pages (server-rendered forms) and the same flows as a JSON API.

``Auth`` includes both (``pages=True``, ``api=True``); each function builds a ``Router``:

Pages, under ``auth.prefix`` (``/auth``), route names ``auth.*``:

| Route | Name | What |
|---|---|---|
| ``GET/POST /login`` | ``auth.login`` | e-mail or user name and password; ``?next=`` |
| ``POST /logout`` | ``auth.logout`` | sign out (POST only: a link cannot sign anyone out) |
| ``GET/POST /register`` | ``auth.register`` | create an account (``registration=True``) |
| ``GET/POST /password/change`` | ``auth.password_change`` | signed-in users |
| ``GET/POST /password/reset`` | ``auth.password_reset`` | ask for a reset link |
| ``GET/POST /password/reset/{token}`` | ``auth.password_reset_confirm`` | choose a new one |

JSON API, under ``auth.api_prefix`` (``/api/auth``), route names ``auth_api.*``: ``POST
/login``, ``POST /logout``, ``POST /register``, ``POST /password/change``, ``POST
/password/reset``, ``POST /password/reset/confirm``, ``GET /me``, ``GET /csrf``.

Templates are ``auth/login.html``, ``auth/register.html``, ``auth/password_change.html``,
``auth/password_reset_request.html``, ``auth/password_reset_confirm.html``, all extending
``auth/base.html``, and the e-mail ``auth/email/password_reset.txt``/``.html``: a file of the
same name in the app's templates folder wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from trellis.background import BackgroundTasks
from trellis.contrib.auth.dependencies import CurrentUser, OptionalUser
from trellis.contrib.auth.flows import (
    FlowError,
    PasswordPolicy,
    change_password,
    check_reset_token,
    register,
    request_password_reset,
    reset_password,
)
from trellis.contrib.auth.login import login, logout
from trellis.contrib.auth.redirects import is_safe_next, safe_next
from trellis.contrib.auth.throttle import LoginThrottle, ThrottledError
from trellis.contrib.db.dependencies import Session
from trellis.contrib.db.types import utcnow
from trellis.csrf import csrf_token, origin_allowed, verify_csrf
from trellis.exceptions import (
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    HTTPError,
    RequestValidationError,
    UnauthorizedError,
)
from trellis.http.request import Request
from trellis.http.response import RedirectResponse, Response
from trellis.i18n import N_, gettext
from trellis.routing.router import Router
from trellis.sessions import flash

if TYPE_CHECKING:
    from trellis.contrib.auth.plugin import Auth

__all__ = [
    "TEMPLATES_DIRECTORY",
    "CSRFOut",
    "LoginIn",
    "LoginOut",
    "MessageOut",
    "PasswordChangeIn",
    "PasswordResetConfirmIn",
    "PasswordResetIn",
    "RegisterIn",
    "UserOut",
    "api_router",
    "pages_router",
    "throttle_of",
]

#: The folder of the auth templates (searched after the app's own).
TEMPLATES_DIRECTORY = Path(__file__).parent / "templates"

_WRONG_CREDENTIALS = N_("Wrong e-mail, user name or password.")
_RESET_SENT = (
    "If an account exists for this address, we sent it an e-mail with a link to choose a new"
    " password."
)
# Pages with a form (a CSRF token) or a reset token in the URL: never cached, never a
# Referer with the token in it.
_NO_STORE = {"Cache-Control": "no-store"}
_NO_REFERRER = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


# -- shared --------------------------------------------------------------------------------


def throttle_of(auth: Auth) -> LoginThrottle | None:
    """The ``LoginThrottle`` of ``auth``: its own, a default one, or ``None`` when turned off.

    ``Auth(throttle=None)`` (the default) gets ``LoginThrottle()``; ``throttle=False`` turns
    the limits off.
    """
    if auth.throttle is False:
        return None
    if auth.throttle is None:
        auth.throttle = LoginThrottle()
    throttle: LoginThrottle = auth.throttle  # or anything with the same methods
    return throttle


def _policy(auth: Auth) -> PasswordPolicy:
    policy = auth.password_policy
    return policy if isinstance(policy, PasswordPolicy) else PasswordPolicy()


def _site(request: Request, auth: Auth) -> str:
    """The scheme and host the links in e-mails start with."""
    site_url = auth.site_url
    if site_url:
        return site_url.rstrip("/")
    # The Host header is the client's word: set allowed_hosts in production (trellis check
    # --deploy says so), or site_url, so a forged Host cannot send the link elsewhere.
    root: str = request.scope.get("root_path", "")
    return f"{request.scheme}://{request.host}{root.rstrip('/')}"


def _reset_link(request: Request, auth: Auth) -> Callable[[str], str]:
    template = auth.password_reset_url
    if template:
        return lambda token: template.replace("{token}", token)
    base = _site(request, auth)
    prefix = auth.prefix
    return lambda token: f"{base}{prefix}/password/reset/{token}"


def _str(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _session_cookie(request: Request) -> bool:
    from trellis.sessions import config_for

    try:
        return config_for(request.scope).cookie_name in request.cookies
    except ConfigurationError:  # sessions are off: there is nothing to sign out of
        return False


# -- pages -----------------------------------------------------------------------------------


def pages_router(auth: Auth) -> Router:
    """The HTML pages of the auth flows, under ``auth.prefix``, named ``auth.*``.

    Every form carries the CSRF token and is checked even when the browser had no session
    cookie yet; every page is ``Cache-Control: no-store``.
    """
    router = Router(auth.prefix, name="auth", templates=TEMPLATES_DIRECTORY)

    def default_next() -> str:
        return auth.login_redirect_url or "/"

    def after_logout() -> str:
        return auth.logout_redirect_url or auth.login_url

    def page(
        request: Request,
        name: str,
        status: int = 200,
        *,
        headers: Mapping[str, str] = _NO_STORE,
        error: FlowError | None = None,
        form: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Response:
        from trellis.templating import render

        return render(
            f"auth/{name}.html",
            request=request,
            status_code=status,
            headers=dict(headers),
            form=dict(form or {}),
            errors=error.field_errors() if error else {},
            form_errors=error.form_errors() if error else [],
            registration=auth.registration,
            min_length=_policy(auth).min_length,
            oauth_providers=auth.oauth,
            **context,
        )

    def reset_page(
        request: Request, token: str, error: FlowError | None = None, *, valid: bool = True
    ) -> Response:
        # The token is in the URL: no Referer may carry it to another site.
        status = error.status if error is not None else 200
        return page(
            request,
            "password_reset_confirm",
            status,
            headers=_NO_REFERRER,
            error=error,
            valid=valid,
            token=token,
        )

    def throttled(request: Request, name: str, exc: ThrottledError, **context: Any) -> Response:
        headers = {**_NO_STORE, "Retry-After": str(exc.retry_after)}
        error = FlowError({"": [exc.detail or gettext("Too many attempts.")]}, 429)
        return page(request, name, 429, headers=headers, error=error, **context)

    # -- sign in and out ---------------------------------------------------------------

    @router.get("/login", name="login", include_in_schema=False)
    async def login_page(request: Request) -> Response:
        next_url = request.query.get("next") or ""
        return page(request, "login", next=next_url if is_safe_next(request, next_url) else "")

    @router.post("/login", name="login_submit", include_in_schema=False)
    async def login_submit(request: Request, db: Session) -> Response:
        await verify_csrf(request)  # also without a session cookie: no login CSRF
        form = await request.form()
        identifier, password = _str(form, "login").strip(), _str(form, "password")
        next_url = _str(form, "next")
        next_url = next_url if is_safe_next(request, next_url) else ""
        shown = {"login": identifier}
        if not identifier or not password:
            errors: dict[str, list[str]] = {}
            if not identifier:
                errors["login"] = [gettext("Enter your e-mail address or user name.")]
            if not password:
                errors["password"] = [gettext("Enter your password.")]
            return page(request, "login", 422, error=FlowError(errors), form=shown, next=next_url)
        throttle = throttle_of(auth)
        ticket = None
        if throttle is not None:
            try:
                ticket = await throttle.attempt(request, identifier)
            except ThrottledError as exc:  # locked: the password is not even looked at
                return throttled(request, "login", exc, form=shown, next=next_url)
        user = await auth.authenticate(db, identifier, password)
        if user is None:
            if throttle is not None and ticket is not None:
                try:
                    await throttle.failure(ticket)
                except ThrottledError as exc:
                    return throttled(request, "login", exc, form=shown, next=next_url)
            error = FlowError({"": [gettext(_WRONG_CREDENTIALS)]}, 401)
            return page(request, "login", 401, error=error, form=shown, next=next_url)
        if throttle is not None and ticket is not None:
            await throttle.success(ticket, user.email, user.username)
        await login(request, user)
        return RedirectResponse(safe_next(request, next_url, default_next()), 303)

    @router.post("/logout", name="logout", include_in_schema=False)
    async def logout_submit(request: Request) -> Response:
        if _session_cookie(request):
            await verify_csrf(request)
            await logout(request)
            flash(request, gettext("You are signed out."), "success")
        return RedirectResponse(after_logout(), 303)

    # -- registration ------------------------------------------------------------------

    if auth.registration:

        @router.get("/register", name="register", include_in_schema=False)
        async def register_page(request: Request) -> Response:
            next_url = request.query.get("next") or ""
            next_url = next_url if is_safe_next(request, next_url) else ""
            return page(request, "register", next=next_url)

        @router.post("/register", name="register_submit", include_in_schema=False)
        async def register_submit(request: Request, db: Session) -> Response:
            await verify_csrf(request)
            form = await request.form()
            email, username = _str(form, "email").strip(), _str(form, "username").strip()
            next_url = _str(form, "next")
            next_url = next_url if is_safe_next(request, next_url) else ""
            try:
                user = await register(
                    auth,
                    db,
                    email=email,
                    username=username or None,
                    password=_str(form, "password"),
                    password2=_str(form, "password2"),
                    username_required=True,
                )
            except FlowError as exc:
                shown = {"email": email, "username": username}
                return page(request, "register", exc.status, error=exc, form=shown, next=next_url)
            await login(request, user)
            flash(
                request,
                gettext("Welcome, %(name)s! Your account is ready.", name=user.display_name),
                "success",
            )
            return RedirectResponse(safe_next(request, next_url, default_next()), 303)

    # -- password change ---------------------------------------------------------------

    @router.get("/password/change", name="password_change", include_in_schema=False)
    async def password_change_page(request: Request, user: CurrentUser) -> Response:
        return page(request, "password_change", user=user)

    @router.post("/password/change", name="password_change_submit", include_in_schema=False)
    async def password_change_submit(request: Request, user: CurrentUser, db: Session) -> Response:
        await verify_csrf(request)
        form = await request.form()
        throttle = throttle_of(auth)
        ticket = None
        if throttle is not None:
            try:  # a stolen session must not become a password oracle
                ticket = await throttle.attempt(request, user.email)
            except ThrottledError as exc:
                return throttled(request, "password_change", exc, user=user)
        try:
            await change_password(
                auth,
                db,
                user,
                old_password=_str(form, "old_password"),
                new_password=_str(form, "new_password"),
                new_password2=_str(form, "new_password2"),
            )
        except FlowError as exc:
            if throttle is not None and ticket is not None:
                if "old_password" in exc.errors:
                    try:
                        await throttle.failure(ticket)
                    except ThrottledError as locked:
                        return throttled(request, "password_change", locked, user=user)
                else:  # the current password was right
                    await throttle.success(ticket, user.username)
            return page(request, "password_change", exc.status, error=exc, user=user)
        if throttle is not None and ticket is not None:
            await throttle.success(ticket, user.username)
        await login(request, user)  # a new session id; the new fingerprint keeps this one
        flash(request, gettext("Your password was changed."), "success")
        return RedirectResponse(request.url_for("auth.password_change"), 303)

    # -- password reset ----------------------------------------------------------------

    @router.get("/password/reset", name="password_reset", include_in_schema=False)
    async def password_reset_page(request: Request) -> Response:
        return page(request, "password_reset_request")

    @router.post("/password/reset", name="password_reset_submit", include_in_schema=False)
    async def password_reset_submit(
        request: Request, db: Session, tasks: BackgroundTasks
    ) -> Response:
        await verify_csrf(request)
        form = await request.form()
        email = _str(form, "email").strip()
        throttle = throttle_of(auth)
        if throttle is not None:
            try:
                await throttle.hit(request, "password_reset")
            except ThrottledError as exc:
                return throttled(request, "password_reset_request", exc, form={"email": email})
        try:
            send = await request_password_reset(
                auth, db, request.app, email, _reset_link(request, auth)
            )
        except FlowError as exc:
            shown = {"email": email}
            return page(request, "password_reset_request", exc.status, error=exc, form=shown)
        if send is not None:
            tasks.add_task(send)  # after the response: its timing tells nothing
        flash(request, _RESET_SENT, "info")
        return RedirectResponse(request.url_for("auth.password_reset"), 303)

    @router.get("/password/reset/{token}", name="password_reset_confirm", include_in_schema=False)
    async def password_reset_confirm_page(request: Request, token: str, db: Session) -> Response:
        try:
            await check_reset_token(auth, db, request.app, token)
        except FlowError as exc:
            return reset_page(request, token, exc, valid=False)
        return reset_page(request, token)

    @router.post(
        "/password/reset/{token}", name="password_reset_confirm_submit", include_in_schema=False
    )
    async def password_reset_confirm_submit(request: Request, token: str, db: Session) -> Response:
        await verify_csrf(request)
        form = await request.form()
        try:
            user = await reset_password(
                auth,
                db,
                request.app,
                token,
                new_password=_str(form, "new_password"),
                new_password2=_str(form, "new_password2"),
            )
        except FlowError as exc:
            return reset_page(request, token, exc, valid="token" not in exc.errors)
        throttle = throttle_of(auth)
        if throttle is not None:
            # The owner proved who they are: let them in at once.
            await throttle.unlock(user.email, user.username, conn=request)
        flash(request, gettext("Your password has been set. You can sign in now."), "success")
        return RedirectResponse(auth.login_url, 303, headers={"Referrer-Policy": "no-referrer"})

    return router


# -- JSON API --------------------------------------------------------------------------------


class UserOut(BaseModel):
    """A user as the API shows it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    username: str | None
    is_active: bool
    is_superuser: bool
    created_at: datetime
    last_login: datetime | None


class LoginIn(BaseModel):
    """Credentials: ``login`` is the e-mail address or the user name."""

    login: str = Field(
        min_length=1,
        max_length=320,
        validation_alias=AliasChoices("login", "email", "username"),
        description="The e-mail address or the user name (also accepted as email or username).",
    )
    password: str = Field(min_length=1, max_length=4096)
    token: bool = Field(
        default=False,
        description="Answer with a bearer token instead of setting the session cookie.",
    )
    token_name: str = Field(default="", max_length=100, description="A label for the token.")


class LoginOut(BaseModel):
    """The signed-in user, and the bearer token when one was asked for."""

    user: UserOut
    token: str | None = None
    token_type: str | None = None
    #: Seconds the token works (``None``: until revoked).
    expires_in: int | None = None


class RegisterIn(BaseModel):
    """A new account."""

    email: str = Field(max_length=320)
    username: str | None = Field(default=None, max_length=150)
    password: str = Field(max_length=4096)


class PasswordChangeIn(BaseModel):
    """The current password and the new one."""

    old_password: str = Field(max_length=4096)
    new_password: str = Field(max_length=4096)


class PasswordResetIn(BaseModel):
    """The address of the account whose password is forgotten."""

    email: str = Field(max_length=320)


class PasswordResetConfirmIn(BaseModel):
    """The token from the e-mailed link and the new password."""

    token: str = Field(max_length=1024)
    new_password: str = Field(max_length=4096)


class MessageOut(BaseModel):
    """A message for the user."""

    detail: str


class CSRFOut(BaseModel):
    """A CSRF token for the ``X-CSRF-Token`` header of cookie-authenticated requests."""

    csrf_token: str


def _api_error(exc: FlowError) -> HTTPError:
    """The HTTP error of a refused flow: 422 as a validation error, others as problems."""
    errors = [
        {
            "loc": ["body", field] if field else ["body"],
            "msg": message,
            "type": "value_error",
        }
        for field, messages in exc.errors.items()
        for message in messages
    ]
    if exc.status == 422:
        return RequestValidationError(errors)
    detail = " ".join(m for messages in exc.errors.values() for m in messages)
    if exc.status == 409:
        return ConflictError(detail, extra={"errors": errors})
    return HTTPError(exc.status, detail, extra={"errors": errors})


def _same_site(request: Request) -> None:
    """Refuse a sign-in through the API that another site's page made the browser send.

    These requests have no session yet, so no CSRF token to check; and a page can post JSON
    to another site without a pre-flight when it sends no ``Content-Type`` at all (a ``Blob``
    body). Browsers name the page's origin in ``Origin``: it must be this site's (or a
    trusted one), or the visitor would be signed in to the attacker's account.
    """
    if not origin_allowed(request):
        raise ForbiddenError(
            "Origin not allowed: the request comes from another site (its Origin or Referer"
            " header); add that site to the csrf_trusted_origins setting if it is yours"
        )


def api_router(auth: Auth) -> Router:
    """The JSON API of the auth flows, under ``auth.api_prefix``, named ``auth_api.*``.

    For single-page apps: the session cookie works as for pages (send the token of ``GET
    /csrf`` in ``X-CSRF-Token`` with every unsafe request once the cookie is set); other
    clients ask ``/login`` for a bearer token (``{"token": true}``).
    """
    router = Router(auth.api_prefix, name="auth_api", tags=["auth"], templates=TEMPLATES_DIRECTORY)

    @router.post(
        "/login",
        name="login",
        responses={
            401: {"description": "Wrong e-mail, user name or password"},
            429: {"description": "Too many failed attempts: see Retry-After"},
        },
    )
    async def api_login(request: Request, body: LoginIn, db: Session) -> LoginOut:
        """Sign in with an e-mail address or user name and a password.

        Sets the session cookie, or, with ``"token": true``, returns a bearer token and sets
        no cookie. Too many failures answer 429 with ``Retry-After``.
        """
        if not body.token:
            _same_site(request)  # the session cookie it sets must be the visitor's own doing
        throttle = throttle_of(auth)
        ticket = await throttle.attempt(request, body.login) if throttle is not None else None
        user = await auth.authenticate(db, body.login, body.password)
        if user is None:
            if throttle is not None and ticket is not None:
                await throttle.failure(ticket)
            raise UnauthorizedError(_WRONG_CREDENTIALS)
        if throttle is not None and ticket is not None:
            await throttle.success(ticket, user.email, user.username)
        if body.token:
            lifetime = auth.login_token_lifetime
            token = await auth.issue_token(
                db, user, name=body.token_name or "login", expires_in=lifetime
            )
            user.last_login = utcnow()
            await db.flush()
            return LoginOut(
                user=UserOut.model_validate(user),
                token=token,
                token_type="bearer",
                expires_in=None if lifetime is None else int(lifetime),
            )
        await login(request, user)
        await db.flush()
        return LoginOut(user=UserOut.model_validate(user))

    @router.post("/logout", name="logout", status_code=204)
    async def api_logout(request: Request, user: OptionalUser, db: Session) -> None:
        """Sign out: end the session, or revoke the bearer token the request came with."""
        method = getattr(request.state, "auth_method", None)
        row = getattr(request.state, "auth_token", None)
        if user is not None and method == "bearer" and row is not None:
            await auth.revoke_token(db, row.id)
        if _session_cookie(request):
            await logout(request)

    if auth.registration:

        @router.post(
            "/register",
            name="register",
            status_code=201,
            responses={409: {"description": "The e-mail address or user name is taken"}},
        )
        async def api_register(request: Request, body: RegisterIn, db: Session) -> LoginOut:
            """Create an account and sign in with the session cookie.

            409 when the address or the user name is taken, 422 for invalid values.
            """
            _same_site(request)
            try:
                user = await register(
                    auth, db, email=body.email, username=body.username, password=body.password
                )
            except FlowError as exc:
                raise _api_error(exc) from None
            await login(request, user)
            await db.flush()
            return LoginOut(user=UserOut.model_validate(user))

    @router.post("/password/change", name="password_change", status_code=204)
    async def api_password_change(
        request: Request, body: PasswordChangeIn, user: CurrentUser, db: Session
    ) -> None:
        """Change the signed-in user's password (422 when the current one is wrong).

        The user's other sessions and bearer tokens end; a session-authenticated request gets
        a new session, a bearer token keeps working. JWTs issued before are refused.
        """
        throttle = throttle_of(auth)
        ticket = await throttle.attempt(request, user.email) if throttle is not None else None
        bearer = getattr(request.state, "auth_method", None) == "bearer"
        row = getattr(request.state, "auth_token", None)
        keep = row.id if bearer and row is not None else None  # the token making the change
        try:
            await change_password(
                auth,
                db,
                user,
                old_password=body.old_password,
                new_password=body.new_password,
                keep_token=keep,
            )
        except FlowError as exc:
            if throttle is not None and ticket is not None:
                if "old_password" in exc.errors:
                    await throttle.failure(ticket)
                else:  # the current password was right
                    await throttle.success(ticket, user.username)
            raise _api_error(exc) from None
        if throttle is not None and ticket is not None:
            await throttle.success(ticket, user.username)
        if getattr(request.state, "auth_method", None) == "session":
            await login(request, user)

    @router.post(
        "/password/reset",
        name="password_reset",
        status_code=202,
        responses={429: {"description": "Too many requests: see Retry-After"}},
    )
    async def api_password_reset(
        request: Request, body: PasswordResetIn, db: Session, tasks: BackgroundTasks
    ) -> MessageOut:
        """Mail a password reset link, if an account has this address.

        The answer is the same whether it has or not.
        """
        throttle = throttle_of(auth)
        if throttle is not None:
            await throttle.hit(request, "password_reset")
        try:
            send = await request_password_reset(
                auth, db, request.app, body.email, _reset_link(request, auth)
            )
        except FlowError as exc:
            raise _api_error(exc) from None
        if send is not None:
            tasks.add_task(send)
        return MessageOut(detail=_RESET_SENT)

    @router.post(
        "/password/reset/confirm",
        name="password_reset_confirm",
        status_code=204,
        responses={400: {"description": "The reset link is invalid, used or expired"}},
    )
    async def api_password_reset_confirm(
        request: Request, body: PasswordResetConfirmIn, db: Session
    ) -> None:
        """Set a new password with the token of a reset link (400 when the token is bad)."""
        try:
            user = await reset_password(
                auth, db, request.app, body.token, new_password=body.new_password
            )
        except FlowError as exc:
            raise _api_error(exc) from None
        throttle = throttle_of(auth)
        if throttle is not None:
            await throttle.unlock(user.email, user.username, conn=request)

    @router.get("/me", name="me")
    async def api_me(user: CurrentUser) -> UserOut:
        """The signed-in user (401 when anonymous)."""
        return UserOut.model_validate(user)

    @router.get("/csrf", name="csrf", response_model=CSRFOut)
    async def api_csrf(request: Request) -> Response:
        """A CSRF token for this session (starts one): send it as ``X-CSRF-Token``."""
        from trellis.http.response import JSONResponse

        return JSONResponse({"csrf_token": csrf_token(request)}, headers=_NO_STORE)

    return router
