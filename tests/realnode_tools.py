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


QUEUE = "real-team"
"""The real-node session's GPUQueue (8 A100s nominal), over the pool `REAL_POOL`."""
REAL_POOL = "real"
"""The real-node session's GPUNodePool, selecting the real node by its `gpupool.io/pool` label."""


def real_job_manifest(
    name: str,
    namespace: str,
    gpus: float,
    *,
    util: str | None = None,
    command: tuple[str, ...] = ("sleep", "3600"),
    **spec: Any,
) -> dict[str, Any]:
    """A GPUJob of `QUEUE` whose workers run `command` in the toolbox image on the real node;
    `util` is the simulated agent's `gpupool.io/sim-gpu-util` for its GPUs."""
    from kube_helpers import job_manifest

    annotations = {"gpupool.io/sim-gpu-util": util} if util is not None else {}
    manifest = job_manifest(
        name, namespace, QUEUE, gpus=gpus, models=["A100"], duration=None, annotations=annotations, **spec
    )
    manifest["spec"]["template"]["spec"] = toolbox_pod_spec(list(command))
    return manifest


def gpus_seen(kubeconfig: str, pod: dict[str, Any], node_uuids: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Each container of a running `pod` -> the GPU UUIDs it sees, read inside it with
    `kubectl exec`: its `NVIDIA_VISIBLE_DEVICES`, an index taken as the node's GPU of that
    index (`node_uuids`, as NVIDIA's container toolkit would)."""
    seen = {}
    for container in pod["spec"]["containers"]:
        env = container_env(kubeconfig, pod["metadata"]["namespace"], pod["metadata"]["name"], container["name"])
        seen[container["name"]] = tuple(sorted(node_uuids.get(d, d) for d in visible_devices(env)))
    return seen


def device_truth_violations(
    kubeconfig: str, node: str, report: dict[str, tuple[str, ...]], jobs: dict[str, dict[str, Any]]
) -> list[str]:
    """What is wrong between what every running container on `node` sees and what is recorded.

    `report`: the kubelet's PodResources answer (`namespace/name` -> UUIDs); `jobs`: the
    GPUJobs by `namespace/name`. A gpupool worker's GPU containers must see exactly the
    UUIDs its job's `status.placement` records, and its other containers none; any other
    pod (a reservation pod, a foreign pod) exactly what the kubelet reports it holds. And no
    UUID may be seen by two holders, where the shares of one reservation count as that
    reservation pod (a share without one is a holder of its own).
    """
    from gpupool.agent.simulated import simulated_uuid

    uuids = {str(i): simulated_uuid(node, i) for i in range(REAL_NODE_GPUS)}
    pods = json.loads(kubectl(kubeconfig, "get", "pods", "-A", "-o", "json").stdout)["items"]
    problems: list[str] = []
    holders: dict[str, set[str]] = {}
    for pod in pods:
        if pod["spec"].get("nodeName") != node or pod["status"].get("phase") != "Running":
            continue
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        seen = gpus_seen(kubeconfig, pod, uuids)
        labels = pod["metadata"].get("labels") or {}
        holder = key
        if "gpupool.io/job" in labels:
            job = jobs.get(f"{pod['metadata']['namespace']}/{labels['gpupool.io/job']}") or {}
            placement = job.get("status", {}).get("placement") or []
            placed = [p for p in placement if p.get("pod") == pod["metadata"]["name"]]
            if len(placed) != 1:
                problems.append(f"{key}: runs, but its job's status.placement has no entry for it")
                continue
            expected = tuple(sorted(placed[0].get("gpuUUIDs") or []))
            holder = placed[0].get("reservation") or key
        else:
            expected = report.get(key, ())
        for position, container in enumerate(pod["spec"]["containers"]):
            devices = seen[container["name"]]
            resources = container.get("resources") or {}
            wants_gpu = any("nvidia.com/gpu" in (resources.get(k) or {}) for k in ("limits", "requests"))
            # A share's GPU goes to its first container, as whole GPUs do.
            is_share = position == 0 and any(e.get("name") == "GPUPOOL_GPU_SHARE" for e in container.get("env") or [])
            where = f"{key}/{container['name']}"
            if (wants_gpu or is_share) and devices != expected:
                problems.append(f"{where} sees {list(devices)}; recorded: {list(expected)}")
            if not (wants_gpu or is_share) and devices:
                problems.append(f"{where} asked for no GPU but sees {list(devices)}")
            for device in devices:
                holders.setdefault(device, set()).add(holder)
    problems += [f"GPU {device} is seen by {sorted(who)}" for device, who in sorted(holders.items()) if len(who) > 1]
    return problems
