"""Jinja2 templates: autoescaped HTML pages with ``url_for``, ``static`` and ``request``.

``App`` creates ``app.templates`` (a ``Templates``) at start-up when the ``templates_dir``
setting or any ``Router(templates=...)`` names a folder; handlers then answer with
``render("page.html", **context)``. This module imports Jinja2, so ``trellis`` imports it only
when templates are configured.

Example:
    ```python
    from trellis import App
    from trellis.templating import render

    app = App(templates_dir="templates")

    @app.get("/hello/{name}")
    async def hello(name: str) -> object:
        return render("hello.html", name=name)
    ```
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import jinja2
from jinja2.ext import Extension
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from markupsafe import Markup

from trellis import i18n as _i18n
from trellis.exceptions import ConfigurationError, URLBuildError
from trellis.http.response import HeadersInit, HTMLResponse

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.http.request import Request

__all__ = ["Templates", "bind_request", "current_request", "render"]

#: The request being handled, so ``render()`` and the template globals find it without being
#: passed it. ``App`` sets it around each handler call when templates are configured.
current_request: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "trellis.current_request", default=None
)

#: A template folder (path) or any Jinja2 loader (a ``PackageLoader`` for a plugin's templates).
TemplateSource: TypeAlias = str | os.PathLike[str] | jinja2.BaseLoader
#: A template name, or names to try in order (the first that exists is used).
TemplateName: TypeAlias = str | jinja2.Template | Sequence[str | jinja2.Template]
#: Called with the request (or ``None``) before each render; returns extra context values.
ContextProcessor: TypeAlias = Callable[["Request | None"], Mapping[str, Any]]

# Autoescape every template whatever its extension, and strings too: the safe default.
# A template that must not be escaped says so itself with ``{% autoescape false %}``.
_AUTOESCAPE = jinja2.select_autoescape(
    enabled_extensions=("html", "htm", "xml", "xhtml", "svg", "jinja", "jinja2", "j2"),
    default_for_string=True,
    default=True,
)


@contextlib.contextmanager
def bind_request(request: Request) -> Iterator[Request]:
    """Make ``request`` the current request for ``render()`` inside the ``with`` block.

    ``App`` does this for every handler when templates are configured; call it yourself where
    a request is at hand but Trellis did not bind it (a background task, an ASGI callable
    outside the router).

    Example:
        ```python
        with bind_request(request):
            response = render("page.html")
        ```
    """
    token = current_request.set(request)
    try:
        yield request
    finally:
        current_request.reset(token)


class Templates:
    """A Jinja2 environment that looks for templates in one or more folders, in order.

    Args:
        directories: A template folder, a Jinja2 loader, or a sequence of them; earlier ones
            win when two hold the same name. A relative folder is resolved against the
            current directory now.
        app: The application, for ``url_for`` and ``static`` when rendering without a
            request, and for ``debug`` (templates are reloaded when their files change).
        autoescape: ``True`` (default) escapes every template; pass ``False`` or a
            function ``(name) -> bool`` (``jinja2.select_autoescape``) to change that.
        auto_reload: Check template files for changes on every use; defaults to the app's
            ``debug``.
        extensions: Jinja2 extensions (``"jinja2.ext.i18n"`` ...).
        globals: Extra names visible in every template, besides the built-in ``url_for``,
            ``static``, ``csrf_token()``, ``csrf_input()`` (the hidden form field) and
            ``get_flashed_messages()``.
        filters: Extra filters (``{"money": format_money}``).
        **env_options: Other ``jinja2.Environment`` options (``trim_blocks=True``,
            ``undefined=jinja2.StrictUndefined`` ...).

    Raises:
        ConfigurationError: A folder does not exist.

    Attributes:
        env: The ``jinja2.Environment``; use it for anything this class does not wrap.
        app: The application, or ``None``.
    """

    def __init__(
        self,
        directories: TemplateSource | Sequence[TemplateSource],
        *,
        app: App | None = None,
        autoescape: bool | Callable[[str | None], bool] = True,
        auto_reload: bool | None = None,
        extensions: Sequence[str | type[Extension]] = (),
        globals: Mapping[str, Any] | None = None,
        filters: Mapping[str, Callable[..., Any]] | None = None,
        **env_options: Any,
    ) -> None:
        self.app = app
        self._loaders: list[jinja2.BaseLoader] = []
        if isinstance(directories, str | os.PathLike | jinja2.BaseLoader):
            directories = [directories]
        for source in directories:
            self._add_source(source)
        self._loader = jinja2.ChoiceLoader(self._loaders)
        if auto_reload is None:
            auto_reload = bool(app is not None and app.debug)
        self.env = jinja2.Environment(
            loader=self._loader,
            autoescape=_AUTOESCAPE if autoescape is True else autoescape,
            auto_reload=auto_reload,
            extensions=extensions,
            **env_options,
        )
        self._processors: list[ContextProcessor] = []
        self.env.globals["url_for"] = self._url_for
        self.env.globals["static"] = self._static
        self.env.globals["csrf_token"] = _csrf_token
        self.env.globals["csrf_input"] = _csrf_input
        self.env.globals["get_flashed_messages"] = _get_flashed_messages
        # Translation markers work in every template: English as written until the I18n
        # plugin activates a translator (trellis.i18n), then the request's language.
        self.env.globals.update(_I18N_GLOBALS)
        if globals:
            self.env.globals.update(globals)
        if filters:
            self.env.filters.update(filters)

    # -- folders -------------------------------------------------------------------------------

    def _add_source(self, source: TemplateSource) -> None:
        if isinstance(source, jinja2.BaseLoader):
            self._loaders.append(source)
            return
        folder = os.path.abspath(os.fspath(source))
        if not os.path.isdir(folder):
            raise ConfigurationError(
                f"the template folder {os.fspath(source)!r} does not exist (looked for"
                f" {folder}); create it, or fix the templates_dir setting or the"
                " Router(templates=...) that names it (relative paths start from the"
                " current directory)"
            )
        self._loaders.append(jinja2.FileSystemLoader(folder))

    def _added(self) -> None:
        self._loader.loaders = list(self._loaders)
        # A name looked up before the new folder existed may now resolve elsewhere.
        if self.env.cache is not None:
            self.env.cache.clear()

    @property
    def loaders(self) -> tuple[jinja2.BaseLoader, ...]:
        """The loaders searched, in order (one ``FileSystemLoader`` per folder)."""
        return tuple(self._loaders)

    def add_directory(self, directory: str | os.PathLike[str], *, first: bool = False) -> None:
        """Search ``directory`` too: after the folders already known, or before with ``first``.

        Raises:
            ConfigurationError: The folder does not exist.
        """
        self._add_source(directory)
        if first:
            self._loaders.insert(0, self._loaders.pop())
        self._added()

    def add_package(self, package_name: str, package_path: str = "templates") -> None:
        """Search the ``package_path`` folder inside the installed package ``package_name``.

        This is how a plugin ships its templates: ``templates.add_package("blog_plugin")``.
        The app's own folders come first, so a project overrides a plugin's template by
        putting a file with the same name in its own folder.
        """
        self.add_loader(jinja2.PackageLoader(package_name, package_path))

    def add_loader(self, loader: jinja2.BaseLoader) -> None:
        """Search any Jinja2 loader after the folders already known."""
        self._loaders.append(loader)
        self._added()

    # -- globals, filters, context -------------------------------------------------------------

    def add_global(self, name: str, value: Any) -> None:
        """Make ``value`` visible as ``name`` in every template."""
        self.env.globals[name] = value

    def add_filter(self, name: str, fn: Callable[..., Any]) -> None:
        """Add the filter ``name`` (used as ``{{ value|name }}``)."""
        self.env.filters[name] = fn

    def add_context_processor(self, fn: ContextProcessor) -> None:
        """Run ``fn(request)`` before every render and add what it returns to the context.

        ``request`` is ``None`` when rendering without one (an e-mail). Values passed to
        ``render`` win over the processor's. Plugins use this to offer per-request values
        (the current user, a CSRF token) to every template.
        """
        self._processors.append(fn)

    def context(self, request: Request | None, context: Mapping[str, Any]) -> dict[str, Any]:
        """Build the context a template sees: ``request``, the processors' values, ``context``."""
        ctx: dict[str, Any] = {"request": request}
        for processor in self._processors:
            ctx.update(processor(request))
        ctx.update(context)
        return ctx

    # -- rendering -----------------------------------------------------------------------------

    def get_template(self, name: TemplateName) -> jinja2.Template:
        """Load (or take from the cache) the template ``name``, or the first of a list.

        Raises:
            jinja2.TemplateNotFound: No folder holds it.
        """
        if isinstance(name, str | jinja2.Template):
            return self.env.get_template(name)
        return self.env.select_template(name)

    def render_string(
        self, name: TemplateName, /, request: Request | None = None, **context: Any
    ) -> str:
        """Render the template ``name`` with ``context`` and return the text.

        Args:
            name: The template, or a list of names of which the first that exists is used.
            request: The request the template sees as ``request``; defaults to the current
                one (``None`` outside a request, as when rendering an e-mail).
            **context: Values for the template.
        """
        if request is None:
            request = current_request.get()
        return self.get_template(name).render(self.context(request, context))

    def render(
        self,
        name: TemplateName,
        /,
        request: Request | None = None,
        *,
        status_code: int = 200,
        headers: HeadersInit = None,
        media_type: str = "text/html",
        **context: Any,
    ) -> HTMLResponse:
        """Render the template ``name`` into an HTML response.

        Args:
            name: The template, or a list of names of which the first that exists is used.
            request: The request the template sees; defaults to the current one.
            status_code: The response status.
            headers: Extra response headers.
            media_type: The content type (``charset=utf-8`` is added for ``text/*``).
            **context: Values for the template. ``request``, ``status_code``, ``headers``
                and ``media_type`` are taken by ``render`` itself.
        """
        body = self.render_string(name, request, **context)
        return HTMLResponse(body, status_code, headers, media_type)

    # -- template globals ----------------------------------------------------------------------

    @jinja2.pass_context
    def _url_for(self, context: Context, name: str, /, **params: Any) -> str:
        request: Request | None = context.get("request")
        if request is None:
            request = current_request.get()
        app = self.app if self.app is not None else getattr(request, "app", None)
        if app is None:
            raise ConfigurationError(
                f"url_for({name!r}) in a template needs the app: render with a request, or"
                " create Templates(..., app=app)"
            )
        path: str = app.url_for(name, **params)
        if request is not None:
            # Behind a proxy prefix or inside a mount, links must keep the prefix.
            root: str = request.scope.get("root_path", "")
            if root:
                path = root.rstrip("/") + path
        return path

    @jinja2.pass_context
    def _static(self, context: Context, path: str) -> str:
        try:
            return self._url_for(context, "static", path=path)
        except URLBuildError:
            raise URLBuildError(
                f"static({path!r}) in a template: nothing is mounted under the name 'static';"
                ' serve the files with app.static("/static", "static")'
            ) from None


