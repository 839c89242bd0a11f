"""GPU fragmentation of nodes against a workload mix, vectorised over nodes.

Who uses this: the `fgd` and `gpupool` scoring policies, which put a worker where it
raises fragmentation least (FGD, Weng et al., USENIX ATC '23); `MixTables.frag_model`
(`memory.py`) builds one `FragModel` per mix snapshot and cluster GPU-model list.

Definition (the paper's): for a request type t and a node, the fragment is the free GPU
milli that t cannot use. If t cannot run on the node at all (wrong GPU model, not enough
cpu, not enough GPU), every free milli is a fragment; otherwise the free milli of the GPUs
too small for it is (a share d cannot use a GPU with less than d free; a whole-GPU type
cannot use a partly used GPU). A CPU-only type uses no GPU, so to it all free GPU is a
fragment. The node's fragmentation is the expectation over the mix.

Rewritten so it vectorises: with U(f) = probability that a type drawn from the mix runs on
the node *and* can use a GPU that has f free,
    F(node) = sum_g f_g - sum_g f_g * U(f_g).
U is a step function of f whose steps are the distinct per-GPU thresholds of the types
(share sizes and 1000), so per node it is a cumulative sum over thresholds, and looking it
up for every GPU is one `searchsorted` plus one gather. Everything is (nodes x GPUs) or
(nodes x types) arrays; no Python loop per node.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gpupool.core.models import MILLI_PER_GPU
from gpupool.core.placement.mix import MixSnapshot

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class FragModel:
    """A mix snapshot prepared for scoring nodes of one cluster (its GPU model list).

    Which types can run on a node depends only on (GPU model, idle GPU count, cpu free);
    cpu matters only through how many of the types' distinct cpu requests it covers. So
    the usable-probability step function U is precomputed for every combination
    (`_table`, one row per combination, one column per threshold interval) and scoring a
    node is a row lookup plus a per-GPU column lookup.
    """

    def __init__(self, snapshot: MixSnapshot, models: tuple[str, ...]) -> None:
        self.snapshot = snapshot
        n_types = len(snapshot)
        n_models = max(len(models), 1)
        # access[m, k]: type k may run on GPU model m.
        access = np.ones((n_models, n_types), dtype=np.float64)
        for k, t in enumerate(snapshot.types):
            if t.gpu_models:
                access[: len(models), k] = [m in t.gpu_models for m in models]
        finite = np.isfinite(snapshot.threshold)
        self.thresholds: FloatArray = np.unique(snapshot.threshold[finite])
        # onehot[k, j]: type k's per-GPU threshold is thresholds[j] (CPU-only types: none).
        onehot = np.zeros((n_types, len(self.thresholds)), dtype=np.float64)
        onehot[np.flatnonzero(finite), np.searchsorted(self.thresholds, snapshot.threshold[finite])] = 1.0
        self._cpu_levels: IntArray = np.unique(snapshot.cpu_milli)
        cpu_rank_needed = np.searchsorted(self._cpu_levels, snapshot.cpu_milli)  # (K,)
        self._idle_cap = int(snapshot.need_idle.max(initial=0))
        idle_levels = np.arange(self._idle_cap + 1)
        cpu_ranks = np.arange(len(self._cpu_levels) + 1)
        # ok[k, i, r]: a node with i idle GPUs covering r cpu levels gives type k enough.
        ok = (snapshot.need_idle[:, None, None] <= idle_levels[None, :, None]) & (
            cpu_rank_needed[:, None, None] < cpu_ranks[None, None, :]
        )
        weighted = access * snapshot.weight  # (M, K)
        per_threshold = np.einsum("mk,kir,kj->mirj", weighted, ok.astype(np.float64), onehot)
        table = np.zeros((*per_threshold.shape[:3], len(self.thresholds) + 1), dtype=np.float64)
        np.cumsum(per_threshold, axis=3, out=table[..., 1:])
        self._n_idle = self._idle_cap + 1
        self._n_cpu = len(cpu_ranks)
        self._width = len(self.thresholds) + 1
        self._flat = table.reshape(-1)
        # Column of U for every possible free milli 0..1000 (a gather beats searchsorted).
        self._col_of_free: IntArray = np.searchsorted(
            self.thresholds, np.arange(MILLI_PER_GPU + 1), side="right"
        ).astype(np.int64)

    def rows(self, cpu: IntArray, idle: IntArray, model_id: IntArray) -> IntArray:
        """Flat offset of each node's U row in the table (from its model, idle, cpu)."""
        rank = np.searchsorted(self._cpu_levels, cpu, side="right")
        i = np.clip(idle, 0, self._idle_cap)
        row: IntArray = ((model_id * self._n_idle + i) * self._n_cpu + rank) * self._width
        return row

    def usable(self, rows: IntArray, free: IntArray) -> FloatArray:
        """U(f) for each GPU of each node: the chance a typical request runs there and can use it."""
        used: FloatArray = self._flat[rows[:, None] + self._col_of_free[free]]
        return used

    def node_frag(self, free: IntArray, cpu: IntArray, idle: IntArray, model_id: IntArray) -> FloatArray:
        """Expected fragment (milli) of each node given its GPUs' free milli."""
        u = self.usable(self.rows(cpu, idle, model_id), free)
        frag: FloatArray = (free * (1.0 - u)).sum(axis=1)
        return frag

    def frag_after_whole(
        self, free: IntArray, cpu_after: IntArray, idle: IntArray, model_id: IntArray, gpus: int
    ) -> FloatArray:
        """Fragment of each node after taking its `gpus` lowest-numbered idle GPUs."""
        after = free
        if gpus > 0:
            is_idle = free == MILLI_PER_GPU
            taken = is_idle & (np.cumsum(is_idle, axis=1) <= gpus)
            after = np.where(taken, 0, free)
        return self.node_frag(after, cpu_after, idle - gpus, model_id)

    def frag_after_share(
        self, free: IntArray, cpu_after: IntArray, idle: IntArray, model_id: IntArray, milli: int
    ) -> FloatArray:
        """(nodes x GPUs): fragment of the node after putting a `milli` share on that GPU.

        +inf where the GPU has less than `milli` free. Only whole-GPU types care about the
        idle count, and they can only use idle GPUs, so taking the share from an idle GPU
        changes U at f = 1000 alone: that case is a per-node correction, not a second
        (nodes x GPUs) pass.
        """
        rows = self.rows(cpu_after, idle, model_id)
        rows_less = self.rows(cpu_after, idle - 1, model_id)
        full_col = self._col_of_free[MILLI_PER_GPU]
        u_full = self._flat[rows + full_col]
        u_full_less = self._flat[rows_less + full_col]
        rest = free - milli
        u_now = self._flat[rows[:, None] + self._col_of_free[free]]
        u_rest = self._flat[rows[:, None] + self._col_of_free[np.maximum(rest, 0)]]
        used_now = (free * u_now).sum(axis=1)
        total_after = free.sum(axis=1) - milli
        # Share on a GPU that is not idle: only that GPU's usable milli changes.
        result: FloatArray = (total_after - used_now)[:, None] + free * u_now - rest * u_rest
        # Share on an idle GPU: the other idle GPUs now see the node with one idle fewer.
        used_less = used_now - (idle - 1) * MILLI_PER_GPU * (u_full - u_full_less) - MILLI_PER_GPU * u_full
        rest_full = MILLI_PER_GPU - milli
        u_rest_full = self._flat[rows + self._col_of_free[rest_full]]
        from_idle = total_after - used_less - rest_full * u_rest_full
        result = np.where(free == MILLI_PER_GPU, from_idle[:, None], result).astype(np.float64)
        result[rest < 0] = np.inf
        return result
