"""The Node annotation in which the node agent publishes which pod holds which GPUs.

Who uses this: the agent (`gpupool.agent.run`) writes it with `format_pod_devices` from the
kubelet's PodResources API (`List`) whenever the answer changes; the operator reads it with
`parse_pod_devices` to learn the devices the kubelet's device manager gave each pod, which
is the one truth on a device-plugin node (gpupool asks for a count; the kubelet and the
device plugin choose the GPUs). The module is pure (standard library only) so that any
layer may import it.

The annotation `gpupool.io/pod-devices` holds one JSON object:

    {"v":1,"resource":"nvidia.com/gpu",
     "pods":{"team-a/train-a0-w0":["GPU-8e2f...","GPU-1b07..."],
             "kube-system/foreign":["GPU-77aa..."]}}

`pods` maps `namespace/name` to the device IDs (NVIDIA's plugin: GPU UUIDs) of the
resource, over all containers of the pod, sorted; pods that hold none are left out. An
empty `pods` object means the agent asked the kubelet and no pod holds a GPU; a missing
or malformed annotation means nobody asked, and readers fall back to their own rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from gpupool.annotations.summary import json_object

ANNOTATION = "gpupool.io/pod-devices"
"""Key of the annotation on the Node."""

FORMAT_VERSION = 1
GPU_RESOURCE = "nvidia.com/gpu"
MAX_DEVICE_ID_LENGTH = 128
"""Longer device IDs are refused: no device plugin writes one that long."""
MAX_PODS = 4096
"""More pods than this on one node is not a report to trust."""


def pod_key(namespace: str, name: str) -> str:
    """The key of a pod in the annotation: `namespace/name`."""
    return f"{namespace}/{name}"


def format_pod_devices(pods: Mapping[str, Sequence[str]], resource: str = GPU_RESOURCE) -> str:
    """The annotation's value: compact JSON, pods and their devices sorted, empty pods left out."""
    body = {key: sorted(set(devices)) for key, devices in sorted(pods.items()) if devices}
    return json.dumps({"v": FORMAT_VERSION, "resource": resource, "pods": body}, separators=(",", ":"))


def parse_pod_devices(text: str | None, resource: str = GPU_RESOURCE) -> dict[str, tuple[str, ...]] | None:
    """`namespace/name` -> device IDs from an annotation's value; None when missing or malformed.

    Never raises. Malformed means: not JSON, not an object, another version or resource,
    more than `MAX_PODS` pods, a key without exactly one `/`, or a device list that is not a
    list of non-empty strings of at most `MAX_DEVICE_ID_LENGTH` characters. One bad entry
    refuses the whole report: a half-trusted report could charge a GPU to the wrong pod.
    """
    data = json_object(text)
    if data is None or data.get("v") != FORMAT_VERSION or data.get("resource") != resource:
        return None
    pods = data.get("pods")
    if not isinstance(pods, dict) or len(pods) > MAX_PODS:
        return None
    parsed: dict[str, tuple[str, ...]] = {}
    for key, devices in pods.items():
        if not isinstance(key, str) or key.count("/") != 1 or not all(key.split("/")):
            return None
        if not isinstance(devices, list):
            return None
        if not all(isinstance(d, str) and d.strip() and len(d) <= MAX_DEVICE_ID_LENGTH for d in devices):
            return None
        parsed[key] = tuple(sorted(set(devices)))
    return parsed