def _context_request(context: Context, what: str) -> Request:
    request: Request | None = context.get("request")
    if request is None:
        request = current_request.get()
    if request is None:
        raise RuntimeError(
            f"{what}() in a template needs the request: render inside a handler or pass request=..."
        )
    return request


@jinja2.pass_context
def _csrf_token(context: Context) -> str:
    """``{{ csrf_token() }}``: a CSRF token for the current session, masked afresh."""
    from trellis.csrf import csrf_token

    return csrf_token(_context_request(context, "csrf_token"))


@jinja2.pass_context
def _csrf_input(context: Context) -> Markup:
    """``{{ csrf_input() }}``: the hidden form field that carries the CSRF token."""
    from trellis.csrf import FIELD_NAME, csrf_token

    token = csrf_token(_context_request(context, "csrf_input"))
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD_NAME, token)


@jinja2.pass_context
def _get_flashed_messages(
    context: Context, with_categories: bool = False, category_filter: Sequence[str] = ()
) -> list[Any]:
    """``{% for m in get_flashed_messages() %}``: the flashed messages, consumed."""
    from trellis.sessions import get_flashed_messages

    return get_flashed_messages(
        _context_request(context, "get_flashed_messages"),
        with_categories=with_categories,
        category_filter=category_filter,
    )


