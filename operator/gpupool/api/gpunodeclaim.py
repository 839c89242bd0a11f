"""The GPUNodeClaim kind (cluster-scoped): one node gpupool asked a pool's provider for.

Who uses this: `gpupool.api.crdgen` writes `crds/gpunodeclaims.gpupool.io.yaml` from these
models. The operator creates a claim for each node its autoscale plan requests
(`gpupool.cluster.nodes.claims`), drives it through its phases as the provider works, and deletes
it once the node is released. Claims live in the API server rather than in memory so a
restarted operator knows what is in flight and never asks for a node twice (as Karpenter's
NodeClaims do); `kubectl get gpunodeclaims` shows scaling as it happens.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gpupool.api.common import (
    MAX_LIST_ITEMS,
    MAX_NAME_LENGTH,
    Condition,
    Metadata,
    SpecModel,
    StatusModel,
    cel,
)


class CapacityType(StrEnum):
    """How a cloud node is rented."""

    ON_DEMAND = "OnDemand"
    SPOT = "Spot"


class ClaimPhase(StrEnum):
    """Where a claim is in its life.

    Launching: asked of the provider, no node yet. Registered: the Node object exists, not
    Ready. Ready: the node is Ready and schedulable. Failed: the provider refused (the
    reason says why; the pool backs off). Deleting: the node is being released.
    """

    LAUNCHING = "Launching"
    REGISTERED = "Registered"
    READY = "Ready"
    FAILED = "Failed"
    DELETING = "Deleting"


class GPUNodeClaimSpec(SpecModel):
    """What was asked for: a node of a pool, how it is rented, and for which jobs."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self == oldSelf",
                    "spec cannot change after creation: delete the GPUNodeClaim instead",
                ),
            ]
        }
    )

    pool: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="GPUNodePool the node belongs to.")
    capacity_type: CapacityType = Field(
        default=CapacityType.ON_DEMAND, description="OnDemand or Spot (cloud pools); default OnDemand."
    )
    jobs: list[str] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="GPUJobs (namespace/name) the node was requested for; it is held for them when Ready.",
    )


class GPUNodeClaimStatus(StatusModel):
    """What became of the claim; written only by the operator."""

    phase: ClaimPhase = Field(
        default=ClaimPhase.LAUNCHING, description="Launching, Registered, Ready, Failed or Deleting."
    )
    node_name: str | None = Field(default=None, description="The Node the provider made for this claim.")
    provider_id: str | None = Field(default=None, description="The provider's id of the node.")
    reason: str | None = Field(
        default=None, description="Why the claim is in its phase (CapacityUnavailable, Idle, ...)."
    )
    message: str | None = Field(default=None, description="What is happening, for a person.")
    launched_at: datetime | None = Field(default=None, description="When the provider was asked to create the node.")
    ready_at: datetime | None = Field(default=None, description="When the node became Ready.")
    failed_at: datetime | None = Field(default=None, description="When the launch failed (phase Failed).")
    launch_attempts: int = Field(default=0, ge=0, description="Launches tried (transient failures are retried).")
    idle_since: datetime | None = Field(
        default=None, description="When the node last stopped holding gpupool work (unset while it holds some)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Kubernetes-style conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class GPUNodeClaim(BaseModel):
    """A whole GPUNodeClaim object as the API server returns it (metadata, spec, status)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    KIND: ClassVar[str] = "GPUNodeClaim"

    api_version: str = Field(default="gpupool.io/v1alpha1", description="gpupool.io/v1alpha1")
    kind: str = Field(default="GPUNodeClaim", description="GPUNodeClaim")
    metadata: Metadata = Field(default_factory=dict, description="Standard object metadata.")
    spec: GPUNodeClaimSpec
    status: GPUNodeClaimStatus = Field(default_factory=GPUNodeClaimStatus)
