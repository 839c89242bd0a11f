"""A running job whose GPUs the node agent reports idle: `idleSince`, the GPUIdle
condition, its event, and the queue's `idle.action`, over the loop rig."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from builders.api import gpujob_object, gpunodepool_object, gpuqueue_object, namespace_object, node_object
from builders.loop import Rig, rig
from gpupool.annotations.summary import ANNOTATION, UtilizationSummary, format_summary
from gpupool.api import GPUJob, JobPhase
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.writes.pods import LABEL_ATTEMPT, LABEL_JOB, LABEL_WORKER

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def node_reporting(utilization: float, at: float) -> dict[str, Any]:
    """Node n1 whose agent last published `utilization` for GPU 0 at `at` (a full window)."""
    node = node_object("n1", model="A100", labels={"gpupool.io/pool": "gpu"})
    summary = UtilizationSummary(300, 300, datetime.fromtimestamp(at, UTC), {0: utilization})
    node["metadata"]["annotations"] = {ANNOTATION: format_summary(summary)}
    node["metadata"]["resourceVersion"] = str(int(at))  # newer each time it is republished
    return node


def running_job() -> list[dict[str, Any]]:
    placement = [
        {"worker": 0, "pod": "train-a1-w0", "node": "n1", "pool": "gpu", "gpuModel": "A100", "gpuIndices": [0]}
    ]
    started = datetime.fromtimestamp(START - 60, UTC).isoformat()
    job = gpujob_object(
        "train",
        phase="Running",
        status={"attempts": 1, "placement": placement, "startedAt": started, "admittedAt": started},
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "train-a1-w0",
            "namespace": "ns",
            "resourceVersion": "1",
            "labels": {LABEL_JOB: "train", LABEL_ATTEMPT: "1", LABEL_WORKER: "0"},
        },
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running"},
    }
    return [job, pod]


def world(action: str) -> tuple[Rig, Clock]:
    clock = Clock()
    queue = gpuqueue_object("q", idle={"threshold": 0.05, "after": "10m", "action": action})
    objects = [namespace_object("ns"), gpunodepool_object("gpu"), queue, node_reporting(0.01, START), *running_job()]
    return rig(objects, clock=clock), clock


def job(r: Rig) -> GPUJob:
    entry = r.cache.get(Kind.JOB, "ns/train")
    assert entry is not None
    return entry.parsed.api  # type: ignore[no-any-return]


def advance(r: Rig, clock: Clock, seconds: float, utilization: float) -> None:
    clock.now += seconds
    r.cache.upsert(Kind.NODE, node_reporting(utilization, clock.now))
    r.loop.cycle()


def idle_condition(r: Rig) -> str | None:
    found = [c.status.value for c in job(r).status.conditions if c.type == "GPUIdle"]
    return found[0] if found else None


def test_a_job_below_the_threshold_for_after_is_flagged_once_and_cleared_when_busy() -> None:
    r, clock = world("Warn")
    r.loop.cycle()
    assert job(r).status.idle_since is not None and idle_condition(r) is None
    advance(r, clock, 300, 0.02)
    assert idle_condition(r) is None
    advance(r, clock, 301, 0.02)
    assert idle_condition(r) == "True" and job(r).status.phase == JobPhase.RUNNING
    advance(r, clock, 30, 0.01)
    events = [c.detail for c in r.writer.calls if c.verb == "emit_event" and c.target.endswith("/ns/train")]
    assert events.count("GPUIdle") == 1
    advance(r, clock, 30, 0.7)
    assert idle_condition(r) == "False" and job(r).status.idle_since is None


def test_a_busy_reading_resets_the_clock() -> None:
    r, clock = world("Warn")
    r.loop.cycle()
    advance(r, clock, 500, 0.5)
    advance(r, clock, 200, 0.01)
    assert idle_condition(r) is None


@pytest.mark.parametrize(("action", "phase"), [("Warn", JobPhase.RUNNING), ("Stop", JobPhase.FAILED)])
def test_the_queue_action_decides_what_happens(action: str, phase: JobPhase) -> None:
    r, clock = world(action)
    r.loop.cycle()
    advance(r, clock, 601, 0.0)
    assert job(r).status.phase == phase
    if phase == JobPhase.FAILED:
        assert "GPUIdle" in {c.reason for c in job(r).status.conditions}
