"""Loading the message catalogs once: the application's, then every battery's, merged.

A catalog directory has the gettext layout, ``<directory>/<locale>/LC_MESSAGES/<domain>.mo``
(``trellis i18n compile`` writes it from the ``.po`` beside it). For each supported locale
the catalogs of all directories are merged into one ``babel.support.Translations``: the
application's directories first win, then the batteries' (auth, admin, forms, the core
validation messages), so a project overrides any battery message in its own catalog.

A ``.po`` without its ``.mo`` is compiled in memory (handy while translating; ``trellis
check --deploy`` reports it as ``i18n.W001``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from trellis.exceptions import ConfigurationError

__all__ = ["CatalogSource", "battery_directories", "load_translations", "parse_locale"]

#: The folder holding the trellis batteries (``trellis/contrib``).
_CONTRIB = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CatalogSource:
    """One catalog directory and the gettext domain its files are named after."""

    directory: Path
    domain: str = "messages"


def parse_locale(identifier: str) -> str:
    """The canonical Babel identifier of a locale (``"pt-br"`` → ``"pt_BR"``).

    Raises:
        ConfigurationError: Babel does not know the locale.
    """
    try:
        return str(Locale.parse(identifier.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ConfigurationError(
            f"unknown locale {identifier!r}: use a language code such as 'fr' or 'pt_BR'"
        ) from None


def battery_directories() -> list[CatalogSource]:
    """The ``locale`` folders the trellis batteries ship (``trellis/contrib/*/locale``)."""
    found = []
    for child in sorted(_CONTRIB.iterdir()):
        folder = child / "locale"
        if child.is_dir() and folder.is_dir():
            found.append(CatalogSource(folder))
    return found


def _candidates(locale: str) -> list[str]:
    names = [locale]
    language = locale.split("_", 1)[0]
    if language != locale:
        names.append(language)
    return names


def _load_one(source: CatalogSource, locale: str) -> Translations | None:
    for name in _candidates(locale):
        base = source.directory / name / "LC_MESSAGES" / source.domain
        mo = base.with_suffix(".mo")
        if mo.is_file():
            with open(mo, "rb") as fp:
                return Translations(fp, domain=source.domain)
        po = base.with_suffix(".po")
        if po.is_file():
            return _compile_po(po, name, source.domain)
    return None


def _compile_po(path: Path, locale: str, domain: str) -> Translations:
    with open(path, "rb") as fp:
        catalog = read_po(fp, locale=locale, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def load_translations(sources: Sequence[CatalogSource], locale: str) -> Translations | None:
    """The merged translations of ``locale`` from ``sources`` (first wins), or ``None``.

    ``None`` means no directory has a catalog for it: messages stay as written.
    """
    loaded = [t for t in (_load_one(source, locale) for source in sources) if t is not None]
    if not loaded:
        return None
    # Translations.merge lets the merged-in catalog win: start from the last (weakest).
    merged = loaded[-1]
    for translations in reversed(loaded[:-1]):
        merged.merge(translations)
    # The plural rule of the strongest catalog (they agree for one language anyway).
    merged.plural = loaded[0].plural
    return merged


def uncompiled(sources: Iterable[CatalogSource], locales: Iterable[str]) -> list[Path]:
    """The ``.po`` files of ``locales`` that have no ``.mo`` beside them, or an older one."""
    stale = []
    for source in sources:
        for locale in locales:
            for name in _candidates(locale):
                po = source.directory / name / "LC_MESSAGES" / f"{source.domain}.po"
                mo = po.with_suffix(".mo")
                if po.is_file() and (
                    not mo.is_file() or os.path.getmtime(mo) < os.path.getmtime(po)
                ):
                    stale.append(po)
    return stale
