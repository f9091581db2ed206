"""The API docs plugin: /openapi.json, and Swagger UI and ReDoc pages served with no network.

The pages must reference nothing outside the application (no CDN, no Google Fonts), every asset
they load must be served from the package, and their Content-Security-Policy must allow
scripts from 'self' only (so the pages hold no inline script).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import subprocess
import types
from html.parser import HTMLParser
from typing import Any, cast

import pytest

from trellis import App
from trellis.exceptions import ConfigurationError
from trellis.openapi import APIDocs, assets_version, redoc_html, swagger_ui_html
from trellis.openapi.docs import ASSETS_DIR, REDOC_CSP, SWAGGER_UI_CSP
from trellis.testing import TestClient

SAMPLE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Pet Store", "version": "1.0.0"},
    "paths": {
        "/pets/{id}": {
            "get": {
                "operationId": "get_pet",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": {
                        "description": "A pet",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}
                        },
                    }
                },
            }
        }
    },
    "components": {
        "schemas": {
            "Pet": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                "required": ["id", "name"],
            }
        }
    },
}

PAGES = ("/docs", "/redoc")


def docs_app(**options: Any) -> App:
    app = App(debug=True)
    options.setdefault("openapi", lambda: SAMPLE)
    app.install(APIDocs(**options))
    return app


class Page(HTMLParser):
    """The tags of a page, with their attributes (entities decoded, as a browser sees them)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)

    def find(self, tag: str, **attrs: str) -> dict[str, str]:
        for name, found in self.tags:
            if name == tag and all(found.get(k) == v for k, v in attrs.items()):
                return found
        raise AssertionError(f"no <{tag} {attrs}> in the page")

    def urls(self) -> list[str]:
        return [
            attrs[key]
            for _, attrs in self.tags
            for key in ("src", "href", "data-spec-url")
            if key in attrs
        ]


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# -- the document ----------------------------------------------------------------------------------


def test_openapi_json_is_built_once_and_served_as_json() -> None:
    calls = []

    def build() -> dict[str, Any]:
        calls.append(1)
        return SAMPLE

    with TestClient(docs_app(openapi=build)) as client:
        assert calls == []  # nothing is built before it is asked for
        first = client.get("/openapi.json")
        second = client.get("/openapi.json")
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json() == second.json() == SAMPLE
    assert calls == [1]


def test_a_document_that_fails_to_build_is_not_kept() -> None:
    attempts = []

    def flaky() -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("not ready")
        return SAMPLE

    with TestClient(docs_app(openapi=flaky)) as client:
        assert client.get("/openapi.json").status_code == 500
        assert client.get("/openapi.json").json() == SAMPLE


def test_the_document_comes_from_app_openapi_by_default() -> None:
    class AppWithSchema(App):
        def openapi(self) -> dict[str, Any]:
            return {**SAMPLE, "info": {"title": "From the app", "version": "2"}}

    app = AppWithSchema(debug=True)
    app.install(APIDocs())
    with TestClient(app) as client:
        assert client.get("/openapi.json").json()["info"]["title"] == "From the app"
        assert "<title>From the app - Swagger UI</title>" in client.get("/docs").text


def test_without_a_document_source_setup_says_what_to_do() -> None:
    bare = types.SimpleNamespace()  # an app with no openapi() method
    with pytest.raises(ConfigurationError, match=r"APIDocs\(openapi=\.\.\.\)"):
        APIDocs().setup(cast(Any, bare))


