"""Per-GPU allocation of a cluster as numpy arrays, and gang placement over it.

Who uses this: the scheduling core builds one `PlacementState` per cycle from the snapshot
(`PlacementState.build(nodes, running)`), asks `place` for every job it tries to admit and
`allocate`s what it admits so later jobs see it; preemption what-ifs `release` victims and
undo. The trace bench (`gpupool.sim.replay`) drives the very same object.

Layout: node i has `gpu_free[i, g]` milli free on GPU g; rows are padded with 0 up to the
largest GPU count, and a padded slot behaves like a fully used GPU (it can host nothing
and adds nothing to any sum), so no separate "exists" mask is needed. Per-node
aggregates (idle GPUs, largest free slot, total free) are kept in step by `_refresh`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from gpupool.core.models import (
    DEFAULT_GPUPOOL_PARAMS,
    MILLI_PER_GPU,
    GpuNode,
    GpupoolParams,
    GpuSlice,
    Job,
    WorkerPlacement,
    WorkerShape,
)
from gpupool.core.placement.memory import PlacementMemory
from gpupool.core.placement.pinned_demand import FloatArray, gpus_per_model
from gpupool.core.placement.policies import Choice
from gpupool.core.placement.registry import DEFAULT_SCORING_POLICY, resolve_scoring_policy

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class PlacementError(ValueError):
    """A placement does not fit the state it is applied to (a caller bug, not a wait)."""


class PlacementState:
    """Mutable per-GPU view of a cluster; `place` never mutates it, `allocate` does."""

    def __init__(self, nodes: Sequence[GpuNode]) -> None:
        self.nodes: tuple[GpuNode, ...] = tuple(nodes)
        self.node_names: tuple[str, ...] = tuple(n.name for n in self.nodes)
        self._index: dict[str, int] = {name: i for i, name in enumerate(self.node_names)}
        if len(self._index) != len(self.nodes):
            raise ValueError("node names must be unique")
        n = len(self.nodes)
        width = max((node.gpus for node in self.nodes), default=0)
        self.gpu_count: IntArray = np.array([node.gpus for node in self.nodes], dtype=np.int64)
        self.gpu_free: IntArray = np.zeros((n, max(width, 1)), dtype=np.int64)
        for i, node in enumerate(self.nodes):
            self.gpu_free[i, : node.gpus] = MILLI_PER_GPU
        self.cpu_capacity: IntArray = np.array([node.cpu_milli for node in self.nodes], dtype=np.int64)
        self.memory_capacity: IntArray = np.array([node.memory_bytes for node in self.nodes], dtype=np.int64)
        self.cpu_free: IntArray = self.cpu_capacity - np.array(
            [node.reserved_cpu_milli for node in self.nodes], dtype=np.int64
        )
        self.memory_free: IntArray = self.memory_capacity - np.array(
            [node.reserved_memory_bytes for node in self.nodes], dtype=np.int64
        )
        # Pods each node can still take (every worker is one pod; foreign pods hold theirs).
        self.pods_free: IntArray = np.array([node.max_pods - node.reserved_pods for node in self.nodes], dtype=np.int64)
        self.ready: BoolArray = np.array([node.ready for node in self.nodes], dtype=np.bool_)
        # Nodes that can give a share its GPU (`GpuNode.accepts_shares`); shares go nowhere else.
        self.accepts_shares: BoolArray = np.array([node.accepts_shares for node in self.nodes], dtype=np.bool_)
        self.models: tuple[str, ...] = tuple(sorted({node.gpu_model for node in self.nodes}))
        model_pos = {m: k for k, m in enumerate(self.models)}
        self.model_id: IntArray = np.array([model_pos[node.gpu_model] for node in self.nodes], dtype=np.int64)
        # GPUs of each model (static, like the capacities above; policies read it per placement).
        self.model_gpus: FloatArray = gpus_per_model(self.model_id, self.gpu_count, len(self.models))
        self.idle: IntArray = np.zeros(n, dtype=np.int64)
        self.max_free: IntArray = np.zeros(n, dtype=np.int64)
        self.sum_free: IntArray = np.zeros(n, dtype=np.int64)
        self._refresh(np.arange(n))
        self._model_masks: dict[tuple[str, ...], BoolArray] = {}
        # Among equally good nodes, policies take the one with the lowest rank.
        self.tie_rank: IntArray = np.arange(n, dtype=np.int64)

    # ----------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        nodes: Sequence[GpuNode],
        running: Iterable[Job] = (),
        *,
        tie_rank: Sequence[int] | IntArray | None = None,
    ) -> PlacementState:
        """State of `nodes` with the placements of `running` jobs applied.

        Placements on nodes that are not in `nodes` (deleted since) are skipped: the
        capacity they held is gone with the node. `tie_rank[i]` orders node i among
        equally good choices (default: the order of `nodes`).
        """
        state = cls(nodes)
        if tie_rank is not None:
            if len(tie_rank) != len(state.nodes):
                raise ValueError("tie_rank needs one entry per node")
            state.tie_rank = np.asarray(tie_rank, dtype=np.int64)
        for job in running:
            known = tuple(p for p in job.placements if p.node in state._index)
            if known:
                try:
                    state.allocate(known, job.shape)
                except PlacementError:
                    state._hold_over_committed(known, job.shape)
        state._hold_reserved_gpus()
        return state

    def _hold_over_committed(self, placements: Sequence[WorkerPlacement], shape: WorkerShape) -> None:
        """Count placements that no longer fit where they say (a node's device report put
        another holder on a GPU a not yet reported worker was planned on): each slice that
        does not fit its index is held on another GPU with room (a whole GPU on the first
        idle one), so the node's free GPUs still count what is held; only when none has room
        is it taken down to nothing left (never below). The cycle never fails on it, and the
        next report, or the status patched from it, settles the indices."""
        for p in placements:
            i = self._index[p.node]
            count = int(self.gpu_count[i])
            row = self.gpu_free[i]
            for s in p.gpus:
                index = s.index if 0 <= s.index < count and row[s.index] >= s.milli else None
                if index is None:
                    whole = np.flatnonzero(row[:count] == MILLI_PER_GPU)
                    room = whole if s.milli >= MILLI_PER_GPU and len(whole) else np.flatnonzero(row[:count] >= s.milli)
                    index = int(room[0]) if len(room) else (s.index if 0 <= s.index < count else None)
                if index is not None:
                    row[index] = max(0, int(row[index]) - s.milli)
            self.cpu_free[i] = max(0, int(self.cpu_free[i]) - shape.cpu_milli)
            self.memory_free[i] = max(0, int(self.memory_free[i]) - shape.memory_bytes)
            self.pods_free[i] = max(0, int(self.pods_free[i]) - 1)
            self._refresh(np.array([i]))

    def _hold_reserved_gpus(self) -> None:
        """Take each node's `reserved_gpus` (whole GPUs held by pods gpupool does not manage)
        out of the free vector. Those the node reports (`reserved_gpu_indices`, from its
        device report) are held where the report says; the rest, whose indices gpupool
        cannot know, by the fallback rule: the first fully idle GPUs, then, if the node is
        over-committed already, the first GPUs with anything free left."""
        touched = []
        for i, node in enumerate(self.nodes):
            left = min(node.reserved_gpus, node.gpus)
            if left <= 0 and not node.reserved_gpu_indices:
                continue
            row = self.gpu_free[i, : node.gpus]
            for index in sorted(set(node.reserved_gpu_indices)):
                if 0 <= index < node.gpus:
                    row[index] = 0
                    left -= 1
            order = [*np.flatnonzero(row == MILLI_PER_GPU), *np.flatnonzero((row > 0) & (row < MILLI_PER_GPU))]
            for index in order[: max(0, left)]:
                row[index] = 0
            touched.append(i)
        if touched:
            self._refresh(np.array(touched, dtype=np.int64))

    def copy(self) -> PlacementState:
        """An independent copy (for what-ifs that must not touch the original)."""
        other = object.__new__(PlacementState)
        other.__dict__.update(self.__dict__)
        for name in ("gpu_free", "cpu_free", "memory_free", "pods_free", "idle", "max_free", "sum_free"):
            setattr(other, name, getattr(self, name).copy())
        other._model_masks = dict(self._model_masks)
        return other

    # ------------------------------------------------------------------ lookups
    def index_of(self, name: str) -> int:
        """Row of node `name` in every per-node array and mask."""
        return self._index[name]

    def model_mask(self, models: Sequence[str]) -> BoolArray:
        """Nodes whose GPU model is one of `models` (empty = every node). Cached; do not mutate."""
        key = tuple(sorted(models))
        mask = self._model_masks.get(key)
        if mask is None:
            if not key:
                mask = np.ones(len(self.nodes), dtype=np.bool_)
            else:
                wanted = np.array([m in key for m in self.models], dtype=np.bool_)
                mask = wanted[self.model_id] if len(self.models) else np.zeros(0, dtype=np.bool_)
            mask.setflags(write=False)
            self._model_masks[key] = mask
        return mask

    def free_milli_total(self) -> int:
        """Free milli-GPU over all nodes (for messages)."""
        return int(self.sum_free.sum())

    def idle_gpus_total(self) -> int:
        """Fully idle GPUs over all nodes (for messages)."""
        return int(self.idle.sum())

    def fits_anywhere(self, shape: WorkerShape, allowed: BoolArray | None = None) -> bool:
        """True if one worker of `shape` would fit some allowed, ready node when it was empty.

        Tells "no node could ever host this" (a spec problem) apart from "capacity is busy".
        """
        mask = self.ready.copy()
        if allowed is not None:
            mask &= allowed
        mask &= self.cpu_capacity >= shape.cpu_milli
        mask &= self.memory_capacity >= shape.memory_bytes
        if shape.gpu_milli > 0:
            mask &= self.gpu_count >= max(shape.whole_gpus, 1)
        if shape.is_fractional:
            mask &= self.accepts_shares
        return bool(mask.any())

    # ---------------------------------------------------------------- placement
    def feasible(self, shape: WorkerShape, base: BoolArray) -> IntArray:
        """Indices of nodes in `base` where one worker of `shape` fits right now."""
        mask = base & (self.cpu_free >= shape.cpu_milli) & (self.memory_free >= shape.memory_bytes)
        mask &= self.pods_free >= 1
        if shape.gpu_milli >= MILLI_PER_GPU:
            mask &= self.idle >= shape.whole_gpus
        elif shape.gpu_milli > 0:
            mask &= (self.max_free >= shape.gpu_milli) & self.accepts_shares
        return np.flatnonzero(mask)

    def place(
        self,
        job: Job,
        *,
        allowed: BoolArray | None = None,
        scoring_policy: str = DEFAULT_SCORING_POLICY,
        gpupool_params: GpupoolParams = DEFAULT_GPUPOOL_PARAMS,
        rng: np.random.Generator | None = None,
        memory: PlacementMemory | None = None,
    ) -> tuple[WorkerPlacement, ...] | None:
        """Where every worker of `job` would run, or None if the whole gang cannot fit.

        Honours node readiness, `job.gpu_models`, cpu, memory, pod count and GPU fit, and the caller's
        `allowed` mask (taints, pool policy and quota flavors are the caller's business).
        Workers are placed one after another, each seeing the ones before it, so several
        may share a node; `scoring_policy` (a `SCORING_POLICY_NAMES` entry) picks each
        worker's node, scoring against the mix `memory` learned (None: nothing learned).
        The state is left exactly as it was; `memory` only caches tables it derives.
        """
        chooser = resolve_scoring_policy(scoring_policy)
        base = self.ready & self.model_mask(job.gpu_models)
        if allowed is not None:
            base = base & allowed
        shape = job.shape
        if job.workers == 1:
            choice = chooser(self, self.feasible(shape, base), shape, rng, memory, gpupool_params)
            return None if choice is None else (self._to_placement(0, choice, shape),)
        placed: list[WorkerPlacement] = []
        try:
            for worker in range(job.workers):
                choice = chooser(self, self.feasible(shape, base), shape, rng, memory, gpupool_params)
                if choice is None:
                    return None
                placement = self._to_placement(worker, choice, shape)
                self._apply(choice[0], placement.gpus, shape, sign=-1)
                placed.append(placement)
            return tuple(placed)
        finally:
            # Undo the tentative allocations in reverse order (all-or-nothing, no mutation).
            for placement in reversed(placed):
                self._apply(self._index[placement.node], placement.gpus, shape, sign=+1)

    def allocate(self, placements: Iterable[WorkerPlacement], shape: WorkerShape) -> None:
        """Apply (assume) `placements` of workers of `shape`; raises PlacementError if they do not fit."""
        done: list[tuple[int, tuple[GpuSlice, ...]]] = []
        try:
            for p in placements:
                i = self._index[p.node]
                self._apply(i, p.gpus, shape, sign=-1)
                done.append((i, p.gpus))
        except PlacementError:
            for i, gpus in reversed(done):
                self._apply(i, gpus, shape, sign=+1)
            raise

    def release(self, placements: Iterable[WorkerPlacement], shape: WorkerShape) -> None:
        """Undo `allocate` for these placements (a finished job or a preemption what-if)."""
        for p in placements:
            self._apply(self._index[p.node], p.gpus, shape, sign=+1)

    # ---------------------------------------------------------------- internals
    def _to_placement(self, worker: int, choice: Choice, shape: WorkerShape) -> WorkerPlacement:
        node, gpu_indices = choice
        per_gpu = shape.gpu_milli if shape.is_fractional else MILLI_PER_GPU
        return WorkerPlacement(
            worker=worker,
            node=self.node_names[node],
            gpus=tuple(GpuSlice(int(g), per_gpu) for g in gpu_indices),
        )

    def _apply(self, i: int, gpus: Sequence[GpuSlice], shape: WorkerShape, sign: int) -> None:
        """Add (`sign` +1) or take (-1) one worker's resources on node row `i`."""
        cpu = self.cpu_free[i] + sign * shape.cpu_milli
        mem = self.memory_free[i] + sign * shape.memory_bytes
        pods = self.pods_free[i] + sign
        row = self.gpu_free[i].copy()
        for s in gpus:
            if not 0 <= s.index < self.gpu_count[i]:
                raise PlacementError(f"node {self.node_names[i]} has no GPU {s.index}")
            row[s.index] += sign * s.milli
        if sign < 0 and (cpu < 0 or mem < 0 or pods < 0 or (row < 0).any()):
            raise PlacementError(f"placement over-allocates node {self.node_names[i]}")
        if sign > 0 and (row > MILLI_PER_GPU).any():
            raise PlacementError(f"release frees more than node {self.node_names[i]} holds")
        self.cpu_free[i] = cpu
        self.memory_free[i] = mem
        self.pods_free[i] = pods
        self.gpu_free[i] = row
        self._refresh(np.array([i]))

    def _refresh(self, rows: IntArray) -> None:
        """Recompute the per-node aggregates of `rows` from `gpu_free`."""
        block = self.gpu_free[rows]
        self.idle[rows] = (block == MILLI_PER_GPU).sum(axis=1)
        self.max_free[rows] = block.max(axis=1)
        self.sum_free[rows] = block.sum(axis=1)


__all__ = ["PlacementError", "PlacementState"]
