"""The simulated NVIDIA device plugin: which devices it prefers and what Allocate hands a
container; then the process's loop over real gRPC on unix sockets, against a fake kubelet
Registration service (`kubelet_fakes`): it registers, answers the DevicePlugin methods, and
registers again when the kubelet deletes its socket or makes its own anew."""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from gpupool.agent import kubelet_api as api
from gpupool.devcluster import device_plugin
from gpupool.devcluster.device_plugin import (
    NVIDIA_MAJOR,
    SOCKET_NAME,
    SimulatedNvidiaPlugin,
    make_device_nodes,
    preferred,
    simulated_gpus,
)
from kubelet_fakes import FakeRegistration, short_dir

GPUS = simulated_gpus("node-a", 8)
IDS = [g.uuid for g in GPUS]


@pytest.mark.parametrize(
    ("available", "must", "size", "expected"),
    [
        (IDS, [], 2, [0, 1]),
        (IDS[1:], [], 4, [4, 5, 6, 7]),  # NUMA 0 has only 3 left: the whole other group
        (IDS[2:4] + IDS[4:], [], 2, [2, 3]),  # the smaller group that fits
        (IDS, [IDS[6]], 2, [6, 4]),
        (IDS[3:5], [], 2, [3, 4]),  # no group holds two: lowest indices across groups
    ],
    ids=["lowest-first", "whole-group", "best-fit-group", "must-include-first", "across-groups"],
)
def test_preferred_allocation(available: list[str], must: list[str], size: int, expected: list[int]) -> None:
    assert preferred(GPUS, available, must, size) == [IDS[i] for i in expected]


def test_the_uuids_are_the_simulated_agents_and_split_over_two_numa_nodes() -> None:
    from gpupool.agent.simulated import simulated_uuid

    assert [simulated_uuid("node-a", i) for i in range(8)] == IDS
    assert [g.numa for g in GPUS] == [0, 0, 0, 0, 1, 1, 1, 1]


class _Context:
    def abort(self, code: object, message: str) -> None:
        raise RuntimeError(f"{code}: {message}")


def test_allocate_sets_the_uuids_as_nvidias_env_var_strategy_does() -> None:
    plugin = SimulatedNvidiaPlugin(GPUS, device_dir=None)
    m = api.DevicePlugin
    request = m["AllocateRequest"](container_requests=[m["ContainerAllocateRequest"](devices_ids=[IDS[3], IDS[1]])])
    (response,) = plugin.allocate(request, _Context()).container_responses  # type: ignore[arg-type]
    assert dict(response.envs) == {"NVIDIA_VISIBLE_DEVICES": f"{IDS[3]},{IDS[1]}"}
    assert list(response.devices) == []


def test_allocate_refuses_a_device_it_does_not_have() -> None:
    plugin = SimulatedNvidiaPlugin(GPUS, device_dir=None)
    m = api.DevicePlugin
    request = m["AllocateRequest"](container_requests=[m["ContainerAllocateRequest"](devices_ids=["GPU-nope"])])
    with pytest.raises(RuntimeError, match="GPU-nope"):
        plugin.allocate(request, _Context())  # type: ignore[arg-type]


def test_allocate_names_the_device_nodes_of_the_devices_it_hands_out(tmp_path: Path) -> None:
    plugin = SimulatedNvidiaPlugin(GPUS, device_dir=tmp_path)
    m = api.DevicePlugin
    request = m["AllocateRequest"](container_requests=[m["ContainerAllocateRequest"](devices_ids=[IDS[5]])])
    (response,) = plugin.allocate(request, _Context()).container_responses  # type: ignore[arg-type]
    assert [(d.container_path, d.host_path, d.permissions) for d in response.devices] == [
        ("/dev/nvidia5", str(tmp_path / "nvidia5"), "rw"),
        ("/dev/nvidiactl", str(tmp_path / "nvidiactl"), "rw"),
        ("/dev/nvidia-uvm", str(tmp_path / "nvidia-uvm"), "rw"),
    ]


