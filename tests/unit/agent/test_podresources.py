"""The PodResources client against an in-process fake of the kubelet's PodResourcesLister
(real gRPC on a unix socket, `kubelet_fakes`): the report per pod, and a typed error when the
socket is missing, nobody answers on it, or the call fails."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gpupool.agent import kubelet_api as api
from gpupool.agent.podresources import PodResourcesUnavailable, pod_devices
from kubelet_fakes import FakePodResources, short_dir

M = api.PodResources


def container(name: str, *devices: tuple[str, list[str]]) -> object:
    return M["ContainerResources"](
        name=name, devices=[M["ContainerDevices"](resource_name=r, device_ids=ids) for r, ids in devices]
    )


def pod(namespace: str, name: str, *containers: object) -> object:
    return M["PodResources"](namespace=namespace, name=name, containers=containers)


@pytest.fixture
def folder() -> Iterator[Path]:
    with short_dir() as path:
        yield path


def test_each_pods_devices_of_the_resource_over_all_its_containers(folder: Path) -> None:
    answer = M["ListPodResourcesResponse"](
        pod_resources=[
            pod(
                "team-a",
                "train-w0",
                container("main", ("nvidia.com/gpu", ["GPU-b", "GPU-a"])),
                container("side", ("nvidia.com/gpu", ["GPU-c"]), ("example.com/nic", ["nic-0"])),
            ),
            pod("team-b", "cpu-only", container("main")),
            pod("team-b", "nic-only", container("main", ("example.com/nic", ["nic-1"]))),
            pod("kube-system", "foreign", container("c", ("nvidia.com/gpu", ["GPU-d"]))),
        ]
    )
    kubelet = FakePodResources(folder / "kubelet.sock", answer)
    try:
        report = pod_devices(folder / "kubelet.sock", timeout=5)
        nics = pod_devices(folder / "kubelet.sock", resource="example.com/nic", timeout=5)
    finally:
        kubelet.stop()
    assert report == {"team-a/train-w0": ("GPU-a", "GPU-b", "GPU-c"), "kube-system/foreign": ("GPU-d",)}
    assert nics == {"team-a/train-w0": ("nic-0",), "team-b/nic-only": ("nic-1",)}
    assert kubelet.calls == 2


def test_no_pod_holding_the_resource_is_an_empty_report(folder: Path) -> None:
    kubelet = FakePodResources(folder / "kubelet.sock")
    try:
        assert pod_devices(folder / "kubelet.sock", timeout=5) == {}
    finally:
        kubelet.stop()


def test_a_missing_socket_is_a_typed_error_naming_it(folder: Path) -> None:
    with pytest.raises(PodResourcesUnavailable, match=r"no PodResources socket at .*kubelet\.sock"):
        pod_devices(folder / "kubelet.sock", timeout=1)


def test_a_socket_nobody_answers_on_is_a_typed_error(folder: Path) -> None:
    stale = folder / "kubelet.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left_behind:
        left_behind.bind(str(stale))  # the file stays, nobody listens: a kubelet that died
    with pytest.raises(PodResourcesUnavailable, match="UNAVAILABLE"):
        pod_devices(stale, timeout=2)


def test_a_failed_call_is_a_typed_error_with_the_code(folder: Path) -> None:
    kubelet = FakePodResources(folder / "kubelet.sock")
    kubelet.error = grpc.StatusCode.PERMISSION_DENIED
    try:
        with pytest.raises(PodResourcesUnavailable, match="PERMISSION_DENIED"):
            pod_devices(folder / "kubelet.sock", timeout=5)
    finally:
        kubelet.stop()
