"""Validation error messages in the request's language: the 422 problem details of handlers.

Trellis reports invalid requests as ``{"loc": [...], "msg": ..., "type": ...}`` with pydantic's
English messages. ``translate_error`` rewrites ``msg`` by ``type`` through the catalogs (the
numbers and names in it, such as the minimum length, are kept); ``type`` and ``loc`` stay as
they are for programs. Messages of other types are looked up as they are, so a project's
catalog can translate its own ``ValueError`` texts too.

``I18n`` installs ``validation_error_handler`` for ``RequestValidationError``.

Example:
    ```python
    from trellis.contrib.i18n import I18n
    from trellis.contrib.i18n.validation import translate_error

    error = {"loc": ["query", "q"], "msg": "String should have at least 3 characters",
             "type": "string_too_short"}
    assert translate_error(error)["msg"] == "String should have at least 3 characters"
    with I18n(locales=("en", "fr")).activate("fr"):
        assert translate_error(error)["msg"] == "Le texte doit comporter au moins 3 caractères"
    ```
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trellis.exceptions import RequestValidationError
from trellis.http.errors import error_response, wants_html
from trellis.i18n import N_, get_locale, gettext, ngettext, use_translator

if TYPE_CHECKING:
    from trellis.http.request import Request
    from trellis.http.response import Response

__all__ = [
    "translate_error",
    "translate_errors",
    "translate_message",
    "translated_validation_error",
    "validation_error_handler",
]

_Rule = tuple[re.Pattern[str], Callable[[Mapping[str, str]], str]]


def _n(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 2  # not a whole number ("0.5"): the plural reads right


def _detail(groups: Mapping[str, str]) -> str:
    # The parser's explanation ("input is too short") is looked up as it is.
    detail = groups.get("error", "")
    return gettext(detail)


# The explanations of pydantic's date and time parser, for the catalogs.
PARSER_DETAILS = (
    N_("input is too short"),
    N_("input is too long"),
    N_("unexpected extra characters at the end of the input"),
    N_("invalid character in year"),
    N_("invalid character in month"),
    N_("invalid character in day"),
    N_("invalid character in hour"),
    N_("invalid character in minute"),
    N_("invalid character in second"),
    N_("invalid date separator, expected `-`"),
    N_("invalid time separator, expected `:`"),
    N_("month value is outside expected range of 1-12"),
    N_("day value is outside expected range"),
    N_("hour value is outside expected range of 0-23"),
    N_("minute value is outside expected range of 0-59"),
    N_("second value is outside expected range of 0-59"),
    N_("invalid datetime separator, expected `T`, `t`, `_` or space"),
    N_("invalid timezone sign"),
)


# Each rule: pydantic's English message as a pattern, and the same text through the
# catalog. The strings are literal so that `trellis i18n extract` finds them.
_RULES: dict[str, list[_Rule]] = {
    "missing": [(re.compile(r"Field required"), lambda g: gettext("Field required"))],
    "extra_forbidden": [
        (
            re.compile(r"Extra inputs are not permitted"),
            lambda g: gettext("Extra inputs are not permitted"),
        )
    ],
    "int_type": [
        (
            re.compile(r"Input should be a valid integer"),
            lambda g: gettext("Input should be a valid integer"),
        )
    ],
    "int_parsing": [
        (
            re.compile(r"Input should be a valid integer, unable to parse string as an integer"),
            lambda g: gettext(
                "Input should be a valid integer, unable to parse string as an integer"
            ),
        )
    ],
    "int_from_float": [
        (
            re.compile(r"Input should be a valid integer, got a number with a fractional part"),
            lambda g: gettext(
                "Input should be a valid integer, got a number with a fractional part"
            ),
        )
    ],
    "float_type": [
        (
            re.compile(r"Input should be a valid number"),
            lambda g: gettext("Input should be a valid number"),
        )
    ],
    "float_parsing": [
        (
            re.compile(r"Input should be a valid number, unable to parse string as a number"),
            lambda g: gettext("Input should be a valid number, unable to parse string as a number"),
        )
    ],
    "bool_type": [
        (
            re.compile(r"Input should be a valid boolean"),
            lambda g: gettext("Input should be a valid boolean"),
        )
    ],
    "bool_parsing": [
        (
            re.compile(r"Input should be a valid boolean, unable to interpret input"),
            lambda g: gettext("Input should be a valid boolean, unable to interpret input"),
        )
    ],
    "string_type": [
        (
            re.compile(r"Input should be a valid string"),
            lambda g: gettext("Input should be a valid string"),
        )
    ],
    "string_too_short": [
        (
            re.compile(r"String should have at least (?P<n>\d+) characters?"),
            lambda g: ngettext(
                "String should have at least %(num)d character",
                "String should have at least %(num)d characters",
                _n(g["n"]),
            ),
        )
    ],
    "string_too_long": [
        (
            re.compile(r"String should have at most (?P<n>\d+) characters?"),
            lambda g: ngettext(
                "String should have at most %(num)d character",
                "String should have at most %(num)d characters",
                _n(g["n"]),
            ),
        )
    ],
    "string_pattern_mismatch": [
        (
            re.compile(r"String should match pattern (?P<pattern>.*)", re.S),
            lambda g: gettext("String should match pattern %(pattern)s", pattern=g["pattern"]),
        )
    ],
    "greater_than": [
        (
            re.compile(r"Input should be greater than (?P<v>.*)", re.S),
            lambda g: gettext("Input should be greater than %(value)s", value=g["v"]),
        )
    ],
    "greater_than_equal": [
        (
            re.compile(r"Input should be greater than or equal to (?P<v>.*)", re.S),
            lambda g: gettext("Input should be greater than or equal to %(value)s", value=g["v"]),
        )
    ],
    "less_than": [
        (
            re.compile(r"Input should be less than (?P<v>.*)", re.S),
            lambda g: gettext("Input should be less than %(value)s", value=g["v"]),
        )
    ],
    "less_than_equal": [
        (
            re.compile(r"Input should be less than or equal to (?P<v>.*)", re.S),
            lambda g: gettext("Input should be less than or equal to %(value)s", value=g["v"]),
        )
    ],
    "multiple_of": [
        (
            re.compile(r"Input should be a multiple of (?P<v>.*)", re.S),
            lambda g: gettext("Input should be a multiple of %(value)s", value=g["v"]),
        )
    ],
    "too_short": [
        (
            re.compile(r"\w+ should have at least (?P<n>\d+) items? after validation, not \d+"),
            lambda g: ngettext(
                "Should have at least %(num)d item",
                "Should have at least %(num)d items",
                _n(g["n"]),
            ),
        )
    ],
    "too_long": [
        (
            re.compile(r"\w+ should have at most (?P<n>\d+) items? after validation, not \d+"),
            lambda g: ngettext(
                "Should have at most %(num)d item", "Should have at most %(num)d items", _n(g["n"])
            ),
        )
    ],
    "literal_error": [
        (
            re.compile(r"Input should be (?P<v>.*)", re.S),
            lambda g: gettext("Input should be %(expected)s", expected=_or(g["v"])),
        )
    ],
    "enum": [
        (
            re.compile(r"Input should be (?P<v>.*)", re.S),
            lambda g: gettext("Input should be %(expected)s", expected=_or(g["v"])),
        )
    ],
    "list_type": [
        (
            re.compile(r"Input should be a valid list"),
            lambda g: gettext("Input should be a valid list"),
        )
    ],
    "dict_type": [
        (
            re.compile(r"Input should be a valid dictionary"),
            lambda g: gettext("Input should be a valid dictionary"),
        ),
        (
            re.compile(r"Input should be a JSON object"),
            lambda g: gettext("Input should be a JSON object"),
        ),
    ],
    "model_type": [
        (
            re.compile(r"Input should be a valid dictionary or instance of .*", re.S),
            lambda g: gettext("Input should be a valid dictionary"),
        )
    ],
    "decimal_parsing": [
        (
            re.compile(r"Input should be a valid decimal"),
            lambda g: gettext("Input should be a valid decimal"),
        )
    ],
    "decimal_max_digits": [
        (
            re.compile(r"Decimal input should have no more than (?P<n>\d+) digits? in total"),
            lambda g: ngettext(
                "Decimal input should have no more than %(num)d digit in total",
                "Decimal input should have no more than %(num)d digits in total",
                _n(g["n"]),
            ),
        )
    ],
    "decimal_max_places": [
        (
            re.compile(r"Decimal input should have no more than (?P<n>\d+) decimal places?"),
            lambda g: ngettext(
                "Decimal input should have no more than %(num)d decimal place",
                "Decimal input should have no more than %(num)d decimal places",
                _n(g["n"]),
            ),
        )
    ],
    "date_parsing": [
        (
            re.compile(
                r"Input should be a valid date in the format YYYY-MM-DD, (?P<error>.*)", re.S
            ),
            lambda g: gettext(
                "Input should be a valid date in the format YYYY-MM-DD, %(error)s",
                error=_detail(g),
            ),
        )
    ],
    "date_from_datetime_parsing": [
        (
            re.compile(r"Input should be a valid date or datetime, (?P<error>.*)", re.S),
            lambda g: gettext(
                "Input should be a valid date or datetime, %(error)s", error=_detail(g)
            ),
        )
    ],
    "datetime_parsing": [
        (
            re.compile(r"Input should be a valid datetime, (?P<error>.*)", re.S),
            lambda g: gettext("Input should be a valid datetime, %(error)s", error=_detail(g)),
        )
    ],
    "datetime_from_date_parsing": [
        (
            re.compile(r"Input should be a valid datetime or date, (?P<error>.*)", re.S),
            lambda g: gettext(
                "Input should be a valid datetime or date, %(error)s", error=_detail(g)
            ),
        )
    ],
    "time_parsing": [
        (
            re.compile(r"Input should be in a valid time format, (?P<error>.*)", re.S),
            lambda g: gettext(
                "Input should be in a valid time format, %(error)s", error=_detail(g)
            ),
        )
    ],
    "uuid_parsing": [
        (
            re.compile(r"Input should be a valid UUID, (?P<error>.*)", re.S),
            lambda g: gettext("Input should be a valid UUID, %(error)s", error=_detail(g)),
        )
    ],
    "json_invalid": [
        (
            re.compile(r"Invalid JSON: (?P<error>.*)", re.S),
            lambda g: gettext("Invalid JSON: %(error)s", error=_detail(g)),
        )
    ],
    "value_error": [
        (
            re.compile(r"Value error, (?P<error>.*)", re.S),
            lambda g: gettext("Value error, %(error)s", error=_detail(g)),
        )
    ],
}


def _or(expected: str) -> str:
    # pydantic joins the choices with " or ": "'a', 'b' or 'c'".
    head, sep, last = expected.rpartition(" or ")
    if not sep:
        return expected
    return gettext("%(choices)s or %(last)s", choices=head, last=last)


def translate_message(message: str, kind: str | None = None) -> str:
    """``message`` (of pydantic error type ``kind``) in the current language.

    Known types are matched by their English text, so the numbers and names in it are
    kept; any other message is looked up in the catalogs as it is (unchanged when missing).
    """
    for pattern, build in _RULES.get(kind or "", ()):
        match = pattern.fullmatch(message)
        if match is not None:
            groups = match.groupdict()
            translated = build(groups)
            with use_translator(None, get_locale()):
                english = build(groups)
            # Not in the catalogs (or English): pydantic's own words, which may say more.
            return message if translated == english else translated
    return gettext(message)


def translate_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of one ``{"loc", "msg", "type"}`` error with ``msg`` translated."""
    translated = dict(error)
    message = error.get("msg")
    if isinstance(message, str):
        kind = error.get("type")
        translated["msg"] = translate_message(message, kind if isinstance(kind, str) else None)
    return translated


def translate_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``translate_error`` for each error."""
    return [translate_error(error) for error in errors]


def translated_validation_error(exc: RequestValidationError) -> RequestValidationError:
    """A copy of ``exc`` whose messages, detail and title are in the current language."""
    errors = translate_errors(exc.errors)
    copy = RequestValidationError(errors)
    count = len(errors)
    copy.detail = ngettext(
        "%(num)d value in the request did not validate",
        "%(num)d values in the request did not validate",
        count,
    )
    if exc.title == "Unprocessable Entity":
        copy.title = gettext("Unprocessable Entity")
    else:
        copy.title = gettext(exc.title)
    copy.headers = list(exc.headers)
    copy.type = exc.type
    for key, value in exc.extra.items():
        if key != "errors":
            copy.extra[key] = value
    return copy


def validation_error_handler(request: Request, exc: Exception) -> Response:
    """The exception handler for ``RequestValidationError``: the 422, translated.

    The response is what Trellis sends anyway (a problem document, or an HTML page for a
    browser), with the messages in the request's language.
    """
    assert isinstance(exc, RequestValidationError)
    translated = translated_validation_error(exc)
    html_page = wants_html(request.headers.get("accept"))
    return error_response(translated, html_page=html_page, instance=request.path)
