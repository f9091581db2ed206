"""The catalogs the batteries ship: complete, compiled, and loaded under the application's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from trellis.contrib.i18n import I18n
from trellis.contrib.i18n.catalogs import battery_directories
from trellis.i18n import gettext, ngettext

ROOT = Path(__file__).resolve().parents[2]


def test_every_battery_catalog_is_complete_and_compiled() -> None:
    # Fails when a battery gains a text its catalogs lack, or a .mo lags behind its .po:
    # run `.venv/bin/python scripts/battery_catalogs.py`, translate what it lists, run it again.
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "battery_catalogs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_batteries_ship_french() -> None:
    folders = {source.directory.parent.name for source in battery_directories()}
    assert {"auth", "admin", "forms", "i18n"} <= folders
    for source in battery_directories():
        po = source.directory / "fr" / "LC_MESSAGES" / "messages.po"
        with open(po, "rb") as fp:
            catalog = read_po(fp, locale="fr")
        assert catalog.plural_forms == "nplurals=2; plural=(n > 1);"
        assert po.with_suffix(".mo").is_file()


def test_battery_texts_in_french() -> None:
    with I18n(locales=("en", "fr")).activate("fr"):
        assert gettext("Sign in") == "Se connecter"  # auth
        assert gettext("Dashboard") == "Tableau de bord"  # admin
        assert gettext("This field is required.") == "Ce champ est obligatoire."  # forms
        assert gettext("Field required") == "Champ obligatoire"  # validation
        assert ngettext("%(num)d hour", "%(num)d hours", 1) == "1 heure"
        assert ngettext("%(num)d hour", "%(num)d hours", 2) == "2 heures"
