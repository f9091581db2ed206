"""``Form``: fields declared once, for HTML pages and for JSON bodies.

A ``Form`` subclass collects its fields when it is defined (errors in the declaration show at
import time) and builds from them a pydantic model, ``ArticleForm.model``: the type of every
field with its constraints and validators. The same types check a posted HTML form (after the
browser's text is read: empty inputs, checkboxes, selects), a JSON body, and the body of a
handler that takes ``form: ArticleForm.Json``; the OpenAPI document shows the model.

Validation runs in this order, and every problem is reported at once:

1. each field's type, constraints and validators (sync);
2. checks that need ``await``: choices loaded by a callable, async validators,
   ``clean_<name>`` hooks;
3. the form as a whole: the source pydantic model (``Form.from_model``), then ``clean``.

Steps 2 and 3 run for the fields (the form) that passed the steps before.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, create_model, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from trellis.contrib.forms._html import ErrorList, tag
from trellis.contrib.forms._messages import ValidationError, message_for, translate_errors
from trellis.contrib.forms.bound import BoundField
from trellis.contrib.forms.choices import ChoiceField
from trellis.contrib.forms.fields import MISSING, BooleanField, Field
from trellis.datastructures import MultiDict
from trellis.exceptions import (
    BadRequestError,
    ConfigurationError,
    RequestValidationError,
    UnsupportedMediaTypeError,
)
from trellis.handlers.params import Depends
from trellis.i18n import gettext as _

if TYPE_CHECKING:
    from collections.abc import Callable

    from trellis.http.request import Request

__all__ = ["ErrorList", "Form", "FormMeta", "FormModel", "ValidationError"]

FormT = TypeVar("FormT", bound="Form")

#: The key of form-wide messages in ``form.errors``.
NON_FIELD_ERRORS = "__all__"

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _translated(exc: PydanticValidationError) -> PydanticValidationError:
    line_errors: list[Any] = [
        {
            "type": PydanticCustomError(e["type"], message_for(e)),
            "loc": tuple(e["loc"]),
            "input": e.get("input"),
        }
        for e in exc.errors(include_url=False)
    ]
    return PydanticValidationError.from_exception_data(exc.title, line_errors)


def _form_messages(cls: Any, data: Any, handler: Callable[[Any], Any]) -> Any:
    try:
        return handler(data)
    except PydanticValidationError as exc:
        raise _translated(exc) from None


def _messages_validator() -> Any:
    """A wrap validator that puts the form's (translated) messages in a model's errors."""
    return model_validator(mode="wrap")(classmethod(_form_messages))  # type: ignore[arg-type]


class FormModel(BaseModel):
    """The base of the pydantic model of a form: its messages are the form's (translated)."""

    model_config = ConfigDict(protected_namespaces=())

    _form_messages = _messages_validator()


class FormMeta(type):
    """The metaclass of forms: ``ArticleForm.model``, ``.Json`` and ``.base_fields``.

    A ``ModelForm`` builds them on first use (its model's relationships must be resolvable).
    """

    _built: bool
    _fields: dict[str, Field]
    _model: type[BaseModel]

    def __getattr__(cls, name: str) -> Any:
        # A ModelForm's generated fields exist once it is built.
        if (
            name.startswith("_")
            or cls.__dict__.get("_built", True)
            or cls.__dict__.get("_building", False)
        ):
            raise AttributeError(name)
        cls._ensure_built()
        return type.__getattribute__(cls, name)

    @property
    def model(cls) -> type[BaseModel]:
        """The pydantic model of the form's values (files left out): for the JSON API."""
        cls._ensure_built()
        return cls._model

    @property
    def base_fields(cls) -> dict[str, Field]:
        """The form's fields by name, in order."""
        cls._ensure_built()
        return dict(cls._fields)

    @property
    def Json(cls) -> Any:
        """``Annotated[Form, Depends(...)]``: a handler parameter validated from JSON.

        The handler gets a valid form (``form.data``); a body that does not validate gets a
        422 whose errors have the ``loc`` ``["body", "<field>", ...]``.
        """
        found = cls.__dict__.get("_json_type")
        if found is None:
            found = Annotated[cls, cls.as_dependency()]
            type.__setattr__(cls, "_json_type", found)
        return found


