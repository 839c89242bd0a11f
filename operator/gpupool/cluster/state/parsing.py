"""What each kind becomes when it enters the cache: parsed once per stored version.

Who calls this: `gpupool.controllers.runner` hands `parse_object_of` to the
`ClusterCache`, which calls it once for every new version of an object it stores. Every
later reader (the loop's lifecycle step, the snapshot builder, the status reporter) reads
the parsed value from the cache and never parses again.

- GPUJob -> `ParsedJob`: the API model and, for jobs that still take part in scheduling,
  the core `Job` (or why it cannot be converted: that job keeps its API model, so its
  status can still say what is wrong).
- GPUQueue, GPUNodePool -> their API models.
- Node -> `NodeDevices` (`gpupool.cluster.translate.devices`): the node agent's report of which pod
  holds which GPU and its index -> UUID map. The node becomes a core `GpuNode` only
  together with the pools (`gpupool.cluster.translate.snapshot`), from the raw object.
- Pod, Namespace -> the raw object itself (read-only): pods are read by the pure
  lifecycle rules as they are.
- A share reservation pod (`Kind.RESERVATION`) -> `Reservation`
  (`gpupool.cluster.writes.reservations`): its node, slot and phase.
- A pod gpupool did not create (`Kind.FOREIGN_POD`) -> `ForeignUsage`, what it holds on its
  node. Its reflector stores only `compact_foreign_pod(raw)`, so thousands of such pods
  cost the cache little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gpupool.api import (
    GPUJob,
    InvalidObjectError,
    parse_gpujob,
    parse_gpunodeclaim,
    parse_gpunodepool,
    parse_gpuqueue,
)
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.translate.convert import (
    GPU_RESOURCE,
    ConversionError,
    job_from_api,
    parse_cpu_milli,
    parse_memory_bytes,
    parse_quantity,
)
from gpupool.cluster.translate.devices import node_devices
from gpupool.cluster.writes.reservations import reservation_of
from gpupool.core.models import Job

_PARSE_ERRORS = (InvalidObjectError, ValidationError, ConversionError, ValueError)


@dataclass(frozen=True, slots=True)
class ParsedJob:
    """A GPUJob as the cache holds it: its API model and its core value.

    `core` is None when the job cannot be converted; `core_error` then says why (the job is
    reported, not scheduled).
    """

    api: GPUJob
    core: Job | None
    core_error: str | None


def parse_job(raw: Mapping[str, Any]) -> ParsedJob:
    """Parse a raw GPUJob and convert it to the core's `Job`; raises `InvalidObjectError`."""
    api = parse_gpujob(raw)
    try:
        core = job_from_api(api)
    except (ConversionError, ValueError) as error:
        return ParsedJob(api=api, core=None, core_error=str(error))
    return ParsedJob(api=api, core=core, core_error=None)


@dataclass(frozen=True, slots=True)
class ForeignUsage:
    """What one pod gpupool does not manage holds on its node, in the core's units."""

    node: str
    gpus: int
    cpu_milli: int
    memory_bytes: int


def _pod_requests(spec: Mapping[str, Any]) -> dict[str, int]:
    """A pod's effective requests, as the kube-scheduler counts them: the larger of the sum
    over its containers and the largest init container, plus the pod overhead; an extended
    resource's limit stands in for a request it lacks."""

    def requests_of(container: Mapping[str, Any]) -> dict[str, Any]:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        found = dict(resources.get("requests") or {})
        if GPU_RESOURCE in limits and GPU_RESOURCE not in found:
            found[GPU_RESOURCE] = limits[GPU_RESOURCE]
        return found

    def amounts(requests: Mapping[str, Any]) -> tuple[int, int, int]:
        gpus = int(parse_quantity(requests.get(GPU_RESOURCE, 0), what=GPU_RESOURCE))
        return gpus, parse_cpu_milli(requests.get("cpu", 0)), parse_memory_bytes(requests.get("memory", 0))

    main = [amounts(requests_of(c)) for c in spec.get("containers") or []]
    init = [amounts(requests_of(c)) for c in spec.get("initContainers") or []]
    overhead = amounts(spec.get("overhead") or {})
    total = [sum(values) for values in zip(*main, strict=True)] if main else [0, 0, 0]
    largest_init = [max(values) for values in zip(*init, strict=True)] if init else [0, 0, 0]
    gpus, cpu, memory = (max(a, b) + c for a, b, c in zip(total, largest_init, overhead, strict=True))
    return {"gpus": gpus, "cpuMilli": cpu, "memoryBytes": memory}


def compact_foreign_pod(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The little of a foreign pod the cache keeps: its name, version, node and requests
    (already in the core's units, so storing it parses each quantity once)."""
    metadata = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    try:
        requests = _pod_requests(spec)
    except (ConversionError, ValueError):
        requests = {}
    return {
        "metadata": {key: metadata.get(key) for key in ("name", "namespace", "resourceVersion")},
        "spec": {"nodeName": spec.get("nodeName") or ""},
        "requests": requests,
    }


def foreign_usage(raw: Mapping[str, Any]) -> ForeignUsage:
    """`ForeignUsage` from a compact foreign pod (`compact_foreign_pod`)."""
    requests = raw.get("requests") or {}
    return ForeignUsage(
        node=str((raw.get("spec") or {}).get("nodeName") or ""),
        gpus=int(requests.get("gpus", 0)),
        cpu_milli=int(requests.get("cpuMilli", 0)),
        memory_bytes=int(requests.get("memoryBytes", 0)),
    )


def parse_object_of(kind: Kind, raw: Mapping[str, Any]) -> tuple[Any, str | None]:
    """`(model, None)` for an object of `kind`, or `(None, reason)` when it cannot be read."""
    try:
        if kind == Kind.FOREIGN_POD:
            return foreign_usage(raw), None
        if kind == Kind.NODE:
            return node_devices(raw), None
        if kind == Kind.RESERVATION:
            return reservation_of(raw), None
        if kind == Kind.JOB:
            return parse_job(raw), None
        if kind == Kind.QUEUE:
            return parse_gpuqueue(raw), None
        if kind == Kind.POOL:
            return parse_gpunodepool(raw), None
        if kind == Kind.CLAIM:
            return parse_gpunodeclaim(raw), None
    except _PARSE_ERRORS as error:
        return None, str(error)
    return raw, None
