"""Node autoscaling on the real control plane: Kwok cloud pools grow for gangs that do not fit
on-prem, the nodes run the work, and idle nodes go away.

Each test has its own GPU model, on-prem node and Kwok pools (provisioning delay and
`scaleDownAfter` shortened to seconds), and watches GPUNodeClaims, nodes and jobs as a
platform engineer would with `kubectl get gpunodeclaims,gpunodepools`.
"""

from __future__ import annotations

import signal
from collections import Counter
from typing import Any

import pytest

from cluster_tools import OperatorProcess, kubectl
from kube_helpers import Scenario, job_manifest, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> Scenario:
    return Scenario(kubeconfig, core_api, namespace)


def onprem_full(world: Scenario, *, allow_spot: bool = True) -> str:
    """One on-prem node of the scenario's model, all of whose GPUs a long job holds; the
    queue (returned) may burst to cloud, and to spot when `allow_spot`."""
    world.nodes(1, gpus=8)
    world.pool()
    queue = world.queue("team", nominal=64, allowCloud=True, allowSpot=allow_spot)
    world.job("hog", queue, gpus=8, duration="10m")
    world.wait_phase("hog", "Running", 30)
    return queue


def test_a_gang_too_big_for_onprem_bursts_to_the_cheapest_pool_and_the_nodes_go_when_idle(world: Scenario) -> None:
    queue = onprem_full(world)
    dear = world.cloud_pool("dear", on_demand=40.0)
    cheap = world.cloud_pool("cheap", on_demand=30.0, scale_down_after="6s")
    world.job("burst", queue, workers=2, gpus=8, duration="4s", placement="CloudAllowed")
    world.job("stay", queue, gpus=8, duration="4s")  # OnPremOnly: never causes a node

    waiting = wait_for(
        lambda: "new nodes in pool" in ((s := world.status("burst")).get("message") or "") and s, 30, "the reason"
    )
    assert f"waiting for 2 new nodes in pool {cheap}" in waiting["message"]
    claims = wait_for(lambda: len(c := world.claims()) == 2 and c, 20, "two claims")
    assert {c["spec"]["pool"] for c in claims} == {cheap}
    assert all(c["spec"]["jobs"] == [f"{world.namespace}/burst"] for c in claims)
    assert "NodesRequested" in world.events("burst")
    provisioning = "jsonpath={.status.nodesProvisioning}"
    wait_for(
        lambda: kubectl(world.kubeconfig, "get", "gpunodepool", cheap, "-o", provisioning).stdout == "2",
        10,
        "the pool to show 2 nodes provisioning",
    )

    running = world.wait_phase("burst", "Running", 60)
    nodes = sorted({p["node"] for p in running["placement"]})
    assert nodes == sorted(c["metadata"]["name"] for c in claims) == world.cloud_nodes()
    assert all(p["pool"] == cheap for p in running["placement"])
    world.wait_phase("burst", "Succeeded", 60)

    wait_for(lambda: world.claims() == [] and world.cloud_nodes() == [], 60, "the idle nodes to be released")
    assert world.claims(dear) == []
    assert world.phase("stay") == "Queued" and world.pods("stay") == []


def test_two_jobs_share_a_new_node_and_spot_follows_the_queue(world: Scenario) -> None:
    no_spot = onprem_full(world, allow_spot=False)
    on_demand = world.cloud_pool("mixed", on_demand=32.0, spot=10.0)
    pair = [
        job_manifest(n, world.namespace, no_spot, gpus=4, duration="3s", models=[world.model], placement="SpotAllowed")
        for n in ("a", "b")
    ]
    world.apply(*pair)

    a = world.wait_phase("a", "Running", 60)
    b = world.wait_phase("b", "Running", 60)
    assert a["placement"][0]["node"] == b["placement"][0]["node"]
    (claim,) = world.claims()
    assert claim["spec"]["pool"] == on_demand and claim["spec"]["capacityType"] == "OnDemand"
    # One node for both: the second job is planned onto the first one's node, whether the
    # operator saw both in one cycle (one claim for both) or the second a cycle later.
    assert set(claim["spec"]["jobs"]) <= {f"{world.namespace}/a", f"{world.namespace}/b"}


