"""Validation of every field type, from a posted HTML form and from JSON, with the same rules."""

from __future__ import annotations

import datetime
import decimal
import enum
import io
from typing import Any

import pytest

from trellis.contrib.forms import (
    BooleanField,
    ChoiceField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    FileField,
    FloatField,
    Form,
    HiddenField,
    IntegerField,
    MultipleChoiceField,
    PasswordField,
    StringField,
    TextField,
    TimeField,
    ValidationError,
)
from trellis.datastructures import MultiDict
from trellis.exceptions import ConfigurationError, RequestValidationError
from trellis.http.forms import UploadFile

pytestmark = pytest.mark.anyio

REQUIRED = "This field is required."
CHOICE = "Select a valid choice."


async def posted(form_class: type[Form], *items: tuple[str, Any]) -> Form:
    form = form_class(MultiDict(list(items)))
    await form.validate()
    return form


async def as_json(form_class: type[Form], body: dict[str, Any]) -> Form:
    return await form_class.from_json(body)


def upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> UploadFile:
    return UploadFile(io.BytesIO(data), filename=name, content_type=content_type, size=len(data))


class Color(enum.Enum):
    RED = "red"
    DARK_GREEN = "green"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


# -- text ------------------------------------------------------------------------------------


class TextForm(Form):
    title = StringField(min_length=2, max_length=10)
    note = StringField(required=False)
    body = TextField(required=False)
    code = StringField(required=False, pattern=r"^[A-Z]{3}$")
    raw = StringField(required=False, strip=False)


async def test_text_is_stripped_and_checked() -> None:
    form = await posted(TextForm, ("title", "  Hello "), ("raw", "  x "))
    assert form.is_valid
    assert form.data == {"title": "Hello", "note": None, "body": None, "code": None, "raw": "  x "}


async def test_text_errors() -> None:
    form = await posted(TextForm, ("title", "x" * 11), ("code", "abc"))
    assert form.errors == {
        "title": ["Ensure this value has at most 10 characters."],
        "code": ["Enter a valid value."],
    }
    form = await posted(TextForm, ("title", "x"))
    assert form.errors["title"] == ["Ensure this value has at least 2 characters."]


@pytest.mark.parametrize("value", [None, "", "   "])
async def test_blank_or_absent_required_text_is_missing(value: str | None) -> None:
    items = [] if value is None else [("title", value)]
    form = await posted(TextForm, *items)
    assert not form.is_valid
    assert form.errors == {"title": [REQUIRED]}
    assert form.error_list() == [{"loc": ["body", "title"], "msg": REQUIRED, "type": "missing"}]


@pytest.mark.parametrize("body", [{}, {"title": None}, {"title": ""}, {"title": "  "}])
async def test_blank_or_absent_required_text_in_json_is_missing(body: dict[str, Any]) -> None:
    form = await as_json(TextForm, body)
    assert form.error_list() == [{"loc": ["body", "title"], "msg": REQUIRED, "type": "missing"}]


async def test_a_file_sent_for_a_text_field_is_refused() -> None:
    form = await posted(TextForm, ("title", upload("x.txt", b"text")))
    assert form.errors == {"title": ["Enter text."]}


async def test_email() -> None:
    class F(Form):
        email = EmailField()

    assert (await posted(F, ("email", " ada@example.com "))).data == {"email": "ada@example.com"}
    for bad in ("ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@c.com"):
        form = await posted(F, ("email", bad))
        assert form.errors == {"email": ["Enter a valid e-mail address."]}, bad
    form = await posted(F, ("email", "a" * 250 + "@b.co"))
    assert form.errors == {"email": ["Ensure this value has at most 254 characters."]}


async def test_password_is_not_stripped_and_hidden_is_optional() -> None:
    class F(Form):
        password = PasswordField(min_length=3)
        token = HiddenField()

    form = await posted(F, ("password", " ab "))
    assert form.is_valid
    assert form.data == {"password": " ab ", "token": None}


# -- numbers ---------------------------------------------------------------------------------


