"""Sentences that tell a person why a job waits and what would change that.

Who calls this: `gpupool.core.schedule` builds every `Waiting.message` and every
`Preemption.message` here, so the wording lives in one place and reads the same in events,
conditions and `kubectl describe`.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpupool.core.budget import BudgetStanding
from gpupool.core.models import MILLI_PER_GPU, GpuNode, Job


def gpus(milli: int | float) -> str:
    """`8000` → `8`, `500` → `0.5`, `1250` → `1.25`."""
    value = milli / MILLI_PER_GPU
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def describe_request(job: Job) -> str:
    """`8 GPUs (H100)`, `2 x 4 GPUs (A100, H100)`, `0.5 GPU` ..."""
    per_worker = job.shape.gpu_milli
    unit = "GPU" if per_worker == MILLI_PER_GPU or 0 < per_worker < MILLI_PER_GPU else "GPUs"
    head = f"{gpus(per_worker)} {unit}"
    if job.workers > 1:
        head = f"{job.workers} x {head}"
    if job.gpu_models:
        head += f" ({', '.join(job.gpu_models)})"
    return head


def queue_not_found(job: Job) -> str:
    """The job names a queue that does not exist."""
    return f"queue {job.queue} does not exist: create the GPUQueue or set spec.queue to an existing one"


def budget_exhausted(job: Job, budget: BudgetStanding | None = None) -> str:
    """The queue's budget is spent: how much of which cap, and when the period resets."""
    if budget is None:
        return (
            f"queue {job.queue} has spent its budget: raise the queue's budget or wait until the budget period resets"
        )
    return (
        f"queue {job.queue} has spent {budget.summary()}: no new job is admitted until the budget resets at "
        f"{budget.resets_at}; raise spec.budget of GPUQueue {job.queue} to admit jobs sooner"
    )


def cloud_closed_by_budget(message: str, job: Job, budget: BudgetStanding) -> str:
    """`message`, plus: cloud nodes are closed to the job while its CloudOnly budget is spent."""
    return (
        f"{message}; cloud nodes are closed to queue {job.queue} while its CloudOnly budget is spent "
        f"({budget.summary()}, resets at {budget.resets_at})"
    )


def priority_above_max(job: Job, max_priority: int) -> str:
    """The job asks for more priority than its queue allows."""
    return (
        f"priority {job.priority} is above queue {job.queue}'s maxPriority {max_priority}: "
        f"lower the job's priority to {max_priority} or less, or raise the queue's maxPriority"
    )


def blocked_by_head(job: Job, head_key: str) -> str:
    """A StrictFIFO queue waits for its head."""
    return (
        f"queue {job.queue} is StrictFIFO and its head {head_key} is still waiting; "
        "use BestEffortFIFO to let smaller jobs start around it"
    )


def gpu_amount(milli: int | float) -> str:
    """`1000` → `1 GPU`, `4000` → `4 GPUs`, `500` → `0.5 GPU`."""
    return f"{gpus(milli)} GPU" if 0 < milli <= MILLI_PER_GPU else f"{gpus(milli)} GPUs"


def quota_exhausted(job: Job, flavor: str, used_milli: int, nominal_milli: int, headroom_milli: int) -> str:
    """The queue's quota (with what it may borrow) has no room for the whole job."""
    return (
        f"waiting for {describe_request(job)} in queue {job.queue}: {gpus(used_milli)} of "
        f"{gpu_amount(nominal_milli)} of its {flavor} quota in use, {gpus(headroom_milli)} more "
        "available counting what it may borrow; it starts when the queue's jobs finish or its "
        "quota grows"
    )


def no_quota_for_nodes(job: Job) -> str:
    """Nodes could host the job, but its queue has no quota entry for any of them."""
    return (
        f"waiting for {describe_request(job)} in queue {job.queue}: the queue has no quota for "
        "any node this job may use; add a quota entry for that GPU model or pool"
    )


def no_fitting_node(job: Job, policy_note: str) -> str:
    """No node the job may use could ever host it, even empty."""
    return (
        f"no ready node this job may use could host {describe_request(job)} with its cpu and "
        "memory even when empty "
        f"({policy_note}); change the request, the GPU models, the placement policy or "
        "tolerations, or add such nodes"
    )


