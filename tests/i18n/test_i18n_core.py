"""trellis.i18n, the core hooks: identity without a translator, the active one's text with one."""

from __future__ import annotations

import gettext as stdlib_gettext
import json
import re
import subprocess
import sys

import jinja2
import pytest

from trellis.http._json import dumps
from trellis.i18n import (
    N_,
    LazyString,
    Translator,
    get_locale,
    get_translator,
    gettext,
    lazy_gettext,
    lazy_ngettext,
    lazy_pgettext,
    ngettext,
    npgettext,
    pgettext,
    reset_translator,
    set_translator,
    use_translator,
)
from trellis.templating import Templates


def shout(text: str) -> str:
    """Upper-case ``text`` but its %(placeholders)s."""
    return re.sub(
        r"%\([a-z_]+\)[sd]|[^%]+", lambda m: m[0] if m[0][0] == "%" else m[0].upper(), text
    )


class Shouting(stdlib_gettext.NullTranslations):
    """A translator that upper-cases: easy to recognise, with French plural rules."""

    def gettext(self, message: str) -> str:
        return shout(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return shout(singular if n <= 1 else plural)

    def pgettext(self, context: str, message: str) -> str:
        return shout(f"{context}:{message}")

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return shout(f"{context}:{singular if n <= 1 else plural}")


def test_identity_without_a_translator() -> None:
    assert get_translator() is None
    assert get_locale() == "en"
    assert gettext("Save") == "Save"
    assert gettext("Hello %(name)s", name="Ada") == "Hello Ada"
    assert gettext("100%") == "100%"  # no variables: not %-formatted
    assert ngettext("%(num)d file", "%(num)d files", 1) == "1 file"
    assert ngettext("%(num)d file", "%(num)d files", 0) == "0 files"
    assert ngettext("%(num)d of %(total)d", "%(num)d of %(total)d", 2, total=5) == "2 of 5"
    assert pgettext("month", "May") == "May"
    assert npgettext("inbox", "%(num)d message", "%(num)d messages", 3) == "3 messages"
    assert N_("marked") == "marked"


def test_the_active_translator_answers() -> None:
    with use_translator(Shouting(), "fr"):
        assert get_locale() == "fr"
        assert isinstance(get_translator(), Translator)
        assert gettext("Hello %(name)s", name="ada") == "HELLO ada"
        assert ngettext("%(num)d file", "%(num)d files", 1) == "1 FILE"  # French: 0 and 1
        assert ngettext("%(num)d file", "%(num)d files", 2) == "2 FILES"
        assert pgettext("month", "May") == "MONTH:MAY"
        assert npgettext("box", "%(num)d item", "%(num)d items", 5) == "BOX:5 ITEMS"
    assert gettext("Save") == "Save"
    assert get_locale() == "en"


def test_set_and_reset_nest() -> None:
    outer = set_translator(Shouting(), "fr")
    try:
        inner = set_translator(None, "de")
        assert gettext("Save") == "Save"
        assert get_locale() == "de"
        reset_translator(inner)
        assert gettext("Save") == "SAVE"
    finally:
        reset_translator(outer)
    assert get_locale() == "en"


def test_lazy_strings_translate_when_rendered() -> None:
    label = lazy_gettext("E-mail")
    plural = lazy_ngettext("%(num)d day", "%(num)d days", 2)
    month = lazy_pgettext("month", "May")
    assert isinstance(label, LazyString)
    assert str(label) == "E-mail"
    with use_translator(Shouting(), "fr"):
        assert str(label) == "E-MAIL"
        assert f"{plural}" == "2 DAYS"
        assert str(month) == "MONTH:MAY"
        assert label == "E-MAIL"
    assert str(label) == "E-mail"


def test_lazy_strings_behave_like_text() -> None:
    label = lazy_gettext("Name")
    assert label + ":" == "Name:"
    assert "> " + label == "> Name"
    assert len(label) == 4
    assert "am" in label
    assert label[0] == "N"
    assert list(label) == ["N", "a", "m", "e"]
    assert label.upper() == "NAME"
    assert label.startswith("Na")
    assert label == lazy_gettext("Name")
    assert label != "Other"
    assert label < "Zed"
    assert hash(label) == hash("Name")
    assert bool(label) and not bool(lazy_gettext(""))
    assert lazy_gettext("%(n)s items") % {"n": 3} == "3 items"
    assert label * 2 == "NameName"
    assert f"{label:>6}" == "  Name"
    assert repr(label) == "LazyString('Name')"
    assert lazy_gettext("Hi %(who)s", who="you") == "Hi you"
    with pytest.raises(AttributeError):
        label.__no_such_thing__  # noqa: B018


def test_lazy_strings_encode_as_json_strings() -> None:
    payload = {"label": lazy_gettext("Tom & Jerry")}
    assert json.loads(dumps(payload)) == {"label": "Tom & Jerry"}
    with use_translator(Shouting(), "fr"):
        assert json.loads(dumps(payload)) == {"label": "TOM & JERRY"}


def templates(source: str) -> Templates:
    return Templates(jinja2.DictLoader({"page.html": source, "page.txt": source}))


def test_templates_can_always_mark_strings() -> None:
    page = templates(
        '{{ _("Save") }}|{{ gettext("Hi %(name)s", name=who) }}|'
        '{{ ngettext("%(num)d file", "%(num)d files", n) }}|{{ pgettext("month", "May") }}|'
        '{{ npgettext("box", "%(num)d item", "%(num)d items", 1) }}|{{ get_locale() }}'
    )
    assert page.render_string("page.html", who="<b>", n=2) == (
        "Save|Hi &lt;b&gt;|2 files|May|1 item|en"
    )
    with use_translator(Shouting(), "fr"):
        assert page.render_string("page.html", who="<b>", n=1) == (
            "SAVE|HI &lt;b&gt;|1 FILE|MONTH:MAY|BOX:1 ITEM|fr"
        )


def test_template_variables_are_escaped_but_not_the_text() -> None:
    page = templates('{{ _("<em>%(name)s</em>", name=name) }}')
    assert page.render_string("page.html", name="<script>") == "<em>&lt;script&gt;</em>"
    plain = Templates(jinja2.DictLoader({"a.txt": '{{ _("%(name)s", name=name) }}'}))
    plain.env.autoescape = False
    assert plain.render_string("a.txt", name="<b>") == "<b>"


def test_lazy_strings_render_in_templates() -> None:
    page = templates("{{ label }}")
    with use_translator(Shouting(), "fr"):
        assert page.render_string("page.html", label=lazy_gettext("a & b")) == "A &amp; B"


def test_the_core_module_does_not_load_babel() -> None:
    code = "import sys, trellis.i18n, trellis.templating; print('babel' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"
