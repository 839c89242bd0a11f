"""Pods gpupool did not create: their requests as the kube-scheduler counts them, kept compact,
and subtracted from their node in the snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from builders.api import cache_of, foreign_pod_object, node_object, reporting_node, view_of
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.state.parsing import ForeignUsage, compact_foreign_pod, foreign_usage
from gpupool.cluster.translate.snapshot import build_snapshot
from gpupool.core.placement.state import PlacementState

GIB = 1024**3


def container(**requests: str) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": requests.pop("gpu_limit")} if "gpu_limit" in requests else {}
    return {"name": "c", "resources": {"requests": requests, "limits": limits}}


def foreign_pod(
    node: str, *containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (), name: str = "agent", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "resourceVersion": "7", "labels": {"a": "b"}},
        "spec": {"nodeName": node, "containers": list(containers), "initContainers": list(init), **spec},
        "status": {"phase": "Running"},
    }


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (foreign_pod("n1", container(cpu="500m", memory="1Gi")), ForeignUsage("n1", 0, 500, GIB)),
        (foreign_pod("n1", container(cpu="1"), container(cpu="2", memory="2Gi")), ForeignUsage("n1", 0, 3000, 2 * GIB)),
        (foreign_pod("n1", container(gpu_limit="8")), ForeignUsage("n1", 8, 0, 0)),
        (foreign_pod("n1", container(cpu="1"), init=(container(cpu="4"),)), ForeignUsage("n1", 0, 4000, 0)),
        (foreign_pod("n1", container(cpu="1"), overhead={"cpu": "250m"}), ForeignUsage("n1", 0, 1250, 0)),
    ],
    ids=["one-container", "containers-add-up", "gpu-limit-is-the-request", "largest-init-wins", "overhead-adds"],
)
def test_requests_are_counted_as_the_scheduler_counts_them(pod: dict[str, Any], expected: ForeignUsage) -> None:
    compact = compact_foreign_pod(pod)
    assert set(compact) == {"metadata", "spec", "requests"}
    assert foreign_usage(compact) == expected


def test_foreign_usage_is_reserved_on_its_node_only() -> None:
    cache = cache_of([node_object("n1"), node_object("n2")])
    pods = [
        foreign_pod("n1", container(gpu_limit="3", cpu="2"), name="trainer"),
        foreign_pod("n1", container(cpu="1", memory="1Gi"), name="agent"),
        foreign_pod("cpu-node", container(cpu="1"), name="web"),
    ]
    for pod in pods:
        cache.upsert(Kind.FOREIGN_POD, compact_foreign_pod(pod))
    nodes = build_snapshot(cache.view(), 1.0, decayed_usage={}).nodes
    assert (nodes["n1"].reserved_gpus, nodes["n1"].reserved_cpu_milli, nodes["n1"].reserved_memory_bytes) == (
        3,
        3000,
        GIB,
    )
    assert (nodes["n2"].reserved_gpus, nodes["n2"].reserved_cpu_milli) == (0, 0)


@pytest.mark.parametrize(
    ("report", "indices", "free"),
    [
        pytest.param(None, (), [0, 0, 0, 0, 1, 1, 1, 1], id="kwok: a count, the first idle GPUs (the fallback)"),
        pytest.param({"other/big": [1, 4, 6], "other/small": [7]}, (1, 4, 6, 7), [1, 0, 1, 1, 0, 1, 0, 0], id="all"),
        pytest.param({"other/big": [2, 5, 6]}, (2, 5, 6), [0, 1, 0, 1, 1, 0, 0, 1], id="small not shown yet"),
        pytest.param({}, (), [0, 0, 0, 0, 1, 1, 1, 1], id="a report that shows neither"),
    ],
)
def test_foreign_pods_hold_the_gpus_the_node_reports(
    report: dict[str, list[int]] | None, indices: tuple[int, ...], free: list[int]
) -> None:
    node = reporting_node("n1", report) if report is not None else node_object("n1")
    pods = {"other/big": foreign_pod_object("big", gpus=3), "other/small": foreign_pod_object("small", gpus=1)}
    snap = build_snapshot(view_of(nodes={"n1": node}, foreignpods=pods), 1.0, decayed_usage={})
    n1 = snap.nodes["n1"]
    assert (n1.reserved_gpus, n1.reserved_gpu_indices) == (4, indices)
    state = PlacementState.build(snap.snapshot.nodes)
    assert [int(m) // 1000 for m in state.gpu_free[state.index_of("n1")]] == free
