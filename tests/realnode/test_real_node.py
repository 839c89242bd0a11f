"""The real node itself: a kubelet that runs containers and hands them simulated GPUs through
gpupool's device plugin, as NVIDIA's plugin would (UUIDs in NVIDIA_VISIBLE_DEVICES)."""

from __future__ import annotations

from typing import Any

import pytest

from cluster_tools import kubectl
from gpupool.agent.simulated import simulated_uuid
from kube_helpers import wait_for
from realnode_tools import REAL_NODE_GPUS, container_env, pod_json, toolbox_pod_spec, visible_devices

pytestmark = pytest.mark.cluster


def _pod(kubeconfig: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
    import yaml

    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))


def _running(kubeconfig: str, namespace: str, name: str) -> bool:
    return pod_json(kubeconfig, namespace, name).get("status", {}).get("phase") == "Running"


def test_the_node_is_ready_labelled_and_advertises_its_gpus(real_node: str, core_api: Any) -> None:
    node = core_api.read_node(real_node)
    assert node.metadata.labels["gpupool.io/node-kind"] == "real"
    assert node.metadata.labels["nvidia.com/gpu.present"] == "true"
    assert node.status.allocatable["nvidia.com/gpu"] == str(REAL_NODE_GPUS)
    assert node.status.node_info.container_runtime_version.startswith("containerd://2.")


def test_containers_get_distinct_uuids_chosen_by_the_kubelet(real_node: str, kubeconfig: str, namespace: str) -> None:
    _pod(kubeconfig, namespace, "two", toolbox_pod_spec(["sleep", "300"], gpus=2, node=real_node))
    _pod(kubeconfig, namespace, "three", toolbox_pod_spec(["sleep", "300"], gpus=3, node=real_node))
    _pod(kubeconfig, namespace, "none", toolbox_pod_spec(["sleep", "300"], node=real_node))
    for name in ("two", "three", "none"):
        wait_for(lambda n=name: _running(kubeconfig, namespace, n), 60, f"pod {name} to run")
    seen = {name: visible_devices(container_env(kubeconfig, namespace, name)) for name in ("two", "three", "none")}
    known = {simulated_uuid(real_node, index) for index in range(REAL_NODE_GPUS)}
    assert len(seen["two"]) == 2 and len(seen["three"]) == 3 and seen["none"] == ()
    assert set(seen["two"]) | set(seen["three"]) <= known
    assert not set(seen["two"]) & set(seen["three"])


def test_a_pod_asking_more_gpus_than_are_free_is_refused_by_the_kubelet(
    real_node: str, kubeconfig: str, namespace: str
) -> None:
    _pod(kubeconfig, namespace, "greedy", toolbox_pod_spec(["sleep", "300"], gpus=REAL_NODE_GPUS + 1, node=real_node))
    status = wait_for(
        lambda: (s := pod_json(kubeconfig, namespace, "greedy").get("status", {})).get("phase") == "Failed" and s,
        60,
        "the kubelet to refuse the pod",
    )
    assert status["reason"] == "UnexpectedAdmissionError" or status["reason"].startswith("OutOf")


def test_the_kubelets_pod_resources_report_what_each_container_sees(
    real_node: str, kubeconfig: str, namespace: str, dev_cluster: Any
) -> None:
    from gpupool.agent.podresources import pod_devices
    from gpupool.annotations.pod_devices import pod_key
    from gpupool.devcluster.realnode import RealNodeLayout

    _pod(kubeconfig, namespace, "one", toolbox_pod_spec(["sleep", "300"], gpus=1, node=real_node))
    _pod(kubeconfig, namespace, "pair", toolbox_pod_spec(["sleep", "300"], gpus=2, node=real_node))
    for name in ("one", "pair"):
        wait_for(lambda n=name: _running(kubeconfig, namespace, n), 60, f"pod {name} to run")
    report = pod_devices(RealNodeLayout(dev_cluster.state_dir).pod_resources_socket)
    for name in ("one", "pair"):
        assert report[pod_key(namespace, name)] == visible_devices(container_env(kubeconfig, namespace, name))
    held = [device for devices in report.values() for device in devices]
    assert len(held) == len(set(held)), f"a device is held twice: {report}"


def test_the_agent_publishes_the_kubelets_report_on_the_node(
    real_node: str, kubeconfig: str, namespace: str, dev_cluster: Any, core_api: Any, tmp_path: Any
) -> None:
    from cluster_tools import AgentProcess
    from gpupool.annotations.pod_devices import ANNOTATION, parse_pod_devices, pod_key
    from gpupool.devcluster.realnode import RealNodeLayout

    socket_path = RealNodeLayout(dev_cluster.state_dir).pod_resources_socket
    _pod(kubeconfig, namespace, "held", toolbox_pod_spec(["sleep", "300"], gpus=2, node=real_node))
    wait_for(lambda: _running(kubeconfig, namespace, "held"), 60, "pod held to run")
    seen = visible_devices(container_env(kubeconfig, namespace, "held"))
    agent = AgentProcess(kubeconfig, tmp_path / "agent.log", "--pod-resources-socket", str(socket_path), node=real_node)
    try:

        def published() -> dict[str, tuple[str, ...]] | None:
            annotations = core_api.read_node(real_node).metadata.annotations or {}
            report = parse_pod_devices(annotations.get(ANNOTATION))
            return report if report and pod_key(namespace, "held") in report else None

        report = wait_for(published, 30, "the agent to publish the pod's devices")
    finally:
        agent.stop()
    assert report[pod_key(namespace, "held")] == seen
