"""``@cached``: whole responses kept in the cache, and what must never be kept."""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
import httpx
import jinja2
import pytest
from pydantic import BaseModel

from trellis import App, Depends, Request
from trellis.contrib.cache import CacheBackend, MemoryCache, cached
from trellis.contrib.cache.responses import REQUEST_PARAM, response_key
from trellis.exceptions import ConfigurationError
from trellis.http.response import PlainTextResponse, Response, StreamingResponse
from trellis.i18n import reset_translator, set_translator
from trellis.negotiation import JSONRenderer, TemplateRenderer
from trellis.templating import Templates
from trellis.testing import TestClient
from trellis.types import ASGIApp, Receive, Scope, Send


class Item(BaseModel):
    name: str
    n: int


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app() -> App:
    app = App(debug=True)
    app.install(MemoryCache())
    return app


def counting() -> tuple[list[Any], Callable[[Any], None]]:
    calls: list[Any] = []
    return calls, calls.append


# -- hits and misses --------------------------------------------------------------------------


def test_a_typed_handler_runs_once_per_url(app: App) -> None:
    calls, count = counting()

    @app.get("/items/{n}")
    @cached(60)
    async def item(n: int, q: str = "x") -> Item:
        count(n)
        return Item(name=q, n=n)

    with TestClient(app) as client:
        first = client.get("/items/3?q=hi")
        assert first.json() == {"name": "hi", "n": 3}
        again = client.get("/items/3?q=hi")
        assert again.json() == {"name": "hi", "n": 3}
        assert again.headers["content-type"] == "application/json"
        assert again.headers["etag"] == first.headers["etag"]
        assert calls == [3]
        assert client.get("/items/4?q=hi").json() == {"name": "hi", "n": 4}
        assert client.get("/items/3?q=other").json() == {"name": "other", "n": 3}
        assert calls == [3, 4, 3]
        # Parameters are still validated on a hit.
        assert client.get("/items/three").status_code == 422


def test_query_parameters_in_any_order_are_one_entry(app: App) -> None:
    calls, count = counting()

    @app.get("/search")
    @cached(60)
    async def search(request: Request) -> dict[str, Any]:
        count(1)
        return {"tags": request.query.getlist("tag"), "page": request.query.get("page")}

    with TestClient(app) as client:
        a = client.get("/search?tag=x&page=2&tag=y").json()
        b = client.get("/search?page=2&tag=x&tag=y").json()
        assert a == b == {"tags": ["x", "y"], "page": "2"}
        assert len(calls) == 1
        # The order of the values of one name matters.
        assert client.get("/search?tag=y&page=2&tag=x").json()["tags"] == ["y", "x"]
        assert len(calls) == 2


def test_head_and_get_share_the_entry(app: App) -> None:
    calls, count = counting()

    @app.get("/page")
    @cached(60)
    async def page() -> str:
        count(1)
        return "hello"

    with TestClient(app) as client:
        head = client.head("/page")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == "5"
        assert head.headers["etag"].startswith('"')
        get = client.get("/page")
        assert get.text == "hello"
        assert get.headers["etag"] == head.headers["etag"]
        assert client.head("/page").headers["content-length"] == "5"
        assert calls == [1]


def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    app = App(debug=True)
    app.install(MemoryCache(clock=clock))
    calls, count = counting()

    @app.get("/")
    @cached(10)
    async def index() -> dict[str, int]:
        count(1)
        return {"n": len(calls)}

    with TestClient(app) as client:
        assert client.get("/").json() == {"n": 1}
        clock.now += 9.9
        assert client.get("/").json() == {"n": 1}
        clock.now += 0.1
        assert client.get("/").json() == {"n": 2}


def test_the_signature_is_the_handlers(app: App) -> None:
    @cached(60)
    async def item(n: int, q: Annotated[str, "meta"] = "x", **rest: Any) -> Item:
        """Docs."""
        return Item(name=q, n=n)

    signature = inspect.signature(item)
    assert list(signature.parameters) == ["n", "q", REQUEST_PARAM, "rest"]
    assert signature.return_annotation == "Item"
    hints = typing.get_type_hints(item, include_extras=True)
    assert hints["n"] is int
    assert hints["q"] == Annotated[str, "meta"]
    assert hints["return"] is Item
    assert hints[REQUEST_PARAM] is Request
    assert item.__name__ == "item"
    assert item.__doc__ == "Docs."
    # The handler's own annotations are left as they were.
    assert list(inspect.unwrap(item).__annotations__) == ["n", "q", "rest", "return"]


