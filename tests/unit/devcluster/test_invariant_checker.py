"""The chaos runs' invariant checker on hand-built object tables: each row is a small world of
jobs, pods and nodes (as the API server serves them) and the violations it must report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from gpupool.devcluster.checker import check, pod_gpu_request, quantity


def node(name: str, gpus: int = 8) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}}}


def pod(
    job: str,
    worker: int,
    node_name: str,
    *,
    gpus: int = 1,
    indices: str = "0",
    share: str = "1",
    phase: str = "Running",
    attempt: int = 1,
) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {
        "metadata": {
            "name": f"{job}-a{attempt}-w{worker}",
            "namespace": "ns",
            "labels": {"gpupool.io/job": job, "gpupool.io/worker": str(worker), "gpupool.io/attempt": str(attempt)},
            "annotations": {"gpupool.io/gpu-indices": indices, "gpupool.io/gpu-share": share},
        },
        "spec": {"nodeName": node_name, "containers": [{"name": "main", "resources": {"limits": limits}}]},
        "status": {"phase": phase},
    }


def job(name: str, phase: str | None = "Succeeded", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "status": {"phase": phase, **status} if phase else {}}


def usage(start: str, end: str, cost: float, gpu_seconds: float = 10.0, attempts: int = 1) -> dict[str, Any]:
    return {
        "startedAt": f"2026-01-01T00:{start}Z",
        "endedAt": f"2026-01-01T00:{end}Z",
        "cost": cost,
        "gpuSeconds": gpu_seconds,
        "attempts": attempts,
    }


def placed(worker: int, node_name: str, indices: list[int], share: float = 1.0) -> dict[str, Any]:
    return {"worker": worker, "node": node_name, "gpuIndices": indices, "gpuShare": share}


@dataclass(frozen=True)
class World:
    id: str
    jobs: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=lambda: [node("n1")])
    expected: tuple[str, ...] = ()
    expect_finished: bool = False
    violations: tuple[str, ...] = ()  # the kinds reported, in order


ONE_ATTEMPT = {"attempts": 1, "cost": 1.5, "gpuSeconds": 10.0, "usageHistory": [usage("00:00", "00:10", 1.5)]}

WORLDS = [
    World("empty world"),
    World(
        "clean: a running gang, a finished job, two shares of one GPU",
        jobs=[
            job("gang", "Running", placement=[placed(0, "n1", [0, 1]), placed(1, "n1", [2, 3])]),
            job("done", **ONE_ATTEMPT),
            job("half-a", "Running", placement=[placed(0, "n1", [4], 0.5)]),
            job("half-b", "Running", placement=[placed(0, "n1", [4], 0.5)]),
        ],
        pods=[
            pod("gang", 0, "n1", gpus=2, indices="0,1"),
            pod("gang", 1, "n1", gpus=2, indices="2,3"),
            pod("done", 0, "n1", indices="0", phase="Succeeded"),
            pod("half-a", 0, "n1", gpus=0, indices="4", share="0.5"),
            pod("half-b", 0, "n1", gpus=0, indices="4", share="0.5"),
        ],
        expected=("ns/gang", "ns/done", "ns/half-a", "ns/half-b"),
    ),
    World(
        "a submitted job is missing", jobs=[job("a", **ONE_ATTEMPT)], expected=("ns/a", "ns/b"), violations=("lost",)
    ),
    World(
        "a job never finished",
        jobs=[job("a", **ONE_ATTEMPT), job("b", "Queued"), job("c", None)],
        expect_finished=True,
        violations=("unfinished", "unfinished"),
    ),
    World("unfinished is not judged mid-run", jobs=[job("b", "Running")]),
    World(
        "two live pods for one worker (an old attempt's still running)",
        pods=[pod("a", 0, "n1", indices="0"), pod("a", 0, "n1", indices="1", attempt=2)],
        violations=("duplicate",),
    ),
    World(
        "a finished old attempt beside the new one is no duplicate",
        pods=[pod("a", 0, "n1", phase="Failed"), pod("a", 0, "n1", indices="1", attempt=2)],
    ),
    World(
        "live pods ask for more GPUs than the node has",
        nodes=[node("n1", 4)],
        pods=[pod("a", 0, "n1", gpus=3, indices="0,1,2"), pod("b", 0, "n1", gpus=2, indices="3")],
        violations=("over-allocated",),
    ),
    World(
        "one GPU index handed to two workers",
        pods=[pod("a", 0, "n1", indices="0,1", gpus=2), pod("b", 0, "n1", indices="1")],
        violations=("gpu-shared",),
    ),
    World(
        "an index the node does not have",
        nodes=[node("n1", 2)],
        pods=[pod("a", 0, "n1", indices="2")],
        violations=("gpu-shared",),
    ),
    World(
        "three half shares of one GPU",
        pods=[pod(n, 0, "n1", gpus=0, indices="0", share="0.5") for n in ("a", "b", "c")],
        violations=("gpu-shared",),
    ),
    World(
        "job placements overlap though the pods are gone",
        jobs=[
            job("a", "Admitted", placement=[placed(0, "n1", [0])]),
            job("b", "Running", placement=[placed(0, "n1", [0])]),
        ],
        violations=("gpu-shared",),
    ),
    World(
        "a preempted job's old placement holds nothing",
        jobs=[
            job("a", "Preempted", placement=[placed(0, "n1", [0])]),
            job("b", "Running", placement=[placed(0, "n1", [0])]),
        ],
    ),
    World(
        "cost differs from the recorded attempts",
        jobs=[job("a", **{**ONE_ATTEMPT, "cost": 3.0})],
        violations=("cost",),
    ),
    World(
        "an attempt recorded twice",
        jobs=[
            job(
                "a",
                attempts=1,
                cost=3.0,
                gpuSeconds=20.0,
                usageHistory=[usage("00:00", "00:10", 1.5), usage("00:00", "00:10", 1.5)],
            )
        ],
        violations=("cost", "cost"),  # more entries than attempts, and they overlap
    ),
    World(
        "two attempts, one after the other, folded entries counted by their attempts",
        jobs=[
            job(
                "a",
                "Failed",
                attempts=4,
                cost=3.0,
                gpuSeconds=20.0,
                usageHistory=[usage("00:00", "00:10", 1.5, attempts=3), usage("00:10", "00:20", 1.5)],
            )
        ],
    ),
    World(
        "an attempt number repeated in provenance",
        jobs=[job("a", **ONE_ATTEMPT, provenance={"attempts": [{"attempt": 1}, {"attempt": 1}]})],
        violations=("cost",),
    ),
    World("a finished job that never started costs nothing", jobs=[job("a", "Failed", attempts=0)]),
]


@pytest.mark.parametrize("world", WORLDS, ids=[w.id for w in WORLDS])
def test_checker_reports_exactly_the_broken_invariants(world: World) -> None:
    report = check(world.jobs, world.pods, world.nodes, expected=world.expected, expect_finished=world.expect_finished)
    assert tuple(v.kind for v in report.violations) == world.violations, report.summary()
    assert report.ok == (not world.violations)
    assert (report.jobs, report.pods, report.nodes) == (len(world.jobs), len(world.pods), len(world.nodes))


def test_report_counts_kinds_and_phases() -> None:
    jobs = [job("a", "Queued"), job("b", None), job("c", **ONE_ATTEMPT)]
    report = check(jobs, [], [], expected=("ns/a", "ns/z"), expect_finished=True)
    assert report.phases == {"Queued": 1, "Succeeded": 1, "unset": 1}
    assert (report.count("lost"), report.count("unfinished"), report.count("lost", "unfinished")) == (1, 2, 3)
    assert "ns/z" in report.summary()


@pytest.mark.parametrize(
    ("value", "number"), [(None, 0.0), ("", 0.0), ("8", 8.0), (4, 4.0), ("500m", 0.5), ("1.5", 1.5)]
)
def test_quantity(value: object, number: float) -> None:
    assert quantity(value) == number


def test_gpu_request_reads_requests_then_limits_and_init_containers() -> None:
    spec = {
        "containers": [
            {"resources": {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}},
            {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
            {"resources": {}},
        ],
        "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "4"}}}],
    }
    assert pod_gpu_request({"spec": spec}) == 4.0
    assert pod_gpu_request({"spec": {**spec, "initContainers": []}}) == 3.0
