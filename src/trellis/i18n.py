"""Translation hooks for the core and every battery: ``gettext``, ``ngettext``, lazy strings.

Messages are marked with these functions wherever they are written (Python code, batteries,
validation errors). Without a translator they return the English text unchanged, so the core
needs no catalog and imports nothing; ``trellis.contrib.i18n.I18n`` installs a Babel-backed
translator and the request's locale for each request (a context variable), and then the same
calls answer in the user's language.

Example:
    ```python
    from trellis.i18n import gettext as _, lazy_gettext, ngettext

    TITLE = lazy_gettext("Sign in")  # translated each time it is rendered


    def summary(count: int) -> str:
        return ngettext("%(num)d message", "%(num)d messages", count)
    ```
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_LOCALE",
    "N_",
    "LazyString",
    "Translator",
    "get_locale",
    "get_translator",
    "gettext",
    "lazy_gettext",
    "lazy_ngettext",
    "lazy_pgettext",
    "ngettext",
    "npgettext",
    "pgettext",
    "reset_translator",
    "set_translator",
    "use_translator",
]

#: The locale reported when no translator is active.
DEFAULT_LOCALE = "en"


@runtime_checkable
class Translator(Protocol):
    """What a translator offers: the four ``gettext`` functions of the standard library.

    ``gettext.GNUTranslations``, ``gettext.NullTranslations`` and Babel's ``Translations``
    all qualify.
    """

    def gettext(self, message: str, /) -> str: ...  # noqa: D102

    def ngettext(self, singular: str, plural: str, n: int, /) -> str: ...  # noqa: D102

    def pgettext(self, context: str, message: str, /) -> str: ...  # noqa: D102

    def npgettext(  # noqa: D102
        self, context: str, singular: str, plural: str, n: int, /
    ) -> str: ...


# (translator, locale); ``None`` means English text as written.
_active: contextvars.ContextVar[tuple[Translator | None, str] | None] = contextvars.ContextVar(
    "trellis.i18n.active", default=None
)


def set_translator(translator: Translator | None, locale: str = DEFAULT_LOCALE) -> Any:
    """Make ``translator`` (for ``locale``) the active one in the current context.

    The I18n plugin calls this around each request; call it yourself in background jobs or
    scripts (or use ``use_translator``).

    Args:
        translator: The translator, or ``None`` for the identity (English as written).
        locale: The locale's identifier (``"fr"``, ``"pt_BR"``), as ``get_locale()`` reports it.

    Returns:
        A token for ``reset_translator``.
    """
    return _active.set((translator, locale))


def reset_translator(token: Any) -> None:
    """Restore the translator active before the ``set_translator`` call that gave ``token``."""
    _active.reset(token)


@contextlib.contextmanager
def use_translator(translator: Translator | None, locale: str = DEFAULT_LOCALE) -> Iterator[None]:
    """Activate ``translator`` for ``locale`` inside the ``with`` block.

    Example:
        ```python
        import gettext as stdlib_gettext
        from trellis.i18n import gettext, use_translator

        with use_translator(stdlib_gettext.NullTranslations(), "de"):
            assert gettext("Save") == "Save"
        ```
    """
    token = set_translator(translator, locale)
    try:
        yield
    finally:
        reset_translator(token)


def get_translator() -> Translator | None:
    """The active translator, or ``None`` when messages stay as written."""
    active = _active.get()
    return None if active is None else active[0]


def get_locale() -> str:
    """The active locale's identifier (``"en"`` unless a translator for another is active)."""
    active = _active.get()
    return DEFAULT_LOCALE if active is None else active[1]


def _interpolate(text: str, variables: dict[str, Any]) -> str:
    return text % variables if variables else text


# The raw lookups, without %-formatting: Jinja2's newstyle gettext formats (and escapes) itself.
def _translate(message: str) -> str:
    active = _active.get()
    if active is None or active[0] is None:
        return message
    return active[0].gettext(message)


def _translate_plural(singular: str, plural: str, n: int) -> str:
    active = _active.get()
    if active is None or active[0] is None:
        return singular if n == 1 else plural
    return active[0].ngettext(singular, plural, n)


def _translate_context(context: str, message: str) -> str:
    active = _active.get()
    if active is None or active[0] is None:
        return message
    return active[0].pgettext(context, message)


def _translate_context_plural(context: str, singular: str, plural: str, n: int) -> str:
    active = _active.get()
    if active is None or active[0] is None:
        return singular if n == 1 else plural
    return active[0].npgettext(context, singular, plural, n)


