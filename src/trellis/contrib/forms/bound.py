"""``BoundField``: a field of one form, with that form's value, errors and HTML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from trellis.contrib.forms._html import ErrorList, attrs_html, normalise_attrs, tag
from trellis.contrib.forms.choices import ChoiceField

if TYPE_CHECKING:
    from trellis.contrib.forms.fields import Field
    from trellis.contrib.forms.form import Form

__all__ = ["BoundField", "field_attrs_html"]


class BoundField:
    """A field of one form instance: its value, errors and HTML.

    In a template: ``{{ form.title }}`` (the input), ``{{ form.title.label }}``,
    ``{{ form.title.errors }}``, ``{{ form.title.help }}``, ``{{ form.title.row }}``
    (all of them), ``{{ form.title(class="wide", placeholder="...") }}`` (the input with
    more attributes).
    """

    __slots__ = ("field", "form")

    def __init__(self, form: Form, field: Field) -> None:
        self.form = form
        self.field = field

    def __repr__(self) -> str:
        return f"<BoundField {self.name!r} of {type(self.form).__name__}>"

    @property
    def name(self) -> str:
        """The field's name (the key of ``form.data`` and of the JSON body)."""
        return self.field.name

    @property
    def html_name(self) -> str:
        """The name in the HTML form: the form's ``prefix`` and the field name."""
        prefix = self.form.prefix
        return f"{prefix}-{self.name}" if prefix else self.name

    @property
    def id(self) -> str:
        """The input's ``id`` (``id_title``)."""
        return f"id_{self.html_name}"

    @property
    def label_text(self) -> str:
        """The label as text."""
        return self.field.label_text

    @property
    def label(self) -> Markup:
        """``<label for="id_title">Title</label>``."""
        target = self.id
        if isinstance(self.field, ChoiceField) and self.field.widget != "select":
            target = f"{self.id}_0"
        return tag("label", {"for": target}, self.field.label_text)

    @property
    def errors(self) -> ErrorList:
        """This field's messages (a list; renders as ``<ul id="id_title_errors">``)."""
        return ErrorList(self.form._field_errors.get(self.name, ()), id=f"{self.id}_errors")

    @property
    def help(self) -> Markup:
        """``<p id="id_title_help" class="help">...</p>``, or nothing without help text."""
        if not self.field.help_text:
            return Markup("")
        return tag("p", {"id": f"{self.id}_help", "class": "help"}, self.field.help_text)

    @property
    def described_by(self) -> str:
        """The ids ``aria-describedby`` names: help text, then errors."""
        ids = []
        if self.field.help_text:
            ids.append(f"{self.id}_help")
        if self.form._field_errors.get(self.name):
            ids.append(f"{self.id}_errors")
        return " ".join(ids)

    @property
    def value(self) -> Any:
        """What the input shows: the text (a list for multiple values, a bool for a checkbox).

        The submitted text when the form is bound (so a mistake is shown as typed), else the
        initial value.
        """
        return self.form._display_value(self.field, self.html_name)

    @property
    def choices(self) -> list[tuple[str, str]]:
        """``(value text, label)`` of each choice."""
        field = self.field
        if not isinstance(field, ChoiceField):
            return []
        return [(field.format(value), label) for value, label in self.form.choices_of(field)]

    @property
    def is_hidden(self) -> bool:
        """Whether this is a hidden input."""
        return self.field.is_hidden

    def widget(self, **attrs: Any) -> Markup:
        """The input, with ``attrs`` added (``class_="wide"`` writes ``class="wide"``)."""
        return self.field.render_widget(self, attrs)

    __call__ = widget

    def __html__(self) -> str:
        return str(self.widget())

    def __str__(self) -> str:
        return self.__html__()

    @property
    def row(self) -> Markup:
        """Label, input, help and errors together."""
        return self.field.render_row(self)

    def render(self) -> Markup:
        """Label, input, help and errors together (as ``row``)."""
        return self.row


def field_attrs_html(attrs: Mapping[str, Any]) -> Markup:
    """Attributes as HTML (normalised and escaped); for templates that draw inputs by hand."""
    return attrs_html(normalise_attrs(attrs))