def test_max_nodes_holds(world: Scenario) -> None:
    queue = onprem_full(world)
    capped = world.cloud_pool("capped", maxNodes=1)
    world.job("pair", queue, workers=2, gpus=8, placement="CloudAllowed")
    world.job("single", queue, gpus=8, duration="3s", placement="CloudAllowed")

    world.wait_phase("single", "Running", 60)
    assert len(world.claims(capped)) == 1
    assert world.phase("pair") == "Queued"


def test_operator_killed_while_nodes_are_in_flight_makes_no_duplicate(
    world: Scenario, operator: OperatorProcess
) -> None:
    queue = onprem_full(world)
    world.cloud_pool("slow", delay="8s")
    world.job("burst", queue, workers=2, gpus=8, duration="3s", placement="CloudAllowed")
    wait_for(lambda: len(world.claims()) == 2, 30, "two claims")

    operator.kill(signal.SIGKILL)
    operator.start()

    world.wait_phase("burst", "Succeeded", 90)
    assert len(world.cloud_nodes()) <= 2
    created = Counter(c["metadata"]["name"] for c in world.claims())
    assert all(n == 1 for n in created.values())


def test_a_pool_that_cannot_launch_falls_back_to_the_next_cheapest(world: Scenario) -> None:
    queue = onprem_full(world)
    broken = world.cloud_pool("broken", on_demand=20.0, annotations={"gpupool.io/kwok-failure-rate": "1.0"})
    working = world.cloud_pool("working", on_demand=30.0)
    world.job("burst", queue, gpus=8, duration="3s", placement="CloudAllowed")

    failed = wait_for(
        lambda: [c for c in world.claims(broken) if (c.get("status") or {}).get("phase") == "Failed"], 60, "a failure"
    )
    assert failed[0]["status"]["reason"] in ("CapacityUnavailable", "ProviderTransient")
    running = world.wait_phase("burst", "Running", 90)
    assert {p["pool"] for p in running["placement"]} == {working}


def test_with_30_percent_of_launches_failing_every_job_runs_and_no_node_is_extra(
    world: Scenario, operator: OperatorProcess
) -> None:
    with operator.running_with(GPUPOOL_KWOK_FAILURE_RATE="0.3"):
        queue = onprem_full(world)
        world.cloud_pool("first", on_demand=20.0)
        world.cloud_pool("second", on_demand=30.0)
        names = [f"b{i}" for i in range(4)]
        world.apply(
            *(
                job_manifest(
                    n, world.namespace, queue, gpus=8, duration="3s", models=[world.model], placement="CloudAllowed"
                )
                for n in names
            )
        )
        most_live = 0

        def all_done() -> bool:
            nonlocal most_live
            live = [c for c in world.claims() if (c.get("status") or {}).get("phase") not in ("Failed", "Deleting")]
            most_live = max(most_live, len(live))
            return all(world.phase(n) == "Succeeded" for n in names)

        wait_for(all_done, 180, "every job to succeed")
        assert most_live <= len(names)
        for claim in world.claims():
            if (claim.get("status") or {}).get("phase") == "Failed":
                assert claim["status"]["reason"] in ("CapacityUnavailable", "ProviderTransient")


def test_a_spot_interruption_requeues_the_gang_within_a_minute_without_spending_its_backoff(
    world: Scenario,
) -> None:
    queue = onprem_full(world)
    world.cloud_pool("spot", on_demand=32.0, spot=10.0)
    world.job("preemptible", queue, workers=2, gpus=8, duration="10m", placement="SpotAllowed", backoffLimit=0)
    running = world.wait_phase("preemptible", "Running", 60)
    victim = running["placement"][0]["node"]

    kubectl(world.kubeconfig, "delete", "node", victim, "--wait=false")  # what `gpupool dev interrupt` does
    wait_for(lambda: "Interrupted" in world.events("preemptible"), 60, "the gang to be requeued")
    assert world.status("preemptible").get("failures", 0) == 0
    again = world.wait_phase("preemptible", "Running", 90)
    assert victim not in {p["node"] for p in again["placement"]}
    assert again.get("failures", 0) == 0 and again["attempts"] == 2
