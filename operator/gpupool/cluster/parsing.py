"""What each kind becomes when it enters the cache: parsed once per stored version.

Who calls this: `gpupool.controllers.runner` hands `parse_object_of` to the
`ClusterCache`, which calls it once for every new version of an object it stores. Every
later reader (the loop's lifecycle step, the snapshot builder, the status reporter) reads
the parsed value from the cache and never parses again.

- GPUJob -> `ParsedJob`: the API model and, for jobs that still take part in scheduling,
  the core `Job` (or why it cannot be converted: that job keeps its API model, so its
  status can still say what is wrong).
- GPUQueue, GPUNodePool -> their API models.
- Node, Pod, Namespace -> the raw object itself (read-only): nodes become core `GpuNode`s
  only together with the pools (`gpupool.cluster.snapshot`), pods are read by the pure
  lifecycle rules as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gpupool.api import GPUJob, InvalidObjectError, parse_gpujob, parse_gpunodepool, parse_gpuqueue
from gpupool.cluster.cache import Kind
from gpupool.cluster.convert import ConversionError, job_from_api
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


def parse_object_of(kind: Kind, raw: Mapping[str, Any]) -> tuple[Any, str | None]:
    """`(model, None)` for an object of `kind`, or `(None, reason)` when it cannot be read."""
    try:
        if kind == Kind.JOB:
            return parse_job(raw), None
        if kind == Kind.QUEUE:
            return parse_gpuqueue(raw), None
        if kind == Kind.POOL:
            return parse_gpunodepool(raw), None
    except _PARSE_ERRORS as error:
        return None, str(error)
    return raw, None
