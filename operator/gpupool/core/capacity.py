"""Fast "could it fit right now?" counts over the cycle's `PlacementState`.

Who calls this: `gpupool.core.schedule` before asking the placement engine to place a job
(a job that cannot fit by these counts is not worth scoring), and `gpupool.core.preemption`
while it adds and removes victims in a what-if (it only asks the engine for a placement
once the counts say the preemptor fits). The counts are exact per node — how many workers
of the shape each allowed node could take now, by idle GPUs or per-GPU free milli, cpu,
memory and pod slots — so a gang fits by the counts exactly when it fits worker by worker.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gpupool.core.models import MILLI_PER_GPU, Job
from gpupool.core.placement import PlacementState

Mask = npt.NDArray[np.bool_]


def workers_per_row(state: PlacementState, job: Job, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per node in `rows`: how many of `job`'s workers it could take now (capped at the gang)."""
    shape = job.shape
    per: npt.NDArray[np.int64]
    if shape.gpu_milli >= MILLI_PER_GPU:
        per = state.idle[rows] // shape.whole_gpus
    elif shape.gpu_milli > 0:
        per = (state.gpu_free[rows] // shape.gpu_milli).sum(axis=1) * state.accepts_shares[rows]
    else:
        per = np.full(len(rows), job.workers, dtype=np.int64)
    if shape.cpu_milli > 0:
        per = np.minimum(per, state.cpu_free[rows] // shape.cpu_milli)
    if shape.memory_bytes > 0:
        per = np.minimum(per, state.memory_free[rows] // shape.memory_bytes)
    per = np.minimum(per, state.pods_free[rows])
    result: npt.NDArray[np.int64] = np.minimum(per, job.workers)
    return result


def workers_fitting_now(state: PlacementState, job: Job, allowed: Mask) -> int:
    """How many workers of `job` the allowed, ready nodes of its models could take now."""
    rows = np.flatnonzero(allowed & state.ready & state.model_mask(job.gpu_models))
    if len(rows) == 0:
        return 0
    return int(workers_per_row(state, job, rows).sum())


def fits_now(state: PlacementState, job: Job, allowed: Mask) -> bool:
    """True when the whole gang fits the allowed nodes as they are now."""
    return workers_fitting_now(state, job, allowed) >= job.workers


class FitCounter:
    """Incremental `workers_fitting_now` for one job while a what-if changes a few nodes.

    Preemption evicts and restores victims one at a time; recounting every allowed node
    after each step would cost O(nodes). This keeps the per-node counts and recounts
    only the rows a step touched.
    """

    def __init__(self, state: PlacementState, job: Job, allowed: Mask) -> None:
        self._state = state
        self._job = job
        self._ok = allowed & state.ready & state.model_mask(job.gpu_models)
        self._per = np.zeros(len(allowed), dtype=np.int64)
        rows = np.flatnonzero(self._ok)
        self._per[rows] = self._count(rows)
        self._total = int(self._per.sum())

    def _count(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return workers_per_row(self._state, self._job, rows)

    def refresh(self, rows: tuple[int, ...]) -> None:
        """Recount `rows` after the state changed there."""
        picked = np.array([r for r in set(rows) if self._ok[r]], dtype=np.int64)
        if len(picked) == 0:
            return
        fresh = self._count(picked)
        self._total += int(fresh.sum() - self._per[picked].sum())
        self._per[picked] = fresh

    def fits(self) -> bool:
        """True when the whole gang fits by the current counts."""
        return self._total >= self._job.workers
