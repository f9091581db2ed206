"""The to-do API example: CRUD, bad input in every place, uploads, its OpenAPI document, docs."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from openapi_spec_validator import validate

from trellis.testing import TestClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
ANN = {"authorization": "Bearer ann-secret-token"}
BOB = {"authorization": "Bearer bob-secret-token"}


def load_todo_api() -> ModuleType:
    """Import ``examples/todo_api/app.py`` as the module ``todo_api_app``."""
    spec = importlib.util.spec_from_file_location(
        "todo_api_app", ROOT / "examples" / "todo_api" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: pydantic resolves the models' annotations through it.
    sys.modules["todo_api_app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def todo_api(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("TRELLIS_DEBUG", "1")
    return load_todo_api()


@pytest.fixture
def client(todo_api: ModuleType) -> Iterator[TestClient]:
    with TestClient(todo_api.create_app(), headers=ANN) as c:
        yield c


def _errors(response: Any) -> list[tuple[Any, ...]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [tuple(e["loc"]) for e in response.json()["errors"]]


# --- the happy path ------------------------------------------------------------------------


def test_full_crud(client: TestClient) -> None:
    assert client.get("/todos").json() == []

    created = client.post(
        "/todos",
        json={"title": "Buy milk", "tags": ["shop"], "priority": 2},
        headers={"X-Request-Source": "cli"},
    )
    assert created.status_code == 201
    todo = created.json()
    assert todo["id"] == 1
    assert todo["title"] == "Buy milk"
    assert todo["done"] is False
    assert todo["version"] == 1
    assert todo["source"] == "cli"
    assert todo["attachment"] is None
    assert "owner" not in todo and "content" not in todo  # filtered by the return type

    assert client.get("/todos/1").json() == todo
    assert client.get("/todos").json() == [todo]

    replaced = client.put("/todos/1", json={"title": "Buy oat milk"}, headers={"If-Match": '"1"'})
    assert replaced.status_code == 200
    assert replaced.json()["title"] == "Buy oat milk"
    assert replaced.json()["tags"] == []  # PUT replaces: left-out fields get their defaults
    assert replaced.json()["version"] == 2

    patched = client.patch("/todos/1", json={"done": True})
    assert patched.status_code == 200
    assert patched.json()["done"] is True
    assert patched.json()["title"] == "Buy oat milk"  # PATCH keeps what it does not name
    assert patched.json()["version"] == 3

    deleted = client.delete("/todos/1")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get("/todos/1").status_code == 404
    assert client.delete("/todos/1").status_code == 404


def test_list_filters_search_and_pages(client: TestClient) -> None:
    for i in range(5):
        client.post("/todos", json={"title": f"task {i}", "notes": "urgent" if i % 2 else ""})
    client.patch("/todos/2", json={"done": True})

    def titles(query: str) -> list[str]:
        response = client.get(f"/todos?{query}")
        assert response.status_code == 200, response.text
        return [t["title"] for t in response.json()]

    assert titles("") == [f"task {i}" for i in range(5)]
    assert titles("done=true") == ["task 1"]
    assert titles("done=false") == ["task 0", "task 2", "task 3", "task 4"]
    assert titles("q=URGENT") == ["task 1", "task 3"]
    assert titles("limit=2") == ["task 0", "task 1"]
    assert titles("limit=2&offset=3") == ["task 3", "task 4"]
    assert titles("offset=10") == []


def test_if_match_guards_against_lost_updates(client: TestClient) -> None:
    client.post("/todos", json={"title": "t"})
    stale = client.patch("/todos/1", json={"done": True}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json()["detail"] == "The to-do is at version 1, not 7"
    assert client.patch("/todos/1", json={"done": True}, headers={"If-Match": "1"}).is_success
    assert client.put("/todos/1", json={"title": "u"}, headers={"If-Match": "*"}).is_success


def test_patch_with_nothing_changes_only_the_version(client: TestClient) -> None:
    before = client.post("/todos", json={"title": "t", "tags": ["a"]}).json()
    after = client.patch("/todos/1", json={}).json()
    assert after == {**before, "version": 2}


def test_each_user_sees_only_their_own_todos(client: TestClient) -> None:
    client.post("/todos", json={"title": "ann's"})
    assert client.get("/todos", headers=BOB).json() == []
    assert client.get("/todos/1", headers=BOB).status_code == 404
    assert client.delete("/todos/1", headers=BOB).status_code == 404
    assert client.get("/todos/1").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", "Basic YW5uOnNlY3JldA==", "ann-secret-token"],
)
def test_a_missing_or_wrong_token_is_401(todo_api: ModuleType, authorization: str | None) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    with TestClient(todo_api.create_app(), headers=headers) as client:
        for response in (
            client.get("/todos"),
            client.post("/todos", json={"title": "t"}),
            client.get("/todos/1"),
            client.delete("/todos/1"),
        ):
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.headers["content-type"] == "application/problem+json"


def test_the_bearer_scheme_is_case_insensitive(client: TestClient) -> None:
    assert client.get("/todos", headers={"authorization": "bearer ann-secret-token"}).is_success


# --- bad input, in every place ---------------------------------------------------------------


def test_bad_query_values_are_all_reported(client: TestClient) -> None:
    response = client.get("/todos?done=maybe&limit=0&offset=-1&q=" + "x" * 101)
    assert sorted(_errors(response)) == [
        ("query", "done"),
        ("query", "limit"),
        ("query", "offset"),
        ("query", "q"),
    ]
    assert _errors(client.get("/todos?limit=101")) == [("query", "limit")]
    assert _errors(client.get("/todos?limit=ten")) == [("query", "limit")]


def test_a_path_id_that_is_not_a_number_matches_no_route(client: TestClient) -> None:
    assert client.get("/todos/abc").status_code == 404
    assert client.get("/todos/1.5").status_code == 404
    assert client.get("/todos/-1").status_code == 404
    assert client.get("/todos/99999999999999999999999999").status_code == 404


def test_method_not_allowed(client: TestClient) -> None:
    response = client.post("/todos/1")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PUT", "PATCH"}


def test_bad_header_value(client: TestClient) -> None:
    response = client.post("/todos", json={"title": "t"}, headers={"X-Request-Source": "x" * 51})
    assert _errors(response) == [("header", "x-request-source")]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({}, [("body", "title")]),  # missing required
        ({"title": ""}, [("body", "title")]),  # too short
        ({"title": 5}, [("body", "title")]),  # wrong type
        ({"title": "t", "priority": 9}, [("body", "priority")]),
        ({"title": "t", "done": "perhaps"}, [("body", "done")]),
        ({"title": "t", "tags": "a,b"}, [("body", "tags")]),
        ({"title": "t", "tags": ["ok", ""]}, [("body", "tags", 1)]),
        ({"title": "t", "owner": "bob"}, [("body", "owner")]),  # extra fields are refused
        ({"title": "t", "id": 99, "version": 5}, [("body", "id"), ("body", "version")]),
        ([{"title": "t"}], [("body",)]),
        (None, [("body",)]),
    ],
)
def test_bad_json_bodies_are_422(
    client: TestClient, body: Any, where: list[tuple[Any, ...]]
) -> None:
    assert sorted(_errors(client.post("/todos", json=body))) == sorted(where)


def test_bad_patch_and_put_bodies(client: TestClient) -> None:
    client.post("/todos", json={"title": "t"})
    assert _errors(client.patch("/todos/1", json={"priority": 0})) == [("body", "priority")]
    assert _errors(client.patch("/todos/1", json={"colour": "red"})) == [("body", "colour")]
    assert _errors(client.put("/todos/1", json={"done": True})) == [("body", "title")]
    # Nothing changed.
    assert client.get("/todos/1").json()["version"] == 1


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title": "t",',  # cut short
        b"{'title': 't'}",  # not JSON
        b"title=t",
        b'{"title": "\xff\xfe"}',  # not UTF-8
        b'{"title": "\xc3"}',  # a truncated UTF-8 sequence
    ],
)
def test_a_body_that_is_not_json_is_400(client: TestClient, raw: bytes) -> None:
    response = client.post("/todos", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/todos").json() == []


def test_an_empty_body_is_a_missing_body(client: TestClient) -> None:
    response = client.post("/todos", content=b"", headers={"content-type": "application/json"})
    assert _errors(response) == [("body",)]


def test_a_json_body_over_max_json_size_is_413(todo_api: ModuleType) -> None:
    with TestClient(todo_api.create_app(max_json_size=1024), headers=ANN) as client:
        assert client.post("/todos", json={"title": "t", "notes": "n" * 900}).status_code == 201
        response = client.post("/todos", json={"title": "t", "notes": "n" * 1100})
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        # Also when the client does not say how long the body is (chunked).
        chunked = client.post(
            "/todos",
            content=iter([b'{"title": "t", "notes": "', b"n" * 1100, b'"}']),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413
        assert len(client.get("/todos").json()) == 1


# --- attachments ----------------------------------------------------------------------------


def test_upload_and_download_an_attachment(client: TestClient) -> None:
    client.post("/todos", json={"title": "t"})
    response = client.post(
        "/todos/1/attachment", files={"file": ("list <1>.txt", b"milk\neggs\n", "text/plain")}
    )
    assert response.status_code == 200, response.text
    assert response.json()["attachment"] == {
        "filename": "list <1>.txt",
        "content_type": "text/plain",
        "size": 10,
    }
    assert response.json()["version"] == 2

    download = client.get("/todos/1/attachment")
    assert download.status_code == 200
    assert download.content == b"milk\neggs\n"
    # A file from a client is never rendered by the browser as what it claims to be.
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == (
        "attachment; filename*=UTF-8''list%20%3C1%3E.txt"
    )


def test_attachment_errors(todo_api: ModuleType, client: TestClient) -> None:
    limit = todo_api.MAX_ATTACHMENT_SIZE
    assert client.post("/todos/1/attachment", files={"file": ("a", b"x")}).status_code == 404
    client.post("/todos", json={"title": "t"})
    assert client.get("/todos/1/attachment").status_code == 404  # nothing attached yet

    exact = client.post("/todos/1/attachment", files={"file": ("a", b"x" * limit)})
    assert exact.status_code == 200
    assert exact.json()["attachment"]["size"] == limit

    one_more = client.post("/todos/1/attachment", files={"file": ("a", b"x" * (limit + 1))})
    assert one_more.status_code == 413
    huge = client.post("/todos/1/attachment", files={"file": ("a", b"x" * (10 * limit))})
    assert huge.status_code == 413
    assert client.get("/todos/1").json()["attachment"]["size"] == limit  # unchanged

    assert _errors(client.post("/todos/1/attachment", data={"file": "text"})) == [("body", "file")]
    assert _errors(client.post("/todos/1/attachment", files={"other": ("a", b"x")})) == [
        ("body", "file")
    ]
    no_boundary = client.post(
        "/todos/1/attachment", content=b"xx", headers={"content-type": "multipart/form-data"}
    )
    assert no_boundary.status_code == 400


# --- production settings ----------------------------------------------------------------------


def test_the_module_app_runs_with_production_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRELLIS_DEBUG", raising=False)
    monkeypatch.setenv("TRELLIS_SECRET_KEY", "k" * 48)
    module = load_todo_api()
    assert module.app.settings.debug is False
    with TestClient(module.app, headers=ANN) as client:
        assert client.post("/todos", json={"title": "t"}).status_code == 201
        assert client.get("/todos").json()[0]["title"] == "t"
        boom = client.get("/todos?limit=x")
        assert boom.status_code == 422
        assert "traceback" not in boom.text


# --- the OpenAPI document and the docs pages ------------------------------------------------


def test_the_openapi_document_is_valid_and_complete(todo_api: ModuleType) -> None:
    app = todo_api.create_app()
    doc = app.openapi()
    validate(doc)
    assert doc["info"]["title"] == "To-do API"
    assert set(doc["paths"]) == {
        "/todos",
        "/todos/{todo_id}",
        "/todos/{todo_id}/attachment",
    }
    assert set(doc["paths"]["/todos"]) == {"get", "post"}
    assert set(doc["paths"]["/todos/{todo_id}"]) == {"get", "put", "patch", "delete"}
    assert set(doc["paths"]["/todos/{todo_id}/attachment"]) == {"get", "post"}

    listing = doc["paths"]["/todos"]["get"]
    assert listing["description"] == (
        "List your to-dos, oldest first, filtered and a page at a time."
    )
    params = {(p["in"], p["name"]): p for p in listing["parameters"]}
    assert set(params) == {
        ("query", "done"),
        ("query", "q"),
        ("query", "limit"),
        ("query", "offset"),
    }
    assert params["query", "limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
    }
    assert not params["query", "done"]["required"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/TodoOut"},
    }
    assert set(listing["responses"]) == {"200", "401", "422"}

    create = doc["paths"]["/todos"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TodoIn"
    }
    assert "201" in create["responses"]
    assert ("header", "x-request-source") in {(p["in"], p["name"]) for p in create["parameters"]}

    item = doc["paths"]["/todos/{todo_id}"]
    path_param = next(p for p in item["get"]["parameters"] if p["in"] == "path")
    assert path_param == {
        "name": "todo_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    assert ("header", "if-match") in {(p["in"], p["name"]) for p in item["put"]["parameters"]}
    assert item["patch"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TodoPatch"
    }
    assert {"404", "412"} <= set(item["patch"]["responses"])
    assert "204" in item["delete"]["responses"]
    assert "content" not in item["delete"]["responses"]["204"]

    upload = doc["paths"]["/todos/{todo_id}/attachment"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"]["format"] == "binary"
    assert form["required"] == ["file"]
    assert "413" in upload["responses"]

    # Every operation needs the bearer token; the docs pages' "Authorize" button sends it.
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for item in doc["paths"].values():
        for op in item.values():
            assert op["security"] == [{"bearerAuth": []}]
            assert "401" in op["responses"]
            assert "authorization" not in {p["name"].lower() for p in op.get("parameters", [])}

    schemas = doc["components"]["schemas"]
    assert {"TodoIn", "TodoOut", "TodoPatch", "Attachment", "Problem"} <= set(schemas)
    assert schemas["TodoIn"]["additionalProperties"] is False
    assert schemas["TodoIn"]["required"] == ["title"]
    # What never leaves the server is not documented either.
    assert "owner" not in schemas["TodoOut"]["properties"]
    assert "content" not in schemas["TodoOut"]["properties"]


def test_the_document_is_served(client: TestClient, todo_api: ModuleType) -> None:
    served = client.get("/openapi.json", headers={"authorization": ""})
    assert served.status_code == 200  # the docs need no token
    assert served.json() == todo_api.create_app().openapi()


_ASSET_RE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize(("page", "bundle"), [("/docs", "swagger-ui"), ("/redoc", "redoc")])
def test_docs_pages_load_everything_they_reference_offline(
    client: TestClient, page: str, bundle: str
) -> None:
    response = client.get(page, headers={"authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = _ASSET_RE.findall(response.text)
    assert any(bundle in u and u.endswith(".js") for u in urls), urls
    for url in urls:
        assert url.startswith("/"), f"{page} references a remote or relative URL: {url}"
        assert not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    # The document the page is pointed at is served, too.
    assert "/openapi.json" in response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_needs_a_json_content_type(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/todos", content=b'{"title": "t"}', headers={"content-type": content_type}
    )
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]
