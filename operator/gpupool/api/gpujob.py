"""The GPUJob kind (namespaced): a gang of identical workers that need GPUs.

Who uses this: `gpupool.api.crdgen` writes `crds/gpujobs.gpupool.io.yaml` from these models;
the operator parses GPUJob objects with `GPUJob.model_validate` (via
`gpupool.api.parse_object`) and writes `GPUJobStatus` back with `gpupool.api.status_patch`;
`gpupool.cluster.translate.convert.job_from_api` turns a GPUJob into the core's `Job`.

`gpus` is `type: number` in the schema (so `1`, `2` and `0.5` all read naturally) and CEL
rules keep it to a whole number or a fraction below 1, no finer than 0.001 (the milli-GPU
the core counts in). The lower bound is `exclusiveMinimum: 0`, not `minimum: 0.001`: the API
server compares an integer value against an integer-truncated bound, so `gpus: 0` would pass
`minimum: 0.001`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from gpupool.api.common import (
    MAX_GPUS_PER_WORKER,
    MAX_NAME_LENGTH,
    MAX_PRIORITY,
    MAX_WORKERS,
    NAME_PATTERN,
    Condition,
    Duration,
    Metadata,
    Quantity,
    SpecModel,
    StatusModel,
    cel,
)
from gpupool.core.budget import MAX_RECORDED_ATTEMPTS
from gpupool.core.models import CpuFallback, Device
from gpupool.core.roofline import Optimize, Precision

DEFAULT_TTL_SECONDS_AFTER_FINISHED = 7 * 24 * 3600
DEFAULT_CPU_FALLBACK_AFTER = "5m"
MAX_TTL_SECONDS_AFTER_FINISHED = 2**31 - 1  # int32, as Kubernetes Jobs' own field


class Placement(StrEnum):
    """Which pools a job accepts (mirrors `gpupool.core.models.PlacementPolicy`)."""

    ON_PREM_ONLY = "OnPremOnly"
    CLOUD_ALLOWED = "CloudAllowed"
    SPOT_ALLOWED = "SpotAllowed"


class JobPhase(StrEnum):
    """Where a GPUJob is in its life."""

    QUEUED = "Queued"
    ADMITTED = "Admitted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    PREEMPTED = "Preempted"


class DeviceSource(StrEnum):
    """Where a worker's `gpuIndices` come from (`status.placement[].devices`)."""

    PLANNED = "Planned"
    """gpupool's own choice: on nodes whose agent publishes no `gpupool.io/pod-devices` report
    (kwok nodes: the fallback), and on a reporting node until the report shows the pod."""
    REPORTED = "Reported"
    """The node agent's report of the devices the kubelet gave the pod (for a share: its
    reservation pod), through the node's `gpupool.io/gpu-uuids` map."""


class PodTemplate(SpecModel):
    """The pod every worker runs (a Kubernetes PodTemplateSpec: metadata and spec).

    The schema keeps the two parts open (`x-kubernetes-preserve-unknown-fields`) because the
    full PodTemplateSpec schema is huge; the API server validates the pods gpupool creates
    from it, so a mistake inside the template shows up as an event on the GPUJob.
    """

    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Labels and annotations copied onto every worker pod.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    spec: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "A Kubernetes PodSpec: containers, env, volumes, tolerations, ... gpupool adds the GPU "
            "requests, schedulerName and node binding; spec.tolerations let workers onto tainted pools."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    @model_validator(mode="after")
    def _no_device_selection_of_its_own(self) -> Self:
        """Refuse a template that would reach GPUs outside the queue (see `device_selection_fields`)."""
        found = device_selection_fields(self.metadata, self.spec)
        if found:
            raise ValueError(
                f"{', '.join(found)}: gpupool chooses a worker's GPUs and requests them itself; a pod template "
                "may not select devices (NVIDIA_* variables, CDI annotations, GPU resources): remove "
                f"{'it' if len(found) == 1 else 'them'} and set spec.gpus"
            )
        return self


NVIDIA_ENV_PREFIX = "NVIDIA_"
CDI_ANNOTATION_PREFIX = "cdi.k8s.io/"
DEVICE_RESOURCE_PREFIXES = ("nvidia.com/", "gpu.nvidia.com/")


