"""The OpenAPI document built from the handler plans: valid 3.1, and true to the handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Union

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from trellis import App
from trellis.handlers.params import Body, Cookie, Depends, File, Form, Header, Path, Query
from trellis.http.forms import UploadFile
from trellis.http.response import HTMLResponse, Response
from trellis.openapi.builder import build_openapi, openapi_path


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class UserIn(BaseModel):
    name: str
    password: str


class UserOut(BaseModel):
    name: str


class Address(BaseModel):
    city: str


class Customer(BaseModel):
    name: str
    address: Address


@dataclass
class Point:
    x: int
    y: int


def make_app() -> App:
    return App(debug=True)


def document(app: App) -> dict[str, Any]:
    doc = app.openapi()
    validate(doc)  # type: ignore[arg-type]
    return doc


def params_of(op: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["in"], p["name"]): p for p in op.get("parameters", [])}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/users/{user_id:int}", "/users/{user_id}"),
        ("/files/{rest:path}", "/files/{rest}"),
        ("/a/{x}/b/{y:slug}.json", "/a/{x}/b/{y}.json"),
        ("/static", "/static"),
    ],
)
def test_path_templates_become_openapi_paths(path: str, expected: str) -> None:
    assert openapi_path(path) == expected


def test_document_header_and_info() -> None:
    app = make_app()
    app.openapi_info = {"title": "Shop", "version": "2.0", "description": "Sells things."}

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    doc = document(app)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "Shop", "version": "2.0", "description": "Sells things."}
    assert app.openapi() is doc  # cached
    assert build_openapi(app) == doc
    assert {"Problem", "ValidationProblem"} <= set(doc["components"]["schemas"])


def test_parameters_locations_required_and_constraints() -> None:
    app = make_app()

    @app.get("/users/{user_id:int}/posts/{slug}", tags=["users"])
    async def user_posts(
        user_id: int,
        slug: Annotated[str, Path(max_length=40, pattern="^[a-z-]+$")],
        limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 10,
        q: Annotated[str | None, Query(max_length=50, examples=["shoes"])] = None,
        tag: list[str] | None = None,
        agent: Annotated[str | None, Header(alias="User-Agent")] = None,
        x_trace: Annotated[str, Header(deprecated=True)] = "",
        session: Annotated[str, Cookie()] = "",
        hidden: Annotated[int, Query(include_in_schema=False)] = 0,
    ) -> dict[str, object]:
        return {}

    doc = document(app)
    op = doc["paths"]["/users/{user_id}/posts/{slug}"]["get"]
    assert op["tags"] == ["users"]
    params = params_of(op)
    assert set(params) == {
        ("path", "user_id"),
        ("path", "slug"),
        ("query", "limit"),
        ("query", "q"),
        ("query", "tag"),
        ("header", "user-agent"),
        ("header", "x-trace"),
        ("cookie", "session"),
    }
    assert params["path", "user_id"]["required"] is True
    assert params["path", "user_id"]["schema"] == {"type": "integer"}
    slug = params["path", "slug"]["schema"]
    assert slug["maxLength"] == 40
    assert slug["pattern"] == "^[a-z-]+$"
    limit = params["query", "limit"]
    assert limit["required"] is False
    assert limit["description"] == "Page size"
    assert limit["schema"]["minimum"] == 1
    assert limit["schema"]["maximum"] == 100
    assert limit["schema"]["default"] == 10
    q = params["query", "q"]
    assert q["schema"]["anyOf"][0] == {"type": "string", "maxLength": 50}
    assert q["schema"]["examples"] == ["shoes"]
    assert q["examples"] == {"example1": {"value": "shoes"}}
    tag = params["query", "tag"]["schema"]
    assert {"type": "array", "items": {"type": "string"}} in tag["anyOf"]
    assert params["header", "x-trace"]["deprecated"] is True
    assert params["cookie", "session"]["schema"]["type"] == "string"


def test_path_parameter_takes_the_converter_type() -> None:
    app = make_app()

    @app.get("/orders/{order_id:int}")
    async def order(order_id):  # type: ignore[no-untyped-def]
        return {"id": order_id}

    doc = document(app)
    (param,) = doc["paths"]["/orders/{order_id}"]["get"]["parameters"]
    assert param["schema"] == {"type": "integer"}
    # No value can fail validation: the converter already refused what does not match.
    assert "422" not in doc["paths"]["/orders/{order_id}"]["get"]["responses"]


def test_json_body_is_a_component_and_response_filters_type() -> None:
    app = make_app()

    @app.post("/users", status_code=201)
    async def create_user(user: UserIn) -> UserOut:
        return UserOut(name=user.name)

    @app.post("/customers")
    async def create_customer(customer: Customer) -> list[Customer]:
        return [customer]

    doc = document(app)
    op = doc["paths"]["/users"]["post"]
    body = op["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/UserIn"}
    created = op["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserOut"
    }
    problem = op["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/ValidationProblem"}
    schemas = doc["components"]["schemas"]
    assert set(schemas["UserIn"]["properties"]) == {"name", "password"}
    assert set(schemas["UserOut"]["properties"]) == {"name"}  # no password leaves the server
    # Nested models are components too, referenced from their parent.
    assert schemas["Customer"]["properties"]["address"] == {"$ref": "#/components/schemas/Address"}
    listed = doc["paths"]["/customers"]["post"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Customer"},
    }


def test_several_body_parameters_make_one_object() -> None:
    app = make_app()

    @app.put("/move")
    async def move(
        item: Item, point: Point, note: Annotated[str, Body(max_length=10)] = ""
    ) -> None:
        return None

    doc = document(app)
    op = doc["paths"]["/move"]["put"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["type"] == "object"
    assert schema["properties"]["item"] == {"$ref": "#/components/schemas/Item"}
    assert schema["properties"]["point"] == {"$ref": "#/components/schemas/Point"}
    assert schema["properties"]["note"]["maxLength"] == 10
    assert schema["required"] == ["item", "point"]
    assert list(op["responses"]) == ["204", "422"]
    assert "content" not in op["responses"]["204"]


def test_form_and_files_are_multipart_with_binary() -> None:
    app = make_app()

    @app.post("/upload")
    async def upload(
        title: Annotated[str, Form(min_length=1)],
        doc: Annotated[UploadFile, File(description="The document")],
        extra: list[UploadFile] | None = None,
    ) -> dict[str, object]:
        return {}

    @app.post("/login")
    async def login(
        username: Annotated[str, Form()], remember: Annotated[bool, Form()] = False
    ) -> dict[str, object]:
        return {}

    doc = document(app)
    body = doc["paths"]["/upload"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["title"]["minLength"] == 1
    assert schema["properties"]["doc"] == {
        "type": "string",
        "format": "binary",
        "description": "The document",
    }
    assert schema["properties"]["extra"] == {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
    }
    assert schema["required"] == ["title", "doc"]
    login_body = doc["paths"]["/login"]["post"]["requestBody"]["content"]
    form = login_body["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["username"]
    assert form["properties"]["remember"]["type"] == "boolean"


def test_dependency_parameters_are_included() -> None:
    app = make_app()

    def token(x_token: Annotated[str, Header()]) -> str:
        return x_token

    def user(tok: Annotated[str, Depends(token)], lang: str = "en") -> str:
        return tok

    def audit(x_request_id: Annotated[str | None, Header()] = None) -> None:
        return None

    app.dependencies = (*app.dependencies, audit)

    @app.get("/me")
    async def me(who: Annotated[str, Depends(user)], token_again: str = Depends(token)) -> str:
        return who

    doc = document(app)
    op = doc["paths"]["/me"]["get"]
    params = params_of(op)
    assert set(params) == {
        ("header", "x-token"),
        ("query", "lang"),
        ("header", "x-request-id"),
    }
    assert params["header", "x-token"]["required"] is True
    assert "422" in op["responses"]
    assert op["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}


def test_operations_summary_description_ids_and_exclusions() -> None:
    app = make_app()

    @app.route("/things", methods=["GET", "POST"])
    async def things() -> dict[str, object]:
        """List or add things.

        More words here.
        """
        return {}

    @app.get("/other", name="things_get")
    async def other() -> dict[str, object]:
        return {}

    @app.get(
        "/old",
        summary="An old thing",
        description="Use /things.",
        deprecated=True,
        operation_id="fetchOld",
    )
    async def old() -> dict[str, object]:
        return {}

    @app.get("/secret", include_in_schema=False)
    async def secret() -> dict[str, object]:
        return {}

    doc = document(app)
    assert "/secret" not in doc["paths"]
    assert set(doc["paths"]["/things"]) == {"get", "post"}
    get = doc["paths"]["/things"]["get"]
    assert get["summary"] == "Things"
    assert get["description"] == "List or add things.\n\nMore words here."
    old_op = doc["paths"]["/old"]["get"]
    assert old_op["summary"] == "An old thing"
    assert old_op["description"] == "Use /things."
    assert old_op["deprecated"] is True
    assert old_op["operationId"] == "fetchOld"
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert {"things_get", "things_post", "fetchOld"} <= set(ids)


def test_response_kinds_and_extra_responses() -> None:
    app = make_app()

    @app.get("/page")
    async def page() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>")

    @app.get("/raw")
    async def raw() -> Response:
        return Response(b"x")

    @app.get("/maybe", responses={404: {"description": "No such thing"}})
    # typing.Union: compile.py's _response_encoder only spots Response in a typing.Union.
    async def maybe() -> Union[UserOut, Response]:  # noqa: UP007
        return UserOut(name="x")

    @app.get(
        "/model",
        response_model=UserOut,
        responses={409: {"description": "Clash", "model": Item}},
    )
    async def model() -> dict[str, object]:
        return {"name": "x", "password": "y"}

    @app.delete("/things/{thing_id:int}")
    async def delete(thing_id: int) -> None:
        return None

    doc = document(app)
    paths = doc["paths"]
    assert paths["/page"]["get"]["responses"]["200"]["content"] == {
        "text/html": {"schema": {"type": "string"}}
    }
    assert "content" not in paths["/raw"]["get"]["responses"]["200"]
    maybe_responses = paths["/maybe"]["get"]["responses"]
    assert maybe_responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserOut"
    }
    assert maybe_responses["404"]["description"] == "No such thing"
    assert maybe_responses["404"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    model_responses = paths["/model"]["get"]["responses"]
    assert model_responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserOut"
    }
    assert model_responses["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Item"
    }
    assert list(paths["/things/{thing_id}"]["delete"]["responses"]) == ["204"]


def test_same_model_name_in_two_places_gets_two_components() -> None:
    app = make_app()

    def make(name: str) -> type[BaseModel]:
        return type(name, (BaseModel,), {"__annotations__": {"v": int}, "__module__": name})

    first = make("Thing")
    second = type("Thing", (BaseModel,), {"__annotations__": {"w": str}, "__module__": "other"})

    @app.post("/a")
    async def a(body: first) -> None:  # type: ignore[valid-type]
        return None

    @app.post("/b")
    async def b(body: second) -> None:  # type: ignore[valid-type]
        return None

    doc = document(app)
    ref_a = doc["paths"]["/a"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ref_b = doc["paths"]["/b"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert ref_a != ref_b
    for ref in (ref_a, ref_b):
        assert ref["$ref"].rsplit("/", 1)[1] in doc["components"]["schemas"]


def test_websocket_routes_are_left_out() -> None:
    app = make_app()

    @app.websocket("/ws")
    async def ws(websocket: Any) -> None:
        return None

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {}

    assert set(document(app)["paths"]) == {"/ping"}
