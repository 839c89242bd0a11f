"""Reading gpupool objects from the API server and writing their status back.

Who uses this: the operator's cache parses each raw object once, when it is stored, with
`parse_gpujob`/`parse_gpuqueue`/`parse_gpunodepool` (through `gpupool.cluster.state.parsing`);
`parse_object` serves tests and tools that see several kinds; the writers
(`gpupool.cluster.kube.writer.KubeWriter`, `gpupool.cluster.writes.recording.RecordingWriter`) call
`status_patch` to build the body of a `.../status` merge patch.
`KINDS` describes each kind once (names, scope, printer columns) for `gpupool.api.crdgen`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gpupool.api.common import API_VERSION
from gpupool.api.gpujob import GPUJob, GPUJobSpec, GPUJobStatus
from gpupool.api.gpunodeclaim import GPUNodeClaim, GPUNodeClaimSpec, GPUNodeClaimStatus
from gpupool.api.gpunodepool import GPUNodePool, GPUNodePoolSpec, GPUNodePoolStatus
from gpupool.api.gpuqueue import GPUQueue, GPUQueueSpec, GPUQueueStatus

GpupoolObject = GPUJob | GPUQueue | GPUNodePool | GPUNodeClaim
ObjectT = TypeVar("ObjectT", GPUJob, GPUQueue, GPUNodePool, GPUNodeClaim)


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    """One column of `kubectl get` for a kind."""

    name: str
    type: str
    json_path: str
    description: str


@dataclass(frozen=True, slots=True)
class KindInfo:
    """Everything the CRD of one kind needs beyond its schema."""

    model: type[BaseModel]
    spec: type[BaseModel]
    status: type[BaseModel]
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    spec_required: bool
    columns: tuple[PrinterColumn, ...]

    @property
    def crd_name(self) -> str:
        """`<plural>.gpupool.io`, the CRD's metadata.name and file stem."""
        return f"{self.plural}.{API_VERSION.split('/')[0]}"


_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since the object was created.")

KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        model=GPUJob,
        spec=GPUJobSpec,
        status=GPUJobStatus,
        kind="GPUJob",
        plural="gpujobs",
        singular="gpujob",
        short_names=("gj",),
        namespaced=True,
        spec_required=True,
        columns=(
            PrinterColumn("Queue", "string", ".spec.queue", "GPUQueue the job is submitted to."),
            PrinterColumn("Phase", "string", ".status.phase", "Where the job is in its life."),
            PrinterColumn("Workers", "integer", ".spec.workers", "Gang size."),
            PrinterColumn("GPUs", "number", ".spec.gpus", "GPUs per worker."),
            PrinterColumn("Message", "string", ".status.message", "What is happening, or why the job waits."),
            _AGE,
        ),
    ),
    KindInfo(
        model=GPUQueue,
        spec=GPUQueueSpec,
        status=GPUQueueStatus,
        kind="GPUQueue",
        plural="gpuqueues",
        singular="gpuqueue",
        short_names=("gq",),
        namespaced=False,
        spec_required=False,
        columns=(
            PrinterColumn("Cohort", "string", ".spec.cohort", "Cohort the queue shares GPUs with."),
            PrinterColumn("Admitted", "integer", ".status.admittedJobs", "Jobs admitted and not finished."),
            PrinterColumn("Pending", "integer", ".status.pendingJobs", "Jobs waiting."),
            _AGE,
        ),
    ),
    KindInfo(
        model=GPUNodePool,
        spec=GPUNodePoolSpec,
        status=GPUNodePoolStatus,
        kind="GPUNodePool",
        plural="gpunodepools",
        singular="gpunodepool",
        short_names=("gnp",),
        namespaced=False,
        spec_required=True,
        columns=(
            PrinterColumn("Class", "string", ".spec.class", "OnPrem or Cloud."),
            PrinterColumn("Model", "string", ".spec.gpuModel", "GPU model of the pool's nodes."),
            PrinterColumn("Nodes", "integer", ".status.nodesReady", "Ready nodes."),
            PrinterColumn("GPUs", "integer", ".status.gpusTotal", "GPUs on Ready nodes."),
            PrinterColumn("Provisioning", "integer", ".status.nodesProvisioning", "Nodes requested, not Ready."),
            _AGE,
        ),
    ),
    KindInfo(
        model=GPUNodeClaim,
        spec=GPUNodeClaimSpec,
        status=GPUNodeClaimStatus,
        kind="GPUNodeClaim",
        plural="gpunodeclaims",
        singular="gpunodeclaim",
        short_names=("gnc",),
        namespaced=False,
        spec_required=True,
        columns=(
            PrinterColumn("Pool", "string", ".spec.pool", "GPUNodePool of the node."),
            PrinterColumn("Type", "string", ".spec.capacityType", "OnDemand or Spot."),
            PrinterColumn("Phase", "string", ".status.phase", "Launching, Registered, Ready, Failed or Deleting."),
            PrinterColumn("Node", "string", ".status.nodeName", "The node made for this claim."),
            PrinterColumn("Reason", "string", ".status.reason", "Why the claim is in its phase."),
            _AGE,
        ),
    ),
)