def device_selection_fields(metadata: Any, spec: Any) -> list[str]:
    """The fields of a pod template (`metadata`, `spec`) that select GPUs by themselves, as
    `spec.template...` paths: an env variable named `NVIDIA_*` (the container toolkit reads
    `NVIDIA_VISIBLE_DEVICES` and friends), a `cdi.k8s.io/*` annotation (CDI device
    injection) and a `nvidia.com/*` resource of any container. gpupool's worker pods are
    created by the operator, which the chart's admission policy exempts, so without this a
    template could name any GPU of the node: no tenant reaches a GPU outside the queue.
    Variables from `envFrom` cannot be seen here; the pods' NVIDIA_VISIBLE_DEVICES that
    gpupool sets itself comes after them and wins (`gpupool.cluster.writes.pods`)."""
    found: list[str] = []
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict):
        found += [
            f"spec.template.metadata.annotations[{key}]"
            for key in annotations
            if str(key).startswith(CDI_ANNOTATION_PREFIX)
        ]
    if not isinstance(spec, dict):
        return found
    for group in ("initContainers", "containers"):
        containers = spec.get(group)
        if not isinstance(containers, list):
            continue
        for position, container in enumerate(containers):
            if not isinstance(container, dict):
                continue
            where = f"spec.template.spec.{group}[{position}]"
            env = container.get("env")
            for index, variable in enumerate(env if isinstance(env, list) else []):
                name = variable.get("name") if isinstance(variable, dict) else None
                if isinstance(name, str) and name.startswith(NVIDIA_ENV_PREFIX):
                    found.append(f"{where}.env[{index}] ({name})")
            resources = container.get("resources")
            for kind in ("requests", "limits"):
                amounts = resources.get(kind) if isinstance(resources, dict) else None
                if isinstance(amounts, dict):
                    found += [
                        f"{where}.resources.{kind}[{name}]"
                        for name in amounts
                        if str(name).startswith(DEVICE_RESOURCE_PREFIXES)
                    ]
    return found