def test_the_openapi_document_is_unchanged(app: App) -> None:
    @app.get("/items/{n}")
    @cached(60)
    async def item(n: int, q: str = "x") -> Item:
        return Item(name=q, n=n)

    @app.get("/plain/{n}")
    async def plain(n: int, q: str = "x") -> Item:
        return Item(name=q, n=n)

    paths = app.openapi()["paths"]
    cached_op = paths["/items/{n}"]["get"]
    plain_op = paths["/plain/{n}"]["get"]
    assert cached_op["parameters"] == plain_op["parameters"]
    assert cached_op["responses"] == plain_op["responses"]
    assert REQUEST_PARAM not in str(paths)


def test_dependencies_still_run_and_the_response_is_kept(app: App) -> None:
    ran, count = counting()

    def current_region(request: Request) -> str:
        count("dep")
        return request.headers.get("x-region", "eu")

    Region = Annotated[str, Depends(current_region)]
    calls: list[str] = []

    @app.get("/prices")
    @cached(60, vary="X-Region")
    async def prices(region: Region) -> dict[str, str]:
        calls.append(region)
        return {"region": region}

    with TestClient(app) as client:
        assert client.get("/prices").json() == {"region": "eu"}
        assert client.get("/prices").json() == {"region": "eu"}
        assert client.get("/prices", headers={"x-region": "us"}).json() == {"region": "us"}
    assert calls == ["eu", "us"]
    assert ran == ["dep"] * 3


def test_a_sync_handler_runs_in_the_thread_pool(app: App) -> None:
    import threading

    threads: list[str] = []

    @app.get("/sync")
    @cached(60)
    def sync_page() -> str:
        threads.append(threading.current_thread().name)
        return "from a thread"

    with TestClient(app) as client:
        assert client.get("/sync").text == "from a thread"
        assert client.get("/sync").text == "from a thread"
    assert len(threads) == 1
    assert threads[0].startswith("trellis-worker")


def test_a_view_method(app: App) -> None:
    calls, count = counting()

    @app.route("/view")
    class Page:
        @cached(60)
        async def get(self, q: str = "") -> dict[str, str]:
            count(q)
            return {"q": q}

    with TestClient(app) as client:
        assert client.get("/view?q=a").json() == {"q": "a"}
        assert client.get("/view?q=a").json() == {"q": "a"}
    assert calls == ["a"]


def test_responses_of_every_kind_are_kept_as_they_were(app: App) -> None:
    calls, count = counting()
    png = b"\x89PNG\r\n\x1a\n\xff\xfe binary"

    @app.get("/text")
    @cached(60)
    async def text() -> str:
        count("text")
        return "héllo ✓"

    @app.get("/binary")
    @cached(60)
    async def binary() -> Response:
        count("binary")
        return Response(png, media_type="image/png", headers={"x-custom": "kept"})

    @app.get("/status")
    @cached(60)
    async def status() -> dict[str, int]:
        count("status")
        return {"ok": 1}

    with TestClient(app) as client:
        for _ in range(2):
            r = client.get("/text")
            assert r.text == "héllo ✓"
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
            r = client.get("/binary")
            assert r.content == png
            assert r.headers["content-type"] == "image/png"
            assert r.headers["x-custom"] == "kept"
            assert r.headers["content-length"] == str(len(png))
            assert client.get("/status").json() == {"ok": 1}
    assert calls == ["text", "binary", "status"]


def test_max_age_and_etag_options(app: App) -> None:
    @app.get("/public")
    @cached(60, max_age=30)
    async def public() -> str:
        return "x"

    @app.get("/own")
    @cached(60, max_age=30, etag=False)
    async def own() -> Response:
        return PlainTextResponse("y", headers={"cache-control": "public, max-age=5"})

    with TestClient(app) as client:
        for _ in range(2):
            r = client.get("/public")
            assert r.headers["cache-control"] == "max-age=30"
            r = client.get("/own")
            assert r.headers["cache-control"] == "public, max-age=5"
            assert "etag" not in r.headers


# -- vary -------------------------------------------------------------------------------------