class Form(metaclass=FormMeta):
    """A form: declare fields as class attributes; use it for pages and for JSON.

    Args:
        data: The submitted values: a ``FormData`` (``await request.form()``) or another
            multi-dict read as a browser sends forms, or a plain mapping read as JSON (typed
            values; absent keys are "not given"). ``None`` for an unbound form (a page
            showing the form for the first time).
        files: Uploaded files by name, added to ``data`` (a ``FormData`` has them already).
        initial: Values an unbound form shows, by field name (win over the fields' own).
        request: The request (for the CSRF field and for choice callables).
        db: A database session (for choice callables and ``ModelForm``).
        instance: The object being edited (``ModelForm``: its values are the initial ones).
        prefix: Put before every name (``prefix-name``) to have several forms in one page.

    Example:
        ```python
        import asyncio

        from trellis.contrib.forms import (
            BooleanField,
            EmailField,
            Form,
            IntegerField,
            ValidationError,
        )


        class SignupForm(Form):
            email = EmailField()
            age = IntegerField(min_value=13, required=False)
            terms = BooleanField("I accept the terms", required=True)

            def clean(self, data):
                if data["email"].endswith("@example.com"):
                    raise ValidationError("Use your own address.", field="email")


        form = SignupForm({"email": "ann@example.com", "terms": True})  # JSON, or a form's data
        assert asyncio.run(form.validate()) is False
        assert form.errors["email"] == ["Use your own address."]
        ```
    """

    class Meta:
        """Options: ``csrf`` (put the CSRF field in the form; default ``True``)."""

        csrf = True

    #: Whether the fields are collected later, on first use (``ModelForm``).
    _lazy: ClassVar[bool] = False
    #: The pydantic model ``from_model`` read (validated after the fields, as a whole).
    _source_model: ClassVar[type[BaseModel] | None] = None
    _built: ClassVar[bool] = True
    _fields: ClassVar[dict[str, Field]] = {}
    _model: ClassVar[type[BaseModel]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        type.__setattr__(cls, "_built", False)
        if not cls._lazy:
            cls._ensure_built()

    # -- building the class ---------------------------------------------------------------

    @classmethod
    def _ensure_built(cls) -> None:
        if cls.__dict__.get("_built", True) or cls.__dict__.get("_building", False):
            return
        type.__setattr__(cls, "_building", True)
        try:
            cls._build()
        finally:
            type.__setattr__(cls, "_building", False)

    @classmethod
    def _build(cls) -> None:
        fields = cls._collect_fields()
        reserved = _reserved_names()
        declared = {
            n for klass in cls.__mro__ for n, v in vars(klass).items() if isinstance(v, Field)
        }
        for name, field in fields.items():
            field.name = name
            if name in reserved or name.startswith("_"):
                if name in declared or name.startswith("_"):
                    raise ConfigurationError(
                        f"{cls.__qualname__}: a field cannot be named {name!r} (it is a name of"
                        " the Form API, or private); rename it"
                    )
                # A generated field (a ModelForm's column ``data``): form["data"] only.
            else:
                type.__setattr__(cls, name, field)
            field.adapter  # noqa: B018 - build each validator now: bad types fail at start-up
        type.__setattr__(cls, "_fields", fields)
        type.__setattr__(cls, "_model", cls._build_model(fields))
        type.__setattr__(cls, "_built", True)

    @classmethod
    def _declared_fields(cls) -> dict[str, Field]:
        """Fields declared on the class and its bases (bases first), each copied for it."""
        fields: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            fields.update((n, v) for n, v in vars(klass).items() if isinstance(v, Field))
        return {name: copy.copy(field) for name, field in fields.items()}

    @classmethod
    def _collect_fields(cls) -> dict[str, Field]:
        return cls._declared_fields()

    @classmethod
    def _build_model(cls, fields: dict[str, Field]) -> type[BaseModel]:
        source = cls._source_model
        if source is not None and set(source.model_fields) == {
            n for n, f in fields.items() if f.in_model
        }:
            # The declared model itself (its validators included), speaking the form's words.
            namespace = {
                "__module__": source.__module__,
                "__qualname__": source.__qualname__,
                "__doc__": source.__doc__,
                "_form_messages": _messages_validator(),
            }
            metaclass: Any = type(source)
            model: type[BaseModel] = metaclass(source.__name__, (source,), namespace)
            return model
        definitions: dict[str, Any] = {
            name: (field.annotation(), field.field_info())
            for name, field in fields.items()
            if field.in_model
        }
        try:
            return create_model(
                cls.__name__,
                __base__=FormModel,
                __module__=cls.__module__,
                __doc__=(inspect.getdoc(cls) or None) if cls.__doc__ else None,
                **definitions,
            )
        except Exception as exc:
            raise ConfigurationError(
                f"{cls.__qualname__}: cannot build its pydantic model ({type(exc).__name__}: {exc})"
            ) from None

    @classmethod
    def from_model(
        cls: type[FormT],
        model: type[BaseModel],
        *,
        name: str | None = None,
        fields: list[str] | tuple[str, ...] | None = None,
        exclude: list[str] | tuple[str, ...] = (),
        **overrides: Field,
    ) -> type[FormT]:
        """A form class whose fields come from a pydantic model.

        Each model field gets the form field of its type (``str`` -> ``StringField`` with the
        model's ``max_length``, ``int`` -> ``IntegerField``, ``bool`` -> ``BooleanField``,
        ``date``/``datetime``/``time``, ``Decimal``, an ``Enum`` or ``Literal`` -> a select,
        ``list`` of those -> a multi-select, ``UploadFile`` -> ``FileField``); the label is the
        field's ``title``, the help text its ``description``, the initial value its default.
        After the fields, the values are validated by the model itself, so its own validators
        apply too. ``ArticleForm.model`` is (a subclass of) the model.

        Args:
            model: The pydantic model.
            name: The class name; defaults to ``<Model>Form``.
            fields: Only these model fields.
            exclude: Leave these out (each must have a default).
            **overrides: Form fields to use instead of the derived ones (``body=TextField()``).

        Raises:
            ConfigurationError: a field type with no form field (pass an override), an
                excluded field without a default, an unknown name.
        """
        from trellis.contrib.forms._from_model import form_field_for

        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigurationError(
                f"Form.from_model() takes a pydantic model class, not {model!r}"
            )
        known = model.model_fields
        unknown = sorted({*(fields or ()), *exclude, *overrides} - known.keys())
        if unknown:
            raise ConfigurationError(
                f"Form.from_model({model.__name__}): {', '.join(map(repr, unknown))} not a field"
                f" of {model.__name__}; its fields are {', '.join(known)}"
            )
        attrs: dict[str, Any] = {"__module__": model.__module__, "_source_model": model}
        if model.__doc__ and model.__doc__ is not BaseModel.__doc__:
            attrs["__doc__"] = model.__doc__
        for field_name, info in known.items():
            left_out = (fields is not None and field_name not in fields) or field_name in exclude
            if left_out:
                if info.is_required():
                    raise ConfigurationError(
                        f"Form.from_model({model.__name__}): cannot leave out {field_name!r}: the"
                        " model requires it (give it a default, or keep it in the form)"
                    )
                continue
            if info.alias is not None and info.alias != field_name:
                raise ConfigurationError(
                    f"Form.from_model({model.__name__}): field {field_name!r} has the alias"
                    f" {info.alias!r}; forms use field names (drop the alias or declare a Form)"
                )
            attrs[field_name] = overrides.get(field_name) or form_field_for(model, field_name, info)
        return type(name or f"{model.__name__}Form", (cls,), attrs)

    @classmethod
    def as_dependency(cls) -> Depends:
        """``Depends(...)`` that gives a handler this form validated from the JSON body.

        ``form: Annotated[ArticleForm, ArticleForm.as_dependency()]`` is the same as
        ``form: ArticleForm.Json``, and type checkers understand it.
        """
        provider = cls.__dict__.get("_json_provider")
        if provider is None:
            provider = cls._make_provider()
            type.__setattr__(cls, "_json_provider", provider)
        return Depends(provider)

    @classmethod
    def _make_provider(cls) -> Callable[..., Any]:
        from trellis.http.request import Request

        async def provider(request: Any, body: Any) -> Any:
            form = cls(request=request)
            await form._bind_validated(body)
            if not form.is_valid:
                raise form.validation_error()
            return form

        provider.__annotations__ = {"request": Request, "body": cls.model, "return": cls}
        provider.__qualname__ = f"{cls.__qualname__}.Json"
        return provider

    # -- instances ------------------------------------------------------------------------

    def __init__(
        self,
        data: Any = None,
        files: Mapping[str, Any] | None = None,
        *,
        initial: Mapping[str, Any] | None = None,
        request: Request | None = None,
        db: Any = None,
        instance: Any = None,
        prefix: str = "",
    ) -> None:
        type(self)._ensure_built()
        self.request = request
        self.db = db
        self.instance = instance
        self.prefix = prefix
        self.initial: dict[str, Any] = dict(initial or {})
        self._html: Any = None
        self._json: dict[str, Any] | None = None
        self._body_error: str | None = None
        self._choices: dict[str, list[tuple[Any, str]]] = {}
        self._loaded = False
        self._reset()
        if data is not None or files:
            self._bind(data, files)

    def _reset(self) -> None:
        self._field_errors: dict[str, list[str]] = {}
        self._form_errors: list[str] = []
        self._entries: list[dict[str, Any]] = []
        self._cleaned: dict[str, Any] | None = None
        self._valid: bool | None = None
        self._absent: set[str] = set()  # optional fields given no value

    def _bind(self, data: Any, files: Mapping[str, Any] | None = None) -> None:
        self._html = self._json = self._body_error = None
        if data is None or hasattr(data, "getlist"):
            items = list(data.multi_items()) if data is not None else []
            if files:
                items.extend(files.items())
            self._html = data if not files else MultiDict(items)
        elif isinstance(data, Mapping):
            self._json = {**dict(data), **dict(files or {})}
        else:
            raise TypeError(
                f"Form data is a FormData / multi-dict (an HTML form) or a mapping (JSON), not"
                f" {type(data).__name__}"
            )
        self._reset()

    def _bind_json(self, body: Any) -> None:
        if isinstance(body, Mapping):
            self._bind(body)
        else:
            self._bind({})
            self._body_error = _("Input should be a JSON object.")

    @classmethod
    async def from_request(
        cls: type[FormT],
        request: Request,
        *,
        db: Any = None,
        instance: Any = None,
        initial: Mapping[str, Any] | None = None,
        prefix: str = "",
    ) -> FormT:
        """The form for a request: bound and validated for ``POST``/``PUT``/``PATCH``/``DELETE``.

        A form body (urlencoded or multipart, files included) is read as a browser sends it;
        a JSON body as JSON. Other methods (``GET``) give an unbound form showing the initial
        values. Choices that come from a callable are loaded either way.

        Raises:
            UnsupportedMediaTypeError: an unsafe request whose body is neither a form nor JSON.
            BadRequestError: a JSON body that is not valid JSON.
        """
        form = cls(request=request, db=db, instance=instance, initial=initial, prefix=prefix)
        if request.method in _UNSAFE:
            ctype = request.content_type
            if ctype in _FORM_TYPES:
                form._bind(await request.form())
            elif ctype == "application/json" or ctype.endswith("+json"):
                form._bind_json(await request.json())
            elif not ctype and not (await request.body()).strip():
                form._bind(MultiDict())
            else:
                raise UnsupportedMediaTypeError(
                    f"{cls.__name__} reads an HTML form or JSON, not {ctype!r}"
                )
        await form.load()
        if form.is_bound:
            await form.validate()
        return form

    @classmethod
    async def from_json(
        cls: type[FormT],
        body: bytes | str | Mapping[str, Any],
        *,
        request: Request | None = None,
        db: Any = None,
        instance: Any = None,
    ) -> FormT:
        """The form bound to a JSON body (bytes, text or a decoded object), validated.

        ``form.validation_error()`` is then the 422 a typed handler would give, with the
        same ``loc`` (``["body", "<field>"]``).

        Raises:
            BadRequestError: ``body`` is not valid JSON.
        """
        if isinstance(body, bytes | bytearray | str):
            from trellis.http._json import loads

            try:
                body = loads(body) if body.strip() else {}
            except ValueError as exc:
                raise BadRequestError(f"Invalid JSON body: {exc}") from None
        form = cls(request=request, db=db, instance=instance)
        form._bind_json(body)
        await form.validate()
        return form

    # -- state ----------------------------------------------------------------------------

    @property
    def is_bound(self) -> bool:
        """Whether the form has submitted data (else it shows initial values)."""
        return self._html is not None or self._json is not None

    @property
    def is_valid(self) -> bool:
        """Whether the submitted data is valid (``False`` for an unbound form).

        Raises:
            RuntimeError: the form is bound but not validated yet (``await form.validate()``).
        """
        if not self.is_bound:
            return False
        if self._valid is None:
            raise RuntimeError(
                f"{type(self).__name__} is not validated yet: await form.validate() first"
                " (from_request and from_json do it)"
            )
        return self._valid

    @property
    def data(self) -> dict[str, Any]:
        """The typed values, by field name (those of the valid fields when some are not).

        Raises:
            RuntimeError: the form was not validated.
        """
        if self._cleaned is None:
            raise RuntimeError(
                f"{type(self).__name__}.data exists once the form is validated: await"
                " form.validate() (from_request and from_json do it)"
            )
        return self._cleaned

    @property
    def errors(self) -> dict[str, ErrorList]:
        """The messages by field name; form-wide ones under ``"__all__"``."""
        out = {
            name: ErrorList(messages, id=f"{self[name].id}_errors")
            for name, messages in self._field_errors.items()
        }
        if self._form_errors:
            out[NON_FIELD_ERRORS] = self.form_errors
        return out

    @property
    def form_errors(self) -> ErrorList:
        """The form-wide messages (renders as ``<ul class="errors" role="alert">``)."""
        return ErrorList(self._form_errors, id=self._form_errors_id(), form_wide=True)

    def _form_errors_id(self) -> str:
        return f"id_{self.prefix}-form_errors" if self.prefix else "id_form_errors"

    def add_error(self, field: str | None, message: str, *, code: str = "value_error") -> None:
        """Add a message to ``field`` (``None``: to the form); the form becomes invalid.

        Raises:
            KeyError: ``field`` is not a field of the form.
        """
        if field is not None and field not in self._fields:
            raise KeyError(f"{type(self).__name__} has no field {field!r}")
        self._add(field, (), str(message), code)
        if self._valid:
            self._valid = False
        if field is not None and self._cleaned is not None:
            self._cleaned.pop(field, None)

    def _add(self, field: str | None, loc: tuple[Any, ...], message: str, code: str) -> None:
        if field is None:
            self._entries.append({"loc": ["body"], "msg": message, "type": code})
            if message not in self._form_errors:
                self._form_errors.append(message)
            return
        self._entries.append({"loc": ["body", field, *loc], "msg": message, "type": code})
        messages = self._field_errors.setdefault(field, [])
        if message not in messages:
            messages.append(message)

    def error_list(self) -> list[dict[str, Any]]:
        """Every problem as ``{"loc", "msg", "type"}``: the ``errors`` of a 422 answer."""
        return [dict(entry, loc=list(entry["loc"])) for entry in self._entries]

    def validation_error(self) -> RequestValidationError:
        """The 422 error to raise for this (invalid) form, as typed handlers report one."""
        return RequestValidationError(self.error_list())

    def to_model(self) -> BaseModel:
        """The valid values as an instance of ``model`` (files left out)."""
        model = type(self).model
        return model.model_validate({k: v for k, v in self.data.items() if k in model.model_fields})

    # -- fields ---------------------------------------------------------------------------

    def __getitem__(self, name: str) -> BoundField:
        field = self._fields.get(name)
        if field is None:
            raise KeyError(
                f"{type(self).__name__} has no field {name!r}; its fields are"
                f" {', '.join(self._fields)}"
            )
        return BoundField(self, field)

    def __iter__(self) -> Iterator[BoundField]:
        return (BoundField(self, field) for field in self._fields.values())

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __len__(self) -> int:
        return len(self._fields)

    def visible_fields(self) -> list[BoundField]:
        """The fields that are not hidden inputs."""
        return [bound for bound in self if not bound.is_hidden]

    def hidden_fields(self) -> list[BoundField]:
        """The hidden inputs."""
        return [bound for bound in self if bound.is_hidden]

    def choices_of(self, field: ChoiceField) -> list[tuple[Any, str]]:
        """The ``(value, label)`` choices of ``field`` for this form.

        Raises:
            RuntimeError: they come from a callable that was not loaded (``await form.load()``).
        """
        if field.static_choices is not None:
            return field.static_choices
        found = self._choices.get(field.name)
        if found is None:
            raise RuntimeError(
                f"the choices of {type(self).__name__}.{field.name} come from a function: await"
                " form.load() before drawing or validating the form (from_request does)"
            )
        return found

    async def load(self) -> None:
        """Load what drawing and validating need; runs once.

        That is the choices that come from a callable (a ``ModelForm`` also reads the related
        rows of its instance).
        """
        if self._loaded:
            return
        for field in self._fields.values():
            if isinstance(field, ChoiceField) and field.choices_source is not None:
                self._choices[field.name] = await field.load_choices(self)
        self._loaded = True

    # -- validation -----------------------------------------------------------------------

    async def validate(self, data: Any = None, *, raise_errors: bool = False) -> bool:
        """Validate the bound data (or bind ``data`` first); return whether it is valid.

        Args:
            data: Data to bind first (as for the constructor).
            raise_errors: Raise the 422 ``RequestValidationError`` when it is not valid.

        Raises:
            RequestValidationError: ``raise_errors`` and the data is not valid.
        """
        if data is not None:
            self._bind(data)
        self._reset()
        if not self.is_bound:
            return False
        await self.load()
        cleaned: dict[str, Any] = {}
        if self._body_error is not None:
            self._add(None, (), self._body_error, "dict_type")
        else:
            for name, field in self._fields.items():
                if field.disabled:
                    cleaned[name] = self._initial_value(field)
                    continue
                raw = self._raw(field)
                if raw is MISSING:
                    if field.required:
                        self._add(name, (), _("This field is required."), "missing")
                    else:
                        cleaned[name] = copy.copy(field.empty_value())
                        self._absent.add(name)
                    continue
                try:
                    cleaned[name] = field.clean_raw(raw, self)
                except PydanticValidationError as exc:
                    for error in translate_errors(exc.errors(include_url=False)):
                        self._add(name, error["loc"], error["msg"], error["type"])
                except ValidationError as exc:
                    self._add(name, (), exc.message, exc.code)
            await self._finish(cleaned, model_checked=False)
        return self._conclude(cleaned, raise_errors)

    def _conclude(self, cleaned: dict[str, Any], raise_errors: bool) -> bool:
        self._cleaned = cleaned
        self._valid = not self._entries
        if raise_errors and not self._valid:
            raise self.validation_error()
        return self._valid

    def _raw(self, field: Field) -> Any:
        if self._html is not None:
            return field.extract(self._html, self[field.name].html_name)
        assert self._json is not None
        return self._json.get(field.name, MISSING)

    async def _bind_validated(self, instance: BaseModel) -> None:
        """Bind values the model already validated (``Form.Json``), then finish the checks."""
        values = {name: getattr(instance, name) for name in type(instance).model_fields}
        self._bind(values)
        await self.load()
        cleaned: dict[str, Any] = {}
        for name, field in self._fields.items():
            if field.disabled:
                cleaned[name] = self._initial_value(field)
            elif field.in_model:
                cleaned[name] = values.get(name)
            elif field.required:
                self._add(name, (), _("This field is required."), "missing")
            else:
                cleaned[name] = copy.copy(field.empty_value())
        await self._finish(cleaned, model_checked=True)
        self._conclude(cleaned, raise_errors=False)

    async def _finish(self, cleaned: dict[str, Any], *, model_checked: bool) -> None:
        for name, field in self._fields.items():
            if name not in cleaned or name in self._field_errors or field.disabled:
                continue
            try:
                value = await field.check(cleaned[name], self)
                hook = getattr(self, f"clean_{name}", None)
                if hook is not None:
                    result = hook(value)
                    if inspect.isawaitable(result):
                        result = await result
                    value = result
                cleaned[name] = value
            except ValidationError as exc:
                self._add(name, (), exc.message, exc.code)
                cleaned.pop(name, None)
        if self._entries:
            return
        source = type(self)._source_model
        if source is not None and not model_checked:
            self._validate_source(source, cleaned)
            if self._entries:
                return
        try:
            result = self.clean(cleaned)
            if inspect.isawaitable(result):
                result = await result
        except ValidationError as exc:
            target = exc.field if exc.field in self._fields else None
            self._add(target, (), exc.message, exc.code)
            return
        if isinstance(result, Mapping):
            cleaned.clear()
            cleaned.update(result)

    def _validate_source(self, source: type[BaseModel], cleaned: dict[str, Any]) -> None:
        # A field left blank gets the model's default, as an absent key would.
        values = {
            k: v for k, v in cleaned.items() if k in source.model_fields and k not in self._absent
        }
        try:
            instance = type(self).model.model_validate(values)
        except PydanticValidationError as exc:
            for error in translate_errors(exc.errors(include_url=False)):
                loc = error["loc"]
                if loc and loc[0] in self._fields:
                    self._add(str(loc[0]), tuple(loc[1:]), error["msg"], error["type"])
                else:
                    self._add(None, (), error["msg"], error["type"])
            return
        for name in source.model_fields:
            if name in cleaned:
                cleaned[name] = getattr(instance, name)

    def clean(self, data: dict[str, Any]) -> Any:
        """Form-wide checks, once every field is valid; override it (sync or async).

        Raise ``ValidationError(message, field=None)`` (``field=`` to put the message on one
        field), or call ``self.add_error``; return a new mapping to change the values, or
        ``None`` to keep them.
        """
        return None

    # -- values shown ---------------------------------------------------------------------

    def _initial_value(self, field: Field) -> Any:
        """The typed value an unbound form shows for ``field``."""
        if field.name in self.initial:
            value = self.initial[field.name]
            return value() if callable(value) else value
        if self.instance is not None:
            found = self._instance_value(field)
            if found is not MISSING:
                return found
        return field.initial_value()

    def _instance_value(self, field: Field) -> Any:
        value = getattr(self.instance, field.name, MISSING)
        return value

    def _display_value(self, field: Field, html_name: str) -> Any:
        if not field.render_value:
            return [] if field.multiple else ""
        if field.disabled or not self.is_bound:
            return _shown(field, self._initial_value(field))
        if self._html is not None:
            if field.multiple:
                return [v for v in self._html.getlist(html_name) if isinstance(v, str)]
            if isinstance(field, BooleanField):
                raw = field.extract(self._html, html_name)
                try:
                    return bool(field.adapter.validate_python(raw))
                except PydanticValidationError:
                    return False
            value = self._html.get(html_name)
            return value if isinstance(value, str) else ""
        assert self._json is not None
        return _shown(field, self._json.get(field.name))

    # -- drawing --------------------------------------------------------------------------

    @property
    def enctype(self) -> str:
        """``multipart/form-data`` when the form has a file field, else urlencoded."""
        if any(not f.in_model for f in self._fields.values()):
            return "multipart/form-data"
        return "application/x-www-form-urlencoded"

    def _csrf_enabled(self) -> bool:
        meta = getattr(type(self), "Meta", None)
        return bool(getattr(meta, "csrf", True))

    def csrf_input(self) -> Markup:
        """The hidden CSRF field (``trellis.csrf``), or nothing without a request or sessions.

        The request is the form's, or the one being handled when templates are configured.
        """
        if not self._csrf_enabled():
            return Markup("")
        request: Any = self.request
        if request is None:
            from trellis.templating import current_request

            request = current_request.get()
            if request is None:
                return Markup("")
        from trellis.csrf import FIELD_NAME, csrf_token

        try:
            token = csrf_token(request)
        except ConfigurationError:
            return Markup("")  # sessions are off: no cookie to forge requests with
        return tag("input", {"type": "hidden", "name": FIELD_NAME, "value": token})

    def render_fields(self, *, csrf: bool = True) -> Markup:
        """Everything inside the ``<form>`` but the button.

        The CSRF field, hidden inputs, form-wide errors (and those of hidden fields), then
        each visible field's row.
        """
        parts: list[Markup] = []
        if csrf:
            token = self.csrf_input()
            if token:
                parts.append(token)
        hidden = self.hidden_fields()
        parts.extend(bound.widget() for bound in hidden)
        messages = list(self._form_errors)
        for bound in hidden:
            messages.extend(f"{bound.label_text}: {m}" for m in bound.errors)
        if messages:
            errors = ErrorList(messages, id=self._form_errors_id(), form_wide=True)
            parts.append(Markup(errors.__html__()))
        parts.extend(bound.row for bound in self.visible_fields())
        return Markup("\n").join(parts)

    def render(
        self,
        action: str = "",
        *,
        method: str = "post",
        submit: str | None = None,
        **attrs: Any,
    ) -> Markup:
        """The whole ``<form>``: fields, CSRF field (for ``post``), a submit button.

        Args:
            action: Where to send it (``""``: back to this page's URL).
            method: ``"post"`` (the default) or ``"get"``.
            submit: The button's text; defaults to "Submit" (translated).
            **attrs: More attributes of the ``<form>`` (``class_="stacked"``).
        """
        from trellis.contrib.forms._html import normalise_attrs

        form_attrs: dict[str, Any] = {"method": method, "action": action or None}
        if self.enctype == "multipart/form-data" and method.lower() == "post":
            form_attrs["enctype"] = self.enctype
        form_attrs.update(normalise_attrs(attrs))
        button = tag("button", {"type": "submit"}, submit if submit is not None else _("Submit"))
        body = Markup("\n").join(
            [
                self.render_fields(csrf=method.lower() != "get"),
                tag("div", {"class": "actions"}, button),
            ]
        )
        return tag("form", form_attrs, Markup("\n") + body + Markup("\n"))

    def __html__(self) -> str:
        return str(self.render())

    def __repr__(self) -> str:
        state = (
            "unbound"
            if not self.is_bound
            else {None: "bound", True: "valid"}.get(self._valid, "invalid")
        )
        return f"<{type(self).__name__} {state}>"


def _shown(field: Field, value: Any) -> Any:
    """A typed value as the input shows it: text, a list of texts, or a checkbox's bool."""
    if field.multiple:
        if value is None or value is MISSING:
            return []
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        return [field.format(v) for v in values]
    if isinstance(field, BooleanField):
        return bool(value) and value is not MISSING
    return field.format(value)


_RESERVED: frozenset[str] | None = None


def _reserved_names() -> frozenset[str]:
    global _RESERVED
    if _RESERVED is None:
        _RESERVED = frozenset(
            {n for n in dir(Form) if not n.startswith("__")}
            | {"Meta", "model", "Json", "base_fields", "request", "db", "instance", "prefix"}
            | {"initial", "save", "for_model"}  # ModelForm's
        )
    return _RESERVED