class NumberForm(Form):
    count = IntegerField(min_value=1, max_value=10, required=False)
    ratio = FloatField(required=False)
    price = DecimalField(max_digits=5, decimal_places=2, min_value=0, required=False)


async def test_numbers_are_typed() -> None:
    form = await posted(NumberForm, ("count", " 7 "), ("ratio", "0.5"), ("price", "12.30"))
    assert form.data == {"count": 7, "ratio": 0.5, "price": decimal.Decimal("12.30")}
    assert isinstance(form.data["price"], decimal.Decimal)


async def test_empty_numbers_are_none() -> None:
    form = await posted(NumberForm, ("count", ""), ("ratio", " "))
    assert form.data == {"count": None, "ratio": None, "price": None}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("count", "seven", "Enter a whole number."),
        ("count", "1.5", "Enter a whole number."),
        ("count", "0", "Ensure this value is greater than or equal to 1."),
        ("count", "11", "Ensure this value is less than or equal to 10."),
        ("count", "9" * 5000, "Enter a whole number."),
        ("ratio", "abc", "Enter a number."),
        ("ratio", "inf", "Enter a number."),
        ("ratio", "nan", "Enter a number."),
        ("price", "1,5", "Enter a number."),
        ("price", "NaN", "Enter a number."),
        ("price", "1.234", "Ensure that there are no more than 2 decimal places."),
        (
            "price",
            "1234.5",
            "Ensure that there are no more than 3 digits before the decimal point.",
        ),
        ("price", "-1", "Ensure this value is greater than or equal to 0."),
    ],
)
async def test_bad_numbers(name: str, value: str, message: str) -> None:
    form = await posted(NumberForm, (name, value))
    assert form.errors == {name: [message]}
    assert form.error_list()[0]["loc"] == ["body", name]


# -- checkboxes ------------------------------------------------------------------------------


async def test_boolean_is_false_when_not_sent() -> None:
    class F(Form):
        news = BooleanField()

    assert (await posted(F)).data == {"news": False}
    assert (await posted(F, ("news", "on"))).data == {"news": True}
    assert (await posted(F, ("news", ""))).data == {"news": True}
    assert (await posted(F, ("news", "false"))).data == {"news": False}
    assert (await posted(F, ("news", "maybe"))).errors == {"news": ["Enter yes or no."]}
    assert (await as_json(F, {})).data == {"news": False}
    assert (await as_json(F, {"news": True})).data == {"news": True}


async def test_required_boolean_must_be_ticked() -> None:
    class F(Form):
        terms = BooleanField(required=True)

    assert (await posted(F)).errors == {"terms": [REQUIRED]}
    assert (await as_json(F, {"terms": False})).errors == {"terms": [REQUIRED]}
    assert (await posted(F, ("terms", "on"))).is_valid


# -- choices ---------------------------------------------------------------------------------


class ChoiceForm(Form):
    color = ChoiceField(choices=Color)
    size = ChoiceField(choices=[(1, "Small"), (2, "Large")], required=False)
    level = ChoiceField(choices=Size, required=False)
    fruit = ChoiceField(choices={"apple": "Apple", "pear": "Pear"}, required=False)
    tags = MultipleChoiceField(choices=["a", "b", "c"], required=False)


async def test_choices_are_typed() -> None:
    form = await posted(
        ChoiceForm,
        ("color", "green"),
        ("size", "2"),
        ("level", "1"),
        ("fruit", "pear"),
        ("tags", "c"),
        ("tags", "a"),
        ("tags", "c"),
    )
    assert form.data == {
        "color": Color.DARK_GREEN,
        "size": 2,
        "level": Size.SMALL,
        "fruit": "pear",
        "tags": ["c", "a"],
    }


async def test_choices_not_in_the_list() -> None:
    form = await posted(
        ChoiceForm,
        ("color", "blue"),
        ("size", "3"),
        ("level", "x"),
        ("fruit", "Apple"),
        ("tags", "a"),
        ("tags", "z"),
    )
    assert form.errors == {
        "color": [CHOICE],
        "size": [CHOICE],
        "level": [CHOICE],
        "fruit": [CHOICE],
        "tags": [CHOICE],
    }
    assert {e["type"] for e in form.error_list()} == {"invalid_choice"}


