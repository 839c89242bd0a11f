"""Fixtures of the real-node tests: the session cluster's real node (kubelet, containerd,
runc, gpupool's simulated NVIDIA device plugin) and helpers to run pods on it.

Who uses this: every test under `tests/realnode/`, which `make test` runs in a pytest
session of its own (the kwok suite never sees the node). A device test runs here; a scale
or API test runs on kwok (`tests/integration/`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cluster_tools import kubectl
from gpupool.devcluster.realnode import RealNodeSpec
from realnode_tools import REAL_NODE_GPUS


@pytest.fixture(scope="session")
def real_node(dev_cluster: Any) -> Iterator[str]:
    """The name of the session cluster's real node, Ready with `REAL_NODE_GPUS` simulated GPUs."""
    yield dev_cluster.add_real_node(RealNodeSpec(gpus=REAL_NODE_GPUS), progress=lambda _msg: None)


@pytest.fixture(autouse=True)
def pods_gone_after_each_test(kubeconfig: str, namespace: str) -> Iterator[None]:
    """Delete the test's pods and wait until they are gone, so the next test finds every GPU
    free (the kubelet refuses, for good, a pod bound while its GPUs are still held)."""
    yield
    kubectl(kubeconfig, "delete", "pods", "--all", "-n", namespace, "--grace-period=1", "--wait=true", "--timeout=60s")
