"""The GPUJob lifecycle on the real control plane with the operator running.

Each test builds a private world (a unique GPU model, its kwok nodes and queues) with the
`Scenario` builder, applies GPUJobs with kubectl as a user would, and watches status, pods
and events.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from cluster_tools import OperatorProcess, kubectl
from kube_helpers import Scenario, job_manifest, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def world(kubeconfig: str, core_api: Any, namespace: str, operator: OperatorProcess) -> Scenario:
    return Scenario(kubeconfig, core_api, namespace)


def test_gang_of_four_two_gpu_workers_is_placed_whole_and_succeeds(world: Scenario) -> None:
    nodes = world.nodes(2, gpus=4)
    world.pool(gpus_per_node=4, amortised_price=36.0)  # 9 per GPU-hour
    queue = world.queue("team", nominal=8)
    world.job("gang", queue, workers=4, gpus=2, duration="4s")

    admitted = wait_for(
        lambda: world.phase("gang") in ("Admitted", "Running") and world.status("gang"), 30, "admission"
    )
    placement = admitted["placement"]
    assert sorted(p["worker"] for p in placement) == [0, 1, 2, 3]
    assert all(len(p["gpuIndices"]) == 2 for p in placement)
    assert Counter(p["node"] for p in placement) == {nodes[0]: 2, nodes[1]: 2}
    for node in nodes:  # no GPU index handed out twice on a node
        indices = [i for p in placement if p["node"] == node for i in p["gpuIndices"]]
        assert len(indices) == len(set(indices)) == 4

    pods = wait_for(lambda: len(p := world.pods("gang")) == 4 and p, 20, "four worker pods")
    for pod in pods:
        assert pod["spec"]["schedulerName"] == "gpupool"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "GPUJob"

    world.wait_phase("gang", "Running", 30)
    final = world.wait_phase("gang", "Succeeded", 40)
    assert final["attempts"] == 1 and final["gpuSeconds"] > 0
    assert final["cost"] == pytest.approx(final["gpuSeconds"] / 3600 * 9.0, rel=0.01)
    assert final["finishedAt"] >= final["startedAt"]
    # Events are posted in the background (best-effort, as client-go's recorder does).
    wait_for(lambda: {"Queued", "Admitted", "Started", "Finished"} <= set(world.events("gang")), 10, "events")


def test_gang_that_cannot_fit_creates_no_pod_and_says_why(world: Scenario) -> None:
    world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=16)
    world.job("too-big", queue, workers=3, gpus=4)

    status = wait_for(
        lambda: "3 x 4 GPUs" in ((s := world.status("too-big")).get("message") or "") and s, 30, "a reason"
    )
    assert status["phase"] == "Queued"
    assert world.pods("too-big") == []
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Admitted"]["status"] == "False"


def test_job_waits_with_a_message_and_starts_as_soon_as_capacity_frees(world: Scenario) -> None:
    world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("first", queue, gpus=8, duration="6s")
    world.wait_phase("first", "Running", 30)
    world.job("second", queue, gpus=4, duration="3s")

    waiting = wait_for(
        lambda: "4 GPU" in ((s := world.status("second")).get("message") or "") and s, 20, "a waiting message"
    )
    assert waiting["phase"] == "Queued"
    assert world.status("first")["phase"] == "Running"

    world.wait_phase("first", "Succeeded", 30)
    world.wait_phase("second", "Running", 15)


def test_deleting_a_job_removes_its_pods_and_frees_its_gpus(world: Scenario) -> None:
    world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("hog", queue, workers=2, gpus=4, duration="10m")
    world.wait_phase("hog", "Running", 30)
    world.job("next", queue, gpus=8, duration="5s")
    wait_for(lambda: world.status("next").get("message"), 20, "next to wait")
    assert world.phase("next") == "Queued"

    kubectl(world.kubeconfig, "delete", "gpujob", "hog", "-n", world.namespace, "--wait=false")
    wait_for(lambda: world.pods("hog") == [], 30, "hog's pods to be deleted")
    world.wait_phase("next", "Running", 20)


def test_fractional_jobs_share_one_gpu(world: Scenario) -> None:
    nodes = world.nodes(1, gpus=1)
    queue = world.queue("team", nominal=1)
    world.job("half-a", queue, gpus=0.5, duration="20s")
    world.job("half-b", queue, gpus=0.5, duration="20s")

    a = world.wait_phase("half-a", "Running", 30)
    b = world.wait_phase("half-b", "Running", 30)
    for status in (a, b):
        (worker,) = status["placement"]
        assert (worker["node"], worker["gpuIndices"], worker["gpuShare"]) == (nodes[0], [0], 0.5)
    pod = world.pods("half-a")[0]
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "0" and env["GPUPOOL_GPU_SHARE"] == "0.5"
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"].get("limits", {})


def test_failed_worker_restarts_the_gang_then_fails_past_backoff_limit(world: Scenario) -> None:
    world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("flaky", queue, workers=2, gpus=2, duration=None, fail_after="1s", backoffLimit=1)

    final = world.wait_phase("flaky", "Failed", 60)
    assert final["attempts"] == 2
    assert "no retries left" in final["message"]
    wait_for(lambda: "Restarting" in (events := world.events("flaky")) and "Failed" in events, 10, "events")


def test_a_pod_the_kubelet_refuses_at_admission_requeues_the_gang_without_a_failure(world: Scenario) -> None:
    """The kubelet's rejection is mimicked through the status subresource, as the kubelet
    writes it: phase Failed, its reason and message, no container status."""
    world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("refused", queue, gpus=1, duration="4s")
    pod = wait_for(lambda: world.pods("refused"), 30, "the first worker pod")[0]
    rejection = {
        "status": {
            "phase": "Failed",
            "reason": "OutOfnvidia.com/gpu",
            "message": "Pod was rejected: Node didn't have enough resource: nvidia.com/gpu",
            "containerStatuses": None,
            "conditions": None,
        }
    }
    kubectl(
        world.kubeconfig, "patch", "pod", pod["metadata"]["name"], "-n", world.namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(rejection),
    )  # fmt: skip
    node = pod["spec"]["nodeName"]
    held = wait_for(
        lambda: (s := world.status("refused")).get("admissionRejections") == 1 and s.get("phase") == "Queued" and s,
        30,
        "the gang requeued after the rejection",
    )
    assert held["failures"] == 0
    assert held["lastAdmissionRejection"]["node"] == node
    assert held["lastAdmissionRejection"]["reason"] == "OutOfnvidia.com/gpu"
    assert held["message"].startswith(
        f"the kubelet on node {node} refused pod {pod['metadata']['name']} at admission (OutOfnvidia.com/gpu)"
    )
    assert "not counted as a failure" in held["message"]
    final = world.wait_phase("refused", "Succeeded", 60)
    assert (final["attempts"], final["failures"], final.get("admissionRejections", 0)) == (2, 0, 0)
    first, second = final["provenance"]["attempts"][-2:]
    assert first["outcome"] == "AdmissionRejected"
    ended, readmitted = (
        datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (first["endedAt"], second["admittedAt"])
    )
    assert (readmitted - ended).total_seconds() >= 9, "placed again before its hold ended"
    events = world.events("refused")
    assert "AdmissionRejected" in events and "Restarting" not in events


def test_a_shorter_max_runtime_set_on_a_running_job_stops_it(world: Scenario) -> None:
    """maxRuntime, priority, preemptible and backoffLimit may change after creation (what a job
    holds may not: see test_bad_input); a running job obeys its new limit."""
    world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("long", queue, gpus=1, duration="10m")
    world.wait_phase("long", "Running", 30)
    edit = json.dumps({"spec": {"maxRuntime": "2s", "priority": 5}})
    kubectl(world.kubeconfig, "patch", "gj", "long", "-n", world.namespace, "--type", "merge", "-p", edit)

    final = world.wait_phase("long", "Failed", 40)
    assert "maxRuntime" in final["message"] and final["attempts"] == 1


def test_max_runtime_is_enforced(world: Scenario) -> None:
    world.nodes(1, gpus=8)
    queue = world.queue("team", nominal=8)
    world.job("slow", queue, gpus=1, duration="10m", maxRuntime="3s")

    final = world.wait_phase("slow", "Failed", 40)
    assert "maxRuntime" in final["message"]
    wait_for(
        lambda: (
            all(p["status"].get("phase") in ("Succeeded", "Failed") for p in world.pods("slow"))
            or not world.pods("slow")
        ),
        20,
        "the job's pods to stop",
    )


@pytest.mark.parametrize("case", ["missing-queue", "namespace-not-allowed"])
def test_job_for_a_queue_it_may_not_use_is_not_admitted_and_says_why(world: Scenario, case: str) -> None:
    world.nodes(1, gpus=8)
    if case == "missing-queue":
        queue, expected = "no-such-queue", "does not exist"
    else:
        queue = world.queue("private", nominal=8, namespaceSelector={"matchLabels": {"team": "elsewhere"}})
        expected = "may not submit"
    world.job("lost", queue, gpus=1)
    status = wait_for(lambda: expected in ((s := world.status("lost")).get("message") or "") and s, 20, "the reason")
    assert status["phase"] == "Queued"
    assert world.pods("lost") == []


def test_operator_killed_mid_way_loses_no_job_and_duplicates_no_pod(world: Scenario, operator: OperatorProcess) -> None:
    world.nodes(2, gpus=8)
    queue = world.queue("team", nominal=16)
    names = [world.job(f"job-{i}", queue, workers=2, gpus=2, duration="6s") for i in range(6)]
    wait_for(lambda: any(world.phase(n) in ("Admitted", "Running") for n in names), 30, "some admissions")

    operator.kill(signal.SIGKILL)
    operator.start()

    for name in names:
        world.wait_phase(name, "Succeeded", 90)
    pods = world.pods()
    by_worker = Counter(
        (p["metadata"]["labels"]["gpupool.io/job"], p["metadata"]["labels"]["gpupool.io/worker"]) for p in pods
    )
    assert set(by_worker) == {(n, w) for n in names for w in ("0", "1")}
    assert all(count == 1 for count in by_worker.values()), by_worker
    assert all(world.status(n)["attempts"] == 1 for n in names)


def test_a_burst_of_jobs_all_reach_running_without_a_resync(world: Scenario) -> None:
    """Every watch event and write answer lands in the cache in order: no job is left Admitted
    while its pods run (the operator's periodic re-list is an hour away in tests)."""
    world.nodes(4, gpus=8)
    queue = world.queue("team", nominal=32)
    names = [f"burst-{i}" for i in range(32)]
    world.apply(*[job_manifest(n, world.namespace, queue, models=[world.model], duration="600s") for n in names])

    def phases() -> Counter[str]:
        out = kubectl(world.kubeconfig, "get", "gpujobs", "-n", world.namespace, "-o", "json").stdout
        return Counter(str((j.get("status") or {}).get("phase")) for j in json.loads(out)["items"])

    wait_for(lambda: phases()["Running"] == len(names), 90, "all 32 jobs to be Running")
    assert len(world.pods()) == len(names)


def bind_foreign_pod(world: Scenario, name: str, node: str, requests: dict[str, str]) -> None:
    """A pod gpupool did not create, bound straight to `node` (as a DaemonSet's or another
    scheduler's pod is)."""
    container = {"name": "main", "image": "busybox", "resources": {"requests": requests, "limits": requests}}
    body = {"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [container]}}
    world.core_api.create_namespaced_pod(world.namespace, body)


def test_gpus_and_cpu_held_by_pods_gpupool_did_not_create_are_not_promised_again(world: Scenario) -> None:
    gpu_node, cpu_node = world.nodes(2, gpus=8, cpu="64")
    queue = world.queue("team", nominal=16)

    def foreign(name: str, node: str, requests: dict[str, str]) -> None:
        bind_foreign_pod(world, name, node, requests)

    foreign("tenant-trainer", gpu_node, {"nvidia.com/gpu": "8"})  # another scheduler's job: every GPU
    foreign("log-agent", cpu_node, {"cpu": "60", "memory": "1Gi"})  # a DaemonSet-style pod: most CPUs
    world.job("needs-cpu", queue, gpus=4, cpu="8")

    waiting = wait_for(lambda: "waiting" in ((s := world.status("needs-cpu")).get("message") or "") and s, 30, "why")
    assert waiting["phase"] == "Queued" and world.pods("needs-cpu") == []

    world.core_api.delete_namespaced_pod("log-agent", world.namespace, grace_period_seconds=0)
    running = world.wait_phase("needs-cpu", "Running", 30)
    assert {p["node"] for p in running["placement"]} == {cpu_node}

    world.job("whole-node", queue, gpus=4)  # 4 GPUs left on cpu_node; gpu_node's are held
    placed = world.wait_phase("whole-node", "Running", 30)
    assert {p["node"] for p in placed["placement"]} == {cpu_node}
    world.job("after", queue, gpus=8)
    reason = f"pods gpupool does not manage hold 8 GPUs on {gpu_node}"
    wait_for(lambda: reason in (world.status("after").get("message") or ""), 30, "a reason naming the foreign pod")

    world.core_api.delete_namespaced_pod("tenant-trainer", world.namespace, grace_period_seconds=0)
    back = world.wait_phase("after", "Running", 30)
    assert {p["node"] for p in back["placement"]} == {gpu_node}


def test_pod_slots_held_by_pods_gpupool_did_not_create_are_not_promised_again(world: Scenario) -> None:
    """A node runs at most its allocatable `pods`; a foreign pod takes one of them."""
    (node,) = world.nodes(1, gpus=8, pods=2)
    queue = world.queue("team", nominal=8)
    bind_foreign_pod(world, "sidecar", node, {"cpu": "100m"})
    world.job("pair", queue, workers=2, gpus=1)

    reason = f"pod slots of {node}"
    waiting = wait_for(lambda: reason in ((s := world.status("pair")).get("message") or "") and s, 30, "why")
    assert waiting["phase"] == "Queued" and world.pods("pair") == []

    world.core_api.delete_namespaced_pod("sidecar", world.namespace, grace_period_seconds=0)
    running = world.wait_phase("pair", "Running", 30)
    assert [p["node"] for p in running["placement"]] == [node, node]
