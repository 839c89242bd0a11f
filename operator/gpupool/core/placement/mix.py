"""The workload mix: how often each kind of worker request turns up.

Who uses this: fragmentation-aware scoring policies (`fgd`, `gpupool`) score a node by
how much of its free GPU a *typical* request could still use, so they need the
distribution of typical requests. It lives in a `PlacementMemory` (`memory.py`): each
scheduling cycle (`gpupool.core.schedule`) feeds it every job of its snapshot that the
memory has not seen before (`PlacementMemory.observe_jobs`, which calls
`WorkloadMix.observe`); the trace bench (`gpupool.sim.replay`) feeds it each pod as it
arrives. Either way the distribution is learned online, from the past only, and carried
from cycle to cycle only if the caller passes the memory on (`Decisions.memory`).

A request type is (milli-GPU per worker, cpu, allowed GPU models). Memory is left out on
purpose, as in the FGD paper: it rarely limits GPU nodes and every extra key dimension
splits the popularity counts into noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpupool.core.models import MILLI_PER_GPU, WorkerShape

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Request types are kept while they cover this share of all observed weight (most
# popular first), like the paper's "typical pods" (it keeps the types that make up 95%).
DEFAULT_COVERAGE = 0.95
# A snapshot is rebuilt when the observed weight has grown by this fraction since the
# last one: popularity moves slowly, and rebuilding for every single arrival would cost
# more than the placement itself.
REBUILD_GROWTH = 0.01


@dataclass(frozen=True, slots=True)
class RequestType:
    """One kind of worker request: the unit the mix counts."""

    gpu_milli: int
    cpu_milli: int
    gpu_models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MixSnapshot:
    """The typical request types as arrays, ready for vectorised scoring.

    `threshold[k]` is the free milli a single GPU must have to be usable by type k
    (its share, 1000 for whole-GPU types, +inf for CPU-only types whose use of a GPU is
    nil); `need_idle[k]` is how many fully idle GPUs it needs (0 for shares);
    `weight[k]` its probability (sums to 1). Two summaries keep the rare types the
    coverage cut drops: `share_counts` counts every share size (milli-GPU below one GPU)
    observed, for share packing plans; `pinned_milli` gives, per set of allowed GPU
    models, the milli-GPU per observed worker that is pinned to exactly that set, and
    `milli_per_worker` the milli-GPU per observed worker over all of them.
    """

    types: tuple[RequestType, ...]
    weight: FloatArray
    threshold: FloatArray
    need_idle: IntArray
    cpu_milli: IntArray
    share_counts: tuple[tuple[int, float], ...] = ()
    pinned_milli: tuple[tuple[tuple[str, ...], float], ...] = ()
    milli_per_worker: float = 0.0

    def __len__(self) -> int:
        return len(self.types)


class WorkloadMix:
    """Counts of request types seen so far, with a cached snapshot of the typical ones."""

    __slots__ = ("_counts", "_coverage", "_snapshot", "_snapshot_total", "_total", "version")

    def __init__(self, coverage: float = DEFAULT_COVERAGE) -> None:
        self._counts: dict[RequestType, float] = {}
        self._total = 0.0
        self._coverage = coverage
        self._snapshot: MixSnapshot | None = None
        self._snapshot_total = 0.0
        # Bumped whenever a new snapshot is built; `PlacementMemory.tables` follows it.
        self.version = 0

    @property
    def total(self) -> float:
        """Total observed weight (workers counted)."""
        return self._total

    def observe(self, shape: WorkerShape, count: int = 1, gpu_models: Sequence[str] = ()) -> None:
        """Record `count` workers of `shape` (restricted to `gpu_models`, empty = any)."""
        if count <= 0:
            return
        key = RequestType(shape.gpu_milli, shape.cpu_milli, tuple(sorted(gpu_models)))
        self._counts[key] = self._counts.get(key, 0.0) + count
        self._total += count

    def copy(self) -> WorkloadMix:
        """An independent copy (counts copied; the current snapshot, never changed, shared)."""
        other = WorkloadMix(self._coverage)
        other._counts = dict(self._counts)
        other._total = self._total
        other._snapshot = self._snapshot
        other._snapshot_total = self._snapshot_total
        other.version = self.version
        return other

    def snapshot(self) -> MixSnapshot | None:
        """The typical request types, or None before anything was observed.

        Rebuilt lazily (see `REBUILD_GROWTH`), so calling it for every placement is cheap.
        """
        if self._total <= 0:
            return None
        stale = self._snapshot is None or self._total > self._snapshot_total * (1.0 + REBUILD_GROWTH)
        if stale:
            self._snapshot = _build_snapshot(self._counts, self._coverage)
            self._snapshot_total = self._total
            self.version += 1
        return self._snapshot


def _build_snapshot(counts: dict[RequestType, float], coverage: float) -> MixSnapshot:
    """Keep the most popular types up to `coverage` of the weight, renormalised."""
    # Sort by count descending, then by key so equal counts give a stable order.
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].gpu_milli, kv[0].cpu_milli, kv[0].gpu_models))
    total = sum(c for _, c in ordered)
    kept: list[tuple[RequestType, float]] = []
    acc = 0.0
    for key, c in ordered:
        if acc >= coverage * total:
            break
        kept.append((key, c))
        acc += c
    types = tuple(k for k, _ in kept)
    weight = np.array([c for _, c in kept], dtype=np.float64)
    weight /= weight.sum()
    threshold = np.array(
        [np.inf if t.gpu_milli == 0 else float(min(t.gpu_milli, MILLI_PER_GPU)) for t in types],
        dtype=np.float64,
    )
    need_idle = np.array(
        [t.gpu_milli // MILLI_PER_GPU if t.gpu_milli >= MILLI_PER_GPU else 0 for t in types],
        dtype=np.int64,
    )
    cpu = np.array([t.cpu_milli for t in types], dtype=np.int64)
    shares: dict[int, float] = {}
    pinned: dict[tuple[str, ...], float] = {}
    milli_per_worker = 0.0
    for key, c in counts.items():
        milli_per_worker += c * key.gpu_milli / total
        if 0 < key.gpu_milli < MILLI_PER_GPU:
            shares[key.gpu_milli] = shares.get(key.gpu_milli, 0.0) + c
        if key.gpu_models and key.gpu_milli > 0:
            pinned[key.gpu_models] = pinned.get(key.gpu_models, 0.0) + c * key.gpu_milli / total
    return MixSnapshot(
        types,
        weight,
        threshold,
        need_idle,
        cpu,
        share_counts=tuple(sorted(shares.items())),
        pinned_milli=tuple(sorted(pinned.items())),
        milli_per_worker=milli_per_worker,
    )
