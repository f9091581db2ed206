"""Validation messages: pydantic's error types in the words of a form, through ``gettext``.

Pydantic reports ``int_parsing`` as "Input should be a valid integer, unable to parse string
as an integer"; a form says "Enter a whole number.". Every message is translated when the
error happens, so it follows the locale of the request being validated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trellis.i18n import gettext as _
from trellis.i18n import ngettext

__all__ = ["CUSTOM_TYPES", "ValidationError", "message_for", "translate_errors"]


class ValidationError(ValueError):
    """A value (or the whole form) is not valid; raise it from validators and clean hooks.

    It is a ``ValueError``, so validators written for pydantic work unchanged.

    Args:
        message: What is wrong, for the user (translate it: ``gettext(...)``).
        field: In ``Form.clean``, the field the message belongs to; ``None`` for the form as
            a whole.
        code: A short machine-readable kind, the ``type`` of the 422 error.
    """

    def __init__(self, message: str, field: str | None = None, *, code: str = "value_error"):
        super().__init__(message)
        self.message = str(message)
        self.field = field
        self.code = code


#: Error types whose message is already the form's own (raised by its validators).
CUSTOM_TYPES = frozenset({"invalid_choice", "invalid_email", "unique"})


def _n(singular: str, plural: str, key: str) -> Callable[[Mapping[str, Any]], str]:
    def message(ctx: Mapping[str, Any]) -> str:
        value = ctx.get(key, 0)
        try:
            count = int(value)
        except (TypeError, ValueError):
            count = 0
        return ngettext(singular, plural, count)

    return message


def _s(text: str, key: str | None = None) -> Callable[[Mapping[str, Any]], str]:
    def message(ctx: Mapping[str, Any]) -> str:
        if key is None:
            return _(text)
        return _(text, **{key: ctx.get(key, "")})

    return message


_WHOLE = _s("Enter a whole number.")
_NUMBER = _s("Enter a number.")
_DATE = _s("Enter a valid date.")
_DATETIME = _s("Enter a valid date and time.")
_TIME = _s("Enter a valid time.")
_CHOICE = _s("Select a valid choice.")

_MESSAGES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": _s("This field is required."),
    "string_type": _s("Enter text."),
    "string_too_short": _n(
        "Ensure this value has at least %(num)d character.",
        "Ensure this value has at least %(num)d characters.",
        "min_length",
    ),
    "string_too_long": _n(
        "Ensure this value has at most %(num)d character.",
        "Ensure this value has at most %(num)d characters.",
        "max_length",
    ),
    "string_pattern_mismatch": _s("Enter a valid value."),
    "int_parsing": _WHOLE,
    "int_type": _WHOLE,
    "int_from_float": _WHOLE,
    "int_parsing_size": _WHOLE,
    "float_parsing": _NUMBER,
    "float_type": _NUMBER,
    "decimal_parsing": _NUMBER,
    "decimal_type": _NUMBER,
    "finite_number": _NUMBER,
    "decimal_max_digits": _n(
        "Ensure that there are no more than %(num)d digit in total.",
        "Ensure that there are no more than %(num)d digits in total.",
        "max_digits",
    ),
    "decimal_max_places": _n(
        "Ensure that there are no more than %(num)d decimal place.",
        "Ensure that there are no more than %(num)d decimal places.",
        "decimal_places",
    ),
    "decimal_whole_digits": _n(
        "Ensure that there are no more than %(num)d digit before the decimal point.",
        "Ensure that there are no more than %(num)d digits before the decimal point.",
        "whole_digits",
    ),
    "greater_than": _s("Ensure this value is greater than %(gt)s.", "gt"),
    "greater_than_equal": _s("Ensure this value is greater than or equal to %(ge)s.", "ge"),
    "less_than": _s("Ensure this value is less than %(lt)s.", "lt"),
    "less_than_equal": _s("Ensure this value is less than or equal to %(le)s.", "le"),
    "multiple_of": _s("Ensure this value is a multiple of %(multiple_of)s.", "multiple_of"),
    "date_parsing": _DATE,
    "date_type": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE,
    "date_past": _s("Enter a date in the past."),
    "date_future": _s("Enter a date in the future."),
    "datetime_parsing": _DATETIME,
    "datetime_type": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "datetime_object_invalid": _DATETIME,
    "time_parsing": _TIME,
    "time_type": _TIME,
    "bool_parsing": _s("Enter yes or no."),
    "bool_type": _s("Enter yes or no."),
    "enum": _CHOICE,
    "literal_error": _CHOICE,
    "list_type": _s("Enter a list of values."),
    "too_short": _n(
        "Select at least %(num)d item.", "Select at least %(num)d items.", "min_length"
    ),
    "too_long": _n("Select at most %(num)d item.", "Select at most %(num)d items.", "max_length"),
}


_COLLECTIONS = ("List", "Set", "Frozenset", "Tuple", "Dictionary")


def message_for(error: Mapping[str, Any]) -> str:
    """The form's message for one pydantic error (its ``type``, ``msg`` and ``ctx``)."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind in CUSTOM_TYPES or (kind == "value_error" and "error" not in ctx):
        return str(error.get("msg", ""))
    if kind in ("value_error", "assertion_error"):
        # A validator's own ValueError: its text, without pydantic's "Value error, " prefix.
        return str(ctx.get("error", error.get("msg", "")))
    if kind in ("too_long", "too_short") and ctx.get("field_type") not in _COLLECTIONS:
        kind = f"string_{kind}"  # a length check on text, applied apart from the str type
    make = _MESSAGES.get(kind)
    if make is None:
        return _("Enter a valid value.")
    return make(ctx)


def translate_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """``{"type", "loc", "msg"}`` dicts with the form's messages, in pydantic's order."""
    return [
        {"type": e["type"], "loc": tuple(e["loc"]), "msg": message_for(e), "input": e.get("input")}
        for e in errors
    ]
