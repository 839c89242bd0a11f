"""The metric declarations keep their rules, docs/metrics.md is generated from them, and the
registry is served over HTTP."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gpupool.controllers import loop
from gpupool.core.models import WaitCode
from gpupool.metrics import docgen
from gpupool.metrics.collect import OperatorMetrics
from gpupool.metrics.families import FAMILIES, PENDING_REASONS, STEPS, MetricType
from gpupool.metrics.gauges import REASON_CLASS
from gpupool.metrics.server import MetricsServer, operator_registry

DOCS = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
PER_JOB_LABELS = {"job", "pod", "worker", "gpu", "container"}


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_each_family_keeps_the_naming_and_label_rules(family: docgen.Family) -> None:
    if family.source == "gpupool":
        assert family.name.startswith("gpupool_")
    assert family.name.endswith("_total") == (family.type == MetricType.COUNTER)
    for label in family.labels:
        assert label.name in family.help
        assert all(value in family.help for value in label.values)
    if family.type != MetricType.GAUGE:
        assert not family.per_job and not PER_JOB_LABELS & set(family.label_names)
    if PER_JOB_LABELS & set(family.label_names):
        assert family.per_job


def test_every_wait_code_has_a_reason_class_and_the_steps_are_the_loops() -> None:
    assert {str(code) for code in WaitCode} <= set(REASON_CLASS)
    assert set(REASON_CLASS.values()) <= set(PENDING_REASONS)
    assert STEPS == loop.STEPS


def test_docs_metrics_md_is_up_to_date() -> None:
    assert DOCS.read_text() == docgen.render(), (
        f"docs/metrics.md is stale: run `make metrics-docs` ({docgen.COMMAND}) and commit it"
    )


def test_docgen_check_fails_on_a_stale_file_naming_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "metrics.md"
    out.write_text("old\n")
    assert docgen.main(["--out", str(out), "--check"]) == 1
    assert docgen.COMMAND in capsys.readouterr().err
    assert docgen.main(["--out", str(out)]) == 0
    assert docgen.main(["--out", str(out), "--check"]) == 0


def test_the_server_serves_the_registry_it_is_given() -> None:
    registry = operator_registry()
    OperatorMetrics(registry)
    server = MetricsServer("127.0.0.1", 0, registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.stop()
    # Labelled counters and histograms appear with their first series; the rest at once.
    for family in FAMILIES:
        if family.type == MetricType.GAUGE or not family.labels:
            assert f"# TYPE {family.exported_name} {family.type}" in text
    assert "process_cpu_seconds_total" in text or "python_info" in text


def test_opencost_families_can_be_left_out() -> None:
    registry = CollectorRegistry()
    OperatorMetrics(registry, opencost=False)
    names = {metric.name for metric in registry.collect()}
    assert "gpupool_gpu_allocation_info" in names
    assert not names & {f.name for f in FAMILIES if f.source == "opencost"}