# -- translation globals (Jinja2 "newstyle" gettext semantics) ---------------------------------
# Like jinja2.ext.i18n with newstyle=True: the translated text is %-formatted with the keyword
# arguments, and in autoescaped templates it is Markup so the arguments get escaped.


def _i18n_format(eval_ctx: EvalContext, text: str, variables: dict[str, Any]) -> str:
    if eval_ctx.autoescape:
        return Markup(text) % variables
    return text % variables


@jinja2.pass_eval_context
def _template_gettext(eval_ctx: EvalContext, message: str, /, **variables: Any) -> str:
    """``{{ _("Save") }}`` / ``{{ gettext("Hello %(name)s", name=user) }}``."""
    return _i18n_format(eval_ctx, _i18n._translate(message), variables)


@jinja2.pass_eval_context
def _template_ngettext(
    eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **variables: Any
) -> str:
    """``{{ ngettext("%(num)d file", "%(num)d files", n) }}``."""
    variables.setdefault("num", num)
    return _i18n_format(eval_ctx, _i18n._translate_plural(singular, plural, num), variables)


@jinja2.pass_eval_context
def _template_pgettext(
    eval_ctx: EvalContext, context: str, message: str, /, **variables: Any
) -> str:
    """``{{ pgettext("month", "May") }}``."""
    return _i18n_format(eval_ctx, _i18n._translate_context(context, message), variables)