async def test_choices_from_json_are_checked_by_value() -> None:
    form = await as_json(ChoiceForm, {"color": "red", "size": 1, "level": 2, "tags": ["b"]})
    assert form.data["color"] is Color.RED and form.data["level"] is Size.LARGE
    form = await as_json(ChoiceForm, {"color": "RED", "size": 9, "tags": ["b", "x"]})
    assert [e["loc"] for e in form.error_list()] == [
        ["body", "color"],
        ["body", "size"],
        ["body", "tags"],
    ]
    assert ChoiceForm.model.model_json_schema()["properties"]["size"]["enum"] == [1, 2, None]


async def test_required_multiple_choice() -> None:
    class F(Form):
        tags = MultipleChoiceField(choices=["a", "b"], widget="checkboxes")

    assert (await posted(F)).errors == {"tags": [REQUIRED]}
    assert (await posted(F, ("tags", ""))).errors == {"tags": [REQUIRED]}
    assert (await as_json(F, {"tags": []})).errors == {"tags": [REQUIRED]}
    assert (await posted(F, ("tags", "b"))).data == {"tags": ["b"]}


async def test_choices_from_a_function_sync_and_async() -> None:
    calls: list[str] = []

    async def cities(form: Form) -> list[tuple[int, str]]:
        calls.append("cities")
        return [(1, "Paris"), (2, "Rome")]

    def rooms(form: Form) -> dict[str, str]:
        return {"a": "Room A"}

    class F(Form):
        city = ChoiceField(choices=cities, coerce=int)
        room = ChoiceField(choices=rooms, required=False)

    form = await posted(F, ("city", "2"), ("room", "a"))
    assert form.data == {"city": 2, "room": "a"}
    assert (await posted(F, ("city", "3"))).errors == {"city": [CHOICE]}
    assert (await as_json(F, {"city": 3})).errors == {"city": [CHOICE]}
    assert (await as_json(F, {"city": "1"})).data["city"] == 1
    assert calls == ["cities"] * 4  # once per form

    unloaded = F()
    with pytest.raises(RuntimeError, match=r"await form\.load\(\)"):
        str(unloaded.city)
    await unloaded.load()
    assert "Rome" in str(unloaded.city)


# -- dates -----------------------------------------------------------------------------------


class DateForm(Form):
    day = DateField(required=False, min_value=datetime.date(2000, 1, 1))
    at = DateTimeField(required=False)
    zoned = DateTimeField(required=False, timezone=datetime.UTC)
    time = TimeField(required=False)


async def test_dates_are_typed() -> None:
    form = await posted(
        DateForm,
        ("day", "2024-02-29"),
        ("at", "2024-05-01T14:30"),
        ("zoned", "2024-05-01T14:30:15"),
        ("time", "09:05"),
    )
    assert form.data == {
        "day": datetime.date(2024, 2, 29),
        "at": datetime.datetime(2024, 5, 1, 14, 30),
        "zoned": datetime.datetime(2024, 5, 1, 14, 30, 15, tzinfo=datetime.UTC),
        "time": datetime.time(9, 5),
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("day", "2023-02-29", "Enter a valid date."),
        ("day", "2024-13-01", "Enter a valid date."),
        ("day", "yesterday", "Enter a valid date."),
        ("day", "1999-12-31", "Ensure this value is greater than or equal to 2000-01-01."),
        ("at", "2024-05-01T25:00", "Enter a valid date and time."),
        ("at", "soon", "Enter a valid date and time."),
        ("time", "24:61", "Enter a valid time."),
    ],
)
async def test_bad_dates(name: str, value: str, message: str) -> None:
    form = await posted(DateForm, (name, value))
    assert form.errors == {name: [message]}


# -- files -----------------------------------------------------------------------------------


