"""The i18n battery's plugin: ``app.install(I18n(default_locale="en", locales=("en", "fr")))``.

For each request it picks the locale, in this order: the URL prefix (``/fr/...``, with
``url_prefix=True``), your ``locale_selector`` (a user's saved preference), the ``locale``
cookie (set by the language switch), the ``Accept-Language`` header (with its q-values), and
the default. The locale and the request's time zone live in context variables for the
request's duration, so ``trellis.i18n.gettext``, the templates' ``_()`` and the
``format_*`` functions answer in the user's language without being told.

It also installs ``jinja2.ext.i18n`` (``{% trans %}`` blocks, newstyle gettext) and the
formatting filters on ``app.templates``, the language switch route (``POST /i18n/locale``),
translated validation errors (the 422 problem details), and ``trellis i18n``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import inspect
import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

import jinja2
from markupsafe import Markup

from trellis import i18n as _core
from trellis.contrib.i18n import formatting as _fmt
from trellis.contrib.i18n.catalogs import (
    CatalogSource,
    battery_directories,
    load_translations,
    parse_locale,
    uncompiled,
)
from trellis.contrib.i18n.negotiation import LocaleMatcher
from trellis.exceptions import ConfigurationError, RequestValidationError
from trellis.http.connection import HTTPConnection
from trellis.http.cookies import parse_cookie_header
from trellis.middleware._common import add_vary

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.checks import DeployProblem
    from trellis.templating import Templates
    from trellis.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["I18n", "LocaleSelector"]

#: ``locale_selector(connection)``: a locale identifier, or ``None`` to fall through.
LocaleSelector = Callable[[HTTPConnection], "str | Awaitable[str | None] | None"]

_FILTERS = (
    "format_number",
    "format_decimal",
    "format_currency",
    "format_percent",
    "format_date",
    "format_datetime",
    "format_time",
    "format_timedelta",
)


class I18n:
    """Translations, locale selection and localized formatting for an application.

    Args:
        default_locale: The locale of clients that ask for none of ``locales``.
        locales: The supported locales (Babel identifiers: ``"en"``, ``"fr"``, ``"pt_BR"``);
            ``default_locale`` is added when missing.
        directory: The application's catalog folder, or several (the first wins); relative
            paths start from the current directory. A missing folder is ignored until
            ``trellis i18n init`` creates it.
        domain: The gettext domain of the application's catalogs (``messages.po``).
        timezone: The time zone of dates and times shown to users (an IANA name), unless a
            ``timezone`` cookie or ``timezone_selector`` gives theirs.
        url_prefix: Recognise a locale prefix in the path (``/fr/articles``): the prefix
            picks the locale and becomes part of the request's root path, so ``url_for``
            (in Python and templates) builds prefixed links. Paths without one still work.
        cookie_name: The cookie that remembers the chosen locale (``None``: no cookie).
        timezone_cookie: The cookie that may carry the user's IANA time zone, set by your
            page's script (``None``: not read).
        locale_selector: Called with the connection first after the URL prefix; return a
            locale (the user's saved preference) or ``None``. May be async.
        timezone_selector: Likewise for the time zone (an IANA name or ``None``).
        batteries: Merge the catalogs the trellis batteries ship (auth, admin, forms,
            validation messages) under the application's.
        switch_route: Add ``POST {switch_prefix}/locale`` (the language switch).
        switch_prefix: Where the switch route lives.
        translate_validation_errors: Translate the messages of 422 responses.

    Raises:
        ConfigurationError: A locale or time zone is unknown.

    Example:
        ```python
        from trellis import App
        from trellis.contrib.i18n import I18n

        app = App()
        i18n = app.install(I18n(default_locale="en", locales=("en", "fr")))
        assert i18n.locales == ("en", "fr")
        ```
    """

    def __init__(
        self,
        default_locale: str = "en",
        locales: Sequence[str] = (),
        *,
        directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = "locale",
        domain: str = "messages",
        timezone: str = "UTC",
        url_prefix: bool = False,
        cookie_name: str | None = "locale",
        cookie_max_age: int = 365 * 86400,
        timezone_cookie: str | None = "timezone",
        locale_selector: LocaleSelector | None = None,
        timezone_selector: Callable[[HTTPConnection], Any] | None = None,
        batteries: bool = True,
        switch_route: bool = True,
        switch_prefix: str = "/i18n",
        translate_validation_errors: bool = True,
    ) -> None:
        self.default_locale = parse_locale(default_locale)
        canonical = [parse_locale(locale) for locale in locales]
        if self.default_locale not in canonical:
            canonical.insert(0, self.default_locale)
        self.locales: tuple[str, ...] = tuple(dict.fromkeys(canonical))
        if isinstance(directory, str | os.PathLike):
            directory = [directory]
        self.directories = tuple(Path(os.path.abspath(os.fspath(d))) for d in directory)
        self.domain = domain
        try:
            self.timezone = _fmt.zone(timezone)
        except ValueError as exc:
            raise ConfigurationError(f"I18n(timezone={timezone!r}): {exc}") from None
        self.url_prefix = url_prefix
        self.cookie_name = cookie_name
        self.cookie_max_age = cookie_max_age
        self.timezone_cookie = timezone_cookie
        self.locale_selector = locale_selector
        self.timezone_selector = timezone_selector
        self.batteries = batteries
        self.switch_route = switch_route
        self.switch_prefix = switch_prefix.rstrip("/")
        self.translate_validation_errors = translate_validation_errors
        self.matcher = LocaleMatcher(self.locales)
        # The URL segment of each locale ("pt-BR"), matched case-insensitively.
        self._prefixes = {self.prefix_of(locale).lower(): locale for locale in self.locales}
        self._translations: dict[str, _core.Translator | None] | None = None
        self._configured: set[int] = set()
        self.app: App | None = None

    # -- installation -------------------------------------------------------------------------

    def setup(self, app: App) -> None:
        """Install on ``app``: the middleware, templates, 422 translation, route and CLI."""
        existing = getattr(app.state, "i18n", None)
        if existing is not None and existing is not self:
            raise ConfigurationError("the application already has an I18n installed")
        self.app = app
        app.state.i18n = self
        app.add_middleware(_I18nMiddleware, plugin=self)
        if self.translate_validation_errors:
            from trellis.contrib.i18n.validation import validation_error_handler

            handlers: dict[Any, Any] = getattr(app, "_exception_handlers", {})
            if RequestValidationError not in handlers:  # the application's own wins
                app.exception_handler(RequestValidationError)(validation_error_handler)
        if self.switch_route:
            from trellis.contrib.i18n.routes import switch_router

            app.include(switch_router(self))
        from trellis.contrib.i18n.cli import i18n_command

        app.add_command(i18n_command(self))

    @property
    def sources(self) -> tuple[CatalogSource, ...]:
        """The catalog folders searched, strongest first: the application's, the batteries'."""
        own = tuple(CatalogSource(d, self.domain) for d in self.directories)
        if not self.batteries:
            return own
        plugin_dirs = []
        for plugin in self.app.plugins if self.app is not None else ():
            folder = getattr(plugin, "locale_directory", None)
            if folder is not None:
                plugin_dirs.append(CatalogSource(Path(folder)))
        return (*own, *plugin_dirs, *battery_directories())

    def load(self, *, reload: bool = False) -> None:
        """Read every catalog now (done once when the app is built; ``reload`` reads again)."""
        if self._translations is not None and not reload:
            return
        sources = self.sources
        # Babel's Translations implements the protocol (its pgettext is typed loosely).
        self._translations = {
            locale: cast("_core.Translator | None", load_translations(sources, locale))
            for locale in self.locales
        }

    def translator(self, locale: str) -> _core.Translator | None:
        """The translations of ``locale`` (``None``: messages stay as written)."""
        if self._translations is None:
            self.load()
        assert self._translations is not None
        return self._translations.get(locale)

    @contextlib.contextmanager
    def activate(
        self, locale: str | None = None, timezone: str | _dt.tzinfo | None = None
    ) -> Iterator[str]:
        """Use ``locale`` (and ``timezone``) inside the ``with`` block: e-mails, jobs, tests.

        Example:
            ```python
            from trellis.contrib.i18n import I18n, format_decimal

            i18n = I18n(locales=("en", "fr"))
            with i18n.activate("fr"):
                assert format_decimal(2.5) == "2,5"
            ```
        """
        chosen = self.default_locale if locale is None else self.matcher.match(locale)
        if chosen is None:
            raise ValueError(f"{locale!r} is not one of the supported locales {self.locales}")
        token = _core.set_translator(self.translator(chosen), chosen)
        tz_token = _fmt.set_timezone(self.timezone if timezone is None else timezone)
        try:
            yield chosen
        finally:
            _fmt._timezone.reset(tz_token)
            _core.reset_translator(token)

    # -- URLs -----------------------------------------------------------------------------------

    @staticmethod
    def prefix_of(locale: str) -> str:
        """The URL segment of ``locale``: ``"fr"``, ``"pt-BR"``."""
        return locale.replace("_", "-")

    def locale_of_prefix(self, segment: str) -> str | None:
        """The locale a first path segment names, or ``None``."""
        return self._prefixes.get(segment.lower())

    def url_for(self, name: str, /, locale: str | None = None, **params: Any) -> str:
        """The path of route ``name`` in ``locale`` (default: the current one).

        With ``url_prefix=True`` the path starts with the locale's prefix; otherwise it is
        ``app.url_for``'s (the locale then comes from the cookie or the browser).
        """
        if self.app is None:
            raise ConfigurationError("I18n is not installed: app.install(I18n(...))")
        path = self.app.url_for(name, **params)
        if not self.url_prefix:
            return path
        chosen = _core.get_locale() if locale is None else locale
        return "/" + self.prefix_of(chosen) + path

    def switch_path(self, path: str, locale: str) -> str:
        """``path`` (a path on this site) moved to ``locale``'s prefix, when prefixes are on.

        ``/fr/articles?page=2`` becomes ``/de/articles?page=2``; a path without a prefix
        gets one. Without ``url_prefix`` the path is returned as it is.
        """
        if not self.url_prefix:
            return path
        head, sep, rest = path[1:].partition("/")
        segment = head.split("?", 1)[0]
        if self.locale_of_prefix(segment) is not None:
            path = "/" + rest if sep else "/" + head[len(segment) :]
        if path in ("", "/"):
            return "/" + self.prefix_of(locale) + "/"
        return "/" + self.prefix_of(locale) + path

    # -- locale selection -----------------------------------------------------------------------

    async def select(
        self, scope: Scope, cookies: dict[str, str] | None = None
    ) -> tuple[str, str | None]:
        """The locale for a connection, and the URL prefix segment it came from (or ``None``).

        ``cookies`` are the request's, when already parsed.
        """
        if self.url_prefix:
            segment = _first_segment(scope)
            if segment is not None:
                locale = self.locale_of_prefix(segment)
                if locale is not None:
                    return locale, segment
        if self.locale_selector is not None:
            chosen = self.locale_selector(HTTPConnection(scope))
            if inspect.isawaitable(chosen):
                chosen = await chosen
            if chosen:
                found = self.matcher.match(str(chosen))
                if found is not None:
                    return found, None
        if self.cookie_name is not None:
            if cookies is None:
                cookies = _cookies(scope)
            value = cookies.get(self.cookie_name)
            if value:
                found = self.matcher.match(value)
                if found is not None:
                    return found, None
        accept = _header(scope, b"accept-language")
        if accept:
            found = self.matcher.negotiate(accept)
            if found is not None:
                return found, None
        return self.default_locale, None

    async def select_timezone(
        self, scope: Scope, cookies: dict[str, str] | None = None
    ) -> _dt.tzinfo:
        """The time zone for a connection: the selector's, the cookie's, else the default."""
        if self.timezone_selector is not None:
            chosen = self.timezone_selector(HTTPConnection(scope))
            if inspect.isawaitable(chosen):
                chosen = await chosen
            if isinstance(chosen, _dt.tzinfo):
                return chosen
            if chosen:
                with contextlib.suppress(ValueError):
                    return _fmt.zone(str(chosen))
        if self.timezone_cookie is not None:
            if cookies is None:
                cookies = _cookies(scope)
            value = cookies.get(self.timezone_cookie)
            if value and len(value) <= 64:
                with contextlib.suppress(ValueError):
                    return _fmt.zone(unquote(value))
        return self.timezone

    # -- templates ------------------------------------------------------------------------------

    def configure_templates(self, templates: Templates) -> None:
        """Add ``jinja2.ext.i18n``, the formatting filters and the i18n globals (once)."""
        env = templates.env
        if id(env) in self._configured:
            return
        self._configured.add(id(env))
        env.add_extension("jinja2.ext.i18n")
        # The callables read the active translator (a context variable) on each call, so
        # one environment serves every locale; newstyle: autoescaped, %-formatted.
        env.install_gettext_callables(  # type: ignore[attr-defined]
            _core._translate,
            _core._translate_plural,
            newstyle=True,
            pgettext=_core._translate_context,
            npgettext=_core._translate_context_plural,
        )
        for name in _FILTERS:
            templates.add_filter(name, _per_render(getattr(_fmt, name)))
        templates.add_global("get_locale", _core.get_locale)
        templates.add_global("get_timezone", _fmt.get_timezone)
        templates.add_global("locales", self.locales)
        templates.add_global("locale_name", _locale_name)
        templates.add_global("locale_url", self._locale_url)
        templates.add_global("locale_switcher", self._locale_switcher)

    @jinja2.pass_context
    def _locale_url(self, context: Any, locale: str) -> str:
        """``{{ locale_url("fr") }}``: the current page in another locale (prefixes only)."""
        request = context.get("request")
        if request is None:
            return "/" + self.prefix_of(locale) + "/" if self.url_prefix else "/"
        return self.switch_path(_full_path(request.scope), locale)

    @jinja2.pass_context
    def _locale_switcher(self, context: Any, label: str | None = None) -> Markup:
        """``{{ locale_switcher() }}``: a small form that posts the chosen locale."""
        request = context.get("request")
        current = _core.get_locale()
        path = _full_path(request.scope) if request is not None else "/"
        action = self.switch_prefix + "/locale"
        root = request.scope.get("root_path", "") if request is not None else ""
        if root and self.url_prefix:
            # The switch route lives outside the locale prefix; keep a mount's prefix only.
            segment = root.rsplit("/", 1)[-1]
            if self.locale_of_prefix(segment) is not None:
                root = root[: -len(segment) - 1]
        action = root.rstrip("/") + action
        csrf = Markup("")
        if request is not None and self.app is not None and self.app.settings.sessions:
            from trellis.csrf import FIELD_NAME, csrf_token

            csrf = Markup('<input type="hidden" name="{}" value="{}">').format(
                FIELD_NAME, csrf_token(request)
            )
        options = Markup("").join(
            Markup('<option value="{}" lang="{}"{}>{}</option>').format(
                locale,
                locale.replace("_", "-"),
                Markup(" selected") if locale == current else "",
                _locale_name(locale),
            )
            for locale in self.locales
        )
        text = _core.gettext("Language") if label is None else label
        return Markup(
            '<form method="post" action="{action}" class="locale-switcher">{csrf}'
            '<input type="hidden" name="next" value="{next}">'
            '<label for="locale-switcher">{label}</label> '
            '<select id="locale-switcher" name="locale">{options}</select> '
            '<button type="submit">{button}</button></form>'
        ).format(
            action=action,
            csrf=csrf,
            next=path,
            label=text,
            options=options,
            button=_core.gettext("Change"),
        )

    # -- checks ---------------------------------------------------------------------------------

    def deploy_checks(self, app: App) -> list[DeployProblem]:
        """``i18n.W001``: a catalog of the application is not compiled (or is out of date)."""
        from trellis.checks import DeployProblem

        own = [CatalogSource(d, self.domain) for d in self.directories]
        return [
            DeployProblem(
                id="i18n.W001",
                message=f"The catalog {po} has no up-to-date compiled .mo beside it; it is"
                " compiled in memory at every start.",
                fix="Run `trellis i18n compile` and deploy the .mo files.",
                level="warning",
            )
            for po in uncompiled(own, self.locales)
        ]


def _per_render(fn: Callable[..., str]) -> Callable[..., str]:
    """``fn`` as a filter Jinja2 never runs at compile time.

    Jinja2 folds a filter applied to a constant (``{{ 1234.5|format_decimal }}``) into the
    compiled template, which would freeze the first request's locale; a filter that takes the
    context is always called at render time.
    """

    @jinja2.pass_context
    def filter_(context: Any, /, *args: Any, **kwargs: Any) -> str:
        return fn(*args, **kwargs)

    filter_.__name__ = fn.__name__
    filter_.__doc__ = fn.__doc__
    return filter_


def _locale_name(locale: str) -> str:
    """The name of ``locale`` in its own language: ``français``, ``English``."""
    from babel import Locale

    parsed = Locale.parse(locale)
    name = parsed.get_display_name(parsed) or locale
    return name[:1].upper() + name[1:]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def _cookies(scope: Scope) -> dict[str, str]:
    header = _header(scope, b"cookie")
    return parse_cookie_header(header) if header else {}


def _relative_path(scope: Scope) -> str:
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root) :] or "/"
    return path


def _first_segment(scope: Scope) -> str | None:
    path = _relative_path(scope)
    if len(path) < 2:
        return None
    end = path.find("/", 1)
    return path[1:] if end == -1 else path[1:end]


def _full_path(scope: Scope) -> str:
    """The path the browser asked for (root path included) with its query string."""
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and not path.startswith(root):
        path = root + path
    query: bytes = scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def safe_path(value: str | None, scope: Scope | None = None) -> str | None:
    """``value`` when it is a path on this site (or a same-origin URL), else ``None``."""
    if not value or len(value) > 2048:
        return None
    if any(c < " " or c == "\x7f" or c == "\\" or c.isspace() for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        if scope is None or parts.scheme not in ("http", "https"):
            return None
        host = _header(scope, b"host")
        if not host or parts.netloc.lower() != host.lower() or parts.username is not None:
            return None
        value = parts.path or "/"
        if parts.query:
            value += "?" + parts.query
    if not value.startswith("/") or value.startswith("//"):
        return None
    decoded = value.split("?", 1)[0]
    for _ in range(3):
        once = unquote(decoded)
        if once.startswith("//") or "\\" in once or any(c < " " for c in once):
            return None
        if once == decoded:
            return value
        decoded = once
    return None


class _I18nMiddleware:
    """Sets the locale and time zone of each request (context variables) around the app."""

    def __init__(self, app: ASGIApp, plugin: I18n) -> None:
        self.app = app
        self.plugin = plugin
        # Built with the app, after its templates: the right moment to read the catalogs
        # once and to set up the Jinja2 environment.
        plugin.load()
        owner = plugin.app
        templates = getattr(owner, "templates", None)
        if templates is not None:
            plugin.configure_templates(templates)
        self.negotiates = len(plugin.locales) > 1
        self.reads_cookies = plugin.timezone_cookie is not None or (
            self.negotiates and plugin.cookie_name is not None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        plugin = self.plugin
        # PERF: the cookies are parsed once for the locale and the time zone.
        cookies = _cookies(scope) if self.reads_cookies else {}
        if self.negotiates:
            locale, segment = await plugin.select(scope, cookies)
        else:
            locale, segment = plugin.default_locale, None
        if segment is not None:
            # The prefix becomes part of the root path: routing ignores it and every URL
            # built for this request (url_for, redirects to the login page) keeps it. In
            # place, as a mount does: outer layers find what inner ones store in the scope
            # (the session).
            scope["root_path"] = scope.get("root_path", "").rstrip("/") + "/" + segment
        tz = await plugin.select_timezone(scope, cookies)
        token = _core.set_translator(plugin.translator(locale), locale)
        tz_token = _fmt._timezone.set(tz)
        try:
            if kind == "http":
                vary = self.negotiates and segment is None
                language = _core.get_locale().replace("_", "-").encode("latin-1")

                async def send_localized(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        headers = list(message.get("headers") or ())
                        has_language = has_vary = False
                        for key, _ in headers:
                            lowered = key.lower()
                            if lowered == b"content-language":
                                has_language = True
                            elif lowered == b"vary":
                                has_vary = True
                        if not has_language:
                            headers.append((b"content-language", language))
                        if vary:
                            # The answer depends on these: shared caches must not mix them.
                            if has_vary:
                                add_vary(headers, b"Accept-Language")
                                add_vary(headers, b"Cookie")
                            else:  # PERF: the common case, one header and no merging
                                headers.append((b"vary", b"Accept-Language, Cookie"))
                        message = {**message, "headers": headers}
                    await send(message)

                await self.app(scope, receive, send_localized)
            else:
                await self.app(scope, receive, send)
        finally:
            _fmt._timezone.reset(tz_token)
            _core.reset_translator(token)
