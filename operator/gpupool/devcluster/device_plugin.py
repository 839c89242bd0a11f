"""gpupool's simulated NVIDIA device plugin: the real node's GPUs, the one part that is not real.

Who runs this: `DevCluster.add_real_node` starts it as a process beside the kubelet
(`python -m gpupool.devcluster.device_plugin --node NAME --gpus N`). It speaks the kubelet's
device-plugin API v1beta1 (`gpupool.agent.kubelet_api`) the way NVIDIA's k8s-device-plugin
does with its env-var strategy, so the kubelet's device manager, not gpupool, decides which
GPUs a pod that requests `nvidia.com/gpu` gets:

- **Devices**: N devices whose IDs are GPU UUIDs (`gpupool.agent.simulated.simulated_uuid`,
  the same ones the simulated agent reports for this node), all Healthy, the first half on
  NUMA node 0 and the rest on node 1.
- **GetPreferredAllocation** (`preferred`): the devices the kubelet must include, then the
  smallest NUMA group that holds the rest, lowest indices first — an NVLink-like preference
  that keeps whole groups free for big requests.
- **Allocate** (`allocate`): `NVIDIA_VISIBLE_DEVICES=<UUIDs in request order>` for each
  container (which replaces any value of the pod spec) and, where this machine lets us make
  them, character device nodes `/dev/nvidia<index>`, `/dev/nvidiactl` and `/dev/nvidia-uvm`
  (NVIDIA's major 195; a real host's nvidia-uvm has a dynamic major) under `--device-dir`;
  where mknod is refused, none, logged once. An ID the plugin does not have: INVALID_ARGUMENT
  naming it.
- **Registration**: with the kubelet's Registration service on `kubelet.sock` in the plugin
  folder. The kubelet deletes plugin sockets when it starts, so the plugin watches its own
  socket, and `kubelet.sock` being made anew, and serves and registers again on either.
  SIGTERM stops it and removes its socket.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import stat
import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from gpupool.agent import kubelet_api as api
from gpupool.agent.simulated import simulated_uuid

log = logging.getLogger("gpupool.devcluster.device_plugin")

SOCKET_NAME = "gpupool-sim-nvidia.sock"
RESOURCE = "nvidia.com/gpu"
NVIDIA_MAJOR = 195
NVIDIACTL_MINOR = 255
UVM_MINOR = 253
"""nvidia-uvm's minor under major 195 here; the real driver takes a dynamic major for it."""


@dataclass(frozen=True)
class SimGpu:
    """One simulated GPU: its index, UUID (the device ID) and NUMA node."""

    index: int
    uuid: str
    numa: int


