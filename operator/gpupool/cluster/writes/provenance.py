"""Each attempt's provenance record, its digest check, its log line and the finished-job TTL.

Who calls this: the planner (`gpupool.cluster.writes.plan`) opens an attempt's record when it
admits the job, refreshes it at each lifecycle step from the worker pods and the nodes, and
closes it in the status write that ends the attempt; the applier
(`gpupool.cluster.writes.apply`) logs each closed record (`LOG_NAME`) once that write succeeded;
`gpupool provenance` (`gpupool.cli`) prints the records with `render_text`. Everything here
is pure: pods and nodes come in as the API server returns them.

Where each field comes from:
- declared: `spec.provenance` (imageDigest, codeRevision, datasetRef; the parameters as a
  sha256 of their canonical JSON, since they can be large and are kept whole in the log);
- workers: `status.placement` (pod, node, pool, GPU model, GPU indices and share), the GPU
  UUIDs the node reports the worker's pod holds (`status.placement[].gpuUUIDs`, devices
  Reported: the kubelet's allocation as the node agent publishes it, see
  `gpupool.cluster.translate.devices`); on a node that reports no devices (kwok: the fallback), the
  UUIDs the node's `gpupool.io/gpu-uuids` annotation gives the planned indices; never the
  UUID of a planned index on a node that reports devices (that GPU may be another pod's);
  the pool's price per GPU-hour at the time;
- per container: the image the pod spec names, `status.containerStatuses[].imageID` and
  the `@sha256:...` digest in it, and `state.terminated.exitCode`;
- times: `admittedAt`, `startedAt` from the status, `endedAt` and the outcome when it ends.

A record only gains facts: a value seen once (an imageID, an exit code, a UUID) stays when
the pod or the annotation that showed it is gone. A bare `sha256:...` imageID is the
runtime's image ID, not a registry digest (containerd reports one for an image it has no
repo digest for), so it is kept as `imageID` but gives no `digest`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from gpupool.api import (
    AttemptOutcome,
    AttemptProvenance,
    ContainerRun,
    DeviceSource,
    GPUJob,
    GPUJobStatus,
    GpuRun,
    JobPhase,
    ProvenanceStatus,
    WorkerPlacementStatus,
    WorkerRun,
)
from gpupool.cluster.translate.convert import parse_timestamp
from gpupool.cluster.writes.ports import EventNote
from gpupool.cluster.writes.status import with_condition
from gpupool.core.accounting import PriceUnit, Rate
from gpupool.core.budget import MAX_RECORDED_ATTEMPTS
from gpupool.core.models import Device

RawObject = Mapping[str, Any]

CONDITION = "ProvenanceVerified"
MISMATCH_REASON = "ImageDigestMismatch"
LOG_NAME = "gpupool.provenance"
MAX_RECORDED_WORKER_RUNS = 1024
"""Worker entries kept over all attempts of one job (the current attempt is always kept):
a status stays well under the API server's object size limit even for a large gang."""


class NodeFacts(Protocol):
    """What the record needs to know about nodes (`ClusterSnapshot` is one)."""

    gpu_uuids: dict[str, dict[int, str]]

    def rate(self, pool: str, node: str) -> Rate: ...

    def reports_devices(self, node: str) -> bool: ...


# --------------------------------------------------------------------------- digests


def digest_of(reference: str | None) -> str | None:
    """The `algorithm:hex` digest in an image reference or imageID (`repo@sha256:...`,
    `docker-pullable://repo@sha256:...`), lower-cased; None without an `@` digest."""
    if not reference or "@" not in reference:
        return None
    digest = reference.rsplit("@", 1)[1].strip().lower()
    algorithm, _, value = digest.partition(":")
    return digest if algorithm and value else None


def declared_digest(value: str | None) -> str | None:
    """`spec.provenance.imageDigest` as a comparable digest: `sha256:abc` or `repo@sha256:abc`."""
    if not value:
        return None
    return digest_of(value) if "@" in value else value.strip().lower()


def parameters_digest(parameters: Mapping[str, Any]) -> str | None:
    """sha256 of the parameters as canonical JSON (sorted keys, no spaces); None when empty."""
    if not parameters:
        return None
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return f"sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


# --------------------------------------------------------------------------- building a record


def _containers(pod: RawObject, previous: Sequence[ContainerRun]) -> list[ContainerRun]:
    before = {c.name: c for c in previous}
    statuses = {
        s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or [] if isinstance(s, dict)
    }
    out = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        if not isinstance(container, dict) or not container.get("name"):
            continue
        name = str(container["name"])
        seen = statuses.get(name) or {}
        old = before.get(name)
        image_id = str(seen.get("imageID") or "") or (old.image_id if old else None)
        terminated = (seen.get("state") or {}).get("terminated") or {}
        exit_code = terminated.get("exitCode")
        out.append(
            ContainerRun(
                name=name,
                image=str(container.get("image") or seen.get("image") or ""),
                image_id=image_id,
                digest=digest_of(image_id) or (old.digest if old else None),
                exit_code=int(exit_code) if isinstance(exit_code, int) else (old.exit_code if old else None),
            )
        )
    return out or list(previous)


