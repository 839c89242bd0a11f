"""Device truth on the real node: the GPUs a container gets are the GPUs gpupool records.

The kubelet's device manager and gpupool's simulated NVIDIA device plugin choose the GPUs
of every pod that requests `nvidia.com/gpu`; the node agent publishes the kubelet's
PodResources report; the operator records it in `status.placement[].gpuUUIDs` and holds
each shared GPU with a reservation pod. These tests read each running container's
environment with `kubectl exec` and compare it with what gpupool recorded
(`realnode_tools.device_truth_violations`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster_tools import AgentProcess, OperatorProcess, kubectl
from gpupool.agent.podresources import pod_devices
from gpupool.devcluster.checker import check_cluster
from kube_helpers import event_reasons, wait_for
from realnode_tools import (
    device_truth_violations,
    pod_json,
    real_job_manifest,
    toolbox_pod_spec,
)

pytestmark = pytest.mark.cluster


class RealWorld:
    """One test's GPUJobs and pods on the real node, in its namespace."""

    def __init__(self, kubeconfig: str, namespace: str, node: str, socket_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.node = node
        self.socket_path = socket_path

    def apply(self, manifest: dict[str, Any]) -> None:
        kubectl(self.kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))

    def job(self, name: str, gpus: float, **fields: Any) -> str:
        self.apply(real_job_manifest(name, self.namespace, gpus, **fields))
        return name

    def foreign_pod(self, name: str, gpus: int = 1) -> str:
        """A pod gpupool did not create, bound to the real node by its spec, holding `gpus` GPUs."""
        spec = toolbox_pod_spec(["sleep", "3600"], gpus=gpus, node=self.node)
        metadata = {"name": name, "namespace": self.namespace}
        self.apply({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
        return name

    def pod_phase(self, name: str, namespace: str | None = None) -> str:
        """The phase of pod `name` (of the test's namespace unless `namespace` is given)."""
        pod = pod_json(self.kubeconfig, namespace or self.namespace, name)
        return str(pod.get("status", {}).get("phase"))

    def jobs(self) -> dict[str, dict[str, Any]]:
        out = kubectl(self.kubeconfig, "get", "gpujobs", "-n", self.namespace, "-o", "json").stdout
        return {f"{self.namespace}/{j['metadata']['name']}": j for j in json.loads(out)["items"]}

    def status(self, job: str) -> dict[str, Any]:
        return self.jobs().get(f"{self.namespace}/{job}", {}).get("status") or {}

    def running(self, *jobs: str) -> bool:
        """Every one of `jobs` Running with its pods Running and their devices reported."""
        for job in jobs:
            status = self.status(job)
            if status.get("phase") != "Running":
                return False
            for worker in status.get("placement") or []:
                if worker.get("devices") != "Reported" or self.pod_phase(worker["pod"]) != "Running":
                    return False
                reservation_namespace, _, reservation = (worker.get("reservation") or "").partition("/")
                if reservation and self.pod_phase(reservation, reservation_namespace) != "Running":
                    return False
        return True

    def report(self) -> dict[str, tuple[str, ...]]:
        """The kubelet's PodResources answer now."""
        return pod_devices(self.socket_path)

    def violations(self) -> list[str]:
        return device_truth_violations(self.kubeconfig, self.node, self.report(), self.jobs())

    def events(self, name: str) -> list[str]:
        return event_reasons(self.kubeconfig, self.namespace, name)

    def delete_job(self, name: str) -> None:
        kubectl(self.kubeconfig, "delete", "gpujob", name, "-n", self.namespace, "--wait=true", "--timeout=60s")


@pytest.fixture
def world(
    kubeconfig: str,
    namespace: str,
    real_node: str,
    pod_resources_socket: Path,
    operator: OperatorProcess,
    node_agent: AgentProcess,
) -> Iterator[RealWorld]:
    yield RealWorld(kubeconfig, namespace, real_node, pod_resources_socket)


def run_the_mix(world: RealWorld) -> None:
    """On the 8 GPUs: a foreign pod holding 1, whole jobs of 4 and 2 GPUs (the 2-GPU one with
    a sidecar container that asks for none), and shares of 0.25 and 0.5 (one reservation
    pod holds their GPU): all 8 GPUs held."""
    world.foreign_pod("tenant")
    wait_for(lambda: world.pod_phase("tenant") == "Running", 60, "the foreign pod to run")
    world.job("four", 4)
    pair = real_job_manifest("pair", world.namespace, 2)
    sidecar = {**pair["spec"]["template"]["spec"]["containers"][0], "name": "sidecar"}
    pair["spec"]["template"]["spec"]["containers"].append(sidecar)
    world.apply(pair)
    world.job("quarter", 0.25)
    world.job("half", 0.5)
    wait_for(lambda: world.running("four", "pair", "quarter", "half"), 120, "the mix to run with reported devices")


def test_every_container_sees_exactly_the_gpus_gpupool_records(world: RealWorld, api_client: Any) -> None:
    run_the_mix(world)
    assert world.violations() == []
    quarter, half = world.status("quarter")["placement"][0], world.status("half")["placement"][0]
    assert quarter["reservation"] == half["reservation"], "two shares that fit one GPU share its reservation"

    # The node is full: the kubelet refuses a second foreign pod, as it would any pod.
    world.foreign_pod("late-tenant")
    wait_for(lambda: world.pod_phase("late-tenant") == "Failed", 60, "the kubelet to refuse the late foreign pod")

    # A 1-GPU job waits while every GPU is held, and runs on the GPUs the 4-GPU job frees.
    world.job("one", 1)
    wait_for(lambda: world.status("one").get("phase") == "Queued", 30, "the 1-GPU job to wait")
    world.delete_job("four")
    wait_for(lambda: world.running("one"), 90, "the 1-GPU job to run")
    assert world.violations() == []
    report = check_cluster(api_client)
    assert report.ok, report.violations


def test_without_reservation_pods_a_shared_gpu_is_handed_out_twice(
    world: RealWorld, operator: OperatorProcess, api_client: Any
) -> None:
    """What reservation pods prevent: a share requests no `nvidia.com/gpu`, so the kubelet
    counts its GPU as free and gives it to a pod that asks. The check above catches it, and
    so does the chaos checker's physical-truth rule, from the agent's report alone."""
    with operator.running_with(GPUPOOL_SHARE_RESERVATIONS="false"):
        world.foreign_pod("tenant")
        wait_for(lambda: world.pod_phase("tenant") == "Running", 60, "the foreign pod to run")
        world.job("four", 4)
        world.job("pair", 2)
        world.job("half", 0.5)
        wait_for(lambda: world.status("half").get("phase") == "Running", 90, "the share to run")
        wait_for(lambda: world.running("four", "pair"), 90, "the whole-GPU jobs to run")
        # gpupool counts the share's GPU as held; the kubelet does not, and gives it away.
        world.foreign_pod("late-tenant")
        wait_for(lambda: world.pod_phase("late-tenant") == "Running", 60, "the kubelet to run the late foreign pod")
        problems = world.violations()
        assert any("is seen by" in p and "half" in p for p in problems), problems
        wait_for(lambda: check_cluster(api_client).count("device-shared"), 30, "the checker to find the shared GPU")


def _containers(world: RealWorld, pod: str) -> list[tuple[str, int]]:
    """(container ID, restart count) of each container of `pod`."""
    statuses = pod_json(world.kubeconfig, world.namespace, pod).get("status", {}).get("containerStatuses") or []
    return sorted((s.get("containerID", ""), s.get("restartCount", 0)) for s in statuses)


def test_a_kubelet_restart_keeps_every_pods_devices(world: RealWorld, dev_cluster: Any, real_node: str) -> None:
    world.job("pair", 2)
    world.job("half", 0.5)
    wait_for(lambda: world.running("pair", "half"), 90, "the jobs to run")
    placements = {job: world.status(job)["placement"] for job in ("pair", "half")}
    pods = [p["pod"] for entries in placements.values() for p in entries]
    containers = {pod: _containers(world, pod) for pod in pods}
    report = world.report()

    dev_cluster.stop_component("kubelet")
    dev_cluster.start_component("kubelet", wait_seconds=90)
    wait_for(lambda: world.report() == report, 60, "the restarted kubelet to report the same devices")
    dev_cluster.wait_node_gpus(real_node, 8, 90)

    assert {pod: _containers(world, pod) for pod in pods} == containers, "no container was restarted"
    assert {job: world.status(job)["placement"] for job in ("pair", "half")} == placements
    assert all(world.status(job)["attempts"] == 1 for job in ("pair", "half"))
    assert world.violations() == []


def test_idle_stop_stops_the_job_whose_gpus_are_idle_not_its_busy_neighbour(world: RealWorld) -> None:
    idle = {"threshold": 0.05, "after": "10s", "action": "Stop"}
    queue = {"apiVersion": "gpupool.io/v1alpha1", "kind": "GPUQueue", "metadata": {"name": "real-idle"}}
    queue["spec"] = {"quotas": [{"gpuModel": "A100", "nominal": 8}], "idle": idle}
    world.apply(queue)
    try:
        for name, util in (("idler", "0"), ("busy", "0.9")):
            manifest = real_job_manifest(name, world.namespace, 1, util=util)
            manifest["spec"]["queue"] = "real-idle"
            world.apply(manifest)
        wait_for(lambda: world.running("idler", "busy"), 90, "both jobs to run")
        stopped = wait_for(
            lambda: (s := world.status("idler")).get("phase") == "Failed" and s, 90, "the idle job to be stopped"
        )
        assert "GPUIdle" in {c.get("reason") for c in stopped["conditions"]}, stopped["conditions"]
        assert world.status("busy")["phase"] == "Running"
    finally:
        kubectl(world.kubeconfig, "delete", "gpuqueue", "real-idle", "--wait=false")


def test_a_pod_bound_before_the_device_plugin_is_back_is_retried_without_a_failure(
    world: RealWorld, dev_cluster: Any, real_node: str
) -> None:
    """The device plugin is down (restarting, or not registered yet) while the node still
    advertises its GPUs: the kubelet refuses the worker at admission; gpupool requeues it
    without charging a failure, and it runs once the plugin is back."""
    dev_cluster.stop_component("device-plugin")
    try:
        world.job("early", 1, backoffLimit=0)
        rejected = wait_for(
            lambda: (s := world.status("early")).get("admissionRejections", 0) >= 1 and s,
            90,
            "the kubelet to refuse the worker at admission",
        )
        assert rejected.get("failures", 0) == 0
        rejection = rejected["lastAdmissionRejection"]
        assert rejection["node"] == real_node and rejection["reason"], rejection
    finally:
        dev_cluster.start_component("device-plugin")
    dev_cluster.wait_node_gpus(real_node, 8, 90)
    wait_for(lambda: world.running("early"), 240, "the job to run once the plugin is back")
    status = world.status("early")
    assert status.get("failures", 0) == 0 and status["attempts"] >= 2, status
    assert "lastAdmissionRejection" not in status, "cleared once every worker runs"
    assert "AdmissionRejected" in world.events("early")
    assert world.violations() == []
