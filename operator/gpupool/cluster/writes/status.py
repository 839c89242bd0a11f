"""Status of GPUJobs, GPUQueues and GPUNodePools, built from the pydantic status models.

Who calls this: `gpupool.cluster.writes.plan` builds each job's next status here when it turns a
lifecycle step or a core decision into a `JobChange`; `gpupool.controllers.loop` builds the
queues' and pools' status here at the report step. Nothing here writes: the applier
(`gpupool.cluster.writes.apply`) sends what these functions return.

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
    ModelChoiceStatus,
    ModelEstimate,
    Spend,
)
from gpupool.cluster.translate.convert import HOLDING_PHASES
from gpupool.cluster.translate.snapshot import PENDING_PHASES, ClusterSnapshot
from gpupool.cluster.writes.ports import EventNote
from gpupool.core.accounting import Holdings
from gpupool.core.budget import NEARLY_SPENT_FRACTION, BudgetStanding
from gpupool.core.roofline import ModelChoice

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
    holds: bool | None,
    reason: str,
    message: str,
    now: float,
    generation: int | None,
) -> list[Condition]:
    """`conditions` with the one of type `ctype` set (added when missing); `holds` None is
    status Unknown.

    `lastTransitionTime` is kept when the condition's status does not change.
    """
    wanted = ConditionStatus.UNKNOWN if holds is None else ConditionStatus.TRUE if holds else ConditionStatus.FALSE
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
    conditions: Sequence[tuple[str, bool | None, str, str]] = (),
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


def model_choice_status(choice: ModelChoice) -> ModelChoiceStatus:
    """`status.modelChoice` of a job admitted by its profile's roofline choice; alternatives
    that could not be estimated are left out."""
    return ModelChoiceStatus(
        model=choice.model,
        pool=choice.pool,
        optimize=choice.optimize,
        estimated_seconds=choice.seconds or 0.0,
        estimated_cost=choice.cost or 0.0,
        alternatives=[
            ModelEstimate(model=a.model, pool=a.pool, estimated_seconds=a.seconds, estimated_cost=a.cost)
            for a in choice.alternatives[:16]
            if a.seconds is not None and a.cost is not None
        ],
    )


def _duration(seconds: float) -> str:
    """`45 s`, `12 min` or `2.1 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _money(amount: float, currency: str | None) -> str:
    """`18 USD` (two significant decimals at most; no unit when the currency is unknown)."""
    shown = f"{amount:.2f}".rstrip("0").rstrip(".") or "0"
    return f"{shown} {currency}" if currency else f"cost {shown}"


def model_choice_message(choice: ModelChoice, currency: str | None) -> str:
    """The event sentence of a roofline choice, e.g. `placed on L40S (pool cloud-l40s) for the
    lowest estimated cost: estimated 2.1 h, 18 USD; H100 would be 1.9 h, 41 USD`. `currency`
    is the queue's budget currency (None: no budget, the amounts are shown without unit)."""
    goal = "lowest estimated cost" if choice.optimize == "Cost" else "shortest estimated time"
    pool = f" (pool {choice.pool})" if choice.pool else ""
    text = (
        f"placed on {choice.model}{pool} for the {goal}: estimated {_duration(choice.seconds or 0.0)}, "
        f"{_money(choice.cost or 0.0, currency)}"
    )
    others = [
        f"{a.model} would be {_duration(a.seconds)}, {_money(a.cost, currency)}"
        for a in choice.alternatives[:3]
        if a.seconds is not None and a.cost is not None
    ]
    return "; ".join([text, *others])


# --------------------------------------------------------------------------- queues and pools


def queue_status(
    queue: GPUQueue,
    snap: ClusterSnapshot,
    jobs: Mapping[str, GPUJob],
    decayed_usage_gpu_seconds: float,
    held: Holdings,
) -> GPUQueueStatus:
    """A queue's usage per flavor (from `held`: what `jobs` hold, `ClusterSnapshot.holdings_of`),
    pending and admitted counts and decayed usage, from `jobs` (the jobs as they are after this
    cycle's writes), and its budget's spend and conditions from the snapshot's standing
    (`with_budget`); other conditions kept."""
    name = str(queue.metadata.get("name"))
    mine = [j for j in jobs.values() if j.spec.queue == name]
    status = queue.status.model_copy(
        update={
            "pending_jobs": sum(1 for j in mine if j.status.phase in PENDING_PHASES),
            "admitted_jobs": sum(1 for j in mine if j.status.phase in HOLDING_PHASES),
            "usage": flavor_usage(name, snap, held),
            "decayed_usage_gpu_seconds": round(decayed_usage_gpu_seconds, 3),
        }
    )
    return with_budget(status, snap.budgets.get(name), snap.snapshot.now, generation_of(queue.metadata))


def flavor_usage(queue: str, snap: ClusterSnapshot, held: Holdings) -> list[FlavorUsage]:
    """Nominal, used and borrowed GPUs of `queue` per quota flavor (shares as fractions), from
    what the jobs hold (`held`); every flavor it has quota for or uses."""
    used = held.flavors_of(queue)
    nominal = snap.nominal(queue)
    return [
        FlavorUsage(
            flavor=flavor,
            nominal=nominal.get(flavor, 0),
            used=round(used.get(flavor, 0.0), 3),
            borrowed=round(max(0.0, used.get(flavor, 0.0) - nominal.get(flavor, 0)), 3),
        )
        for flavor in sorted(set(nominal) | set(used))
    ]


BUDGET_CONDITIONS = ("BudgetExhausted", "BudgetNearlySpent")


def with_budget(
    status: GPUQueueStatus, budget: BudgetStanding | None, now: float, generation: int | None
) -> GPUQueueStatus:
    """`status` with the budget's spend and its `BudgetExhausted` and `BudgetNearlySpent`
    conditions; a queue without a budget has neither."""
    if budget is None:
        kept = [c for c in status.conditions if c.type not in BUDGET_CONDITIONS]
        return status.model_copy(update={"spend": None, "conditions": kept})
    summary, resets = budget.summary(), budget.resets_at
    if budget.exhausted:
        exhausted = (True, "BudgetExhausted", f"spent {summary}: no new job is admitted until {resets}")
    else:
        exhausted = (False, "WithinBudget", f"spent {summary}; the budget resets at {resets}")
    if budget.nearly_spent:
        nearly = (True, "NearlySpent", f"spent {summary}, at least {NEARLY_SPENT_FRACTION:.0%} of it")
    else:
        nearly = (False, "WithinBudget", f"spent {summary}, under {NEARLY_SPENT_FRACTION:.0%} of it")
    conditions = list(status.conditions)
    for ctype, (holds, reason, message) in zip(BUDGET_CONDITIONS, (exhausted, nearly), strict=True):
        conditions = with_condition(conditions, ctype, holds, reason, message, now, generation)
    return status.model_copy(update={"spend": reported_spend(status.spend, budget), "conditions": conditions})


def reported_spend(previous: Spend | None, budget: BudgetStanding) -> Spend:
    """The spend to show: the exact one, except that while jobs still accrue the previous one
    is kept until it lags by 1% of a cap (a write per queue per cycle otherwise)."""
    limits, spend = budget.limits, budget.spend
    exact = Spend(
        amount=round(spend.cost, 4),
        cloud_amount=round(spend.cloud_cost, 4),
        currency=limits.currency,
        gpu_hours=round(spend.gpu_hours, 4),
        cloud_gpu_hours=round(spend.cloud_gpu_hours, 4),
        period_start=timestamp(budget.period_start),
        resets_at=timestamp(budget.period_end),
    )
    if previous is None or not budget.accruing or previous.period_start != exact.period_start:
        return exact
    money_step = max(0.01, limits.amount / 100)
    hours_step = max(0.01, (limits.gpu_hours or 0.0) / 100) if limits.gpu_hours is not None else 1.0
    lags = (
        abs(exact.amount - previous.amount) >= money_step
        or abs(exact.cloud_amount - previous.cloud_amount) >= money_step
        or abs(exact.gpu_hours - previous.gpu_hours) >= hours_step
        or abs(exact.cloud_gpu_hours - previous.cloud_gpu_hours) >= hours_step
        or exact.currency != previous.currency
    )
    return exact if lags else previous


def budget_events(old: GPUQueueStatus, new: GPUQueueStatus) -> tuple[EventNote, ...]:
    """An event for each budget condition that turns True from `old` to `new` (once, not every
    cycle: `old` is the status the API server holds)."""
    was_true = {c.type for c in old.conditions if c.status == ConditionStatus.TRUE}
    kinds = {"BudgetNearlySpent": "Normal", "BudgetExhausted": "Warning"}
    return tuple(
        EventNote(c.type, c.message or c.type, kinds[c.type])
        for c in new.conditions
        if c.type in kinds and c.status == ConditionStatus.TRUE and c.type not in was_true
    )


# The pool conditions about its nodes' inventory: nodes refused (MIG partitions, unknown GFD
# product, ...) and nodes whose GPUs are shared replicas (shares only). Each is written once it
# first holds and set False, not removed, when it stops holding.
NODES_REFUSED = "NodesRefused"
SHARED_GPU_NODES = "SharedGPUNodes"
NOTES_SHOWN = 3
"""Nodes a condition's message names; the rest are counted."""


def _notes_sentence(notes: Sequence[str]) -> str:
    shown = "; ".join(notes[:NOTES_SHOWN])
    return shown + (f"; and {len(notes) - NOTES_SHOWN} more node(s)" if len(notes) > NOTES_SHOWN else "")


def with_node_notes(
    status: GPUNodePoolStatus, pool: str, snap: ClusterSnapshot, generation: int | None = None
) -> GPUNodePoolStatus:
    """`status` with its `NodesRefused` and `SharedGPUNodes` conditions from the snapshot's
    node notes (`ClusterSnapshot.node_notes`): True with the nodes named while any node of
    the pool has such a note, False once none has (absent while none ever had)."""
    mine = sorted((name, note) for name, note in snap.node_notes.items() if note.pool == pool)
    conditions = list(status.conditions)
    present = {c.type for c in conditions}
    now = snap.snapshot.now
    for ctype, refused, idle_reason, idle_message in (
        (NODES_REFUSED, True, "AllNodesUsable", "gpupool refuses none of the pool's nodes"),
        (SHARED_GPU_NODES, False, "NoSharedGPUs", "no node of the pool shares its GPUs as replicas"),
    ):
        notes = [note for _name, note in mine if note.refused == refused]
        if notes:
            reasons = {note.reason for note in notes}
            reason = reasons.pop() if len(reasons) == 1 else ctype
            message = _notes_sentence([note.message for note in notes])
            conditions = with_condition(conditions, ctype, True, reason, message, now, generation)
        elif ctype in present:
            conditions = with_condition(conditions, ctype, False, idle_reason, idle_message, now, generation)
    return status.model_copy(update={"conditions": conditions})


def pool_status(pool: GPUNodePool, snap: ClusterSnapshot, held: Holdings) -> GPUNodePoolStatus:
    """A pool's ready nodes, GPUs on them and GPUs held on its nodes (`held`: what the jobs
    hold, shares as fractions), and the conditions about its nodes' inventory (`with_node_notes`)."""
    name = str(pool.metadata.get("name"))
    nodes = [n for n in snap.nodes.values() if n.pool == name]
    counts = pool.status.model_copy(
        update={
            "nodes_ready": sum(1 for n in nodes if n.ready),
            "nodes_provisioning": snap.scaling.in_flight_by_pool.get(name, 0),
            "gpus_total": sum(n.gpus for n in nodes if n.ready),
            "gpus_allocated": round(held.of_pool(name), 3),
        }
    )
    return with_node_notes(counts, name, snap, generation_of(pool.metadata))


def queue_status_changed(old: GPUQueueStatus, new: GPUQueueStatus) -> bool:
    """True when the queue's status is worth a write (decayed usage only past a step)."""
    drift = abs(old.decayed_usage_gpu_seconds - new.decayed_usage_gpu_seconds)
    same_rest = old.model_copy(update={"decayed_usage_gpu_seconds": 0.0}) == new.model_copy(
        update={"decayed_usage_gpu_seconds": 0.0}
    )
    return not same_rest or drift >= USAGE_WRITE_STEP_GPU_SECONDS