def worker_run(
    where: WorkerPlacementStatus, pod: RawObject | None, facts: NodeFacts, previous: WorkerRun | None
) -> WorkerRun:
    """One worker's entry from its placement, its pod (None: not there) and the nodes."""
    uuids: Mapping[int, str] = {} if facts.reports_devices(where.node) else facts.gpu_uuids.get(where.node) or {}
    if where.devices == DeviceSource.REPORTED:
        uuids = dict(zip(where.gpu_indices, where.gpu_uuids, strict=False))
    known = {g.index: g.uuid for g in previous.gpus} if previous else {}
    earlier = previous.containers if previous else []
    rate = facts.rate(where.pool, where.node)
    return WorkerRun(
        worker=where.worker,
        pod=where.pod,
        node=where.node,
        pool=where.pool,
        gpu_model=where.gpu_model,
        gpus=[GpuRun(index=i, uuid=uuids.get(i) or known.get(i)) for i in where.gpu_indices],
        gpu_share=where.gpu_share,
        price_per_gpu_hour=round(rate.price, 6) if rate.unit == PriceUnit.GPU else 0.0,
        price_per_core_hour=round(rate.price, 6) if rate.unit == PriceUnit.CPU_CORE else 0.0,
        containers=_containers(pod, earlier) if pod is not None else list(earlier),
    )


def stored_record(status: GPUJobStatus, attempt: int) -> AttemptProvenance | None:
    """The record of `attempt` in a status, if there is one."""
    if status.provenance is None:
        return None
    return next((a for a in status.provenance.attempts if a.attempt == attempt), None)


def attempt_record(
    job: GPUJob,
    *,
    attempt: int,
    placement: Sequence[WorkerPlacementStatus],
    pods_by_worker: Mapping[int, RawObject],
    facts: NodeFacts,
    admitted_at: datetime | None,
    started_at: datetime | None,
    outcome: AttemptOutcome | None = None,
    ended_at: datetime | None = None,
    on_cpu: bool = False,
) -> AttemptProvenance:
    """The record of `attempt`: the stored one (if any) with what the pods and nodes show now.
    `on_cpu` marks a new attempt that runs on a CPU-only node (a stored record keeps its mark)."""
    previous = stored_record(job.status, attempt)
    before = {w.worker: w for w in previous.workers} if previous else {}
    declared = job.spec.provenance
    workers = [worker_run(w, pods_by_worker.get(w.worker), facts, before.get(w.worker)) for w in placement]
    return AttemptProvenance(
        attempt=attempt,
        outcome=outcome,
        admitted_at=admitted_at,
        started_at=started_at,
        ended_at=ended_at,
        image_digest=declared.image_digest if declared else None,
        code_revision=declared.code_revision if declared else None,
        dataset_ref=declared.dataset_ref if declared else None,
        parameters_digest=parameters_digest(declared.parameters) if declared else None,
        device=Device.CPU if on_cpu else (previous.device if previous else None),
        workers=workers,
    )


def with_record(history: ProvenanceStatus | None, record: AttemptProvenance) -> ProvenanceStatus:
    """`history` with `record` in place of its attempt's entry (or added), bounded: at most
    `MAX_RECORDED_ATTEMPTS` attempts and `MAX_RECORDED_WORKER_RUNS` worker entries, the
    oldest dropped first (counted in `omittedAttempts`), never the newest."""
    kept = [a for a in (history.attempts if history else []) if a.attempt != record.attempt]
    attempts = sorted([*kept, record], key=lambda a: a.attempt)
    omitted = history.omitted_attempts if history else 0
    while len(attempts) > 1 and (
        len(attempts) > MAX_RECORDED_ATTEMPTS or sum(len(a.workers) for a in attempts) > MAX_RECORDED_WORKER_RUNS
    ):
        attempts.pop(0)
        omitted += 1
    return ProvenanceStatus(attempts=attempts, omitted_attempts=omitted)


# --------------------------------------------------------------------------- the digest check


def verification(job: GPUJob, record: AttemptProvenance) -> tuple[bool | None, str, str] | None:
    """`(holds, reason, message)` of the `ProvenanceVerified` condition for the attempt's record,
    or None when the job declares no image digest. Each worker's first container (the one
    gpupool gives the GPUs) is compared: any digest that differs makes it False, all equal
    True, otherwise (a runtime that has not reported, or never reports, a digest) Unknown."""
    declared = declared_digest(job.spec.provenance.image_digest if job.spec.provenance else None)
    if declared is None:
        return None
    unknown = []
    for worker in record.workers:
        main = worker.containers[0] if worker.containers else None
        if main is None or main.digest is None:
            unknown.append(worker.worker)
            continue
        if main.digest != declared:
            return (
                False,
                MISMATCH_REASON,
                f"spec.provenance.imageDigest is {declared} but worker {worker.worker} (pod {worker.pod}, "
                f"container {main.name}) ran {main.digest} in attempt {record.attempt}",
            )
    if unknown:
        listed = ", ".join(str(w) for w in unknown)
        return (
            None,
            "DigestNotReported",
            f"no image digest reported yet for worker(s) {listed} of attempt {record.attempt} (the container "
            "runtime reports imageID once a container runs; kwok never does)",
        )
    return True, "DigestMatches", f"every worker of attempt {record.attempt} ran {declared}"


