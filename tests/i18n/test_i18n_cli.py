"""``trellis i18n``: extract -> init -> translate -> compile -> the page shows the translation."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from click.testing import CliRunner, Result

from trellis.cli import main
from trellis.testing import TestClient

APP = """\
from trellis import App
from trellis.contrib.i18n import I18n
from trellis.i18n import gettext as _, lazy_gettext
from trellis.templating import Templates, render

app = App(debug=True, secret_key="s" * 40)
app.templates = Templates("templates", app=app, extensions=["jinja2.ext.loopcontrols"])
app.install(I18n(locales=("en", "fr")))

TITLE = lazy_gettext("Our shop")


@app.get("/")
async def index() -> object:
    # TRANSLATORS: the greeting on the home page
    return render("index.html", title=TITLE, greeting=_("Welcome back"), count=3)
"""

INDEX = """\
<h1>{{ title }}</h1>
<p>{{ greeting }}</p>
<p>{{ ngettext("%(num)d product", "%(num)d products", count) }}</p>
{% for i in [1, 2] %}{% break %}{% endfor %}
<p>{% trans %}Thank you for visiting{% endtrans %}</p>
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for name in ("TRELLIS_APP", "TRELLIS_APP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "index.html").write_text(INDEX, encoding="utf-8")
    modules = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def trellis(project: Path, *args: str) -> str:
    """Run the real ``trellis`` command in a child process, in the project folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    completed = subprocess.run(
        [sys.executable, "-m", "trellis.cli", "--app", "app.py", "i18n", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout + completed.stderr


def translate(po: Path, translations: dict[str, str]) -> None:
    """Fill msgstr lines by hand, as a translator's editor would."""
    text = po.read_text(encoding="utf-8")
    for msgid, msgstr in translations.items():
        text = text.replace(f'msgid "{msgid}"\nmsgstr ""', f'msgid "{msgid}"\nmsgstr "{msgstr}"')
    po.write_text(text, encoding="utf-8")


def home(project: Path, language: str) -> str:
    namespace = runpy.run_path(str(project / "app.py"))
    client = TestClient(namespace["app"])
    response = client.get("/", headers={"accept-language": language})
    assert response.status_code == 200, response.text
    return response.text


def test_the_whole_pipeline(project: Path) -> None:
    out = trellis(project, "extract")
    assert "extracted 4 messages to locale/messages.pot" in out
    pot = (project / "locale" / "messages.pot").read_text(encoding="utf-8")
    for msgid in ("Our shop", "Welcome back", "%(num)d product", "Thank you for visiting"):
        assert f'msgid "{msgid}"' in pot
    assert 'msgid_plural "%(num)d products"' in pot
    assert "#. the greeting on the home page" in pot
    assert "#: app.py:" in pot and "#: templates/index.html:" in pot

    out = trellis(project, "init", "fr")
    po = project / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
    assert "created locale/fr/LC_MESSAGES/messages.po" in out
    assert '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"' in po.read_text(encoding="utf-8")

    translate(po, {"Our shop": "Notre boutique", "Welcome back": "Bon retour parmi nous"})
    text = po.read_text(encoding="utf-8").replace(
        'msgid_plural "%(num)d products"\nmsgstr[0] ""\nmsgstr[1] ""',
        'msgid_plural "%(num)d products"\nmsgstr[0] "%(num)d produit"\n'
        'msgstr[1] "%(num)d produits"',
    )
    po.write_text(text, encoding="utf-8")
    out = trellis(project, "compile")
    assert "compiled locale/fr/LC_MESSAGES/messages.mo (3 of 4 messages translated)" in out

    french = home(project, "fr")
    assert "<h1>Notre boutique</h1>" in french
    assert "<p>Bon retour parmi nous</p>" in french
    assert "<p>3 produits</p>" in french
    assert "<p>Thank you for visiting</p>" in french  # not translated yet
    english = home(project, "en")
    assert "<h1>Our shop</h1>" in english and "<p>3 products</p>" in english

    # A new message: extract again, update keeps the translations, compile.
    index = project / "templates" / "index.html"
    index.write_text(INDEX + '<footer>{{ _("See you soon") }}</footer>\n', encoding="utf-8")
    trellis(project, "extract")
    assert "updated locale/fr/LC_MESSAGES/messages.po" in trellis(project, "update")
    with open(po, "rb") as fp:
        catalog = read_po(fp, locale="fr")
    assert catalog["Our shop"].string == "Notre boutique"
    assert catalog["See you soon"] is not None
    translate(po, {"See you soon": "À bientôt", "Thank you for visiting": "Merci de votre visite"})
    trellis(project, "compile")
    french = home(project, "fr")
    assert "<footer>À bientôt</footer>" in french
    assert "<p>Merci de votre visite</p>" in french


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["--app", "app.py", "i18n", *args])


def test_help_lists_the_commands(project: Path) -> None:
    result = run("--help")
    assert result.exit_code == 0, result.output
    for name in ("extract", "init", "update", "compile"):
        assert name in result.output


def test_init_needs_the_template(project: Path) -> None:
    result = run("init", "fr")
    assert result.exit_code == 1
    assert "run `trellis i18n extract` first" in result.output


