"""The alerting rules name only declared metrics, the committed rules file is the generated
one, and promtool accepts the file and passes its unit tests (for every alert, a case where
it fires and one where it stays quiet: tests/fixtures/alerts/gpupool.rules.test.yaml)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpupool.agent.exporter import GPU_SERIES
from gpupool.devcluster import prometheus
from gpupool.metrics import alerts
from gpupool.metrics.families import BY_NAME, MetricType

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / alerts.DEFAULT_OUT
PROMTOOL_TESTS = ROOT / "tests" / "fixtures" / "alerts" / "gpupool.rules.test.yaml"
TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
LABEL_TEMPLATE = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus adds from the scrape target (the per-job series bring their own `job`)."""


def _series_labels() -> dict[str, tuple[set[str], dict[str, tuple[str, ...]]]]:
    """Every series name an expression may select -> (its labels, closed values per label)."""
    known: dict[str, tuple[set[str], dict[str, tuple[str, ...]]]] = {}
    for family in BY_NAME.values():
        labels = (set(family.label_names), {label.name: label.values for label in family.labels if label.values})
        if family.type == MetricType.HISTOGRAM:
            known[f"{family.name}_count"] = known[f"{family.name}_sum"] = labels
            known[f"{family.name}_bucket"] = ({*labels[0], "le"}, labels[1])
        else:
            known[family.name] = labels
    for series in GPU_SERIES:
        name = f"{series.name}_total" if series.counter else series.name
        known[name] = ({"node", "gpu", "uuid", "model"}, {})
    known["up"] = (set(), {})
    return known


KNOWN = _series_labels()


@pytest.mark.parametrize("alert", alerts.ALERTS, ids=[a.name for a in alerts.ALERTS])
def test_each_expression_names_only_declared_metrics_labels_and_values(alert: alerts.Alert) -> None:
    found = alerts.selectors(alert.expr)
    assert found, f"{alert.name}: no metric found in {alert.expr!r}"
    labels_in_expr = set(TARGET_LABELS)
    for selector in found:
        assert selector.metric in KNOWN, (
            f"{alert.name} selects {selector.metric}, which is neither declared in gpupool.metrics.families, "
            "nor a node agent gpupool_gpu_* series, nor `up`"
        )
        labels, closed = KNOWN[selector.metric]
        labels_in_expr |= labels
        for label, _op, value in selector.matchers:
            assert label in labels | TARGET_LABELS, f"{alert.name}: {selector.metric} has no label {label!r}"
            if label in closed:
                assert value in closed[label], f"{alert.name}: {label}={value!r} is not one of {closed[label]}"
    assert alerts.grouping_labels(alert.expr) <= labels_in_expr


def test_the_selector_scan_sees_through_functions_groupings_ranges_and_offsets() -> None:
    expr = (
        'sum by (pool) (increase(x_total{result="failed"}[15m])) > 0 or max by (a, b) '
        "(y > bool 0) * on (node, gpu) group_left z unless w offset 1h"
    )
    assert [(s.metric, s.matchers) for s in alerts.selectors(expr)] == [
        ("x_total", (("result", "=", "failed"),)),
        ("y", ()),
        ("z", ()),
        ("w", ()),
    ]
    assert alerts.grouping_labels(expr) == {"pool", "a", "b", "node", "gpu"}


def test_each_alert_has_a_unique_name_a_severity_and_words_for_the_reader() -> None:
    names = [alert.name for alert in alerts.ALERTS]
    assert len(names) == len(set(names))
    for alert in alerts.ALERTS:
        assert re.fullmatch(r"GPU[A-Za-z]+", alert.name)
        assert alert.severity in set(alerts.Severity)
        assert re.fullmatch(r"\d+[smh]", alert.for_)
        assert alert.summary and len(alert.description) > 80
        # Only `{{ $labels.x }}`, so the promtool cases can state the text.
        for text in (alert.summary, alert.description):
            assert all(LABEL_TEMPLATE.fullmatch(m.group(0)) for m in TEMPLATE.finditer(text)), text


def test_the_rules_select_the_operator_under_the_dev_clusters_scrape_job() -> None:
    assert alerts.OPERATOR_JOB == prometheus.OPERATOR_JOB


def test_the_committed_rules_file_is_up_to_date() -> None:
    assert RULES.read_text() == alerts.render(), f"{RULES} is stale: run `make alerts` ({alerts.COMMAND})"


def test_check_fails_on_a_stale_file_naming_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rules.yaml"
    assert alerts.main(["--out", str(out), "--check"]) == 1
    assert alerts.COMMAND in capsys.readouterr().err
    assert alerts.main(["--out", str(out)]) == 0
    assert alerts.main(["--out", str(out), "--check"]) == 0


def test_every_alert_has_a_promtool_case_where_it_fires_and_one_where_it_stays_quiet() -> None:
    cases = [case for group in _load_tests()["tests"] for case in group["alert_rule_test"]]
    for alert in alerts.ALERTS:
        mine = [case for case in cases if case["alertname"] == alert.name]
        assert any(case.get("exp_alerts") for case in mine), f"no promtool case where {alert.name} fires"
        assert any(not case.get("exp_alerts") for case in mine), f"no promtool case where {alert.name} stays quiet"
    assert {case["alertname"] for case in cases} <= {alert.name for alert in alerts.ALERTS}


# ---------------------------------------------------------------- promtool


@pytest.fixture(scope="module")
def promtool() -> str:
    """promtool, installed with Prometheus (Debian's package) when missing."""
    try:
        server = prometheus.ensure_installed()
    except prometheus.PrometheusError as error:
        pytest.fail(f"promtool is needed to test the alerting rules and Prometheus could not be installed: {error}")
    beside = Path(server).with_name("promtool")
    found = str(beside) if beside.exists() else shutil.which("promtool")
    if found is None:
        pytest.fail(f"Prometheus is at {server} but promtool is not beside it nor on PATH; install promtool")
    return found


def test_promtool_accepts_the_rules_file(promtool: str) -> None:
    result = _run([promtool, "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout
    assert f"SUCCESS: {len(alerts.ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool: str, tmp_path: Path) -> None:
    document = _load_tests()
    document["rule_files"] = [str(RULES)]
    by_name = {alert.name: alert for alert in alerts.ALERTS}
    for group in document["tests"]:
        for case in group["alert_rule_test"]:
            for expected in case.get("exp_alerts") or []:
                expected.setdefault("exp_annotations", _annotations(by_name[case["alertname"]], expected["exp_labels"]))
    path = tmp_path / "gpupool.rules.test.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = _run([promtool, "test", "rules", str(path)])
    assert result.returncode == 0, result.stdout


def _annotations(alert: alerts.Alert, labels: dict[str, str]) -> dict[str, str]:
    def render(text: str) -> str:
        return LABEL_TEMPLATE.sub(lambda m: str(labels[m.group(1)]), text)

    return {"summary": render(alert.summary), "description": render(alert.description)}


def _load_tests() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PROMTOOL_TESTS.read_text())
    return loaded


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, check=False)