def recorded(
    job: GPUJob, status: GPUJobStatus, record: AttemptProvenance, now: float, generation: int | None
) -> tuple[GPUJobStatus, tuple[EventNote, ...]]:
    """`status` with `record` stored and the `ProvenanceVerified` condition set from it; an
    `ImageDigestMismatch` Warning event when the condition turns False (judged against the
    job's stored status, so it is posted once and again after a failed write)."""
    update: dict[str, Any] = {"provenance": with_record(status.provenance, record)}
    events: tuple[EventNote, ...] = ()
    verdict = verification(job, record)
    if verdict is not None:
        holds, reason, message = verdict
        update["conditions"] = with_condition(status.conditions, CONDITION, holds, reason, message, now, generation)
        was_false = any(c.type == CONDITION and c.status.value == "False" for c in job.status.conditions)
        if holds is False and not was_false:
            events = (EventNote(MISMATCH_REASON, message, "Warning"),)
    return status.model_copy(update=update), events


# --------------------------------------------------------------------------- the log line


def log_record(job: GPUJob, record: AttemptProvenance) -> dict[str, Any]:
    """What the `gpupool.provenance` log line carries for an ended attempt: the job's identity,
    every field of the record, and the declared parameters whole."""
    metadata = job.metadata
    body = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "job": f"{metadata.get('namespace')}/{metadata.get('name')}",
        "uid": metadata.get("uid"),
        "queue": job.spec.queue,
        **body,
        "parameters": dict(job.spec.provenance.parameters) if job.spec.provenance else {},
    }


# --------------------------------------------------------------------------- time to live


def expires_at(job: GPUJob) -> float | None:
    """When a finished job may be deleted: `finishedAt + spec.ttlSecondsAfterFinished`; None for
    a job that has not succeeded or failed (or has no `finishedAt`)."""
    if job.status.phase not in (JobPhase.SUCCEEDED, JobPhase.FAILED):
        return None
    finished = parse_timestamp(job.status.finished_at)
    if finished is None:
        return None
    return finished + job.spec.ttl_seconds_after_finished


def expired(job: GPUJob, now: float) -> bool:
    """True when `job` finished at least its TTL ago (and is not already being deleted)."""
    at = expires_at(job)
    return at is not None and now >= at and not job.metadata.get("deletionTimestamp")


# --------------------------------------------------------------------------- for people


def render_text(key: str, status: Mapping[str, Any]) -> str:
    """A readable block per attempt from a GPUJob's raw `status` (what `gpupool provenance` prints)."""
    provenance = status.get("provenance") or {}
    attempts = provenance.get("attempts") or []
    lines = [f"GPUJob {key}: phase {status.get('phase') or '-'}"]
    for condition in status.get("conditions") or []:
        if condition.get("type") == CONDITION:
            verdict = f"{condition.get('status')} ({condition.get('reason')})"
            lines.append(f"  {CONDITION}={verdict}: {condition.get('message')}")
    if provenance.get("omittedAttempts"):
        lines.append(f"  {provenance['omittedAttempts']} older attempt(s) not kept here (see the operator's log)")
    if not attempts:
        lines.append("  no attempt recorded yet")
    for attempt in attempts:
        lines.append("")
        lines.append(f"attempt {attempt.get('attempt')}: {attempt.get('outcome') or 'running'}")
        for label, field in (("admitted", "admittedAt"), ("started", "startedAt"), ("ended", "endedAt")):
            lines.append(f"  {label:<9} {attempt.get(field) or '-'}")
        for label, field in (
            ("image", "imageDigest"),
            ("code", "codeRevision"),
            ("dataset", "datasetRef"),
            ("params", "parametersDigest"),
        ):
            lines.append(f"  {label:<9} {attempt.get(field) or '(not declared)'}")
        for worker in attempt.get("workers") or []:
            gpus = ", ".join(f"{g.get('index')}={g.get('uuid') or 'uuid unknown'}" for g in worker.get("gpus") or [])
            share = worker.get("gpuShare", 1)
            lines.append(
                f"  worker {worker.get('worker')}  pod {worker.get('pod')}  node {worker.get('node')}  "
                f"pool {worker.get('pool') or '-'}  {worker.get('gpuModel') or '-'}  "
                + (
                    f"{worker.get('pricePerCoreHour')}/core-hour"
                    if worker.get("pricePerCoreHour")
                    else f"{worker.get('pricePerGpuHour', 0)}/GPU-hour"
                )
            )
            lines.append(f"    GPUs {gpus or '-'}" + (f" (share {share})" if share != 1 else ""))
            for container in worker.get("containers") or []:
                exit_code = container.get("exitCode")
                lines.append(
                    f"    container {container.get('name')}  image {container.get('image') or '-'}  "
                    f"ran {container.get('digest') or container.get('imageID') or 'digest unknown'}  "
                    f"exit {exit_code if exit_code is not None else '-'}"
                )
    return "\n".join(lines)
