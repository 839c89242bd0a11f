"""The invariant checker's physical-truth rule (`device-shared`), on raw API objects as the
API server serves them: from the nodes' pod-devices reports no GPU UUID is held by two pods,
but for the shares of one reservation; and the index rules leave a reporting node's planned
indices alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders.api import (
    device_annotations,
    foreign_pod_object,
    gpu_uuid,
    node_object,
    placement_entry,
    reporting_node,
    reservation_pod_object,
    running_gpujob_object,
    worker_pod_object,
)
from gpupool.annotations.pod_devices import ANNOTATION as POD_DEVICES_ANNOTATION
from gpupool.devcluster.checker import check

RESERVE = "default/gpupool-reserve-n1-g0"


def share(name: str, told: str, reservation: str | None = RESERVE, indices: str = "0") -> dict[str, Any]:
    """A live share pod told `told` in NVIDIA_VISIBLE_DEVICES (a UUID, or an index)."""
    annotations = {"gpupool.io/gpu-indices": indices, "gpupool.io/gpu-share": "0.5"}
    if reservation:
        annotations["gpupool.io/reservation"] = reservation
    return worker_pod_object(name, annotations=annotations, env={"NVIDIA_VISIBLE_DEVICES": told})


def whole(name: str, indices: str = "0", gpus: int = 1) -> dict[str, Any]:
    """A live whole-GPU worker pod whose planned indices are `indices` (the kubelet chose)."""
    annotations = {"gpupool.io/gpu-indices": indices, "gpupool.io/gpu-share": "1"}
    return worker_pod_object(name, annotations=annotations, gpus=gpus)


@dataclass(frozen=True)
class World:
    report: dict[str, list[int]] | None
    pods: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    violations: tuple[str, ...] = ()


U0 = gpu_uuid("n1", 0)
WORLDS = {
    "clean: two whole pods, a foreign one, two shares of one reservation": World(
        {"ns/a-a1-w0": [3], "ns/b-a1-w0": [0, 1], "other/tenant": [2], RESERVE: [5]},
        pods=[
            whole("a"),  # planned 0, got 3: a plan, not a collision
            whole("b", "0,1", 2),
            foreign_pod_object("tenant", node="n1"),
            reservation_pod_object("n1", 0),
            share("s1", gpu_uuid("n1", 5)),
            share("s2", gpu_uuid("n1", 5)),
        ],
    ),
    "the report gives one GPU to two pods": World(
        {"ns/a-a1-w0": [3], "other/tenant": [3]},
        pods=[whole("a"), foreign_pod_object("tenant")],
        violations=("device-shared",),
    ),
    "a share told a GPU the report gives a whole pod (reservations off: at risk)": World(
        {"ns/a-a1-w0": [0]}, pods=[whole("a"), share("s1", "0", reservation=None)], violations=("device-shared",)
    ),
    "a share of another reservation told this one's GPU": World(
        {RESERVE: [5], "default/gpupool-reserve-n1-g1": [6]},
        pods=[share("s1", gpu_uuid("n1", 6))],
        violations=("device-shared",),
    ),
    "a share told an unreserved GPU nobody holds: not a collision": World(
        {}, pods=[share("s1", gpu_uuid("n1", 4), reservation=None)]
    ),
    "a finished pod's env says nothing": World(
        {"ns/a-a1-w0": [0]},
        pods=[whole("a"), {**share("s1", U0, reservation=None), "status": {"phase": "Succeeded"}}],
    ),
    "placements: planned ones collide on a reporting node, reported ones do not": World(
        {"ns/a-a1-w0": [3], "ns/b-a1-w0": [4]},
        jobs=[
            running_gpujob_object("a", [placement_entry(job="a", indices=(3,), devices="Reported")]),
            running_gpujob_object("b", [placement_entry(job="b", indices=(3,))]),
        ],
    ),
    "placements: two reported on one GPU": World(
        {},
        jobs=[
            running_gpujob_object("a", [placement_entry(job="a", indices=(3,), devices="Reported")]),
            running_gpujob_object("b", [placement_entry(job="b", indices=(3,), devices="Reported")]),
        ],
        violations=("gpu-shared",),
    ),
}


@pytest.mark.parametrize("world", list(WORLDS.values()), ids=list(WORLDS))
def test_physical_truth(world: World) -> None:
    nodes = [reporting_node("n1", world.report) if world.report is not None else node_object("n1")]
    report = check(world.jobs, world.pods, nodes)
    assert tuple(v.kind for v in report.violations) == world.violations, report.summary()


def test_on_a_kwok_node_the_planned_indices_are_still_checked() -> None:
    nodes = [node_object("n1", annotations=device_annotations("n1", 8, None))]  # a map, no report
    report = check([], [whole("a"), whole("b")], nodes)
    assert [v.kind for v in report.violations] == ["gpu-shared"]
    assert report.count("device-shared") == 0


def test_a_uuid_held_on_two_nodes_is_a_violation_too() -> None:
    n1 = reporting_node("n1", {"ns/a-a1-w0": [0]})
    n2 = reporting_node("n2", {})
    n2["metadata"]["annotations"][POD_DEVICES_ANNOTATION] = n1["metadata"]["annotations"][POD_DEVICES_ANNOTATION]
    report = check([], [], [n1, n2])
    assert [v.kind for v in report.violations] == ["device-shared"]
    assert "on n1" in report.violations[0].detail and "on n2" in report.violations[0].detail


def test_a_malformed_report_is_no_report() -> None:
    bad = reporting_node("n1", {})
    bad["metadata"]["annotations"][POD_DEVICES_ANNOTATION] = "{not json"
    assert check([], [share("s1", U0, reservation=None)], [bad]).ok


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 7), min_size=1, max_size=6),  # the GPU each whole pod got
    st.lists(st.tuples(st.booleans(), st.integers(0, 7)), max_size=6),  # shares: reserved?, GPU
)
def test_a_violation_exactly_when_a_gpu_has_two_holders(whole_gpus: list[int], shares: list[tuple[bool, int]]) -> None:
    report: dict[str, list[int]] = {}
    pods = []
    for number, index in enumerate(whole_gpus):
        report[f"ns/w{number}-a1-w0"] = [index]
        pods.append(whole(f"w{number}"))
    reservations: dict[int, str] = {}
    for number, (reserved, index) in enumerate(shares):
        key = None
        if reserved:
            key = reservations.setdefault(index, f"default/gpupool-reserve-n1-g{index}")
            report[key] = [index]
        pods.append(share(f"s{number}", gpu_uuid("n1", index), reservation=key))
    holders: dict[int, set[str]] = {}
    for key, indices in report.items():
        for index in indices:
            holders.setdefault(index, set()).add(key)
    told_unreserved = {index for reserved, index in shares if not reserved}
    expected = any(len(h) > 1 for h in holders.values()) or any(i in holders for i in told_unreserved)
    got = check([], pods, [reporting_node("n1", report)]).count("device-shared") > 0
    assert got == expected
