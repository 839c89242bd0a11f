"""The simulated NVIDIA device plugin's choices: which devices it prefers and what Allocate
hands a container."""

from __future__ import annotations

import pytest

from gpupool.agent import kubelet_api as api
from gpupool.devcluster.device_plugin import SimulatedNvidiaPlugin, preferred, simulated_gpus

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
