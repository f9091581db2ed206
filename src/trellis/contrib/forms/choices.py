"""Fields with choices: ``ChoiceField`` and ``MultipleChoiceField``.

``ChoiceField`` is a select or radio buttons, ``MultipleChoiceField`` a multi-select or
checkboxes. Choices are values, ``(value, label)`` pairs, a mapping, an ``Enum`` class, or a
callable (sync or async) that takes the form; a value keeps its type (the page sends its text,
the form gives the value back).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from markupsafe import Markup
from pydantic import Field as PydanticField
from pydantic_core import PydanticCustomError

from trellis.contrib.forms._html import tag
from trellis.contrib.forms._messages import ValidationError
from trellis.contrib.forms.fields import (
    MISSING,
    Choices,
    Field,
    Text,
    _missing_error,
    humanize,
)
from trellis.exceptions import ConfigurationError
from trellis.i18n import gettext as _

if TYPE_CHECKING:
    from trellis.contrib.forms.bound import BoundField
    from trellis.contrib.forms.form import Form

__all__ = ["ChoiceField", "MultipleChoiceField", "normalise_choices"]


def _choice_label(value: Any) -> str:
    if isinstance(value, enum.Enum):
        label = getattr(value, "label", None)
        return str(label) if label is not None else humanize(value.name.lower())
    return str(value)


def normalise_choices(choices: Any) -> list[tuple[Any, str]]:
    """``(value, label)`` pairs from any accepted shape of ``choices``."""
    if isinstance(choices, type) and issubclass(choices, enum.Enum):
        return [(member, _choice_label(member)) for member in choices]
    if isinstance(choices, Mapping):
        return [(value, label) for value, label in choices.items()]
    out: list[tuple[Any, str]] = []
    for item in choices:
        if isinstance(item, tuple) and len(item) == 2:
            out.append((item[0], item[1]))
        else:
            out.append((item, _choice_label(item)))
    return out


def _infer_type(choices: list[tuple[Any, str]]) -> Any:
    values = [value for value, _label in choices]
    if values and all(isinstance(v, enum.Enum) for v in values):
        return type(values[0])
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return int
    return str


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _invalid_choice() -> ValidationError:
    return ValidationError(_("Select a valid choice."), code="invalid_choice")


class ChoiceField(Field):
    """One of a list of choices: a ``<select>`` (or radio buttons).

    Args:
        choices: Values, ``(value, label)`` pairs, a mapping ``{value: label}``, an ``Enum``
            class, or a callable taking the form (sync or async) that returns one of those
            (loaded by ``await form.load()``, which ``from_request`` calls). Values may be of
            any type; the page sends their text.
        coerce: The type of a value (``int`` ...); guessed from static choices otherwise
            (an ``Enum``, ``int`` or ``str``), ``str`` for a callable.
        widget: ``"select"`` (the default) or ``"radio"``.
        blank_label: The text of the empty first option of an optional (or not yet chosen)
            select.
        **kwargs: As for ``Field``.
    """

    input_type = "select"

    def __init__(
        self,
        label: Text | None = None,
        *,
        choices: Choices = (),
        coerce: Any = None,
        widget: Literal["select", "radio", "checkboxes"] = "select",
        blank_label: str = "---------",
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        allowed = ("select", "checkboxes") if self.multiple else ("select", "radio")
        if widget not in allowed:
            raise ConfigurationError(
                f"{type(self).__name__}(widget=...) is one of {', '.join(allowed)}, not {widget!r}"
            )
        self.widget = widget
        self.blank_label = blank_label
        is_enum = isinstance(choices, type) and issubclass(choices, enum.Enum)
        self.choices_source: Callable[[Form], Any] | None = None
        self.static_choices: list[tuple[Any, str]] | None = None
        if callable(choices) and not is_enum:
            self.choices_source = choices
        else:
            self.static_choices = normalise_choices(choices)
        self.coerce = coerce
        if coerce is None:
            self.coerce = _infer_type(self.static_choices) if self.static_choices else str

    @property
    def kind(self) -> str:
        """``select``, ``select-multiple``, ``radio`` or ``checkboxes``."""
        if self.widget == "select" and self.multiple:
            return "select-multiple"
        return self.widget

    def value_type(self) -> Any:  # noqa: D102
        return self.coerce

    def checks(self) -> list[Callable[[Any], Any]]:  # noqa: D102
        if self.static_choices is None:
            return []
        allowed = [value for value, _label in self.static_choices]

        def in_choices(value: Any) -> Any:
            if value is not None and value not in allowed:
                raise PydanticCustomError("invalid_choice", _("Select a valid choice."))
            return value

        return [in_choices]

    def schema_extra(self) -> dict[str, Any]:  # noqa: D102
        is_enum = isinstance(self.coerce, type) and issubclass(self.coerce, enum.Enum)
        if self.static_choices is None or is_enum:
            return {}
        values = [_json_value(v) for v, _label in self.static_choices]
        return {"enum": values if self.required else [*values, None]}

    async def load_choices(self, form: Form) -> list[tuple[Any, str]]:
        """The choices for ``form``: the static ones, or what the callable returns."""
        if self.choices_source is None:
            return self.static_choices or []
        result = self.choices_source(form)
        if inspect.isawaitable(result):
            result = await result
        return normalise_choices(result)

    def _lookup(self, form: Form) -> dict[str, Any]:
        return {self.format(value): value for value, _label in form.choices_of(self)}

    def clean_raw(self, raw: Any, form: Form) -> Any:  # noqa: D102
        if isinstance(raw, str):
            found = self._lookup(form).get(raw, MISSING)
            if found is MISSING:
                raise _invalid_choice()
            raw = found
        return self.adapter.validate_python(raw)

    async def check(self, value: Any, form: Form) -> Any:  # noqa: D102
        if value is not None and value not in [v for v, _label in form.choices_of(self)]:
            raise _invalid_choice()
        return await super().check(value, form)

    def render_widget(self, bound: BoundField, extra: Mapping[str, Any]) -> Markup:  # noqa: D102
        if self.widget == "radio":
            return self._render_group(bound, extra, "radio")
        attrs = self.base_attrs(bound, extra)
        current = bound.value
        options: list[Markup] = []
        if not self.required or current in ("", None):
            options.append(tag("option", {"value": ""}, self.blank_label))
        for value, label in bound.choices:
            options.append(tag("option", {"value": value, "selected": value == current}, label))
        return tag("select", attrs, Markup("\n") + Markup("\n").join(options) + Markup("\n"))

    def _render_group(self, bound: BoundField, extra: Mapping[str, Any], kind: str) -> Markup:
        selected = bound.value if isinstance(bound.value, list) else [bound.value]
        items: list[Markup] = []
        for index, (value, label) in enumerate(bound.choices):
            attrs = self.base_attrs(bound, extra)
            attrs.pop("aria-describedby", None)  # the fieldset has it
            if kind == "checkbox":
                attrs.pop("required", None)  # required on each would demand every box
            option_id = f"{bound.id}_{index}"
            attrs.update({"type": kind, "id": option_id, "value": value})
            attrs["checked"] = value in selected
            items.append(
                tag(
                    "div",
                    {"class": "choice"},
                    tag("input", attrs) + tag("label", {"for": option_id}, label),
                )
            )
        return Markup("\n").join(items)

    def render_row(self, bound: BoundField) -> Markup:  # noqa: D102
        if self.widget == "select":
            return super().render_row(bound)
        legend = tag("legend", {}, self.label_text)
        return self._row(bound, [legend, Markup("\n"), bound.widget()], element="fieldset")


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def _not_empty(values: list[Any]) -> list[Any]:
    if not values:
        raise _missing_error()
    return values


class MultipleChoiceField(ChoiceField):
    """Several of a list of choices: ``<select multiple>`` or checkboxes; a ``list``.

    Args:
        widget: ``"select"`` (the default) or ``"checkboxes"``.
        **kwargs: As for ``ChoiceField``.
    """

    multiple = True

    def value_type(self) -> Any:  # noqa: D102
        return list[self.coerce]  # type: ignore[name-defined]

    def empty_value(self) -> Any:  # noqa: D102
        return []

    def checks(self) -> list[Callable[[Any], Any]]:  # noqa: D102
        checks: list[Callable[[Any], Any]] = [_unique]
        if self.required:
            checks.append(_not_empty)
        if self.static_choices is not None:
            allowed = [value for value, _label in self.static_choices]

            def in_choices(values: list[Any]) -> list[Any]:
                if any(value not in allowed for value in values):
                    raise PydanticCustomError("invalid_choice", _("Select a valid choice."))
                return values

            checks.append(in_choices)
        return checks

    def schema_extra(self) -> dict[str, Any]:  # noqa: D102
        return {}

    def annotation(self) -> Any:  # noqa: D102
        tp = super().annotation()
        if self.static_choices is not None and not (
            isinstance(self.coerce, type) and issubclass(self.coerce, enum.Enum)
        ):
            enum_values = [_json_value(v) for v, _label in self.static_choices]

            def items_enum(schema: dict[str, Any]) -> None:
                items = schema.get("items")
                if isinstance(items, dict):
                    items["enum"] = enum_values

            tp = Annotated[tp, PydanticField(json_schema_extra=items_enum)]
        return tp

    def extract(self, data: Any, key: str) -> Any:  # noqa: D102
        getlist = getattr(data, "getlist", None)
        values = getlist(key) if getlist is not None else data.get(key, [])
        if not isinstance(values, list):
            values = [values]
        values = [v.strip() if isinstance(v, str) else v for v in values]
        values = [v for v in values if v != ""]
        return values if values else MISSING

    def clean_raw(self, raw: Any, form: Form) -> Any:  # noqa: D102
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            lookup = self._lookup(form)
            found = [lookup.get(v, MISSING) for v in raw]
            if any(v is MISSING for v in found):
                raise _invalid_choice()
            raw = found
        return self.adapter.validate_python(raw)

    async def check(self, value: Any, form: Form) -> Any:  # noqa: D102
        allowed = [v for v, _label in form.choices_of(self)]
        if value and any(v not in allowed for v in value):
            raise _invalid_choice()
        for validator in self.async_validators:
            result = await validator(value)
            if result is not None:
                value = result
        return value

    def render_widget(self, bound: BoundField, extra: Mapping[str, Any]) -> Markup:  # noqa: D102
        if self.widget == "checkboxes":
            return self._render_group(bound, extra, "checkbox")
        attrs = {**self.base_attrs(bound, extra), "multiple": True}
        selected = bound.value if isinstance(bound.value, list) else []
        options = [
            tag("option", {"value": value, "selected": value in selected}, label)
            for value, label in bound.choices
        ]
        return tag("select", attrs, Markup("\n") + Markup("\n").join(options) + Markup("\n"))
