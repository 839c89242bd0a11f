"""Roofline-aware GPU model choice on the real control plane: a job that may run on two GPU
models goes to the one its profile's estimates favour, and says so in status and an event.

Two on-prem pools of made-up models whose roofline figures come from the pools'
`gpuModelSpec`: a cheap chip with almost the bandwidth of a fast, dear one, and a tenth of
its compute. At 10 FLOP/byte both are bandwidth-bound (30 vs 33.5 TFLOPS attainable), so
the cheap chip costs far less for nearly the same time; at 1000 FLOP/byte the fast chip is
ten times quicker, which outweighs its eight times higher price.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cluster_tools import OperatorProcess, kubectl
from kube_helpers import Scenario, wait_for

pytestmark = pytest.mark.cluster

CHEAP = {"peakTflopsFp16": 100, "peakTflopsFp32": 50, "memoryBandwidthGBps": 3000}
FAST = {"peakTflopsFp16": 1000, "peakTflopsFp32": 500, "memoryBandwidthGBps": 3350}


@pytest.fixture
def two_models(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> tuple[Scenario, Scenario]:
    cheap, fast = Scenario(kubeconfig, core_api, namespace), Scenario(kubeconfig, core_api, namespace)
    for world, spec, price in ((cheap, CHEAP, 8.0), (fast, FAST, 64.0)):  # 2 and 16 per GPU-hour
        world.nodes(1, gpus=4)
        world.pool(gpus_per_node=4, amortised_price=price, gpuModelSpec=spec)
    return cheap, fast


def submit(cheap: Scenario, fast: Scenario, name: str, intensity: float) -> dict[str, Any]:
    quotas = [{"gpuModel": w.model, "nominal": 4} for w in (cheap, fast)]
    queue = f"roofline-{cheap.model.lower()}"
    cheap.apply(
        {
            "apiVersion": "gpupool.io/v1alpha1",
            "kind": "GPUQueue",
            "metadata": {"name": queue},
            "spec": {"quotas": quotas},
        }
    )
    profile = {"operationalIntensity": intensity, "totalFlops": 3.6e17}
    cheap.job(name, queue, gpus=1, models=[cheap.model, fast.model], duration="2s", profile=profile)
    return wait_for(lambda: (s := cheap.status(name)).get("modelChoice") and s, 30, f"{name} placed")


@pytest.mark.parametrize(
    ("intensity", "expected", "other"),
    [(10.0, "cheap", "fast"), (1000.0, "fast", "cheap")],
    ids=["memory-bound-goes-to-the-cheap-chip", "compute-bound-goes-to-the-fast-chip"],
)
def test_a_profiled_job_lands_on_the_model_its_estimates_favour_and_says_why(
    two_models: tuple[Scenario, Scenario], intensity: float, expected: str, other: str
) -> None:
    cheap, fast = two_models
    worlds = {"cheap": cheap, "fast": fast}
    status = submit(cheap, fast, "profiled", intensity)
    chosen, alternative = worlds[expected].model, worlds[other].model
    assert status["placement"][0]["node"].startswith(chosen.lower())
    choice = status["modelChoice"]
    assert choice["model"] == chosen and choice["optimize"] == "Cost"
    assert [a["model"] for a in choice["alternatives"]] == [alternative]
    assert choice["estimatedCost"] < choice["alternatives"][0]["estimatedCost"]
    # 3.6e17 FLOP at 30 / 33.5 / 100 / 1000 TFLOPS attainable.
    seconds = {(10.0, "cheap"): 12000, (10.0, "fast"): 10746, (1000.0, "cheap"): 3600, (1000.0, "fast"): 360}
    assert choice["estimatedSeconds"] == pytest.approx(seconds[(intensity, expected)], rel=0.01)
    assert choice["alternatives"][0]["estimatedSeconds"] == pytest.approx(seconds[(intensity, other)], rel=0.01)
    wait_for(lambda: "ModelChosen" in cheap.events("profiled"), 15, "the ModelChosen event")
    listed = kubectl(
        cheap.kubeconfig, "get", "events", "-n", cheap.namespace, "-o", "json",
        "--field-selector", "involvedObject.name=profiled,reason=ModelChosen",
    )  # fmt: skip
    message = json.loads(listed.stdout)["items"][0]["message"]
    assert message.startswith(f"placed on {chosen}") and f"{alternative} would be" in message, message
    cheap.wait_phase("profiled", "Succeeded", 60)
