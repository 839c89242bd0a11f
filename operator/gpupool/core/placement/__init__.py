"""The placement engine: where the workers of a job go, GPU by GPU.

Who uses this: the scheduling core (`PlacementState.build` once per cycle, `place` per
job, `allocate` per admission, `release` for preemption what-ifs; one `PlacementMemory`
carried from cycle to cycle by the caller of `schedule`) and the trace bench
(`gpupool.sim.replay`), which replays the openb trace through the same code.
"""

from gpupool.core.placement.memory import MixTables, PlacementMemory
from gpupool.core.placement.mix import WorkloadMix
from gpupool.core.placement.registry import (
    DEFAULT_SCORING_POLICY,
    SCORING_POLICY_NAMES,
    resolve_scoring_policy,
)
from gpupool.core.placement.state import PlacementError, PlacementState

__all__ = [
    "DEFAULT_SCORING_POLICY",
    "SCORING_POLICY_NAMES",
    "MixTables",
    "PlacementError",
    "PlacementMemory",
    "PlacementState",
    "WorkloadMix",
    "resolve_scoring_policy",
]