class Provenance(SpecModel):
    """Where the job's results come from; recorded for reproducibility, never interpreted."""

    image_digest: str | None = Field(
        default=None, description="Digest of the container image, e.g. sha256:4b1c...", max_length=512
    )
    code_revision: str | None = Field(
        default=None, description="Revision of the training code, e.g. a git commit.", max_length=512
    )
    dataset_ref: str | None = Field(
        default=None,
        description="Reference to the dataset version, e.g. s3://bucket/set@v3.",
        max_length=2048,
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form hyperparameters and settings, stored as given.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


ProfilePrecision = Precision
ProfileOptimize = Optimize

PROFILE_WORK_RULE = (
    "spec.profile: set exactly one of spec.profile.totalFlops (the whole job's floating-point operations) "
    "and spec.profile.referenceRuntime (a runtime measured on a named GPU model)"
)


class ReferenceRuntime(SpecModel):
    """A runtime of this job (the whole gang as specified) measured on GPUs of one model."""

    model: str = Field(
        min_length=1,
        max_length=63,
        description="GPU model the runtime was measured on, as the catalogue or a GPUNodePool's gpuModel names "
        "it, e.g. A100.",
    )
    seconds: float = Field(gt=0, description="The measured runtime in seconds (> 0).")


class JobProfile(SpecModel):
    """What the job's work looks like to the roofline model, so gpupool can choose its GPU model."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.totalFlops) != has(self.referenceRuntime)", PROFILE_WORK_RULE, field_path=".totalFlops")
            ]
        }
    )

    operational_intensity: float = Field(
        gt=0, description="Floating-point operations per byte moved to and from GPU memory (FLOP/byte, > 0)."
    )
    total_flops: float | None = Field(
        default=None,
        gt=0,
        description="Floating-point operations of the whole job, spread evenly over all GPUs of the gang "
        "(> 0); exactly one of totalFlops and referenceRuntime.",
    )
    reference_runtime: ReferenceRuntime | None = Field(
        default=None,
        description="A runtime measured on a named GPU model, scaled to other models by their attainable "
        "throughput; exactly one of totalFlops and referenceRuntime.",
    )
    precision: ProfilePrecision = Field(
        default=ProfilePrecision.FP16,
        description="The arithmetic the job mostly runs in, FP16 (or BF16) or FP32, which picks the peak the "
        "estimate uses (default FP16).",
    )
    optimize: ProfileOptimize = Field(
        default=ProfileOptimize.COST,
        description="Cost: the GPU model with the lowest estimated cost of the run; Time: the shortest estimated "
        "run (default Cost).",
    )

    @model_validator(mode="after")
    def _one_kind_of_work(self) -> Self:
        """Mirror the CRD's CEL rule so an object built in Python fails the same way."""
        if (self.total_flops is None) == (self.reference_runtime is None):
            raise ValueError(PROFILE_WORK_RULE)
        return self


# What a job holds is fixed at creation, as Kueue fixes a workload's pod sets once it holds
# quota: an edit would change what the queue admitted behind its back. `priority`,
# `maxRuntime`, `preemptible`, `backoffLimit`, `provenance` and `ttlSecondsAfterFinished` may
# change.
IMMUTABLE_SPEC_FIELDS = ("queue", "workers", "gpus", "cpu", "memory", "gpuModels", "placement", "template")


def _unchanged(field: str) -> dict[str, Any]:
    """A transition rule: `spec.<field>` keeps its value (or its absence) after creation."""
    return cel(
        f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"spec.{field} cannot change after creation: delete the GPUJob and create it again",
        field_path=f".{field}",
        reason="FieldValueForbidden",
    )


JobCpuFallback = CpuFallback
JobDevice = Device

CPU_FALLBACK_RULE = (
    "spec.cpuFallback: Allowed and Preferred need spec.workers = 1 and spec.cpu set (the size of the CPU "
    "placement); set spec.cpuFallback to Never or change those fields"
)


class GPUJobSpec(SpecModel):
    """What a GPUJob asks for: a gang of `workers` identical workers with `gpus` GPUs each."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.gpus) || self.gpus >= 1.0 || !has(self.workers) || self.workers == 1",
                    "spec.gpus: a fraction of a GPU (gpus < 1) is allowed only with spec.workers = 1; "
                    "use whole GPUs for multi-worker jobs",
                    field_path=".gpus",
                ),
                cel(
                    "!has(self.cpuFallback) || self.cpuFallback == 'Never' || "
                    "((!has(self.workers) || self.workers == 1) && has(self.cpu))",
                    CPU_FALLBACK_RULE,
                    field_path=".cpuFallback",
                ),
                *(_unchanged(field) for field in IMMUTABLE_SPEC_FIELDS),
            ]
        }
    )

    queue: str = Field(
        description="Name of the GPUQueue this job is submitted to; the queue must allow this namespace.",
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=NAME_PATTERN,
    )
    priority: int = Field(
        default=0,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description="Higher runs first within the queue and may preempt lower (default 0).",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=MAX_WORKERS,
        description=(f"Gang size: number of identical workers, placed all-or-nothing (1 to {MAX_WORKERS}, default 1)."),
    )
    gpus: float = Field(
        default=1.0,
        gt=0,
        le=MAX_GPUS_PER_WORKER,
        description=(
            f"GPUs per worker: a whole number from 1 to {MAX_GPUS_PER_WORKER}, or a fraction below 1 "
            "(such as 0.5) for a share of one GPU; fractions only when workers is 1 (default 1)."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self < 1.0 || self > 16.0 || self == double(int(self))",
                    "spec.gpus must be a whole number (1, 2, ...) or a fraction below 1 such as 0.5",
                ),
                cel(
                    "self <= 0.0 || self >= 0.001",
                    "spec.gpus must be at least 0.001 (gpupool counts GPU shares in thousandths)",
                ),
            ]
        },
    )
    cpu: Quantity | None = Field(
        default=None, description='CPU per worker as a Kubernetes quantity, e.g. 4, 500m or "0.5" (quote fractions).'
    )
    memory: Quantity | None = Field(
        default=None, description="Memory per worker as a Kubernetes quantity, e.g. 16Gi or 512Mi."
    )
    gpu_models: list[Annotated[str, Field(min_length=1, max_length=63)]] = Field(
        default_factory=list,
        max_length=16,
        description="GPU models the job accepts, e.g. [H100, A100]; empty means any model.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    placement: Placement = Field(
        default=Placement.ON_PREM_ONLY,
        description=(
            "Which pools may run the job: OnPremOnly, CloudAllowed (on-demand cloud too) or SpotAllowed "
            "(spot cloud too) (default OnPremOnly)."
        ),
    )
    max_runtime: Duration | None = Field(
        default=None,
        description="Wall-clock limit of one attempt, e.g. 30m, 2h or 1h30m; the job fails when exceeded.",
    )
    preemptible: bool = Field(
        default=True, description="Whether higher-priority work may evict this job (default true)."
    )
    backoff_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Gang restarts after a failed worker before the job fails (default 3).",
    )
    template: PodTemplate = Field(description="The pod each worker runs: containers, env, volumes, tolerations.")
    provenance: Provenance | None = Field(
        default=None,
        description="Image digest, code revision, dataset reference and parameters, recorded as given.",
    )
    profile: JobProfile | None = Field(
        default=None,
        description="Operational intensity and amount of work; with it gpupool places the job on the GPU model "
        "its roofline estimates favour (cheapest or fastest run, see optimize) among those it may use.",
    )
    cpu_fallback: JobCpuFallback | None = Field(
        default=None,
        description="Whether this single-worker job may run on a CPU-only node (a GPUNodePool with gpusPerNode 0) "
        "instead of a GPU: Never; Allowed, once it has waited longer than cpuFallbackAfter and no GPU can take "
        "it; Preferred, on CPU first unless its profile estimates a GPU at less than half the CPU's cost. "
        "On CPU the pod requests no GPU and gets GPUPOOL_DEVICE=cpu; needs workers 1 and cpu (default Never).",
    )
    cpu_fallback_after: Duration | None = Field(
        default=None,
        description="How long a job with cpuFallback waits for a GPU, counted from when it was queued, before a "
        "CPU-only node may take it, e.g. 5m or 1h (default 5m).",
    )
    ttl_seconds_after_finished: int = Field(
        default=DEFAULT_TTL_SECONDS_AFTER_FINISHED,
        ge=0,
        le=MAX_TTL_SECONDS_AFTER_FINISHED,
        description=(
            "Seconds after the job succeeds or fails (status.finishedAt) before gpupool deletes it, as for a "
            "Kubernetes Job; 0 deletes it as soon as its last attempt is recorded. Every ended attempt's "
            "provenance record is also written to the operator's log, so it outlives the object "
            "(default 604800, 7 days)."
        ),
    )

    @property
    def falls_back(self) -> bool:
        """True when `cpuFallback` is Allowed or Preferred (unset means Never)."""
        return self.cpu_fallback not in (None, JobCpuFallback.NEVER)

    @model_validator(mode="after")
    def _gpus_whole_or_single_share(self) -> Self:
        """Mirror the CRD's CEL rules so an object built in Python fails the same way."""
        if self.gpus < 0.001:
            raise ValueError(f"spec.gpus={self.gpus} must be at least 0.001 (gpupool counts GPU shares in thousandths)")
        if self.gpus >= 1 and self.gpus != int(self.gpus):
            raise ValueError(
                f"spec.gpus={self.gpus} must be a whole number (1, 2, ...) or a fraction below 1 such as 0.5"
            )
        if self.gpus < 1 and self.workers != 1:
            raise ValueError(
                f"spec.gpus={self.gpus} is a fraction of a GPU, allowed only with spec.workers = 1 "
                f"(got {self.workers}); use whole GPUs for multi-worker jobs"
            )
        if self.falls_back and (self.workers != 1 or self.cpu is None):
            raise ValueError(
                f"{CPU_FALLBACK_RULE} (got spec.cpuFallback={self.cpu_fallback}, spec.workers={self.workers}, "
                f"spec.cpu={'unset' if self.cpu is None else self.cpu})"
            )
        return self


class WorkerPlacementStatus(StatusModel):
    """Where one worker runs and which GPUs it holds."""

    worker: int = Field(ge=0, description="Worker index, from 0 to workers-1.")
    pod: str = Field(description="Name of the worker's pod.")
    node: str = Field(description="Node the worker is bound to.")
    pool: str = Field(default="", description="GPUNodePool of the node, if any.")
    gpu_model: str = Field(default="", description="GPU model of the node.")
    gpu_indices: list[int] = Field(
        default_factory=list, max_length=16, description="Indices of the GPUs the worker holds on its node."
    )
    gpu_share: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of each listed GPU the worker holds (1 for whole GPUs, e.g. 0.5).",
    )
    gpu_uuids: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list,
        max_length=16,
        validation_alias="gpuUUIDs",
        serialization_alias="gpuUUIDs",
        description="UUIDs of the GPUs the node reports the worker's pod holds (a share: its reservation pod's "
        "GPU), in the order of gpuIndices; empty until reported.",
    )
    reservation: str | None = Field(
        default=None,
        max_length=317,
        description="A share on a node that reports its devices: namespace/name of the reservation pod that "
        "holds the share's whole GPU (requesting nvidia.com/gpu: 1); the share is given that GPU's UUID.",
    )
    devices: DeviceSource = Field(
        default=DeviceSource.PLANNED,
        description="Where gpuIndices come from: Planned (gpupool's choice; nodes without the agent's "
        "gpupool.io/pod-devices report, or before the report shows the pod) or Reported (the kubelet's "
        "allocation as the node agent reports it, indices through the node's gpupool.io/gpu-uuids map).",
    )


