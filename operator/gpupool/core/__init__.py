"""gpupool.core: pure scheduling decisions over immutable snapshots.

Who uses this: the operator's scheduling loop (`schedule(snapshot, config, memory) ->
Decisions`, passing each cycle's `Decisions.memory` to the next), `gpupool bench cycle`,
and the trace benches (`gpupool.sim`), which use the placement engine
(`gpupool.core.placement`) directly. Nothing here performs I/O, reads the clock or keeps
state between calls.
"""

from gpupool.core.models import (
    MILLI_PER_GPU,
    Admission,
    Decisions,
    GpuNode,
    GpupoolParams,
    GpuSlice,
    Job,
    PlacementPolicy,
    PoolClass,
    Preemption,
    PreemptionRules,
    Queue,
    QueueingStrategy,
    Quota,
    SchedulerConfig,
    Snapshot,
    Taint,
    Toleration,
    WaitCode,
    Waiting,
    WorkerPlacement,
    WorkerShape,
)
from gpupool.core.placement import PlacementMemory
from gpupool.core.schedule import schedule

__all__ = [
    "MILLI_PER_GPU",
    "Admission",
    "Decisions",
    "GpuNode",
    "GpuSlice",
    "GpupoolParams",
    "Job",
    "PlacementMemory",
    "PlacementPolicy",
    "PoolClass",
    "Preemption",
    "PreemptionRules",
    "Queue",
    "QueueingStrategy",
    "Quota",
    "SchedulerConfig",
    "Snapshot",
    "Taint",
    "Toleration",
    "WaitCode",
    "Waiting",
    "WorkerPlacement",
    "WorkerShape",
    "schedule",
]
