"""A queue's budget spend, derived each cycle from its GPUJobs' status and the clock.

Who calls this: `gpupool.cluster.translate.snapshot.build_snapshot` asks `budget_standings` for the
standing of every queue with a budget (it becomes the core `Queue`'s `budget_exhausted`,
`budget_left` and `budget_standing`, and the report step's `status.spend` and conditions,
built in `gpupool.cluster.writes.status`); the planner (`gpupool.cluster.writes.plan`) records the
attempt that ends with `ended_attempt_fields`, in the same status write that ends it.

Spend is never counted in memory. Each ended attempt is recorded in its job's
`status.usageHistory` (start, end, GPU-seconds and cost, with the cloud part of each; the
last `MAX_RECORDED_ATTEMPTS`, older ones folded into the first entry), and the running
attempt accrues from `status.startedAt` to now at its workers' pool prices. A queue's
spend in its period is the part of these accruals inside the period
(`gpupool.core.budget`), so it is a pure function of API objects and the clock: the same
before and after a restart, and an attempt is counted once, as running or as recorded,
since one status write both records it and ends it. What a deleted GPUJob spent leaves
its queue's spend with it (docs/architecture.md, "Budgets").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gpupool.api import AttemptUsage, GPUJob, GPUQueue
from gpupool.cluster.translate.accounting import Biller
from gpupool.cluster.translate.convert import HOLDING_PHASES, budget_from_api, parse_timestamp
from gpupool.core.budget import Accrual, BudgetStanding, record_attempt, standing


def attempt_accrual(job: GPUJob, biller: Biller, now: float) -> Accrual | None:
    """What the job's current attempt accrued from `status.startedAt` to `now`, billed by
    the cycle's prices (`gpupool.core.accounting`: its accrual rule); None when it never
    started."""
    started = parse_timestamp(job.status.started_at)
    if started is None:
        return None
    return biller.accrual(job, started, now)


def running_accrual(job: GPUJob, biller: Biller, now: float) -> Accrual | None:
    """The accrual of the job's attempt while it holds GPUs and runs; None otherwise."""
    return attempt_accrual(job, biller, now) if job.status.phase in HOLDING_PHASES else None


def recorded_accruals(job: GPUJob) -> list[Accrual]:
    """The job's ended attempts, from `status.usageHistory`."""
    accruals = []
    for entry in job.status.usage_history:
        started = parse_timestamp(entry.started_at)
        ended = parse_timestamp(entry.ended_at)
        assert started is not None and ended is not None
        accruals.append(
            Accrual(
                started=started,
                ended=ended,
                gpu_seconds=entry.gpu_seconds,
                cost=entry.cost,
                cloud_gpu_seconds=entry.cloud_gpu_seconds,
                cloud_cost=entry.cloud_cost,
                attempts=entry.attempts,
            )
        )
    return accruals


def _usage_entry(accrual: Accrual) -> AttemptUsage:
    return AttemptUsage(
        attempts=accrual.attempts,
        started_at=datetime.fromtimestamp(int(accrual.started), UTC),
        ended_at=datetime.fromtimestamp(int(accrual.ended), UTC),
        gpu_seconds=round(accrual.gpu_seconds, 3),
        cost=round(accrual.cost, 4),
        cloud_gpu_seconds=round(accrual.cloud_gpu_seconds, 3),
        cloud_cost=round(accrual.cloud_cost, 4),
    )


def running_accruals(jobs: Mapping[str, GPUJob], biller: Biller, now: float) -> dict[str, Accrual]:
    """The running attempt's accrual to `now` of every job that holds GPUs and has started,
    by `namespace/name`: computed once per snapshot (`ClusterSnapshot.accruals`), read by
    budgets, the planner's ended attempts and the cost metrics."""
    out = {}
    for key, job in jobs.items():
        accrual = running_accrual(job, biller, now)
        if accrual is not None:
            out[key] = accrual
    return out


def ended_attempt_fields(job: GPUJob, accrual: Accrual | None) -> dict[str, Any]:
    """Status fields for the attempt that ends with `accrual` (its accrual to now): cumulative
    `gpu_seconds` and `cost` with it added, and `usage_history` with it recorded; none when
    it never started (no accrual)."""
    if accrual is None:
        return {}
    history = record_attempt(recorded_accruals(job), accrual)
    return {
        "gpu_seconds": round(job.status.gpu_seconds + accrual.gpu_seconds, 3),
        "cost": round(job.status.cost + accrual.cost, 4),
        "usage_history": [_usage_entry(entry) for entry in history],
    }


def budget_standings(
    queues: Mapping[str, GPUQueue], jobs: Mapping[str, GPUJob], running: Mapping[str, Accrual], now: float
) -> dict[str, BudgetStanding]:
    """The standing at `now` of every queue with a budget, from the GPUJobs that exist: their
    recorded attempts and the running ones (`running`, by job key)."""
    budgeted = {name: q.spec.budget for name, q in queues.items() if q.spec.budget is not None}
    accruals: dict[str, list[Accrual]] = {name: [] for name in budgeted}
    accruing: set[str] = set()
    for key in sorted(jobs):
        job = jobs[key]
        mine = accruals.get(job.spec.queue)
        if mine is None:
            continue
        mine.extend(recorded_accruals(job))
        accrual = running.get(key)
        if accrual is not None:
            mine.append(accrual)
            accruing.add(job.spec.queue)
    return {
        name: standing(budget_from_api(budget), accruals[name], now, accruing=name in accruing)
        for name, budget in sorted(budgeted.items())
        if budget is not None
    }
