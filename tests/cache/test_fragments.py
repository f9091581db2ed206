"""``{% cache %}`` fragments: FragmentCache on the app's templates, and the extension alone."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio
import jinja2
import pytest

from trellis import App
from trellis.contrib.cache import CacheBackend, FragmentCache, MemoryCache
from trellis.contrib.cache.jinja import CacheExtension, fragment_key
from trellis.exceptions import ConfigurationError
from trellis.i18n import use_translator
from trellis.templating import render
from trellis.testing import TestClient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counter:
    """A template global that says how often the fragment body was rendered."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def environment(templates: dict[str, str], **options: Any) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader(templates), extensions=[CacheExtension], **options
    )
    return env


# -- the extension on its own --------------------------------------------------------------------


def test_a_fragment_renders_once() -> None:
    env = environment({"page": "<{% cache 'menu', 60 %}menu {{ n() }}{% endcache %}|{{ n() }}>"})
    counter = Counter()
    page = env.get_template("page")
    assert page.render(n=counter) == "<menu 1|2>"
    assert page.render(n=counter) == "<menu 1|3>"  # the fragment comes from the cache
    assert isinstance(env.fragment_cache, MemoryCache)  # type: ignore[attr-defined]


def test_key_parts_make_copies() -> None:
    tag = "{% cache 'post', 60, post.id, post.version %}"
    env = environment({"post": tag + "{{ post.id }}:{{ n() }}{% endcache %}"})
    counter = Counter()
    post = env.get_template("post")
    assert post.render(post={"id": 1, "version": 1}, n=counter) == "1:1"
    assert post.render(post={"id": 2, "version": 1}, n=counter) == "2:2"
    assert post.render(post={"id": 1, "version": 1}, n=counter) == "1:1"
    assert post.render(post={"id": 1, "version": 2}, n=counter) == "1:3"  # a new version


def test_the_name_can_be_any_expression() -> None:
    env = environment(
        {"page": "{% cache ['side', user] ~ '', 60 %}{{ user }} {{ n() }}{% endcache %}"}
    )
    counter = Counter()
    page = env.get_template("page")
    assert page.render(user="ann", n=counter) == "ann 1"
    assert page.render(user="bob", n=counter) == "bob 2"
    assert page.render(user="ann", n=counter) == "ann 1"


def test_lifetimes_on_a_clock() -> None:
    clock = Clock()
    env = environment(
        {
            "short": "{% cache 'short', 10 %}{{ n() }}{% endcache %}",
            "default": "{% cache 'default' %}{{ n() }}{% endcache %}",
            "forever": "{% cache 'forever', None %}{{ n() }}{% endcache %}",
            "never": "{% cache 'never', 0 %}{{ n() }}{% endcache %}",
        }
    )
    env.fragment_cache = MemoryCache(clock=clock)  # type: ignore[attr-defined]
    env.fragment_cache_ttl = 100  # type: ignore[attr-defined]
    counters = {name: Counter() for name in ("short", "default", "forever", "never")}

    def show(name: str) -> str:
        return env.get_template(name).render(n=counters[name])

    assert [show(name) for name in counters] == ["1", "1", "1", "1"]
    clock.now += 9
    assert [show(name) for name in counters] == ["1", "1", "1", "2"]
    clock.now += 1
    assert [show(name) for name in counters] == ["2", "1", "1", "3"]
    clock.now += 1000
    assert [show(name) for name in counters] == ["3", "2", "1", "4"]


def test_escaping_happens_once() -> None:
    env = environment(
        {"page": "{% cache 'x', 60 %}<b>{{ text }}</b>{% endcache %}"}, autoescape=True
    )
    page = env.get_template("page")
    first = page.render(text="<script>&")
    assert first == "<b>&lt;script&gt;&amp;</b>"
    assert page.render(text="ignored") == first  # not escaped a second time


def test_a_fragment_per_locale() -> None:
    env = environment({"page": "{% cache 'greeting', 60 %}{{ n() }}{% endcache %}"})
    counter = Counter()
    page = env.get_template("page")
    assert page.render(n=counter) == "1"
    with use_translator(None, "fr"):
        assert page.render(n=counter) == "2"
        assert page.render(n=counter) == "2"
    assert page.render(n=counter) == "1"
    assert fragment_key("greeting") != fragment_key("greeting", locale="fr")