class InvalidObjectError(ValueError):
    """An object from the API server does not match the gpupool models.

    The API server validates against the same schema, so this means the installed CRDs are
    older or newer than this operator: the message says which object and field, and to
    reinstall the CRDs that ship with this operator version.
    """


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "<unnamed>")
    namespace = meta.get("namespace")
    where = f"{namespace}/{name}" if namespace else name
    return f"{obj.get('kind', '<no kind>')} {where}"


def _parse(model: type[ObjectT], obj: Mapping[str, Any]) -> ObjectT:
    try:
        return model.model_validate(dict(obj))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<object>'}: {e['msg']}" for e in err.errors())
        raise InvalidObjectError(
            f"{_describe(obj)} does not match gpupool {API_VERSION}: {problems}. "
            "Check that the installed CRDs match this operator version (kubectl apply -f crds/)."
        ) from err


def parse_gpujob(obj: Mapping[str, Any]) -> GPUJob:
    """Parse a raw GPUJob dict (as listed or watched) into `GPUJob`; raises `InvalidObjectError`."""
    return _parse(GPUJob, obj)


def parse_gpuqueue(obj: Mapping[str, Any]) -> GPUQueue:
    """Parse a raw GPUQueue dict into `GPUQueue`; raises `InvalidObjectError`."""
    return _parse(GPUQueue, obj)


def parse_gpunodepool(obj: Mapping[str, Any]) -> GPUNodePool:
    """Parse a raw GPUNodePool dict into `GPUNodePool`; raises `InvalidObjectError`."""
    return _parse(GPUNodePool, obj)


def parse_gpunodeclaim(obj: Mapping[str, Any]) -> GPUNodeClaim:
    """Parse a raw GPUNodeClaim dict into `GPUNodeClaim`; raises `InvalidObjectError`."""
    return _parse(GPUNodeClaim, obj)


def parse_object(obj: Mapping[str, Any]) -> GpupoolObject:
    """Parse any gpupool object by its `kind`; for handlers that see several kinds."""
    kind = obj.get("kind")
    if kind == "GPUJob":
        return parse_gpujob(obj)
    if kind == "GPUQueue":
        return parse_gpuqueue(obj)
    if kind == "GPUNodePool":
        return parse_gpunodepool(obj)
    if kind == "GPUNodeClaim":
        return parse_gpunodeclaim(obj)
    raise InvalidObjectError(
        f"{_describe(obj)} is not a gpupool kind; expected GPUJob, GPUQueue, GPUNodePool or GPUNodeClaim"
    )


def status_patch(status: BaseModel) -> dict[str, Any]:
    """The body of a JSON merge patch that replaces an object's status with `status`.

    Who calls this: the writers of `gpupool.cluster`, for `PATCH .../status`. Top-level status fields
    that are None become `null`, which a merge patch treats as "delete", so a cleared
    `message` really disappears; nested None values are left out (the schema does not
    allow nulls). Lists (conditions, placement) are replaced whole, as merge patches do.
    """
    body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, info in type(status).model_fields.items():
        key = info.alias or name
        if key not in body:
            body[key] = None
    return {"status": body}


def to_manifest(obj: GpupoolObject) -> dict[str, Any]:
    """A dict ready for `kubectl apply` or the API (metadata + spec, no status); used by tests,
    the demo and the simulator's exporters."""
    body = obj.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"status"})
    body["apiVersion"] = API_VERSION
    body["kind"] = type(obj).KIND
    return body