async def test_file_field() -> None:
    class F(Form):
        cv = FileField(accept=[".pdf", "image/*"], max_size=10)
        extra = FileField(required=False)

    cv = upload("cv.pdf", b"%PDF", "application/pdf")
    form = await posted(F, ("cv", cv))
    assert form.is_valid and form.data == {"cv": cv, "extra": None}
    assert (await posted(F, ("cv", upload("a.png", b"png", "image/png")))).is_valid
    assert (await posted(F)).errors == {"cv": [REQUIRED]}
    assert (await posted(F, ("cv", upload("", b"")))).errors == {"cv": [REQUIRED]}  # empty input
    assert (await posted(F, ("cv", "cv.pdf"))).errors == {"cv": ["Upload a file."]}
    assert (await posted(F, ("cv", upload("x.exe", b"MZ")))).errors == {
        "cv": ["This type of file is not allowed."]
    }
    assert (await posted(F, ("cv", upload("big.pdf", b"x" * 11, "application/pdf")))).errors == {
        "cv": ["The file is larger than 10 B."]
    }
    assert "cv" not in F.model.model_fields  # JSON carries no files
    assert (await as_json(F, {})).errors == {"cv": [REQUIRED]}


# -- validators and hooks --------------------------------------------------------------------


async def test_validators_sync_and_async_and_hooks() -> None:
    def no_spam(value: str) -> None:
        if "spam" in value:
            raise ValidationError("No spam, please.")

    def shout(value: str) -> str:
        return value.upper()

    async def not_taken(value: str) -> None:
        if value == "TAKEN":
            raise ValidationError("That name is taken.", code="taken")

    class F(Form):
        name = StringField(validators=[no_spam, shout, not_taken])
        start = DateField()
        end = DateField()

        def clean_start(self, value: datetime.date) -> datetime.date:
            if value.year < 2020:
                raise ValidationError("Too early.")
            return value

        async def clean(self, data: dict[str, Any]) -> None:
            if data["end"] < data["start"]:
                raise ValidationError("The end comes before the start.", field="end")
            if data["name"] == "NOBODY":
                raise ValidationError("Nobody is not allowed.")

    ok = await posted(F, ("name", "ada"), ("start", "2024-01-01"), ("end", "2024-01-02"))
    assert ok.data["name"] == "ADA"
    spam = await posted(F, ("name", "spam"), ("start", "2019-01-01"), ("end", "2024-01-02"))
    assert spam.errors == {"name": ["No spam, please."], "start": ["Too early."]}
    taken = await posted(F, ("name", "taken"), ("start", "2024-01-01"), ("end", "2024-01-02"))
    assert taken.error_list() == [
        {"loc": ["body", "name"], "msg": "That name is taken.", "type": "taken"}
    ]
    order = await posted(F, ("name", "x"), ("start", "2024-01-02"), ("end", "2024-01-01"))
    assert order.errors == {"end": ["The end comes before the start."]}
    nobody = await posted(F, ("name", "nobody"), ("start", "2024-01-01"), ("end", "2024-01-01"))
    assert nobody.errors == {"__all__": ["Nobody is not allowed."]}
    assert nobody.form_errors == ["Nobody is not allowed."]
    assert nobody.error_list() == [
        {"loc": ["body"], "msg": "Nobody is not allowed.", "type": "value_error"}
    ]
    # JSON: the same validators and hooks
    spam_json = await as_json(F, {"name": "spam", "start": "2024-01-01", "end": "2024-01-01"})
    assert spam_json.errors == {"name": ["No spam, please."]}


async def test_plain_value_error_in_a_validator() -> None:
    def even(value: int) -> None:
        if value % 2:
            raise ValueError("Must be even.")

    class F(Form):
        n = IntegerField(validators=[even])

    assert (await posted(F, ("n", "3"))).errors == {"n": ["Must be even."]}
    assert (await as_json(F, {"n": 3})).errors == {"n": ["Must be even."]}