class AttemptUsage(StatusModel):
    """GPU time and cost of one ended attempt (attempts > 1: the oldest ones folded together)."""

    attempts: int = Field(default=1, ge=1, description="Attempts this entry holds (more than 1: folded).")
    started_at: datetime = Field(description="When the (first) attempt's workers were all running.")
    ended_at: datetime = Field(description="When the (last) attempt ended.")
    gpu_seconds: float = Field(default=0.0, ge=0, description="GPU-seconds the attempt(s) used.")
    cost: float = Field(default=0.0, ge=0, description="What the attempt(s) cost, at each worker's pool price.")
    cloud_gpu_seconds: float = Field(default=0.0, ge=0, description="The part of gpuSeconds on cloud pools.")
    cloud_cost: float = Field(default=0.0, ge=0, description="The part of cost on cloud pools.")


class AttemptOutcome(StrEnum):
    """How an attempt ended (an attempt still running has none)."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    RESTARTED = "Restarted"
    INTERRUPTED = "Interrupted"
    PREEMPTED = "Preempted"
    ADMISSION_REJECTED = "AdmissionRejected"


class GpuRun(StatusModel):
    """One GPU a worker held: its index on the node and, when the node's agent published it, its UUID."""

    index: int = Field(ge=0, description="Index of the GPU on its node (as in NVIDIA_VISIBLE_DEVICES).")
    uuid: str | None = Field(
        default=None,
        max_length=128,
        description="The GPU's UUID from the node's gpupool.io/gpu-uuids annotation; absent when unknown.",
    )


