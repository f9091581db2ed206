"""Property test: the to-do API example keeps the promises of its own OpenAPI document.

For every operation of ``examples/todo_api``, hypothesis generates path, query and header values
and request bodies from the schemas the document gives them, sends them through the test client
and checks that the answer is one the document describes:

- never a 5xx;
- a documented status (or 404 for an id that does not exist, or 401 when the generated
  ``Authorization`` header is not a valid token);
- values generated from the document's schemas are accepted: never a 422;
- a JSON answer validates against the schema documented for its status.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import pathlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator, FormatChecker

from trellis.testing import TestClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKEN = "Bearer ann-secret-token"

#: Every operation of the example; a test checks the document lists exactly these.
OPERATIONS = [
    ("get", "/todos"),
    ("post", "/todos"),
    ("get", "/todos/{todo_id}"),
    ("put", "/todos/{todo_id}"),
    ("patch", "/todos/{todo_id}"),
    ("delete", "/todos/{todo_id}"),
    ("get", "/todos/{todo_id}/attachment"),
    ("post", "/todos/{todo_id}/attachment"),
]
PROBLEM = "#/components/schemas/Problem"
ANY_TEXT = st.text(max_size=40)
#: The ids the store holds at the start of every example (id 1 has an attachment).
SEEDED_IDS = [1, 2, 3]


class API:
    """The example's module, an app built from it, a client, and the app's document."""

    def __init__(self, module: ModuleType, app: Any, client: TestClient) -> None:
        self.module, self.app, self.client = module, app, client
        self.doc: dict[str, Any] = app.openapi()

    def __repr__(self) -> str:  # keeps hypothesis's failure reports short
        return "API(examples/todo_api)"

    def reset(self) -> None:
        """A fresh store holding ``SEEDED_IDS``, so every example starts from the same state."""
        store = self.module.TodoStore()
        for i in SEEDED_IDS:
            store.add("ann", self.module.TodoIn(title=f"todo {i}", tags=["seed"]), "test")
        attachment = self.module.Attachment(filename="a.txt", content_type="text/plain", size=2)
        store.update("ann", 1, {"attachment": attachment, "content": b"hi"}, None)
        self.app.state.todo_store = store


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "todo_api_app_property", ROOT / "examples" / "todo_api" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def api() -> Iterator[API]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRELLIS_DEBUG", "1")
        module = _load()
        app = module.create_app()
        with TestClient(app) as client:
            yield API(module, app, client)


# --- schemas --------------------------------------------------------------------------------


def inline_refs(schema: Any, doc: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """``schema`` with every ``#/components/schemas/...`` reference replaced by its target."""
    if isinstance(schema, list):
        return [inline_refs(s, doc, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref not in seen, f"recursive schema {ref}: not supported here"
        target = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        out.update(inline_refs(copy.deepcopy(target), doc, (*seen, ref)))
    for key, value in schema.items():
        if key != "$ref":
            out[key] = inline_refs(value, doc, seen)
    return out


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FormatChecker())


def _header_safe(value: str) -> str:
    """``value`` made sendable as a header: printable ASCII, no surrounding whitespace."""
    return "".join(c if " " <= c <= "~" else "x" for c in value).strip(" ")


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- requests -------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    json_body: Any = None
    has_json_body: bool = False
    raw_body: bytes | None = None
    files: dict[str, Any] | None = None
    valid_token: bool = True

    @property
    def url(self) -> str:
        return self.path + ("?" + urlencode(self.query) if self.query else "")

    def send(self, client: TestClient) -> Any:
        kwargs: dict[str, Any] = {"headers": self.headers}
        if self.has_json_body or self.raw_body is not None:
            raw = self.raw_body if self.raw_body is not None else json.dumps(self.json_body)
            kwargs["content"] = raw.encode() if isinstance(raw, str) else raw
            kwargs["headers"] = {**self.headers, "content-type": "application/json"}
        if self.files is not None:
            kwargs["files"] = self.files
        return client.request(self.method.upper(), self.url, **kwargs)

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        body = f" json={self.json_body!r}" if self.has_json_body else ""
        body += f" content={self.raw_body!r}" if self.raw_body is not None else ""
        files = f" files={self.files!r}" if self.files is not None else ""
        return f"{self.method.upper()} {self.url} headers={self.headers!r}{body}{files}"


def draw_call(draw: Any, doc: dict[str, Any], method: str, path: str) -> Call:
    op = doc["paths"][path][method]
    url = path
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    valid_token = True
    if op.get("security"):
        assert op["security"] == [{"bearerAuth": []}], op["security"]
        # Mostly a valid token; sometimes none or a wrong one (then 401 is fine).
        if draw(st.integers(0, 9), label="auth?"):
            headers["authorization"] = TOKEN
        else:
            wrong = draw(st.none() | ANY_TEXT.map(lambda t: "Bearer " + t), label="auth")
            if wrong is not None:
                headers["authorization"] = _header_safe(wrong)
            valid_token = headers.get("authorization") == TOKEN
    for param in op.get("parameters", []):
        name, where = param["name"], param["in"]
        schema = inline_refs(param.get("schema", {}), doc)
        if where == "path":
            value = draw(
                st.one_of(st.sampled_from(SEEDED_IDS), from_schema(schema)),
                label=f"path {name}",
            )
            url = url.replace("{" + name + "}", str(value))
            continue
        if not param.get("required") and not draw(st.booleans(), label=f"send {name}?"):
            continue
        value = draw(from_schema(schema), label=f"{where} {name}")
        if value is None:  # a null cannot be written in a query or header: leave it out
            continue
        if where == "query":
            query.append((name, _query_text(value)))
        elif where == "header":
            text = _header_safe(str(value))
            assert _validator(schema).is_valid(text), (name, text)
            headers[name] = text
        else:  # pragma: no cover - the example has no cookies
            raise AssertionError(f"unexpected parameter location {where}")
    call = Call(method, url, query, headers, valid_token=valid_token)
    body = op.get("requestBody")
    if body is not None:
        content = body["content"]
        if "application/json" in content:
            schema = inline_refs(content["application/json"].get("schema", {}), doc)
            call.json_body = draw(from_schema(schema), label="json body")
            call.has_json_body = True
        elif "multipart/form-data" in content:
            schema = inline_refs(content["multipart/form-data"]["schema"], doc)
            call.files = {}
            for field, spec in schema["properties"].items():
                assert spec.get("format") == "binary", f"only file fields expected, got {field}"
                filename = draw(
                    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1),
                    label="filename",
                )
                data = draw(st.binary(max_size=2048), label="file content")
                call.files[field] = (filename, data, "application/octet-stream")
        else:  # pragma: no cover
            raise AssertionError(f"unexpected request body {list(content)}")
    return call