def test_fragment_key_finds_the_fragment() -> None:
    env = environment({"page": "{% cache 'post', 60, 7 %}{{ n() }}{% endcache %}"})
    counter = Counter()
    page = env.get_template("page")
    assert page.render(n=counter) == "1"
    store: MemoryCache = env.fragment_cache  # type: ignore[attr-defined]
    assert store.get_now(fragment_key("post", 7)) == "1"
    anyio.run(store.delete, fragment_key("post", 7))
    assert page.render(n=counter) == "2"
    assert fragment_key("post", 7).startswith("trellis:fragment:")


@pytest.mark.parametrize("ttl", ["'soon'", "True", "[1]"])
def test_the_lifetime_is_a_number(ttl: str) -> None:
    env = environment({"page": "{% cache 'x', " + ttl + " %}x{% endcache %}"})
    with pytest.raises(TypeError, match="the lifetime is a number of seconds"):
        env.get_template("page").render()


def test_a_sync_template_needs_a_memory_cache() -> None:
    env = environment({"page": "{% cache 'x', 1 %}x{% endcache %}"})
    env.fragment_cache = object()  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="keeps fragments in a MemoryCache, not object"):
        env.get_template("page").render()


def test_the_tag_must_be_closed() -> None:
    with pytest.raises(jinja2.TemplateSyntaxError, match="endcache"):
        environment({}).from_string("{% cache 'x', 1 %}never closed")


# -- async environments: any backend, one render per key --------------------------------------


@pytest.mark.anyio
async def test_async_templates_use_any_backend(cache: CacheBackend) -> None:
    env = environment(
        {"page": "{% cache 'slow', 60, id %}{{ await_slow() }}{% endcache %}"},
        enable_async=True,
        autoescape=True,
    )
    env.fragment_cache = cache  # type: ignore[attr-defined]
    calls = itertools.count(1)

    async def slow() -> str:
        await anyio.sleep(0.2)
        return f"<i>{next(calls)}</i>"

    page = env.get_template("page")
    results: list[str] = []

    async def show() -> None:
        results.append(await page.render_async(id=1, await_slow=slow))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(show)
    assert results == ["&lt;i&gt;1&lt;/i&gt;"] * 10  # rendered once, escaped once
    assert await page.render_async(id=2, await_slow=slow) == "&lt;i&gt;2&lt;/i&gt;"
    assert await cache.get(fragment_key("slow", 1)) == "&lt;i&gt;1&lt;/i&gt;"


# -- the plugin ---------------------------------------------------------------------------------


def write_templates(folder: Path) -> Path:
    (folder / "page.html").write_text(
        "{% cache 'sidebar' %}<nav>{{ n() }}</nav>{% endcache %}<main>{{ n() }}</main>",
        encoding="utf-8",
    )
    return folder


def make_app(folder: Path, *plugins: Any) -> tuple[App, Counter]:
    app = App(debug=True, templates_dir=str(write_templates(folder)))
    for plugin in plugins:
        app.install(plugin)
    counter = Counter()

    @app.get("/")
    async def index() -> Any:
        return render("page.html", n=counter)

    return app, counter


def test_the_plugin_uses_the_apps_memory_cache(tmp_path: Path) -> None:
    cache = MemoryCache()
    app, _ = make_app(tmp_path, cache, FragmentCache(default_ttl=60))
    with TestClient(app) as client:
        assert client.get("/").text == "<nav>1</nav><main>2</main>"
        assert client.get("/").text == "<nav>1</nav><main>3</main>"
    assert app.templates.env.fragment_cache is cache
    assert cache.get_now(fragment_key("sidebar")) == "<nav>1</nav>"
    assert 59 < anyio.run(cache.ttl, fragment_key("sidebar")) <= 60


def test_with_a_shared_cache_the_fragments_stay_in_the_process(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, FragmentCache(max_entries=5))
    app.state.cache = object()  # a RedisCache, a DatabaseCache ...
    with TestClient(app) as client:
        client.get("/")
        assert client.get("/").text == "<nav>1</nav><main>3</main>"
    store = app.templates.env.fragment_cache
    assert isinstance(store, MemoryCache) and store.max_entries == 5


def test_the_plugin_refuses_a_network_cache_for_sync_templates(tmp_path: Path) -> None:
    class NotInMemory:
        pass

    app, _ = make_app(tmp_path, FragmentCache(store=NotInMemory()))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="templates render synchronously"), TestClient(app):
        pass


def test_the_plugin_needs_templates() -> None:
    app = App(debug=True)
    plugin = app.install(FragmentCache())
    app.build()
    with pytest.raises(ConfigurationError, match="the application has no templates"):
        plugin.enable()
    assert repr(plugin) == "<FragmentCache default_ttl=300.0>"