class ContainerRun(StatusModel):
    """One container of a worker pod: the image it named, what the runtime ran, how it exited."""

    name: str = Field(max_length=253, description="Container name.")
    image: str = Field(default="", max_length=4096, description="The image as the pod spec names it.")
    image_id: str | None = Field(
        default=None,
        validation_alias="imageID",
        serialization_alias="imageID",
        max_length=4096,
        description="status.containerStatuses[].imageID as the kubelet reported it; absent when not reported.",
    )
    digest: str | None = Field(
        default=None, max_length=512, description="The sha256 digest in imageID; absent when unknown."
    )
    exit_code: int | None = Field(default=None, description="Exit code once the container terminated.")


class WorkerRun(StatusModel):
    """Where one worker of an attempt ran and what it ran."""

    worker: int = Field(ge=0, description="Worker index.")
    pod: str = Field(description="Name of the worker's pod.")
    node: str = Field(description="Node the worker ran on.")
    pool: str = Field(default="", description="GPUNodePool of the node, if any.")
    gpu_model: str = Field(default="", description="GPU model of the node.")
    gpus: list[GpuRun] = Field(default_factory=list, max_length=16, description="The GPUs the worker held.")
    gpu_share: float = Field(default=1.0, ge=0, le=1, description="Share of each GPU held (1 for whole GPUs).")
    price_per_gpu_hour: float = Field(
        default=0.0,
        ge=0,
        description="The pool's price of one GPU-hour on this node (0 when unpriced, and for a run on a CPU-only "
        "node).",
    )
    price_per_core_hour: float = Field(
        default=0.0,
        ge=0,
        description="For a run on a CPU pool's node: the price of one CPU-core-hour there (its node-hour price over "
        "its cores); 0 otherwise.",
    )
    containers: list[ContainerRun] = Field(
        default_factory=list, max_length=64, description="The pod's containers, in the pod spec's order."
    )