def test_device_nodes_are_character_devices_of_nvidias_major(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: dict[str, tuple[int, int, int]] = {}

    def mknod(path: Path, mode: int, device: int) -> None:
        made[Path(path).name] = (stat.S_IFMT(mode), os.major(device), os.minor(device))
        Path(path).touch()

    monkeypatch.setattr(device_plugin.os, "mknod", mknod)
    assert make_device_nodes(tmp_path, GPUS[:2])
    assert made == {
        "nvidia0": (stat.S_IFCHR, NVIDIA_MAJOR, 0),
        "nvidia1": (stat.S_IFCHR, NVIDIA_MAJOR, 1),
        "nvidiactl": (stat.S_IFCHR, NVIDIA_MAJOR, 255),
        "nvidia-uvm": (stat.S_IFCHR, NVIDIA_MAJOR, 253),
    }


def test_refused_mknod_is_logged_once_and_means_no_device_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(path: Path, mode: int, device: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(device_plugin.os, "mknod", refused)
    assert not make_device_nodes(tmp_path, GPUS)
    assert sum("cannot create device nodes" in r.message for r in caplog.records) == 1


@dataclass
class Running:
    """The plugin's loop in a thread beside a fake kubelet, both on sockets in `plugin_dir`;
    `first` is its first RegisterRequest (sent once it serves)."""

    plugin_dir: Path
    kubelet: FakeRegistration
    stop: threading.Event
    thread: threading.Thread
    first: Any

    def call(self, method: str, request: Any, response: str) -> Any:
        with grpc.insecure_channel(f"unix://{self.plugin_dir / SOCKET_NAME}") as channel:
            rpc = channel.unary_unary(
                method,
                request_serializer=type(request).SerializeToString,
                response_deserializer=api.DevicePlugin[response].FromString,
            )
            return rpc(request, timeout=5)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def running() -> Iterator[Running]:
    with short_dir() as plugin_dir:
        kubelet = FakeRegistration(plugin_dir)
        stop = threading.Event()
        plugin = SimulatedNvidiaPlugin(GPUS, device_dir=None)
        thread = threading.Thread(
            target=device_plugin.run, args=(plugin, plugin_dir, "nvidia.com/gpu", stop), kwargs={"poll": 0.05}
        )
        thread.start()
        try:
            yield Running(plugin_dir, kubelet, stop, thread, first=kubelet.next_request())
        finally:
            stop.set()
            thread.join(timeout=10)
            kubelet.stop()
        assert not thread.is_alive()


def test_the_plugin_registers_its_socket_resource_and_options(running: Running) -> None:
    request = running.first
    assert (request.version, request.endpoint, request.resource_name) == ("v1beta1", SOCKET_NAME, "nvidia.com/gpu")
    assert request.options.get_preferred_allocation_available and not request.options.pre_start_required
    assert (running.plugin_dir / SOCKET_NAME).is_socket()
    options = running.call(api.GET_DEVICE_PLUGIN_OPTIONS, api.DevicePlugin["Empty"](), "DevicePluginOptions")
    assert options.get_preferred_allocation_available


def test_list_and_watch_sends_the_eight_healthy_uuid_devices_with_their_numa_node(running: Running) -> None:
    with grpc.insecure_channel(f"unix://{running.plugin_dir / SOCKET_NAME}") as channel:
        stream = channel.unary_stream(
            api.LIST_AND_WATCH,
            request_serializer=api.DevicePlugin["Empty"].SerializeToString,
            response_deserializer=api.DevicePlugin["ListAndWatchResponse"].FromString,
        )(api.DevicePlugin["Empty"](), timeout=5)
        first = next(stream)
        stream.cancel()
    assert [(d.ID, d.health, [n.ID for n in d.topology.nodes]) for d in first.devices] == [
        (g.uuid, "Healthy", [g.numa]) for g in GPUS
    ]
    assert len(first.devices) == 8 and all(d.ID.startswith("GPU-") for d in first.devices)


@pytest.mark.parametrize(
    ("available", "must", "size", "expected"),
    [(range(8), [], 3, [0, 1, 2]), (range(1, 8), [], 4, [4, 5, 6, 7]), (range(8), [7], 2, [7, 4])],
    ids=["lowest-first", "whole-numa-group", "must-include"],
)
def test_preferred_allocation_over_grpc(
    running: Running, available: range, must: list[int], size: int, expected: list[int]
) -> None:
    m = api.DevicePlugin
    request = m["PreferredAllocationRequest"](
        container_requests=[
            m["ContainerPreferredAllocationRequest"](
                available_deviceIDs=[IDS[i] for i in available],
                must_include_deviceIDs=[IDS[i] for i in must],
                allocation_size=size,
            )
        ]
    )
    answer = running.call(api.GET_PREFERRED_ALLOCATION, request, "PreferredAllocationResponse")
    assert [list(r.deviceIDs) for r in answer.container_responses] == [[IDS[i] for i in expected]]


def test_allocate_over_grpc_sets_the_env_var_per_container_and_refuses_unknown_ids(running: Running) -> None:
    m = api.DevicePlugin
    request = m["AllocateRequest"](
        container_requests=[
            m["ContainerAllocateRequest"](devices_ids=[IDS[2], IDS[0]]),
            m["ContainerAllocateRequest"](devices_ids=[IDS[7]]),
        ]
    )
    answer = running.call(api.ALLOCATE, request, "AllocateResponse")
    assert [dict(r.envs) for r in answer.container_responses] == [
        {"NVIDIA_VISIBLE_DEVICES": f"{IDS[2]},{IDS[0]}"},
        {"NVIDIA_VISIBLE_DEVICES": IDS[7]},
    ]
    assert [list(r.devices) for r in answer.container_responses] == [[], []]  # no --device-dir
    bad = m["AllocateRequest"](container_requests=[m["ContainerAllocateRequest"](devices_ids=[IDS[0], "GPU-nope"])])
    with pytest.raises(grpc.RpcError) as refused:
        running.call(api.ALLOCATE, bad, "AllocateResponse")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "GPU-nope" in refused.value.details()


def test_a_deleted_plugin_socket_means_serve_and_register_again(running: Running) -> None:
    (running.plugin_dir / SOCKET_NAME).unlink()  # what a starting kubelet does
    again = running.kubelet.next_request()
    assert again.endpoint == SOCKET_NAME
    wait_for((running.plugin_dir / SOCKET_NAME).exists)
    options = running.call(api.GET_DEVICE_PLUGIN_OPTIONS, api.DevicePlugin["Empty"](), "DevicePluginOptions")
    assert options.get_preferred_allocation_available


def test_a_kubelet_socket_made_anew_means_register_again(running: Running) -> None:
    # A new kubelet's socket takes the old one's place (made beside it, then renamed over it,
    # so the test does not race the plugin's poll; the old server stays up until the end).
    restarted = FakeRegistration(running.plugin_dir, socket_name="kubelet-new.sock")
    try:
        restarted.socket_path.rename(running.kubelet.socket_path)
        assert restarted.next_request().resource_name == "nvidia.com/gpu"
    finally:
        restarted.stop()
    with pytest.raises(queue.Empty):
        running.kubelet.next_request(timeout=0.2)  # the old kubelet heard nothing more


def test_stopping_removes_the_plugin_socket(running: Running) -> None:
    running.stop.set()
    running.thread.join(timeout=10)
    assert not running.thread.is_alive()
    assert not (running.plugin_dir / SOCKET_NAME).exists()
    with pytest.raises(queue.Empty):
        running.kubelet.next_request(timeout=0.2)
