"""Scoring policies: given the nodes where a worker fits, pick one node and its GPUs.

Who uses this: `PlacementState.place` resolves the scoring policy name it is given (the
scheduling core's `SchedulerConfig.scoring_policy`, or the trace bench's `--policy`;
`registry.py`) and calls the policy once per worker with the indices of the nodes where
that worker fits.

Every policy is a function (state, candidates, shape, rng, memory, params) -> (node row,
GPU indices) or None when there is no candidate; `memory` is the `PlacementMemory` whose
learned mix the fragmentation-aware policies score against (None: nothing learned),
`params` the `gpupool` policy's parameters (the others ignore them). Ties between nodes
go to the node first in the state's tie order (`PlacementState.tie_rank`; node order
unless the caller sets one), as in the FGD paper's scheduler, which picks the
lexicographically smallest node name among equal scores. A fixed order packs: equal
nodes fill one after another instead of spreading at random. Only `random` draws from
`rng`.

- `random`:  a uniformly random fitting node (the paper's Random baseline).
- `bestfit`: the paper's BestFit: least cpu and GPU left after placement, scores
  quantised to the scheduler's 0-100 integers; a share goes to the tightest GPU.
- `fgd`:     the paper's FGD: least growth of expected fragmentation under the mix,
  scores quantised through its sigmoid to 0-100 integers.
- `gpupool`: ours, in `gpupool_policy.py`; the name registry is `registry.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt

from gpupool.core.models import MILLI_PER_GPU, GpupoolParams, WorkerShape
from gpupool.core.placement.fragmentation import FragModel
from gpupool.core.placement.memory import MixTables, PlacementMemory
from gpupool.core.placement.mix import WorkloadMix

if TYPE_CHECKING:
    from gpupool.core.placement.state import PlacementState

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Choice: TypeAlias = tuple[int, tuple[int, ...]]
ScoringPolicy: TypeAlias = Callable[
    ["PlacementState", IntArray, WorkerShape, "np.random.Generator | None", "PlacementMemory | None", GpupoolParams],
    "Choice | None",
]

# The paper's BestFit normalises by the largest node it knows: 128 cores, 8 GPUs.
BESTFIT_MAX_CPU_MILLI = 128_000
BESTFIT_MAX_GPU_MILLI = 8 * MILLI_PER_GPU


# ------------------------------------------------------------------ GPU choice helpers
def idle_gpus(state: PlacementState, node: int, count: int) -> tuple[int, ...]:
    """The `count` lowest-numbered fully idle GPUs of `node`."""
    row = state.gpu_free[node]
    return tuple(int(g) for g in np.flatnonzero(row == MILLI_PER_GPU)[:count])


def tightest_gpu(state: PlacementState, node: int, milli: int) -> int:
    """The GPU of `node` with the least free milli that still holds `milli` (lowest index on ties)."""
    row = state.gpu_free[node]
    slack = np.where(row >= milli, row - milli, np.iinfo(np.int64).max)
    return int(np.argmin(slack))


def default_gpus(state: PlacementState, node: int, shape: WorkerShape) -> tuple[int, ...]:
    """Tightest GPU for a share, lowest idle GPUs for whole GPUs, none for CPU-only."""
    if shape.is_fractional:
        return (tightest_gpu(state, node, shape.gpu_milli),)
    return idle_gpus(state, node, shape.whole_gpus)


def pick_best(state: PlacementState, candidates: IntArray, scores: FloatArray | IntArray) -> int:
    """Position (in `candidates`) of the highest score; ties to the lowest `tie_rank`."""
    best = np.flatnonzero(scores == scores.max())
    if len(best) == 1:
        return int(best[0])
    return int(best[np.argmin(state.tie_rank[candidates[best]])])


# ------------------------------------------------------------------------- policies
def random_policy(
    state: PlacementState,
    candidates: IntArray,
    shape: WorkerShape,
    rng: np.random.Generator | None,
    memory: PlacementMemory | None,
    params: GpupoolParams,
) -> Choice | None:
    """A uniformly random fitting node (seeded; a fixed seed when no rng is given)."""
    if len(candidates) == 0:
        return None
    gen = rng if rng is not None else np.random.default_rng(0)
    node = int(candidates[gen.integers(len(candidates))])
    if shape.is_fractional:
        # The paper's Random baseline also picks the GPU at random among those that fit.
        fits = np.flatnonzero(state.gpu_free[node] >= shape.gpu_milli)
        return node, (int(fits[gen.integers(len(fits))]),)
    return node, default_gpus(state, node, shape)


def bestfit_scores(state: PlacementState, candidates: IntArray, shape: WorkerShape) -> IntArray:
    """The paper's BestFit as the scheduler sees it: integer 0..100, higher is better."""
    cpu_left = state.cpu_free[candidates] - shape.cpu_milli
    gpu_left = state.sum_free[candidates] - shape.gpu_milli
    left = 0.5 * cpu_left / BESTFIT_MAX_CPU_MILLI + 0.5 * gpu_left / BESTFIT_MAX_GPU_MILLI
    return ((1.0 - left) * 100.0).astype(np.int64)


