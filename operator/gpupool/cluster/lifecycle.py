"""How an admitted GPUJob's pods drive its phase: pure functions, no I/O.

Who calls this: the planner (`gpupool.cluster.plan`), at the scheduling loop's lifecycle
step, once per cycle for each job that holds GPUs (phase Admitted or Running). Given the
job, the pods of its current attempt and the clock, `next_step` says what should happen
next; the planner turns it into a status, events and pod writes, which the applier makes.
Keeping the rules here lets unit tests read as the lifecycle's specification.

Rules:
- all workers' pods Running -> the job is Running (startedAt set once per attempt);
- all Succeeded -> Succeeded;
- a worker's node is lost (deleted, as a spot reclaim does, or NotReady past a grace
  period) -> the gang is interrupted: queued again at once, and the interruption is not
  counted against `backoffLimit` (the job did nothing wrong);
- any worker Failed, or a pod of a running job vanished -> the whole gang stops; it is
  queued again while failures stay within `backoffLimit`, else the job Failed;
- running longer than `maxRuntime` -> Failed (no retry: the limit is the user's);
- a worker pod not created yet (a new admission, or a crash between two writes) -> create it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gpupool.api import GPUJob, JobPhase

RawObject = Mapping[str, Any]


class Step(StrEnum):
    """What the loop should do for one holding job."""

    NOTHING = "Nothing"
    CREATE_PODS = "CreatePods"
    MARK_RUNNING = "MarkRunning"
    SUCCEED = "Succeed"
    RETRY = "Retry"
    INTERRUPT = "Interrupt"
    FAIL = "Fail"


@dataclass(frozen=True)
class LifecycleStep:
    """The decision for one job, with the sentence the status and event will carry."""

    step: Step
    reason: str = ""
    message: str = ""
    missing_workers: tuple[int, ...] = field(default=())


def pod_phase(pod: RawObject) -> str:
    """A pod's phase; a pod being deleted counts as Failed (its worker is going away)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Failed"
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _failure_detail(pod: RawObject) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return f"{terminated.get('reason') or 'Error'}, exit code {terminated.get('exitCode')}"
    return str((pod.get("status") or {}).get("reason") or "failed")


def next_step(
    job: GPUJob,
    pods_by_worker: Mapping[int, RawObject],
    now: float,
    *,
    started_at: float | None,
    max_runtime_seconds: float | None,
    failures: int,
    lost_nodes: Collection[str] = (),
) -> LifecycleStep:
    """Decide the next step of a job in phase Admitted or Running (see the module rules).

    `lost_nodes` are the nodes of the cluster that are gone or NotReady past the grace
    period; a job with a worker on one is interrupted."""
    workers = job.spec.workers
    phase = job.status.phase
    lost = sorted({w.node for w in job.status.placement if w.node in lost_nodes})
    if lost:
        return LifecycleStep(
            Step.INTERRUPT,
            "Interrupted",
            f"node {', '.join(lost)} was lost (a spot interruption or a node failure); the gang is queued "
            "again, and this does not count against backoffLimit",
        )
    if max_runtime_seconds is not None and started_at is not None and now - started_at > max_runtime_seconds:
        return LifecycleStep(
            Step.FAIL,
            "MaxRuntimeExceeded",
            f"stopped after running longer than spec.maxRuntime ({job.spec.max_runtime}); "
            "raise maxRuntime if the job needs more time",
        )

    missing = tuple(w for w in range(workers) if w not in pods_by_worker)
    failed = sorted(w for w, pod in pods_by_worker.items() if pod_phase(pod) == "Failed")
    if phase == JobPhase.RUNNING and missing:
        failed = sorted({*failed, *missing})
    if failed:
        worker = failed[0]
        pod = pods_by_worker.get(worker)
        what = (
            f"worker {worker} (pod {pod['metadata']['name']}) failed: {_failure_detail(pod)}"
            if pod is not None
            else f"worker {worker}'s pod disappeared"
        )
        limit = job.spec.backoff_limit
        if failures < limit:
            return LifecycleStep(
                Step.RETRY,
                "Restarting",
                f"{what}; restarting the whole gang (failure {failures + 1} of backoffLimit {limit})",
            )
        return LifecycleStep(Step.FAIL, "BackoffLimitExceeded", f"{what}; no retries left (backoffLimit {limit})")

    if missing:
        return LifecycleStep(Step.CREATE_PODS, missing_workers=missing)

    phases = [pod_phase(pods_by_worker[w]) for w in range(workers)]
    if all(p == "Succeeded" for p in phases):
        return LifecycleStep(Step.SUCCEED, "Succeeded", f"all {workers} worker(s) succeeded")
    if phase == JobPhase.ADMITTED and all(p in ("Running", "Succeeded") for p in phases):
        return LifecycleStep(Step.MARK_RUNNING, "Started", f"all {workers} worker(s) running")
    return LifecycleStep(Step.NOTHING)


def pods_of_attempt(pods: Sequence[RawObject], attempt: int) -> dict[int, RawObject]:
    """The pods of one attempt keyed by worker index (from the pods' gpupool labels)."""
    from gpupool.cluster.pods import LABEL_ATTEMPT, LABEL_WORKER

    result: dict[int, RawObject] = {}
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get(LABEL_ATTEMPT) != str(attempt):
            continue
        try:
            result[int(labels.get(LABEL_WORKER, ""))] = pod
        except ValueError:
            continue
    return result
