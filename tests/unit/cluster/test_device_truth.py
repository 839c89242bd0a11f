"""Device truth: the GPUs a worker holds are the ones its node reports (the agent's
`gpupool.io/pod-devices` and `gpupool.io/gpu-uuids` annotations), in `status.placement`, the
core's view, provenance, idle detection and the allocation metric; kwok nodes, which report
nothing, keep gpupool's planned indices (the fallback)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders.api import (
    device_annotations,
    gpu_uuid,
    gpujob_object,
    gpunodepool_object,
    gpuqueue_object,
    node_object,
    placement_entry,
    pool_node_object,
    reporting_node,
    running_gpujob_object,
    view_of,
    worker_pod_object,
)
from builders.loop import Rig, device_world
from gpupool.annotations.summary import ANNOTATION as SUMMARY_ANNOTATION
from gpupool.annotations.summary import UtilizationSummary, format_summary
from gpupool.api import DeviceSource, JobPhase, WorkerPlacementStatus
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.translate.devices import (
    NO_DEVICES,
    NodeDevices,
    gpu_uuid_of,
    judged_gpus,
    node_devices,
    resolved_placement,
    resolved_worker,
)
from gpupool.cluster.translate.snapshot import build_snapshot
from gpupool.core.placement.state import PlacementState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
OPERATOR_NS = "default"


def devices(pods: dict[str, list[int]] | None, *, gpus: int = 8, uuids: bool = True) -> NodeDevices:
    return node_devices(node_object("n1", annotations=device_annotations("n1", gpus, pods, uuids=uuids)))


def worker(indices: tuple[int, ...] = (0, 1), share: float = 1.0, **fields: Any) -> WorkerPlacementStatus:
    entry = placement_entry(indices=indices, share=share, **fields)
    return WorkerPlacementStatus.model_validate(entry)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("annotations", "labels", "reports", "accepts_shares"),
    [
        pytest.param({}, {}, False, True, id="kwok: no annotation at all"),
        pytest.param(device_annotations("n1", 2, None), {}, False, True, id="a UUID map but no report"),
        pytest.param(device_annotations("n1", 2, {}, uuids=False), {}, False, True, id="a report but no map"),
        pytest.param(device_annotations("n1", 2, {}), {}, True, True, id="both: nobody holds a GPU"),
        pytest.param(
            {**device_annotations("n1", 2, {}), "gpupool.io/pod-devices": "{oops"}, {}, False, True, id="bad report"
        ),
        pytest.param({}, {"gpupool.io/share-envvar": "false"}, False, False, id="refuses env-var devices"),
        pytest.param({}, {"gpupool.io/share-envvar": "true"}, False, True, id="accepts them, said so"),
    ],
)
def test_a_node_is_parsed_once_into_what_it_reports(
    annotations: dict[str, str], labels: dict[str, str], reports: bool, accepts_shares: bool
) -> None:
    view = view_of(nodes={"n1": node_object("n1", annotations=annotations, labels=labels)})
    parsed = view.parsed(Kind.NODE)["n1"]
    assert isinstance(parsed, NodeDevices)
    assert (parsed.reports, parsed.accepts_shares) == (reports, accepts_shares)


# --------------------------------------------------------------------------- one worker


@dataclass(frozen=True)
class WorkerCase:
    worker: WorkerPlacementStatus
    node: NodeDevices
    indices: list[int]
    uuids: list[str]
    source: DeviceSource


U = gpu_uuid
WORKER_CASES = {
    "kwok: the planned indices stand": WorkerCase(worker(), NO_DEVICES, [0, 1], [], DeviceSource.PLANNED),
    "reported: the kubelet's choice, by index": WorkerCase(
        worker(), devices({"ns/train-a1-w0": [6, 3]}), [3, 6], [U("n1", 3), U("n1", 6)], DeviceSource.REPORTED
    ),
    "a reporting node that has not shown the pod yet": WorkerCase(
        worker(), devices({"other/x": [0]}), [0, 1], [], DeviceSource.PLANNED
    ),
    "a UUID the map does not name: not trusted": WorkerCase(
        worker(), devices({"ns/train-a1-w0": [3, 9]}, gpus=8), [0, 1], [], DeviceSource.PLANNED
    ),
    "a report that changed moves the worker": WorkerCase(
        worker(indices=(3,), devices="Reported", gpuUUIDs=[U("n1", 3)]),
        devices({"ns/train-a1-w0": [4]}),
        [4],
        [U("n1", 4)],
        DeviceSource.REPORTED,
    ),
    "a pod gone from the report keeps what it was reported": WorkerCase(
        worker(indices=(3,), devices="Reported", gpuUUIDs=[U("n1", 3)]),
        devices({}),
        [3],
        [U("n1", 3)],
        DeviceSource.REPORTED,
    ),
    "a share without a reservation holds no device of its own": WorkerCase(
        worker(indices=(2,), share=0.5), devices({"ns/train-a1-w0": [5]}), [2], [], DeviceSource.PLANNED
    ),
    "a share is given its reservation pod's GPU": WorkerCase(
        worker(indices=(2,), share=0.5, reservation=f"{OPERATOR_NS}/gpupool-reserve-n1-g2"),
        devices({f"{OPERATOR_NS}/gpupool-reserve-n1-g2": [7]}),
        [7],
        [U("n1", 7)],
        DeviceSource.REPORTED,
    ),
}


@pytest.mark.parametrize("case", list(WORKER_CASES.values()), ids=list(WORKER_CASES))
def test_a_worker_holds_the_gpus_its_node_reports(case: WorkerCase) -> None:
    got = resolved_worker(case.worker, "ns", case.node)
    assert (got.gpu_indices, got.gpu_uuids, got.devices) == (case.indices, case.uuids, case.source)


def test_nothing_new_reported_is_the_same_object_so_no_status_is_written_again() -> None:
    node = devices({"ns/train-a1-w0": [3]})
    once = resolved_placement([worker(indices=(0,))], "ns", {"n1": node})
    again = resolved_placement(once, "ns", {"n1": node})
    assert again is once and once[0].devices == DeviceSource.REPORTED


@pytest.mark.parametrize(
    ("where", "node", "uuids"),
    [
        pytest.param(worker(), NO_DEVICES, [None, None], id="no map, no report"),
        pytest.param(worker(), devices(None), [U("n1", 0), U("n1", 1)], id="kwok fallback: the planned index's"),
        pytest.param(worker(), devices({}), [None, None], id="a reporting node: never a planned index's"),
        pytest.param(
            worker(indices=(5,), devices="Reported", gpuUUIDs=[U("n1", 5)]), devices({}), [U("n1", 5)], id="reported"
        ),
    ],
)
def test_the_uuid_of_a_workers_gpu(where: WorkerPlacementStatus, node: NodeDevices, uuids: list[str | None]) -> None:
    assert [gpu_uuid_of(where, i, node) for i in range(len(where.gpu_indices))] == uuids


def test_idle_detection_judges_only_gpus_really_held() -> None:
    reporting = {"n1": devices({})}
    assert judged_gpus([worker()], {}) == [("n1", 0), ("n1", 1)]  # kwok: the fallback
    assert judged_gpus([worker()], reporting) is None  # not reported yet: unknown
    reported = worker(indices=(4,), devices="Reported", gpuUUIDs=[U("n1", 4)])
    assert judged_gpus([reported], reporting) == [("n1", 4)]


# --------------------------------------------------------------------------- the core's view


def test_the_core_counts_the_reported_gpus_before_the_status_is_patched() -> None:
    job = running_gpujob_object("train", [placement_entry(indices=(0, 1))], gpus=2)
    other = running_gpujob_object("other", [placement_entry(job="other", indices=(2, 3))], gpus=2)
    node = reporting_node("n1", {"ns/train-a1-w0": [2, 5], "ns/other-a1-w0": [0, 1]}, labels={"gpupool.io/pool": "gpu"})
    view = view_of(
        nodes={"n1": node},
        gpunodepools={"gpu": gpunodepool_object("gpu")},
        gpujobs={"ns/train": job, "ns/other": other},
    )
    snap = build_snapshot(view, NOW, decayed_usage={})
    held = {j.key: [s.index for p in j.placements for s in p.gpus] for j in snap.snapshot.running}
    assert held == {"ns/train": [2, 5], "ns/other": [0, 1]}
    state = PlacementState.build(snap.snapshot.nodes, snap.snapshot.running)
    free = state.gpu_free[state.index_of("n1")].tolist()
    assert free == [0, 0, 0, 1000, 1000, 0, 1000, 1000]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_no_gpu_is_counted_twice_whatever_was_planned(data: st.DataObject) -> None:
    gpus = data.draw(st.integers(2, 8), label="gpus")
    sizes = data.draw(st.lists(st.integers(1, 2), min_size=1, max_size=gpus), label="sizes")
    while sum(sizes) > gpus:
        sizes.pop()
    order = data.draw(st.permutations(range(gpus)), label="kubelet's choice")
    reported = data.draw(st.lists(st.booleans(), min_size=len(sizes), max_size=len(sizes)), label="reported")
    jobs, pods, taken = {}, {}, 0
    for number, size in enumerate(sizes):
        name = f"j{number}"
        planned = data.draw(st.lists(st.integers(0, gpus - 1), min_size=size, max_size=size, unique=True))
        jobs[f"ns/{name}"] = running_gpujob_object(name, [placement_entry(job=name, indices=planned)], gpus=size)
        real = list(order[taken : taken + size])
        taken += size
        if reported[number]:
            pods[f"ns/{name}-a1-w0"] = real
    node = reporting_node("n1", pods, gpus=gpus, labels={"gpupool.io/pool": "gpu"})
    view = view_of(
        nodes={"n1": node}, gpunodepools={"gpu": gpunodepool_object("gpu", gpus_per_node=gpus)}, gpujobs=jobs
    )
    snap = build_snapshot(view, NOW, decayed_usage={})
    state = PlacementState.build(snap.snapshot.nodes, snap.snapshot.running)
    row = state.gpu_free[state.index_of("n1")][:gpus]
    # Every reported GPU is held, whatever the plan said, and the free GPUs are exactly the truth.
    for number, key in enumerate(sorted(pods)):
        assert all(row[i] == 0 for i in pods[key]), number
    assert int((row == 1000).sum()) == gpus - sum(sizes)


# --------------------------------------------------------------------------- the loop


START = NOW


def summary_at(values: dict[int, float], at: float) -> str:
    return format_summary(UtilizationSummary(300, 300, datetime.fromtimestamp(at, UTC), values))


def node_at(pods: dict[str, list[int]] | None, at: float, readings: dict[int, float] | None = None) -> dict[str, Any]:
    """n1 as its agent last published it at `at`: the device report and, with `readings`,
    a full-window utilisation summary."""
    summary = {SUMMARY_ANNOTATION: summary_at(readings, at)} if readings is not None else {}
    return pool_node_object(pods, version=int(at), annotations=summary)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def world(
    pods: dict[str, list[int]] | None,
    *jobs: dict[str, Any],
    idle: dict[str, str] | None = None,
    readings: dict[int, float] | None = None,
) -> tuple[Rig, Clock]:
    """n1 reporting `pods`, and each job with its worker pods."""
    clock = Clock()
    queue = gpuqueue_object("q", **({"idle": idle} if idle else {}))
    workers = [worker_pod_object(j["metadata"]["name"], e["worker"]) for j in jobs for e in j["status"]["placement"]]
    node = node_at(pods, START, readings)
    return device_world(pods, *jobs, *workers, clock=clock, queue=queue, node=node), clock


def status_writes(r: Rig, name: str = "train") -> int:
    return sum(1 for verb, target in r.writes("patch_job_status") if target.endswith(f"/ns/{name}"))


def running(name: str = "train", indices: tuple[int, ...] = (0, 1)) -> dict[str, Any]:
    return running_gpujob_object(name, [placement_entry(job=name, indices=indices)], gpus=len(indices))


def test_the_status_takes_the_reported_gpus_once_and_again_only_when_they_change() -> None:
    r, clock = world({"ns/train-a1-w0": [5, 2]}, running())
    r.loop.cycle()
    placed = r.job().status.placement[0]
    assert (placed.gpu_indices, placed.gpu_uuids, placed.devices) == (
        [2, 5],
        [U("n1", 2), U("n1", 5)],
        DeviceSource.REPORTED,
    )
    record = r.job().status.provenance
    assert record is not None
    assert [(g.index, g.uuid) for g in record.attempts[-1].workers[0].gpus] == [(2, U("n1", 2)), (5, U("n1", 5))]
    writes = status_writes(r)
    for _ in range(3):
        clock.now += 5
        r.loop.cycle()
    assert status_writes(r) == writes  # no write storm
    clock.now += 5
    r.cache.upsert(Kind.NODE, node_at({"ns/train-a1-w0": [5, 7]}, clock.now))
    r.loop.cycle()
    assert r.job().status.placement[0].gpu_indices == [5, 7]
    assert status_writes(r) == writes + 1


def test_on_a_reporting_node_no_uuid_is_recorded_for_a_planned_index() -> None:
    r, _ = world({}, running())  # the node reports, but not this pod (yet)
    r.loop.cycle()
    status = r.job().status
    assert status.placement[0].devices == DeviceSource.PLANNED
    record = status.provenance
    assert record is None or all(g.uuid is None for w in record.attempts[-1].workers for g in w.gpus)


def test_kwok_nodes_keep_the_planned_indices_and_their_map_uuids() -> None:
    r, _ = world(None, running())  # the UUID map only: a kwok node with the simulated agent
    r.loop.cycle()
    status = r.job().status
    assert (status.placement[0].gpu_indices, status.placement[0].devices) == ([0, 1], DeviceSource.PLANNED)
    assert status.provenance is not None
    assert [g.uuid for g in status.provenance.attempts[-1].workers[0].gpus] == [U("n1", 0), U("n1", 1)]
    info = {"node": "n1", "gpu": "0", "uuid": U("n1", 0), "namespace": "ns", "job": "train", "queue": "q"}
    assert r.metric("gpupool_gpu_allocation_info", **info, pool="gpu", worker="0") == 1.0


def test_the_allocation_metric_names_the_reported_uuid() -> None:
    r, _ = world({"ns/train-a1-w0": [6]}, running(indices=(0,)))
    r.loop.cycle()
    r.loop.cycle()
    info = {"node": "n1", "gpu": "6", "uuid": U("n1", 6), "namespace": "ns", "job": "train", "queue": "q"}
    assert r.metric("gpupool_gpu_allocation_info", **info, pool="gpu", worker="0") == 1.0


IDLE = {"threshold": "0.05", "after": "10m", "action": "Stop"}


@pytest.mark.parametrize(
    ("report", "phase"),
    [
        pytest.param({"ns/train-a1-w0": [3]}, JobPhase.RUNNING, id="holds GPU 3, busy: kept"),
        pytest.param({"ns/train-a1-w0": [0]}, JobPhase.FAILED, id="holds GPU 0, idle: stopped"),
        pytest.param({}, JobPhase.RUNNING, id="not reported yet: no verdict"),
        pytest.param(None, JobPhase.FAILED, id="kwok: planned GPU 0, idle (the fallback)"),
    ],
)
def test_idle_stop_judges_the_gpus_the_pod_really_holds(report: dict[str, list[int]] | None, phase: JobPhase) -> None:
    # gpupool planned GPU 0, which is idle; GPU 3 is busy.
    readings = {i: 0.0 for i in range(8)} | {3: 0.9}
    r, clock = world(report, running(indices=(0,)), idle=IDLE, readings=readings)
    r.loop.cycle()
    clock.now += 601
    r.cache.upsert(Kind.NODE, node_at(report, clock.now, readings))
    r.loop.cycle()
    assert r.job().status.phase == phase


def test_a_cpu_run_and_a_pending_job_are_untouched() -> None:
    cpu = running_gpujob_object("cpu", [placement_entry(job="cpu", indices=())], status={"device": "CPU"})
    pending = gpujob_object("later")
    r, _ = world({"ns/cpu-a1-w0": []}, cpu)
    r.cache.upsert(Kind.JOB, pending)
    r.loop.cycle()
    assert r.job("cpu").status.placement[0].devices == DeviceSource.PLANNED
