"""``FragmentCache``: the ``{% cache %}`` tag in the application's templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.contrib.cache._protocol import CacheBackend

__all__ = ["FragmentCache"]


class FragmentCache:
    """Plugin: ``{% cache name, ttl, *parts %} ... {% endcache %}`` in the app's templates.

    ```python
    from pathlib import Path

    from trellis import App, HTMLResponse
    from trellis.contrib.cache import FragmentCache, MemoryCache
    from trellis.templating import render
    from trellis.testing import TestClient

    Path("templates").mkdir()
    Path("templates/home.html").write_text("{% cache 'menu', 60 %}{{ menu() }}{% endcache %}")

    app = App(templates_dir="templates")
    app.install(MemoryCache())  # app.state.cache: the fragments go there too
    app.install(FragmentCache())
    built: list[str] = []


    def menu() -> str:
        built.append("menu")
        return "Home | Blog"


    @app.get("/")
    async def home() -> HTMLResponse:
        return render("home.html", menu=menu)


    with TestClient(app) as client:
        assert client.get("/").text == client.get("/").text == "Home | Blog"
    assert built == ["menu"]  # rendered once, then served from the cache
    ```

    At start-up it adds ``trellis.contrib.cache.jinja.CacheExtension`` to ``app.templates``.
    Fragments are kept in a ``MemoryCache``: the application's own cache when it is one,
    else one of the plugin's (``max_entries``), because templates render synchronously and
    a shared cache (Redis, a database) would block the event loop. Each process keeps its
    own copies: put what the fragment shows in its key (``post.updated_at``), or give it a
    short lifetime.

    Args:
        store: Where the fragments go (a ``MemoryCache``; any backend for templates in
            async mode); ``None``: as above.
        default_ttl: The lifetime of a fragment whose tag gives none, in seconds (``None``:
            until evicted).
        max_entries: The size of the plugin's own ``MemoryCache``.
    """

    def __init__(
        self,
        store: CacheBackend | None = None,
        *,
        default_ttl: float | None = 300.0,
        max_entries: int = 1000,
    ) -> None:
        self.store = store
        self.default_ttl = default_ttl
        self.max_entries = max_entries
        self.app: App | None = None

    def setup(self, app: App) -> None:
        """Install on ``app``: the tag is added to its templates when the app starts."""
        self.app = app
        app.on_startup(self.enable)

    def enable(self) -> None:
        """Add the ``{% cache %}`` tag to ``app.templates`` (the app calls this at start-up).

        Raises:
            ConfigurationError: the application has no templates, or ``store`` cannot serve
                templates that render synchronously.
        """
        from trellis.contrib.cache.jinja import CacheExtension
        from trellis.contrib.cache.memory import MemoryCache

        app = self.app
        assert app is not None, "FragmentCache.enable() before app.install(...)"
        templates: Any = app.templates
        if templates is None:
            raise ConfigurationError(
                "FragmentCache: the application has no templates; set templates_dir (or"
                " Router(templates=...)), or do not install FragmentCache"
            )
        env = templates.env
        store = self.store
        if store is None:
            shared = getattr(app.state, "cache", None)
            store = shared if isinstance(shared, MemoryCache) else MemoryCache(self.max_entries)
        if not env.is_async and not isinstance(store, MemoryCache):
            raise ConfigurationError(
                f"FragmentCache(store={store!r}): templates render synchronously, so fragments"
                " live in a MemoryCache (a network cache would block the event loop for each"
                " fragment); leave store out, or pass a MemoryCache"
            )
        env.add_extension(CacheExtension)
        env.fragment_cache = store
        env.fragment_cache_ttl = self.default_ttl

    def __repr__(self) -> str:
        return f"<FragmentCache default_ttl={self.default_ttl!r}>"