def test_init_refuses_to_overwrite(project: Path) -> None:
    assert run("extract").exit_code == 0
    assert run("init", "fr").exit_code == 0
    again = run("init", "fr")
    assert again.exit_code == 1
    assert "exists: `trellis i18n update`" in again.output
    assert run("init", "fr", "--force").exit_code == 0


def test_init_knows_locales(project: Path) -> None:
    run("extract")
    result = run("init", "xx_nowhere")
    assert result.exit_code == 1
    assert "unknown locale 'xx_nowhere'" in result.output
    assert run("init", "pt-br").exit_code == 0
    assert (project / "locale" / "pt_BR" / "LC_MESSAGES" / "messages.po").is_file()


def test_update_and_compile_need_catalogs(project: Path) -> None:
    assert "run `trellis i18n extract` first" in run("update").output
    run("extract")
    result = run("update")
    assert result.exit_code == 1
    assert "run `trellis i18n init LOCALE`" in result.output
    compile_result = run("compile")
    assert compile_result.exit_code == 1
    assert "run `trellis i18n init LOCALE`" in compile_result.output
    assert "run `trellis i18n init de`" in run("compile", "-l", "de").output
    assert "run `trellis i18n init de`" in run("update", "-l", "de").output


def test_compile_refuses_broken_placeholders(project: Path) -> None:
    run("extract")
    run("init", "fr")
    po = project / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8").replace(
        'msgid_plural "%(num)d products"\nmsgstr[0] ""\nmsgstr[1] ""',
        'msgid_plural "%(num)d products"\nmsgstr[0] "%(nombre)d produit"\nmsgstr[1] "produits"',
    )
    po.write_text(text, encoding="utf-8")
    result = run("compile")
    assert result.exit_code == 1
    assert "not compiled: locale/fr/LC_MESSAGES/messages.po" in result.output
    assert not po.with_suffix(".mo").exists()


def test_options_for_sources_outputs_and_directories(project: Path) -> None:
    (project / "lib").mkdir()
    (project / "lib" / "extra.py").write_text('from trellis.i18n import N_\nX = N_("Extra")\n')
    (project / "lib" / ".hidden").mkdir()
    (project / "lib" / ".hidden" / "skip.py").write_text('_("Hidden")\n')
    result = run("extract", "-s", "lib", "-o", "out/extra.pot", "--project", "Shop")
    assert result.exit_code == 0, result.output
    pot = (project / "out" / "extra.pot").read_text(encoding="utf-8")
    assert 'msgid "Extra"' in pot and "Hidden" not in pot and "Our shop" not in pot
    assert "Project-Id-Version: Shop" in pot
    assert run("init", "de", "-i", "out/extra.pot", "-d", "translations").exit_code == 0
    assert (project / "translations" / "de" / "LC_MESSAGES" / "messages.po").is_file()
    assert run("compile", "-d", "translations").exit_code == 0
    assert (project / "translations" / "de" / "LC_MESSAGES" / "messages.mo").is_file()


def test_a_broken_template_is_reported_and_skipped(project: Path) -> None:
    (project / "templates" / "broken.html").write_text('{{ _("Lost") }}{% if %}')
    result = CliRunner().invoke(main, ["--app", "app.py", "i18n", "extract"])
    assert result.exit_code == 0, result.output
    assert "warning: skipped" in result.output and "broken.html" in result.output
    pot = (project / "locale" / "messages.pot").read_text(encoding="utf-8")
    assert 'msgid "Welcome back"' in pot and "Lost" not in pot


def test_the_catalog_folder_is_not_searched(project: Path) -> None:
    (project / "locale").mkdir()
    (project / "locale" / "stray.py").write_text('_("Stray")\n')
    run("extract")
    assert "Stray" not in (project / "locale" / "messages.pot").read_text(encoding="utf-8")


def test_text_templates_are_read_inside_templates_folders(project: Path) -> None:
    (project / "templates" / "mail.txt").write_text('{{ _("Mail body") }}\n')
    (project / "notes.txt").write_text('{{ _("Not a template") }}\n')
    run("extract")
    pot = (project / "locale" / "messages.pot").read_text(encoding="utf-8")
    assert 'msgid "Mail body"' in pot and "Not a template" not in pot


def test_fuzzy_translations_need_a_flag(project: Path) -> None:
    run("extract")
    run("init", "fr")
    po = project / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8").replace(
        'msgid "Our shop"\nmsgstr ""', '#, fuzzy\nmsgid "Our shop"\nmsgstr "Notre boutique"'
    )
    po.write_text(text, encoding="utf-8")
    assert "(0 of 4 messages translated)" in run("compile").output
    assert "(1 of 4 messages translated)" in run("compile", "--use-fuzzy").output


def test_the_command_group_alone(project: Path) -> None:
    # Without an application, the module works from the plugin object too.
    from trellis.contrib.i18n import I18n
    from trellis.contrib.i18n.cli import i18n_command

    group = i18n_command(I18n(directory=project / "translations"))
    result = CliRunner().invoke(group, ["extract", "-s", "templates"])
    assert result.exit_code == 0, result.output
    assert (project / "translations" / "messages.pot").is_file()
