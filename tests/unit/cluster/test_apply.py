"""The applier over the recording writer: each kind of change makes exactly its writes, in
order, and a failed write leaves the cache consistent and is retried by the next cycle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from builders.api import cache_of, gpujob_object, gpuqueue_object, node_object, worker_pod_object
from builders.loop import RESTART_WRITES, Rig
from builders.loop import rig as make_rig
from gpupool.api import JobPhase
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.writes.apply import Applier
from gpupool.cluster.writes.ports import Conflict, Forbidden, Transient, WriteError
from gpupool.cluster.writes.recording import RecordingWriter
from gpupool.controllers.loop import SchedulingLoop
from gpupool.settings import OperatorSettings

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
PLACED = [{"worker": 0, "pod": "train-a1-w0", "node": "n1", "gpuModel": "A100", "gpuIndices": [0]}]
RUNNING_SINCE = {"startedAt": "2026-01-01T00:00:00Z", "admittedAt": "2026-01-01T00:00:00Z"}


def rig(objects: Iterable[dict[str, Any]], *, clock: float = NOW) -> Rig:
    return make_rig(objects, clock=clock)


def cluster(*jobs: dict[str, Any], pods: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    return [node_object("n1"), gpuqueue_object("q"), *jobs, *pods]


# Each row: the cluster before one cycle, and the writes that cycle makes about job "train".
CASES = {
    "new job is queued and admitted by one status write, then its pod": (
        cluster(gpujob_object()),
        [
            ("patch_job_status", "Admitted"),
            ("emit_event", "Queued"),
            ("emit_event", "Admitted"),
            ("create_pod", "n1"),
        ],
    ),
    "new job that cannot fit is queued with its reason": (
        cluster(gpujob_object(gpus=16)),
        [("patch_job_status", "Queued"), ("emit_event", "Queued")],
    ),
    "admitted job whose pods run is marked running": (
        cluster(
            gpujob_object(phase="Admitted", status={"attempts": 1, "placement": PLACED}),
            pods=[worker_pod_object()],
        ),
        [("patch_job_status", "Running"), ("emit_event", "Started")],
    ),
    "admitted job missing its pod gets it created": (
        cluster(gpujob_object(phase="Admitted", status={"attempts": 1, "placement": PLACED})),
        [("create_pod", "n1")],
    ),
    "all workers succeeded: finished": (
        cluster(
            gpujob_object(phase="Running", status={"attempts": 1, "placement": PLACED, **RUNNING_SINCE}),
            pods=[worker_pod_object(phase="Succeeded")],
        ),
        [("patch_job_status", "Succeeded"), ("emit_event", "Finished")],
    ),
    "worker failed with no retries left: failed, unfinished pods deleted": (
        cluster(
            gpujob_object(
                phase="Running",
                workers=2,
                backoffLimit=0,
                status={
                    "attempts": 1,
                    "placement": [*PLACED, {**PLACED[0], "worker": 1, "pod": "train-a1-w1", "gpuIndices": [1]}],
                    **RUNNING_SINCE,
                },
            ),
            pods=[worker_pod_object(phase="Failed"), worker_pod_object(worker=1)],
        ),
        [("patch_job_status", "Failed"), ("emit_event", "Failed"), ("delete_pod", "")],
    ),
    "worker failed within backoffLimit: gang restarts and is admitted again": (
        cluster(
            gpujob_object(
                phase="Running", backoffLimit=1, status={"attempts": 1, "placement": PLACED, **RUNNING_SINCE}
            ),
            pods=[worker_pod_object(phase="Failed")],
        ),
        RESTART_WRITES,
    ),
    "job that cannot fit: its reason, status only": (
        cluster(gpujob_object(gpus=16, phase="Queued", status={"message": "queued in q"})),
        [("patch_job_status", "Queued")],
    ),
    "pod of a deleted job is stray": (
        cluster(pods=[worker_pod_object()]),
        [("delete_pod", "")],
    ),
}


@pytest.mark.parametrize(("objects", "expected"), list(CASES.values()), ids=list(CASES))
def test_each_change_makes_exactly_its_writes_in_order(
    objects: list[dict[str, Any]], expected: list[tuple[str, str]]
) -> None:
    r = rig(objects)
    r.loop.cycle()
    assert r.job_calls() == expected


def test_preemption_writes_status_event_then_deletes_the_victims_pods() -> None:
    r = rig(preemption_cluster())
    r.loop.cycle()
    assert r.job_calls("low") == [("patch_job_status", "Preempted"), ("emit_event", "Preempted"), ("delete_pod", "")]
    assert r.phase("low") is JobPhase.PREEMPTED
    assert r.cache.get(Kind.POD, "ns/low-a1-w0") is None


def test_a_waiting_reason_is_written_once() -> None:
    r = rig(cluster(gpujob_object(gpus=16, phase="Queued", status={"message": "queued in q"})))
    r.loop.cycle()
    r.loop.cycle()
    assert r.job_calls() == [("patch_job_status", "Queued")]


# --------------------------------------------------------------------------- injected errors

ADMISSION_WRITES = ["patch_job_status", "emit_event", "create_pod"]


@pytest.mark.parametrize("error", [Transient("503"), Conflict("409"), Forbidden("403")], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("verb", ADMISSION_WRITES)
def test_a_failed_admission_write_is_retried_next_cycle(verb: str, error: WriteError) -> None:
    r = rig(cluster(gpujob_object(phase="Queued", status={"message": "queued in q"})))
    r.writer.fail_next(verb, error)
    r.loop.cycle()
    if verb == "patch_job_status":
        # Nothing after the failed status write: the cache still holds the Queued job.
        assert r.job_calls() == [("patch_job_status", "Admitted")]
        assert r.phase() is JobPhase.QUEUED
    else:
        assert r.phase() is JobPhase.ADMITTED
    r.loop.cycle()
    assert r.phase() is JobPhase.ADMITTED
    assert "pods/ns/train-a1-w0" in r.writer.objects
    assert [c.target for c in r.writer.calls if c.verb == "create_pod"].count("pods/ns/train-a1-w0") == (
        2 if verb == "create_pod" else 1
    )


def test_a_failed_pod_delete_is_retried_as_a_stray_pod() -> None:
    r = rig(preemption_cluster())
    r.writer.fail_next("delete_pod", Transient("timeout"))
    r.loop.cycle()
    assert r.cache.get(Kind.POD, "ns/low-a1-w0") is not None
    r.loop.cycle()
    assert [c.verb for c in r.writer.calls if c.target == "pods/ns/low-a1-w0"] == ["delete_pod", "delete_pod"]
    assert r.cache.get(Kind.POD, "ns/low-a1-w0") is None


def test_a_job_deleted_before_its_status_write_leaves_the_cache() -> None:
    r = rig(cluster(gpujob_object(phase="Queued", status={"message": "queued in q"})))
    del r.writer.objects["gpujobs/ns/train"]
    r.loop.cycle()
    assert r.cache.get(Kind.JOB, "ns/train") is None
    assert not any(c.verb == "create_pod" for c in r.writer.calls)


def preemption_cluster() -> list[dict[str, Any]]:
    """Job "low" runs on all 8 GPUs of n1; "high", of higher priority in the same queue, waits."""
    placed = [{"worker": 0, "pod": "low-a1-w0", "node": "n1", "gpuModel": "A100", "gpuIndices": list(range(8))}]
    # The record the admission opened, as its pod (no containers) and n1 (no UUIDs) still show it.
    worker = {**placed[0], "gpus": [{"index": i} for i in range(8)]}
    del worker["gpuIndices"]
    record = {"attempt": 1, **RUNNING_SINCE, "workers": [worker]}
    low = gpujob_object(
        "low",
        gpus=8,
        priority=0,
        phase="Running",
        status={"attempts": 1, "placement": placed, **RUNNING_SINCE, "provenance": {"attempts": [record]}},
    )
    high = gpujob_object("high", gpus=8, priority=10, phase="Queued", status={"message": "queued in q"})
    return cluster(low, high, pods=[worker_pod_object("low")])


def test_queued_events_are_all_posted_by_close() -> None:
    objects = cluster(*[gpujob_object(f"j{i}") for i in range(8)])
    cache = cache_of(objects)
    writer = RecordingWriter()
    for obj in objects:
        if obj["kind"] == "GPUJob":
            writer.seed("gpujobs", obj)
    applier = Applier(writer, cache, concurrency=4, event_queue=100)
    loop = SchedulingLoop(cache, applier, OperatorSettings(), clock=lambda: NOW)
    loop.cycle()
    applier.close()
    events = sorted(c.target for c in writer.calls if c.verb == "emit_event")
    assert events == sorted(f"GPUJob/ns/j{i}" for i in range(8) for _ in ("Queued", "Admitted"))
