"""The placement engine: where the workers of a job go, GPU by GPU.

Who uses this: the scheduling core (`ClusterState.build` once per cycle, `place` per
job, `allocate` per admission, `release` for preemption what-ifs) and the trace bench
(`gpupool.sim.placement_bench`), which replays the openb trace through the same code.
"""

from gpupool.core.placement.mix import WorkloadMix
from gpupool.core.placement.registry import DEFAULT_POLICY, POLICY_NAMES, resolve_policy
from gpupool.core.placement.state import ClusterState, PlacementError

__all__ = [
    "DEFAULT_POLICY",
    "POLICY_NAMES",
    "ClusterState",
    "PlacementError",
    "WorkloadMix",
    "resolve_policy",
]
