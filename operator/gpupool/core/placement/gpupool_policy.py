"""gpupool's own placement policy: planned share packing over fragmentation-aware nodes.

Who uses this: `ClusterState.place` for `policy="gpupool"` (and `"default"`, which
resolves to it). The operator keeps one `WorkloadMix` fed with every job it sees; the
trace bench feeds it each pod as it arrives, never the future. Everything the policy
knows comes from that mix and the cluster state.

How it decides, per worker (parameters in `GpupoolParams`, measured in
docs/benchmarks.md):
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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gpupool.core.models import MILLI_PER_GPU, WorkerShape
from gpupool.core.placement.mix import MixSnapshot, WorkloadMix
from gpupool.core.placement.pinned_demand import pinned_demand_per_node, pinned_ratio
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
    from gpupool.core.placement.state import ClusterState


@dataclass(frozen=True, slots=True)
class GpupoolParams:
    """Knobs of the policy; see docs/benchmarks.md for how they were chosen."""

    # Step 1: a model is claimed while its free share <= claim_margin x pinned ratio x
    # the cluster's unallocated share; 0 turns step 1 off.
    claim_margin: float = 1.5
    # Shares go to their planned homes first (step 2).
    plan_shares: bool = True
    # Width (milli-GPU) of the growth buckets that count as equally good for shares (step 3).
    growth_bin: float = 100.0
    # Ties: GPU jobs prefer the models that model-pinned jobs need least (step 4).
    spare_pinned_models: bool = True
    # Ties: shares and CPU-only jobs prefer nodes with fewer GPUs (step 4). Whole-GPU jobs
    # do not: whole-GPU-heavy mixes lost about 0.05 points to it.
    small_nodes_first: bool = True


PARAMS = GpupoolParams()

_UNFIT = np.iinfo(np.int64).max


class _MixDerived:
    """The share plan and pinned demand of one mix snapshot, cached until the next one."""

    def __init__(self) -> None:
        self._snapshot: MixSnapshot | None = None
        self._plan = SharePlan({})
        self._nodes: object = None
        self._demand: FloatArray | None = None
        self._ratio: FloatArray | None = None

    def _refresh(self, snapshot: MixSnapshot) -> None:
        # Holding the snapshot itself (not its id) keeps the identity check sound.
        if snapshot is not self._snapshot:
            self._snapshot = snapshot
            self._plan = SharePlan.from_counts(dict(snapshot.share_counts))
            self._demand = None

    def plan(self, snapshot: MixSnapshot) -> SharePlan:
        self._refresh(snapshot)
        return self._plan

    def pinned_demand(self, snapshot: MixSnapshot, state: ClusterState) -> FloatArray:
        self._refresh(snapshot)
        if self._demand is None or self._nodes is not state.nodes:
            self._demand = pinned_demand_per_node(snapshot, state.models, state.model_id, state.gpu_count)
            self._ratio = pinned_ratio(self._demand, snapshot, state.gpu_count)
            self._nodes = state.nodes
        return self._demand

    def pinned_ratio(self, snapshot: MixSnapshot, state: ClusterState) -> FloatArray:
        self.pinned_demand(snapshot, state)
        assert self._ratio is not None
        return self._ratio


_derived = _MixDerived()


def planned_home_slack(state: ClusterState, candidates: IntArray, milli: int, plan: SharePlan) -> IntArray:
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
    state: ClusterState,
    candidates: IntArray,
    shape: WorkerShape,
    rng: np.random.Generator | None,
    mix: WorkloadMix | None,
) -> Choice | None:
    """Unclaimed models, planned home for a share, best fragmentation rank, ties (module doc)."""
    if len(candidates) == 0:
        return None
    snapshot = mix.snapshot() if mix is not None else None
    if PARAMS.claim_margin > 0 and shape.gpu_milli > 0 and snapshot is not None and snapshot.pinned_milli:
        candidates = unclaimed_models(state, candidates, snapshot)
    home_slack: IntArray | None = None
    if shape.is_fractional and PARAMS.plan_shares:
        plan = _derived.plan(snapshot) if snapshot is not None else SharePlan({})
        slack = planned_home_slack(state, candidates, shape.gpu_milli, plan)
        node_best = slack.min(axis=1)
        if node_best.min() < _UNFIT:
            keep = np.flatnonzero(node_best == node_best.min())
            candidates, home_slack = candidates[keep], slack[keep]
    model = frag_model_for(state, shape, mix)
    growth, gpu = frag_growth(state, candidates, shape, model)
    rank = _rank(growth, shape)
    best = narrow_ties(state, candidates, np.flatnonzero(rank == rank.min()), shape, snapshot)
    pos = int(best[np.argmin(state.tie_rank[candidates[best]])])
    node = int(candidates[pos])
    if home_slack is not None:
        return node, (int(np.argmin(home_slack[pos])),)
    if shape.is_fractional:
        return node, (int(gpu[pos]),)
    return node, idle_gpus(state, node, shape.whole_gpus)


def unclaimed_models(state: ClusterState, candidates: IntArray, snapshot: MixSnapshot) -> IntArray:
    """Step 1: the candidates on GPU models pinned jobs do not claim; all when none is left."""
    capacity = state.model_gpus * MILLI_PER_GPU
    free = np.bincount(state.model_id, weights=state.sum_free, minlength=len(state.models))
    unallocated = float(free.sum()) / max(float(capacity.sum()), 1.0)
    free_share = (free / np.maximum(capacity, 1.0))[state.model_id[candidates]]
    ratio = _derived.pinned_ratio(snapshot, state)[candidates]
    claimed = free_share <= PARAMS.claim_margin * ratio * unallocated
    if claimed.all():
        return candidates
    kept: IntArray = candidates[~claimed]
    return kept


def narrow_ties(
    state: ClusterState, candidates: IntArray, best: IntArray, shape: WorkerShape, snapshot: MixSnapshot | None
) -> IntArray:
    """Step 4: which of the equally ranked `candidates[best]` stay in the running."""
    if PARAMS.spare_pinned_models and shape.gpu_milli > 0 and snapshot is not None and len(best) > 1:
        demand = np.round(_derived.pinned_demand(snapshot, state)[candidates[best]], 9)
        best = best[demand == demand.min()]
    if PARAMS.small_nodes_first and not shape.whole_gpus and len(best) > 1:
        sizes = state.gpu_count[candidates[best]]
        best = best[sizes == sizes.min()]
    return best


def _rank(growth: FloatArray, shape: WorkerShape) -> FloatArray:
    """Coarse fragmentation rank of each node (lower is better; see step 3)."""
    if shape.is_fractional:
        # Rounded first so float noise cannot split a bucket.
        bucket: FloatArray = np.floor(np.round(growth, 6) / PARAMS.growth_bin)
        return bucket
    score: FloatArray = -sigmoid_score(growth).astype(np.float64)
    return score
