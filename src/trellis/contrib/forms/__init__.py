"""Forms declared once, used for HTML pages and for the JSON API.

A form is a ``Form`` subclass with field declarations (or ``Form.from_model(PydanticModel)``,
or a ``ModelForm`` over a SQLAlchemy model). The same declaration:

- renders accessible HTML (``{{ form }}``, or field by field: ``{{ form.title.label }}``,
  ``{{ form.title }}``, ``{{ form.title.errors }}``), with the CSRF field, ``<label for>``,
  ``aria-invalid``, ``aria-describedby`` pointing at the help and error text, ``required`` and
  the right input types; submitted values are shown again when the form has errors;
- validates a posted HTML form (urlencoded or multipart, files too):
  ``form = await ArticleForm.from_request(request)`` then ``form.is_valid``, ``form.data``
  (typed values), ``form.errors`` (per field, form-wide under ``"__all__"``);
- validates JSON: ``async def create(form: ArticleForm.Json)`` (a dependency: 422 problem
  details with ``loc`` ``["body", "<field>"]``, as for typed handlers, and the form's pydantic
  model ``ArticleForm.model`` in the OpenAPI document), or
  ``form = await ArticleForm.from_json(body)``.

Public API (``from trellis.contrib.forms import ...``):

- ``Form``: the base class. Class attributes: ``model`` (the pydantic model),
  ``Json`` (``Annotated[Form, Depends(...)]`` for a handler parameter), ``base_fields``
  (name -> ``Field``). Class methods: ``await from_request(request, *, db=None, instance=None,
  initial=None, prefix="")``, ``await from_json(body, *, request=None, db=None, instance=None)``,
  ``from_model(pydantic_model, *, name=None, fields=None, exclude=None, **overrides)``,
  ``as_dependency()``. Instances: ``Form(data=None, files=None, *, initial=None, request=None,
  db=None, instance=None, prefix="")``; ``await form.load()`` (choices from callables),
  ``await form.validate(data=None, *, raise_errors=False) -> bool``, ``form.is_bound``,
  ``form.is_valid``, ``form.data`` (dict of typed values), ``form.errors`` (dict name ->
  ``ErrorList``), ``form.form_errors``, ``form.add_error(name | None, message)``,
  ``form.error_list()`` (the 422 ``errors`` list), ``form.validation_error()``
  (a ``RequestValidationError``), ``form.to_model()``, ``form["name"]`` / ``form.name`` /
  ``iter(form)`` (``BoundField``; a ``ModelForm`` column whose name is part of this API,
  such as ``data``, is only ``form["data"]``), ``form.choices_of(field)``,
  ``form.render(action="", *, method="post", submit=None,
  **attrs)`` (the whole ``<form>``; also ``{{ form }}``), ``form.render_fields()``,
  ``form.csrf_input()``, ``form.hidden_fields()``, ``form.visible_fields()``,
  ``form.enctype``. Hooks to override: ``clean_<name>(self, value)`` (sync or async, returns
  the value) and ``clean(self, data)`` (sync or async, form-wide); both raise
  ``ValidationError``. ``class Meta: csrf = True``.
- ``ModelForm``: a ``Form`` whose fields come from a SQLAlchemy model
  (``class Meta: model = Article; fields = [...]`` or ``exclude = [...]``; ``labels``,
  ``help_texts`` dicts). Columns give typed fields (nullable or defaulted -> optional,
  ``String(n)`` -> ``maxlength``, ``Enum`` -> select, a foreign key -> a select of the related
  rows, a many-to-many relationship -> a multi-select), declared fields win.
  ``await form.save(db, instance=None)`` creates or updates the row (and flushes).
  ``ModelForm.for_model(Model, *, fields=None, exclude=None, name=None)`` builds a class.
  Needs ``db=`` (the request's ``Session``) for selects of related rows and unique checks.
- Fields (``label``, ``required``, ``help_text``, ``initial``, ``validators``, ``attrs``,
  ``disabled``): ``StringField``, ``TextField``, ``EmailField``, ``PasswordField``,
  ``HiddenField``, ``IntegerField``, ``FloatField``, ``DecimalField``, ``BooleanField``,
  ``ChoiceField``, ``MultipleChoiceField``, ``DateField``, ``DateTimeField``, ``TimeField``,
  ``FileField``. ``choices`` are a list of values or ``(value, label)`` pairs, a mapping, an
  ``Enum`` class, or a callable (sync or async) taking the form.
- ``BoundField``: a field of one form: ``__html__`` (the input), ``label``, ``errors``,
  ``help``, ``row`` / ``render()`` (label, input, help and errors together), ``value``,
  ``id``, ``html_name``, ``__call__(**attrs)`` (the input with extra attributes).
- ``ValidationError(message, field=None)``: raised by validators and clean hooks.
- ``ErrorList``: a list of messages that renders as ``<ul class="field-errors">``.

Messages go through ``trellis.i18n.gettext``: they follow the request's locale when the i18n
battery is installed.

Example:
    ```python
    from trellis import App, Request
    from trellis.contrib.forms import Form, IntegerField, StringField
    from trellis.http.response import HTMLResponse

    class ArticleForm(Form):
        title = StringField(max_length=100)
        words = IntegerField(min_value=1, required=False)

    app = App()

    @app.route("/articles/new", methods=["GET", "POST"])
    async def new_article(request: Request) -> HTMLResponse:
        form = await ArticleForm.from_request(request)
        if form.is_valid:
            ...  # form.data == {"title": "...", "words": 120}
        return HTMLResponse(form.render())

    @app.post("/api/articles")
    async def create(form: ArticleForm.Json) -> dict[str, object]:
        return form.data
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trellis.contrib.forms.bound import BoundField
from trellis.contrib.forms.choices import ChoiceField, MultipleChoiceField
from trellis.contrib.forms.fields import (
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    Field,
    FileField,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    StringField,
    TextField,
    TimeField,
)
from trellis.contrib.forms.form import ErrorList, Form, ValidationError

if TYPE_CHECKING:
    from trellis.contrib.forms.model_form import ModelForm

__all__ = [
    "BooleanField",
    "BoundField",
    "ChoiceField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "EmailField",
    "ErrorList",
    "Field",
    "FileField",
    "FloatField",
    "Form",
    "HiddenField",
    "IntegerField",
    "ModelForm",
    "MultipleChoiceField",
    "PasswordField",
    "StringField",
    "TextField",
    "TimeField",
    "ValidationError",
]


def __getattr__(name: str) -> Any:
    # ModelForm needs SQLAlchemy (the db extra); plain forms do not.
    if name == "ModelForm":
        from trellis.contrib.forms.model_form import ModelForm

        return ModelForm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
