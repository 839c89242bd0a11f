"""Helpers of the real-node tests: pods that run on the real node and what their containers see.

Kept beside `cluster_tools` (not in a conftest) so tests import them by name.
"""

from __future__ import annotations

import json
from typing import Any

from cluster_tools import kubectl
from gpupool.devcluster.node_images import TOOLBOX_IMAGE

REAL_NODE_GPUS = 8
"""Simulated GPUs on the real-node session's node."""


def toolbox_pod_spec(command: list[str], *, gpus: int = 0, node: str | None = None) -> dict[str, Any]:
    """A pod spec for the real node: the local toolbox image, host network (the node has no pod
    network: only loopback may carry traffic here), `gpus` whole nvidia.com/gpu on the first container."""
    container: dict[str, Any] = {
        "name": "main",
        "image": TOOLBOX_IMAGE,
        "imagePullPolicy": "Never",
        "command": command,
    }
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    spec: dict[str, Any] = {
        "hostNetwork": True,
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "containers": [container],
    }
    if node:
        spec["nodeName"] = node
    return spec


def container_env(kubeconfig: str, namespace: str, pod: str, container: str | None = None) -> dict[str, str]:
    """The environment of a running container, read inside it with `kubectl exec ... env`."""
    args = ["exec", "-n", namespace, pod]
    if container:
        args += ["-c", container]
    out = kubectl(kubeconfig, *args, "--", "env").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def visible_devices(env: dict[str, str]) -> tuple[str, ...]:
    """The device IDs in `NVIDIA_VISIBLE_DEVICES` (none for unset, `void` or `none`)."""
    value = env.get("NVIDIA_VISIBLE_DEVICES", "")
    if value in ("", "void", "none"):
        return ()
    return tuple(sorted(value.split(",")))


def pod_json(kubeconfig: str, namespace: str, pod: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl(kubeconfig, "get", "pod", pod, "-n", namespace, "-o", "json").stdout)
    return result