@jinja2.pass_eval_context
def _template_npgettext(
    eval_ctx: EvalContext, context: str, singular: str, plural: str, num: int, /, **variables: Any
) -> str:
    """``{{ npgettext("inbox", "%(num)d message", "%(num)d messages", n) }}``."""
    variables.setdefault("num", num)
    text = _i18n._translate_context_plural(context, singular, plural, num)
    return _i18n_format(eval_ctx, text, variables)


_I18N_GLOBALS: dict[str, Any] = {
    "_": _template_gettext,
    "gettext": _template_gettext,
    "ngettext": _template_ngettext,
    "pgettext": _template_pgettext,
    "npgettext": _template_npgettext,
    "get_locale": _i18n.get_locale,
}


def render(
    name: TemplateName,
    /,
    request: Request | None = None,
    *,
    status_code: int = 200,
    headers: HeadersInit = None,
    media_type: str = "text/html",
    **context: Any,
) -> HTMLResponse:
    """Render the template ``name`` with the app's templates into an HTML response.

    Inside a handler the request (and through it the app) is found on its own; elsewhere
    pass ``request=``.

    Args:
        name: The template, or a list of names of which the first that exists is used.
        request: The request; defaults to the one being handled.
        status_code: The response status.
        headers: Extra response headers.
        media_type: The content type (``charset=utf-8`` is added for ``text/*``).
        **context: Values for the template. ``request``, ``status_code``, ``headers`` and
            ``media_type`` are taken by ``render`` itself.

    Raises:
        RuntimeError: There is no request to render for.
        ConfigurationError: The app has no template folder.
        jinja2.TemplateNotFound: No folder holds the template (a 500 for the client).

    Example:
        ```python
        @app.get("/posts/{id:int}")
        async def show_post(id: int) -> object:
            return render("post.html", post=await load_post(id))
        ```
    """
    if request is None:
        request = current_request.get()
        if request is None:
            raise RuntimeError(
                "render() needs the request: pass request=request or call it inside a handler"
            )
    templates: Templates | None = getattr(request.scope.get("app"), "templates", None)
    if templates is None:
        raise ConfigurationError(
            f"render({name!r}): the app has no template folder; set templates_dir"
            ' (App(templates_dir="templates") or TRELLIS_TEMPLATES_DIR) or give a router'
            " templates=..."
        )
    return templates.render(
        name, request, status_code=status_code, headers=headers, media_type=media_type, **context
    )