# -- the pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_pages_reference_only_local_assets_that_are_served(path: str) -> None:
    with TestClient(docs_app()) as client:
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        text = response.text
        for remote in ("http://", "https://", "//cdn", "cdn.", "googleapis", "gstatic", "unpkg"):
            assert remote not in text.lower()
        page = Page(text)
        urls = page.urls()
        assert urls
        prefix = f"/docs/assets/{assets_version()}/"
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            if url == "/openapi.json":
                continue
            assert url.startswith(prefix), url
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert "immutable" in asset.headers["cache-control"]
            if url.endswith(".js"):
                assert asset.headers["content-type"] == "text/javascript; charset=utf-8"
            elif url.endswith(".css"):
                assert asset.headers["content-type"] == "text/css; charset=utf-8"
            elif url.endswith(".png"):
                assert asset.headers["content-type"] == "image/png"
                assert asset.content.startswith(b"\x89PNG")
            else:
                raise AssertionError(f"unexpected asset {url}")
            if url.endswith(("-bundle.js", "standalone.js", ".css")):
                assert len(asset.content) > 100_000, url  # the real bundle, not a stub
        scripts = [attrs["src"] for tag, attrs in page.tags if tag == "script"]
        if path == "/docs":
            assert scripts == [
                prefix + "swagger-ui/swagger-ui-bundle.js",
                prefix + "trellis-swagger-ui.js",
            ]
        else:
            assert scripts == [prefix + "redoc/redoc.standalone.js", prefix + "trellis-redoc.js"]


@pytest.mark.parametrize(("path", "policy"), [("/docs", SWAGGER_UI_CSP), ("/redoc", REDOC_CSP)])
def test_pages_send_a_strict_csp_and_hold_no_inline_script(path: str, policy: str) -> None:
    with TestClient(docs_app()) as client:
        response = client.get(path)
    header = response.headers["content-security-policy"]
    assert header == policy
    directives = csp_directives(header)
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert "'unsafe-eval'" not in header
    for values in directives.values():
        assert not any(v.startswith(("http:", "https:")) or v == "*" for v in values)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    page = Page(response.text)
    assert page.inline_scripts == []
    for _, attrs in page.tags:
        assert not [name for name in attrs if name.startswith("on")]  # no inline handlers


def test_the_redoc_worker_is_allowed_only_on_the_redoc_page() -> None:
    assert csp_directives(REDOC_CSP)["worker-src"] == ["'self'", "blob:"]
    assert "worker-src" not in csp_directives(SWAGGER_UI_CSP)


def test_page_settings_travel_as_json_in_data_attributes() -> None:
    with TestClient(docs_app()) as client:
        swagger = Page(client.get("/docs").text).find("div", id="swagger-ui")
        redoc = Page(client.get("/redoc").text).find("div", id="redoc")
    config = json.loads(swagger["data-config"])
    assert config["url"] == "/openapi.json"
    assert config["dom_id"] == "#swagger-ui"
    assert config["validatorUrl"] is None  # no request to validator.swagger.io
    assert config["queryConfigEnabled"] is False
    assert config["oauth2RedirectUrl"] == "/docs/oauth2-redirect"
    assert "data-oauth" not in swagger
    assert redoc["data-spec-url"] == "/openapi.json"
    options = json.loads(redoc["data-options"])
    assert "sans-serif" in options["theme"]["typography"]["fontFamily"]


def test_options_reach_the_pages() -> None:
    app = docs_app(
        swagger_ui_options={"docExpansion": "none", "deepLinking": False},
        swagger_ui_oauth={"clientId": "docs", "usePkceWithAuthorizationCodeGrant": True},
        redoc_options={"hideDownloadButton": True},
    )
    with TestClient(app) as client:
        swagger = Page(client.get("/docs").text).find("div", id="swagger-ui")
        redoc = Page(client.get("/redoc").text).find("div", id="redoc")
    config = json.loads(swagger["data-config"])
    assert config["docExpansion"] == "none"
    assert config["deepLinking"] is False
    assert json.loads(swagger["data-oauth"]) == {
        "clientId": "docs",
        "usePkceWithAuthorizationCodeGrant": True,
    }
    options = json.loads(redoc["data-options"])
    assert options["hideDownloadButton"] is True
    assert "theme" in options  # the defaults stay unless overridden


