"""The form field for each field of a pydantic model (``Form.from_model``)."""

from __future__ import annotations

import datetime
import decimal
import enum
import types
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from trellis.contrib.forms.choices import ChoiceField, MultipleChoiceField
from trellis.contrib.forms.fields import (
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    Field,
    FileField,
    FloatField,
    IntegerField,
    PasswordField,
    StringField,
    TimeField,
)
from trellis.exceptions import ConfigurationError

__all__ = ["form_field_for"]


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(tp)):
            return args[0], True
    return tp, False


def _constraints(info: FieldInfo) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in info.metadata:
        for attr in ("max_length", "min_length", "ge", "le", "max_digits", "decimal_places"):
            value = getattr(item, attr, None)
            if value is not None:
                found[attr] = value
        if isinstance(item, annotated_types.Gt):
            found.setdefault("gt", item.gt)
        if isinstance(item, annotated_types.Lt):
            found.setdefault("lt", item.lt)
    return found


def _choices_of(tp: Any) -> list[Any] | type[enum.Enum] | None:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    return None


def form_field_for(model: type[BaseModel], name: str, info: FieldInfo) -> Field:
    """The form field for ``model.<name>`` (label from ``title``, help from ``description``).

    Raises:
        ConfigurationError: no form field fits the type.
    """
    from trellis.http.forms import UploadFile

    tp, optional = _strip_optional(info.annotation)
    c = _constraints(info)
    common: dict[str, Any] = {
        "label": info.title,
        "help_text": info.description,
        "required": info.is_required() and not optional,
    }
    if info.default is not PydanticUndefined and info.default is not None:
        common["initial"] = info.default
    elif info.default_factory is not None:
        common["initial"] = info.default_factory
    limits = {"min_value": c.get("ge"), "max_value": c.get("le")}

    if tp is bool:
        common["required"] = False  # unticked is False, a valid value
        return BooleanField(**common)
    if tp is SecretStr:
        return PasswordField(
            min_length=c.get("min_length"), max_length=c.get("max_length"), **common
        )
    if tp is str:
        return StringField(min_length=c.get("min_length"), max_length=c.get("max_length"), **common)
    if tp is int:
        return IntegerField(**limits, **common)
    if tp is float:
        return FloatField(**limits, **common)
    if tp is decimal.Decimal:
        return DecimalField(
            max_digits=c.get("max_digits"),
            decimal_places=c.get("decimal_places"),
            **limits,
            **common,
        )
    if tp is datetime.datetime:
        return DateTimeField(**limits, **common)
    if tp is datetime.date:
        return DateField(**limits, **common)
    if tp is datetime.time:
        return TimeField(**common)
    if tp is UploadFile:
        return FileField(**common)
    choices = _choices_of(tp)
    if choices is not None:
        return ChoiceField(choices=choices, **common)
    if get_origin(tp) in (list, set, frozenset) and get_args(tp):
        item_choices = _choices_of(get_args(tp)[0])
        if item_choices is not None:
            if "initial" in common and not callable(common["initial"]):
                common["initial"] = list(common["initial"])
            if common["required"] and info.is_required():
                common["required"] = c.get("min_length", 0) > 0
            return MultipleChoiceField(choices=item_choices, **common)
    raise ConfigurationError(
        f"Form.from_model({model.__name__}): no form field for {name!r} of type"
        f" {info.annotation!r}; pass one: Form.from_model({model.__name__}, {name}=...Field())"
    )
