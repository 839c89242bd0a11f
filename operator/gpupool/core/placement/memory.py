"""What placement carries from one scheduling cycle to the next: `PlacementMemory`.

Who uses this: `gpupool.core.schedule` takes a `PlacementMemory` (or starts a fresh one),
works on a fork of it for the cycle and returns the fork in `Decisions.memory`; the
placement engine (`PlacementState.place`) hands it to the scoring policies, which read
the learned mix and its derived tables through `PlacementMemory.tables`. The trace bench
(`gpupool.sim.replay`) keeps one per replay. Two memories never share anything that
either of them changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gpupool.core.models import Job
from gpupool.core.placement.fragmentation import FloatArray, FragModel
from gpupool.core.placement.mix import MixSnapshot, WorkloadMix
from gpupool.core.placement.pinned_demand import pinned_demand_per_model, pinned_ratio
from gpupool.core.placement.share_plan import SharePlan

if TYPE_CHECKING:
    from gpupool.core.placement.state import PlacementState


@dataclass(frozen=True, slots=True)
class PinnedDemand:
    """`demand[m]` and `ratio[m]` of each GPU model m of one cluster (`pinned_demand.py`)."""

    demand: FloatArray
    ratio: FloatArray


class MixTables:
    """What the fragmentation-aware policies derive from one mix snapshot, built on first use.

    The share plan (`share_plan.py`), one fragmentation model per cluster GPU-model list
    (`fragmentation.py`) and the pinned demand per GPU model of a cluster
    (`pinned_demand.py`). `version` is the `WorkloadMix.version` of `snapshot`. Each table
    is a pure function of the snapshot (and of the cluster's GPU models and counts) and is
    never changed once built.
    """

    __slots__ = ("_frag", "_pinned", "_plan", "snapshot", "version")

    def __init__(self, snapshot: MixSnapshot, version: int) -> None:
        self.snapshot = snapshot
        self.version = version
        self._plan: SharePlan | None = None
        self._frag: dict[tuple[str, ...], FragModel] = {}
        self._pinned: dict[tuple[tuple[str, ...], bytes], PinnedDemand] = {}

    def share_plan(self) -> SharePlan:
        """The packing plan of the share sizes the snapshot counts."""
        if self._plan is None:
            self._plan = SharePlan.from_counts(dict(self.snapshot.share_counts))
        return self._plan

    def frag_model(self, models: tuple[str, ...]) -> FragModel:
        """The fragmentation model of the snapshot for a cluster with GPU models `models`."""
        found = self._frag.get(models)
        if found is None:
            found = self._frag[models] = FragModel(self.snapshot, models)
        return found

    def pinned(self, state: PlacementState) -> PinnedDemand:
        """Pinned demand and ratio of each of `state.models` (index with `state.model_id`)."""
        key = (state.models, state.model_gpus.tobytes())
        found = self._pinned.get(key)
        if found is None:
            demand = pinned_demand_per_model(self.snapshot, state.models, state.model_gpus)
            found = PinnedDemand(demand, pinned_ratio(demand, self.snapshot, state.gpu_count))
            self._pinned[key] = found
        return found

    def copy(self) -> MixTables:
        """A copy whose later additions the original never sees (the built tables are shared)."""
        other = MixTables(self.snapshot, self.version)
        other._plan = self._plan
        other._frag = dict(self._frag)
        other._pinned = dict(self._pinned)
        return other


@dataclass(eq=False, slots=True)
class PlacementMemory:
    """What placement learns from the jobs and keeps from one scheduling cycle to the next.

    It holds:
    - `mix`: the workload mix (`WorkloadMix`) the fragmentation-aware scoring policies
      (`fgd`, `gpupool`) score against, learned online from the jobs seen so far;
    - `seen_jobs`: the keys of the jobs of the last snapshot, all counted in `mix` already,
      so a job is counted once however many cycles it stays pending or running;
    - the tables derived from the mix's current snapshot (share plan, fragmentation models,
      pinned demand; `tables()`), rebuilt whenever the mix takes a new snapshot.

    Policy parameters are not memory: they are configuration (`SchedulerConfig`).

    `schedule(snapshot, config, memory)` never changes the memory it is given: it works on
    a `fork()` and returns it, updated, in `Decisions.memory`. The operator passes the
    previous cycle's `Decisions.memory` back into the next `schedule` call, so the mix
    learns from every job the operator has seen; `memory=None` starts from an empty
    memory, which learns the mix of that one snapshot's jobs. Two memories never share
    anything that either changes, so a what-if simulation can fork the operator's memory.
    """

    mix: WorkloadMix = field(default_factory=WorkloadMix)
    seen_jobs: frozenset[str] = frozenset()
    _tables: MixTables | None = field(default=None, init=False, repr=False)

    def fork(self) -> PlacementMemory:
        """An independent copy: what one of the two learns, the other never sees."""
        other = PlacementMemory(self.mix.copy(), self.seen_jobs)
        other._tables = None if self._tables is None else self._tables.copy()
        return other

    def observe_jobs(self, jobs: Iterable[Job]) -> None:
        """Count in `mix` each job of `jobs` not in `seen_jobs`; `jobs` become `seen_jobs`."""
        keys: set[str] = set()
        for job in jobs:
            keys.add(job.key)
            if job.key not in self.seen_jobs:
                self.mix.observe(job.shape, job.workers, job.gpu_models)
        self.seen_jobs = frozenset(keys)

    def tables(self) -> MixTables | None:
        """The tables of the mix's current snapshot (None before any job was observed).

        Asks the mix for its snapshot, which may rebuild it (`WorkloadMix.snapshot`).
        """
        snapshot = self.mix.snapshot()
        if snapshot is None:
            return None
        if self._tables is None or self._tables.version != self.mix.version:
            self._tables = MixTables(snapshot, self.mix.version)
        return self._tables


__all__ = ["MixTables", "PinnedDemand", "PlacementMemory"]
