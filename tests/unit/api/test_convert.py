"""Kubernetes objects become the core's values with the right units, labels and semantics."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest

from builders.api import node_object
from gpupool.api import GPUNodePool, GPUQueue, parse_gpujob, parse_gpunodepool, parse_gpuqueue
from gpupool.cluster.translate.convert import (
    ConversionError,
    gpu_milli,
    gpu_node_from_k8s,
    job_from_api,
    parse_cpu_milli,
    parse_duration_seconds,
    parse_memory_bytes,
    parse_quantity,
    parse_timestamp,
    placement_status,
    pool_for_node,
    queue_from_api,
)
from gpupool.core.models import (
    GpuNode,
    GpuSlice,
    PlacementPolicy,
    PoolClass,
    QueueingStrategy,
    Quota,
    Taint,
    Toleration,
    WorkerPlacement,
)


@pytest.mark.parametrize(
    ("value", "millicores"),
    [
        ("500m", 500),
        ("2", 2000),
        (2, 2000),
        ("1.5", 1500),
        ("0.1", 100),
        ("1e-3", 1),
        ("100u", 1),
        (0.25, 250),
    ],
    ids=["milli", "cores", "int", "decimal", "tenth", "exponent", "rounds-up", "float"],
)
def test_cpu_millicores(value: str | int | float, millicores: int) -> None:
    assert parse_cpu_milli(value) == millicores


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("16Gi", 16 * 2**30),
        ("1G", 10**9),
        ("512Mi", 512 * 2**20),
        ("1Ti", 2**40),
        ("128974848", 128974848),
        ("129e6", 129_000_000),
        ("123Mi", 123 * 2**20),
        ("1k", 1000),
        ("1Ki", 1024),
        ("0.5Gi", 2**29),
        (1024, 1024),
    ],
    ids=["Gi", "G", "Mi", "Ti", "plain", "exponent", "odd-Mi", "k", "Ki", "half-Gi", "int"],
)
def test_memory_bytes(value: str | int, size: int) -> None:
    assert parse_memory_bytes(value) == size


@pytest.mark.parametrize("value", ["", "lots", "1.2.3", "Gi", "16GB", "1e", "--1"], ids=lambda v: v or "empty")
def test_malformed_quantities_say_what_forms_work(value: str) -> None:
    with pytest.raises(ConversionError, match="16Gi"):
        parse_quantity(value, what="spec.memory of GPUJob a/b")


def test_negative_quantity_is_refused_with_the_field_named() -> None:
    with pytest.raises(ConversionError, match=r"spec\.cpu.*negative"):
        parse_cpu_milli("-1", what="spec.cpu")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("90m", 5400),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1h30m15s", 5415),
        ("1.5h", 5400),
        ("300ms", 0.3),
        ("0", 0),
    ],
    ids=["s", "m", "h", "h-m", "h-m-s", "fraction", "ms", "zero"],
)
def test_durations(value: str, seconds: float) -> None:
    assert parse_duration_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "2 hours", "h", "10", "1d", "1h-5m"], ids=lambda v: v or "empty")
def test_malformed_durations_say_what_forms_work(value: str) -> None:
    with pytest.raises(ConversionError, match="1h30m"):
        parse_duration_seconds(value)


@pytest.mark.parametrize(
    ("gpus", "milli"),
    [(1, 1000), (2, 2000), (16, 16000), (0.5, 500), (0.25, 250), (0.333, 333), (0.001, 1), (0.9994, 999)],
    ids=["one", "two", "sixteen", "half", "quarter", "third", "smallest", "rounds-down"],
)
def test_gpu_milli(gpus: float, milli: int) -> None:
    assert gpu_milli(gpus) == milli


@pytest.mark.parametrize("gpus", [1.5, 0.0001, 0.9996], ids=["fraction-above-one", "below-milli", "rounds-to-one"])
def test_gpu_milli_refuses_what_the_core_cannot_count(gpus: float) -> None:
    with pytest.raises(ConversionError):
        gpu_milli(gpus)


def test_timestamps() -> None:
    assert parse_timestamp("1970-01-01T00:01:00Z") == 60.0
    assert parse_timestamp("1970-01-01T00:01:00") == 60.0
    assert parse_timestamp(None) is None
    with pytest.raises(ConversionError, match="RFC 3339"):
        parse_timestamp("yesterday")


JOB: dict[str, Any] = {
    "apiVersion": "gpupool.io/v1alpha1",
    "kind": "GPUJob",
    "metadata": {"name": "train", "namespace": "team-a", "creationTimestamp": "1970-01-01T00:00:10Z"},
    "spec": {
        "queue": "team-a",
        "priority": 7,
        "workers": 4,
        "gpus": 2,
        "cpu": "500m",
        "memory": "16Gi",
        "gpuModels": ["H100", "A100"],
        "placement": "SpotAllowed",
        "preemptible": False,
        "template": {
            "spec": {
                "containers": [{"name": "main", "image": "busybox"}],
                "tolerations": [
                    {"key": "gpupool.io/spot", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "dedicated", "value": "ml"},
                ],
            }
        },
    },
}


def test_pending_job_converts_with_core_units() -> None:
    job = job_from_api(parse_gpujob(JOB))
    assert job.key == "team-a/train"
    assert job.queue == "team-a"
    assert (job.shape.gpu_milli, job.shape.cpu_milli, job.shape.memory_bytes) == (2000, 500, 16 * 2**30)
    assert (job.workers, job.priority, job.preemptible) == (4, 7, False)
    assert job.gpu_models == ("H100", "A100")
    assert job.placement_policy is PlacementPolicy.SPOT_ALLOWED
    assert job.submitted_at == 10.0
    assert job.tolerations == (
        Toleration(key="gpupool.io/spot", operator="Exists", effect="NoSchedule"),
        Toleration(key="dedicated", operator="Equal", value="ml"),
    )
    assert job.placements == () and job.admitted_at is None


STATUS_PLACEMENT = [
    {"worker": 1, "pod": "train-1", "node": "n2", "gpuIndices": [2, 3], "gpuShare": 1.0},
    {"worker": 0, "pod": "train-0", "node": "n1", "gpuIndices": [0, 1], "gpuShare": 1.0},
]


@pytest.mark.parametrize(
    ("phase", "holds"),
    [
        ("Admitted", True),
        ("Running", True),
        ("Queued", False),
        ("Succeeded", False),
        ("Failed", False),
        ("Preempted", False),
    ],
    ids=lambda v: str(v),
)
def test_only_admitted_and_running_jobs_hold_their_placements(phase: str, holds: bool) -> None:
    raw = copy.deepcopy(JOB)
    raw["status"] = {"phase": phase, "admittedAt": "1970-01-01T00:00:20Z", "placement": STATUS_PLACEMENT}
    job = job_from_api(parse_gpujob(raw))
    if holds:
        assert job.admitted_at == 20.0
        assert job.placements == (
            WorkerPlacement(worker=0, node="n1", gpus=(GpuSlice(0, 1000), GpuSlice(1, 1000))),
            WorkerPlacement(worker=1, node="n2", gpus=(GpuSlice(2, 1000), GpuSlice(3, 1000))),
        )
    else:
        assert job.placements == () and job.admitted_at is None


def test_fractional_job_round_trips_through_status() -> None:
    raw = copy.deepcopy(JOB)
    raw["spec"].update(workers=1, gpus=0.5)
    nodes = {"n1": GpuNode(name="n1", gpu_model="H100", gpus=8, cpu_milli=1, memory_bytes=1, pool="onprem")}
    placements = (WorkerPlacement(worker=0, node="n1", gpus=(GpuSlice(3, 500),)),)
    status = placement_status(placements, nodes, lambda w: f"train-w{w}")
    assert [s.model_dump(by_alias=True) for s in status] == [
        {
            "worker": 0,
            "pod": "train-w0",
            "node": "n1",
            "pool": "onprem",
            "gpuModel": "H100",
            "gpuIndices": [3],
            "gpuShare": 0.5,
            "gpuUUIDs": [],
            "devices": "Planned",
            "reservation": None,
        }
    ]
    raw["status"] = {"phase": "Running", "placement": [s.model_dump(by_alias=True) for s in status]}
    job = job_from_api(parse_gpujob(raw))
    assert job.shape.gpu_milli == 500 and job.shape.is_fractional
    assert job.placements == placements


def test_job_without_a_name_is_refused() -> None:
    raw = copy.deepcopy(JOB)
    raw["metadata"] = {}
    with pytest.raises(ConversionError, match=r"metadata\.name"):
        job_from_api(parse_gpujob(raw))


def test_queue_converts() -> None:
    queue = parse_gpuqueue(
        {
            "kind": "GPUQueue",
            "metadata": {"name": "team-a"},
            "spec": {
                "quotas": [
                    {"gpuModel": "H100", "nominal": 16, "borrowingLimit": 8},
                    {"pool": "cloud", "nominal": 4, "lendingLimit": 0},
                ],
                "cohort": "research",
                "weight": 2,
                "maxPriority": 100,
                "queueingStrategy": "StrictFIFO",
                "preemption": {"reclaimWithinCohort": False, "minRuntime": "10m"},
                "allowCloud": False,
                "allowSpot": True,
            },
        }
    )
    core = queue_from_api(queue, decayed_usage_gpu_seconds=42.0, budget_exhausted=True)
    assert core.name == "team-a"
    assert core.quotas == (
        Quota(nominal_gpus=16, gpu_model="H100", borrowing_limit_gpus=8),
        Quota(nominal_gpus=4, pool="cloud", lending_limit_gpus=0),
    )
    assert (core.cohort, core.weight, core.max_priority) == ("research", 2.0, 100)
    assert core.strategy is QueueingStrategy.STRICT_FIFO
    assert core.preemption.reclaim_within_cohort is False and core.preemption.within_queue is True
    assert core.preemption.min_runtime_seconds == 600.0
    assert (core.allow_cloud, core.allow_spot) == (False, True)
    assert (core.decayed_usage_gpu_seconds, core.budget_exhausted) == (42.0, True)


def test_queue_defaults_convert() -> None:
    core = queue_from_api(GPUQueue.model_validate({"metadata": {"name": "q"}}))
    assert core.quotas == () and core.cohort is None and core.weight == 1.0
    assert core.preemption.min_runtime_seconds == 0.0
    assert core.strategy is QueueingStrategy.BEST_EFFORT_FIFO


POOLS = [
    parse_gpunodepool(
        {
            "kind": "GPUNodePool",
            "metadata": {"name": "cloud-a100"},
            "spec": {
                "class": "Cloud",
                "gpuModel": "A100",
                "gpusPerNode": 8,
                "nodeSelector": {"cloud": "yes"},
            },
        }
    ),
    parse_gpunodepool(
        {
            "kind": "GPUNodePool",
            "metadata": {"name": "onprem-h100"},
            "spec": {"class": "OnPrem", "gpuModel": "H100", "gpusPerNode": 8, "nodeSelector": {"rack": "r1"}},
        }
    ),
]

LABELS_FULL = {
    "gpupool.io/gpu-model": "A100",
    "gpupool.io/pool": "cloud-spot",
    "gpupool.io/class": "Cloud",
    "gpupool.io/spot": "true",
}


# A node as Kubernetes reports it: the kubelet's default pod limit unless a row says otherwise.
KubeNode = functools.partial(GpuNode, max_pods=110)


@pytest.mark.parametrize(
    ("node", "pools", "expected"),
    [
        (
            node_object(model="H100"),
            [],
            KubeNode(name="n1", gpu_model="H100", gpus=8, cpu_milli=64000, memory_bytes=512 * 2**30),
        ),
        (
            node_object(
                model=None,
                labels=LABELS_FULL,
                taints=[{"key": "spot", "value": "1", "effect": "NoExecute"}, {"key": "x"}],
            ),
            [],
            KubeNode(
                name="n1",
                gpu_model="A100",
                gpus=8,
                cpu_milli=64000,
                memory_bytes=512 * 2**30,
                pool="cloud-spot",
                pool_class=PoolClass.CLOUD,
                spot=True,
                taints=(Taint("spot", "1", "NoExecute"), Taint("x", "", "NoSchedule")),
            ),
        ),
        (
            node_object(model=None, labels={"cloud": "yes"}),
            POOLS,
            KubeNode(
                name="n1",
                gpu_model="A100",
                gpus=8,
                cpu_milli=64000,
                memory_bytes=512 * 2**30,
                pool="cloud-a100",
                pool_class=PoolClass.CLOUD,
            ),
        ),
        (
            node_object(model=None, labels={"gpupool.io/pool": "onprem-h100"}),
            POOLS,
            KubeNode(
                name="n1",
                gpu_model="H100",
                gpus=8,
                cpu_milli=64000,
                memory_bytes=512 * 2**30,
                pool="onprem-h100",
            ),
        ),
        (
            node_object(model="H100", ready="False"),
            [],
            KubeNode(name="n1", gpu_model="H100", gpus=8, cpu_milli=64000, memory_bytes=512 * 2**30, ready=False),
        ),
        (
            node_object(model="H100", unschedulable=True),
            [],
            KubeNode(name="n1", gpu_model="H100", gpus=8, cpu_milli=64000, memory_bytes=512 * 2**30, ready=False),
        ),
        (
            node_object(model="H100", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]),
            [],
            KubeNode(
                name="n1",
                gpu_model="H100",
                gpus=8,
                cpu_milli=64000,
                memory_bytes=512 * 2**30,
                ready=False,
                taints=(Taint("node.kubernetes.io/not-ready", "", "NoSchedule"),),
            ),
        ),
        (
            node_object(model="H100", gpus=None),
            [],
            KubeNode(name="n1", gpu_model="H100", gpus=0, cpu_milli=64000, memory_bytes=512 * 2**30),
        ),
        (
            node_object(model="H100", pods="16"),
            [],
            KubeNode(name="n1", gpu_model="H100", gpus=8, cpu_milli=64000, memory_bytes=512 * 2**30, max_pods=16),
        ),
        (
            node_object(model="H100", pods=None),
            [],
            KubeNode(name="n1", gpu_model="H100", gpus=8, cpu_milli=64000, memory_bytes=512 * 2**30),
        ),
        (node_object(model=None, labels={"kubernetes.io/os": "linux"}), POOLS, None),
    ],
    ids=[
        "model-label-only",
        "all-labels-and-taints",
        "pool-by-selector",
        "pool-by-label",
        "not-ready",
        "cordoned",
        "ready-but-still-tainted-not-ready",
        "no-gpus-yet",
        "pod-limit",
        "no-pod-limit-reported",
        "cpu-only-node",
    ],
)
def test_gpu_node_from_k8s(node: dict[str, Any], pools: list[GPUNodePool], expected: GpuNode | None) -> None:
    assert gpu_node_from_k8s(node, pools) == expected


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ({"gpupool.io/gpu-model": "H100", "gpupool.io/class": "Hybrid"}, "OnPrem or Cloud"),
        ({"gpupool.io/gpu-model": "H100"}, "whole number"),
    ],
    ids=["bad-class-label", "fractional-gpu-capacity"],
)
def test_unreadable_nodes_name_the_node_and_the_fix(labels: dict[str, str], match: str) -> None:
    node = node_object(model=None, labels=labels, gpus="1.5" if match == "whole number" else "8")
    with pytest.raises(ConversionError, match=match) as err:
        gpu_node_from_k8s(node)
    assert "node n1" in str(err.value)


def test_a_fractional_pod_limit_names_the_node() -> None:
    node = node_object(model="H100", pods="1.5")
    with pytest.raises(ConversionError, match=r"pods='1\.5' must be a whole number") as err:
        gpu_node_from_k8s(node)
    assert "node n1" in str(err.value)


def test_pool_for_node_prefers_the_label_then_the_first_selector_by_name() -> None:
    assert pool_for_node({"gpupool.io/pool": "onprem-h100", "cloud": "yes"}, POOLS) is POOLS[1]
    assert pool_for_node({"cloud": "yes", "rack": "r1"}, POOLS) is POOLS[0]
    assert pool_for_node({}, POOLS) is None