EVIL = "</title></div>\"'><script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.mark.parametrize("path", PAGES)
def test_title_and_options_cannot_inject_markup(path: str) -> None:
    app = docs_app(
        title=EVIL,
        swagger_ui_options={"x": EVIL},
        swagger_ui_oauth={"clientId": EVIL},
        redoc_options={"x": EVIL},
    )
    with TestClient(app) as client:
        text = client.get(path).text
    assert "<script>alert" not in text
    assert "<img" not in text
    page = Page(text)
    assert page.inline_scripts == []
    assert [tag for tag, _ in page.tags].count("script") == 2
    suffix = " - Swagger UI" if path == "/docs" else " - ReDoc"
    assert f"<title>{html.escape(EVIL)}{suffix}</title>" in text
    # and the values arrive intact once the browser decodes the attribute
    if path == "/docs":
        div = page.find("div", id="swagger-ui")
        assert json.loads(div["data-config"])["x"] == EVIL
        assert json.loads(div["data-oauth"])["clientId"] == EVIL
    else:
        assert json.loads(page.find("div", id="redoc")["data-options"])["x"] == EVIL


def test_page_builders_escape_urls() -> None:
    evil_url = '/x"><script>alert(1)</script>'
    for text in (
        swagger_ui_html(openapi_url=evil_url, title="t", assets_url=evil_url),
        redoc_html(openapi_url=evil_url, title="t", assets_url=evil_url),
    ):
        assert "<script>alert" not in text
        assert Page(text).inline_scripts == []


def test_the_title_defaults_to_the_documents_title() -> None:
    untitled = {**SAMPLE, "info": {"version": "1"}}
    with TestClient(docs_app()) as client:
        assert "<title>Pet Store - Swagger UI</title>" in client.get("/docs").text
        assert "<title>Pet Store - ReDoc</title>" in client.get("/redoc").text
    with TestClient(docs_app(openapi=lambda: untitled)) as client:
        assert "<title>API - ReDoc</title>" in client.get("/redoc").text


def test_head_is_answered() -> None:
    with TestClient(docs_app()) as client:
        for path in (*PAGES, "/openapi.json"):
            response = client.head(path)
            assert response.status_code == 200
            assert response.content == b""


# -- OAuth2 redirect -------------------------------------------------------------------------------


def test_oauth2_redirect_page_runs_swagger_uis_script() -> None:
    with TestClient(docs_app()) as client:
        response = client.get("/docs/oauth2-redirect")
        assert response.status_code == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page = Page(response.text)
        assert page.inline_scripts == []
        (src,) = [attrs["src"] for tag, attrs in page.tags if tag == "script"]
        assert src == f"/docs/assets/{assets_version()}/swagger-ui/oauth2-redirect.js"
        script = client.get(src)
        assert script.status_code == 200
        assert b"swaggerUIRedirectOauth2" in script.content


def test_oauth2_redirect_can_move_or_be_off() -> None:
    with TestClient(docs_app(oauth2_redirect_url="/auth/callback")) as client:
        assert client.get("/auth/callback").status_code == 200
        div = Page(client.get("/docs").text).find("div", id="swagger-ui")
        assert json.loads(div["data-config"])["oauth2RedirectUrl"] == "/auth/callback"
    with TestClient(docs_app(oauth2_redirect_url=None)) as client:
        assert client.get("/docs/oauth2-redirect").status_code == 404
        div = Page(client.get("/docs").text).find("div", id="swagger-ui")
        assert "oauth2RedirectUrl" not in json.loads(div["data-config"])
    with TestClient(docs_app(docs_url=None)) as client:
        assert client.get("/docs/oauth2-redirect").status_code == 404


# -- configuration ---------------------------------------------------------------------------------


def test_each_part_can_be_turned_off() -> None:
    with TestClient(docs_app(docs_url=None)) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 200
        assert client.get("/openapi.json").status_code == 200
    with TestClient(docs_app(redoc_url=None)) as client:
        assert client.get("/redoc").status_code == 404
        assert client.get("/docs").status_code == 200
    with TestClient(docs_app(docs_url=None, redoc_url=None)) as client:
        assert client.get("/openapi.json").status_code == 200
        asset = f"/docs/assets/{assets_version()}/trellis-redoc.js"
        assert client.get(asset).status_code == 404  # no pages, no assets
    with TestClient(docs_app(openapi_url=None, docs_url=None, redoc_url=None)) as client:
        assert client.get("/openapi.json").status_code == 404


