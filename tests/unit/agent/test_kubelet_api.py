"""The kubelet API messages built from gpupool's table: hand-encoded wire bytes parse as the
kubelet's field numbers say, so a wrong number or type fails here."""

from __future__ import annotations

from gpupool.agent import kubelet_api as api


def test_an_allocate_request_reads_the_kubelets_bytes() -> None:
    # AllocateRequest{container_requests: [ContainerAllocateRequest{devices_ids: ["a", "bc"]}]}
    wire = bytes([0x0A, 0x07, 0x0A, 0x01]) + b"a" + bytes([0x0A, 0x02]) + b"bc"
    request = api.DevicePlugin["AllocateRequest"].FromString(wire)
    assert [list(c.devices_ids) for c in request.container_requests] == [["a", "bc"]]


def test_an_allocate_response_writes_envs_as_map_entries_of_field_one() -> None:
    response = api.DevicePlugin["ContainerAllocateResponse"](envs={"K": "V"})
    # field 1, length 6: MapEntry{key(1)="K", value(2)="V"}
    assert response.SerializeToString() == bytes([0x0A, 0x06, 0x0A, 0x01]) + b"K" + bytes([0x12, 0x01]) + b"V"


def test_a_register_request_carries_version_endpoint_resource_and_options() -> None:
    m = api.DevicePlugin
    request = m["RegisterRequest"](
        version="v1beta1",
        endpoint="e.sock",
        resource_name="nvidia.com/gpu",
        options=m["DevicePluginOptions"](get_preferred_allocation_available=True),
    )
    wire = request.SerializeToString()
    assert wire.startswith(bytes([0x0A, 0x07]) + b"v1beta1" + bytes([0x12, 0x06]) + b"e.sock")
    assert wire.endswith(bytes([0x22, 0x02, 0x10, 0x01]))


def test_a_pod_resources_list_answer_reads_pods_containers_and_device_ids() -> None:
    devices = bytes([0x0A, 0x01]) + b"r" + bytes([0x12, 0x01]) + b"d"  # ContainerDevices{resource_name, device_ids}
    container = bytes([0x0A, 0x01]) + b"c" + bytes([0x12, len(devices)]) + devices
    pod = bytes([0x0A, 0x01]) + b"p" + bytes([0x12, 0x01]) + b"n" + bytes([0x1A, len(container)]) + container
    answer = api.PodResources["ListPodResourcesResponse"].FromString(bytes([0x0A, len(pod)]) + pod)
    (only,) = answer.pod_resources
    assert (only.name, only.namespace) == ("p", "n")
    assert [(d.resource_name, list(d.device_ids)) for d in only.containers[0].devices] == [("r", ["d"])]
