"""Queue quotas: flavors, cohorts, borrowing and lending.

Who calls this: `gpupool.core.schedule` builds one `QuotaLedger` per cycle from the
snapshot, asks it whether a job fits its queue's quota in a flavor, and charges it as it
admits or preempts; `gpupool.core.preemption` asks it what a set of victims would give back.

Rules (all amounts in milli-GPU inside the ledger):

* **Flavor resolution.** A worker on node `n` consumes the queue's quota entry whose `pool`
  equals `n.pool`; failing that, the entry whose `gpu_model` equals `n.gpu_model`. A node
  with no matching entry gives the queue zero quota, so the queue cannot use that node.
  A gang is admitted within one flavor (all its workers on nodes of that flavor).
* **Nominal and borrowing.** Without a cohort a queue may use up to its nominal quota. In a
  cohort it may use more, borrowing idle capacity other members lend, up to its
  `borrowing_limit_gpus` beyond nominal (None = no limit).
* **Lending.** A member lends at most `lending_limit_gpus` of its nominal quota (None = all
  of it); the rest is guaranteed to it. The cohort's shared pool for a flavor is the sum
  of what members lend; a member's usage above its guaranteed part draws on that pool, and
  the pool may never be overdrawn. A queue within its nominal quota may therefore still
  not fit when others borrowed its lendable part: it must reclaim it by preemption.
* Flavors are matched across a cohort by name (`Quota.flavor`, e.g. `pool:dgx` or
  `model:H100`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpupool.core.models import MILLI_PER_GPU, GpuNode, Queue

_UNLIMITED = 1 << 62


@dataclass(frozen=True, slots=True)
class FlavorLimits:
    """One queue's quota for one flavor, in milli-GPU (`borrowing` is beyond nominal)."""

    nominal: int
    borrowing: int
    guaranteed: int


def _limits(queue: Queue) -> dict[str, FlavorLimits]:
    out: dict[str, FlavorLimits] = {}
    for quota in queue.quotas:
        if quota.flavor in out:
            continue  # first entry of a flavor wins; duplicates are a spec error
        nominal = max(0, quota.nominal_gpus) * MILLI_PER_GPU
        borrowing = _UNLIMITED if quota.borrowing_limit_gpus is None else max(0, quota.borrowing_limit_gpus)
        if borrowing != _UNLIMITED:
            borrowing *= MILLI_PER_GPU
        lending = nominal if quota.lending_limit_gpus is None else quota.lending_limit_gpus * MILLI_PER_GPU
        guaranteed = nominal - min(nominal, max(0, lending))
        out[quota.flavor] = FlavorLimits(nominal, borrowing, guaranteed)
    return out


def resolve_flavors(queue: Queue, nodes: Sequence[GpuNode]) -> tuple[tuple[str, ...], npt.NDArray[np.int32]]:
    """Which of `queue`'s flavors each node belongs to.

    Returns the queue's flavor names (in quota order) and, per node, the index into them
    (-1 where the queue has no quota entry for the node).
    """
    flavors: list[str] = []
    by_pool: dict[str, int] = {}
    by_model: dict[str, int] = {}
    for quota in queue.quotas:
        if quota.flavor in flavors:
            continue
        flavors.append(quota.flavor)
        if quota.pool is not None:
            by_pool[quota.pool] = len(flavors) - 1
        elif quota.gpu_model is not None:
            by_model[quota.gpu_model] = len(flavors) - 1
    index = np.full(len(nodes), -1, dtype=np.int32)
    for i, node in enumerate(nodes):
        found = by_pool.get(node.pool) if node.pool else None
        if found is None:
            found = by_model.get(node.gpu_model)
        if found is not None:
            index[i] = found
    return tuple(flavors), index


