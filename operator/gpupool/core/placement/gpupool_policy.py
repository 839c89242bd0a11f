"""gpupool's own placement policy: fragmentation growth, learned online, packed.

Who uses this: `ClusterState.place` for `policy="gpupool"` (and `"default"`, which
resolves to it). The operator keeps one `WorkloadMix` fed with every job it sees; the
trace bench feeds it each pod as it arrives, never the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gpupool.core.models import WorkerShape
from gpupool.core.placement.fragmentation import FragModel
from gpupool.core.placement.mix import MixSnapshot, WorkloadMix
from gpupool.core.placement.policies import (
    BESTFIT_MAX_CPU_MILLI,
    BESTFIT_MAX_GPU_MILLI,
    Choice,
    IntArray,
    frag_growth,
    frag_model_for,
    idle_gpus,
    pick_best,
)

if TYPE_CHECKING:
    from gpupool.core.placement.state import ClusterState


@dataclass(slots=True)
class GpupoolParams:
    """Knobs of the policy (documented in docs/benchmarks.md)."""

    growth_bin: float = 0.0
    pack_weight: float = 0.0
    share_fit_weight: float = 0.0
    gpu_weight_exp: float = 0.0
    sig_scale: float = 0.0
    growth_delta: float = 0.0
    secondary: float = 0.0


PARAMS = GpupoolParams()


_rw_cache: dict[tuple[int, tuple[str, ...], float], tuple[MixSnapshot, FragModel]] = {}


def _reweighted(snapshot: MixSnapshot, models: tuple[str, ...]) -> FragModel:
    key = (id(snapshot), models, PARAMS.gpu_weight_exp)
    hit = _rw_cache.get(key)
    if hit is None or hit[0] is not snapshot:
        _rw_cache.clear()
        hit = (snapshot, FragModel(snapshot.weighted_by_gpu(PARAMS.gpu_weight_exp), models))
        _rw_cache[key] = hit
    return hit[1]


def gpupool_policy(
    state: ClusterState,
    candidates: IntArray,
    shape: WorkerShape,
    rng: np.random.Generator | None,
    mix: WorkloadMix | None,
) -> Choice | None:
    """Least fragmentation growth plus a packing term; ties to the first node in tie order."""
    if len(candidates) == 0:
        return None
    model = frag_model_for(state, shape, mix)
    if PARAMS.gpu_weight_exp:
        model = _reweighted(model.snapshot, state.models)
    if shape.is_fractional:
        free = state.gpu_free[candidates]
        cpu = state.cpu_free[candidates]
        idle = state.idle[candidates]
        models = state.model_id[candidates]
        before = model.node_frag(free, cpu, idle, models)
        after = model.frag_after_share(free, cpu - shape.cpu_milli, idle, models, shape.gpu_milli)
        per_gpu = after - before[:, None]
        if PARAMS.share_fit_weight:
            per_gpu = per_gpu + PARAMS.share_fit_weight * (free - shape.gpu_milli)
        if PARAMS.sig_scale:
            q = np.floor(100.0 / (1.0 + np.exp(np.clip(per_gpu / PARAMS.sig_scale, -60, 60))))
            gpu = np.argmax(np.where(np.isfinite(per_gpu), q, -1), axis=1)
        else:
            gpu = np.argmin(per_gpu, axis=1)
        growth = per_gpu[np.arange(len(candidates)), gpu]
    else:
        growth, gpu = frag_growth(state, candidates, shape, model)
    if PARAMS.sig_scale:
        growth = -np.floor(100.0 / (1.0 + np.exp(np.clip(growth / PARAMS.sig_scale, -60, 60))))
    elif PARAMS.growth_delta > 0:
        growth = np.where(growth <= growth.min() + PARAMS.growth_delta, 0.0, growth)
    elif PARAMS.growth_bin > 0:
        growth = np.floor(growth / PARAMS.growth_bin) * PARAMS.growth_bin
    cpu_left = state.cpu_free[candidates] - shape.cpu_milli
    gpu_left = state.sum_free[candidates] - shape.gpu_milli
    tightness = 0.5 * cpu_left / BESTFIT_MAX_CPU_MILLI + 0.5 * gpu_left / BESTFIT_MAX_GPU_MILLI
    score = -(np.round(growth, 6) + PARAMS.pack_weight * tightness)
    sec = int(PARAMS.secondary)
    if sec:
        g = state.gpu_count[candidates].astype(np.float64)
        cpg = state.cpu_capacity[candidates] / np.maximum(g, 1)
        key = {1: -g, 2: g, 3: cpg, 4: -cpg, 5: state.sum_free[candidates] / np.maximum(g, 1),
               6: -state.sum_free[candidates] / np.maximum(g, 1),
               7: -g * 10 - state.sum_free[candidates] / np.maximum(g, 1) / 1000,
               8: -g * 10 - state.cpu_free[candidates] / state.cpu_capacity[candidates],
               9: -state.cpu_free[candidates] / state.cpu_capacity[candidates]}[sec]
        key = (key - key.min()) / (np.ptp(key) + 1e-9) * 0.5
        score = score + key
    pos = pick_best(state, candidates, score)
    node = int(candidates[pos])
    if shape.is_fractional:
        return node, (int(gpu[pos]),)
    return node, idle_gpus(state, node, shape.whole_gpus)
