"""Jinja2 templates: render, autoescape, inheritance, url_for/static, folders per router."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest

from trellis import App, HTMLResponse, Request, Router
from trellis.exceptions import ConfigurationError, URLBuildError
from trellis.templating import Templates, bind_request, current_request, render
from trellis.testing import TestClient

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "templates.md"
SECRET = "x" * 40


# --- helpers -------------------------------------------------------------------------------


def write(folder: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def make_app(folder: Path, files: Mapping[str, str], **settings: Any) -> App:
    """An app whose templates_dir is ``folder`` holding ``files``."""
    settings.setdefault("secret_key", SECRET)
    return App(templates_dir=str(write(folder, files)), **settings)


def page_app(folder: Path, files: Mapping[str, str], template: Any, /, **context: Any) -> App:
    """An app answering ``GET /`` with ``render(template, request, **context)``."""
    app = make_app(folder, files)

    @app.get("/")
    async def index(request: Request) -> HTMLResponse:
        return render(template, request, **context)

    return app


def get(app: App, url: str = "/", **kwargs: Any) -> Any:
    with TestClient(app, **kwargs) as client:
        return client.get(url)


@pytest.fixture
def chdir(tmp_path: Path) -> Iterator[Path]:
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


# --- render ----------------------------------------------------------------------------------


def test_render_with_context(tmp_path: Path) -> None:
    app = page_app(
        tmp_path, {"hello.html": "<h1>Hello, {{ name }}!</h1>"}, "hello.html", name="Ada"
    )
    response = get(app)
    assert response.status_code == 200
    assert response.text == "<h1>Hello, Ada!</h1>"
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_render_status_headers_and_media_type(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"feed.xml": "<feed>{{ n }}</feed>", "gone.html": "gone"})

    @app.get("/feed")
    async def feed(request: Request) -> HTMLResponse:
        return render("feed.xml", request, media_type="application/atom+xml", n=3)

    @app.get("/gone")
    async def gone(request: Request) -> HTMLResponse:
        return render("gone.html", request=request, status_code=410, headers={"x-why": "moved"})

    with TestClient(app) as client:
        response = client.get("/feed")
        assert response.text == "<feed>3</feed>"
        assert response.headers["content-type"] == "application/atom+xml"
        response = client.get("/gone")
        assert response.status_code == 410
        assert response.headers["x-why"] == "moved"
        assert response.text == "gone"


def test_render_in_sync_handler(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"a.html": "{{ request.method }} {{ x }}"})

    @app.get("/")
    def index(request: Request) -> HTMLResponse:
        return render("a.html", request, x="sync")

    assert get(app).text == "GET sync"


def test_render_picks_the_first_existing_template_of_a_list(tmp_path: Path) -> None:
    app = page_app(tmp_path, {"fallback.html": "fallback"}, ["special.html", "fallback.html"])
    assert get(app).text == "fallback"


def test_non_ascii_text_is_utf8(tmp_path: Path) -> None:
    app = page_app(tmp_path, {"a.html": "Grüße, {{ who }} ✓"}, "a.html", who="Zoë")
    response = get(app)
    assert response.content == "Grüße, Zoë ✓".encode()


# --- autoescape ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["page.html", "page.htm", "page.xml", "page.txt", "page"])
def test_autoescape_is_on_for_every_extension(tmp_path: Path, name: str) -> None:
    app = page_app(tmp_path, {name: "<p>{{ v }}</p>"}, name, v="<script>alert('x')</script>&")
    assert get(app).text == "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>"


def test_safe_filter_and_markup_are_not_escaped(tmp_path: Path) -> None:
    from markupsafe import Markup

    files = {"a.html": "{{ raw|safe }}|{{ markup }}|{{ plain }}"}
    app = page_app(
        tmp_path, files, "a.html", raw="<b>1</b>", markup=Markup("<i>2</i>"), plain="<u>"
    )
    assert get(app).text == "<b>1</b>|<i>2</i>|&lt;u&gt;"


def test_templates_from_strings_are_escaped(tmp_path: Path) -> None:
    templates = Templates(tmp_path)
    assert templates.env.from_string("{{ v }}").render(v="<a>") == "&lt;a&gt;"


def test_a_template_can_turn_escaping_off_for_itself(tmp_path: Path) -> None:
    write(tmp_path, {"mail.txt": "{% autoescape false %}Hi {{ name }} & co{% endautoescape %}"})
    assert Templates(tmp_path).render_string("mail.txt", name="<Bob>") == "Hi <Bob> & co"


def test_autoescape_can_be_chosen(tmp_path: Path) -> None:
    write(tmp_path, {"a.txt": "{{ v }}", "a.html": "{{ v }}"})
    templates = Templates(tmp_path, autoescape=jinja2.select_autoescape(["html"], default=False))
    assert templates.render_string("a.txt", v="<x>") == "<x>"
    assert templates.render_string("a.html", v="<x>") == "&lt;x&gt;"


# --- inheritance -----------------------------------------------------------------------------


def test_inheritance_and_include(tmp_path: Path) -> None:
    files = {
        "base.html": (
            "<title>{% block title %}Site{% endblock %}</title>"
            "<main>{% block content %}{% endblock %}</main>{% include 'footer.html' %}"
        ),
        "footer.html": "<footer>{{ request.path }}</footer>",
        "child.html": (
            "{% extends 'base.html' %}{% block title %}{{ t }} - {{ super() }}{% endblock %}"
            "{% block content %}<p>{{ body }}</p>{% endblock %}"
        ),
    }
    app = page_app(tmp_path, files, "child.html", t="Post", body="<hi>")
    assert get(app).text == (
        "<title>Post - Site</title><main><p>&lt;hi&gt;</p></main><footer>/</footer>"
    )


# --- url_for, static, request -----------------------------------------------------------------


def url_app(folder: Path, template: str) -> App:
    app = page_app(folder, {"u.html": template}, "u.html")

    @app.get("/posts/{id:int}")
    async def show_post(id: int) -> str:
        return str(id)

    @app.get("/search")
    async def search() -> str:
        return ""

    return app


def test_url_for_with_path_params_query_and_anchor(tmp_path: Path) -> None:
    template = (
        "{{ url_for('show_post', id=7) }} {{ url_for('search', q='a b', tag=['x', 'y']) }}"
        " {{ url_for('show_post', id=1, _anchor='c') }} {{ url_for('index') }}"
    )
    assert get(url_app(tmp_path, template)).text == (
        "/posts/7 /search?q=a+b&amp;tag=x&amp;tag=y /posts/1#c /"
    )


def test_url_for_keeps_the_root_path(tmp_path: Path) -> None:
    template = "{{ url_for('show_post', id=7) }} {{ static('app.css') }} {{ request.path }}"
    app = url_app(tmp_path, template)
    (tmp_path / "static").mkdir()
    app.static("/static", str(tmp_path / "static"))
    assert get(app, "/", root_path="/shop").text == "/shop/posts/7 /shop/static/app.css /shop/"


def test_url_for_unknown_route_is_an_error(tmp_path: Path) -> None:
    app = url_app(tmp_path, "{{ url_for('nope') }}")
    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 500
    templates = app.templates
    with pytest.raises(URLBuildError, match="no route is named 'nope'"):
        templates.render_string("u.html")


def test_static_url(tmp_path: Path) -> None:
    app = page_app(
        tmp_path, {"s.html": "{{ static('css/site.css') }}|{{ static('a b.js') }}"}, "s.html"
    )
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "site.css").write_text("body{}")
    app.static("/assets", str(tmp_path / "assets"))
    with TestClient(app) as client:
        assert client.get("/").text == "/assets/css/site.css|/assets/a%20b.js"
        assert client.get("/assets/site.css").text == "body{}"


def test_static_without_a_static_mount_says_how_to_add_one(tmp_path: Path) -> None:
    app = page_app(tmp_path, {"s.html": "{{ static('x.css') }}"}, "s.html")
    app.build()
    with pytest.raises(URLBuildError, match=r"app\.static\("):
        app.templates.render_string("s.html")


def test_request_in_context(tmp_path: Path) -> None:
    files = {"r.html": "{{ request.path }} {{ request.query['q'] }} {{ request.method }}"}
    app = page_app(tmp_path, files, "r.html")
    assert get(app, "/?q=<x>").text == "/ &lt;x&gt; GET"


def test_context_value_named_like_a_global_wins(tmp_path: Path) -> None:
    app = page_app(tmp_path, {"g.html": "{{ static }}"}, "g.html", static="mine")
    assert get(app).text == "mine"


# --- folders ---------------------------------------------------------------------------------


def test_router_folders_come_after_the_app_folder(tmp_path: Path) -> None:
    write(
        tmp_path / "blog",
        {
            "shared.html": "blog version",
            "blog/only.html": "{% extends 'base.html' %}{% block b %}blog only{% endblock %}",
        },
    )
    app = make_app(
        tmp_path / "app",
        {"shared.html": "app version", "base.html": "[{% block b %}{% endblock %}]"},
    )
    blog = Router("/blog", templates=str(tmp_path / "blog"))

    @blog.get("/shared")
    async def shared(request: Request) -> HTMLResponse:
        return render("shared.html", request)

    @blog.get("/only")
    async def only(request: Request) -> HTMLResponse:
        return render("blog/only.html", request)

    app.include(blog)
    with TestClient(app) as client:
        assert client.get("/blog/shared").text == "app version"
        assert client.get("/blog/only").text == "[blog only]"


def test_router_folder_without_app_folder(tmp_path: Path) -> None:
    write(tmp_path, {"r.html": "router {{ request.path }}"})
    app = App(secret_key=SECRET)
    router = Router(templates=str(tmp_path))

    @router.get("/r")
    async def r(request: Request) -> HTMLResponse:
        return render("r.html", request)

    app.include(router)
    assert get(app, "/r").text == "router /r"


def test_nested_router_folders_inner_first(tmp_path: Path) -> None:
    write(tmp_path / "outer", {"x.html": "outer", "o.html": "outer only"})
    write(tmp_path / "inner", {"x.html": "inner"})
    outer = Router("/o", templates=str(tmp_path / "outer"))
    inner = Router("/i", templates=str(tmp_path / "inner"))

    @inner.get("/x")
    async def x(request: Request) -> HTMLResponse:
        return render("x.html", request)

    @inner.get("/o")
    async def o(request: Request) -> HTMLResponse:
        return render("o.html", request)

    outer.include(inner)
    app = App(secret_key=SECRET)
    app.include(outer)
    with TestClient(app) as client:
        assert client.get("/o/i/x").text == "inner"
        assert client.get("/o/i/o").text == "outer only"


def test_missing_template_folder_fails_at_start_up(tmp_path: Path) -> None:
    app = App(templates_dir=str(tmp_path / "nope"), secret_key=SECRET)
    with pytest.raises(ConfigurationError, match=r"template folder .*nope.* does not exist"):
        app.build()


def test_relative_folder_is_resolved_when_created(chdir: Path) -> None:
    write(chdir / "tpl", {"a.html": "A"})
    templates = Templates("tpl")
    os.chdir(chdir.parent)
    assert templates.render_string("a.html") == "A"


def test_app_without_templates_has_none_and_render_says_how_to_configure(tmp_path: Path) -> None:
    app = App(secret_key=SECRET)

    @app.get("/")
    async def index(request: Request) -> HTMLResponse:
        return render("a.html", request)

    app.build()
    assert app.templates is None
    request = Request({"type": "http", "app": app, "headers": []})
    with pytest.raises(ConfigurationError, match="templates_dir"):
        render("a.html", request)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_missing_template_is_a_500_without_details_in_production(
    tmp_path: Path, accept: str
) -> None:
    app = page_app(tmp_path, {}, "missing.html")
    with TestClient(app) as client:
        response = client.get("/", headers={"accept": accept})
    assert response.status_code == 500
    assert "Traceback" not in response.text
    assert "missing.html" not in response.text
    assert "TemplateNotFound" not in response.text


def test_missing_template_is_named_in_debug(tmp_path: Path) -> None:
    write(tmp_path, {})
    app = App(templates_dir=str(tmp_path), debug=True)

    @app.get("/")
    async def index(request: Request) -> HTMLResponse:
        return render("missing.html", request)

    with TestClient(app) as client:
        response = client.get("/", headers={"accept": "text/html"})
    assert response.status_code == 500
    assert "TemplateNotFound" in response.text
    assert "missing.html" in response.text


def test_template_syntax_error_is_a_500(tmp_path: Path) -> None:
    app = page_app(tmp_path, {"bad.html": "{% if %}"}, "bad.html")
    response = get(app)
    assert response.status_code == 500
    assert "Traceback" not in response.text


# --- the current request -----------------------------------------------------------------------


def test_render_outside_a_request_needs_the_request() -> None:
    with pytest.raises(RuntimeError, match=r"render\(\) needs the request: pass request=request"):
        render("page.html")


def test_bind_request_makes_render_find_the_request(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"a.html": "{{ request.path }} {{ url_for('index') }} {{ n }}"})

    @app.get("/p")
    async def index(request: Request) -> HTMLResponse:
        before = current_request.get()  # App binds it already; bind_request nests
        with bind_request(request) as bound:
            assert bound is request
            assert current_request.get() is request
            response = render("a.html", n=1)
        assert current_request.get() is before
        return response

    assert get(app, "/p").text == "/p /p 1"


async def async_page(id: int) -> HTMLResponse:
    return render("a.html", id=id)


def sync_page(id: int) -> HTMLResponse:
    return render("a.html", id=id)


@pytest.mark.parametrize("handler", [async_page, sync_page])
def test_render_inside_a_handler_without_the_request(tmp_path: Path, handler: Any) -> None:
    app = make_app(tmp_path, {"a.html": "{{ request.path }} {{ url_for('page', id=1) }} {{ id }}"})
    app.add_route("/a/{id:int}", handler, name="page")
    assert get(app, "/a/5").text == "/a/5 /a/1 5"


def test_render_in_hooks_and_with_router_folders_only(tmp_path: Path) -> None:
    write(tmp_path, {"closed.html": "closed {{ request.path }}", "p.html": "page"})
    router = Router("/r", templates=str(tmp_path))

    @router.before_request
    def closed(request: Request) -> HTMLResponse | None:
        return render("closed.html", status_code=503) if "closed" in request.query else None

    @router.get("/p")
    async def p() -> HTMLResponse:
        return render("p.html")

    app = App(secret_key=SECRET)
    app.include(router)
    with TestClient(app) as client:
        assert client.get("/r/p").text == "page"
        response = client.get("/r/p?closed")
        assert response.status_code == 503
        assert response.text == "closed /r/p"


# --- the Templates object --------------------------------------------------------------------


def test_filters_globals_and_context_processors(tmp_path: Path) -> None:
    write(tmp_path, {"a.html": "{{ 1234|money }} {{ site }} {{ twice(2) }} {{ user }} {{ n }}"})
    templates = Templates(tmp_path, globals={"site": "S"}, filters={"money": lambda c: c / 100})
    templates.add_global("twice", lambda v: v * 2)
    templates.add_filter("money", lambda c: f"{c / 100:.2f} EUR")
    seen: list[Any] = []

    def processor(request: Request | None) -> dict[str, Any]:
        seen.append(request)
        return {"user": "ada", "n": "from processor"}

    templates.add_context_processor(processor)
    assert templates.render_string("a.html", n=5) == "12.34 EUR S 4 ada 5"
    assert seen == [None]


def test_context_processor_gets_the_request(tmp_path: Path) -> None:
    app = page_app(tmp_path, {"a.html": "{{ where }}"}, "a.html")
    app.build()
    app.templates.add_context_processor(lambda request: {"where": request.path})
    assert get(app, "/?x=1").text == "/"


def test_add_directory_and_order(tmp_path: Path) -> None:
    write(tmp_path / "a", {"x.html": "a"})
    write(tmp_path / "b", {"x.html": "b", "y.html": "b"})
    templates = Templates(tmp_path / "a")
    assert templates.render_string("x.html") == "a"
    with pytest.raises(jinja2.TemplateNotFound):
        templates.render_string("y.html")
    templates.add_directory(tmp_path / "b")
    assert templates.render_string("y.html") == "b"
    assert templates.render_string("x.html") == "a"
    templates.add_directory(str(tmp_path / "b"), first=True)
    assert templates.render_string("x.html") == "b"
    assert len(templates.loaders) == 3
    with pytest.raises(ConfigurationError, match="does not exist"):
        templates.add_directory(tmp_path / "c")


def test_add_package_for_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path / "pkgs",
        {
            "shop_plugin/__init__.py": "",
            "shop_plugin/templates/shop/cart.html": "cart {{ n }}",
            "shop_plugin/templates/over.html": "plugin",
            "shop_plugin/layouts/l.html": "layout",
        },
    )
    write(tmp_path / "app", {"over.html": "project"})
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    templates = Templates([tmp_path / "app"])
    templates.add_package("shop_plugin")
    templates.add_package("shop_plugin", "layouts")
    assert templates.render_string("shop/cart.html", n=2) == "cart 2"
    assert templates.render_string("over.html") == "project"
    assert templates.render_string("l.html") == "layout"
    sys.modules.pop("shop_plugin", None)


def test_loaders_are_accepted_as_sources(tmp_path: Path) -> None:
    write(tmp_path, {"f.html": "file"})
    templates = Templates([jinja2.DictLoader({"d.html": "dict {{ v }}"}), str(tmp_path)])
    assert templates.render_string("d.html", v="<") == "dict &lt;"
    assert templates.render_string("f.html") == "file"


def test_templates_render_method(tmp_path: Path) -> None:
    write(tmp_path, {"a.html": "{{ x }} {{ request }}"})
    response = Templates(tmp_path).render("a.html", status_code=201, x=1)
    assert isinstance(response, HTMLResponse)
    assert response.status_code == 201
    assert response.body == b"1 None"


def test_url_for_without_app_or_request_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, {"u.html": "{{ url_for('x') }}"})
    with pytest.raises(ConfigurationError, match="needs the app"):
        Templates(tmp_path).render_string("u.html")


def test_url_for_with_app_but_no_request(tmp_path: Path) -> None:
    app = page_app(tmp_path, {"mail.html": "{{ url_for('index', ref='mail') }}"}, "mail.html")
    app.build()
    assert app.templates.render_string("mail.html") == "/?ref=mail"


def test_url_for_in_imported_macros_uses_the_current_request(tmp_path: Path) -> None:
    files = {
        "macros.html": "{% macro link() %}{{ url_for('index') }}{% endmacro %}",
        "m.html": "{% import 'macros.html' as m %}{{ m.link() }}",
    }
    app = make_app(tmp_path, files)

    @app.get("/")
    async def index(request: Request) -> HTMLResponse:
        with bind_request(request):
            return render("m.html")

    assert get(app, "/", root_path="/r").text == "/r/"


def test_auto_reload_follows_debug(tmp_path: Path) -> None:
    write(tmp_path, {"a.html": "one"})
    assert Templates(tmp_path, app=App(debug=True)).env.auto_reload is True
    assert Templates(tmp_path, app=App(secret_key=SECRET)).env.auto_reload is False
    assert Templates(tmp_path).env.auto_reload is False
    templates = Templates(tmp_path, auto_reload=True)
    assert templates.render_string("a.html") == "one"
    path = tmp_path / "a.html"
    path.write_text("two")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert templates.render_string("a.html") == "two"


def test_env_options_and_extensions(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.html": "{% for i in [1, 2, 3] %}{% if i == 2 %}{% break %}{% endif %}"
            "{{ i }}{% endfor %}{{ missing }}"
        },
    )
    templates = Templates(
        tmp_path, extensions=["jinja2.ext.loopcontrols"], undefined=jinja2.StrictUndefined
    )
    with pytest.raises(jinja2.UndefinedError):
        templates.render_string("a.html")
    assert templates.render_string("a.html", missing="!") == "1!"


# --- import cost and docs ----------------------------------------------------------------------


def test_import_trellis_does_not_import_jinja2() -> None:
    code = "import sys, trellis; assert 'jinja2' not in sys.modules, 'jinja2 imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docs_examples_run(chdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_SECRET_KEY", SECRET)
    text = DOCS_PAGE.read_text(encoding="utf-8")
    # Every Jinja block that starts with ``{# path #}`` is a file the examples use.
    for block in re.findall(r"```jinja\n(.*?)```", text, re.S):
        first, _, body = block.partition("\n")
        match = re.fullmatch(r"\{# (\S+) #\}", first.strip())
        assert match, f"a jinja block in docs/templates.md does not name its file: {first!r}"
        write(chdir, {match.group(1): body})
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/templates.md has no Python examples"
    for block in blocks:
        namespace: dict[str, Any] = {"__name__": "docs_example"}
        code = compile(block, str(DOCS_PAGE), "exec", dont_inherit=True)
        exec(code, namespace)
        app = namespace.get("app")
        if isinstance(app, App):
            app.build()
            assert isinstance(app.templates, Templates)
            if "hello" in namespace:  # the setup example serves a page
                assert get(app, "/hello/<Ada>").text == "<h1>Hello, &lt;Ada&gt;!</h1>"
            if "blog" in namespace:  # the router example finds its own folder
                page = get(app, "/blog").text
                assert "<title>My site</title>" in page
                assert "<p>No posts yet.</p>" in page
    # the templates shown are valid Jinja2 (parsing checks syntax; filters come at compile)
    env = Templates(chdir).env
    for name in env.list_templates():
        env.parse(Path(name).read_text(encoding="utf-8"))