def insufficient_capacity(
    job: Job, flavor: str, used_milli: int, nominal_milli: int, free_milli: int, held_by_others: str = ""
) -> str:
    """The quota allows the job but the cluster has no room for it right now."""
    return (
        f"waiting for {describe_request(job)} in queue {job.queue}: {gpus(used_milli)} of "
        f"{gpu_amount(nominal_milli)} of its {flavor} quota in use, {gpu_amount(free_milli)} free "
        f"on the nodes it may use but not enough in one placement{held_by_others}; it starts when "
        "running jobs finish or nodes are added"
    )


def held_by_other_pods(nodes: Sequence[GpuNode], most: int = 3) -> str:
    """`, pods gpupool does not manage hold 8 GPUs on n0, most CPU, memory or pod slots of n1`
    (or nothing): GPUs such pods hold, and CPU, memory or pod slots where they hold at least
    half of a node's."""
    parts = [f"{n.reserved_gpus} GPU{'s' if n.reserved_gpus > 1 else ''} on {n.name}" for n in nodes if n.reserved_gpus]
    parts += [
        f"most CPU, memory or pod slots of {n.name}"
        for n in nodes
        if not n.reserved_gpus
        and (
            2 * n.reserved_cpu_milli >= n.cpu_milli > 0
            or 2 * n.reserved_memory_bytes >= n.memory_bytes > 0
            or 2 * n.reserved_pods >= n.max_pods > 0
        )
    ]
    if not parts:
        return ""
    more = f" and {len(parts) - most} more node(s)" if len(parts) > most else ""
    return f", pods gpupool does not manage hold {', '.join(parts[:most])}{more}"


def behind_higher_priority(job: Job, reserved_for: Sequence[str]) -> str:
    """The job would fit, but only on capacity held for jobs ahead of it."""
    names = ", ".join(reserved_for[:3]) + (" ..." if len(reserved_for) > 3 else "")
    return (
        f"waiting behind {len(reserved_for)} job(s) ahead of it that hold capacity it could "
        f"use ({names}); it starts when they do or when more capacity frees up"
    )


def waiting_for_preemption(job: Job, victims: Sequence[str]) -> str:
    """Victims are being evicted to make room for the job."""
    return f"preempting {len(victims)} job(s) to make room: {', '.join(victims)}"


def preempted(victim: Job, preemptor: Job, why: str) -> str:
    """The event text a preempted job carries."""
    return (
        f"preempted by {preemptor.key} (queue {preemptor.queue}, priority {preemptor.priority}) "
        f"to {why}; {victim.key} returns to queue {victim.queue}"
    )


def waiting_for_nodes(job: Job, pool: str, nodes: int, requested_at: float | None, now: float) -> str:
    """`waiting for 2 new nodes in pool cloud-h100 (requested 40s ago)`."""
    when = "requested now" if requested_at is None else f"requested {max(0, round(now - requested_at))}s ago"
    plural = "s" if nodes != 1 else ""
    return f"waiting for {nodes} new node{plural} in pool {pool} ({when}) for {describe_request(job)}"


def over_budget_for_new_nodes(message: str, projected: float, left: float) -> str:
    """`message`, plus why no node is requested: the projected cost exceeds the budget left."""
    return (
        f"{message}; no new node is requested: the job's projected cost {projected:.2f} exceeds the "
        f"{max(0.0, left):.2f} its queue may still spend this period"
    )


def _span(seconds: float) -> str:
    """`45s`, `5m`, `1h30m` (whole seconds)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


def on_cpu_preferred(node: str, why: str) -> str:
    """Why a Preferred job runs on a CPU-only node: `why` is the comparison of its estimates."""
    return f"runs on CPU node {node}: cpuFallback Preferred and {why}"


def on_cpu_after_wait(job: Job, node: str, now: float) -> str:
    """Why a job runs on a CPU-only node after waiting for a GPU past its cpuFallbackAfter."""
    return (
        f"runs on CPU node {node}: waited {_span(now - job.submitted_at)} for a GPU, longer than its "
        f"cpuFallbackAfter of {_span(job.cpu_fallback_after_seconds)} (cpuFallback {job.cpu_fallback})"
    )
