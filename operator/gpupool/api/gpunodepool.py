"""The GPUNodePool kind (cluster-scoped): a set of identical GPU nodes, on-prem or cloud; a
pool with `gpusPerNode: 0` (model `CPU`) is a CPU pool of CPU-only nodes for CPU fallback.

Who uses this: `gpupool.api.crdgen` writes `crds/gpunodepools.gpupool.io.yaml` from these
models; the operator parses pools to label-match nodes, price GPU time and (later) scale;
`gpupool.cluster.translate.convert.gpu_node_from_k8s` uses pools to fill in a node's pool, class and
model when its labels do not say.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from gpupool.api.common import (
    MAX_GPUS_PER_NODE,
    MAX_LIST_ITEMS,
    MAX_NAME_LENGTH,
    MAX_NODES_PER_POOL,
    Condition,
    Duration,
    LabelSelector,
    Metadata,
    Quantity,
    SpecModel,
    StatusModel,
    TaintSpec,
    cel,
)
from gpupool.core.models import CPU_MODEL


class PoolClass(StrEnum):
    """Where a pool's nodes live (mirrors `gpupool.core.models.PoolClass`)."""

    ON_PREM = "OnPrem"
    CLOUD = "Cloud"


class Provider(StrEnum):
    """What creates and removes the pool's nodes."""

    STATIC = "Static"
    KWOK = "Kwok"
    CLUSTER_API = "ClusterAPI"


class NodePrice(SpecModel):
    """Price of one node-hour: amortised for on-prem, onDemand (and spot) for cloud."""

    amortised: float | None = Field(
        default=None,
        ge=0,
        description="On-prem: purchase and running cost spread over an hour of one node (>= 0).",
    )
    on_demand: float | None = Field(default=None, ge=0, description="Cloud: on-demand price of one node-hour (>= 0).")
    spot: float | None = Field(default=None, ge=0, description="Cloud: spot price of one node-hour, if offered (>= 0).")


class ClusterAPIRef(SpecModel):
    """The Cluster API MachineDeployment that holds a ClusterAPI pool's nodes."""

    namespace: str = Field(min_length=1, max_length=63, description="Namespace of the MachineDeployment.")
    machine_deployment: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Name of the MachineDeployment (cluster.x-k8s.io) whose replicas gpupool scales.",
    )


class GpuModelSpec(SpecModel):
    """The roofline figures of the pool's GPU model, when the catalogue lacks it or they differ."""

    peak_tflops_fp16: float = Field(gt=0, description="Peak dense FP16/BF16 TFLOPS of one GPU (> 0).")
    peak_tflops_fp32: float = Field(gt=0, description="Peak FP32 TFLOPS of one GPU (> 0).")
    memory_bandwidth_gbps: float = Field(
        gt=0,
        validation_alias="memoryBandwidthGBps",
        serialization_alias="memoryBandwidthGBps",
        description="Memory bandwidth of one GPU in GB/s (10^9 bytes per second, > 0).",
    )
    memory_gib: float | None = Field(
        default=None,
        gt=0,
        validation_alias="memoryGiB",
        serialization_alias="memoryGiB",
        description="Memory of one GPU in GiB (> 0).",
    )


CPU_POOL_RULE = (
    "spec.gpuModel must be CPU exactly when spec.gpusPerNode is 0: a CPU pool (gpusPerNode 0, gpuModel CPU) "
    "holds CPU-only nodes for jobs with spec.cpuFallback; a GPU pool has 1 or more GPUs per node and a GPU model"
)

CLUSTER_API_RULE = (
    "spec.clusterAPI must be set exactly when spec.provider is ClusterAPI: give a ClusterAPI pool "
    "spec.clusterAPI {namespace, machineDeployment}, and remove spec.clusterAPI from any other pool"
)


