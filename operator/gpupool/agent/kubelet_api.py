"""The kubelet's gRPC plugin APIs as protobuf message classes, built from a table in code.

Who uses this: `gpupool.devcluster.device_plugin` (the real node's simulated NVIDIA device
plugin: the device-plugin API v1beta1, server side, and the kubelet's Registration service,
client side) and `gpupool.agent.podresources` (the PodResources API v1, client side).

No protoc and no generated files: each message is a (name, fields) row below, turned into a
`FileDescriptorProto` and then into classes by protobuf's own message factory. Only field
numbers and types reach the wire, and they follow the kubelet's published API
(`k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1` and `.../podresources/v1`, v0.36); a
message may list fewer fields than the upstream one (`ContainerResources.dynamic_resources`,
DRA's, whose layout moved between releases; the `Get` method), since proto3 readers skip
fields they do not know. `tests/unit/agent/test_kubelet_api.py` checks hand-encoded bytes,
so a wrong number fails there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

DEVICE_PLUGIN_VERSION = "v1beta1"
DEVICE_PLUGIN_DIR = "/var/lib/kubelet/device-plugins"
KUBELET_SOCKET_NAME = "kubelet.sock"
POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"

_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_BOOL = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL
_INT32 = descriptor_pb2.FieldDescriptorProto.TYPE_INT32
_INT64 = descriptor_pb2.FieldDescriptorProto.TYPE_INT64
_UINT64 = descriptor_pb2.FieldDescriptorProto.TYPE_UINT64
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED


@dataclass(frozen=True)
class F:
    """One field: name, number, type (`string`, `bool`, `int32`, `int64`, `uint64`, `map` (string to
    string) or a message name), repeated."""

    name: str
    number: int
    kind: str
    repeated: bool = False


_SCALARS = {"string": _STRING, "bool": _BOOL, "int32": _INT32, "int64": _INT64, "uint64": _UINT64}

DEVICE_PLUGIN_MESSAGES: dict[str, tuple[F, ...]] = {
    "Empty": (),
    "DevicePluginOptions": (F("pre_start_required", 1, "bool"), F("get_preferred_allocation_available", 2, "bool")),
    "RegisterRequest": (
        F("version", 1, "string"),
        F("endpoint", 2, "string"),
        F("resource_name", 3, "string"),
        F("options", 4, "DevicePluginOptions"),
    ),
    "NUMANode": (F("ID", 1, "int64"),),
    "TopologyInfo": (F("nodes", 1, "NUMANode", repeated=True),),
    "Device": (F("ID", 1, "string"), F("health", 2, "string"), F("topology", 3, "TopologyInfo")),
    "ListAndWatchResponse": (F("devices", 1, "Device", repeated=True),),
    "PreStartContainerRequest": (F("devices_ids", 1, "string", repeated=True),),
    "PreStartContainerResponse": (),
    "ContainerPreferredAllocationRequest": (
        F("available_deviceIDs", 1, "string", repeated=True),
        F("must_include_deviceIDs", 2, "string", repeated=True),
        F("allocation_size", 3, "int32"),
    ),
    "PreferredAllocationRequest": (F("container_requests", 1, "ContainerPreferredAllocationRequest", repeated=True),),
    "ContainerPreferredAllocationResponse": (F("deviceIDs", 1, "string", repeated=True),),
    "PreferredAllocationResponse": (
        F("container_responses", 1, "ContainerPreferredAllocationResponse", repeated=True),
    ),
    "ContainerAllocateRequest": (F("devices_ids", 1, "string", repeated=True),),
    "AllocateRequest": (F("container_requests", 1, "ContainerAllocateRequest", repeated=True),),
    "Mount": (F("container_path", 1, "string"), F("host_path", 2, "string"), F("read_only", 3, "bool")),
    "DeviceSpec": (F("container_path", 1, "string"), F("host_path", 2, "string"), F("permissions", 3, "string")),
    "CDIDevice": (F("name", 1, "string"),),
    "ContainerAllocateResponse": (
        F("envs", 1, "map"),
        F("mounts", 2, "Mount", repeated=True),
        F("devices", 3, "DeviceSpec", repeated=True),
        F("annotations", 4, "map"),
        F("cdi_devices", 5, "CDIDevice", repeated=True),
    ),
    "AllocateResponse": (F("container_responses", 1, "ContainerAllocateResponse", repeated=True),),
}

POD_RESOURCES_MESSAGES: dict[str, tuple[F, ...]] = {
    "ListPodResourcesRequest": (),
    "AllocatableResourcesRequest": (),
    "NUMANode": (F("ID", 1, "int64"),),
    "TopologyInfo": (F("nodes", 1, "NUMANode", repeated=True),),
    "ContainerDevices": (
        F("resource_name", 1, "string"),
        F("device_ids", 2, "string", repeated=True),
        F("topology", 3, "TopologyInfo"),
    ),
    "ContainerMemory": (F("memory_type", 1, "string"), F("size", 2, "uint64"), F("topology", 3, "TopologyInfo")),
    "ContainerResources": (
        F("name", 1, "string"),
        F("devices", 2, "ContainerDevices", repeated=True),
        F("cpu_ids", 3, "int64", repeated=True),
        F("memory", 4, "ContainerMemory", repeated=True),
    ),
    "PodResources": (
        F("name", 1, "string"),
        F("namespace", 2, "string"),
        F("containers", 3, "ContainerResources", repeated=True),
    ),
    "ListPodResourcesResponse": (F("pod_resources", 1, "PodResources", repeated=True),),
    "AllocatableResourcesResponse": (
        F("devices", 1, "ContainerDevices", repeated=True),
        F("cpu_ids", 2, "int64", repeated=True),
        F("memory", 3, "ContainerMemory", repeated=True),
    ),
}


def _entry_name(field: str) -> str:
    return "".join(part.capitalize() for part in field.split("_")) + "Entry"


def _file(name: str, package: str, messages: dict[str, tuple[F, ...]]) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    for message_name, fields in messages.items():
        message = proto.message_type.add(name=message_name)
        for field in fields:
            out = message.field.add(name=field.name, number=field.number)
            if field.kind == "map":
                entry = message.nested_type.add(name=_entry_name(field.name))
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=_STRING, label=_OPTIONAL)
                entry.field.add(name="value", number=2, type=_STRING, label=_OPTIONAL)
                out.type, out.label = _MESSAGE, _REPEATED
                out.type_name = f".{package}.{message_name}.{entry.name}"
            elif field.kind in _SCALARS:
                out.type = _SCALARS[field.kind]
                out.label = _REPEATED if field.repeated else _OPTIONAL
            else:
                out.type, out.type_name = _MESSAGE, f".{package}.{field.kind}"
                out.label = _REPEATED if field.repeated else _OPTIONAL
    return proto


def _classes(name: str, package: str, messages: dict[str, tuple[F, ...]]) -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file(name, package, messages))
    return {
        message: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{message}"))
        for message in messages
    }


DevicePlugin = _classes("gpupool/deviceplugin_v1beta1.proto", "v1beta1", DEVICE_PLUGIN_MESSAGES)
"""Message name -> class, e.g. `DevicePlugin["AllocateResponse"]()`."""
PodResources = _classes("gpupool/podresources_v1.proto", "v1", POD_RESOURCES_MESSAGES)
"""Message name -> class, e.g. `PodResources["ListPodResourcesResponse"]`."""

# gRPC services and the full paths of their methods (`/<package>.<Service>/<Method>`).
REGISTRATION_SERVICE = "v1beta1.Registration"
REGISTER = f"/{REGISTRATION_SERVICE}/Register"
"""Registration (the kubelet serves it on `kubelet.sock` in the plugin folder): RegisterRequest -> Empty."""
DEVICE_PLUGIN_SERVICE = "v1beta1.DevicePlugin"
"""DevicePlugin (each plugin serves it on its own socket there), its methods below."""
GET_DEVICE_PLUGIN_OPTIONS = f"/{DEVICE_PLUGIN_SERVICE}/GetDevicePluginOptions"
"""Empty -> DevicePluginOptions."""
LIST_AND_WATCH = f"/{DEVICE_PLUGIN_SERVICE}/ListAndWatch"
"""Empty -> a server stream of ListAndWatchResponse (the whole device list each time it changes)."""
GET_PREFERRED_ALLOCATION = f"/{DEVICE_PLUGIN_SERVICE}/GetPreferredAllocation"
"""PreferredAllocationRequest -> PreferredAllocationResponse."""
ALLOCATE = f"/{DEVICE_PLUGIN_SERVICE}/Allocate"
"""AllocateRequest -> AllocateResponse."""
PRE_START_CONTAINER = f"/{DEVICE_PLUGIN_SERVICE}/PreStartContainer"
"""PreStartContainerRequest -> PreStartContainerResponse."""
POD_RESOURCES_SERVICE = "v1.PodResourcesLister"
"""PodResourcesLister (the kubelet serves it on `POD_RESOURCES_SOCKET`)."""
POD_RESOURCES_LIST = f"/{POD_RESOURCES_SERVICE}/List"
"""ListPodResourcesRequest -> ListPodResourcesResponse."""
POD_RESOURCES_GET_ALLOCATABLE = f"/{POD_RESOURCES_SERVICE}/GetAllocatableResources"
"""AllocatableResourcesRequest -> AllocatableResourcesResponse."""


def call_unary(socket_path: str, method: str, request: Any, response_class: Any, timeout: float) -> Any:
    """One unary call over the unix socket `socket_path` (e.g. `REGISTER`, `POD_RESOURCES_LIST`).

    Raises `grpc.RpcError` when the other side does not answer in `timeout` seconds.
    """
    import grpc

    with grpc.insecure_channel(f"unix://{socket_path}") as channel:
        call = channel.unary_unary(
            method, request_serializer=type(request).SerializeToString, response_deserializer=response_class.FromString
        )
        return call(request, timeout=timeout)
