"""gpupool's own placement policy: fragmentation growth learned online, small nodes first.

Who uses this: `ClusterState.place` for `policy="gpupool"` (and `"default"`, which
resolves to it). The operator keeps one `WorkloadMix` fed with every job it sees; the
trace bench feeds it each pod as it arrives, never the future.

How it decides, per worker (parameters in `GpupoolParams`, measured in
docs/benchmarks.md):
1. Fragmentation growth (FGD's measure, `fragmentation.py`) of every fitting node under
   the mix *learned so far*; for a share, the GPU of the node with the least growth.
2. Growth is bucketed (`growth_bin` milli). What we learned on the openb trace: exact
   growth is a poor criterion (5.8% unallocated vs 4.8% bucketed), because nodes whose
   growth differs by a few milli are equally good, and choosing between them by noise
   spreads work over many nodes. Within a bucket a *consistent* order packs instead.
3. Within the best bucket: nodes with fewer GPUs first (keep big nodes whole for the
   multi-GPU jobs only they can host), then the state's tie order (`tie_rank`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gpupool.core.models import WorkerShape
from gpupool.core.placement.mix import WorkloadMix
from gpupool.core.placement.policies import Choice, IntArray, frag_growth, frag_model_for, idle_gpus

if TYPE_CHECKING:
    from gpupool.core.placement.state import ClusterState


@dataclass(frozen=True, slots=True)
class GpupoolParams:
    """Knobs of the policy; see docs/benchmarks.md for how they were chosen."""

    # Width (milli-GPU) of the fragmentation-growth buckets that count as equally good.
    growth_bin: float = 100.0
    # Within the best bucket, prefer nodes with fewer GPUs.
    small_nodes_first: bool = True


PARAMS = GpupoolParams()


def gpupool_policy(
    state: ClusterState,
    candidates: IntArray,
    shape: WorkerShape,
    rng: np.random.Generator | None,
    mix: WorkloadMix | None,
) -> Choice | None:
    """Best fragmentation bucket, then fewest GPUs, then tie order (see module doc)."""
    if len(candidates) == 0:
        return None
    model = frag_model_for(state, shape, mix)
    growth, gpu = frag_growth(state, candidates, shape, model)
    bucket = np.floor(np.round(growth, 6) / PARAMS.growth_bin)
    best = np.flatnonzero(bucket == bucket.min())
    if PARAMS.small_nodes_first and len(best) > 1:
        sizes = state.gpu_count[candidates[best]]
        best = best[sizes == sizes.min()]
    pos = int(best[np.argmin(state.tie_rank[candidates[best]])])
    node = int(candidates[pos])
    if shape.is_fractional:
        return node, (int(gpu[pos]),)
    return node, idle_gpus(state, node, shape.whole_gpus)