class GPUNodePoolSpec(SpecModel):
    """A set of identical GPU nodes: their hardware, how to find them, price and size limits."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.minNodes) || !has(self.maxNodes) || self.minNodes <= self.maxNodes",
                    "spec.minNodes must be less than or equal to spec.maxNodes",
                    field_path=".minNodes",
                ),
                cel(
                    f"(self.gpusPerNode == 0) == (self.gpuModel == '{CPU_MODEL}')",
                    CPU_POOL_RULE,
                    field_path=".gpusPerNode",
                ),
                cel(
                    "(has(self.provider) && self.provider == 'ClusterAPI') == has(self.clusterAPI)",
                    CLUSTER_API_RULE,
                    field_path=".clusterAPI",
                ),
            ]
        }
    )

    pool_class: PoolClass = Field(
        validation_alias="class",
        serialization_alias="class",
        description="OnPrem (bought hardware) or Cloud (rented capacity).",
    )
    gpu_model: str = Field(
        min_length=1,
        max_length=63,
        description=f"GPU model of every node, e.g. H100; {CPU_MODEL} for a CPU pool (gpusPerNode 0).",
    )
    gpus_per_node: int = Field(
        ge=0,
        le=MAX_GPUS_PER_NODE,
        description=f"GPUs per node (1 to {MAX_GPUS_PER_NODE}); 0 makes a CPU pool, whose CPU-only nodes run only "
        "GPUJobs that fall back to CPU (spec.cpuFallback).",
    )
    cpu_per_node: Quantity | None = Field(default=None, description="Allocatable CPU per node, e.g. 96 or 96000m.")
    memory_per_node: Quantity | None = Field(
        default=None, description="Allocatable memory per node, e.g. 1Ti or 768Gi."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Labels that identify the pool's nodes, e.g. {gpupool.io/pool: onprem-h100}.",
    )
    taints: list[TaintSpec] = Field(
        default_factory=list, max_length=MAX_LIST_ITEMS, description="Taints every node of the pool carries."
    )
    price_per_node_hour: NodePrice | None = Field(
        default=None,
        description="Price of a node-hour, for cost accounting and cheapest-first placement; a job on a CPU pool "
        "is charged its share of the node's CPU.",
    )
    min_nodes: int = Field(default=0, ge=0, le=MAX_NODES_PER_POOL, description="Fewest nodes to keep (default 0).")
    max_nodes: int | None = Field(
        default=None,
        ge=0,
        le=MAX_NODES_PER_POOL,
        description="Most nodes the pool may have; unset = no limit.",
    )
    provider: Provider = Field(
        default=Provider.STATIC,
        description="What creates the nodes: Static (nodes exist, never created or deleted), Kwok "
        "(simulated cloud: real Node objects made after provisioningDelay) or ClusterAPI (a Cluster API "
        "MachineDeployment, see clusterAPI); default Static.",
    )
    cluster_api: ClusterAPIRef | None = Field(
        default=None,
        validation_alias="clusterAPI",
        serialization_alias="clusterAPI",
        description="ClusterAPI pools only: the MachineDeployment gpupool scales for this pool.",
    )
    provisioning_delay: Duration = Field(
        default="60s",
        description="Kwok: how long a requested node takes to appear (default 60s; tests shorten it).",
    )
    scale_down_after: Duration = Field(
        default="10m",
        description="A node the operator created that has held no gpupool work this long is "
        "cordoned and released, never below minNodes (default 10m).",
    )
    gpu_model_spec: GpuModelSpec | None = Field(
        default=None,
        description="Peak TFLOPS and memory bandwidth of the pool's GPUs for jobs with spec.profile; "
        "overrides gpupool's catalogue for this pool and adds a model it lacks. On a CPU pool: the figures "
        "of one whole node's CPUs, which a Preferred cpuFallback job's estimate compares with the GPUs'.",
    )
    max_nodes_in_flight: int = Field(
        default=10,
        ge=1,
        le=MAX_NODES_PER_POOL,
        description="Most nodes of this pool requested and not yet Ready at once (default 10).",
    )

    @field_validator("gpus_per_node")
    @classmethod
    def _cpu_pool_is_model_cpu(cls, gpus: int, info: ValidationInfo) -> int:
        """Mirror the CRD's CPU pool rule; the error names spec.gpusPerNode (and the model)."""
        model = info.data.get("gpu_model")
        if model is not None and (gpus == 0) != (model == CPU_MODEL):
            raise ValueError(f"{CPU_POOL_RULE} (got gpuModel={model}, gpusPerNode={gpus})")
        return gpus

    @model_validator(mode="after")
    def _min_below_max(self) -> Self:
        """Mirror the CRD's CEL rules so an object built in Python fails the same way."""
        if self.max_nodes is not None and self.min_nodes > self.max_nodes:
            raise ValueError(
                f"spec.minNodes={self.min_nodes} must be less than or equal to spec.maxNodes={self.max_nodes}"
            )
        if (self.provider == Provider.CLUSTER_API) != (self.cluster_api is not None):
            raise ValueError(CLUSTER_API_RULE)
        return self

    def selects(self, labels: dict[str, str]) -> bool:
        """True when a node with `labels` belongs to this pool; the node converter calls this."""
        return bool(self.node_selector) and LabelSelector(match_labels=self.node_selector).matches(labels)


class GPUNodePoolStatus(StatusModel):
    """The pool's nodes and GPUs now; written only by the operator."""

    nodes_ready: int = Field(default=0, ge=0, description="Nodes of the pool that are Ready.")
    nodes_provisioning: int = Field(default=0, ge=0, description="Nodes requested and not yet Ready.")
    gpus_total: int = Field(default=0, ge=0, description="GPUs on the pool's Ready nodes.")
    gpus_allocated: float = Field(
        default=0.0, ge=0, description="GPUs held by admitted GPUJobs (shares count as fractions)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Kubernetes-style conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status was computed from."
    )


class GPUNodePool(BaseModel):
    """A whole GPUNodePool object as the API server returns it (metadata, spec, status)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    KIND: ClassVar[str] = "GPUNodePool"

    api_version: str = Field(default="gpupool.io/v1alpha1", description="gpupool.io/v1alpha1")
    kind: str = Field(default="GPUNodePool", description="GPUNodePool")
    metadata: Metadata = Field(default_factory=dict, description="Standard object metadata.")
    spec: GPUNodePoolSpec
    status: GPUNodePoolStatus = Field(default_factory=GPUNodePoolStatus)
