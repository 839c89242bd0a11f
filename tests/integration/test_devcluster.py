"""The local control plane is real: kwok GPU nodes, pods that run for their annotated
time, RBAC that says no, and a `dev up` that refuses to start a second cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from cluster_tools import kubectl
from gpupool.cluster.nodes.kwok_nodes import GPU_RESOURCE, LABEL_GPU_MODEL, GpuNodeSpec, NodeTaint
from gpupool.cluster.nodes.kwok_provider import create_gpu_node
from gpupool.devcluster.versions import KUBERNETES_VERSION
from kube_helpers import wait_for

pytestmark = pytest.mark.cluster


def sleeper_pod(name: str, node: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "tolerations": [{"key": "gpupool.io/test", "operator": "Exists"}],
            "containers": [{"name": "main", "image": "busybox", "resources": {"limits": {GPU_RESOURCE: "1"}}}],
        },
    }


def parse_time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_apiserver_reports_the_pinned_version(kubeconfig: str) -> None:
    out = kubectl(kubeconfig, "get", "--raw", "/version").stdout
    assert json.loads(out)["gitVersion"] == KUBERNETES_VERSION


def test_kwok_gpu_node_is_ready_with_gpu_capacity_labels_and_taints(core_api: Any) -> None:
    spec = GpuNodeSpec(
        name="it-node-labels",
        gpus=4,
        gpu_model="H100",
        pool="cloud-h100",
        node_class="Cloud",
        spot=True,
        taints=(NodeTaint("gpupool.io/test", "x"),),
    )
    create_gpu_node(core_api, spec)

    def ready() -> Any:
        node = core_api.read_node(spec.name)
        conditions = {c.type: c.status for c in (node.status.conditions or [])}
        taints = {t.key for t in node.spec.taints or []}
        # The node lifecycle controller lifts its not-ready taint once kwok reports Ready.
        return node if conditions.get("Ready") == "True" and "node.kubernetes.io/not-ready" not in taints else None

    node = wait_for(ready, 60, "the kwok node to become Ready and lose its not-ready taint")
    assert node.status.allocatable[GPU_RESOURCE] == "4"
    assert node.metadata.labels[LABEL_GPU_MODEL] == "H100"
    assert node.metadata.labels["gpupool.io/class"] == "Cloud"
    assert node.metadata.labels["gpupool.io/spot"] == "true"
    assert [(t.key, t.effect) for t in node.spec.taints] == [("gpupool.io/test", "NoSchedule")]


def test_pod_on_kwok_node_runs_then_succeeds_after_its_annotated_delay(core_api: Any, namespace: str) -> None:
    create_gpu_node(core_api, GpuNodeSpec(name="it-node-run", gpus=8))
    core_api.create_namespaced_pod(namespace, sleeper_pod("train", "it-node-run", {"gpupool.io/sim-duration": "6s"}))

    def phase() -> str:
        return str(core_api.read_namespaced_pod("train", namespace).status.phase)

    wait_for(lambda: phase() == "Running", 20, "the pod to run")
    time.sleep(3)
    assert phase() == "Running", "the pod finished before its annotated 6s"
    wait_for(lambda: phase() == "Succeeded", 20, "the pod to succeed")
    pod = core_api.read_namespaced_pod("train", namespace)
    started = parse_time(pod.status.start_time.isoformat())
    finished = pod.status.container_statuses[0].state.terminated.finished_at
    ran_for = (finished - started).total_seconds()
    assert 5.0 <= ran_for <= 9.0, f"ran for {ran_for}s, expected about 6s"


def test_pod_annotated_to_fail_ends_failed(core_api: Any, namespace: str) -> None:
    create_gpu_node(core_api, GpuNodeSpec(name="it-node-fail", gpus=8))
    core_api.create_namespaced_pod(namespace, sleeper_pod("crash", "it-node-fail", {"gpupool.io/sim-fail-after": "1s"}))
    wait_for(lambda: core_api.read_namespaced_pod("crash", namespace).status.phase == "Failed", 20, "the pod to fail")


def test_deleted_pod_is_gone_without_a_kubelet(core_api: Any, namespace: str) -> None:
    create_gpu_node(core_api, GpuNodeSpec(name="it-node-delete", gpus=8))
    core_api.create_namespaced_pod(namespace, sleeper_pod("victim", "it-node-delete", {}))
    wait_for(lambda: core_api.read_namespaced_pod("victim", namespace).status.phase == "Running", 20, "running")
    core_api.delete_namespaced_pod("victim", namespace)

    def gone() -> bool:
        try:
            core_api.read_namespaced_pod("victim", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, 20, "the pod to disappear")


def test_rbac_denies_an_unprivileged_identity(kubeconfig: str, namespace: str) -> None:
    denied = kubectl(kubeconfig, "get", "pods", "-n", namespace, "--as=alice", check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr and 'User "alice" cannot list resource "pods"' in denied.stderr

    # A real service-account token, signed by the apiserver, is denied until a role allows it.
    kubectl(kubeconfig, "create", "serviceaccount", "reader", "-n", namespace)
    token = kubectl(kubeconfig, "create", "token", "reader", "-n", namespace).stdout.strip()
    as_reader = ("--token", token, "--kubeconfig", "/dev/null")
    server = json.loads(kubectl(kubeconfig, "config", "view", "--raw", "-o", "json").stdout)["clusters"][0]["cluster"]
    flags = (*as_reader, "--server", server["server"], "--certificate-authority", server["certificate-authority"])
    before = kubectl(kubeconfig, "get", "pods", "-n", namespace, *flags, check=False)
    assert before.returncode != 0 and "Forbidden" in before.stderr
    kubectl(kubeconfig, "create", "role", "pod-reader", "--verb=list", "--resource=pods", "-n", namespace)
    kubectl(
        kubeconfig,
        "create",
        "rolebinding",
        "reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    after = wait_for(
        lambda: (r := kubectl(kubeconfig, "get", "pods", "-n", namespace, *flags, check=False)).returncode == 0 and r,
        15,
        "the role binding to take effect",
    )
    assert after.returncode == 0


def test_second_dev_up_does_not_start_another_cluster(dev_cluster: Any) -> None:
    before = [(r.name, r.pid) for r, alive in dev_cluster.running() if alive]
    result = subprocess.run(
        [sys.executable, "-m", "gpupool.cli", "dev", "up", "--state-dir", str(dev_cluster.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    assert f"export KUBECONFIG={dev_cluster.kubeconfig}" in result.stdout
    after = [(r.name, r.pid) for r, alive in dev_cluster.running() if alive]
    assert after == before and len(after) == 6
    assert "prometheus" in {name for name, _ in after}

    status = subprocess.run(
        [sys.executable, "-m", "gpupool.cli", "dev", "status", "--state-dir", str(dev_cluster.state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 0 and status.stdout.count("running") == 6
    assert f"prometheus: {dev_cluster.prometheus_url()}" in status.stdout
