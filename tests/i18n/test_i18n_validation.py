"""Validation errors (the 422 of typed handlers) in the request's language."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from trellis import App, Request
from trellis.contrib.i18n import I18n
from trellis.contrib.i18n.validation import translate_error, translate_message
from trellis.exceptions import RequestValidationError
from trellis.testing import TestClient

FR = {"accept-language": "fr"}


class Signup(BaseModel):
    name: str = Field(min_length=3, max_length=20)
    age: int = Field(ge=18)
    tags: list[str] = Field(default_factory=list, max_length=2)


def make_app(**options: Any) -> App:
    app = App(debug=True)
    app.install(I18n(locales=("en", "fr"), directory="no-such-folder", **options))

    @app.get("/items")
    async def items(limit: int, since: dt.date | None = None) -> dict[str, int]:
        return {"limit": limit}

    @app.post("/signup")
    async def signup(body: Signup) -> dict[str, str]:
        return {"name": body.name}

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def test_query_errors_in_french(client: TestClient) -> None:
    response = client.get("/items?limit=many&since=2024-13-01", headers=FR)
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Entité impossible à traiter"
    assert problem["detail"] == "2 valeurs de la requête ne sont pas valides"
    assert problem["errors"] == [
        {
            "loc": ["query", "limit"],
            "msg": "La valeur doit être un nombre entier valide, impossible de lire le texte"
            " comme un entier",
            "type": "int_parsing",
        },
        {
            "loc": ["query", "since"],
            "msg": "La valeur doit être une date ou une date et heure valide, le mois doit"
            " être compris entre 1 et 12",
            "type": "date_from_datetime_parsing",
        },
    ]


def test_missing_values_in_french(client: TestClient) -> None:
    problem = client.get("/items", headers=FR).json()
    assert problem["detail"] == "1 valeur de la requête n\u2019est pas valide"
    assert problem["errors"] == [
        {"loc": ["query", "limit"], "msg": "Champ obligatoire", "type": "missing"}
    ]


def test_body_errors_keep_their_numbers(client: TestClient) -> None:
    response = client.post(
        "/signup", json={"name": "Al", "age": 12, "tags": ["a", "b", "c"]}, headers=FR
    )
    assert response.status_code == 422
    messages = {tuple(e["loc"]): e["msg"] for e in response.json()["errors"]}
    assert messages == {
        ("body", "name"): "Le texte doit comporter au moins 3 caractères",
        ("body", "age"): "La valeur doit être supérieure ou égale à 18",
        ("body", "tags"): "Doit contenir au plus 2 éléments",
    }


def test_english_is_unchanged(client: TestClient) -> None:
    problem = client.get("/items", headers={"accept-language": "en"}).json()
    assert problem["title"] == "Unprocessable Entity"
    assert problem["detail"] == "1 value in the request did not validate"
    assert problem["errors"][0]["msg"] == "Field required"


def test_browsers_get_the_html_page_in_french(client: TestClient) -> None:
    response = client.get("/items", headers={**FR, "accept": "text/html"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "Entité impossible à traiter" in response.text
    assert "Champ obligatoire" in response.text


def test_the_application_handler_stays() -> None:
    app = App(debug=True)

    @app.exception_handler(RequestValidationError)
    async def mine(request: Request, exc: Exception) -> dict[str, str]:
        return {"mine": "yes"}

    app.install(I18n(locales=("en", "fr")))

    @app.get("/n")
    async def n(value: int) -> int:
        return value

    assert TestClient(app).get("/n", headers=FR).json() == {"mine": "yes"}


def test_translation_can_be_turned_off() -> None:
    client = TestClient(make_app(translate_validation_errors=False))
    assert client.get("/items", headers=FR).json()["errors"][0]["msg"] == "Field required"


# -- every rule against pydantic's real messages ------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Everything(BaseModel):
    a: int
    b: float
    c: bool
    d: str = Field(min_length=3, max_length=5)
    e: int = Field(gt=1, lt=10)
    f: int = Field(ge=1, le=10)
    g: list[int] = Field(min_length=2, max_length=3)
    h: Literal["x", "y"]
    i: dt.date
    j: dt.datetime
    k: uuid.UUID
    m: decimal.Decimal
    n: Colour
    o: str = Field(pattern="^a+$")
    p: int = Field(multiple_of=3)
    q: dict[str, int]
    r: dt.time
    s: str
    t: decimal.Decimal = Field(max_digits=3, decimal_places=1)
    u: list[int]


BAD_INPUTS = [
    {
        "a": "x",
        "b": "x",
        "c": "x",
        "d": "ab",
        "e": 0,
        "f": 0,
        "g": [1],
        "h": "z",
        "i": "x",
        "j": "x",
        "k": "x",
        "m": "x",
        "n": "green",
        "o": "b",
        "p": 4,
        "q": [],
        "r": "x",
        "s": 1,
        "t": "1.25",
        "u": 3,
    },
    {
        "a": 1.5,
        "b": [],
        "c": [],
        "d": "abcdefg",
        "e": 11,
        "f": 11,
        "g": [1, 2, 3, 4],
        "i": "2024-13-01",
        "j": "2024-01-01T25:00",
        "r": "25:00",
        "t": "123.5",
        "q": {"a": "x"},
        "s": None,
    },
    {"d": "abc", "g": [1, 2], "i": "2024-01-01x", "j": "2024-01-01T10:00:00+25:00", "r": "10:61"},
]


def pydantic_errors() -> list[dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for data in BAD_INPUTS:
        try:
            Everything(**data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_context=False, include_input=False):
                found.setdefault((error["type"], error["msg"]), error)
    return list(found.values())


ERRORS = pydantic_errors()
# Pydantic's messages whose details are its own (free text, not a fixed list).
UNTRANSLATED_DETAILS = {"uuid_parsing"}


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: f"{e['type']}")
def test_every_common_pydantic_message_is_translated(error: dict[str, Any]) -> None:
    i18n = I18n(locales=("en", "fr"))
    message = error["msg"]
    with i18n.activate("en"):
        assert translate_message(message, error["type"]) == message  # English: as it is
    with i18n.activate("fr"):
        french = translate_message(message, error["type"])
    assert french != message, (error["type"], message)
    assert not french.startswith(("Input", "String", "List", "Decimal", "Field"))
    if error["type"] not in UNTRANSLATED_DETAILS and ", " in message:
        detail = message.split(", ", 1)[1]
        assert detail not in french, (message, french)


def test_the_choices_of_literals_and_enums() -> None:
    with I18n(locales=("en", "fr")).activate("fr"):
        assert translate_message("Input should be 'x' or 'y'", "literal_error") == (
            "La valeur doit être 'x' ou 'y'"
        )
        assert translate_message("Input should be 'a', 'b' or 'c'", "enum") == (
            "La valeur doit être 'a', 'b' ou 'c'"
        )
        assert translate_message("Input should be 'a'", "enum") == "La valeur doit être 'a'"


def test_singular_and_plural_counts() -> None:
    with I18n(locales=("en", "fr")).activate("fr"):
        assert translate_message("String should have at least 1 character", "string_too_short") == (
            "Le texte doit comporter au moins 1 caractère"
        )
        assert translate_message(
            "Decimal input should have no more than 1 decimal place", "decimal_max_places"
        ) == ("Le nombre décimal ne doit pas avoir plus de 1 décimale")


def test_unknown_types_are_looked_up_as_they_are() -> None:
    with I18n(locales=("en", "fr")).activate("fr"):
        assert translate_message("Field required", None) == "Champ obligatoire"
        assert translate_message("Something custom", "custom_type") == "Something custom"
        # A known type whose text does not match its pattern: looked up as it is.
        assert translate_message("Field required", "string_too_short") == "Champ obligatoire"
        assert translate_message("Value error, Field required", "value_error") == (
            "Valeur incorrecte, Champ obligatoire"
        )


def test_translate_error_copies() -> None:
    error = {"loc": ["body", "x"], "msg": "Field required", "type": "missing", "extra": 1}
    with I18n(locales=("en", "fr")).activate("fr"):
        translated = translate_error(error)
    assert translated == {
        "loc": ["body", "x"],
        "msg": "Champ obligatoire",
        "type": "missing",
        "extra": 1,
    }
    assert error["msg"] == "Field required"
    assert translate_error({"loc": [], "msg": 3}) == {"loc": [], "msg": 3}
