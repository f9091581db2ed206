"""One declaration, two uses: HTML pages (CSRF, uploads) and the JSON API (422s, OpenAPI)."""

from __future__ import annotations

import datetime
import enum
import re
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, field_validator, model_validator

from trellis import App, Request
from trellis.contrib.forms import (
    ChoiceField,
    DateField,
    FileField,
    Form,
    IntegerField,
    MultipleChoiceField,
    StringField,
    TextField,
)
from trellis.handlers.params import Depends
from trellis.http.response import HTMLResponse
from trellis.i18n import use_translator
from trellis.testing import TestClient

AUTH = {"authorization": "Bearer api-client"}  # API clients: no CSRF check


class ArticleForm(Form):
    """An article."""

    title = StringField(max_length=20)
    body = TextField(required=False)
    words = IntegerField(min_value=1, required=False)
    day = DateField(required=False)
    kind = ChoiceField(choices=[("news", "News"), ("blog", "Blog")])
    tags = MultipleChoiceField(choices=["a", "b"], required=False)


class UploadForm(Form):
    title = StringField()
    document = FileField(accept=[".pdf"])


def make_app() -> App:
    app = App(debug=True)

    @app.route("/articles/new", methods=["GET", "POST"])
    async def new_article(request: Request) -> Any:
        form = await ArticleForm.from_request(request)
        if form.is_valid:
            data = form.data
            return {**data, "day": data["day"] and data["day"].isoformat()}
        return HTMLResponse(form.render(), status_code=422 if form.is_bound else 200)

    @app.route("/upload", methods=["GET", "POST"])
    async def upload(request: Request) -> Any:
        form = await UploadForm.from_request(request)
        if form.is_valid:
            document = form.data["document"]
            return {"name": document.filename, "size": len(await document.read())}
        return HTMLResponse(form.render())

    @app.post("/api/articles", status_code=201)
    async def create(form: ArticleForm.Json) -> dict[str, Any]:  # type: ignore[valid-type]
        assert isinstance(form, ArticleForm)
        return {"title": form.data["title"], "words": form.data["words"]}

    @app.post("/api/typed")
    async def typed(
        form: Annotated[ArticleForm, ArticleForm.as_dependency()],
    ) -> dict[str, Any]:
        return {"kind": form.data["kind"]}

    @app.post("/api/manual")
    async def manual(request: Request) -> dict[str, Any]:
        form = await ArticleForm.from_json(await request.body())
        await form.validate(raise_errors=True)
        return {"title": form.data["title"]}

    return app


@pytest.fixture
def client() -> Any:
    with TestClient(make_app()) as client:
        yield client