def test_vary_headers_make_entries_and_are_announced(app: App) -> None:
    calls, count = counting()

    @app.get("/hello")
    @cached(60, vary=("Accept-Language", "x-theme"))
    async def hello(request: Request) -> str:
        language = request.headers.get("accept-language", "en")
        count(language)
        return {"fr": "bonjour", "de": "hallo"}.get(language, "hello")

    with TestClient(app) as client:
        assert client.get("/hello").text == "hello"
        fr = client.get("/hello", headers={"accept-language": "fr"})
        assert fr.text == "bonjour"
        assert fr.headers["vary"] == "Accept-Language, X-Theme"
        assert client.get("/hello", headers={"accept-language": "fr"}).text == "bonjour"
        assert client.get("/hello").text == "hello"
        assert client.get("/hello", headers={"accept-language": "de"}).text == "hallo"
    assert calls == ["en", "fr", "de"]


def test_the_locale_is_part_of_the_key(app: App) -> None:
    calls, count = counting()

    def locale_middleware(inner: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            locale = dict(scope["headers"]).get(b"x-locale", b"en").decode()
            token = set_translator(None, locale)
            try:
                await inner(scope, receive, send)
            finally:
                reset_translator(token)

        return middleware

    app.add_middleware(locale_middleware)

    @app.get("/")
    @cached(60)
    async def index() -> str:
        from trellis.i18n import get_locale

        count(get_locale())
        return get_locale()

    with TestClient(app) as client:
        assert client.get("/").text == "en"
        assert client.get("/", headers={"x-locale": "fr"}).text == "fr"
        assert client.get("/", headers={"x-locale": "fr"}).text == "fr"
        assert client.get("/").text == "en"
    assert calls == ["en", "fr"]


def test_content_negotiation_keeps_one_variant_per_accept(app: App) -> None:
    calls, count = counting()

    @app.get("/report", renderers=[JSONRenderer(), TemplateRenderer("report.html")])
    @cached(60)
    async def report() -> dict[str, int]:
        count(1)
        return {"total": 3}

    app.templates = Templates(
        jinja2.DictLoader({"report.html": "<p>{{ data.total }}</p>"}), app=app
    )
    with TestClient(app) as client:
        j = client.get("/report", headers={"accept": "application/json"})
        assert j.json() == {"total": 3}
        assert j.headers["vary"] == "Accept"
        h = client.get("/report", headers={"accept": "text/html"})
        assert h.text == "<p>3</p>"
        assert client.get("/report", headers={"accept": "text/html"}).text == "<p>3</p>"
        # A response made for another Accept is not served: the last one made is kept.
        assert client.get("/report", headers={"accept": "application/json"}).json() == {"total": 3}
    assert len(calls) == 3


# -- never kept -------------------------------------------------------------------------------


def test_a_response_that_sets_a_cookie_is_never_kept(app: App) -> None:
    calls, count = counting()

    @app.get("/cookie")
    @cached(60)
    async def cookie() -> Response:
        count(1)
        response = PlainTextResponse(f"visit {len(calls)}")
        response.set_cookie("visitor", str(len(calls)))
        return response

    with TestClient(app) as client:
        assert client.get("/cookie").text == "visit 1"
        second = client.get("/cookie")
        assert second.text == "visit 2"
        assert second.headers["set-cookie"].startswith("visitor=2")
    assert len(calls) == 2


def test_a_handler_that_uses_the_session_is_not_kept(app: App) -> None:
    calls, count = counting()

    @app.get("/me")
    @cached(60)
    async def me(request: Request) -> str:
        count(1)
        return f"hello {request.session.get('name', 'stranger')}"

    @app.get("/login")
    async def login(request: Request) -> str:
        request.session["name"] = "ann"
        return "ok"

    with TestClient(app) as client:
        assert client.get("/me").text == "hello stranger"
        assert client.get("/me").text == "hello stranger"
        assert len(calls) == 2  # it read the session: maybe personal
        client.get("/login")
        assert client.get("/me").text == "hello ann"
        other = TestClient(app)
        assert other.get("/me").text == "hello stranger"
    assert len(calls) == 4


def test_visitors_with_a_session_get_their_own_answer(app: App) -> None:
    calls, count = counting()

    @app.get("/home")
    @cached(60)
    async def home() -> str:
        count(1)
        return f"render {len(calls)}"

    @app.get("/login")
    async def login(request: Request) -> str:
        request.session["user"] = "ann"
        return "ok"

    with TestClient(app) as anonymous, TestClient(app) as ann:
        assert anonymous.get("/home").text == "render 1"
        ann.get("/login")
        assert "session" in ann.cookies
        assert ann.get("/home").text == "render 2"  # not the anonymous copy
        assert ann.get("/home").text == "render 3"  # and hers is not kept
        assert anonymous.get("/home").text == "render 1"


def test_vary_cookie_keeps_a_page_per_visitor(app: App) -> None:
    calls, count = counting()

    @app.get("/me")
    @cached(60, vary="Cookie")
    async def me(request: Request) -> str:
        count(1)
        return f"hello {request.session.get('name', 'stranger')}"

    @app.get("/login/{name}")
    async def login(name: str, request: Request) -> str:
        request.session["name"] = name
        return "ok"

    with TestClient(app) as ann, TestClient(app) as bob:
        ann.get("/login/ann")
        bob.get("/login/bob")
        assert ann.get("/me").text == "hello ann"
        assert bob.get("/me").text == "hello bob"
        assert ann.get("/me").text == "hello ann"
        assert bob.get("/me").text == "hello bob"
    assert len(calls) == 2


@pytest.mark.parametrize(
    "cache_control", ["private", "no-store", "no-cache", "private, max-age=60", "No-Store"]
)
def test_private_responses_are_never_kept(app: App, cache_control: str) -> None:
    calls, count = counting()

    @app.get("/private")
    @cached(60)
    async def private() -> Response:
        count(1)
        return PlainTextResponse("mine", headers={"cache-control": cache_control})

    with TestClient(app) as client:
        client.get("/private")
        client.get("/private")
    assert len(calls) == 2


def test_requests_with_authorization_bypass_the_cache(app: App) -> None:
    calls, count = counting()

    @app.get("/data")
    @cached(60)
    async def data(request: Request) -> dict[str, str | None]:
        count(1)
        return {"auth": request.headers.get("authorization")}

    with TestClient(app) as client:
        assert client.get("/data").json() == {"auth": None}
        # Not served the public entry, and its own answer is not kept.
        assert client.get("/data", headers={"authorization": "Bearer a"}).json() == {
            "auth": "Bearer a"
        }
        assert client.get("/data", headers={"authorization": "Bearer a"}).json() == {
            "auth": "Bearer a"
        }
        assert client.get("/data").json() == {"auth": None}
    assert len(calls) == 3


def test_vary_authorization_keeps_one_entry_per_client(app: App) -> None:
    calls, count = counting()

    @app.get("/data")
    @cached(60, vary="Authorization")
    async def data(request: Request) -> dict[str, str | None]:
        count(1)
        return {"auth": request.headers.get("authorization")}

    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/data", headers={"authorization": "Bearer a"}).json() == {
                "auth": "Bearer a"
            }
            assert client.get("/data", headers={"authorization": "Bearer b"}).json() == {
                "auth": "Bearer b"
            }
    assert len(calls) == 2


