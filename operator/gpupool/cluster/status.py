"""Status of GPUJobs, GPUQueues and GPUNodePools, built from the pydantic status models.

Who calls this: `gpupool.cluster.plan` builds each job's next status here when it turns a
lifecycle step or a core decision into a `JobChange`; `gpupool.controllers.loop` builds the
queues' and pools' status here at the report step. Nothing here writes: the applier
(`gpupool.cluster.apply`) sends what these functions return.

Conditions follow the Kubernetes conventions (metav1.Condition): one entry per type,
`lastTransitionTime` changes only when `status` flips, `observedGeneration` is the
generation the condition was computed from. Timestamps have second precision, as the API
server writes its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from gpupool.api import (
    Condition,
    ConditionStatus,
    FlavorUsage,
    GPUJob,
    GPUJobStatus,
    GPUNodePool,
    GPUNodePoolStatus,
    GPUQueue,
    GPUQueueStatus,
)
from gpupool.cluster.convert import HOLDING_PHASES
from gpupool.cluster.snapshot import PENDING_PHASES, ClusterSnapshot

MAX_MESSAGE = 32000
# Decayed usage drifts a little every cycle; rewriting a queue's status for each drift
# would cost one write per queue per cycle, so it is written only when it moved this much.
USAGE_WRITE_STEP_GPU_SECONDS = 60.0


def timestamp(now: float) -> datetime:
    """`now` (seconds since the epoch) as a UTC datetime with second precision."""
    return datetime.fromtimestamp(int(now), UTC)


def generation_of(metadata: Mapping[str, object]) -> int | None:
    """`metadata.generation` as an int, or None when absent."""
    generation = metadata.get("generation")
    return int(str(generation)) if generation is not None else None


def with_condition(
    conditions: Sequence[Condition],
    ctype: str,
    holds: bool,
    reason: str,
    message: str,
    now: float,
    generation: int | None,
) -> list[Condition]:
    """`conditions` with the one of type `ctype` set (added when missing).

    `lastTransitionTime` is kept when the condition's status does not change.
    """
    wanted = ConditionStatus.TRUE if holds else ConditionStatus.FALSE
    result: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != ctype:
            result.append(condition)
            continue
        found = True
        transition = condition.last_transition_time if condition.status == wanted else timestamp(now)
        result.append(
            condition.model_copy(
                update={
                    "status": wanted,
                    "reason": reason,
                    "message": message[:MAX_MESSAGE],
                    "last_transition_time": transition,
                    "observed_generation": generation if generation is not None else condition.observed_generation,
                }
            )
        )
    if not found:
        result.append(
            Condition(
                type=ctype,
                status=wanted,
                reason=reason,
                message=message[:MAX_MESSAGE],
                last_transition_time=timestamp(now),
                observed_generation=generation,
            )
        )
    return result


def job_status(
    job: GPUJob,
    now: float,
    conditions: Sequence[tuple[str, bool, str, str]] = (),
    **fields: object,
) -> GPUJobStatus:
    """The job's status with `fields` replaced and each `(type, holds, reason, message)` set."""
    status = job.status.model_copy(update=fields)
    generation = generation_of(job.metadata)
    current = list(status.conditions)
    for ctype, holds, reason, message in conditions:
        current = with_condition(current, ctype, holds, reason, message, now, generation)
    return status.model_copy(update={"conditions": current})


def has_condition(status: GPUJobStatus, ctype: str) -> bool:
    """True when the status carries a condition of type `ctype` (whatever its value)."""
    return any(c.type == ctype for c in status.conditions)


# --------------------------------------------------------------------------- queues and pools


def queue_status(
    queue: GPUQueue,
    snap: ClusterSnapshot,
    jobs: Mapping[str, GPUJob],
    decayed_usage_gpu_seconds: float,
) -> GPUQueueStatus:
    """A queue's usage per flavor, pending and admitted counts and decayed usage, from `jobs`
    (the jobs as they are after this cycle's writes); other fields (spend, conditions) kept."""
    name = str(queue.metadata.get("name"))
    mine = [j for j in jobs.values() if j.spec.queue == name]
    used: dict[str, float] = {}
    for job in mine:
        if job.status.phase not in HOLDING_PHASES:
            continue
        for worker in job.status.placement:
            node = snap.nodes.get(worker.node)
            flavor = snap.flavor_of(name, node.pool if node else worker.pool, worker.gpu_model)
            used[flavor] = used.get(flavor, 0.0) + len(worker.gpu_indices) * worker.gpu_share
    nominal = snap.nominal(name)
    return queue.status.model_copy(
        update={
            "pending_jobs": sum(1 for j in mine if j.status.phase in PENDING_PHASES),
            "admitted_jobs": sum(1 for j in mine if j.status.phase in HOLDING_PHASES),
            "usage": [
                FlavorUsage(
                    flavor=flavor,
                    nominal=nominal.get(flavor, 0),
                    used=round(used.get(flavor, 0.0), 3),
                    borrowed=round(max(0.0, used.get(flavor, 0.0) - nominal.get(flavor, 0)), 3),
                )
                for flavor in sorted(set(nominal) | set(used))
            ],
            "decayed_usage_gpu_seconds": round(decayed_usage_gpu_seconds, 3),
        }
    )


def pool_status(pool: GPUNodePool, snap: ClusterSnapshot, jobs: Mapping[str, GPUJob]) -> GPUNodePoolStatus:
    """A pool's ready nodes, GPUs on them and GPUs held by admitted jobs (shares as fractions)."""
    name = str(pool.metadata.get("name"))
    nodes = [n for n in snap.nodes.values() if n.pool == name]
    names = {n.name for n in nodes}
    allocated = sum(
        len(w.gpu_indices) * w.gpu_share
        for job in jobs.values()
        if job.status.phase in HOLDING_PHASES
        for w in job.status.placement
        if w.node in names
    )
    return pool.status.model_copy(
        update={
            "nodes_ready": sum(1 for n in nodes if n.ready),
            "nodes_provisioning": snap.scaling.in_flight_by_pool.get(name, 0),
            "gpus_total": sum(n.gpus for n in nodes if n.ready),
            "gpus_allocated": round(allocated, 3),
        }
    )


def queue_status_changed(old: GPUQueueStatus, new: GPUQueueStatus) -> bool:
    """True when the queue's status is worth a write (decayed usage only past a step)."""
    drift = abs(old.decayed_usage_gpu_seconds - new.decayed_usage_gpu_seconds)
    same_rest = old.model_copy(update={"decayed_usage_gpu_seconds": 0.0}) == new.model_copy(
        update={"decayed_usage_gpu_seconds": 0.0}
    )
    return not same_rest or drift >= USAGE_WRITE_STEP_GPU_SECONDS
