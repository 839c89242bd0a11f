"""How an admitted GPUJob's pods drive its phase: pure functions, no I/O.

Who calls this: the planner (`gpupool.cluster.writes.plan`), at the scheduling loop's lifecycle
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
- every failed worker was refused by its node's kubelet at admission (the pod never ran:
  `status.reason` UnexpectedAdmissionError, OutOf<resource>, ...; see `admission_rejection`)
  -> the gang is requeued without counting against `backoffLimit`, up to
  `ADMISSION_REJECTION_LIMIT` times in a row; after that each such rejection counts as a
  failed worker (below). The count resets once the whole gang runs;
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

from gpupool.api import ADMISSION_REJECTION_LIMIT, GPUJob, JobPhase

RawObject = Mapping[str, Any]


class Step(StrEnum):
    """What the loop should do for one holding job."""

    NOTHING = "Nothing"
    CREATE_PODS = "CreatePods"
    MARK_RUNNING = "MarkRunning"
    SUCCEED = "Succeed"
    RETRY = "Retry"
    INTERRUPT = "Interrupt"
    REQUEUE = "Requeue"
    FAIL = "Fail"


ADMISSION_HOLD_SECONDS = 10.0
"""After the n-th free rejection in a row the job waits ADMISSION_HOLD_SECONDS x 2^(n-1)
before it is placed again (10, 20, 40, 80, 160 s), so a node whose device plugin is still
registering is not handed the same pod several times a second."""

# The reasons the kubelet's admit handlers write into a refused pod's `status.reason`
# (pkg/kubelet/lifecycle/predicate.go and the other admit handlers: the topology, eviction,
# sysctl and node-shutdown managers); `OutOf<resource>` is matched by its prefix.
KUBELET_ADMISSION_REASONS = frozenset(
    {
        "UnexpectedAdmissionError",
        "UnknownReason",
        "UnexpectedPredicateFailureType",
        "InvalidNodeInfo",
        "PodOSSelectorNodeLabelDoesNotMatch",
        "PodOSNotSupported",
        "InitContainerRestartPolicyForbidden",
        "SupplementalGroupsPolicyNotSupported",
        "NodeAffinity",
        "NodeName",
        "NodePorts",
        "TaintToleration",
        "TopologyAffinityError",
        "SysctlForbidden",
        "NodeShutdown",
        "Evicted",
    }
)
OUT_OF_PREFIX = "OutOf"
# What the kubelet writes before its admit handler's message (`rejectPod`); it also catches
# a reason added by a newer kubelet.
REJECTED_MESSAGE_PREFIX = "Pod was rejected:"


@dataclass(frozen=True)
class AdmissionRejection:
    """A worker pod the kubelet of `node` refused at admission, with the kubelet's reason and message."""

    pod: str
    node: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class LifecycleStep:
    """The decision for one job, with the sentence the status and event will carry.
    `rejection` is set when the step was caused by a kubelet admission rejection."""

    step: Step
    reason: str = ""
    message: str = ""
    missing_workers: tuple[int, ...] = field(default=())
    rejection: AdmissionRejection | None = None


def pod_phase(pod: RawObject) -> str:
    """A pod's phase; a pod being deleted counts as Failed (its worker is going away)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Failed"
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _container_ran(pod: RawObject) -> bool:
    status = pod.get("status") or {}
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        state, last = container.get("state") or {}, container.get("lastState") or {}
        if state.get("running") or state.get("terminated") or last.get("terminated"):
            return True
    return False


def admission_rejection(pod: RawObject) -> AdmissionRejection | None:
    """The kubelet's admission rejection of a Failed pod, or None when the pod failed otherwise.

    A pod is refused at admission when it is Failed, none of its containers ever ran, and
    its `status.reason` is one the kubelet's admit handlers write (`KUBELET_ADMISSION_REASONS`
    or `OutOf<resource>`) or its message starts as the kubelet's rejection does."""
    status = pod.get("status") or {}
    if pod_phase(pod) != "Failed" or (pod.get("metadata") or {}).get("deletionTimestamp") or _container_ran(pod):
        return None
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    known = reason in KUBELET_ADMISSION_REASONS or (
        reason.startswith(OUT_OF_PREFIX) and len(reason) > len(OUT_OF_PREFIX)
    )
    if not known and not message.startswith(REJECTED_MESSAGE_PREFIX):
        return None
    return AdmissionRejection(
        pod=str((pod.get("metadata") or {}).get("name") or ""),
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
        reason=reason or "Rejected",
        message=message,
    )


def admission_hold_seconds(in_a_row: int) -> float:
    """How long a job waits before it is placed again after its `in_a_row`-th free rejection."""
    return ADMISSION_HOLD_SECONDS * 2 ** (max(1, in_a_row) - 1)


def _rejection_hint(reason: str) -> str:
    if reason == "UnexpectedAdmissionError" or (
        reason.startswith(OUT_OF_PREFIX) and reason not in ("OutOfcpu", "OutOfmemory", "OutOfpods")
    ):
        return "its device plugin may still be registering"
    if reason.startswith(OUT_OF_PREFIX):
        return "the node has less room than the API server showed"
    return "the node could not take it now"


def rejection_message(rejection: AdmissionRejection, in_a_row: int) -> str:
    """The status message (and event) of a gang requeued after its `in_a_row`-th free rejection."""
    node = rejection.node or "(unknown)"
    return (
        f"the kubelet on node {node} refused pod {rejection.pod} at admission ({rejection.reason}): "
        f"{_rejection_hint(rejection.reason)}; requeued, not counted as a failure (rejection {in_a_row} of "
        f"{ADMISSION_REJECTION_LIMIT} in a row), placed again after {admission_hold_seconds(in_a_row):g} s"
    )


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
    admission_rejections: int = 0,
) -> LifecycleStep:
    """Decide the next step of a job in phase Admitted or Running (see the module rules).

    `lost_nodes` are the nodes of the cluster that are gone or NotReady past the grace
    period; a job with a worker on one is interrupted. `admission_rejections` is how many
    kubelet admission rejections in a row the job had before this attempt."""
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
        rejections = [admission_rejection(pods_by_worker[w]) if w in pods_by_worker else None for w in failed]
        rejection = rejections[0] if all(rejections) else None
        in_a_row = admission_rejections + 1
        if rejection is not None and in_a_row <= ADMISSION_REJECTION_LIMIT:
            return LifecycleStep(
                Step.REQUEUE, "AdmissionRejected", rejection_message(rejection, in_a_row), rejection=rejection
            )
        if rejection is not None:
            what = (
                f"the kubelet on node {rejection.node} refused pod {rejection.pod} at admission ({rejection.reason}), "
                f"{in_a_row} rejections in a row (more than {ADMISSION_REJECTION_LIMIT} count as failures)"
            )
        elif pod is not None:
            what = f"worker {worker} (pod {pod['metadata']['name']}) failed: {_failure_detail(pod)}"
        else:
            what = f"worker {worker}'s pod disappeared"
        limit = job.spec.backoff_limit
        if failures < limit:
            return LifecycleStep(
                Step.RETRY,
                "Restarting",
                f"{what}; restarting the whole gang (failure {failures + 1} of backoffLimit {limit})",
                rejection=rejection,
            )
        return LifecycleStep(
            Step.FAIL, "BackoffLimitExceeded", f"{what}; no retries left (backoffLimit {limit})", rejection=rejection
        )

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
    from gpupool.cluster.writes.pods import LABEL_ATTEMPT, LABEL_WORKER

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