class AttemptProvenance(StatusModel):
    """The provenance record of one attempt: what was declared, where it ran, what ran, how it ended."""

    attempt: int = Field(ge=1, description="The attempt's number (status.attempts when it ran).")
    outcome: AttemptOutcome | None = Field(
        default=None,
        description="Succeeded, Failed, Restarted, Interrupted, Preempted or AdmissionRejected; absent while it runs.",
    )
    admitted_at: datetime | None = Field(default=None, description="When the attempt was admitted.")
    started_at: datetime | None = Field(default=None, description="When all its workers were running.")
    ended_at: datetime | None = Field(default=None, description="When it ended.")
    image_digest: str | None = Field(default=None, max_length=512, description="spec.provenance.imageDigest.")
    code_revision: str | None = Field(default=None, max_length=512, description="spec.provenance.codeRevision.")
    dataset_ref: str | None = Field(default=None, max_length=2048, description="spec.provenance.datasetRef.")
    parameters_digest: str | None = Field(
        default=None,
        max_length=80,
        description="sha256 of spec.provenance.parameters as canonical JSON (the log line carries them whole).",
    )
    device: JobDevice | None = Field(
        default=None,
        description="CPU when the attempt ran on a CPU-only node (spec.cpuFallback); absent for a GPU attempt.",
    )
    workers: list[WorkerRun] = Field(default_factory=list, max_length=MAX_WORKERS, description="One per worker.")


class ProvenanceStatus(StatusModel):
    """Per attempt, what ran where: the last attempts, the current one included."""

    attempts: list[AttemptProvenance] = Field(
        default_factory=list,
        max_length=MAX_RECORDED_ATTEMPTS,
        description=(
            f"The last {MAX_RECORDED_ATTEMPTS} attempts at most, oldest first (fewer for large gangs); each ended "
            "attempt is also written to the operator's log."
        ),
    )
    omitted_attempts: int = Field(
        default=0, ge=0, description="Older attempts no longer kept here (their records are in the operator's log)."
    )


class ModelEstimate(StatusModel):
    """The roofline estimate of the job on one GPU model (and pool)."""

    model: str = Field(description="GPU model.")
    pool: str = Field(default="", description="GPUNodePool the estimate is priced for.")
    estimated_seconds: float = Field(ge=0, description="Estimated runtime in seconds.")
    estimated_cost: float = Field(ge=0, description="Estimated cost: runtime x GPUs x the pool's GPU-hour price.")


class ModelChoiceStatus(StatusModel):
    """Which GPU model the job's profile chose at its last admission, with the estimates."""

    model: str = Field(description="The GPU model the job was placed on.")
    pool: str = Field(default="", description="The GPUNodePool it was placed in.")
    optimize: ProfileOptimize = Field(description="What the choice minimised: Cost or Time.")
    estimated_seconds: float = Field(ge=0, description="Estimated runtime on the chosen model, in seconds.")
    estimated_cost: float = Field(ge=0, description="Estimated cost of the run on the chosen pool.")
    alternatives: list[ModelEstimate] = Field(
        default_factory=list, max_length=16, description="The best estimate on each other GPU model it could use."
    )


ADMISSION_REJECTION_LIMIT = 5
"""Kubelet admission rejections in a row that requeue a gang without counting as failures
(`gpupool.cluster.writes.lifecycle` applies it)."""


class AdmissionRejectionStatus(StatusModel):
    """The last time a kubelet refused one of the job's worker pods at admission."""

    pod: str = Field(description="The worker pod the kubelet refused.")
    node: str = Field(default="", description="The node whose kubelet refused it.")
    reason: str = Field(
        max_length=256,
        description="The kubelet's reason (the pod's status.reason), e.g. OutOfnvidia.com/gpu or "
        "UnexpectedAdmissionError.",
    )
    message: str | None = Field(default=None, max_length=1024, description="The kubelet's message, when it gave one.")
    at: datetime = Field(description="When gpupool saw the rejection and requeued the gang.")