def test_pages_without_the_document_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="openapi_url=None"):
        APIDocs(openapi_url=None)


def test_urls_can_move() -> None:
    app = docs_app(
        openapi_url="/api/schema.json",
        docs_url="/api/docs",
        redoc_url="/api/reference",
        assets_url="/static/api-docs",
    )
    with TestClient(app) as client:
        assert client.get("/api/schema.json").json() == SAMPLE
        for path in ("/api/docs", "/api/reference"):
            page = Page(client.get(path).text)
            for url in page.urls():
                assert url == "/api/schema.json" or url.startswith(
                    f"/static/api-docs/{assets_version()}/"
                )
                assert client.get(url).status_code == 200
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert client.get(path).status_code == 404


def test_behind_a_path_prefix_the_pages_link_to_prefixed_urls() -> None:
    with TestClient(docs_app(), root_path="/service") as client:
        for path in PAGES:
            page = Page(client.get(path).text)
            for url in page.urls():
                assert url.startswith("/service/"), url
                assert client.get(url.removeprefix("/service")).status_code == 200


@pytest.mark.parametrize(
    "url", ["docs", "/docs/", "/docs?x=1", "/docs#x", "/{id}", "/a b", '/a"b', "//evil.example"]
)
def test_urls_must_be_plain_paths(url: str) -> None:
    with pytest.raises(ConfigurationError, match="docs_url"):
        APIDocs(openapi=lambda: SAMPLE, docs_url=url)


def test_urls_must_differ() -> None:
    with pytest.raises(ConfigurationError, match="docs_url and redoc_url"):
        APIDocs(openapi=lambda: SAMPLE, docs_url="/x", redoc_url="/x")


def test_options_must_be_json() -> None:
    with pytest.raises(ConfigurationError, match="swagger_ui_options"):
        APIDocs(openapi=lambda: SAMPLE, swagger_ui_options={"requestInterceptor": print})
    with pytest.raises(ConfigurationError, match="redoc_options"):
        APIDocs(openapi=lambda: SAMPLE, redoc_options={"x": float("nan")})


def test_csp_can_be_replaced_or_left_to_middleware() -> None:
    with TestClient(docs_app(csp="default-src 'self'")) as client:
        for path in (*PAGES, "/docs/oauth2-redirect"):
            assert client.get(path).headers["content-security-policy"] == "default-src 'self'"
    with TestClient(docs_app(csp=False)) as client:
        for path in (*PAGES, "/docs/oauth2-redirect"):
            assert "content-security-policy" not in client.get(path).headers
    with pytest.raises(ConfigurationError, match="CR, LF"):
        APIDocs(openapi=lambda: SAMPLE, csp="default-src 'self'\r\nx: y")


def test_routes_are_named_and_left_out_of_the_schema() -> None:
    app = docs_app()
    names = {row["name"] for row in app.describe_routes()}
    assert {"openapi", "swagger_ui", "redoc", "swagger_ui_oauth2_redirect"} <= names
    assert "api_docs_assets" in names
    assert [r.options["include_in_schema"] for r in app.routes] == [False] * 4
    assert app.url_for("api_docs_assets", path="trellis-redoc.js") == (
        f"/docs/assets/{assets_version()}/trellis-redoc.js"
    )


# -- the assets ------------------------------------------------------------------------------------


def test_assets_outside_the_folder_or_of_another_version_are_not_served() -> None:
    with TestClient(docs_app()) as client:
        base = f"/docs/assets/{assets_version()}"
        assert client.get(f"{base}/../docs.py").status_code == 404
        assert client.get(f"{base}/%2e%2e/docs.py").status_code == 404
        assert client.get("/docs/assets/000000000000/trellis-redoc.js").status_code == 404
        assert client.get(f"{base}/trellis-redoc.js").status_code == 200


