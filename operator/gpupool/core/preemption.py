"""Choosing victims: which running jobs to evict so that a pending job can run.

Who calls this: `gpupool.core.schedule`, when a pending job fits neither its quota nor the
cluster. It calls `plan_preemption` for one flavor and one set of allowed nodes; on success
the cycle's `PlacementState` and `QuotaLedger` are left with the victims removed, and the
caller assumes the preemptor's placement and holds the victims' nodes for it.

Rules:

* **Within a queue, by priority**: a job may evict jobs of its own queue with strictly
  lower priority (when the queue's `preemption.within_queue` is on).
* **Across queues, only to reclaim**: a job whose queue would stay within its *nominal*
  quota may evict jobs of other queues in its cohort that are borrowing in that flavor
  (when its queue's `preemption.reclaim_within_cohort` is on), whatever their priority;
  a borrower stops being a candidate as soon as it no longer borrows.
* **Never** a non-preemptible job, and never one admitted less than its own queue's
  `preemption.min_runtime_seconds` ago (a job with an unknown admission time counts as
  too young when that minimum is positive).
* **Fewest and cheapest**: candidates are tried cheapest first — lowest priority, then
  the most recently admitted — until the preemptor fits; then each chosen victim except
  the last is put back, dearest first, if the preemptor still fits without evicting it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpupool.core.capacity import FitCounter
from gpupool.core.models import MILLI_PER_GPU, Job, Queue, WorkerPlacement
from gpupool.core.placement import PlacementState
from gpupool.core.quota import QuotaLedger

Mask = npt.NDArray[np.bool_]
PlaceFn = Callable[[Job, Mask], "tuple[WorkerPlacement, ...] | None"]


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """A running job as a possible victim: what it holds, per flavor and per node row."""

    job: Job
    placements: tuple[WorkerPlacement, ...]
    flavor_milli: tuple[tuple[str, int], ...]
    rows: tuple[int, ...]

    def milli_in(self, flavor: str) -> int:
        """milli-GPU this job holds in `flavor` of its own queue."""
        return sum(m for f, m in self.flavor_milli if f == flavor)


@dataclass(frozen=True, slots=True)
class PreemptionPlan:
    """The victims to evict (with the reason for each) and where the preemptor will run."""

    victims: tuple[tuple[Candidate, str], ...]
    placements: tuple[WorkerPlacement, ...]


def old_enough(job: Job, queue: Queue | None, now: float) -> bool:
    """True when `job` has run at least its queue's minimum runtime."""
    minimum = 0.0 if queue is None else queue.preemption.min_runtime_seconds
    if minimum <= 0.0:
        return True
    if job.admitted_at is None:
        return False
    return now - job.admitted_at >= minimum


def may_be_victim(job: Job, queues: Mapping[str, Queue], now: float) -> bool:
    """The hard rules: preemptible and old enough (checked once per running job)."""
    return job.preemptible and old_enough(job, queues.get(job.queue), now)


def _cheapest_first(c: Candidate) -> tuple[int, float, str]:
    admitted = c.job.admitted_at if c.job.admitted_at is not None else float("-inf")
    return (c.job.priority, -admitted, c.job.key)


