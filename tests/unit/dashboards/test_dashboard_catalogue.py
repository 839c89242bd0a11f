"""The dashboards as code: their queries name only declared metrics and known variables, the
committed JSON is what the catalogue generates, and the renderer draws PNGs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from gpupool.agent.exporter import GPU_SERIES
from gpupool.dashboards import __main__ as generator
from gpupool.dashboards.catalogue import DASHBOARDS, Dashboard, Panel, Query, legend, substitute, variables_used
from gpupool.dashboards.render import RangeSeries, parse_duration, render_dashboard
from gpupool.metrics.families import FAMILIES, MetricType

REPO = Path(__file__).resolve().parents[3]
GRAFANA_BUILTINS = {"__range", "__rate_interval"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
AGENT_OWN = {
    "gpupool_agent_info",
    "gpupool_agent_last_sample_timestamp_seconds",
    "gpupool_agent_sample_errors_total",
    "gpupool_agent_nvml_available",
}


def declared_series() -> set[str]:
    """Every series name Prometheus can hold from the operator and the node agent."""
    names = set(AGENT_OWN)
    for family in FAMILIES:
        if family.type == MetricType.HISTOGRAM:
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            names.add(family.name)  # counters are declared with their scraped `_total` name
    names |= {f"{s.name}_total" if s.counter else s.name for s in GPU_SERIES}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are not in strings, label
    matchers, label lists, ranges, function calls or keywords."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\$\{?\w+\}?", "", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    tokens = re.findall(r"(?<![\w.])([A-Za-z_:][\w:]*)\b(?!\s*\()", text)
    return {t for t in tokens if t not in KEYWORDS}


QUERIES = [(d, p, q) for d in DASHBOARDS for p in d.panels for q in p.queries]
IDS = [f"{d.uid}:{p.title}:{q.legend}" for d, p, q in QUERIES]


@pytest.mark.parametrize(("dashboard", "panel", "query"), QUERIES, ids=IDS)
def test_every_query_names_declared_metrics_and_its_dashboards_variables(
    dashboard: Dashboard, panel: Panel, query: Query
) -> None:
    expr = query.expr
    names = metric_names(expr)
    assert names, expr
    assert names <= declared_series(), f"undeclared in {expr}: {names - declared_series()}"
    allowed = {v.name for v in dashboard.variables} | GRAFANA_BUILTINS
    assert variables_used(expr) <= allowed, expr


def test_the_token_scan_finds_metrics_and_skips_labels_and_functions() -> None:
    expr = 'sum by (le, pool) (increase(a_bucket{pool=~"$pool"}[$__range])) / on(pool) group_left(x) b > bool 0'
    assert metric_names(expr) == {"a_bucket", "b"}
    assert metric_names("histogram_quantile(0.5, rate(c[5m])) * time()") == {"c"}


def test_dashboards_have_unique_uids_and_panel_titles() -> None:
    assert len({d.uid for d in DASHBOARDS}) == len(DASHBOARDS) == 3
    for dashboard in DASHBOARDS:
        titles = [p.title for p in dashboard.panels]
        assert len(titles) == len(set(titles)), dashboard.uid


def test_committed_json_is_what_the_catalogue_generates() -> None:
    assert generator.stale(REPO / "dashboards") == []


def test_check_fails_on_a_stale_missing_or_foreign_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert generator.main(["--out", str(tmp_path)]) == 0
    assert generator.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "gpupool-fleet.json").write_text("{}")
    (tmp_path / "gpupool-cost.json").unlink()
    (tmp_path / "hand-made.json").write_text("{}")
    assert generator.main(["--out", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "gpupool-fleet.json differs" in err and "gpupool-cost.json is missing" in err
    assert "hand-made.json is not generated from gpupool.dashboards.catalogue" in err and "make dashboards" in err


def test_the_json_holds_the_catalogues_queries_and_a_prometheus_datasource_variable(tmp_path: Path) -> None:
    generator.main(["--out", str(tmp_path)])
    for dashboard in DASHBOARDS:
        model = json.loads((tmp_path / f"{dashboard.uid}.json").read_text())
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        assert set(variables) == {"datasource"} | {v.name for v in dashboard.variables}
        panels = [p for p in model["panels"] if p["type"] == "timeseries"]
        assert [p["title"] for p in panels] == [p.title for p in dashboard.panels]
        for built, spec in zip(panels, dashboard.panels, strict=True):
            assert [t["expr"] for t in built["targets"]] == [q.expr for q in spec.queries]
            assert built["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(t["datasource"] == built["datasource"] for t in built["targets"])
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids))


def test_substitution_and_legends() -> None:
    assert substitute('x{q=~"$queue"}[${__range}]', {"queue": "a|b", "__range": "5m"}) == 'x{q=~"a|b"}[5m]'
    with pytest.raises(KeyError, match="pool"):
        substitute('x{p=~"$pool"}', {})
    assert legend("{{queue}} used", {"queue": "q1"}) == "q1 used"
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_the_renderer_draws_a_non_empty_png_per_dashboard_even_when_a_query_fails(tmp_path: Path) -> None:
    asked: list[str] = []

    def fake(promql: str, start: float, end: float, step: float) -> list[RangeSeries]:
        asked.append(promql)
        if "fragmented" in promql:
            raise RuntimeError("bad_data: boom")
        points = [(t, 1 + math.sin(t / 300)) for t in range(int(start), int(end) + 1, int(step))]
        return [({"pool": "p1", "queue": "q1", "state": "ready"}, points)]

    for dashboard in DASHBOARDS:
        path = render_dashboard(dashboard, fake, tmp_path, end=1_767_225_600.0, range_seconds=3600)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 10_000 < path.stat().st_size < 300_000
    assert len(asked) == sum(len(p.queries) for d in DASHBOARDS for p in d.panels)
    assert not any("$" in q for q in asked)
