"""Which pod holds which device, asked of the kubelet's PodResources API (v1 `List`).

Who calls this: the node agent (to publish `gpupool.io/pod-devices`, see
`gpupool.annotations.pod_devices`) and the real-node tests. On a device-plugin node this is the
one place the truth lives: gpupool asks for a count, the kubelet's device manager chooses
the devices, and PodResources reports its choice per container.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from gpupool.agent import kubelet_api as api
from gpupool.annotations.pod_devices import GPU_RESOURCE, pod_key


class PodResourcesUnavailable(RuntimeError):
    """The kubelet's PodResources socket is missing or did not answer; the message says which."""


def pod_devices(
    socket_path: Path = Path(api.POD_RESOURCES_SOCKET), resource: str = GPU_RESOURCE, timeout: float = 5.0
) -> dict[str, tuple[str, ...]]:
    """`namespace/name` -> sorted device IDs of `resource` its containers hold (pods holding none left out)."""
    if not socket_path.exists():
        raise PodResourcesUnavailable(f"no PodResources socket at {socket_path}: is the kubelet running here?")
    m = api.PodResources
    try:
        answer = api.call_unary(
            str(socket_path),
            api.POD_RESOURCES_LIST,
            m["ListPodResourcesRequest"](),
            m["ListPodResourcesResponse"],
            timeout,
        )
    except grpc.RpcError as error:
        raise PodResourcesUnavailable(f"PodResources List on {socket_path} failed: {error.code()}") from error
    held: dict[str, tuple[str, ...]] = {}
    for pod in answer.pod_resources:
        devices = {
            device_id
            for container in pod.containers
            for devices in container.devices
            if devices.resource_name == resource
            for device_id in devices.device_ids
        }
        if devices:
            held[pod_key(pod.namespace, pod.name)] = tuple(sorted(devices))
    return held