def plan_preemption(
    preemptor: Job,
    queue: Queue,
    flavor: str,
    allowed: Mask,
    candidates: Mapping[str, Sequence[Candidate]],
    ledger: QuotaLedger,
    state: PlacementState,
    place: PlaceFn,
) -> PreemptionPlan | None:
    """Victims that let `preemptor` run in `flavor` on `allowed` nodes, or None.

    `candidates` maps queue names to their running jobs that satisfy `may_be_victim`.
    On success `state` and `ledger` no longer hold the victims; on failure both are
    exactly as they were.
    """
    need = preemptor.total_gpu_milli
    lim = ledger.limits(queue.name, flavor)
    if lim is None:
        return None
    pool: list[tuple[Candidate, str]] = []
    if queue.preemption.within_queue:
        why = "make room for a higher-priority job of the same queue"
        for c in candidates.get(queue.name, ()):
            if c.job.priority < preemptor.priority and (c.milli_in(flavor) > 0 or any(allowed[r] for r in c.rows)):
                pool.append((c, why))
    within_nominal = ledger.usage(queue.name, flavor) + need <= lim.nominal
    if queue.preemption.reclaim_within_cohort and queue.cohort is not None and within_nominal:
        for name, members in candidates.items():
            if name == queue.name or ledger.cohort_of(name) != queue.cohort:
                continue
            if ledger.borrowing(name, flavor) <= 0:
                continue
            why = (
                f"reclaim {flavor} quota that queue {name} borrowed from cohort {queue.cohort} "
                f"and queue {queue.name} owns"
            )
            pool.extend((c, why) for c in members if c.milli_in(flavor) > 0)
    if not pool:
        return None
    if not _could_be_enough(preemptor, queue, flavor, allowed, pool, ledger, state):
        return None
    pool.sort(key=lambda item: _cheapest_first(item[0]))
    counter = FitCounter(state, preemptor, allowed)

    def fits() -> bool:
        return counter.fits() and ledger.fits(queue.name, flavor, need)

    chosen: list[tuple[Candidate, str]] = []
    found = False
    for c, why in pool:
        if c.job.queue != queue.name and ledger.borrowing(c.job.queue, flavor) <= 0:
            continue
        if not any(allowed[r] for r in c.rows) and ledger.fits(queue.name, flavor, need):
            continue  # frees neither quota the preemptor lacks nor nodes it may use
        _evict(c, ledger, state)
        counter.refresh(c.rows)
        chosen.append((c, why))
        if fits():
            found = True
            break
    if not found:
        _restore_all(chosen, ledger, state)
        return None
    # Put back every victim that turns out unnecessary, dearest first.
    keep = [True] * len(chosen)
    for i in range(len(chosen) - 2, -1, -1):
        c = chosen[i][0]
        _restore(c, ledger, state)
        counter.refresh(c.rows)
        if fits():
            keep[i] = False
        else:
            _evict(c, ledger, state)
            counter.refresh(c.rows)
    victims = [item for item, k in zip(chosen, keep, strict=True) if k]
    placements = place(preemptor, allowed)
    if placements is None:  # the engine found no placement the counts promised
        _restore_all(victims, ledger, state)
        return None
    return PreemptionPlan(victims=tuple(victims), placements=placements)


def _could_be_enough(
    preemptor: Job,
    queue: Queue,
    flavor: str,
    allowed: Mask,
    pool: Sequence[tuple[Candidate, str]],
    ledger: QuotaLedger,
    state: PlacementState,
) -> bool:
    """Cheap upper bound: would evicting the whole pool give enough quota and GPUs?"""
    need = preemptor.total_gpu_milli
    reclaiming = any(c.job.queue != queue.name for c, _ in pool)
    if not reclaiming:
        own = sum(c.milli_in(flavor) for c, _ in pool)
        if ledger.headroom(queue.name, flavor) + own < need:
            return False
    freed = state.sum_free.copy()
    for c, _ in pool:
        for p in c.placements:
            freed[state.index_of(p.node)] += sum(s.milli for s in p.gpus)
    ok = allowed & state.ready & state.model_mask(preemptor.gpu_models)
    shape = preemptor.shape
    if shape.gpu_milli >= MILLI_PER_GPU:
        per = np.minimum(state.gpu_count, freed // MILLI_PER_GPU) // shape.whole_gpus
    elif shape.gpu_milli > 0:
        per = (freed // shape.gpu_milli) * state.accepts_shares
    else:
        return True
    return int(np.minimum(per[ok], preemptor.workers).sum()) >= preemptor.workers


def _restore_all(items: Sequence[tuple[Candidate, str]], ledger: QuotaLedger, state: PlacementState) -> None:
    for c, _ in reversed(items):
        _restore(c, ledger, state)


def _evict(c: Candidate, ledger: QuotaLedger, state: PlacementState) -> None:
    state.release(c.placements, c.job.shape)
    for flavor, milli in c.flavor_milli:
        ledger.refund(c.job.queue, flavor, milli)


def _restore(c: Candidate, ledger: QuotaLedger, state: PlacementState) -> None:
    state.allocate(c.placements, c.job.shape)
    for flavor, milli in c.flavor_milli:
        ledger.charge(c.job.queue, flavor, milli)
