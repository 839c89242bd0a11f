"""Fixtures of the real-node tests: the session cluster's real node (kubelet, containerd,
runc, gpupool's simulated NVIDIA device plugin), the operator and node agent that serve it,
and helpers to run pods on it.

Who uses this: every test under `tests/realnode/`, which `make test` runs in a pytest
session of its own (the kwok suite never sees the node). A device test runs here; a scale
or API test runs on kwok (`tests/integration/`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster_tools import AgentProcess, OperatorProcess, kubectl
from gpupool.devcluster.realnode import OPERATOR_ENV, RealNodeLayout, RealNodeSpec
from kube_helpers import wait_for
from realnode_tools import QUEUE, REAL_NODE_GPUS, REAL_POOL


@pytest.fixture(scope="session")
def real_node(dev_cluster: Any) -> Iterator[str]:
    """The name of the session cluster's real node, Ready with `REAL_NODE_GPUS` simulated GPUs."""
    yield dev_cluster.add_real_node(RealNodeSpec(gpus=REAL_NODE_GPUS), progress=lambda _msg: None)


@pytest.fixture(scope="session")
def pod_resources_socket(dev_cluster: Any, real_node: str) -> Path:
    """The real kubelet's PodResources socket."""
    return RealNodeLayout(dev_cluster.state_dir).pod_resources_socket


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str, dev_cluster: Any, real_node: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The gpupool operator of the real-node session (`OPERATOR_ENV`: share reservation pods
    in the local toolbox image), with a pool and a queue over the real node (`REAL_POOL`,
    `QUEUE`: 8 A100s, amortised 16 per node-hour)."""
    pool = {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUNodePool",
        "metadata": {"name": REAL_POOL},
        "spec": {
            "class": "OnPrem",
            "gpuModel": "A100",
            "gpusPerNode": REAL_NODE_GPUS,
            "nodeSelector": {"gpupool.io/pool": REAL_POOL},
            "pricePerNodeHour": {"amortised": 16.0},
            "provider": "Static",
        },
    }
    queue = {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUQueue",
        "metadata": {"name": QUEUE},
        "spec": {"quotas": [{"gpuModel": "A100", "nominal": REAL_NODE_GPUS}]},
    }
    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all([pool, queue]))
    process = OperatorProcess(
        kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log", state_dir=dev_cluster.state_dir
    )
    process.extra_env = dict(OPERATOR_ENV)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def node_agent(
    kubeconfig: str, real_node: str, pod_resources_socket: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    """The node agent of the real node (simulated GPUs, a 10 s summary window), publishing the
    kubelet's PodResources report as the Node annotation `gpupool.io/pod-devices`."""
    log = tmp_path_factory.mktemp("agent") / "agent.log"
    process = AgentProcess(
        kubeconfig, log, "--pod-resources-socket", str(pod_resources_socket), "--window", "10", node=real_node
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def pods_gone_after_each_test(kubeconfig: str, namespace: str, real_node: str) -> Iterator[None]:
    """Delete the test's GPUJobs and pods and wait until no pod but the system's holds the
    real node's GPUs, so the next test finds every GPU free (the kubelet refuses, for good,
    a pod bound while its GPUs are still held)."""
    yield
    kubectl(kubeconfig, "delete", "gpujobs", "--all", "-n", namespace, "--wait=true", "--timeout=60s")
    kubectl(kubeconfig, "delete", "pods", "--all", "-n", namespace, "--grace-period=1", "--wait=true", "--timeout=60s")

    def no_pod_left() -> bool:
        pods = json.loads(kubectl(kubeconfig, "get", "pods", "-A", "-o", "json").stdout)["items"]
        return not [p for p in pods if p["spec"].get("nodeName") == real_node]

    wait_for(no_pod_left, 90, "every pod on the real node (reservation pods too) to be gone")
