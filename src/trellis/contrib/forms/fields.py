"""Form fields: what a value is (a pydantic type), how a browser sends it, how it is drawn.

Each field knows three things:

- its **type** (``annotation()``): the pydantic type with the field's constraints and
  validators, used for every value whatever its source (a posted form, a JSON body, the
  form's pydantic ``model``);
- how to **read** it from a posted HTML form (``extract``): text is stripped, an empty input is
  "no value", a checkbox that is not sent is ``False``, a select names one of its choices;
- how to **draw** it (``render_widget`` / ``render_row``), with the accessibility attributes.

On a form class, a field is a descriptor: ``ArticleForm.title`` is the ``Field``,
``form.title`` the ``BoundField`` (the field with this form's value and errors).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Optional,
    TypeAlias,
    TypeVar,
    overload,
)

from markupsafe import Markup, escape
from pydantic import AfterValidator, BeforeValidator, StringConstraints, TypeAdapter
from pydantic import Field as PydanticField
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, PydanticUndefined

from trellis.contrib.forms._html import normalise_attrs, tag
from trellis.contrib.forms._messages import ValidationError
from trellis.exceptions import ConfigurationError
from trellis.i18n import LazyString
from trellis.i18n import gettext as _

if TYPE_CHECKING:
    from trellis.contrib.forms.bound import BoundField
    from trellis.contrib.forms.form import Form

__all__ = [
    "MISSING",
    "BooleanField",
    "Choices",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "EmailField",
    "Field",
    "FileField",
    "FloatField",
    "HiddenField",
    "IntegerField",
    "PasswordField",
    "StringField",
    "TextField",
    "TimeField",
    "humanize",
]

F = TypeVar("F", bound="Field")
#: Text shown to people (a label, a help text): a ``str``, or ``lazy_gettext(...)``, translated
#: each time it is drawn.
Text: TypeAlias = str | LazyString


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


#: "No value was sent" (an empty input, an absent key): not the same as ``None``.
MISSING: Any = _Missing()

#: What ``choices=`` accepts: values, ``(value, label)`` pairs, a mapping, an ``Enum`` class,
#: or a callable (sync or async) that takes the form and returns one of those.
Choices = Iterable[Any] | Mapping[Any, Any] | type[enum.Enum] | Callable[["Form"], Any]


def humanize(name: str) -> str:
    """A label from a field name: ``published_at`` -> ``Published at``."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _missing_error() -> PydanticCustomError:
    return PydanticCustomError("missing", _("This field is required."))


def _none_is_missing(value: Any) -> Any:
    # A JSON null for a required field: the same message as an absent one.
    if value is None:
        raise _missing_error()
    return value


