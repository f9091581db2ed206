"""Drawing forms: accessible markup, values kept on error, and every value escaped."""

from __future__ import annotations

import datetime
import decimal
import re
from typing import Any

import jinja2
import pytest
from markupsafe import Markup

from trellis.contrib.forms import (
    BooleanField,
    ChoiceField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    FileField,
    Form,
    HiddenField,
    IntegerField,
    MultipleChoiceField,
    PasswordField,
    StringField,
    TextField,
    TimeField,
)
from trellis.datastructures import MultiDict
from trellis.i18n import lazy_gettext

pytestmark = pytest.mark.anyio


class ArticleForm(Form):
    title = StringField(max_length=100, help_text="A short title.")
    body = TextField(required=False)
    email = EmailField(label="Contact e-mail")
    words = IntegerField(min_value=1, max_value=5000, required=False)
    price = DecimalField(decimal_places=2, min_value=0, required=False)
    day = DateField(required=False)
    at = DateTimeField(required=False)
    time = TimeField(required=False)
    published = BooleanField()
    kind = ChoiceField(choices=[("news", "News"), ("blog", "Blog")])
    tags = MultipleChoiceField(choices=[("a", "Alpha"), ("b", "Beta")], required=False)
    secret = PasswordField(required=False)
    ref = HiddenField(initial="r1")


def attrs_of(html: str, element_id: str) -> dict[str, str | None]:
    """The attributes of the element with ``element_id`` (bare ones map to None)."""
    match = re.search(rf'<(\w+)([^>]*\bid="{re.escape(element_id)}"[^>]*)>', html)
    assert match, f"no element with id {element_id!r} in {html}"
    found: dict[str, str | None] = {"<tag>": match.group(1)}
    for name, _eq, quoted in re.findall(r'([\w:-]+)(=("[^"]*"))?', match.group(2)):
        found[name] = quoted[1:-1] if quoted else None
    return found


def test_an_unbound_form() -> None:
    html = str(ArticleForm().render(action="/articles"))
    assert html.startswith('<form method="post" action="/articles">')
    assert "enctype" not in html  # no file field
    title = attrs_of(html, "id_title")
    assert title == {
        "<tag>": "input",
        "type": "text",
        "id": "id_title",
        "name": "title",
        "required": None,
        "aria-describedby": "id_title_help",
        "maxlength": "100",
    }
    assert '<label for="id_title">Title</label>' in html
    assert '<p id="id_title_help" class="help">A short title.</p>' in html
    assert '<label for="id_email">Contact e-mail</label>' in html
    assert attrs_of(html, "id_email")["type"] == "email"
    assert attrs_of(html, "id_body")["<tag>"] == "textarea"
    words = attrs_of(html, "id_words")
    assert (words["type"], words["min"], words["max"]) == ("number", "1", "5000")
    assert "required" not in words
    price = attrs_of(html, "id_price")
    assert (price["type"], price["step"], price["min"]) == ("number", "0.01", "0")
    assert attrs_of(html, "id_day")["type"] == "date"
    assert attrs_of(html, "id_at")["type"] == "datetime-local"
    assert attrs_of(html, "id_time")["type"] == "time"
    published = attrs_of(html, "id_published")
    assert published["type"] == "checkbox" and "checked" not in published
    assert attrs_of(html, "id_kind")["<tag>"] == "select"
    assert '<option value="">---------</option>' in html
    assert "multiple" in attrs_of(html, "id_tags")
    assert attrs_of(html, "id_secret")["type"] == "password"
    assert attrs_of(html, "id_ref") == {
        "<tag>": "input",
        "type": "hidden",
        "id": "id_ref",
        "name": "ref",
        "value": "r1",
    }
    assert '<button type="submit">Submit</button>' in html
    assert "aria-invalid" not in html
    # labels point at inputs that exist
    for target in re.findall(r'<label for="([^"]+)"', html):
        assert f'id="{target}"' in html


