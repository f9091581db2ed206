"""The language switch: ``POST /i18n/locale`` remembers the chosen locale in a cookie.

A form (``{{ locale_switcher() }}`` writes one) posts ``locale`` and ``next``, with the CSRF
token; the answer sets the ``locale`` cookie and sends the browser back to ``next`` (only a
path on this site; else the ``Referer`` when it is this site's, else ``/``), moved to the
new locale's prefix when URL prefixes are on. A JSON body (``{"locale": "fr"}``) gets
``204 No Content`` with the cookie.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trellis.exceptions import RequestValidationError
from trellis.http.request import Request
from trellis.http.response import RedirectResponse, Response
from trellis.i18n import gettext
from trellis.routing.router import Router

if TYPE_CHECKING:
    from trellis.contrib.i18n.plugin import I18n

__all__ = ["switch_router"]


def switch_router(i18n: I18n) -> Router:
    """The router of the language switch (route name ``i18n.set_locale``)."""
    from trellis.contrib.i18n.plugin import safe_path

    router = Router(i18n.switch_prefix, name="i18n")

    @router.post("/locale", name="set_locale", include_in_schema=False, csrf=False)
    async def set_locale(request: Request) -> Response:
        app = request.app
        if app.settings.sessions:
            from trellis.csrf import verify_csrf

            await verify_csrf(request)  # also without a session cookie
        else:
            from trellis.csrf import origin_allowed
            from trellis.exceptions import ForbiddenError

            if not origin_allowed(request):
                raise ForbiddenError("Origin not allowed")
        is_json = request.content_type == "application/json"
        data: Any = await request.json() if is_json else await request.form()
        value = data.get("locale") if hasattr(data, "get") else None
        locale = i18n.matcher.match(value) if isinstance(value, str) else None
        if locale is None:
            raise RequestValidationError(
                [
                    {
                        "loc": ["body", "locale"],
                        "msg": gettext(
                            "Choose one of: %(locales)s", locales=", ".join(i18n.locales)
                        ),
                        "type": "value_error",
                    }
                ]
            )
        response: Response
        if is_json:
            response = Response(b"", 204)
        else:
            next_value = data.get("next")
            target = safe_path(next_value if isinstance(next_value, str) else None, request.scope)
            if target is None:
                target = safe_path(request.headers.get("referer"), request.scope) or "/"
            response = RedirectResponse(_moved(i18n, request, target, locale), 303)
        if i18n.cookie_name is not None:
            response.set_cookie(
                i18n.cookie_name, locale, max_age=i18n.cookie_max_age, httponly=False
            )
        response.headers["cache-control"] = "no-store"
        return response

    return router


def _moved(i18n: I18n, request: Request, target: str, locale: str) -> str:
    """``target`` under ``locale``'s prefix, keeping the prefix the app is mounted under."""
    root: str = request.scope.get("root_path", "").rstrip("/")
    last = root.rsplit("/", 1)[-1]
    if root and i18n.url_prefix and i18n.locale_of_prefix(last) is not None:
        root = root[: -len(last) - 1]  # posted to /fr/i18n/locale: not part of the mount
    if root and (target == root or target.startswith(root + "/")):
        return root + i18n.switch_path(target[len(root) :] or "/", locale)
    return i18n.switch_path(target, locale)