def simulated_gpus(node: str, count: int) -> list[SimGpu]:
    """The node's GPUs: UUIDs shared with the simulated agent, two NUMA halves."""
    half = max(1, (count + 1) // 2)
    return [SimGpu(i, simulated_uuid(node, i), 0 if i < half else 1) for i in range(count)]


def preferred(gpus: Sequence[SimGpu], available: Sequence[str], must_include: Sequence[str], size: int) -> list[str]:
    """The devices to prefer for one container: `must_include`, then the smallest NUMA group
    that holds the rest (lowest indices first), else lowest indices across groups."""
    by_id = {g.uuid: g for g in gpus}
    chosen = [d for d in must_include if d in by_id]
    rest = sorted((by_id[d] for d in available if d in by_id and d not in chosen), key=lambda g: g.index)
    needed = size - len(chosen)
    if needed <= 0:
        return chosen[:size]
    groups: dict[int, list[SimGpu]] = {}
    for gpu in rest:
        groups.setdefault(gpu.numa, []).append(gpu)
    fitting = sorted((len(members), numa) for numa, members in groups.items() if len(members) >= needed)
    pool = groups[fitting[0][1]] if fitting else rest
    return chosen + [g.uuid for g in pool[:needed]]


class SimulatedNvidiaPlugin:
    """The DevicePlugin service over `gpus`; `device_dir` holds the device nodes (None: none)."""

    def __init__(self, gpus: Sequence[SimGpu], device_dir: Path | None) -> None:
        self.gpus = list(gpus)
        self.by_id = {g.uuid: g for g in self.gpus}
        self.device_dir = device_dir
        self.stopping = threading.Event()

    def handler(self) -> grpc.GenericRpcHandler:
        m = api.DevicePlugin

        def unary(fn: Any, request: str, response: str) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=m[request].FromString, response_serializer=m[response].SerializeToString
            )

        return grpc.method_handlers_generic_handler(
            api.DEVICE_PLUGIN_SERVICE,
            {
                "GetDevicePluginOptions": unary(self.options, "Empty", "DevicePluginOptions"),
                "ListAndWatch": grpc.unary_stream_rpc_method_handler(
                    self.list_and_watch,
                    request_deserializer=m["Empty"].FromString,
                    response_serializer=m["ListAndWatchResponse"].SerializeToString,
                ),
                "GetPreferredAllocation": unary(
                    self.preferred_allocation, "PreferredAllocationRequest", "PreferredAllocationResponse"
                ),
                "Allocate": unary(self.allocate, "AllocateRequest", "AllocateResponse"),
                "PreStartContainer": unary(self.pre_start, "PreStartContainerRequest", "PreStartContainerResponse"),
            },
        )

    def options(self, _request: Any, _context: grpc.ServicerContext) -> Any:
        return api.DevicePlugin["DevicePluginOptions"](get_preferred_allocation_available=True)

    def devices(self) -> Any:
        m = api.DevicePlugin
        return m["ListAndWatchResponse"](
            devices=[
                m["Device"](ID=g.uuid, health=api.HEALTHY, topology=m["TopologyInfo"](nodes=[m["NUMANode"](ID=g.numa)]))
                for g in self.gpus
            ]
        )

    def list_and_watch(self, _request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        yield self.devices()
        while context.is_active() and not self.stopping.wait(1.0):
            pass  # simulated GPUs never change health

    def preferred_allocation(self, request: Any, _context: grpc.ServicerContext) -> Any:
        m = api.DevicePlugin
        return m["PreferredAllocationResponse"](
            container_responses=[
                m["ContainerPreferredAllocationResponse"](
                    deviceIDs=preferred(self.gpus, r.available_deviceIDs, r.must_include_deviceIDs, r.allocation_size)
                )
                for r in request.container_requests
            ]
        )

    def allocate(self, request: Any, context: grpc.ServicerContext) -> Any:
        m = api.DevicePlugin
        responses = []
        for container in request.container_requests:
            unknown = [d for d in container.devices_ids if d not in self.by_id]
            if unknown:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown device {unknown[0]!r} on this node")
            ids = list(container.devices_ids)
            specs = []
            if self.device_dir is not None:
                paths = [f"nvidia{self.by_id[d].index}" for d in ids] + ["nvidiactl", "nvidia-uvm"]
                specs = [
                    m["DeviceSpec"](container_path=f"/dev/{p}", host_path=str(self.device_dir / p), permissions="rw")
                    for p in paths
                ]
            responses.append(
                m["ContainerAllocateResponse"](envs={"NVIDIA_VISIBLE_DEVICES": ",".join(ids)}, devices=specs)
            )
        return m["AllocateResponse"](container_responses=responses)

    def pre_start(self, _request: Any, _context: grpc.ServicerContext) -> Any:
        return api.DevicePlugin["PreStartContainerResponse"]()


def make_device_nodes(directory: Path, gpus: Sequence[SimGpu]) -> bool:
    """Create `nvidia<i>`, `nvidiactl` and `nvidia-uvm` character devices (major 195) in
    `directory`; False (logged) when this machine refuses mknod, e.g. without CAP_MKNOD."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = [(f"nvidia{g.index}", g.index) for g in gpus] + [
        ("nvidiactl", NVIDIACTL_MINOR),
        ("nvidia-uvm", UVM_MINOR),
    ]
    try:
        for name, minor in wanted:
            path = directory / name
            if not path.exists():
                os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(NVIDIA_MAJOR, minor))
    except OSError as error:
        log.warning("cannot create device nodes in %s (%s); containers get no /dev/nvidia*", directory, error)
        return False
    return True


def register(plugin_dir: Path, resource: str = RESOURCE, timeout: float = 10.0) -> None:
    """Tell the kubelet (its Registration service on `plugin_dir/kubelet.sock`) where we serve."""
    m = api.DevicePlugin
    request = m["RegisterRequest"](
        version=api.DEVICE_PLUGIN_VERSION,
        endpoint=SOCKET_NAME,
        resource_name=resource,
        options=m["DevicePluginOptions"](get_preferred_allocation_available=True),
    )
    api.call_unary(str(plugin_dir / api.KUBELET_SOCKET_NAME), api.REGISTER, request, m["Empty"], timeout)


def serve(plugin: SimulatedNvidiaPlugin, socket_path: Path) -> grpc.Server:
    """Serve `plugin` on the unix socket `socket_path` (an old socket file is removed first)."""
    socket_path.unlink(missing_ok=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((plugin.handler(),))
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    return server


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, change time in ns) of `path`, None when absent. A socket made anew differs in
    one or the other: the file system may hand the new socket the old one's inode number."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_ctime_ns


def run(
    plugin: SimulatedNvidiaPlugin, plugin_dir: Path, resource: str, stop: threading.Event, poll: float = 1.0
) -> None:
    """Serve and register until `stop`. Every `poll` seconds: serve and register again when our
    socket disappeared, register again when the kubelet's socket went away or was made anew
    (each means the kubelet restarted and forgot us)."""
    socket_path = plugin_dir / SOCKET_NAME
    kubelet_socket = plugin_dir / api.KUBELET_SOCKET_NAME
    server: grpc.Server | None = None
    registered_with: tuple[int, int] | None = None
    waiting_logged = False
    while not stop.is_set():
        kubelet = _identity(kubelet_socket)
        if server is None or not socket_path.exists():
            if server is not None:
                log.info("plugin socket %s gone (kubelet restarted?); serving and registering again", socket_path)
                server.stop(grace=None)
            server, registered_with = serve(plugin, socket_path), None
        elif registered_with is not None and kubelet != registered_with:
            log.info("kubelet socket %s %s; registering again", kubelet_socket, "gone" if kubelet is None else "new")
            registered_with = None
        if registered_with is None and kubelet is not None:
            try:
                register(plugin_dir, resource)
            except grpc.RpcError as error:
                if not waiting_logged:
                    log.info("kubelet not ready for registration yet (%s); will keep trying", error.code())
                    waiting_logged = True
            else:
                registered_with, waiting_logged = kubelet, False
                log.info("registered %s with the kubelet (%d devices)", resource, len(plugin.gpus))
        stop.wait(poll)
    plugin.stopping.set()
    if server is not None:
        server.stop(grace=1).wait()
    socket_path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpupool.devcluster.device_plugin", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--node", required=True, help="the node's name (the UUIDs derive from it)")
    parser.add_argument("--gpus", type=int, default=8, help="simulated GPUs")
    parser.add_argument("--plugin-dir", type=Path, default=Path(api.DEVICE_PLUGIN_DIR))
    parser.add_argument("--resource", default=RESOURCE)
    parser.add_argument("--device-dir", type=Path, default=None, help="where to make the device nodes (none: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    gpus = simulated_gpus(args.node, args.gpus)
    device_dir = args.device_dir if args.device_dir and make_device_nodes(args.device_dir, gpus) else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(SimulatedNvidiaPlugin(gpus, device_dir), args.plugin_dir, args.resource, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
