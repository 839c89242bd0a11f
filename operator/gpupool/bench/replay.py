"""Replay one arrival sequence through the operator's placement engine.

Who uses this: the placement bench, once per seed and policy. Pods are placed one at a
time through `PlacementState.place` (the very call the scheduling core makes), allocated
when placed, never deleted; a pod that does not fit stays failed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gpupool.bench.workload import Arrival
from gpupool.core.models import GpuNode, SchedulerConfig, WorkerPlacement
from gpupool.core.placement import PlacementMemory, PlacementState, WorkloadMix

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What happened to every arrival, in arrival order."""

    names: tuple[str, ...]
    placements: tuple[WorkerPlacement | None, ...]
    requested_milli: IntArray  # per arrival
    placed: npt.NDArray[np.bool_]  # per arrival
    capacity_milli: int
    seconds: float  # wall time of the placement loop alone

    @property
    def arrived_pct(self) -> npt.NDArray[np.float64]:
        """Arrived workload after each arrival, % of cluster GPU capacity."""
        return np.cumsum(self.requested_milli) * 100.0 / self.capacity_milli

    @property
    def allocated_pct(self) -> npt.NDArray[np.float64]:
        """Allocated GPU after each arrival, % of cluster GPU capacity."""
        return np.cumsum(np.where(self.placed, self.requested_milli, 0)) * 100.0 / self.capacity_milli


def replay(
    nodes: Sequence[GpuNode],
    arrivals: Sequence[Arrival],
    config: SchedulerConfig,
    rng: np.random.Generator,
    static_mix: WorkloadMix | None = None,
    learn_online: bool = False,
) -> ReplayResult:
    """Place `arrivals` in order on an empty cluster of `nodes` with `config`'s scoring policy.

    Only `config.scoring_policy` and `config.gpupool_params` matter here. `static_mix` is
    a workload mix fixed in advance (the paper's FGD knows the whole trace's
    distribution); with `learn_online` the mix is instead learned from the pods that have
    arrived so far, each observed just before it is placed. Either mix lives in the
    replay's own `PlacementMemory`.
    """
    # The paper's simulator renames nodes with a random prefix and its scheduler takes
    # the smallest name among equal scores: a random but fixed tie order per seed.
    state = PlacementState.build(nodes, tie_rank=rng.permutation(len(nodes)))
    capacity = int(state.gpu_count.sum()) * 1000
    memory: PlacementMemory | None = None
    if learn_online:
        memory = PlacementMemory()
    elif static_mix is not None:
        memory = PlacementMemory(mix=static_mix)
    jobs = [a.pod.to_job(a.name) for a in arrivals]
    placements: list[WorkerPlacement | None] = []
    start = time.perf_counter()
    for job, arrival in zip(jobs, arrivals, strict=True):
        if learn_online and memory is not None:
            memory.mix.observe(job.shape, 1, arrival.pod.gpu_models)
        got = state.place(
            job,
            scoring_policy=config.scoring_policy,
            gpupool_params=config.gpupool_params,
            rng=rng,
            memory=memory,
        )
        if got is None:
            placements.append(None)
            continue
        state.allocate(got, job.shape)
        placements.append(got[0])
    seconds = time.perf_counter() - start
    requested = np.array([a.pod.requested_milli for a in arrivals], dtype=np.int64)
    placed = np.array([p is not None for p in placements], dtype=np.bool_)
    return ReplayResult(
        names=tuple(a.name for a in arrivals),
        placements=tuple(placements),
        requested_milli=requested,
        placed=placed,
        capacity_milli=capacity,
        seconds=seconds,
    )