def check_response(
    path: str,
    op: dict[str, Any],
    doc: dict[str, Any],
    call: Call,
    response: Any,
    *,
    valid_input: bool = True,
) -> None:
    status = response.status_code
    described = f"{call!r} -> {status} {response.text[:500]}"
    assert status < 500, described
    documented = op["responses"]
    has_id = "{" in path
    if str(status) not in documented:
        allowed = (
            (status == 404 and has_id)
            or (status == 401 and not call.valid_token)
            # A body that is not JSON is a 400; one of the wrong media type a 415.
            or (status == 400 and not valid_input and "requestBody" in op)
            or (status == 415 and not valid_input and "requestBody" in op)
            or (status == 404 and not valid_input)  # a mangled path matches no route
        )
        assert allowed, f"undocumented status: {described}"
    if call.valid_token and valid_input:
        # Every value came from the document's own schemas: none may be refused as invalid.
        assert status != 422, f"a schema-valid request was refused: {described}"
    spec = documented.get(str(status))
    if spec is None and status >= 400:  # an error the framework adds: still a problem document
        spec = {"content": {"application/problem+json": {"schema": {"$ref": PROBLEM}}}}
    if status in (204, 304) or spec is None:
        assert not (status == 204 and response.content), described
        return
    content = spec.get("content")
    if not content:
        return
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media in content, f"content-type {media!r} not documented: {described}"
    if media.endswith("json"):
        schema = inline_refs(content[media].get("schema", {}), doc)
        errors = sorted(_validator(schema).iter_errors(response.json()), key=str)
        assert not errors, f"{described}\n" + "\n".join(e.message for e in errors[:5])


