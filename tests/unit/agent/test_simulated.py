"""The simulated backend's arithmetic: how busy a kwok node's GPUs are, from its workers.

Worker pods are built with the operator's own `worker_pod`, so the simulation reads
exactly the environment and annotations the operator writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from builders.api import gpujob, node_object
from gpupool.agent.simulated import (
    BUSY_WATTS,
    DEFAULT_UTILIZATION,
    IDLE_WATTS,
    MEMORY_FILL,
    MEMORY_TOTAL_BYTES,
    SimNode,
    SimulatedBackend,
    SimWorker,
    gpu_utilization,
    is_kwok_node,
    sim_node,
    sim_utilization,
    sim_worker,
    simulated_uuid,
    visible_indices,
)
from gpupool.annotations.pod_devices import ANNOTATION as POD_DEVICES_ANNOTATION
from gpupool.annotations.pod_devices import format_pod_devices
from gpupool.api import WorkerPlacementStatus
from gpupool.cluster.writes.pods import worker_pod

NODE = SimNode("n1", gpus=4, model="A100")


def worker(indices: tuple[int, ...], share: float = 1.0, util: float = DEFAULT_UTILIZATION, node: str = "n1"):
    return SimWorker(node=node, gpu_indices=indices, share=share, utilization=util)


# (what, workers on n1's four GPUs, expected utilisation of GPUs 0..3)
UTILIZATION_TABLE = [
    ("no workers: every GPU idle", [], [0.0, 0.0, 0.0, 0.0]),
    ("a whole GPU at the default", [worker((0,))], [0.9, 0.0, 0.0, 0.0]),
    ("a whole GPU at 0.8", [worker((1,), util=0.8)], [0.0, 0.8, 0.0, 0.0]),
    ("a two-GPU worker busies both", [worker((2, 3), util=0.7)], [0.0, 0.0, 0.7, 0.7]),
    ("a 0.5 share at 0.8 contributes 0.4", [worker((0,), 0.5, 0.8)], [0.4, 0.0, 0.0, 0.0]),
    ("two shares add up", [worker((0,), 0.5, 0.8), worker((0,), 0.25, 0.4)], [0.5, 0.0, 0.0, 0.0]),
    ("shares at the default add up", [worker((0,), 0.5), worker((0,), 0.5)], [0.9, 0.0, 0.0, 0.0]),
    ("capped at 1", [worker((0,), 0.75, 1.0), worker((0,), 0.5, 1.0)], [1.0, 0.0, 0.0, 0.0]),
    ("a worker on another node is not counted", [worker((0,), node="n2")], [0.0, 0.0, 0.0, 0.0]),
    ("an index the node lacks is ignored", [worker((7,))], [0.0, 0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize(
    ("workers", "expected"), [row[1:] for row in UTILIZATION_TABLE], ids=[r[0] for r in UTILIZATION_TABLE]
)
def test_gpu_utilization(workers: list[SimWorker], expected: list[float]) -> None:
    result = gpu_utilization(NODE, workers)
    assert [result[i] for i in range(4)] == pytest.approx(expected)


# (annotation value or None, utilisation used)
ANNOTATION_TABLE = [
    (None, DEFAULT_UTILIZATION),
    ("0.85", 0.85),
    ("0", 0.0),
    ("1", 1.0),
    (" 0.5 ", 0.5),
    ("1.5", DEFAULT_UTILIZATION),
    ("-0.1", DEFAULT_UTILIZATION),
    ("busy", DEFAULT_UTILIZATION),
    ("", DEFAULT_UTILIZATION),
    ("nan", DEFAULT_UTILIZATION),
    ("inf", DEFAULT_UTILIZATION),
]


@pytest.mark.parametrize(("value", "expected"), ANNOTATION_TABLE)
def test_sim_gpu_util_annotation(value: str | None, expected: float) -> None:
    annotations = {} if value is None else {"gpupool.io/sim-gpu-util": value}
    assert sim_utilization(annotations) == expected


@pytest.mark.parametrize(
    ("value", "indices"),
    [("0", (0,)), ("2,3", (2, 3)), (" 1 , 4 ", (1, 4)), ("void", ()), ("all", ()), ("GPU-abc,1", (1,)), ("", ())],
)
def test_visible_indices(value: str, indices: tuple[int, ...]) -> None:
    assert visible_indices(value) == indices


def operator_pod(gpus: float, indices: list[int], share: float = 1.0, annotations: Mapping[str, str] | None = None):
    job = gpujob(gpus=gpus, template_metadata={"annotations": dict(annotations or {})})
    placement = WorkerPlacementStatus(worker=0, pod="train-a1-w0", node="n1", gpu_indices=indices, gpu_share=share)
    return worker_pod(job, placement, attempt=1)


def share_pod(visible: str) -> dict[str, Any]:
    """A 0.5 share pod whose container is told `visible` in `NVIDIA_VISIBLE_DEVICES`."""
    pod = operator_pod(0.5, [0], share=0.5)
    pod["metadata"]["name"] = "share-a1-w0"
    pod["spec"]["containers"][0]["env"] = [
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": visible},
        {"name": "GPUPOOL_GPU_SHARE", "value": "0.5"},
    ]
    return pod


def test_worker_read_from_an_operator_pod_whole_gpus() -> None:
    pod = operator_pod(2, [4, 5], annotations={"gpupool.io/sim-gpu-util": "0.6"})
    assert sim_worker(pod) == SimWorker(node="n1", gpu_indices=(4, 5), share=1.0, utilization=0.6)


def test_worker_read_from_an_operator_pod_with_a_share() -> None:
    pod = operator_pod(0.5, [3], share=0.5)
    assert sim_worker(pod) == SimWorker(node="n1", gpu_indices=(3,), share=0.5, utilization=DEFAULT_UTILIZATION)


def test_a_whole_gpu_worker_is_read_from_the_planned_indices_the_device_plugin_would_replace() -> None:
    pod = operator_pod(2, [4, 5])
    assert all(e["name"] != "NVIDIA_VISIBLE_DEVICES" for e in pod["spec"]["containers"][0].get("env", [])), (
        "a whole-GPU container's devices are the device plugin's to set"
    )
    assert sim_worker(pod) == SimWorker(node="n1", gpu_indices=(4, 5), share=1.0, utilization=DEFAULT_UTILIZATION)


def test_pods_without_gpus_or_node_are_not_workers() -> None:
    assert sim_worker(operator_pod(1, [])) is None  # no planned index
    unbound = operator_pod(1, [0])
    del unbound["spec"]["nodeName"]
    assert sim_worker(unbound) is None
    assert sim_worker({"metadata": {}, "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}}) is None


REPORTING = SimNode(
    "n1",
    gpus=4,
    model="A100",
    pod_devices={"ns/train-a1-w0": (simulated_uuid("n1", 2), simulated_uuid("n1", 3))},
)


# (what, the pod, its node as the backend sees it, the GPUs it is read to hold or None)
REPORT_TABLE = [
    ("the kubelet's report wins over the plan", operator_pod(2, [0, 1]), REPORTING, (2, 3)),
    ("a pod the report leaves out holds no GPU", operator_pod(2, [0, 1]), replace(REPORTING, pod_devices={}), None),
    ("without a report the plan stands (kwok)", operator_pod(2, [0, 1]), NODE, (0, 1)),
    ("a share told its GPU's UUID", share_pod(simulated_uuid("n1", 1)), REPORTING, (1,)),
    ("a share told another node's UUID holds none", share_pod(simulated_uuid("n9", 1)), REPORTING, None),
    ("a share told an index", share_pod("3"), NODE, (3,)),
]


@pytest.mark.parametrize(("pod", "node", "gpus"), [r[1:] for r in REPORT_TABLE], ids=[r[0] for r in REPORT_TABLE])
def test_which_gpus_a_worker_holds(pod: dict[str, Any], node: SimNode, gpus: tuple[int, ...] | None) -> None:
    worker = sim_worker(pod, node)
    assert (worker.gpu_indices if worker else None) == gpus


def test_a_node_report_is_read_from_its_annotation() -> None:
    report = {"ns/train-a1-w0": [simulated_uuid("n1", 2)]}
    node = node_object("n1", gpus="4", annotations={POD_DEVICES_ANNOTATION: format_pod_devices(report)})
    assert sim_node(node) == SimNode("n1", 4, "A100", {"ns/train-a1-w0": (simulated_uuid("n1", 2),)})


def test_nodes_with_gpus_are_simulated_and_kwok_nodes_recognised() -> None:
    node = node_object("n1", model="H100", gpus="8")
    assert sim_node(node) == SimNode("n1", 8, "H100")
    assert sim_node(node_object("cpu", gpus=None)) is None
    assert sim_node(node_object("unlabelled", model=None, gpus="2")) == SimNode("unlabelled", 2, "simulated")
    assert not is_kwok_node(node)
    node["metadata"]["annotations"] = {"kwok.x-k8s.io/node": "fake"}
    assert is_kwok_node(node)


class FakeSource:
    def __init__(self, nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.node_list = nodes
        self.pods = pods
        self.closed = False

    def nodes(self) -> Sequence[Mapping[str, Any]]:
        return self.node_list

    def worker_pods(self) -> Sequence[Mapping[str, Any]]:
        return self.pods

    def close(self) -> None:
        self.closed = True


def test_backend_samples_every_gpu_with_power_memory_and_energy() -> None:
    whole = operator_pod(1, [0], annotations={"gpupool.io/sim-gpu-util": "0.8"})
    half = operator_pod(0.5, [1], share=0.5)
    source = FakeSource([node_object("n1", gpus="2")], [whole, half])
    backend = SimulatedBackend(source)
    assert [(d.node, d.index, d.model) for d in backend.devices()] == [("n1", 0, "A100"), ("n1", 1, "A100")]

    first = backend.sample(1000.0)
    gpu0, gpu1 = first
    assert gpu0.device.uuid == simulated_uuid("n1", 0) != gpu1.device.uuid
    assert (gpu0.utilization_ratio, gpu1.utilization_ratio) == pytest.approx((0.8, 0.45))
    assert gpu0.power_watts == pytest.approx(IDLE_WATTS + 0.8 * (BUSY_WATTS - IDLE_WATTS))
    assert gpu0.memory_used_bytes == int(MEMORY_FILL * MEMORY_TOTAL_BYTES)
    assert gpu1.memory_used_bytes == int(MEMORY_FILL * 0.5 * MEMORY_TOTAL_BYTES)
    assert gpu0.memory_total_bytes == MEMORY_TOTAL_BYTES
    assert (gpu0.processes, gpu1.processes) == (1, 1)
    assert gpu0.energy_joules == 0.0  # the counter starts with the agent

    # The whole-GPU worker finishes; 10 s later the energy holds 10 s at the old power.
    source.pods = [half]
    gpu0, _gpu1 = backend.sample(1010.0)
    assert gpu0.utilization_ratio == 0.0 and gpu0.processes == 0 and gpu0.memory_used_bytes == 0
    busy_power = IDLE_WATTS + 0.8 * (BUSY_WATTS - IDLE_WATTS)
    assert gpu0.energy_joules == pytest.approx(10 * busy_power)
    gpu0, _gpu1 = backend.sample(1015.0)
    assert gpu0.energy_joules == pytest.approx(10 * busy_power + 5 * IDLE_WATTS)

    backend.close()
    assert source.closed


def test_a_node_that_goes_away_takes_its_gpus_and_energy_with_it() -> None:
    source = FakeSource([node_object("n1", gpus="1"), node_object("n2", gpus="1")], [])
    backend = SimulatedBackend(source)
    assert len(backend.sample(0.0)) == 2
    source.node_list = [node_object("n2", gpus="1")]
    assert [s.device.node for s in backend.sample(5.0)] == ["n2"]
    source.node_list = [node_object("n1", gpus="1"), node_object("n2", gpus="1")]
    n1, _n2 = backend.sample(10.0)
    assert n1.energy_joules == 0.0  # a node that comes back starts a new counter
