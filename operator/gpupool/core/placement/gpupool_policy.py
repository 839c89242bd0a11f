"""gpupool's own scoring policy: planned share packing over fragmentation-aware nodes.

Who uses this: `PlacementState.place` for `scoring_policy="gpupool"` (and `"default"`,
which resolves to it; `registry.py`). Everything the policy knows comes from the cluster
state and the workload mix of the `PlacementMemory` it is given (`memory.py`): the
scheduling core feeds that mix every job of a snapshot it has not seen yet and, when the
caller passes `Decisions.memory` back in, keeps it from cycle to cycle; the trace bench
feeds it each pod as it arrives, never the future. Its parameters (`GpupoolParams`, in
`gpupool.core.models`) come from `SchedulerConfig.gpupool_params`, or from the trace
bench, never from a global.

How it decides, per worker (parameters measured in docs/benchmarks.md):
1. GPU jobs first keep off the GPU models that model-pinned jobs still need. A model's
   pinned ratio (`pinned_demand.py`; 1 = pinned jobs alone fill it by the time the
   arrived work equals the cluster) times the share of the cluster still unallocated
   estimates the part of it the pinned jobs still to come will want. While a model's
   free share is no more than `claim_margin` times that, it is *claimed*: the job keeps
   to candidates on unclaimed models if any fit. CPU-only jobs skip this step (sent to
   unclaimed models, they used up the cpu there and stranded those GPUs).
2. A share (less than one GPU) then looks for a *planned home*: a partly used GPU that
   the share plan (`share_plan.py`, a packing of the share sizes seen so far) marks as a
   home for this size, or one the share would leave too full for any share we know of.
   If there is one, the tightest such GPU wins (least milli left) and only the nodes
   holding one go on. Without a planned home the share is placed like any other job, on
   the GPU of the chosen node that raises fragmentation least.
3. Nodes are ranked by fragmentation growth (FGD's measure, `fragmentation.py`) under the
   mix, coarsened so near-equal nodes tie: whole-GPU and CPU-only jobs use FGD's own
   0-100 sigmoid score, shares `growth_bin`-wide buckets (exact growth spreads work:
   5.8% unallocated on openb vs 4.8% with buckets). The best rank wins.
4. Among ties, GPU jobs take the GPU model pinned jobs want least (exact demand), then
   shares and CPU-only jobs take nodes with fewer GPUs (keep big nodes whole for the
   multi-GPU jobs only they can host), then the state's tie order (`tie_rank`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gpupool.core.models import MILLI_PER_GPU, GpupoolParams, WorkerShape
from gpupool.core.placement.memory import MixTables, PlacementMemory
from gpupool.core.placement.policies import (
    Choice,
    FloatArray,
    IntArray,
    frag_growth,
    frag_model_for,
    idle_gpus,
    sigmoid_score,
)
from gpupool.core.placement.share_plan import SharePlan

if TYPE_CHECKING:
    from gpupool.core.placement.state import PlacementState

_UNFIT = np.iinfo(np.int64).max


def planned_home_slack(state: PlacementState, candidates: IntArray, milli: int, plan: SharePlan) -> IntArray:
    """(candidates x GPUs) milli a share of `milli` would leave on each planned home GPU.

    A planned home is a partly used GPU that the plan marks as a home for `milli`, or that
    the share would leave with less free than the smallest known share. Every other GPU
    gets the largest int64. With an empty plan (no share seen yet) any partly used GPU
    the share fits is a planned home, which makes the rule plain best fit.
    """
    free = state.gpu_free[candidates]
    left = free - milli
    home = (left >= 0) & (free < MILLI_PER_GPU)
    if not plan.empty:
        home &= plan.homes(milli)[free] | (left < plan.min_share)
    slack: IntArray = np.where(home, left, _UNFIT)
    return slack


def gpupool_policy(
    state: PlacementState,
    candidates: IntArray,
    shape: WorkerShape,
    rng: np.random.Generator | None,
    memory: PlacementMemory | None,
    params: GpupoolParams,
) -> Choice | None:
    """Unclaimed models, planned home for a share, best fragmentation rank, ties (module doc)."""
    if len(candidates) == 0:
        return None
    tables = memory.tables() if memory is not None else None
    if params.claim_margin > 0 and shape.gpu_milli > 0 and tables is not None and tables.snapshot.pinned_milli:
        candidates = unclaimed_models(state, candidates, tables, params)
    home_slack: IntArray | None = None
    if shape.is_fractional and params.plan_shares:
        plan = tables.share_plan() if tables is not None else SharePlan({})
        slack = planned_home_slack(state, candidates, shape.gpu_milli, plan)
        node_best = slack.min(axis=1)
        if node_best.min() < _UNFIT:
            keep = np.flatnonzero(node_best == node_best.min())
            candidates, home_slack = candidates[keep], slack[keep]
    model = frag_model_for(state, shape, tables)
    growth, gpu = frag_growth(state, candidates, shape, model)
    rank = _rank(growth, shape, params)
    best = narrow_ties(state, candidates, np.flatnonzero(rank == rank.min()), shape, tables, params)
    pos = int(best[np.argmin(state.tie_rank[candidates[best]])])
    node = int(candidates[pos])
    if home_slack is not None:
        return node, (int(np.argmin(home_slack[pos])),)
    if shape.is_fractional:
        return node, (int(gpu[pos]),)
    return node, idle_gpus(state, node, shape.whole_gpus)


def unclaimed_models(state: PlacementState, candidates: IntArray, tables: MixTables, params: GpupoolParams) -> IntArray:
    """Step 1: the candidates on GPU models pinned jobs do not claim; all when none is left."""
    capacity = state.model_gpus * MILLI_PER_GPU
    free = np.bincount(state.model_id, weights=state.sum_free, minlength=len(state.models))
    unallocated = float(free.sum()) / max(float(capacity.sum()), 1.0)
    models = state.model_id[candidates]
    free_share = (free / np.maximum(capacity, 1.0))[models]
    ratio = tables.pinned(state).ratio[models]
    claimed = free_share <= params.claim_margin * ratio * unallocated
    if claimed.all():
        return candidates
    kept: IntArray = candidates[~claimed]
    return kept


def narrow_ties(
    state: PlacementState,
    candidates: IntArray,
    best: IntArray,
    shape: WorkerShape,
    tables: MixTables | None,
    params: GpupoolParams,
) -> IntArray:
    """Step 4: which of the equally ranked `candidates[best]` stay in the running."""
    if params.spare_pinned_models and shape.gpu_milli > 0 and tables is not None and len(best) > 1:
        demand = np.round(tables.pinned(state).demand[state.model_id[candidates[best]]], 9)
        best = best[demand == demand.min()]
    if params.small_nodes_first and not shape.whole_gpus and len(best) > 1:
        sizes = state.gpu_count[candidates[best]]
        best = best[sizes == sizes.min()]
    return best


def _rank(growth: FloatArray, shape: WorkerShape, params: GpupoolParams) -> FloatArray:
    """Coarse fragmentation rank of each node (lower is better; see step 3)."""
    if shape.is_fractional:
        # Rounded first so float noise cannot split a bucket.
        bucket: FloatArray = np.floor(np.round(growth, 6) / params.growth_bin)
        return bucket
    score: FloatArray = -sigmoid_score(growth).astype(np.float64)
    return score
