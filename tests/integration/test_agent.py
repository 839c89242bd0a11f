"""The node agent with its simulated backend, against the real control plane and operator.

The operator places GPUJobs on a kwok node; `gpupool agent run --backend simulated
--all-kwok-nodes` runs as a child process, as on a dev cluster. The test scrapes its
/metrics over HTTP and reads the Node's annotation, and compares both with the
placements in the jobs' status.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster_tools import AgentProcess, OperatorProcess, kubectl
from gpupool.agent.simulated import DEFAULT_UTILIZATION, MEMORY_TOTAL_BYTES
from gpupool.annotations.summary import ANNOTATION, parse_summary
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> Scenario:
    return Scenario(kubeconfig, core_api, namespace)


def expected_utilization(placements: list[tuple[dict[str, Any], float]], gpus: int) -> dict[int, float]:
    """GPU index -> the sum of util x share of the workers placed on it, capped at 1."""
    totals = dict.fromkeys(range(gpus), 0.0)
    for placement, util in placements:
        for index in placement["gpuIndices"]:
            totals[index] += util * placement["gpuShare"]
    return {index: min(1.0, total) for index, total in totals.items()}


def utilization_by_gpu(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], node: str) -> dict[int, float]:
    return {
        int(dict(labels)["gpu"]): value
        for (name, labels), value in metrics.items()
        if name == "gpupool_gpu_utilization_ratio" and dict(labels)["node"] == node
    }


def test_simulated_agent_exports_the_placements_and_annotates_the_node(world: Scenario, agent_factory: Any) -> None:
    (node,) = world.nodes(1, gpus=4)
    world.pool(gpus_per_node=4)
    queue = world.queue("team", nominal=4)
    jobs = {  # job -> the utilisation its worker is simulated at
        "whole": 0.8,
        "half": DEFAULT_UTILIZATION,  # no annotation: the default
        "half-b": 0.6,
    }
    world.job("whole", queue, gpus=1, duration="10m", annotations={"gpupool.io/sim-gpu-util": "0.8"})
    world.job("half", queue, gpus=0.5, duration="10m")
    world.job("half-b", queue, gpus=0.5, duration="10m", annotations={"gpupool.io/sim-gpu-util": "0.6"})
    placements = []
    for job, util in jobs.items():
        (placement,) = world.wait_phase(job, "Running", 30)["placement"]
        assert placement["node"] == node
        placements.append((placement, util))
    expected = expected_utilization(placements, 4)
    whole_gpu = placements[0][0]["gpuIndices"][0]
    assert expected[whole_gpu] == pytest.approx(0.8)
    assert placements[1][0]["gpuShare"] == placements[2][0]["gpuShare"] == 0.5

    process = agent_factory()
    metrics = wait_for(
        lambda: (m := process.scrape()) and len(utilization_by_gpu(m, node)) == 4 and m, 30, "the agent's metrics"
    )
    assert utilization_by_gpu(metrics, node) == pytest.approx(expected)
    gpu_labels = {
        int(dict(labels)["gpu"]): labels
        for (name, labels) in metrics
        if name == "gpupool_gpu_power_watts" and dict(labels)["node"] == node
    }
    assert sorted(gpu_labels) == [0, 1, 2, 3]
    for index, key in gpu_labels.items():
        assert dict(key)["model"] == world.model and dict(key)["uuid"].startswith("GPU-")
        workers = sum(1 for p, _u in placements if index in p["gpuIndices"])
        assert metrics[("gpupool_gpu_processes", key)] == workers
        assert metrics[("gpupool_gpu_memory_total_bytes", key)] == MEMORY_TOTAL_BYTES
        assert ("gpupool_gpu_energy_joules_total", key) in metrics
    assert metrics[("gpupool_agent_info", (("backend", "simulated"),))] == 1

    # The Node carries the rolling summary, in the format the operator parses.
    def summary() -> Any:
        annotations = world.core_api.read_node(node).metadata.annotations or {}
        return parse_summary(annotations.get(ANNOTATION))

    published = wait_for(summary, 30, f"the {ANNOTATION} annotation on {node}")
    assert published.window_seconds == 300
    assert published.gpus == pytest.approx({i: round(v, 2) for i, v in expected.items()}, abs=0.011)

    # The whole-GPU job goes; its GPU falls idle at the next readings.
    kubectl(world.kubeconfig, "delete", "gpujob", "whole", "-n", world.namespace, "--wait=false")
    wait_for(
        lambda: (m := process.scrape()) and utilization_by_gpu(m, node).get(whole_gpu) == 0.0,
        30,
        "the freed GPU to read 0",
    )
    assert process.stop() == 0, process.log()


@pytest.fixture
def agent_factory(kubeconfig: str, tmp_path: Path) -> Iterator[Any]:
    started: list[AgentProcess] = []

    def start() -> AgentProcess:
        process = AgentProcess(kubeconfig, tmp_path / "agent.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()