def gettext(message: str, /, **variables: Any) -> str:
    """Translate ``message``; ``%(name)s`` placeholders are filled from ``variables``.

    Example:
        ```python
        from trellis.i18n import gettext

        assert gettext("Hello %(name)s", name="Ada") == "Hello Ada"
        ```
    """
    return _interpolate(_translate(message), variables)


def ngettext(singular: str, plural: str, n: int, /, **variables: Any) -> str:
    """Translate the singular or plural form for ``n``; ``%(num)d`` is ``n``.

    As in Jinja2's newstyle ``ngettext``, the text is always %-formatted (with ``num`` and
    ``variables``), so write a literal percent sign as ``%%``.

    Example:
        ```python
        from trellis.i18n import ngettext

        assert ngettext("%(num)d file", "%(num)d files", 3) == "3 files"
        ```
    """
    return _translate_plural(singular, plural, n) % {"num": n, **variables}


def pgettext(context: str, message: str, /, **variables: Any) -> str:
    """Translate ``message`` in ``context`` (``pgettext("month", "May")``)."""
    return _interpolate(_translate_context(context, message), variables)


def npgettext(context: str, singular: str, plural: str, n: int, /, **variables: Any) -> str:
    """``ngettext`` within ``context``; ``%(num)d`` is ``n``."""
    return _translate_context_plural(context, singular, plural, n) % {"num": n, **variables}


def N_(message: str, /) -> str:
    """Mark ``message`` for the catalogs without translating it (``gettext_noop``).

    For texts kept in a constant and translated where they are used:
    ``WRONG = N_("Wrong password")`` ... ``gettext(WRONG)``.
    """
    return message


class LazyString:
    """A message translated each time it is turned into text, in the locale active then.

    Use it for messages defined at import time (module constants, class attributes, field
    labels), when no request and so no locale exists yet. It behaves like the ``str`` it
    renders to: ``str()``, formatting, ``+``, comparison, ``len``, ``in`` and string methods.
    Jinja2 escapes it like any string; the JSON encoder writes it as a string.
    """

    __slots__ = ("_args", "_func", "_kwargs")

    def __init__(self, func: Callable[..., str], /, *args: Any, **kwargs: Any) -> None:
        self._func = func
        self._args = args
        self._kwargs = kwargs

    def __str__(self) -> str:
        return self._func(*self._args, **self._kwargs)

    def __repr__(self) -> str:
        return f"LazyString({str(self)!r})"

    def __json__(self) -> str:
        """The text, for JSON encoders that look for this hook (Trellis' does)."""
        return str(self)

    def __len__(self) -> int:
        return len(str(self))

    def __iter__(self) -> Iterator[str]:
        return iter(str(self))

    def __contains__(self, item: str) -> bool:
        return item in str(self)

    def __getitem__(self, key: int | slice) -> str:
        return str(self)[key]

    def __add__(self, other: object) -> str:
        return str(self) + str(other)

    def __radd__(self, other: object) -> str:
        return str(other) + str(self)

    def __mod__(self, other: Any) -> str:
        text: str = str(self) % other
        return text

    def __mul__(self, n: int) -> str:
        return str(self) * n

    def __eq__(self, other: object) -> bool:
        return str(self) == (str(other) if isinstance(other, LazyString) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __lt__(self, other: object) -> bool:
        return str(self) < str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __bool__(self) -> bool:
        return bool(str(self))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __getattr__(self, name: str) -> Any:
        # str methods (upper, format, startswith ...) act on the rendered text.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(str(self), name)


def lazy_gettext(message: str, /, **variables: Any) -> LazyString:
    """``gettext`` evaluated later, each time the result is rendered (a ``LazyString``).

    Example:
        ```python
        from trellis.i18n import lazy_gettext

        LABEL = lazy_gettext("E-mail address")
        assert str(LABEL) == "E-mail address"
        ```
    """
    return LazyString(gettext, message, **variables)


def lazy_ngettext(singular: str, plural: str, n: int, /, **variables: Any) -> LazyString:
    """``ngettext`` evaluated each time the result is rendered."""
    return LazyString(ngettext, singular, plural, n, **variables)


def lazy_pgettext(context: str, message: str, /, **variables: Any) -> LazyString:
    """``pgettext`` evaluated each time the result is rendered."""
    return LazyString(pgettext, context, message, **variables)
