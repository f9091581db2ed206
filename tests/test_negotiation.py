"""Content negotiation: one handler, renderings chosen by Accept, 406 when nothing fits."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pydantic import BaseModel

from trellis import App
from trellis.exceptions import ConfigurationError
from trellis.negotiation import (
    CSVRenderer,
    JSONRenderer,
    TemplateRenderer,
    XMLRenderer,
    parse_accept,
)
from trellis.testing import TestClient


class Score(BaseModel):
    name: str
    points: int


def make_app(tmp_path: Path) -> App:
    (tmp_path / "scores.html").write_text(
        "<ul>{% for s in data %}<li>{{ s.name }}: {{ s.points }}</li>{% endfor %}</ul>"
    )
    app = App(debug=True, templates_dir=str(tmp_path))

    @app.get(
        "/scores",
        renderers=[JSONRenderer(), TemplateRenderer("scores.html"), CSVRenderer(), XMLRenderer()],
    )
    async def scores() -> list[Score]:
        return [Score(name="ann", points=3), Score(name="=cmd|x", points=1)]

    return app


def test_each_accept_gets_its_rendering(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        as_json = client.get("/scores", headers={"accept": "application/json"})
        assert as_json.json()[0] == {"name": "ann", "points": 3}
        assert as_json.headers["vary"] == "Accept"

        browser = client.get("/scores", headers={"accept": "text/html,*/*;q=0.8"})
        assert browser.headers["content-type"].startswith("text/html")
        assert "<li>ann: 3</li>" in browser.text

        table = client.get("/scores", headers={"accept": "text/csv"})
        rows = list(csv.reader(io.StringIO(table.text)))
        assert rows[0] == ["name", "points"]
        assert rows[1] == ["ann", "3"]
        assert rows[2][0] == "'=cmd|x"  # a formula is defused

        xml = client.get("/scores", headers={"accept": "application/xml"})
        root = ET.fromstring(xml.content)
        assert root.tag == "response"
        assert root.find("item/name").text == "ann"  # type: ignore[union-attr]

        assert client.get("/scores").headers["content-type"] == "application/json"


def test_nothing_acceptable_is_406_before_the_handler_runs(tmp_path: Path) -> None:
    calls: list[int] = []
    app = App(debug=True)

    @app.get("/data", renderers=[JSONRenderer()])
    async def data() -> dict[str, int]:
        calls.append(1)
        return {"n": 1}

    with TestClient(app) as client:
        response = client.get("/data", headers={"accept": "image/png"})
    assert response.status_code == 406
    assert response.json()["available"] == ["application/json"]
    assert calls == []


def test_quality_values_and_wildcards() -> None:
    assert parse_accept("text/*;q=0.5, application/json, */*;q=0.1")[0] == (
        "application/json",
        1.0,
    )
    assert parse_accept("text/html;q=0") == []
    assert parse_accept(None) == [("*/*", 1.0)]


def test_a_bad_renderer_fails_at_start_up() -> None:
    app = App(debug=True)

    @app.get("/x", renderers=["json"])
    async def x() -> dict[str, int]:
        return {}

    with pytest.raises(ConfigurationError, match="not a renderer"):
        app.build()


def test_the_api_document_lists_every_rendering(tmp_path: Path) -> None:
    from openapi_spec_validator import validate

    app = make_app(tmp_path)
    document = app.openapi()
    validate(document)
    content = document["paths"]["/scores"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["application/json", "text/html", "text/csv", "application/xml"]
    assert content["application/json"]["schema"]["type"] == "array"