async def test_errors_are_linked_and_values_kept() -> None:
    form = ArticleForm(
        MultiDict(
            [
                ("title", "A <b>bold</b> title" + "x" * 100),
                ("email", "not-an-address"),
                ("words", "lots"),
                ("day", "2023-02-30"),
                ("kind", "blog"),
                ("tags", "b"),
                ("published", "on"),
                ("secret", "hunter2"),
                ("body", "line one\nline two"),
            ]
        )
    )
    assert not await form.validate()
    html = str(form.render())
    title = attrs_of(html, "id_title")
    assert title["aria-invalid"] == "true"
    assert title["aria-describedby"] == "id_title_help id_title_errors"
    assert title["value"] == "A &lt;b&gt;bold&lt;/b&gt; title" + "x" * 100  # kept, escaped
    assert (
        '<ul id="id_title_errors" class="field-errors">'
        "<li>Ensure this value has at most 100 characters.</li></ul>"
    ) in html
    email = attrs_of(html, "id_email")
    assert email["value"] == "not-an-address"
    assert email["aria-describedby"] == "id_email_errors"
    assert attrs_of(html, "id_words")["value"] == "lots"
    assert attrs_of(html, "id_day")["value"] == "2023-02-30"
    assert '<option value="blog" selected>Blog</option>' in html
    assert '<option value="b" selected>Beta</option>' in html
    assert "checked" in attrs_of(html, "id_published")
    assert "value" not in attrs_of(html, "id_secret")  # never sent back
    assert "hunter2" not in html
    assert ">\nline one\nline two</textarea>" in html
    assert 'class="field field-text required invalid"' in html
    # fields without errors are not marked
    assert "aria-invalid" not in attrs_of(html, "id_body")


async def test_field_by_field_in_a_template() -> None:
    form = ArticleForm(MultiDict([("title", "")]))
    await form.validate()
    env = jinja2.Environment(autoescape=True)
    page = env.from_string(
        "{{ form.title.label }}|{{ form.title }}|{{ form.title.errors }}|{{ form.title.help }}"
        "|{{ form.title(class_='wide', data_x='1') }}|{{ form.body.errors }}"
        "|{% for f in form %}{{ f.name }},{% endfor %}"
    ).render(form=form)
    label, widget, errors, help_, extra, no_errors, names = page.split("|")
    assert label == '<label for="id_title">Title</label>'
    assert widget.startswith('<input type="text" id="id_title" name="title" required')
    assert 'aria-invalid="true"' in widget
    assert errors == (
        '<ul id="id_title_errors" class="field-errors"><li>This field is required.</li></ul>'
    )
    assert help_ == '<p id="id_title_help" class="help">A short title.</p>'
    assert 'class="wide"' in extra and 'data-x="1"' in extra
    assert no_errors == ""
    assert names.split(",")[:3] == ["title", "body", "email"]
    assert form.title.errors == ["This field is required."]  # also a plain list
    assert form["title"].label_text == "Title"


def test_initial_values_are_formatted() -> None:
    form = ArticleForm(
        initial={
            "price": decimal.Decimal("1E+1"),
            "day": datetime.date(2024, 5, 1),
            "at": datetime.datetime(2024, 5, 1, 14, 30, 0, 999),
            "time": datetime.time(9, 5, 30),
            "published": True,
            "tags": ["a", "b"],
            "kind": "news",
        }
    )
    html = str(form.render())
    assert attrs_of(html, "id_price")["value"] == "10"
    assert attrs_of(html, "id_day")["value"] == "2024-05-01"
    assert attrs_of(html, "id_at")["value"] == "2024-05-01T14:30"
    assert attrs_of(html, "id_time")["value"] == "09:05:30"
    assert "checked" in attrs_of(html, "id_published")
    assert '<option value="a" selected>Alpha</option>' in html
    assert '<option value="news" selected>News</option>' in html
    assert '<option value="">---------</option>' not in html  # required and chosen


def test_aware_datetimes_shown_in_the_field_zone() -> None:
    paris = datetime.timezone(datetime.timedelta(hours=2))

    class F(Form):
        at = DateTimeField(timezone=paris)

    value = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    assert F(initial={"at": value}).at.value == "2024-05-01T14:00"


def test_file_fields_make_a_multipart_form() -> None:
    class Upload(Form):
        title = StringField()
        document = FileField(accept=["application/pdf", ".pdf"])

    form = Upload()
    assert form.enctype == "multipart/form-data"
    html = str(form.render(submit="Upload", class_="stacked"))
    assert html.startswith('<form method="post" enctype="multipart/form-data" class="stacked">')
    document = attrs_of(html, "id_document")
    assert document["type"] == "file" and document["accept"] == "application/pdf,.pdf"
    assert "value" not in document
    assert '<button type="submit">Upload</button>' in html
    assert "enctype" not in str(form.render(method="get"))


def test_radio_and_checkbox_groups_are_fieldsets() -> None:
    class F(Form):
        size = ChoiceField(choices=["S", "M"], widget="radio")
        tags = MultipleChoiceField(choices=["x", "y"], widget="checkboxes", help_text="Pick some")

    html = str(F(initial={"size": "M", "tags": ["y"]}).render())
    assert '<fieldset class="field field-radio required" id="id_size"><legend>Size</legend>' in html
    assert attrs_of(html, "id_size_0") == {
        "<tag>": "input",
        "id": "id_size_0",
        "name": "size",
        "required": None,
        "type": "radio",
        "value": "S",
    }
    assert "checked" in attrs_of(html, "id_size_1")
    assert '<label for="id_size_0">S</label>' in html
    tags = attrs_of(html, "id_tags")
    assert tags["<tag>"] == "fieldset" and tags["aria-describedby"] == "id_tags_help"
    assert "required" not in attrs_of(html, "id_tags_0")
    assert "checked" in attrs_of(html, "id_tags_1")
    assert str(F().size.label) == '<label for="id_size_0">Size</label>'