async def test_clean_may_replace_the_data_and_add_errors() -> None:
    class F(Form):
        a = IntegerField()
        b = IntegerField()

        def clean(self, data: dict[str, Any]) -> dict[str, Any]:
            if data["a"] == 0:
                self.add_error("a", "Not zero.")
            return {**data, "total": data["a"] + data["b"]}

    assert (await posted(F, ("a", "1"), ("b", "2"))).data == {"a": 1, "b": 2, "total": 3}
    zero = await posted(F, ("a", "0"), ("b", "2"))
    assert not zero.is_valid and zero.errors == {"a": ["Not zero."]}


async def test_disabled_fields_keep_the_initial_value() -> None:
    class F(Form):
        name = StringField()
        owner = StringField(disabled=True, initial="ada")

    form = F(MultiDict([("name", "x"), ("owner", "mallory")]), initial={})
    assert await form.validate()
    assert form.data == {"name": "x", "owner": "ada"}
    form = F(MultiDict([("name", "x")]), initial={"owner": "bob"})
    assert await form.validate() and form.data["owner"] == "bob"


# -- the form's state ------------------------------------------------------------------------


async def test_state_before_and_after_validation() -> None:
    unbound = TextForm()
    assert not unbound.is_bound and not unbound.is_valid
    assert not await unbound.validate()
    bound = TextForm(MultiDict([("title", "hello")]))
    with pytest.raises(RuntimeError, match="not validated yet"):
        _ = bound.is_valid
    with pytest.raises(RuntimeError, match="validated"):
        _ = bound.data
    assert await bound.validate()
    assert repr(bound) == "<TextForm valid>"
    assert await bound.validate(MultiDict([("title", "")])) is False
    assert repr(bound) == "<TextForm invalid>"


async def test_validate_can_raise_the_422() -> None:
    form = TextForm(MultiDict([("title", "x")]))
    with pytest.raises(RequestValidationError) as caught:
        await form.validate(raise_errors=True)
    assert caught.value.status == 422
    assert caught.value.errors == form.error_list()


async def test_a_json_body_that_is_not_an_object() -> None:
    form = await TextForm.from_json(b"[1, 2]")
    assert form.error_list() == [
        {"loc": ["body"], "msg": "Input should be a JSON object.", "type": "dict_type"}
    ]
    assert (await TextForm.from_json('{"title": "ok"}')).is_valid
    assert not (await TextForm.from_json(b"")).is_valid  # {}: the title is missing


async def test_to_model() -> None:
    form = await posted(NumberForm, ("count", "3"))
    instance = form.to_model()
    assert isinstance(instance, NumberForm.model)
    assert instance.model_dump() == {"count": 3, "ratio": None, "price": None}


# -- declaring -------------------------------------------------------------------------------


def test_fields_are_collected_in_order_and_inherited() -> None:
    class Base(Form):
        a = StringField()
        b = StringField()

    class Child(Base):
        c = IntegerField()
        a = TextField()  # overrides, keeps its place

    assert list(Child.base_fields) == ["a", "b", "c"]
    assert isinstance(Child.base_fields["a"], TextField)
    assert isinstance(Base.base_fields["a"], StringField)
    assert Child.a is not Base.a  # each class has its own copy
    assert list(Child.model.model_fields) == ["a", "b", "c"]


def test_a_field_shared_by_two_forms_gets_each_name() -> None:
    shared = StringField()

    class One(Form):
        first = shared

    class Two(Form):
        second = shared

    assert One.base_fields["first"].name == "first"
    assert Two.base_fields["second"].name == "second"


@pytest.mark.parametrize("name", ["errors", "data", "render", "model", "validate", "_secret"])
def test_field_names_that_clash_with_the_api_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot be named"):
        type("Bad", (Form,), {name: StringField()})


def test_bad_widget_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="widget"):
        ChoiceField(choices=["a"], widget="checkboxes")
    with pytest.raises(ConfigurationError, match="widget"):
        MultipleChoiceField(choices=["a"], widget="radio")


def test_plain_forms_do_not_load_sqlalchemy() -> None:
    import subprocess
    import sys

    code = "import sys, trellis.contrib.forms; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