def _user_validator(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A validator as pydantic runs it: ``None`` returned keeps the value."""

    def run(value: Any) -> Any:
        try:
            result = fn(value)
        except ValidationError as exc:
            raise PydanticCustomError(exc.code, exc.message) from None
        return value if result is None else result

    run.__name__ = getattr(fn, "__name__", "validator")
    return run


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


class Field:
    """The base of every field.

    Args:
        label: The text of the ``<label>`` (a ``lazy_gettext`` string translates); defaults to
            the attribute name made readable (``published_at`` -> "Published at").
        required: Whether a value must be given. Optional fields are ``None`` (or their
            empty value) when left blank.
        help_text: A hint shown under the input and linked to it (``aria-describedby``).
        initial: The value an unbound form shows (or a callable that returns it).
        validators: Callables that take the typed value and return it (or ``None`` to keep
            it), raising ``ValidationError`` (or ``ValueError``) when it is wrong. Async ones
            run after every field's type checks (HTML and ``from_json``; for
            ``Form.Json``, after the body's checks).
        attrs: Extra HTML attributes of the input (``{"class": "wide", "placeholder": ...}``).
        disabled: Drawn disabled; a submitted value is ignored and the initial value kept.
    """

    #: The ``type`` of the ``<input>``.
    input_type: ClassVar[str] = "text"
    #: The Python type of a value.
    base_type: ClassVar[Any] = str
    #: Whether the field is part of the pydantic model (files are not: JSON carries none).
    in_model: ClassVar[bool] = True
    #: Whether a submitted value is shown again (not for passwords and files).
    render_value: ClassVar[bool] = True
    #: Whether the input is a hidden one (drawn with the form's hidden fields, no label).
    is_hidden: ClassVar[bool] = False
    #: Several values (a multi-select).
    multiple: ClassVar[bool] = False

    def __init__(
        self,
        label: Text | None = None,
        *,
        required: bool = True,
        help_text: Text | None = None,
        initial: Any = None,
        validators: Sequence[Callable[[Any], Any]] = (),
        attrs: Mapping[str, Any] | None = None,
        disabled: bool = False,
    ) -> None:
        self.name = ""
        self.label = label
        self.required = required
        self.help_text = help_text
        self.initial = initial
        self.validators = tuple(v for v in validators if not _is_async(v))
        self.async_validators = tuple(v for v in validators if _is_async(v))
        self.attrs = normalise_attrs(attrs or {})
        self.disabled = disabled
        self._adapter: TypeAdapter[Any] | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        if not self.name:
            self.name = name

    @overload
    def __get__(self: F, instance: None, owner: type) -> F: ...

    @overload
    def __get__(self, instance: Form, owner: type) -> BoundField: ...

    def __get__(self, instance: Form | None, owner: type) -> Any:
        if instance is None:
            return self
        return instance[self.name]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    @property
    def label_text(self) -> str:
        """The label as text."""
        return str(self.label) if self.label is not None else humanize(self.name)

    def initial_value(self) -> Any:
        """The field's own initial value (calls ``initial`` when it is callable)."""
        return self.initial() if callable(self.initial) else self.initial

    # -- the type -------------------------------------------------------------------------

    def value_type(self) -> Any:
        """The Python type of a value, before constraints."""
        return self.base_type

    def constraints(self) -> list[Any]:
        """Pydantic metadata (``Field(ge=...)``, ``StringConstraints``) for the type."""
        return []

    def checks(self) -> list[Callable[[Any], Any]]:
        """The field's own checks, run after the type's (``after`` validators)."""
        return []

    def before_checks(self) -> list[Callable[[Any], Any]]:
        """Checks of the raw value, run before the type's (``before`` validators)."""
        return []

    def empty_value(self) -> Any:
        """The value of an optional field left blank."""
        return None

    def annotation(self) -> Any:
        """The pydantic type of a value: type, constraints, checks, validators.

        ``X | None`` when the field is optional (and its empty value is ``None``).
        """
        # Constraints first: they then join the type's own schema (``string_too_long``, not
        # a generic ``too_long``); the before-validator wraps them.
        metadata: list[Any] = list(self.constraints())
        metadata.extend(BeforeValidator(check) for check in self.before_checks())
        if self.required:
            metadata.append(BeforeValidator(_none_is_missing))
        metadata.extend(AfterValidator(check) for check in self.checks())
        metadata.extend(AfterValidator(_user_validator(v)) for v in self.validators)
        tp: Any = self.value_type()
        if metadata:
            tp = Annotated[(tp, *metadata)]
        if not self.required and self.empty_value() is None:
            tp = Optional[tp]  # noqa: UP045 - tp is a runtime value
        return tp

    def schema_extra(self) -> dict[str, Any]:
        """Extra JSON Schema keywords for the field (``format``, ``enum`` ...)."""
        return {}

    def field_info(self) -> FieldInfo:
        """The pydantic ``FieldInfo`` of the field in the form's model."""
        extra = self.schema_extra()
        default: Any = PydanticUndefined if self.required else self.empty_value()
        return PydanticField(  # type: ignore[no-any-return]
            default,
            title=self.label_text,
            description=str(self.help_text) if self.help_text else None,
            json_schema_extra=extra or None,
        )

    @property
    def adapter(self) -> TypeAdapter[Any]:
        """The validator of one value of this field (built once)."""
        if self._adapter is None:
            try:
                self._adapter = TypeAdapter(self.annotation())
            except Exception as exc:
                raise ConfigurationError(
                    f"field {self.name!r} ({type(self).__name__}): pydantic cannot validate its"
                    f" type ({type(exc).__name__}: {exc})"
                ) from None
        return self._adapter

    # -- reading a posted form ------------------------------------------------------------

    def extract(self, data: Any, key: str) -> Any:
        """The raw value sent under ``key`` in a posted form, or ``MISSING`` for none.

        ``data`` is a ``FormData`` (or another multi-dict with ``getlist``).
        """
        value = data.get(key)
        if value is None:
            return MISSING
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return MISSING
        return value

    def clean_raw(self, raw: Any, form: Form) -> Any:
        """The typed value of a raw one (from a posted form or JSON), or raise.

        Raises:
            pydantic.ValidationError | ValidationError: the value is not valid.
        """
        return self.adapter.validate_python(raw)

    async def check(self, value: Any, form: Form) -> Any:
        """Checks that need ``await`` (async choices, async validators); return the value."""
        for validator in self.async_validators:
            result = await validator(value)
            if result is not None:
                value = result
        return value

    # -- drawing --------------------------------------------------------------------------

    def format(self, value: Any) -> str:
        """A typed value as the text of an input."""
        if value is None or value is MISSING:
            return ""
        if isinstance(value, enum.Enum):
            return str(value.value)
        return str(value)

    @property
    def kind(self) -> str:
        """The kind of input, for the row's CSS class (``field-<kind>``)."""
        return self.input_type

    def widget_attrs(self) -> dict[str, Any]:
        """Attributes that follow from the field's constraints (``maxlength``, ``min`` ...)."""
        return {}

    def base_attrs(self, bound: BoundField, extra: Mapping[str, Any]) -> dict[str, Any]:
        """``id``, ``name``, ``required``, ``aria-*`` and the field's and caller's attributes."""
        attrs: dict[str, Any] = {"id": bound.id, "name": bound.html_name}
        if self.required and not self.is_hidden:
            attrs["required"] = True
        if self.disabled:
            attrs["disabled"] = True
        if bound.errors:
            attrs["aria-invalid"] = "true"
        if bound.described_by:
            attrs["aria-describedby"] = bound.described_by
        attrs.update(self.widget_attrs())
        attrs.update(self.attrs)
        attrs.update(normalise_attrs(extra))
        return attrs

    def render_widget(self, bound: BoundField, extra: Mapping[str, Any]) -> Markup:
        """The input itself."""
        attrs = self.base_attrs(bound, extra)
        attrs = {"type": self.input_type, **attrs}
        if self.render_value:
            value = bound.value
            if value:
                attrs["value"] = value
        return tag("input", attrs)

    def render_row(self, bound: BoundField) -> Markup:
        """Label, input, help and errors, in a ``<div class="field ...">``."""
        if self.is_hidden:
            return bound.widget()
        parts = [bound.label, Markup("\n"), bound.widget()]
        return self._row(bound, parts)

    def _row(self, bound: BoundField, parts: list[Markup], element: str = "div") -> Markup:
        if bound.help:
            parts += [Markup("\n"), bound.help]
        if bound.errors:
            parts += [Markup("\n"), Markup(bound.errors.__html__())]
        css = ["field", f"field-{self.kind}"]
        if self.required:
            css.append("required")
        if bound.errors:
            css.append("invalid")
        attrs: dict[str, Any] = {"class": " ".join(css)}
        if element == "fieldset":
            attrs["id"] = bound.id
            if bound.described_by:
                attrs["aria-describedby"] = bound.described_by
        return tag(element, attrs, Markup("").join(parts))


# -- text -----------------------------------------------------------------------------------


class StringField(Field):
    """One line of text: ``<input type="text">``, a ``str``.

    Args:
        min_length: Shortest length (``minlength``).
        max_length: Longest length (``maxlength``).
        pattern: A regular expression the whole value must match (checked on the server).
        strip: Strip surrounding white space (the default).
        **kwargs: As for ``Field``.
    """

    def __init__(
        self,
        label: Text | None = None,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        strip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = pattern
        self.strip = strip

    def constraints(self) -> list[Any]:  # noqa: D102
        if not (self.strip or self.min_length or self.max_length or self.pattern):
            return []
        return [
            StringConstraints(
                strip_whitespace=self.strip or None,
                min_length=self.min_length,
                max_length=self.max_length,
                pattern=self.pattern,
            )
        ]

    def before_checks(self) -> list[Callable[[Any], Any]]:  # noqa: D102
        if not self.required:
            return []
        strip = self.strip

        def not_blank(value: Any) -> Any:
            # Blank text is no value: "required", not "too short".
            if isinstance(value, str) and not (value.strip() if strip else value):
                raise _missing_error()
            return value

        return [not_blank]

    def extract(self, data: Any, key: str) -> Any:  # noqa: D102
        value = data.get(key)
        if value is None:
            return MISSING
        if not isinstance(value, str):
            return value  # a file sent for a text field: the type check refuses it
        if self.strip:
            value = value.strip()
        return value if value else MISSING

    def widget_attrs(self) -> dict[str, Any]:  # noqa: D102
        return {"minlength": self.min_length, "maxlength": self.max_length}


class TextField(StringField):
    """Several lines of text: ``<textarea>``, a ``str``."""

    input_type = "textarea"

    def render_widget(self, bound: BoundField, extra: Mapping[str, Any]) -> Markup:  # noqa: D102
        attrs = self.base_attrs(bound, extra)
        # A newline right after <textarea> is dropped by the parser: keep a leading one.
        return tag("textarea", attrs, Markup("\n") + escape(bound.value or ""))


_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def _check_email(value: str | None) -> str | None:
    if value and not _EMAIL.match(value):
        raise PydanticCustomError("invalid_email", _("Enter a valid e-mail address."))
    return value


class EmailField(StringField):
    """An e-mail address: ``<input type="email">``, a ``str`` (at most 254 characters)."""

    input_type = "email"

    def __init__(self, label: Text | None = None, *, max_length: int = 254, **kwargs: Any):
        super().__init__(label, max_length=max_length, **kwargs)

    def checks(self) -> list[Callable[[Any], Any]]:  # noqa: D102
        return [_check_email]

    def schema_extra(self) -> dict[str, Any]:  # noqa: D102
        return {"format": "email"}


class PasswordField(StringField):
    """A password: ``<input type="password">``, never drawn back into the page."""

    input_type = "password"
    render_value = False

    def __init__(self, label: Text | None = None, *, strip: bool = False, **kwargs: Any) -> None:
        super().__init__(label, strip=strip, **kwargs)

    def schema_extra(self) -> dict[str, Any]:  # noqa: D102
        return {"format": "password", "writeOnly": True}


class HiddenField(StringField):
    """A hidden input, optional by default (``required=True`` to insist)."""

    input_type = "hidden"
    is_hidden = True

    def __init__(self, label: Text | None = None, *, required: bool = False, **kwargs: Any):
        super().__init__(label, required=required, **kwargs)


# -- numbers --------------------------------------------------------------------------------


class _NumberField(Field):
    input_type = "number"
    step: Any = None

    def __init__(
        self,
        label: Text | None = None,
        *,
        min_value: Any = None,
        max_value: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.min_value = min_value
        self.max_value = max_value

    def limits(self) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        if self.min_value is not None:
            limits["ge"] = self.min_value
        if self.max_value is not None:
            limits["le"] = self.max_value
        return limits

    def constraints(self) -> list[Any]:
        limits = self.limits()
        return [PydanticField(**limits)] if limits else []

    def widget_attrs(self) -> dict[str, Any]:
        return {
            "min": None if self.min_value is None else self.format(self.min_value),
            "max": None if self.max_value is None else self.format(self.max_value),
            "step": self.step,
        }


class IntegerField(_NumberField):
    """A whole number: ``<input type="number">``, an ``int``.

    Args:
        min_value: Smallest value (``min``).
        max_value: Largest value (``max``).
        **kwargs: As for ``Field``.
    """

    base_type = int


class FloatField(_NumberField):
    """A number: ``<input type="number" step="any">``, a ``float`` (finite)."""

    base_type = float
    step = "any"

    def constraints(self) -> list[Any]:  # noqa: D102
        return [PydanticField(allow_inf_nan=False, **self.limits())]


class DecimalField(_NumberField):
    """An exact decimal number: ``<input type="number">``, a ``Decimal``.

    Args:
        max_digits: Most digits in all.
        decimal_places: Most digits after the point (also the input's ``step``).
        **kwargs: As for ``Field``, plus ``min_value`` (smallest value) and ``max_value``
            (largest value).
    """

    base_type = decimal.Decimal

    def __init__(
        self,
        label: Text | None = None,
        *,
        max_digits: int | None = None,
        decimal_places: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.max_digits = max_digits
        self.decimal_places = decimal_places

    @property
    def step(self) -> str:  # noqa: D102
        if self.decimal_places is None:
            return "any"
        if self.decimal_places == 0:
            return "1"
        return "0." + "0" * (self.decimal_places - 1) + "1"

    def constraints(self) -> list[Any]:  # noqa: D102
        return [
            PydanticField(
                allow_inf_nan=False,
                max_digits=self.max_digits,
                decimal_places=self.decimal_places,
                **self.limits(),
            )
        ]

    def format(self, value: Any) -> str:  # noqa: D102
        if isinstance(value, decimal.Decimal):
            return format(value, "f")
        return super().format(value)


# -- yes / no -------------------------------------------------------------------------------


def _must_be_true(value: bool) -> bool:
    if not value:
        raise _missing_error()
    return value


class BooleanField(Field):
    """A checkbox: ``True`` when ticked, ``False`` when not (browsers send nothing then).

    Optional by default; ``required=True`` means it must be ticked ("I accept the terms").
    """

    input_type = "checkbox"
    base_type = bool

    def __init__(self, label: Text | None = None, *, required: bool = False, **kwargs: Any):
        super().__init__(label, required=required, **kwargs)

    def empty_value(self) -> Any:  # noqa: D102
        return False

    def checks(self) -> list[Callable[[Any], Any]]:  # noqa: D102
        return [_must_be_true] if self.required else []

    def extract(self, data: Any, key: str) -> Any:  # noqa: D102
        value = data.get(key)
        if value is None:
            return False
        if isinstance(value, str) and not value.strip():
            return True  # <input type="checkbox" value="">: ticked
        return value

    def render_widget(self, bound: BoundField, extra: Mapping[str, Any]) -> Markup:  # noqa: D102
        attrs = {"type": "checkbox", **self.base_attrs(bound, extra)}
        attrs["checked"] = bool(bound.value)
        return tag("input", attrs)

    def render_row(self, bound: BoundField) -> Markup:  # noqa: D102
        return self._row(bound, [bound.widget(), Markup("\n"), bound.label])


# -- dates ----------------------------------------------------------------------------------


class DateField(_NumberField):
    """A date: ``<input type="date">``, a ``datetime.date``.

    Args:
        min_value: Earliest date (``min``).
        max_value: Latest date (``max``).
        **kwargs: As for ``Field``.
    """

    input_type = "date"
    base_type = datetime.date

    def format(self, value: Any) -> str:  # noqa: D102
        if isinstance(value, datetime.date):
            return value.isoformat()
        return super().format(value)


class DateTimeField(_NumberField):
    """A date and time: ``<input type="datetime-local">``, a ``datetime.datetime``.

    Browsers send a local time without a zone (``2024-05-01T14:30``).

    Args:
        timezone: The zone of such a value (``zoneinfo.ZoneInfo("Europe/Paris")``, ``UTC``):
            values without a zone get it, and aware values are shown in it. Without it,
            values stay as sent (naive; Trellis' ``UTCDateTime`` columns read them as UTC).
        **kwargs: As for ``Field``, plus ``min_value`` (earliest value) and ``max_value``
            (latest value).
    """

    input_type = "datetime-local"
    base_type = datetime.datetime

    def __init__(
        self, label: Text | None = None, *, timezone: datetime.tzinfo | None = None, **kwargs: Any
    ) -> None:
        super().__init__(label, **kwargs)
        self.timezone = timezone

    def checks(self) -> list[Callable[[Any], Any]]:  # noqa: D102
        zone = self.timezone
        if zone is None:
            return []

        def in_zone(value: datetime.datetime | None) -> datetime.datetime | None:
            if value is not None and value.tzinfo is None:
                return value.replace(tzinfo=zone)
            return value

        return [in_zone]

    def format(self, value: Any) -> str:  # noqa: D102
        if isinstance(value, datetime.datetime):
            if value.tzinfo is not None and self.timezone is not None:
                value = value.astimezone(self.timezone)
            value = value.replace(tzinfo=None, microsecond=0)
            return str(value.isoformat(timespec="seconds" if value.second else "minutes"))
        return super().format(value)


class TimeField(_NumberField):
    """A time of day: ``<input type="time">``, a ``datetime.time``."""

    input_type = "time"
    base_type = datetime.time

    def format(self, value: Any) -> str:  # noqa: D102
        if isinstance(value, datetime.time):
            value = value.replace(microsecond=0)
            return str(value.isoformat(timespec="seconds" if value.second else "minutes"))
        return super().format(value)


# -- files ----------------------------------------------------------------------------------


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


class FileField(Field):
    """An uploaded file: ``<input type="file">``, an ``UploadFile``.

    The form gets ``enctype="multipart/form-data"``. File fields are not part of the JSON
    model (JSON carries no files).

    Args:
        accept: Allowed types: MIME types (``"application/pdf"``), families (``"image/*"``)
            or extensions (``".pdf"``); also the input's ``accept``. Checked on the server
            against the type and name the client gave (which it chooses: check the content
            too when it matters).
        max_size: Largest size in bytes.
        **kwargs: As for ``Field``.
    """

    input_type = "file"
    in_model = False
    render_value = False
    base_type = object

    def __init__(
        self,
        label: Text | None = None,
        *,
        accept: Sequence[str] | None = None,
        max_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(label, **kwargs)
        self.accept = tuple(a.strip().lower() for a in accept or ())
        self.max_size = max_size

    def extract(self, data: Any, key: str) -> Any:  # noqa: D102
        value = data.get(key)
        if value is None:
            return MISSING
        if isinstance(value, str):
            return value if value.strip() else MISSING
        if not getattr(value, "filename", "") and not getattr(value, "size", 0):
            return MISSING  # a file input left empty: the browser sends a nameless, empty part
        return value

    def _accepted(self, upload: Any) -> bool:
        if not self.accept:
            return True
        content_type = str(getattr(upload, "content_type", "") or "").split(";")[0].lower()
        filename = str(getattr(upload, "filename", "") or "").lower()
        for pattern in self.accept:
            if pattern.startswith("."):
                if filename.endswith(pattern):
                    return True
            elif pattern.endswith("/*"):
                if content_type.startswith(pattern[:-1]):
                    return True
            elif content_type == pattern:
                return True
        return False

    def clean_raw(self, raw: Any, form: Form) -> Any:  # noqa: D102
        if not (hasattr(raw, "filename") and hasattr(raw, "read")):
            raise ValidationError(_("Upload a file."), code="file_expected")
        if self.max_size is not None and getattr(raw, "size", 0) > self.max_size:
            raise ValidationError(
                _("The file is larger than %(size)s.", size=_size_text(self.max_size)),
                code="file_too_large",
            )
        if not self._accepted(raw):
            raise ValidationError(_("This type of file is not allowed."), code="file_type")
        for validator in self.validators:
            result = validator(raw)
            if result is not None:
                raw = result
        return raw

    def annotation(self) -> Any:  # noqa: D102
        return Any

    def widget_attrs(self) -> dict[str, Any]:  # noqa: D102
        return {"accept": ",".join(self.accept) or None}
