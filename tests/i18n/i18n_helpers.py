"""Helpers of the i18n battery's tests (``from i18n_helpers import write_catalog``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

Messages = Mapping[str | tuple[str, str], str | tuple[str, ...]]


def write_catalog(
    directory: Path,
    locale: str,
    messages: Messages,
    *,
    domain: str = "messages",
    compiled: bool = True,
) -> Path:
    """Write ``<directory>/<locale>/LC_MESSAGES/<domain>.po`` (and ``.mo``); return the .po.

    Keys are message ids, ``(singular, plural)`` pairs or ``("context", id)`` given as
    ``"context\\x04id"``.
    """
    catalog = Catalog(locale=locale, domain=domain, fuzzy=False)
    for key, string in messages.items():
        context = None
        if isinstance(key, str) and "\x04" in key:
            context, key = key.split("\x04", 1)
        catalog.add(key, string, context=context)
    po = directory / locale / "LC_MESSAGES" / f"{domain}.po"
    po.parent.mkdir(parents=True, exist_ok=True)
    with open(po, "wb") as fp:
        write_po(fp, catalog)
    if compiled:
        with open(po.with_suffix(".mo"), "wb") as fp:
            write_mo(fp, catalog)
    return po