# --- the tests ------------------------------------------------------------------------------


def test_the_operations_are_the_documents(api: API) -> None:
    found = [(m, p) for p, item in api.doc["paths"].items() for m in item]
    assert sorted(found) == sorted(OPERATIONS)


def test_inline_refs_resolves_nested_references(api: API) -> None:
    schema = {"$ref": "#/components/schemas/TodoOut"}
    inlined = inline_refs(schema, api.doc)
    assert "$ref" not in json.dumps(inlined)
    assert inlined["properties"]["attachment"]["anyOf"][0]["title"] == "Attachment"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    database=None,
)
@given(data=st.data())
def test_responses_match_the_document(api: API, method: str, path: str, data: Any) -> None:
    api.reset()
    op = api.doc["paths"][path][method]
    call = draw_call(data.draw, api.doc, method, path)
    response = call.send(api.client)
    event(f"status {response.status_code}")  # shown by pytest --hypothesis-show-statistics
    check_response(path, op, api.doc, call, response)


# --- and with bad input ----------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


def spoil(draw: Any, doc: dict[str, Any], method: str, path: str, call: Call) -> str:
    """Change one part of a valid ``call`` into something its schema may not allow."""
    op = doc["paths"][path][method]
    params = op.get("parameters", [])
    kinds = ["query-extra"]
    kinds += [f"{p['in']}:{p['name']}" for p in params]
    if call.has_json_body:
        kinds += ["body-field", "body-json", "body-bytes"]
    if call.files is not None:
        kinds += ["body-bytes", "no-file"]
    kind = draw(st.sampled_from(kinds), label="spoil")
    where, _, name = kind.partition(":")
    if where == "path":
        value = draw(ANY_TEXT, label="path value")
        call.path = path.replace("{" + name + "}", quote(value, safe="")) if value else path
        for p in op["parameters"]:  # the other path parameters keep a valid value
            call.path = call.path.replace("{" + p["name"] + "}", "1")
    elif where == "query":
        call.query.append((name, draw(ANY_TEXT, label=f"query {name}")))
    elif where == "query-extra":
        call.query.append((draw(ANY_TEXT, label="name"), draw(ANY_TEXT, label="value")))
    elif where == "header":
        call.headers[name] = _header_safe(draw(ANY_TEXT, label=f"header {name}"))
    elif kind == "body-field":
        if not isinstance(call.json_body, dict):
            call.json_body = {}
        key = draw(st.sampled_from(["title", "notes", "done", "priority", "tags"]) | ANY_TEXT)
        call.json_body[key] = draw(JSON_VALUES, label="field value")
    elif kind == "body-json":
        call.json_body = draw(JSON_VALUES, label="body")
    elif kind == "body-bytes":
        call.files, call.has_json_body = None, False
        call.raw_body = draw(st.binary(max_size=200), label="raw body")
    elif kind == "no-file":
        call.files = {draw(ANY_TEXT, label="field"): ("f", b"x")}
    return kind


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    database=None,
)
@given(data=st.data())
def test_bad_input_gets_a_documented_client_error(
    api: API, method: str, path: str, data: Any
) -> None:
    api.reset()
    op = api.doc["paths"][path][method]
    call = draw_call(data.draw, api.doc, method, path)
    kind = spoil(data.draw, api.doc, method, path, call)
    response = call.send(api.client)
    event(f"{kind}: status {response.status_code}")
    check_response(path, op, api.doc, call, response, valid_input=False)