class GPUJobStatus(StatusModel):
    """What gpupool has done with the job; written only by the operator."""

    phase: JobPhase | None = Field(
        default=None, description="Queued, Admitted, Running, Succeeded, Failed or Preempted."
    )
    message: str | None = Field(
        default=None, description="A sentence a person can act on, e.g. why the job is still waiting."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Kubernetes-style conditions (Admitted, Running, Finished, ...).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    queued_at: datetime | None = Field(default=None, description="When the job was first queued.")
    admitted_at: datetime | None = Field(default=None, description="When the current attempt was admitted.")
    started_at: datetime | None = Field(
        default=None, description="When all workers of the current attempt were running."
    )
    finished_at: datetime | None = Field(default=None, description="When the job succeeded or failed.")
    placement: list[WorkerPlacementStatus] = Field(
        default_factory=list,
        max_length=MAX_WORKERS,
        description="Per worker: pod, node, pool, GPU model, GPU indices and share.",
    )
    attempts: int = Field(
        default=0, ge=0, description="Attempts started so far (restarts after failure or preemption)."
    )
    failures: int = Field(
        default=0, ge=0, description="Attempts that ended with a failed worker; counted against spec.backoffLimit."
    )
    admission_rejections: int = Field(
        default=0,
        ge=0,
        description="Kubelet admission rejections of the job's pods in a row (reset when every worker runs): the "
        f"first {ADMISSION_REJECTION_LIMIT} requeue the gang without counting as failures, later ones count against "
        "spec.backoffLimit.",
    )
    last_admission_rejection: AdmissionRejectionStatus | None = Field(
        default=None,
        description="The last kubelet admission rejection in the current run of them: pod, node, the kubelet's "
        "reason and message, and when; cleared when every worker runs.",
    )
    gpu_seconds: float = Field(default=0.0, ge=0, description="GPU-seconds consumed over all attempts.")
    cost: float = Field(default=0.0, ge=0, description="Cost so far, in the currency of the queue's budget.")
    idle_since: datetime | None = Field(
        default=None,
        description="Since when every GPU of the job has been below its queue's idle threshold (unset: busy "
        "or unknown).",
    )
    usage_history: list[AttemptUsage] = Field(
        default_factory=list,
        max_length=MAX_RECORDED_ATTEMPTS,
        description=(
            f"GPU time and cost of each ended attempt, the last {MAX_RECORDED_ATTEMPTS} (older ones folded into the "
            "first entry); the queue's budget spend per period is derived from it."
        ),
    )
    provenance: ProvenanceStatus | None = Field(
        default=None,
        description="Per attempt: the declared provenance, the nodes, GPUs (with UUIDs), pool prices, the image "
        "digests that ran and the exit codes.",
    )
    model_choice: ModelChoiceStatus | None = Field(
        default=None,
        description="With spec.profile: the GPU model chosen at the last admission, its estimated runtime and "
        "cost, and the alternatives.",
    )
    device: JobDevice | None = Field(
        default=None,
        description="With spec.cpuFallback other than Never: what the last admission runs on, GPU or CPU (a "
        "CPU-only node, holding no GPU and no GPU quota); absent otherwise.",
    )
    device_reason: str | None = Field(
        default=None,
        max_length=1024,
        description="Why the last admission runs on CPU, e.g. runs on CPU node n0: waited 5m for a GPU, ...; "
        "absent on a GPU.",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this status was computed from."
    )


class GPUJob(BaseModel):
    """A whole GPUJob object as the API server returns it (metadata, spec, status)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    KIND: ClassVar[str] = "GPUJob"

    api_version: str = Field(default="gpupool.io/v1alpha1", description="gpupool.io/v1alpha1")
    kind: str = Field(default="GPUJob", description="GPUJob")
    metadata: Metadata = Field(default_factory=dict, description="Standard object metadata.")
    spec: GPUJobSpec
    status: GPUJobStatus = Field(default_factory=GPUJobStatus)