def csrf_token_in(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_the_page_carries_the_csrf_field(client: TestClient) -> None:
    page = client.get("/articles/new")
    assert page.status_code == 200
    assert '<input type="hidden" name="csrf_token" value="' in page.text
    assert client.cookies  # the session that holds the CSRF secret


def test_a_post_without_the_token_is_refused_by_the_core(client: TestClient) -> None:
    client.get("/articles/new")  # the session cookie
    refused = client.post("/articles/new", data={"title": "Hi", "kind": "news"})
    assert refused.status_code == 403
    assert "CSRF token missing" in refused.json()["detail"]
    wrong = client.post(
        "/articles/new", data={"title": "Hi", "kind": "news", "csrf_token": "forged"}
    )
    assert wrong.status_code == 403


def test_a_valid_post(client: TestClient) -> None:
    token = csrf_token_in(client.get("/articles/new").text)
    response = client.post(
        "/articles/new",
        data={
            "title": " Hello ",
            "kind": "blog",
            "words": "12",
            "day": "2024-05-01",
            "tags": ["a", "b"],
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "title": "Hello",
        "body": None,
        "words": 12,
        "day": "2024-05-01",
        "kind": "blog",
        "tags": ["a", "b"],
    }


def test_an_invalid_post_shows_the_form_again(client: TestClient) -> None:
    token = csrf_token_in(client.get("/articles/new").text)
    response = client.post(
        "/articles/new",
        data={"title": "<i>x</i>" * 5, "kind": "poem", "words": "0", "csrf_token": token},
    )
    assert response.status_code == 422
    html = response.text
    assert 'value="&lt;i&gt;x&lt;/i&gt;' in html  # kept, escaped
    assert 'aria-describedby="id_title_errors"' in html
    assert "Ensure this value has at most 20 characters." in html
    assert "Select a valid choice." in html
    assert "Ensure this value is greater than or equal to 1." in html
    assert csrf_token_in(html)  # a fresh token for the next try


def test_a_file_upload_through_multipart(client: TestClient) -> None:
    page = client.get("/upload").text
    assert 'enctype="multipart/form-data"' in page
    token = csrf_token_in(page)
    ok = client.post(
        "/upload",
        data={"title": "CV", "csrf_token": token},
        files={"document": ("cv.pdf", b"%PDF-1.7 ...", "application/pdf")},
    )
    assert ok.json() == {"name": "cv.pdf", "size": 12}
    wrong = client.post(
        "/upload",
        data={"title": "CV", "csrf_token": token},
        files={"document": ("cv.exe", b"MZ", "application/octet-stream")},
    )
    assert "This type of file is not allowed." in wrong.text
    empty = client.post(
        "/upload",
        data={"title": "CV", "csrf_token": token},
        files={"document": ("", b"", "application/octet-stream")},  # an empty file input
    )
    assert "This field is required." in empty.text


def test_json_through_the_same_declaration(client: TestClient) -> None:
    created = client.post("/api/articles", json={"title": "Hi", "kind": "news"}, headers=AUTH)
    assert created.status_code == 201
    assert created.json() == {"title": "Hi", "words": None}
    assert client.post("/api/typed", json={"title": "Hi", "kind": "blog"}, headers=AUTH).json() == {
        "kind": "blog"
    }


BAD = {"title": "x" * 21, "kind": "poem", "words": "many", "day": "2023-02-30", "tags": ["z"]}
BAD_FORM = {**BAD, "tags": "z"}


def test_json_errors_have_the_locations_of_the_html_form(client: TestClient) -> None:
    response = client.post("/api/articles", json=BAD, headers=AUTH)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"] == "5 values in the request did not validate"
    expected = [
        {"loc": ["body", "title"], "msg": "Ensure this value has at most 20 characters."},
        {"loc": ["body", "words"], "msg": "Enter a whole number."},
        {"loc": ["body", "day"], "msg": "Enter a valid date."},
        {"loc": ["body", "kind"], "msg": "Select a valid choice."},
        {"loc": ["body", "tags"], "msg": "Select a valid choice."},
    ]
    assert [{"loc": e["loc"], "msg": e["msg"]} for e in problem["errors"]] == expected
    # the same body through from_json, and posted as an HTML form: the same locations
    manual = client.post("/api/manual", json=BAD, headers=AUTH).json()["errors"]
    assert [{"loc": e["loc"], "msg": e["msg"]} for e in manual] == expected


@pytest.mark.anyio
async def test_html_error_list_matches_json() -> None:
    from trellis.datastructures import MultiDict

    html = ArticleForm(MultiDict(list(BAD_FORM.items())))
    await html.validate()
    json_form = await ArticleForm.from_json(BAD)
    assert html.error_list() == json_form.error_list()


def test_json_missing_fields_and_bad_json(client: TestClient) -> None:
    missing = client.post("/api/articles", json={}, headers=AUTH).json()["errors"]
    assert missing == [
        {"loc": ["body", "title"], "msg": "This field is required.", "type": "missing"},
        {"loc": ["body", "kind"], "msg": "This field is required.", "type": "missing"},
    ]
    nulls = client.post("/api/articles", json={"title": None, "kind": None}, headers=AUTH)
    assert [e["msg"] for e in nulls.json()["errors"]] == ["This field is required."] * 2
    broken = client.post(
        "/api/articles",
        content=b"{not json",
        headers={**AUTH, "content-type": "application/json"},
    )
    assert broken.status_code == 400
    not_object = client.post("/api/articles", json=[1], headers=AUTH)
    assert not_object.status_code == 422


def test_openapi_shows_the_form_model() -> None:
    doc = make_app().openapi()
    body = doc["paths"]["/api/articles"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ArticleForm"
    }
    schema = doc["components"]["schemas"]["ArticleForm"]
    assert schema["required"] == ["title", "kind"]
    assert schema["description"] == "An article."
    assert schema["properties"]["title"] == {"maxLength": 20, "title": "Title", "type": "string"}
    assert schema["properties"]["kind"]["enum"] == ["news", "blog"]
    responses = doc["paths"]["/api/articles"]["post"]["responses"]
    assert "422" in responses
    typed = doc["paths"]["/api/typed"]["post"]["requestBody"]["content"]["application/json"]
    assert typed["schema"] == {"$ref": "#/components/schemas/ArticleForm"}


def test_from_request_reads_json_too() -> None:
    app = App(debug=True)

    @app.post("/either")
    async def either(request: Request) -> Any:
        form = await ArticleForm.from_request(request)
        return {"valid": form.is_valid, "errors": form.error_list()}

    with TestClient(app) as client:
        ok = client.post("/either", json={"title": "Hi", "kind": "news"})
        assert ok.json() == {"valid": True, "errors": []}
        bad = client.post("/either", json={"kind": "x"}).json()
        assert [e["loc"] for e in bad["errors"]] == [["body", "title"], ["body", "kind"]]
        assert (
            client.post("/either", content=b"x", headers={"content-type": "text/plain"}).status_code
            == 415
        )
        empty = client.post("/either").json()
        assert empty["valid"] is False  # an empty body: an empty form


def test_sessions_off_means_no_csrf_field() -> None:
    app = App(debug=True, sessions=False)

    @app.get("/form")
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse((await ArticleForm.from_request(request)).render())

    with TestClient(app) as client:
        assert "csrf_token" not in client.get("/form").text


def test_meta_csrf_false_and_get_forms_have_no_token() -> None:
    class Search(Form):
        class Meta:
            csrf = False

        q = StringField(required=False)

    app = App(debug=True)

    @app.get("/search")
    async def search(request: Request) -> HTMLResponse:
        form = await Search.from_request(request)
        other = await ArticleForm.from_request(request)
        return HTMLResponse(str(form.render(method="get")) + str(other.render(method="get")))

    with TestClient(app) as client:
        assert "csrf_token" not in client.get("/search").text


def test_csrf_field_from_the_template_request() -> None:
    app = App(debug=True)

    @app.get("/plain")
    async def plain(request: Request) -> HTMLResponse:
        from trellis.templating import bind_request

        form = ArticleForm()  # no request given
        assert "csrf_token" not in str(form.render())
        with bind_request(request):
            return HTMLResponse(form.render())

    with TestClient(app) as client:
        assert 'name="csrf_token"' in client.get("/plain").text


# -- Form.from_model -------------------------------------------------------------------------


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Ticket(BaseModel):
    """A support ticket."""

    subject: str = Field(max_length=30, title="Subject line", description="Be brief.")
    priority: Priority = Priority.LOW
    due: datetime.date | None = None
    hours: int = Field(default=1, ge=1, le=40)
    urgent: bool = False
    labels: list[Priority] = []

    @field_validator("subject")
    @classmethod
    def no_shouting(cls, value: str) -> str:
        if value.isupper():
            raise ValueError("Please do not shout.")
        return value

    @model_validator(mode="after")
    def urgent_needs_due(self) -> Ticket:
        if self.urgent and self.due is None:
            raise ValueError("An urgent ticket needs a due date.")
        return self


TicketForm = Form.from_model(Ticket)


def test_from_model_fields() -> None:
    fields = TicketForm.base_fields
    assert list(fields) == ["subject", "priority", "due", "hours", "urgent", "labels"]
    assert type(fields["subject"]).__name__ == "StringField"
    assert fields["subject"].label_text == "Subject line"
    assert fields["subject"].help_text == "Be brief."
    assert type(fields["priority"]).__name__ == "ChoiceField"
    assert type(fields["labels"]).__name__ == "MultipleChoiceField"
    assert not fields["due"].required and not fields["hours"].required
    html = str(TicketForm().render())
    assert 'maxlength="30"' in html and 'min="1"' in html and 'max="40"' in html
    assert 'value="1"' in html  # the default shown
    assert '<option value="low" selected>Low</option>' in html
    assert issubclass(TicketForm.model, Ticket)
    assert TicketForm.__name__ == "TicketForm"


@pytest.mark.anyio
async def test_from_model_validates_with_the_model() -> None:
    from trellis.datastructures import MultiDict

    shout = TicketForm(MultiDict([("subject", "HELP"), ("hours", "2")]))
    assert not await shout.validate()
    assert shout.errors == {"subject": ["Please do not shout."]}
    urgent = TicketForm(MultiDict([("subject", "Help"), ("urgent", "on")]))
    assert not await urgent.validate()
    assert urgent.errors == {"__all__": ["An urgent ticket needs a due date."]}
    ok = TicketForm(MultiDict([("subject", "Help"), ("priority", "high"), ("labels", "low")]))
    assert await ok.validate()
    assert ok.data["priority"] is Priority.HIGH and ok.data["labels"] == [Priority.LOW]
    model = ok.to_model()
    assert isinstance(model, Ticket) and model.subject == "Help"


def test_from_model_json_dependency_and_openapi() -> None:
    app = App(debug=True)

    @app.post("/tickets")
    async def create(form: TicketForm.Json) -> dict[str, Any]:  # type: ignore[valid-type]
        return {"subject": form.data["subject"]}

    with TestClient(app) as client:
        assert client.post("/tickets", json={"subject": "Hi"}).json() == {"subject": "Hi"}
        shout = client.post("/tickets", json={"subject": "HI"}).json()["errors"]
        assert shout == [
            {"loc": ["body", "subject"], "msg": "Please do not shout.", "type": "value_error"}
        ]
        missing = client.post("/tickets", json={}).json()["errors"]
        assert missing == [
            {"loc": ["body", "subject"], "msg": "This field is required.", "type": "missing"}
        ]
    schema = app.openapi()["components"]["schemas"]["Ticket"]
    assert schema["properties"]["subject"]["maxLength"] == 30


def test_from_model_options_and_errors() -> None:
    from trellis.exceptions import ConfigurationError

    Short = Form.from_model(Ticket, name="ShortTicket", fields=["subject", "hours"])
    assert list(Short.base_fields) == ["subject", "hours"]
    Custom = Form.from_model(Ticket, exclude=["labels"], subject=TextField(max_length=30))
    assert type(Custom.base_fields["subject"]).__name__ == "TextField"
    with pytest.raises(ConfigurationError, match="cannot leave out 'subject'"):
        Form.from_model(Ticket, exclude=["subject"])
    with pytest.raises(ConfigurationError, match="'nope' not a field"):
        Form.from_model(Ticket, fields=["nope"])

    class Odd(BaseModel):
        blob: dict[str, int]

    with pytest.raises(ConfigurationError, match="no form field for 'blob'"):
        Form.from_model(Odd)
    with pytest.raises(ConfigurationError, match="pydantic model"):
        Form.from_model(dict)  # type: ignore[arg-type]


# -- messages follow the locale --------------------------------------------------------------


class French:
    CATALOG = {
        "This field is required.": "Ce champ est obligatoire.",
        "Select a valid choice.": "Choisissez une option valide.",
    }

    def gettext(self, message: str) -> str:
        return self.CATALOG.get(message, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural

    def pgettext(self, context: str, message: str) -> str:
        return message

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


@pytest.mark.anyio
async def test_messages_are_translated() -> None:
    with use_translator(French(), "fr"):
        form = await ArticleForm.from_json({"kind": "poem"})
        assert form.errors == {
            "title": ["Ce champ est obligatoire."],
            "kind": ["Choisissez une option valide."],
        }
        try:
            ArticleForm.model.model_validate({"kind": "poem"})
        except Exception as exc:
            messages = [e["msg"] for e in exc.errors()]  # type: ignore[attr-defined]
        assert messages == ["Ce champ est obligatoire.", "Choisissez une option valide."]


def test_json_dependency_messages_follow_the_locale() -> None:
    app = App(debug=True)

    async def french() -> Any:
        from trellis.i18n import reset_translator, set_translator

        token = set_translator(French(), "fr")
        try:
            yield
        finally:
            reset_translator(token)

    @app.post("/fr", dependencies=[Depends(french)])
    async def create(form: ArticleForm.Json) -> str:  # type: ignore[valid-type]
        return "ok"

    with TestClient(app) as client:
        errors = client.post("/fr", json={"kind": "news"}).json()["errors"]
        assert errors[0]["msg"] == "Ce champ est obligatoire."
