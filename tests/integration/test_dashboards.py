"""Every dashboard query answers on the real Prometheus after the governance scenario.

The scenario (`tests/governance_scenario.py`, with its cloud burst to a spot node) runs
with the operator and the simulated node agent scraped by the session Prometheus. Each
panel query of `gpupool.dashboards.catalogue` is then run through the HTTP API twice:
with the template variables set to the scenario's queues, pools and model, and with
every one set to All (`.*`); `$__rate_interval` is 30 s and `$__range` 10 min. A query
that gives no series, only NaN, or series lacking a label its legend names fails the
test. Last, the renderer draws each dashboard from the same Prometheus; with
GPUPOOL_DASHBOARD_PNGS=DIR set, the PNGs go there, after 90 s more of the scenario (how
docs/dashboards/ was made).
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from cluster_tools import AgentProcess, OperatorProcess
from governance_scenario import run_governance_scenario, wait_until_idle_flagged
from gpupool.dashboards.catalogue import DASHBOARDS, substitute
from gpupool.dashboards.render import prometheus_query_range, render_dashboard
from kube_helpers import Scenario
from prom_tools import Series, wait_for_series

pytestmark = pytest.mark.cluster

WINDOWS = {"__rate_interval": "30s", "__range": "10m", "burn_window": "30s"}


def has_data(series: list[Series]) -> bool:
    return any(math.isfinite(value) for _, value in series)


def legend_labels(template: str) -> set[str]:
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", template))


def test_every_panel_query_returns_data_for_the_scenario_and_for_all(
    kubeconfig: str,
    core_api: Any,
    namespace: str,
    operator: OperatorProcess,
    prometheus: str,
    agent: AgentProcess,
    tmp_path: Path,
) -> None:
    started = time.time()
    gov = run_governance_scenario(Scenario(kubeconfig, core_api, namespace), with_cloud=True)
    wait_until_idle_flagged(gov.world)
    scenario = {
        "queue": "|".join(gov.queues),
        "pool": "|".join(gov.pools),
        "model": gov.world.model,
        "class": "on_prem|cloud",
        **WINDOWS,
    }
    everything = {"queue": ".*", "pool": ".*", "model": ".*", "class": ".*", **WINDOWS}

    checked = 0
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            for query in panel.queries:
                for values in (scenario, everything):
                    promql = substitute(query.expr, values)
                    try:
                        series = wait_for_series(prometheus, promql, timeout=60, until=has_data)
                    except AssertionError as error:
                        raise AssertionError(f"{dashboard.title} / {panel.title}: no data\n{error}") from None
                    # Every label the legend names is on every series (a join can drop labels).
                    missing = [labels for labels, _ in series if not legend_labels(query.legend) <= set(labels)]
                    assert not missing, f"{panel.title}: {query.legend!r} names labels missing from {missing}"
                    checked += 1
    assert checked == 2 * sum(len(p.queries) for d in DASHBOARDS for p in d.panels)

    pictures = os.environ.get("GPUPOOL_DASHBOARD_PNGS")
    if pictures:
        time.sleep(90)  # more of the scenario in the pictures
    out = Path(pictures or tmp_path)
    query_range = prometheus_query_range(prometheus)
    labels = {name: scenario[name] for name in ("queue", "pool", "model", "class")}
    for dashboard in DASHBOARDS:
        path = render_dashboard(
            dashboard, query_range, out, end=time.time(), range_seconds=time.time() - started + 20, overrides=labels
        )
        assert path.stat().st_size > 10_000
