"""A worker pod the kubelet refuses at admission, through whole loop cycles: the gang is
requeued without a failure, held back before it is placed again, and counted as a failure
only after `ADMISSION_REJECTION_LIMIT` rejections in a row (see gpupool.cluster.writes.lifecycle)."""

from __future__ import annotations

from typing import Any

import pytest

from builders.api import gpujob_object, gpuqueue_object, node_object, worker_pod_object
from builders.loop import RESTART_WRITES, Rig, rig
from gpupool.api import ADMISSION_REJECTION_LIMIT, AttemptOutcome, GPUJobStatus, JobPhase
from gpupool.cluster.state.cache import Kind

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
PLACED = [{"worker": 0, "pod": "train-a1-w0", "node": "n1", "gpuModel": "A100", "gpuIndices": [0]}]
ADMITTED = {"attempts": 1, "placement": PLACED, "admittedAt": "2026-01-01T00:00:00Z"}
KUBELET_MESSAGE = "Pod was rejected: Allocate failed due to no healthy devices present"


class Clock:
    """The loop's time, which a test moves on."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def refused(attempt: int = 1, reason: str = "OutOfnvidia.com/gpu") -> dict[str, Any]:
    """Worker 0 of `attempt` as the kubelet on n1 leaves it after refusing it at admission."""
    return worker_pod_object(attempt=attempt, phase="Failed", reason=reason, message=KUBELET_MESSAGE)


def world(status: dict[str, Any], *pods: dict[str, Any], clock: Clock, **spec: Any) -> Rig:
    job = gpujob_object(phase="Admitted", status=status, **spec)
    return rig([node_object("n1"), gpuqueue_object("q"), job, *pods], clock=clock)


def status_of(r: Rig) -> GPUJobStatus:
    entry = r.cache.get(Kind.JOB, "ns/train")
    assert entry is not None
    return entry.parsed.api.status  # type: ignore[no-any-return]


def kubelet_reports(r: Rig, attempt: int, status: dict[str, Any]) -> None:
    """The kubelet writes `status` on the pod gpupool created for `attempt` (as the watch would report it)."""
    created = r.cache.get(Kind.POD, f"ns/train-a{attempt}-w0")
    assert created is not None
    pod = dict(created.raw)
    pod["metadata"] = {**pod["metadata"], "resourceVersion": str(created.resource_version + 1000)}
    pod["status"] = status
    r.cache.upsert(Kind.POD, pod)


def test_a_refused_gang_is_requeued_without_a_failure_with_the_reason_an_event_and_its_pods_gone() -> None:
    clock = Clock()
    r = world(ADMITTED, refused(), clock=clock)
    r.loop.cycle()
    assert r.job_calls() == [
        ("patch_job_status", "Queued"),
        ("emit_event", "AdmissionRejected"),
        ("delete_pod", ""),
    ]  # not placed again in the same cycle: it is held back
    status = status_of(r)
    assert (status.phase, status.failures, status.admission_rejections) == (JobPhase.QUEUED, 0, 1)
    last = status.last_admission_rejection
    assert last is not None
    assert (last.pod, last.node, last.reason, last.message) == (
        "train-a1-w0",
        "n1",
        "OutOfnvidia.com/gpu",
        KUBELET_MESSAGE,
    )
    assert status.message is not None and status.message.startswith(
        "the kubelet on node n1 refused pod train-a1-w0 at admission (OutOfnvidia.com/gpu): its device plugin may "
        "still be registering; requeued, not counted as a failure"
    )
    admitted = next(c for c in status.conditions if c.type == "Admitted")
    assert (admitted.status.value, admitted.reason) == ("False", "AdmissionRejected")
    assert not any(c.type == "Preempted" for c in status.conditions)
    assert status.provenance is not None
    assert status.provenance.attempts[-1].outcome == AttemptOutcome.ADMISSION_REJECTED
    target, reason, message = r.writer.events[-1]
    assert (target, reason, message) == ("GPUJob/ns/train", "AdmissionRejected", status.message)
    assert r.metric("gpupool_job_restarts_total", queue="q", reason="admission_rejected") == 1
    assert r.metric("gpupool_job_restarts_total", queue="q", reason="worker_failed") == 0


def test_the_hold_writes_nothing_then_the_gang_is_placed_again_and_running_resets_the_count() -> None:
    clock = Clock()
    r = world(ADMITTED, refused(), clock=clock)
    r.loop.cycle()
    calls = len(r.job_calls())
    clock.now = NOW + 9
    r.loop.cycle()
    assert len(r.job_calls()) == calls, "a held job is written to"
    assert r.metric("gpupool_queue_pending_jobs", queue="q", reason="capacity") == 1
    clock.now = NOW + 10
    r.loop.cycle()
    assert r.job_calls()[calls:] == [
        ("patch_job_status", "Admitted"),
        ("emit_event", "Admitted"),
        ("create_pod", "n1"),
    ]
    assert status_of(r).admission_rejections == 1  # until the gang runs
    kubelet_reports(r, 2, {"phase": "Running"})
    r.loop.cycle()
    status = status_of(r)
    assert status.phase is JobPhase.RUNNING
    assert (status.admission_rejections, status.last_admission_rejection, status.failures) == (0, None, 0)


@pytest.mark.parametrize(
    ("in_a_row", "held_for"),
    [(1, 20), (3, 80), (4, 160)],
    ids=["second-rejection-20s", "fourth-rejection-80s", "fifth-rejection-160s"],
)
def test_each_rejection_in_a_row_doubles_the_hold(in_a_row: int, held_for: float) -> None:
    clock = Clock()
    r = world({**ADMITTED, "admissionRejections": in_a_row}, refused(), clock=clock)
    r.loop.cycle()
    assert status_of(r).admission_rejections == in_a_row + 1
    assert f"placed again after {held_for:g} s" in (status_of(r).message or "")
    clock.now = NOW + held_for - 1
    r.loop.cycle()
    assert status_of(r).phase is JobPhase.QUEUED
    clock.now = NOW + held_for
    r.loop.cycle()
    assert status_of(r).phase is JobPhase.ADMITTED


def test_past_the_limit_a_rejection_counts_against_backoff_limit_and_is_not_held() -> None:
    clock = Clock()
    r = world({**ADMITTED, "admissionRejections": ADMISSION_REJECTION_LIMIT}, refused(), clock=clock, backoffLimit=2)
    r.loop.cycle()
    assert r.job_calls() == RESTART_WRITES  # as after any counted failure
    status = status_of(r)
    assert (status.failures, status.admission_rejections) == (1, ADMISSION_REJECTION_LIMIT + 1)
    assert r.metric("gpupool_job_restarts_total", queue="q", reason="worker_failed") == 1


def test_the_same_node_refusing_every_time_ends_in_failed_after_the_limit_and_backoff() -> None:
    """Five free requeues, each held twice as long, then backoffLimit counted ones, then Failed."""
    clock = Clock()
    r = world(ADMITTED, refused(), clock=clock, backoffLimit=1)
    for _ in range(200):
        r.loop.cycle()
        status = status_of(r)
        if status.phase is JobPhase.FAILED:
            break
        if status.phase is JobPhase.ADMITTED:
            kubelet_reports(r, status.attempts, refused(status.attempts)["status"])
        clock.now += 5
    else:
        pytest.fail("the job never failed")
    assert status.admission_rejections == ADMISSION_REJECTION_LIMIT + 2
    assert status.failures == 1 and status.attempts == ADMISSION_REJECTION_LIMIT + 2
    assert "no retries left (backoffLimit 1)" in (status.message or "")
    assert clock.now - NOW >= 10 + 20 + 40 + 80 + 160, "requeued faster than the holds allow"