def bestfit_policy(
    state: PlacementState,
    candidates: IntArray,
    shape: WorkerShape,
    rng: np.random.Generator | None,
    memory: PlacementMemory | None,
    params: GpupoolParams,
) -> Choice | None:
    """Least cpu + GPU left after placement (quantised as the paper's scheduler does)."""
    if len(candidates) == 0:
        return None
    node = int(candidates[pick_best(state, candidates, bestfit_scores(state, candidates, shape))])
    return node, default_gpus(state, node, shape)


def frag_model_for(state: PlacementState, shape: WorkerShape, tables: MixTables | None) -> FragModel:
    """The fragmentation model of the learned mix, or of `shape` alone when none is known yet."""
    if tables is not None:
        return tables.frag_model(state.models)
    fallback = WorkloadMix()
    fallback.observe(shape)
    snapshot = fallback.snapshot()
    assert snapshot is not None
    return FragModel(snapshot, state.models)


def frag_growth(
    state: PlacementState, candidates: IntArray, shape: WorkerShape, model: FragModel
) -> tuple[FloatArray, IntArray]:
    """Growth of expected fragmentation for each candidate node, and the GPU it implies.

    For a share the GPU is the one with the least growth (lowest index on ties); for
    whole GPUs the lowest-numbered idle ones (GPU column -1).
    """
    free = state.gpu_free[candidates]
    cpu = state.cpu_free[candidates]
    idle = state.idle[candidates]
    models = state.model_id[candidates]
    before = model.node_frag(free, cpu, idle, models)
    cpu_after = cpu - shape.cpu_milli
    if shape.is_fractional:
        after = model.frag_after_share(free, cpu_after, idle, models, shape.gpu_milli)
        gpu = np.argmin(after, axis=1)
        growth = after[np.arange(len(candidates)), gpu] - before
        return growth, gpu.astype(np.int64)
    after_whole = model.frag_after_whole(free, cpu_after, idle, models, shape.whole_gpus)
    return after_whole - before, np.full(len(candidates), -1, dtype=np.int64)


def sigmoid_score(growth: FloatArray) -> IntArray:
    """FGD's node score: sigmoid of the fragment *decrease* in GPUs, as an integer 0..100."""
    # Clipped so impossible GPUs (growth +inf) score 0 without an overflow warning.
    return (100.0 / (1.0 + np.exp(np.clip(growth / MILLI_PER_GPU, -60.0, 60.0)))).astype(np.int64)


def fgd_policy(
    state: PlacementState,
    candidates: IntArray,
    shape: WorkerShape,
    rng: np.random.Generator | None,
    memory: PlacementMemory | None,
    params: GpupoolParams,
) -> Choice | None:
    """The paper's FGD: least fragmentation growth, scored through its quantised sigmoid.

    The paper scores each GPU of a node for a share, keeps the first GPU with the best
    *quantised* score, and picks at random among the nodes with the best score; this
    mirrors that, quantisation included, because it changes the outcome measurably.
    """
    if len(candidates) == 0:
        return None
    model = frag_model_for(state, shape, memory.tables() if memory is not None else None)
    free = state.gpu_free[candidates]
    cpu = state.cpu_free[candidates]
    idle = state.idle[candidates]
    models = state.model_id[candidates]
    before = model.node_frag(free, cpu, idle, models)
    cpu_after = cpu - shape.cpu_milli
    if shape.is_fractional:
        after = model.frag_after_share(free, cpu_after, idle, models, shape.gpu_milli)
        per_gpu = np.where(np.isfinite(after), sigmoid_score(np.nan_to_num(after - before[:, None])), -1)
        gpu = np.argmax(per_gpu, axis=1)  # first GPU with the best quantised score
        scores = per_gpu[np.arange(len(candidates)), gpu]
        pos = pick_best(state, candidates, scores)
        return int(candidates[pos]), (int(gpu[pos]),)
    after_whole = model.frag_after_whole(free, cpu_after, idle, models, shape.whole_gpus)
    pos = pick_best(state, candidates, sigmoid_score(after_whole - before))
    node = int(candidates[pos])
    return node, idle_gpus(state, node, shape.whole_gpus)