class QuotaLedger:
    """Usage against quota for every (queue, flavor) during one cycle.

    Built from the snapshot's queues and running jobs; mutated as the cycle admits
    (`charge`) and preempts (`refund`). Every method is O(1) in the number of jobs.
    """

    def __init__(self, queues: Iterable[Queue]) -> None:
        self._limits: dict[str, dict[str, FlavorLimits]] = {}
        self._cohort: dict[str, str | None] = {}
        self._usage: dict[tuple[str, str], int] = {}
        # per (cohort, flavor): lendable capacity and how much of it members draw on
        self._pool_capacity: dict[tuple[str, str], int] = {}
        self._pool_drawn: dict[tuple[str, str], int] = {}
        self._fail_floor: dict[tuple[str, str], int] = {}
        for queue in queues:
            limits = _limits(queue)
            self._limits[queue.name] = limits
            self._cohort[queue.name] = queue.cohort
            if queue.cohort is not None:
                for flavor, lim in limits.items():
                    key = (queue.cohort, flavor)
                    self._pool_capacity[key] = self._pool_capacity.get(key, 0) + lim.nominal - lim.guaranteed
                    self._pool_drawn.setdefault(key, 0)

    # -- reading -----------------------------------------------------------------------

    def limits(self, queue: str, flavor: str) -> FlavorLimits | None:
        """The queue's limits for `flavor`, or None when it has no quota there."""
        return self._limits.get(queue, {}).get(flavor)

    def usage(self, queue: str, flavor: str) -> int:
        """milli-GPU the queue holds (or has been granted this cycle) in `flavor`."""
        return self._usage.get((queue, flavor), 0)

    def ceiling(self, queue: str, flavor: str) -> int:
        """The most the queue may ever hold in `flavor`: nominal, plus borrowing in a cohort."""
        lim = self.limits(queue, flavor)
        if lim is None:
            return 0
        if self._cohort.get(queue) is None:
            return lim.nominal
        return min(_UNLIMITED, lim.nominal + lim.borrowing)

    def cohort_free(self, queue: str, flavor: str) -> int:
        """Lendable capacity of the queue's cohort in `flavor` nobody draws on yet."""
        cohort = self._cohort.get(queue)
        if cohort is None:
            return 0
        key = (cohort, flavor)
        return self._pool_capacity.get(key, 0) - self._pool_drawn.get(key, 0)

    def headroom(self, queue: str, flavor: str) -> int:
        """milli-GPU the queue could still be granted in `flavor` right now."""
        lim = self.limits(queue, flavor)
        if lim is None:
            return 0
        used = self.usage(queue, flavor)
        by_ceiling = self.ceiling(queue, flavor) - used
        if self._cohort.get(queue) is None:
            return max(0, by_ceiling)
        # Up to the guaranteed part needs nothing from the pool; above it, every milli does.
        own = max(0, lim.guaranteed - used)
        return max(0, min(by_ceiling, own + self.cohort_free(queue, flavor)))

    def fits(self, queue: str, flavor: str, milli: int) -> bool:
        """True when granting `milli` more to `queue` in `flavor` keeps every rule.

        Headroom only shrinks while a cycle charges, so the smallest grant known not to
        fit is remembered per (queue, flavor) and anything as large fails at once; a
        refund forgets all of them.
        """
        key = (queue, flavor)
        floor = self._fail_floor.get(key)
        if floor is not None and milli >= floor:
            return False
        if milli <= self.headroom(queue, flavor):
            return True
        self._fail_floor[key] = milli if floor is None else min(floor, milli)
        return False

    def borrowed_after(self, queue: str, flavor: str, milli: int) -> int:
        """How much of a grant of `milli` lies above the queue's nominal quota."""
        lim = self.limits(queue, flavor)
        nominal = 0 if lim is None else lim.nominal
        used = self.usage(queue, flavor)
        return max(0, used + milli - nominal) - max(0, used - nominal)

    def borrowing(self, queue: str, flavor: str) -> int:
        """How far above its nominal quota the queue is in `flavor` (0 when within)."""
        lim = self.limits(queue, flavor)
        nominal = 0 if lim is None else lim.nominal
        return max(0, self.usage(queue, flavor) - nominal)

    def cohort_of(self, queue: str) -> str | None:
        """The queue's cohort (None when it stands alone or is unknown)."""
        return self._cohort.get(queue)

    # -- changing ----------------------------------------------------------------------

    def charge(self, queue: str, flavor: str, milli: int) -> None:
        """Record that `queue` now holds `milli` more in `flavor` (admission or running job)."""
        self._move(queue, flavor, milli)

    def refund(self, queue: str, flavor: str, milli: int) -> None:
        """Record that `queue` gives back `milli` in `flavor` (a preempted job)."""
        self._move(queue, flavor, -milli)

    def _move(self, queue: str, flavor: str, delta: int) -> None:
        if delta < 0:
            self._fail_floor.clear()
        before = self.usage(queue, flavor)
        after = before + delta
        self._usage[(queue, flavor)] = after
        cohort = self._cohort.get(queue)
        lim = self.limits(queue, flavor)
        if cohort is None or lim is None:
            return
        key = (cohort, flavor)
        drawn_before = max(0, before - lim.guaranteed)
        drawn_after = max(0, after - lim.guaranteed)
        self._pool_drawn[key] = self._pool_drawn.get(key, 0) + drawn_after - drawn_before
