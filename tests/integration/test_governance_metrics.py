"""What platform teams and finance read, end to end: the operator and the simulated node
agent scraped by the session's real Prometheus, queried through its HTTP API.

One scenario: two teams in a cohort on three 4-GPU kwok nodes; team-a runs a gang and a
job that holds a GPU doing nothing, under a budget and an idle rule of 20 s; team-b runs
two half-GPU shares and a low-priority job that an urgent one of the same queue preempts.
Each metric family the issue names is then asked of Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster_tools import AgentProcess, OperatorProcess
from gpupool.devcluster.prometheus import AGENT_JOB, register_scrape_target, unregister_scrape_target
from kube_helpers import Scenario, job_manifest, wait_for
from prom_tools import query, wait_for_series

pytestmark = pytest.mark.cluster


@pytest.fixture
def agent(kubeconfig: str, dev_cluster: Any, tmp_path: Path) -> Iterator[AgentProcess]:
    """The simulated node agent (10 s summary window), scraped by the session Prometheus."""
    process = AgentProcess(kubeconfig, tmp_path / "agent.log", "--window", "10")
    address = f"127.0.0.1:{process.port}"
    register_scrape_target(dev_cluster.state_dir, AGENT_JOB, address)
    try:
        yield process
    finally:
        unregister_scrape_target(dev_cluster.state_dir, AGENT_JOB, address)
        process.stop()


def value(prometheus: str, promql: str, until: Any = bool) -> float:
    """The single value `promql` gives once `until(series)` holds (waits for scrapes)."""
    series = wait_for_series(prometheus, promql, timeout=60, until=until)
    assert len(series) == 1, series
    return series[0][1]


def test_every_governance_family_reads_true_through_prometheus(
    kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess, prometheus: str, agent: AgentProcess
) -> None:
    world = Scenario(kubeconfig, core_api, namespace)
    nodes = world.nodes(3, gpus=4)
    pool = world.pool(gpus_per_node=4, amortised_price=8.0)  # 2 per GPU-hour
    team_a = world.queue(
        "team-a",
        nominal=6,
        cohort="org",
        idle={"threshold": 0.05, "after": "20s", "action": "Warn"},
        budget={"amount": 1000, "currency": "USD", "period": "Monthly"},
    )
    team_b = world.queue("team-b", nominal=6, cohort="org", borrowing_limit=0)  # must preempt, cannot borrow

    def job(name: str, queue: str, gpus: float, util: str, **spec: Any) -> dict[str, Any]:
        annotations = {"gpupool.io/sim-gpu-util": util}
        return job_manifest(
            name, namespace, queue, gpus=gpus, duration="10m", models=[world.model], annotations=annotations, **spec
        )

    world.apply(
        job("gang", team_a, 2, "0.8", workers=2),
        job("idler", team_a, 1, "0"),
        job("share-1", team_b, 0.5, "0.6"),
        job("share-2", team_b, 0.5, "0.6"),
        job("low", team_b, 4, "0.5", priority=0),
    )
    for name in ("gang", "idler", "share-1", "share-2", "low"):
        world.wait_phase(name, "Running", 60)
    world.apply(job("urgent", team_b, 2, "0.9", priority=10))
    world.wait_phase("urgent", "Running", 90)
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
    joined = f"gpupool_gpu_utilization_ratio * on(node, gpu) group_right {allocation}"
    gang = wait_for_series(prometheus, joined, timeout=60, until=lambda s: len(s) == 4)
    assert {labels["worker"] for labels, _ in gang} == {"0", "1"}
    assert all(v == pytest.approx(0.8) for _, v in gang)
    assert {labels["node"] for labels, _ in gang} <= set(nodes)
    # The idle job is flagged (condition, event and gauge) within idle.after plus the window.
    wait_for(
        lambda: any(c["type"] == "GPUIdle" and c["status"] == "True" for c in world.status("idler")["conditions"]),
        90,
        "GPUIdle on the idle job",
    )
    assert "GPUIdle" in world.events("idler")
    assert value(prometheus, f'gpupool_job_gpu_idle{{job="idler",namespace="{namespace}"}}') == 1
    assert query(prometheus, f'gpupool_job_gpu_idle{{job="gang",namespace="{namespace}"}}') == []
