"""Refresh the message catalogs the Trellis batteries ship (maintainers' tool).

Usage (from the repository root)::

    .venv/bin/python scripts/battery_catalogs.py           # extract, update every .po, compile
    .venv/bin/python scripts/battery_catalogs.py --check   # exit 1 if a catalog is behind

For each battery with a ``locale`` folder (``src/trellis/contrib/<battery>/locale``), the
texts are extracted from the battery's Python files and templates, merged into each
``<locale>/LC_MESSAGES/messages.po`` (translations are kept; new texts arrive untranslated,
changed ones are dropped rather than guessed), and the ``.po`` is compiled to its ``.mo``.
Then translate what the script lists as missing, in the ``.po``, and run it again.

To add a language to a battery: ``mkdir -p src/trellis/contrib/<battery>/locale/<code>`` and
run the script: it starts that catalog.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gettext
import io
import sys
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from trellis.contrib.i18n.cli import extract_messages

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "src" / "trellis" / "contrib"
#: Message helpers some batteries use besides the standard keywords.
EXTRA_KEYWORDS: dict[str, dict[str, Any]] = {"forms": {"_s": None, "_n": (1, 2)}}
#: Where the texts of a battery are, besides its own folder.
EXTRA_SOURCES: dict[str, list[Path]] = {"i18n": [ROOT / "src" / "trellis" / "i18n.py"]}


def batteries() -> list[str]:
    """The batteries that ship catalogs."""
    return sorted(p.parent.name for p in CONTRIB.glob("*/locale") if p.is_dir())


def template(battery: str) -> Catalog:
    """The battery's texts, freshly extracted."""
    sources = [CONTRIB / battery, *EXTRA_SOURCES.get(battery, [])]
    return extract_messages(
        [str(s.relative_to(ROOT)) for s in sources],
        skip=[CONTRIB / battery / "locale"],
        project="Trellis",
        keywords=EXTRA_KEYWORDS.get(battery),
        warn=lambda text: print(f"warning: {text}", file=sys.stderr),
    )


def _translated(message: Any) -> bool:
    string = message.string
    return bool(all(string) if isinstance(string, tuple) else string) and not message.fuzzy


def refreshed(battery: str, code: str, pot: Catalog) -> tuple[Catalog, list[str]]:
    """One catalog brought up to date with the sources, and the texts it lacks."""
    po = CONTRIB / battery / "locale" / code / "LC_MESSAGES" / "messages.po"
    if po.is_file():
        with open(po, "rb") as fp:
            catalog = read_po(fp, locale=code)
    else:
        catalog = Catalog(locale=code, project="Trellis", fuzzy=False)
        language = catalog.locale.english_name if catalog.locale else code
        catalog.header_comment = (
            f"# {language} translations of the Trellis {battery} battery.\n"
            "# Distributed under the same license as Trellis (MIT).\n#"
        )
    catalog.update(pot, no_fuzzy_matching=True, update_creation_date=False)
    catalog.obsolete.clear()
    catalog.fuzzy = False
    missing = [str(m.id) for m in catalog if m.id and not _translated(m)]
    return catalog, missing


def _po_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=76, include_lineno=False)
    # The dates change on every run; they do not make a catalog different.
    return b"\n".join(
        line
        for line in out.getvalue().splitlines()
        if not line.startswith((b'"POT-Creation-Date:', b'"PO-Revision-Date:'))
    )


def _mo_messages(data: bytes) -> dict[Any, Any]:
    if not data:
        return {}
    messages = dict(gettext.GNUTranslations(io.BytesIO(data))._catalog)  # type: ignore[attr-defined]
    messages.pop("", None)  # the header, with its dates
    return messages


def main() -> int:
    """Refresh (or with --check, verify) every battery catalog; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; fail if behind")
    args = parser.parse_args()
    behind = False
    for battery in batteries():
        pot = template(battery)
        for folder in sorted((CONTRIB / battery / "locale").iterdir()):
            if not folder.is_dir():
                continue
            po_path = folder / "LC_MESSAGES" / "messages.po"
            mo_path = po_path.with_suffix(".mo")
            old_po = b""
            if po_path.is_file():
                with open(po_path, "rb") as fp:
                    old_po = _po_bytes(read_po(fp, locale=folder.name))
            catalog, missing = refreshed(battery, folder.name, pot)
            mo = io.BytesIO()
            write_mo(mo, catalog)
            old_mo = mo_path.read_bytes() if mo_path.is_file() else b""
            changed = _po_bytes(catalog) != old_po or _mo_messages(mo.getvalue()) != _mo_messages(
                old_mo
            )
            where = po_path.relative_to(ROOT)
            for text in missing:
                print(f"{where}: untranslated: {text!r}")
            if args.check:
                if changed or missing:
                    behind = True
                    print(f"{where}: behind the sources (run scripts/battery_catalogs.py)")
                continue
            if changed:
                catalog.revision_date = dt.datetime.now(dt.UTC)
                po_path.parent.mkdir(parents=True, exist_ok=True)
                with open(po_path, "wb") as fp:
                    write_po(fp, catalog, width=76, include_lineno=False)
                with open(mo_path, "wb") as fp:
                    write_mo(fp, catalog)
                print(f"{where}: updated ({len(missing)} untranslated)")
    return 1 if behind else 0


if __name__ == "__main__":
    sys.exit(main())