def _vendored() -> tuple[dict[str, str], list[str]]:
    """Return the sha256 listed for each file in VERSIONS.txt, and its other lines."""
    listed: dict[str, str] = {}
    other: list[str] = []
    for line in (ASSETS_DIR / "VERSIONS.txt").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([0-9a-f]{64})  (\S+)", line)
        if match:
            listed[match.group(2)] = match.group(1)
        elif line and not line.startswith("#"):
            other.append(line)
    return listed, other


def test_vendored_files_match_versions_txt() -> None:
    listed, packages = _vendored()
    on_disk = sorted(
        p.relative_to(ASSETS_DIR).as_posix()
        for folder in ("swagger-ui", "redoc")
        for p in (ASSETS_DIR / folder).rglob("*")
        if p.is_file()
    )
    assert sorted(listed) == on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((ASSETS_DIR / name).read_bytes()).hexdigest() == digest, name
    versions = {line.split()[0]: line.split()[1] for line in packages}
    assert versions.keys() == {"swagger-ui-dist", "redoc"}
    assert versions["swagger-ui-dist"].startswith("5.")
    assert versions["redoc"].startswith("2.")
    # the licences ship with the code they cover
    for name in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert name in listed
    assert "Apache License" in (ASSETS_DIR / "swagger-ui/LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in (ASSETS_DIR / "redoc/LICENSE").read_text(encoding="utf-8")


def test_the_stylesheet_loads_nothing_remote() -> None:
    css = (ASSETS_DIR / "swagger-ui" / "swagger-ui.css").read_text(encoding="utf-8")
    assert "@import" not in css
    assert re.findall(r"url\(\s*(?!['\"]?data:)", css) == []


def test_the_assets_stay_a_reasonable_size() -> None:
    total = sum(p.stat().st_size for p in ASSETS_DIR.rglob("*") if p.is_file())
    assert total < 4_000_000


# -- the start-up scripts, run with Node against stand-ins for the bundles -------------------------

_NODE_HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const [script, attrsJson] = process.argv.slice(1);
const attrs = JSON.parse(attrsJson);
const calls = [];
const node = { getAttribute: (name) => (name in attrs ? attrs[name] : null) };
const window = {
  location: { href: "https://example.test/service/docs" },
  SwaggerUIBundle: (config) => {
    calls.push(["SwaggerUIBundle", config]);
    return { initOAuth: (options) => calls.push(["initOAuth", options]) };
  },
  Redoc: {
    init: (url, options, element) => calls.push(["Redoc.init", url, options, element === node]),
  },
};
const context = { window, URL, JSON, document: { getElementById: () => node } };
vm.runInNewContext(fs.readFileSync(script, "utf8"), context);
console.log(JSON.stringify(calls));
"""


def _run_startup_script(name: str, attrs: dict[str, str]) -> list[Any]:
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, "-e", _NODE_HARNESS, str(ASSETS_DIR / name), json.dumps(attrs)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return cast(list[Any], json.loads(result.stdout))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page scripts")
def test_the_startup_scripts_read_the_settings_the_pages_write() -> None:
    app = docs_app(title=EVIL, swagger_ui_oauth={"clientId": EVIL}, redoc_options={"x": EVIL})
    with TestClient(app, root_path="/service") as client:
        swagger = Page(client.get("/docs").text).find("div", id="swagger-ui")
        redoc = Page(client.get("/redoc").text).find("div", id="redoc")
    calls = _run_startup_script("trellis-swagger-ui.js", swagger)
    assert [c[0] for c in calls] == ["SwaggerUIBundle", "initOAuth"]
    config = calls[0][1]
    assert config["url"] == "/service/openapi.json"
    assert config["dom_id"] == "#swagger-ui"
    # made absolute for the identity provider
    assert config["oauth2RedirectUrl"] == "https://example.test/service/docs/oauth2-redirect"
    assert calls[1][1] == {"clientId": EVIL}
    calls = _run_startup_script("trellis-redoc.js", redoc)
    assert calls[0][:2] == ["Redoc.init", "/service/openapi.json"]
    assert calls[0][2]["x"] == EVIL
    assert calls[0][3] is True  # rendered into the page's element