async def test_form_wide_and_hidden_field_errors_are_announced() -> None:
    class F(Form):
        token = HiddenField(required=True)
        name = StringField()

        def clean(self, data: dict[str, Any]) -> None:
            self.add_error(None, "Something is off.")

    form = F(MultiDict([("name", "x")]))
    await form.validate()
    html = str(form.render())
    assert '<ul id="id_form_errors" class="errors" role="alert"><li>Token: This field' in html
    form = F(MultiDict([("name", "x"), ("token", "t")]))
    await form.validate()
    assert (
        '<ul id="id_form_errors" class="errors" role="alert"><li>Something is off.</li></ul>'
        in str(form.render_fields())
    )
    assert str(Markup(form.form_errors.__html__())).startswith('<ul id="id_form_errors"')


def test_prefix_for_several_forms_in_a_page() -> None:
    class F(Form):
        name = StringField()

    html = str(F(prefix="billing").render())
    assert attrs_of(html, "id_billing-name")["name"] == "billing-name"
    assert '<label for="id_billing-name">' in html


async def test_prefixed_form_reads_prefixed_names() -> None:
    class F(Form):
        name = StringField()

    form = F(MultiDict([("billing-name", "Ada"), ("name", "no")]), prefix="billing")
    assert await form.validate() and form.data == {"name": "Ada"}


def test_lazy_labels_are_translated_when_drawn() -> None:
    class F(Form):
        name = StringField(lazy_gettext("Full name"))

    assert '<label for="id_name">Full name</label>' in str(F().render())


def test_bad_attribute_names_are_refused() -> None:
    class F(Form):
        name = StringField()

    with pytest.raises(ValueError, match="attribute name"):
        F().name(**{'x" onload="alert(1)': "1"})
    with pytest.raises(ValueError, match="attribute name"):
        StringField(attrs={"a b": "1"})


XSS = "\"><script>alert(1)</script><x y='"


async def test_every_value_is_escaped() -> None:
    class F(Form):
        name = StringField(label=XSS, help_text=XSS, attrs={"placeholder": XSS}, max_length=5)
        bio = TextField(required=False)
        pick = ChoiceField(choices=[(XSS, XSS)], required=False)
        many = MultipleChoiceField(choices=[(XSS, XSS)], widget="checkboxes", required=False)
        ref = HiddenField(required=False)

        def clean(self, data: dict[str, Any]) -> None:
            raise AssertionError("not reached: name is invalid")

    form = F(
        MultiDict(
            [
                ("name", XSS),
                ("bio", "</textarea>" + XSS),
                ("pick", XSS),
                ("many", XSS),
                ("ref", XSS),
            ]
        )
    )
    await form.validate()
    form.add_error(None, XSS)
    html = str(form.render(action=XSS, submit=XSS))
    assert "<script>" not in html
    assert "</textarea><" not in html.replace("</textarea></div>", "")
    assert "&lt;script&gt;" in html
    assert "y='" not in html
    # only our own tags
    tags = set(re.findall(r"<(\w+)", html))
    assert tags <= {"form", "input", "div", "label", "p", "ul", "li", "textarea", "select"} | {
        "option",
        "fieldset",
        "legend",
        "button",
    }


async def test_json_bound_form_shows_the_json_values() -> None:
    form = await ArticleForm.from_json({"title": "T", "words": 3, "tags": ["a"], "published": 1})
    assert form.title.value == "T"
    assert form.words.value == "3"
    assert form.tags.value == ["a"]
    assert form.published.value is True


def test_labels_and_help_texts_may_be_lazy_texts_for_type_checkers_too() -> None:
    # A field declared at import time wants lazy_gettext(...): translated when drawn. Every
    # field's signature says so, so a type-checked application may pass one.
    import inspect
    import typing

    import trellis.contrib.forms as forms
    from trellis.i18n import LazyString

    fields = [
        value
        for value in vars(forms).values()
        if inspect.isclass(value) and issubclass(value, forms.Field)
    ]
    assert len(fields) > 10
    for field in fields:
        # (names imported for type checking only stand for themselves)
        hints = typing.get_type_hints(
            field.__init__, localns={"Form": object, "BoundField": object}
        )
        for name in ("label", "help_text"):
            if name in hints:
                assert LazyString in typing.get_args(hints[name]), (field, name, hints[name])
        assert "label" in hints, field
