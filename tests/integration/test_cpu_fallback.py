"""CPU fallback on the real control plane: a Preferred job without a profile runs on a CPU
pool's CPU-only node instead of a free GPU, its pod asks for no GPU and is told it runs on
CPU, and its status and an event say why; its attempt is charged the CPU pool's price.

The CPU pool's node has 64 cores at 64 per node-hour (1 per core-hour); the job asks for 4.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cluster_tools import OperatorProcess, kubectl
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> tuple[Scenario, str]:
    scenario = Scenario(kubeconfig, core_api, namespace)
    scenario.nodes(1, gpus=4)
    scenario.pool(gpus_per_node=4, amortised_price=8.0)
    _pool, cpu_node = scenario.cpu_pool(amortised_price=64.0)
    return scenario, cpu_node


def test_a_preferred_job_runs_on_the_cpu_node_and_says_why(world: tuple[Scenario, str]) -> None:
    scenario, cpu_node = world
    queue = scenario.queue("fallback", nominal=4)
    scenario.job("cpu-first", queue, gpus=1, cpu="4", memory="1Gi", duration="3s", cpuFallback="Preferred")
    status = wait_for(lambda: (s := scenario.status("cpu-first")).get("device") and s, 30, "the job admitted")
    why = f"runs on CPU node {cpu_node}: cpuFallback Preferred and no profile says a GPU is much cheaper"
    assert (status["device"], status["deviceReason"]) == ("CPU", why)
    assert [(p["node"], p.get("gpuIndices", [])) for p in status["placement"]] == [(cpu_node, [])]

    (pod,) = scenario.pods("cpu-first")
    main = pod["spec"]["containers"][0]
    assert pod["spec"]["nodeName"] == cpu_node
    assert "nvidia.com/gpu" not in main["resources"].get("limits", {})
    assert "nvidia.com/gpu" not in main["resources"].get("requests", {})
    assert {e["name"]: e.get("value") for e in main["env"]}["GPUPOOL_DEVICE"] == "cpu"

    wait_for(lambda: "RunningOnCPU" in scenario.events("cpu-first"), 15, "the RunningOnCPU event")
    listed = kubectl(
        scenario.kubeconfig, "get", "events", "-n", scenario.namespace, "-o", "json",
        "--field-selector", "involvedObject.name=cpu-first,reason=RunningOnCPU",
    )  # fmt: skip
    assert json.loads(listed.stdout)["items"][0]["message"] == why

    done = scenario.wait_phase("cpu-first", "Succeeded", 60)
    (usage,) = done["usageHistory"]
    assert usage.get("gpuSeconds", 0) == 0 and done["cost"] > 0  # 1 per core-hour x 4 cores x ~3 s
    assert done["provenance"]["attempts"][0]["device"] == "CPU"
