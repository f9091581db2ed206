"""The dashboard: request metrics (recorder, middleware, charts), counts, error tickets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from admin_helpers import login, make_app, seed

from trellis.contrib.admin import MetricsRecorder
from trellis.contrib.admin._charts import Series, chart, format_number, nice_ceiling
from trellis.contrib.admin.metrics import BUCKETS
from trellis.testing import TestClient

# -- the recorder --------------------------------------------------------------------------------


def test_the_recorder_counts_per_minute() -> None:
    recorder = MetricsRecorder(minutes=3)
    for n in range(100):
        recorder.record(0.001 * (n + 1), 200, now=600.0 + n * 0.1)  # 1 ms .. 100 ms
    recorder.record(2.0, 500, now=630.0)
    recorder.record(0.5, 503, now=661.0)
    series = recorder.series(now=661.0)
    assert [m.start for m in series] == [540.0, 600.0, 660.0]
    assert [(m.requests, m.errors) for m in series] == [(0, 0), (101, 1), (1, 1)]
    assert series[0].p50 is None and series[0].p95 is None
    minute = series[1]
    assert minute.p50 is not None and minute.p95 is not None
    assert 0.045 <= minute.p50 <= 0.065  # the histogram is within ~13%
    assert 0.085 <= minute.p95 <= 0.12
    totals = recorder.totals(now=661.0)
    assert (totals.requests, totals.errors) == (102, 2)


def test_the_ring_forgets_old_minutes() -> None:
    recorder = MetricsRecorder(minutes=2)
    recorder.record(0.01, 200, now=0.0)
    recorder.record(0.01, 200, now=60.0)
    recorder.record(0.01, 200, now=120.0)  # reuses the slot of minute 0
    assert [m.requests for m in recorder.series(now=120.0)] == [1, 1]
    assert recorder.series(now=10_000.0)[-1].requests == 0
    assert recorder.totals(now=10_000.0).requests == 0
    recorder.clear()
    assert recorder.totals(now=120.0).requests == 0
    with pytest.raises(ValueError, match="at least one minute"):
        MetricsRecorder(minutes=0)


def test_a_young_process_charts_from_its_start() -> None:
    recorder = MetricsRecorder(minutes=60)
    recorder.started = 60_000.0
    recorder.record(0.01, 200, now=60_030.0)
    series = recorder.series(now=60_030.0)
    assert len(series) == 15 and series[-1].requests == 1  # 15 minutes at least
    series = recorder.series(now=60_000.0 + 20 * 60)
    assert series[0].start == 60_000.0 and len(series) == 21
    assert len(recorder.series(now=600_000.0)) == 60  # an old process: the whole hour


def test_slow_requests_land_in_the_last_bucket() -> None:
    recorder = MetricsRecorder(minutes=1)
    recorder.record(3600.0, 200, now=0.0)
    assert recorder.series(now=0.0)[0].p95 == BUCKETS[-1]


# -- the charts ----------------------------------------------------------------------------------


def test_axis_numbers() -> None:
    assert [nice_ceiling(v) for v in (0, 0.7, 1, 3, 7, 12, 240, 999)] == [
        1.0,
        1.0,
        1.0,
        5.0,
        10.0,
        20.0,
        250.0,
        1000.0,
    ]
    assert format_number(0.0123, "s") == "12.3 ms"
    assert format_number(2.5, "s") == "2.5 s"
    assert format_number(0, "s") == "0"
    assert format_number(1500) == "1.5k"
    assert format_number(3) == "3"
    assert format_number(0.25) == "0.25"


def test_charts_are_svg_without_style_attributes() -> None:
    times = [60.0 * n for n in range(5)]
    line = chart(
        "Latency <p50>",
        times,
        [
            Series("p50", [0.01, None, 0.02, 0.03, None], "line-p50"),
            Series("x", [None, 0.5, None, None, None], "dot"),
        ],
        unit="s",
    )
    assert line.startswith("<svg") and 'role="img"' in line
    assert "<title>Latency &lt;p50&gt;</title>" in line
    # a lone point (between gaps) is a dot, two or more a line
    assert line.count("<polyline") == 1 and line.count("<circle") == 2
    assert "style=" not in line and "<script" not in line
    bars = chart("Errors", times, [Series("errors", [0, 2, 0, 1, 0], "bar-errors")], kind="bar")
    assert bars.count("<rect") == 2
    empty = chart("Nothing", [], [Series("none", [], "x")])
    assert "<svg" in empty


# -- the middleware and the dashboard -------------------------------------------------------------


def test_the_middleware_counts_requests_and_errors(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/hello")
    async def hello() -> str:
        return "hi"

    with TestClient(app) as client:
        recorder = app.state.admin_metrics
        recorder.clear()
        for _ in range(3):
            assert client.get("/hello").status_code == 200
        assert client.get("/boom").status_code == 500
        assert client.get("/nowhere").status_code == 404
        client.get("/admin/static/admin.css")  # the admin's own files are not counted
        totals = recorder.totals()
        assert (totals.requests, totals.errors) == (5, 1)
        assert totals.p50 is not None


def test_no_metrics_when_turned_off(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}", metrics=False)
    with TestClient(app) as client:
        client.call(seed, app.state.database)
        login(client, "root")
        page = client.get("/admin")
        assert page.status_code == 200
        assert "<svg" not in page.text
        assert not hasattr(app.state, "admin_metrics")


def test_the_dashboard_shows_traffic_and_models(client: TestClient) -> None:
    login(client, "root")
    for _ in range(4):
        client.get("/admin/book")
    page = client.get("/admin")
    assert page.status_code == 200
    assert page.text.count("<svg") == 3
    assert 'id="chart-requests"' in page.text and 'id="chart-errors"' in page.text
    assert "Median response time" in page.text and "95th percentile" in page.text
    rows = dict(
        re.findall(r'<a href="/admin/(\w+)">[^<]+</a></th><td class="number">(\d+)', page.text)
    )
    assert rows == {"book": "5", "author": "2", "tag": "2", "secret_thing": "1"}
    assert "each worker process counts its own" in page.text
    assert "style=" not in page.text  # strict CSP: no inline styles
    assert "<script>" not in page.text and "onclick" not in page.text


def test_static_files_are_served(client: TestClient) -> None:
    css = client.get("/admin/static/admin.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/admin/static/admin.js")
    assert js.status_code == 200 and "data-select-all" in js.text
    assert client.get("/admin/static/../plugin.py").status_code == 404


def test_pages_work_under_a_strict_content_security_policy(tmp_path: Path) -> None:
    from admin_helpers import make_app as build

    app = build(f"sqlite:///{tmp_path / 'a.db'}")
    app.settings = app.settings.replace(
        content_security_policy="default-src 'self'; object-src 'none'; base-uri 'none'"
    )
    with TestClient(app) as client:
        client.call(seed, app.state.database)
        login(client, "root")
        for path in ("/admin", "/admin/book", "/admin/book/1", "/admin/book/1/edit"):
            page = client.get(path)
            assert page.headers["content-security-policy"].startswith("default-src 'self'")
            assert not re.search(r"<script(?! src=)", page.text), path
            assert not re.search(r"\son[a-z]+=", page.text), path
            assert " style=" not in page.text, path
