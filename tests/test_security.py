"""Security schemes: credentials over HTTP, websockets and SSE, and their OpenAPI description."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from openapi_spec_validator import validate

from trellis import App, Router
from trellis.exceptions import ConfigurationError, UnauthorizedError
from trellis.handlers.params import Depends
from trellis.http.request import Request
from trellis.http.sse import EventSourceResponse
from trellis.security import (
    APIKeyCookie,
    APIKeyHeader,
    APIKeyQuery,
    BasicCredentials,
    HTTPBasic,
    HTTPBearer,
    OAuth2PasswordBearer,
    Security,
    SecurityScheme,
)
from trellis.testing import TestClient
from trellis.testing.websocket import WebSocketDenied
from trellis.websockets import WebSocket

bearer = HTTPBearer(bearer_format="JWT", description="A token from /token")
maybe_bearer = HTTPBearer(scheme_name="optionalBearer", auto_error=False)
basic = HTTPBasic(realm="trellis")
key_header = APIKeyHeader()
key_query = APIKeyQuery()
key_cookie = APIKeyCookie()
oauth2 = OAuth2PasswordBearer("/token", scopes={"read": "Read things", "write": "Change things"})

USERS = {"t-ann": "ann"}


def current_user(token: Annotated[str, Depends(bearer)]) -> str:
    user = USERS.get(token)
    if user is None:
        raise UnauthorizedError("Unknown token", headers={"WWW-Authenticate": "Bearer"})
    return user


def make_app() -> App:
    app = App(debug=True)

    @app.get("/bearer")
    async def get_bearer(token: Annotated[str, Depends(bearer)]) -> dict[str, str]:
        return {"token": token}

    @app.get("/optional")
    async def optional(
        token: Annotated[str | None, Depends(maybe_bearer)],
    ) -> dict[str, str | None]:
        return {"token": token}

    @app.get("/basic")
    async def get_basic(
        credentials: Annotated[BasicCredentials, Depends(basic)],
    ) -> dict[str, str]:
        return {"username": credentials.username, "password": credentials.password}

    @app.get("/header")
    async def header(key: Annotated[str, Depends(key_header)]) -> dict[str, str]:
        return {"key": key}

    @app.get("/query")
    async def query(key: Annotated[str, Depends(key_query)]) -> dict[str, str]:
        return {"key": key}

    @app.get("/cookie")
    async def cookie(key: Annotated[str, Depends(key_cookie)]) -> dict[str, str]:
        return {"key": key}

    @app.get("/oauth2")
    async def get_oauth2(token: Annotated[str, Depends(oauth2)]) -> dict[str, str]:
        return {"token": token}

    @app.post("/items")
    async def create_item(
        token: Annotated[str, Security(oauth2, scopes=["write"])],
    ) -> dict[str, str]:
        return {"token": token}

    @app.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        return {"user": user}

    @app.get("/public")
    async def public() -> dict[str, bool]:
        return {"ok": True}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: Annotated[str, Depends(current_user)]) -> None:
        await websocket.accept()
        await websocket.send_json({"user": user})
        await websocket.close()

    @app.get("/events")
    async def events(user: Annotated[str, Depends(current_user)]) -> EventSourceResponse:
        async def gen() -> AsyncIterator[str]:
            for n in range(2):
                yield f"{user} {n}"

        return EventSourceResponse(gen())

    admin = Router("/admin", dependencies=[Depends(key_header)])

    @admin.get("/stats")
    async def stats() -> dict[str, int]:
        return {"users": 1}

    app.include(admin)
    return app


@pytest.fixture
def client() -> Any:
    with TestClient(make_app()) as c:
        yield c


def _basic(value: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(value.encode()).decode()}


# -- HTTP bearer -------------------------------------------------------------------------------


def test_bearer_returns_the_token(client: TestClient) -> None:
    response = client.get("/bearer", headers={"authorization": "Bearer abc.def"})
    assert response.status_code == 200
    assert response.json() == {"token": "abc.def"}


def test_bearer_scheme_word_is_case_insensitive(client: TestClient) -> None:
    response = client.get("/bearer", headers={"authorization": "bearer   abc"})
    assert response.json() == {"token": "abc"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": ""}, {"authorization": "Basic abc"}, {"authorization": "Bearer"}],
    ids=["missing", "empty", "wrong-scheme", "no-token"],
)
def test_bearer_refuses_with_401_and_a_challenge(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/bearer", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


def test_auto_error_false_gives_none(client: TestClient) -> None:
    assert client.get("/optional").json() == {"token": None}
    assert client.get("/optional", headers={"authorization": "Basic x"}).json() == {"token": None}
    assert client.get("/optional", headers={"authorization": "Bearer t"}).json() == {"token": "t"}


def test_user_dependency_on_top_of_the_scheme(client: TestClient) -> None:
    assert client.get("/me", headers={"authorization": "Bearer t-ann"}).json() == {"user": "ann"}
    unknown = client.get("/me", headers={"authorization": "Bearer nope"})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "Unknown token"
    assert client.get("/me").status_code == 401


# -- HTTP basic --------------------------------------------------------------------------------


def test_basic_returns_the_credentials(client: TestClient) -> None:
    response = client.get("/basic", headers=_basic("ann:s3:cr:et"))
    assert response.json() == {"username": "ann", "password": "s3:cr:et"}
    assert client.get("/basic", headers=_basic("ann:")).json() == {
        "username": "ann",
        "password": "",
    }


def test_basic_credentials_hide_the_password() -> None:
    assert "secret" not in repr(BasicCredentials("ann", "secret"))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer abc"},
        {"authorization": "Basic !!!not-base64"},
        _basic("no-colon"),
        {"authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
    ],
    ids=["missing", "wrong-scheme", "bad-base64", "no-colon", "bad-utf8"],
)
def test_basic_refuses_with_401_and_a_realm(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/basic", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="trellis", charset="UTF-8"'


def test_basic_without_realm_challenges_plainly() -> None:
    scheme = HTTPBasic()
    with pytest.raises(UnauthorizedError) as info:
        scheme._refuse("x")
    assert info.value.headers == [("WWW-Authenticate", "Basic")]


# -- API keys ----------------------------------------------------------------------------------


def test_api_key_header(client: TestClient) -> None:
    assert client.get("/header", headers={"x-api-key": "k1"}).json() == {"key": "k1"}
    missing = client.get("/header")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "APIKey"
    assert "X-API-Key" in missing.json()["detail"]


def test_api_key_query(client: TestClient) -> None:
    assert client.get("/query?api_key=k2").json() == {"key": "k2"}
    assert client.get("/query").status_code == 401
    assert client.get("/query?api_key=").status_code == 401


def test_api_key_cookie(client: TestClient) -> None:
    assert client.get("/cookie").status_code == 401
    client.cookies.set("session", "k3")
    assert client.get("/cookie").json() == {"key": "k3"}


def test_router_level_scheme_guards_every_route(client: TestClient) -> None:
    assert client.get("/admin/stats").status_code == 401
    assert client.get("/admin/stats", headers={"x-api-key": "k"}).json() == {"users": 1}


# -- OAuth2 ------------------------------------------------------------------------------------


def test_oauth2_password_bearer_reads_the_bearer_token(client: TestClient) -> None:
    assert client.get("/oauth2", headers={"authorization": "Bearer tok"}).json() == {"token": "tok"}
    missing = client.get("/oauth2")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    scoped = client.post("/items", headers={"authorization": "Bearer tok"})
    assert scoped.json() == {"token": "tok"}
    assert client.post("/items").status_code == 401


def test_security_needs_a_scheme() -> None:
    with pytest.raises(TypeError):
        Security(current_user)  # type: ignore[arg-type]


# -- websocket and SSE routes ------------------------------------------------------------------


def test_websocket_route_with_a_token(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers={"authorization": "Bearer t-ann"}) as ws:
        assert ws.receive_json() == {"user": "ann"}


@pytest.mark.parametrize("headers", [None, {"authorization": "Bearer wrong"}])
def test_websocket_route_without_a_good_token_is_refused_with_401(
    client: TestClient, headers: dict[str, str] | None
) -> None:
    with pytest.raises(WebSocketDenied) as info, client.websocket_connect("/ws", headers=headers):
        pass
    assert info.value.status == 401
    assert info.value.headers.get("www-authenticate") == "Bearer"


def test_sse_route(client: TestClient) -> None:
    refused = client.get("/events")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    response = client.get("/events", headers={"authorization": "Bearer t-ann"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "data: ann 0" in response.text
    assert "data: ann 1" in response.text


# -- OpenAPI -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return make_app().openapi()


def test_document_validates(doc: dict[str, Any]) -> None:
    validate(doc)


def test_security_schemes_by_type(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"] == {
        "apiKeyCookie": {"type": "apiKey", "in": "cookie", "name": "session"},
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
        "basicAuth": {"type": "http", "scheme": "basic"},
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A token from /token",
        },
        "oauth2": {
            "type": "oauth2",
            "flows": {
                "password": {
                    "tokenUrl": "/token",
                    "scopes": {"read": "Read things", "write": "Change things"},
                }
            },
        },
        "optionalBearer": {"type": "http", "scheme": "bearer"},
    }


@pytest.mark.parametrize(
    ("path", "method", "security"),
    [
        ("/bearer", "get", [{"bearerAuth": []}]),
        ("/basic", "get", [{"basicAuth": []}]),
        ("/header", "get", [{"apiKeyHeader": []}]),
        ("/query", "get", [{"apiKeyQuery": []}]),
        ("/cookie", "get", [{"apiKeyCookie": []}]),
        ("/oauth2", "get", [{"oauth2": []}]),
        ("/items", "post", [{"oauth2": ["write"]}]),
        ("/me", "get", [{"bearerAuth": []}]),  # found through current_user
        ("/events", "get", [{"bearerAuth": []}]),
        ("/admin/stats", "get", [{"apiKeyHeader": []}]),  # a router dependency
        ("/optional", "get", [{"optionalBearer": []}, {}]),  # optional: anonymous too
    ],
)
def test_operation_security(
    doc: dict[str, Any], path: str, method: str, security: list[dict[str, list[str]]]
) -> None:
    operation = doc["paths"][path][method]
    assert operation["security"] == security
    assert operation["responses"]["401"] == {
        "description": "Authentication is missing or wrong",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def test_unguarded_operations_have_no_security(doc: dict[str, Any]) -> None:
    public = doc["paths"]["/public"]["get"]
    assert "security" not in public
    assert "401" not in public["responses"]
    assert "/ws" not in doc["paths"]


def test_several_schemes_combine() -> None:
    app = App(debug=True)
    maybe_key = APIKeyQuery(scheme_name="optionalKey", auto_error=False)

    @app.get("/both")
    async def both(
        token: Annotated[str, Depends(bearer)],
        key: Annotated[str, Depends(key_header)],
        read: Annotated[str, Security(oauth2, scopes=["read"])],
        write: Annotated[str, Security(oauth2, scopes=["write", "read"])],
    ) -> None: ...

    @app.get("/either")
    async def either(
        token: Annotated[str | None, Depends(maybe_bearer)],
        key: Annotated[str | None, Depends(maybe_key)],
    ) -> None: ...

    doc = app.openapi()
    validate(doc)
    assert doc["paths"]["/both"]["get"]["security"] == [
        {"bearerAuth": [], "apiKeyHeader": [], "oauth2": ["read", "write"]}
    ]
    assert doc["paths"]["/either"]["get"]["security"] == [
        {"optionalBearer": []},
        {"optionalKey": []},
        {},
    ]


def test_declared_401_response_is_kept() -> None:
    app = App(debug=True)

    @app.get("/x", responses={401: {"description": "Log in"}})
    async def x(token: Annotated[str, Depends(bearer)]) -> None: ...

    assert app.openapi()["paths"]["/x"]["get"]["responses"]["401"]["description"] == "Log in"


def test_two_different_schemes_with_one_name_are_refused() -> None:
    app = App(debug=True)
    other = HTTPBearer(bearer_format="opaque")

    @app.get("/a")
    async def a(token: Annotated[str, Depends(bearer)]) -> None: ...

    @app.get("/b")
    async def b(token: Annotated[str, Depends(other)]) -> None: ...

    with pytest.raises(ConfigurationError, match="bearerAuth"):
        app.openapi()


def test_custom_scheme_subclass() -> None:
    class SignedHeader(SecurityScheme):
        challenge = "Signature"

        def openapi(self) -> dict[str, Any]:
            return {"type": "apiKey", "in": "header", "name": "X-Signature"}

        async def __call__(self, request: Any) -> str | None:
            value = request.headers.get("x-signature")
            if not value:
                self._refuse("Not signed")
                return None
            return str(value)

    signed = SignedHeader(scheme_name="signature")
    app = App(debug=True)

    @app.get("/signed")
    async def view(sig: Annotated[str, Depends(signed)]) -> dict[str, str]:
        return {"sig": sig}

    with TestClient(app) as c:
        assert c.get("/signed", headers={"x-signature": "s"}).json() == {"sig": "s"}
        refused = c.get("/signed")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Signature"
    assert app.openapi()["paths"]["/signed"]["get"]["security"] == [{"signature": []}]


def test_overriding_a_scheme_also_overrides_its_scoped_uses() -> None:
    app = make_app()
    app.dependency_overrides[oauth2] = lambda: "test-token"
    app.dependency_overrides[bearer] = lambda: "t-ann"
    with TestClient(app) as c:
        assert c.get("/oauth2").json() == {"token": "test-token"}
        assert c.post("/items").json() == {"token": "test-token"}
        assert c.get("/me").json() == {"user": "ann"}


def test_scheme_runs_once_per_request_with_scoped_uses() -> None:
    calls: list[str] = []

    class Counting(HTTPBearer):
        async def __call__(self, request: Request) -> str | None:
            calls.append("call")
            return await super().__call__(request)

    counting = Counting()
    app = App(debug=True)

    @app.get("/x")
    async def x(
        plain: Annotated[str, Depends(counting)],
        read: Annotated[str, Security(counting, scopes=["read"])],
        write: Annotated[str, Security(counting, scopes=["write"])],
    ) -> list[str]:
        return [plain, read, write]

    with TestClient(app) as c:
        assert c.get("/x", headers={"authorization": "Bearer t"}).json() == ["t", "t", "t"]
    assert calls == ["call"]