def test_other_statuses_methods_and_streams_are_not_kept(app: App) -> None:
    calls, count = counting()

    @app.get("/missing")
    @cached(60)
    async def missing() -> Response:
        count("missing")
        return PlainTextResponse("no", status_code=404)

    @app.post("/post")
    @cached(60)
    async def post() -> str:
        count("post")
        return "posted"

    @app.get("/stream")
    @cached(60)
    async def stream() -> StreamingResponse:
        count("stream")

        async def chunks() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

        return StreamingResponse(chunks())

    @app.get("/vary-star")
    @cached(60)
    async def vary_star() -> Response:
        count("star")
        return PlainTextResponse("*", headers={"vary": "*"})

    @app.get("/background")
    @cached(60)
    async def background() -> Response:
        count("background")
        response = PlainTextResponse("bg")

        async def task() -> None:
            return None

        response.background = task
        return response

    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/missing").status_code == 404
            assert client.post("/post").text == "posted"
            assert client.get("/stream").text == "ab"
            assert client.get("/vary-star").text == "*"
            assert client.get("/background").text == "bg"
    assert sorted(calls) == sorted(["missing", "post", "stream", "star", "background"] * 2)


# -- keys, caches, errors ---------------------------------------------------------------------


def test_key_option_a_name_or_a_function(app: App) -> None:
    calls, count = counting()

    @app.get("/a")
    @cached(60, key="shared-page")
    async def a() -> str:
        count("a")
        return "from a"

    @app.get("/b")
    @cached(60, key="shared-page")
    async def b() -> str:
        count("b")
        return "from b"

    @app.get("/by-path/{anything:path}")
    @cached(60, key=lambda request: "by-path")  # ignores the path
    async def by_path(anything: str) -> str:
        count(anything)
        return anything

    with TestClient(app) as client:
        assert client.get("/a").text == "from a"
        assert client.get("/b").text == "from a"  # one key, one entry
        assert client.get("/by-path/x").text == "x"
        assert client.get("/by-path/y").text == "x"
    assert calls == ["a", "x"]


