"""gpupool.core: pure scheduling decisions over immutable snapshots.

Who uses this: the operator's scheduling loop (`schedule(snapshot) -> Decisions`), the trace
simulator and the benchmarks. Nothing here performs I/O or reads the clock.
"""

from gpupool.core.models import (
    MILLI_PER_GPU,
    Admission,
    Decisions,
    GpuNode,
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
from gpupool.core.schedule import schedule

__all__ = [
    "MILLI_PER_GPU",
    "Admission",
    "Decisions",
    "GpuNode",
    "GpuSlice",
    "Job",
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
