"""What platform teams and finance read, end to end: the operator and the simulated node
agent scraped by the session's real Prometheus, queried through its HTTP API.

The governance scenario (`tests/governance_scenario.py`): two teams in a cohort, a gang,
an idle job under a budget, two shares and a preemption. Each metric family the issue
names is then asked of Prometheus.
"""

from __future__ import annotations

from typing import Any

import pytest

from cluster_tools import AgentProcess, OperatorProcess
from governance_scenario import run_governance_scenario, wait_until_idle_flagged
from kube_helpers import Scenario
from prom_tools import query, wait_for_series

pytestmark = pytest.mark.cluster


def value(prometheus: str, promql: str, until: Any = bool) -> float:
    """The single value `promql` gives once `until(series)` holds (waits for scrapes)."""
    series = wait_for_series(prometheus, promql, timeout=60, until=until)
    assert len(series) == 1, series
    return series[0][1]


def test_every_governance_family_reads_true_through_prometheus(
    kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess, prometheus: str, agent: AgentProcess
) -> None:
    gov = run_governance_scenario(Scenario(kubeconfig, core_api, namespace))
    world, nodes, pool, team_a, team_b = gov.world, gov.nodes, gov.pool, gov.team_a, gov.team_b
    assert world.phase("low") in ("Preempted", "Queued")  # preempted; it waits for quota again

    a, b = f'queue="{team_a}"', f'queue="{team_b}"'
    # Jobs per queue: team-b's preempted job waits, everything else runs.
    assert value(prometheus, f"gpupool_queue_running_jobs{{{a}}}", lambda s: s and s[0][1] == 2) == 2
    assert value(prometheus, f"gpupool_queue_running_jobs{{{b}}}", lambda s: s and s[0][1] == 3) == 3
    assert value(prometheus, f"sum(gpupool_queue_pending_jobs{{{b}}})", lambda s: s and s[0][1] == 1) == 1
    # Usage against quota, per flavor.
    flavor = f'flavor="model:{world.model}"'
    assert value(prometheus, f"gpupool_queue_nominal_gpus{{{a},{flavor}}}") == 6
    assert value(prometheus, f"gpupool_queue_used_gpus{{{a},{flavor}}}", lambda s: s and s[0][1] == 5) == 5
    assert value(prometheus, f"gpupool_queue_used_gpus{{{b},{flavor}}}", lambda s: s and s[0][1] == 3) == 3
    # A preemption within team-b was counted.
    assert value(prometheus, f"sum(gpupool_preemptions_total{{{b}}})", lambda s: s and s[0][1] >= 1) >= 1
    # Spend moves while team-a's jobs run (2 per GPU-hour on 5 GPUs).
    assert value(prometheus, f"gpupool_queue_budget_spent{{{a}}}", lambda s: s and s[0][1] > 0) > 0
    assert value(prometheus, f"gpupool_queue_budget_amount{{{a}}}") == 1000
    # The pool: its nodes and GPUs, and the GPUs held (shares as fractions).
    p = f'pool="{pool}"'
    assert value(prometheus, f'gpupool_pool_nodes{{{p},state="ready"}}') == 3
    assert value(prometheus, f"gpupool_pool_gpus{{{p}}}") == 12
    assert value(prometheus, f"gpupool_pool_allocated_gpus{{{p}}}", lambda s: s and s[0][1] == 8) == 8
    # Per-job GPU utilisation: the agent's per-GPU series joined to jobs through allocation info.
    allocation = f'gpupool_gpu_allocation_info{{job="gang",namespace="{namespace}"}}'
    joined = f"gpupool_gpu_utilization_ratio * on(node, uuid) group_right {allocation}"
    gang = wait_for_series(prometheus, joined, timeout=60, until=lambda s: len(s) == 4)
    assert {labels["worker"] for labels, _ in gang} == {"0", "1"}
    assert all(v == pytest.approx(0.8) for _, v in gang)
    assert {labels["node"] for labels, _ in gang} <= set(nodes)
    # The idle job is flagged (condition, event and gauge) within idle.after plus the window.
    wait_until_idle_flagged(world)
    assert "GPUIdle" in world.events("idler")
    assert value(prometheus, f'gpupool_job_gpu_idle{{job="idler",namespace="{namespace}"}}') == 1
    assert query(prometheus, f'gpupool_job_gpu_idle{{job="gang",namespace="{namespace}"}}') == []
