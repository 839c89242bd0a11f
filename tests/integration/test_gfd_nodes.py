"""Nodes labelled only by NVIDIA's GPU feature discovery, on the real control plane: a kwok
node that carries GFD's product label and no gpupool label joins a pool that selects it by
another label, gets the catalogue model its product names and takes a job; a node of the
same pool whose product the catalogue does not know is refused, and the pool's status says
which product and how to fix it; a time-sliced node counts its physical GPUs.

The catalogue's L4 (`NVIDIA-L4`) is this test's model: no other test uses it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cluster_tools import OperatorProcess, kubectl
from gpupool.cluster.nodes.kwok_nodes import GpuNodeSpec
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster

MODEL = "L4"


def gfd_node(name: str, selector: dict[str, str], gpus: int, **gfd: str) -> dict[str, Any]:
    """A kwok node as GFD would label it: `nvidia.com/gpu.*` labels, no `gpupool.io/*` ones."""
    manifest = GpuNodeSpec(name=name, gpus=gpus, gpu_model=MODEL).manifest()
    labels = {k: v for k, v in manifest["metadata"]["labels"].items() if not k.startswith("gpupool.io/")}
    manifest["metadata"]["labels"] = {**labels, **selector, **gfd}
    return manifest


@dataclass(frozen=True)
class GfdWorld:
    scenario: Scenario
    pool: str
    whole: str
    unknown: str
    shared: str


@pytest.fixture
def gfd_world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> Iterator[GfdWorld]:
    suffix = uuid.uuid4().hex[:6]
    selector = {"test.gpupool.io/rack": f"gfd-{suffix}"}
    world = GfdWorld(
        Scenario(kubeconfig, core_api, namespace, model=MODEL),
        pool=f"gfd-{suffix}",
        whole=f"gfd-{suffix}-l4",
        unknown=f"gfd-{suffix}-a10g",
        shared=f"gfd-{suffix}-sliced",
    )
    sharing = {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.sharing-strategy": "time-slicing"}
    nodes = [
        gfd_node(world.whole, selector, 2, **{"nvidia.com/gpu.product": "NVIDIA-L4"}),
        gfd_node(world.unknown, selector, 4, **{"nvidia.com/gpu.product": "NVIDIA-A10G"}),
        gfd_node(world.shared, selector, 4, **{"nvidia.com/gpu.product": "NVIDIA-L4-SHARED", **sharing}),
    ]
    for body in nodes:
        core_api.create_node(body)
    spec = {
        "class": "OnPrem",
        "gpuModel": MODEL,
        "gpusPerNode": 2,
        "nodeSelector": selector,
        "pricePerNodeHour": {"amortised": 2.0},
        "provider": "Static",
    }
    metadata = {"name": world.pool}
    world.scenario.apply(
        {"apiVersion": "gpupool.io/v1alpha1", "kind": "GPUNodePool", "metadata": metadata, "spec": spec}
    )
    try:
        yield world
    finally:
        kubectl(kubeconfig, "delete", "gpunodepool", world.pool, "--ignore-not-found", "--wait=false")
        for body in nodes:
            core_api.delete_node(body["metadata"]["name"])


def _pool_status(world: GfdWorld) -> dict[str, Any]:
    out = kubectl(world.scenario.kubeconfig, "get", "gpunodepool", world.pool, "-o", "json").stdout
    status: dict[str, Any] = json.loads(out).get("status") or {}
    return status


def test_a_node_labelled_only_by_gfd_is_scheduled_with_its_catalogue_model(gfd_world: GfdWorld) -> None:
    world, scenario = gfd_world, gfd_world.scenario

    def settled() -> dict[str, Any] | None:
        status = _pool_status(world)
        kinds = {c["type"] for c in status.get("conditions") or []}
        return status if status.get("nodesReady") == 2 and {"NodesRefused", "SharedGPUNodes"} <= kinds else None

    status = wait_for(settled, 60, "the pool's status to count the GFD nodes")
    assert status["gpusTotal"] == 3  # 2 whole GPUs, and 4 time-slicing replicas of 1 GPU
    conditions = {c["type"]: c for c in status["conditions"]}
    refused = conditions["NodesRefused"]
    assert (refused["status"], refused["reason"]) == ("True", "UnknownGPUProduct")
    assert refused["message"].startswith(f"node {world.unknown}: nvidia.com/gpu.product=NVIDIA-A10G is not a product")
    assert "gpupool.io/gpu-model" in refused["message"] and "catalogue/gpu_models.yaml" in refused["message"]
    shared = conditions["SharedGPUNodes"]
    assert (shared["status"], shared["reason"]) == ("True", "SharedGPUs")
    assert shared["message"].startswith(f"node {world.shared}: nvidia.com/gpu=4 are time-slicing replicas")

    queue = scenario.queue("gfd", nominal=2)
    scenario.job("whole", queue, gpus=1, duration="2s")
    admitted = wait_for(lambda: (s := scenario.status("whole")).get("placement") and s, 30, "the job admitted")
    (worker,) = admitted["placement"]
    assert (worker["node"], worker["pool"], worker["gpuModel"]) == (world.whole, world.pool, MODEL)
    scenario.wait_phase("whole", "Succeeded", 60)
