"""Typed handler parameters: where values come from, how they validate, what 422 says."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from trellis import App
from trellis.exceptions import ConfigurationError
from trellis.handlers.params import Body, Cookie, File, Form, Header, Path, Query
from trellis.http.forms import UploadFile
from trellis.testing import TestClient


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class UserIn(BaseModel):
    name: str
    password: str


class UserOut(BaseModel):
    name: str


@dataclass
class Point:
    x: int
    y: int


def make_app() -> App:
    return App(debug=True)


def test_path_and_query_parameters_from_hints() -> None:
    app = make_app()

    @app.get("/users/{user_id:int}")
    async def user(user_id: int, limit: int = 10, q: str | None = None) -> dict[str, object]:
        return {"user_id": user_id, "limit": limit, "q": q}

    with TestClient(app) as client:
        assert client.get("/users/42?limit=5").json() == {"user_id": 42, "limit": 5, "q": None}
        assert client.get("/users/42?q=x").json() == {"user_id": 42, "limit": 10, "q": "x"}
        bad = client.get("/users/42?limit=ten")
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"] == [
        {
            "loc": ["query", "limit"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]


def test_every_failing_field_is_reported_at_once() -> None:
    app = make_app()

    @app.get("/search")
    async def search(
        page: Annotated[int, Query(ge=1)],
        size: Annotated[int, Query(le=100)] = 10,
        sort: Annotated[str, Query(pattern="^(name|date)$")] = "name",
        token: Annotated[str, Header(alias="x-token")] = "",
    ) -> dict[str, object]:
        return {"page": page}

    with TestClient(app) as client:
        response = client.get("/search?page=0&size=500&sort=evil")
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["errors"]]
    assert locs == [["query", "page"], ["query", "size"], ["query", "sort"]]


def test_lists_headers_cookies_and_aliases() -> None:
    app = make_app()

    @app.get("/filter")
    async def filter_(
        tag: Annotated[list[int], Query()] = [],  # noqa: B006
        user_agent: Annotated[str | None, Header()] = None,
        theme: Annotated[str, Cookie()] = "light",
        search: Annotated[str | None, Query(alias="q")] = None,
    ) -> dict[str, object]:
        return {"tag": tag, "ua": user_agent, "theme": theme, "q": search}

    with TestClient(app, headers={"user-agent": "tests"}) as client:
        client.cookies.set("theme", "dark")
        data = client.get("/filter?tag=1&tag=2&q=x").json()
        assert data == {"tag": [1, 2], "ua": "tests", "theme": "dark", "q": "x"}
        bad = client.get("/filter?tag=1&tag=x")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "tag", 1]


def test_body_model_validated_from_raw_bytes_with_locations() -> None:
    app = make_app()

    @app.post("/items", status_code=201)
    async def create(item: Item) -> Item:
        return item

    with TestClient(app) as client:
        good = client.post("/items", json={"name": "w", "price": 9.5, "tags": ["a"]})
        assert good.status_code == 201
        assert good.json() == {"name": "w", "price": 9.5, "tags": ["a"]}
        bad = client.post("/items", json={"name": "w", "price": "cheap", "tags": ["a", 2]})
        assert bad.status_code == 422
        assert [e["loc"] for e in bad.json()["errors"]] == [
            ["body", "price"],
            ["body", "tags", 1],
        ]
        missing = client.post("/items", content=b"")
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["loc"] == ["body"]
        broken = client.post(
            "/items", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400
        invalid_utf8 = client.post("/items", content=b'{"name": "\xff", "price": 1}')
        assert invalid_utf8.status_code in (400, 422)


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    app = make_app()

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    with TestClient(app) as client:
        deep = b"[" * 100_000 + b"]" * 100_000
        response = client.post("/items", content=deep)
    assert response.status_code in (400, 413, 422)


def test_several_body_parameters_and_embed() -> None:
    app = make_app()

    @app.post("/move")
    async def move(
        point: Point, item: Item, note: Annotated[str, Body()] = ""
    ) -> dict[str, object]:
        return {"x": point.x, "item": item.name, "note": note}

    @app.post("/embedded")
    async def embedded(item: Annotated[Item, Body(embed=True)]) -> dict[str, object]:
        return {"name": item.name}

    with TestClient(app) as client:
        body = {"point": {"x": 1, "y": 2}, "item": {"name": "a", "price": 1}, "note": "n"}
        assert client.post("/move", json=body).json() == {"x": 1, "item": "a", "note": "n"}
        bad = client.post("/move", json={"point": {"x": "no", "y": 2}})
        assert bad.status_code == 422
        assert [e["loc"] for e in bad.json()["errors"]] == [
            ["body", "point", "x"],
            ["body", "item"],
        ]
        assert client.post("/embedded", json={"item": {"name": "e", "price": 2}}).json() == {
            "name": "e"
        }


def test_response_type_filters_fields() -> None:
    app = make_app()

    @app.post("/users")
    async def register(user: UserIn) -> UserOut:
        return user  # type: ignore[return-value]  # has a password: it must not leave

    class Row:  # an ORM-like object
        name = "orm"
        password_hash = "secret-hash"

    @app.get("/row", response_model=UserOut)
    async def row() -> object:
        return Row()

    with TestClient(app) as client:
        out = client.post("/users", json={"name": "ann", "password": "hunter2"})
        assert out.json() == {"name": "ann"}
        assert "hunter2" not in out.text
        assert client.get("/row").json() == {"name": "orm"}


def test_form_and_file_parameters() -> None:
    app = make_app()

    @app.post("/upload")
    async def upload(
        title: Annotated[str, Form()], doc: Annotated[UploadFile, File()]
    ) -> dict[str, object]:
        return {"title": title, "name": doc.filename, "size": len(await doc.read())}

    with TestClient(app) as client:
        response = client.post(
            "/upload", data={"title": "t"}, files={"doc": ("a.txt", b"hello", "text/plain")}
        )
        assert response.json() == {"title": "t", "name": "a.txt", "size": 5}
        missing = client.post("/upload", data={"title": "t"}, files={"other": ("b", b"x")})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "doc"]


def test_path_value_of_a_str_converter_is_validated_by_the_hint() -> None:
    app = make_app()

    @app.get("/items/{item_id}")
    async def item(item_id: Annotated[int, Path(ge=1)]) -> dict[str, int]:
        return {"item_id": item_id}

    with TestClient(app) as client:
        assert client.get("/items/7").json() == {"item_id": 7}
        bad = client.get("/items/0")
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["loc"] == ["path", "item_id"]
        assert client.get("/items/x").status_code == 422


class Opaque:
    """Nothing in a request can become one of these."""


def test_unknown_annotation_fails_at_start_up_naming_handler_and_parameter() -> None:
    app = make_app()

    @app.get("/")
    async def index(thing: Opaque) -> None:
        return None

    with pytest.raises(ConfigurationError) as info:
        app.build()
    assert "index" in str(info.value)
    assert "'thing'" in str(info.value)


def test_defaults_optionals_and_depends_as_default_value() -> None:
    from trellis.handlers.params import Depends

    def get_prefix() -> str:
        return ">"

    app = make_app()

    @app.get("/opt")
    def opt(  # a sync handler: same plan, run in the thread pool
        n: int | None = None,
        tags: list[str] = [],  # noqa: B006
        prefix: str = Depends(get_prefix),
    ) -> dict[str, object]:
        return {"n": n, "tags": tags, "prefix": prefix}

    with TestClient(app) as client:
        assert client.get("/opt").json() == {"n": None, "tags": [], "prefix": ">"}
        assert client.get("/opt?n=3&tags=a&tags=b").json() == {
            "n": 3,
            "tags": ["a", "b"],
            "prefix": ">",
        }
        assert client.get("/opt?n=").status_code == 422


def test_wrong_types_in_every_location_are_all_reported() -> None:
    app = make_app()

    @app.post("/all/{pid}")
    async def everything(
        pid: int,
        q: int,
        h: Annotated[int, Header(alias="x-num")],
        c: Annotated[int, Cookie()],
        item: Item,
    ) -> None:
        return None

    with TestClient(app) as client:
        client.cookies.set("c", "nope")
        response = client.post("/all/x?q=y", headers={"x-num": "z"}, json={"name": 1, "price": "p"})
    assert response.status_code == 422
    assert [e["loc"][0] for e in response.json()["errors"]] == [
        "path",
        "query",
        "header",
        "cookie",
        "body",
        "body",
    ]


def test_huge_json_body_is_413_before_validation() -> None:
    app = App(debug=True, max_json_size=1000)

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    with TestClient(app) as client:
        big = {"name": "x" * 5000, "price": 1, "tags": []}
        assert client.post("/items", json=big).status_code == 413


def test_a_model_with_an_undefined_forward_reference_fails_at_start_up() -> None:
    app = make_app()

    class Outer(BaseModel):
        inner: Inner | None = None  # noqa: F821 - defined nowhere: a forward reference

    @app.post("/")
    async def create(item: Outer) -> None:
        return None

    with pytest.raises(ConfigurationError, match="not fully defined"):
        app.build()


def test_json_body_with_a_non_json_content_type_is_415() -> None:
    app = make_app()

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    with TestClient(app) as client:
        body = b'{"name": "w", "price": 1}'
        for ctype in ("text/plain", "application/x-www-form-urlencoded"):
            response = client.post("/items", content=body, headers={"content-type": ctype})
            assert response.status_code == 415
        ok = client.post("/items", content=body, headers={"content-type": "application/json"})
        assert ok.status_code == 200
        vendor = client.post(
            "/items", content=body, headers={"content-type": "application/vnd.x+json"}
        )
        assert vendor.status_code == 200


class Color(enum.StrEnum):
    red = "red"
    blue = "blue"


class Pet(TypedDict):
    name: str
    legs: int


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


def test_typed_dict_list_union_and_enum_values() -> None:
    app = make_app()

    @app.post("/pet")
    async def pet(body: Pet) -> Pet:
        return body

    @app.post("/points")
    async def points(body: list[Point]) -> dict[str, int]:
        return {"sum": sum(p.x + p.y for p in body)}

    @app.post("/animal")
    async def animal(body: Cat | Dog) -> dict[str, str]:
        return {"type": type(body).__name__}

    @app.get("/paint")
    async def paint(color: Color = Color.red) -> dict[str, str]:
        return {"color": color.value}

    with TestClient(app) as client:
        assert client.post("/pet", json={"name": "rex", "legs": 4}).json() == {
            "name": "rex",
            "legs": 4,
        }
        assert client.post("/pet", json={"name": "rex"}).status_code == 422
        assert client.post("/points", json=[{"x": 1, "y": 2}, {"x": 3, "y": 4}]).json() == {
            "sum": 10
        }
        bad_points = client.post("/points", json=[{"x": 1, "y": 2}, {"x": "a", "y": 4}])
        assert bad_points.json()["errors"][0]["loc"] == ["body", 1, "x"]
        assert client.post("/animal", json={"kind": "dog", "good": True}).json() == {"type": "Dog"}
        assert client.post("/animal", json={"kind": "fish"}).status_code == 422
        assert client.get("/paint?color=blue").json() == {"color": "blue"}
        assert client.get("/paint?color=green").status_code == 422
