"""gpupool's API: pydantic models of the GPUJob, GPUQueue and GPUNodePool CRDs
(group gpupool.io, version v1alpha1), the one source of truth for the CRDs in `crds/`.

Who uses this: the operator parses the objects it watches with `parse_object` (or the
per-kind `parse_*`), writes status with `status_patch`, and checks queue access with
`LabelSelector.matches`; `gpupool.cluster.convert` turns parsed objects into core values;
`python -m gpupool.api.crdgen` regenerates the CRDs.
"""

from gpupool.api.common import (
    API_VERSION,
    GROUP,
    MAX_GPUS_PER_NODE,
    MAX_GPUS_PER_WORKER,
    MAX_WORKERS,
    VERSION,
    Condition,
    ConditionStatus,
    LabelSelector,
    LabelSelectorRequirement,
    TaintEffect,
    TaintSpec,
)
from gpupool.api.gpujob import (
    GPUJob,
    GPUJobSpec,
    GPUJobStatus,
    JobPhase,
    Placement,
    PodTemplate,
    Provenance,
    WorkerPlacementStatus,
)
from gpupool.api.gpunodepool import (
    GPUNodePool,
    GPUNodePoolSpec,
    GPUNodePoolStatus,
    NodePrice,
    PoolClass,
    Provider,
)
from gpupool.api.gpuqueue import (
    Budget,
    BudgetPeriod,
    FlavorUsage,
    GPUQueue,
    GPUQueueSpec,
    GPUQueueStatus,
    PreemptionSpec,
    QueueingStrategy,
    QueueQuota,
    Spend,
)
from gpupool.api.objects import (
    KINDS,
    GpupoolObject,
    InvalidObjectError,
    KindInfo,
    parse_gpujob,
    parse_gpunodepool,
    parse_gpuqueue,
    parse_object,
    status_patch,
    to_manifest,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "MAX_GPUS_PER_NODE",
    "MAX_GPUS_PER_WORKER",
    "MAX_WORKERS",
    "VERSION",
    "Budget",
    "BudgetPeriod",
    "Condition",
    "ConditionStatus",
    "FlavorUsage",
    "GPUJob",
    "GPUJobSpec",
    "GPUJobStatus",
    "GPUNodePool",
    "GPUNodePoolSpec",
    "GPUNodePoolStatus",
    "GPUQueue",
    "GPUQueueSpec",
    "GPUQueueStatus",
    "GpupoolObject",
    "InvalidObjectError",
    "JobPhase",
    "KindInfo",
    "LabelSelector",
    "LabelSelectorRequirement",
    "NodePrice",
    "Placement",
    "PodTemplate",
    "PoolClass",
    "PreemptionSpec",
    "Provenance",
    "Provider",
    "QueueQuota",
    "QueueingStrategy",
    "Spend",
    "TaintEffect",
    "TaintSpec",
    "WorkerPlacementStatus",
    "parse_gpujob",
    "parse_gpunodepool",
    "parse_gpuqueue",
    "parse_object",
    "status_patch",
    "to_manifest",
]