def test_the_key_names_the_url_locale_and_vary_values() -> None:
    def request(path: str, query: bytes, headers: list[tuple[bytes, bytes]] = []) -> Request:  # noqa: B006
        scope = {
            "type": "http",
            "method": "GET",
            "scheme": "https",
            "path": path,
            "query_string": query,
            "headers": [(b"host", b"example.com"), *headers],
        }
        return Request(scope, None)  # type: ignore[arg-type]

    key = response_key(request("/p", b"a=1&b=2"))
    assert key.startswith("trellis:response:") and len(key) < 100
    assert response_key(request("/p", b"b=2&a=1")) == key
    assert response_key(request("/p", b"b=2&&a=1&")) == key
    assert response_key(request("/q", b"a=1&b=2")) != key
    lang = [(b"accept-language", b"fr")]
    assert response_key(request("/p", b"a=1&b=2", lang)) == key  # not varied on
    assert response_key(request("/p", b"a=1&b=2", lang), ("accept-language",)) != key
    assert response_key(request("/p", b"a=1&b=2"), base="fixed") != key


def test_a_cache_given_to_the_decorator(app: App) -> None:
    own = MemoryCache()

    @app.get("/")
    @cached(60, cache=own)
    async def index() -> str:
        return "kept in own"

    with TestClient(app) as client:
        client.get("/")
    assert repr(own) == "<MemoryCache 1/10000 entries>"
    assert repr(app.state.cache) == "<MemoryCache 0/10000 entries>"


def test_without_a_cache_the_error_says_what_to_do() -> None:
    app = App(debug=True)

    @app.get("/")
    @cached(60)
    async def index() -> str:
        return "x"

    with TestClient(app) as client:
        answer = client.get("/")
    assert answer.status_code == 500
    assert "has no cache; install one" in answer.text


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="header names, one per item"):
        cached(60, vary=("Accept, Cookie",))
    with pytest.raises(ConfigurationError, match="number of seconds"):
        cached(60, max_age=-1)
    with pytest.raises(ConfigurationError, match="a string or a function"):
        cached(60, key=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decorates a handler function"):
        cached(60)(type("View", (), {}))
    with pytest.raises(TypeError, match="applied twice"):
        cached(60)(cached(60)(lambda: None))


# -- every backend, and stampedes ---------------------------------------------------------------


@pytest.mark.anyio
async def test_every_backend_serves_the_kept_response(cache: CacheBackend) -> None:
    app = App(debug=True)
    calls, count = counting()

    @app.get("/items/{n}")
    @cached(60, cache=cache, vary="Accept-Language")
    async def item(n: int) -> Item:
        count(n)
        return Item(name="é ✓", n=n)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(3):
            r = await client.get("/items/1", headers={"accept-language": "fr"})
            assert r.json() == {"name": "é ✓", "n": 1}
            assert r.headers["vary"] == "Accept-Language"
    assert calls == [1]


@pytest.mark.anyio
async def test_a_stampede_costs_one_render(cache: CacheBackend) -> None:
    app = App(debug=True)
    calls, count = counting()

    @app.get("/slow")
    @cached(60, cache=cache)
    async def slow() -> dict[str, str]:
        count(1)
        await anyio.sleep(0.3)
        return {"rendered": "once"}

    transport = httpx.ASGITransport(app=app)
    bodies: list[Any] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def get() -> None:
            bodies.append((await client.get("/slow")).json())

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(get)
    assert calls == [1]
    assert bodies == [{"rendered": "once"}] * 30


@pytest.mark.anyio
async def test_responses_that_are_not_kept_do_not_queue(cache: CacheBackend) -> None:
    app = App(debug=True)
    calls, count = counting()

    @app.get("/personal")
    @cached(60, cache=cache)
    async def personal() -> Response:
        count(1)
        await anyio.sleep(0.2)
        response = PlainTextResponse("yours")
        response.set_cookie("id", str(len(calls)))
        return response

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(client.get, "/personal")
        elapsed = anyio.current_time() - start
    assert len(calls) == 10
    assert elapsed < 1.0  # one wait for the first render, then all at once; not 10 x 0.2 s
