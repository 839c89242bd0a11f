"""The kubelet API messages built from gpupool's table: hand-encoded wire bytes parse as the
kubelet's field numbers say, so a wrong number or type fails here; every message round-trips
with every field set; the method paths and the kubelet's paths are the published ones."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor

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


def _repeated(field: Any) -> bool:
    # protobuf 7 dropped `label` for `is_repeated`; older releases have only `label`.
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _filled(message: Any, depth: int = 0) -> Any:
    """`message` with every field set to a non-default value (sub-messages one level deep each)."""
    for field in message.DESCRIPTOR.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(message, field.name)["key"] = "value"
        elif field.message_type is not None:
            if depth > 3:
                continue
            if _repeated(field):
                _filled(getattr(message, field.name).add(), depth + 1)
            else:
                _filled(getattr(message, field.name), depth + 1)
        else:
            value = _SAMPLES[field.type]
            if _repeated(field):
                getattr(message, field.name).extend([value, value])
            else:
                setattr(message, field.name, value)
    return message


_SAMPLES: dict[int, object] = {
    FieldDescriptor.TYPE_STRING: "s",
    FieldDescriptor.TYPE_BOOL: True,
    FieldDescriptor.TYPE_INT32: 7,
    FieldDescriptor.TYPE_INT64: 1 << 40,
    FieldDescriptor.TYPE_UINT64: 1 << 63,
}

ALL_MESSAGES = [("v1beta1", name) for name in api.DEVICE_PLUGIN_MESSAGES] + [
    ("v1", name) for name in api.POD_RESOURCES_MESSAGES
]


@pytest.mark.parametrize(("package", "name"), ALL_MESSAGES, ids=[f"{p}.{n}" for p, n in ALL_MESSAGES])
def test_every_message_round_trips_with_every_field_set(package: str, name: str) -> None:
    cls = (api.DevicePlugin if package == "v1beta1" else api.PodResources)[name]
    message = _filled(cls())
    assert cls.DESCRIPTOR.full_name == f"{package}.{name}"
    assert cls.FromString(message.SerializeToString()) == message
    if cls.DESCRIPTOR.fields:
        assert message.SerializeToString() != b""


def test_the_method_paths_name_the_kubelets_packages_and_services() -> None:
    assert api.REGISTER == "/v1beta1.Registration/Register"
    assert [api.GET_DEVICE_PLUGIN_OPTIONS, api.LIST_AND_WATCH, api.GET_PREFERRED_ALLOCATION] == [
        "/v1beta1.DevicePlugin/GetDevicePluginOptions",
        "/v1beta1.DevicePlugin/ListAndWatch",
        "/v1beta1.DevicePlugin/GetPreferredAllocation",
    ]
    assert [api.ALLOCATE, api.PRE_START_CONTAINER] == [
        "/v1beta1.DevicePlugin/Allocate",
        "/v1beta1.DevicePlugin/PreStartContainer",
    ]
    assert [api.POD_RESOURCES_LIST, api.POD_RESOURCES_GET_ALLOCATABLE] == [
        "/v1.PodResourcesLister/List",
        "/v1.PodResourcesLister/GetAllocatableResources",
    ]
    assert (api.KUBELET_SOCKET_NAME, api.DEVICE_PLUGIN_VERSION) == ("kubelet.sock", "v1beta1")
    assert api.DEVICE_PLUGIN_DIR == "/var/lib/kubelet/device-plugins"
    assert api.POD_RESOURCES_SOCKET == "/var/lib/kubelet/pod-resources/kubelet.sock"


def test_container_resources_read_cpu_ids_and_memory_and_skip_what_gpupool_does_not_list() -> None:
    # ContainerResources{name(1)="c", cpu_ids(3)=[2, 3] packed, dynamic_resources(5)=<unknown 1 byte>}
    wire = bytes([0x0A, 0x01]) + b"c" + bytes([0x1A, 0x02, 0x02, 0x03]) + bytes([0x2A, 0x01, 0x00])
    container = api.PodResources["ContainerResources"].FromString(wire)
    assert (container.name, list(container.cpu_ids)) == ("c", [2, 3])


def test_allocatable_resources_read_devices_cpus_and_memory() -> None:
    memory = bytes([0x0A, 0x01]) + b"m" + bytes([0x10, 0x05])  # ContainerMemory{memory_type="m", size=5}
    devices = bytes([0x0A, 0x01]) + b"r" + bytes([0x12, 0x01]) + b"d"
    wire = bytes([0x0A, len(devices)]) + devices + bytes([0x12, 0x01, 0x04]) + bytes([0x1A, len(memory)]) + memory
    answer = api.PodResources["AllocatableResourcesResponse"].FromString(wire)
    assert [list(d.device_ids) for d in answer.devices] == [["d"]]
    assert list(answer.cpu_ids) == [4]
    assert [(m.memory_type, m.size) for m in answer.memory] == [("m", 5)]
