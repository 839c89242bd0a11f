"""The writer port: every write gpupool makes to the cluster, as a protocol with typed errors.

Who uses this: the applier (`gpupool.cluster.writes.apply`) writes through a `ClusterWriter` only;
the operator wires in `gpupool.cluster.kube.writer.KubeWriter` (the Kubernetes client), unit
tests wire in `gpupool.cluster.writes.recording.RecordingWriter`, which records each call and
fails on demand. Kubernetes client exceptions never cross this boundary: the real writer
turns them into the errors below, so callers decide by what happened, not by HTTP codes.

Every write is idempotent: creating a pod that exists returns None (names are
deterministic), deleting one that is gone succeeds, a status write carries the whole new
status. Writes that answer with an object return it, so the caller can record it in the
cache at once ("assume").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gpupool.api import GPUJobStatus, GPUNodeClaimStatus, GPUNodePoolStatus, GPUQueueStatus

RawObject = dict[str, Any]


class WriteError(Exception):
    """A write the API server refused or could not answer; the message says which and why."""


class Conflict(WriteError):
    """The object changed meanwhile (HTTP 409 on an update); retry from a fresh read."""


class NotFound(WriteError):
    """The object (or its namespace) is gone (HTTP 404)."""


class Forbidden(WriteError):
    """gpupool's service account may not make this write (HTTP 401/403): fix its RBAC."""


class Invalid(WriteError):
    """The API server rejected the object as invalid (HTTP 400/422): the message names the field."""


class Transient(WriteError):
    """Timeouts, throttling (429), server errors (5xx) and lost connections: retry later."""


@dataclass(frozen=True)
class EventNote:
    """A core/v1 Event to post about an object: reason, sentence, Normal or Warning."""

    reason: str
    message: str
    type: str = "Normal"


@dataclass(frozen=True)
class ObjectRef:
    """What an Event is about: enough of an object to name it (`involvedObject`)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None = None
    resource_version: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any], *, api_version: str, kind: str) -> ObjectRef:
        """The reference of a raw object or of a model's `metadata` mapping."""
        metadata = obj.get("metadata", obj) or {}
        return cls(
            api_version=api_version,
            kind=kind,
            namespace=str(metadata.get("namespace") or "default"),
            name=str(metadata.get("name") or ""),
            uid=metadata.get("uid"),
            resource_version=metadata.get("resourceVersion"),
        )


class ClusterWriter(Protocol):
    """The writes of the scheduling loop (see the module docstring for the error contract)."""

    def create_pod(self, manifest: RawObject) -> RawObject | None:
        """Create a pod; the created pod, or None when a pod of that name already exists."""

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a pod at once (grace period 0); a pod already gone counts as deleted."""

    def patch_job_status(self, namespace: str, name: str, status: GPUJobStatus) -> RawObject:
        """Replace a GPUJob's status; the updated job. Raises `NotFound` when the job is gone."""

    def delete_job(self, namespace: str, name: str, uid: str | None) -> None:
        """Delete a GPUJob (its pods go with it, by their owner reference), only if its uid is
        still `uid`; one already gone counts as deleted, another uid raises `Conflict`."""

    def patch_queue_status(self, name: str, status: GPUQueueStatus) -> RawObject:
        """Replace a GPUQueue's status; the updated queue."""

    def patch_pool_status(self, name: str, status: GPUNodePoolStatus) -> RawObject:
        """Replace a GPUNodePool's status; the updated pool."""

    def emit_event(self, about: ObjectRef, reason: str, message: str, event_type: str = "Normal") -> None:
        """Post a core/v1 Event about `about`."""

    def create_claim(self, manifest: RawObject) -> RawObject | None:
        """Create a GPUNodeClaim; the created claim, or None when one of that name exists."""

    def patch_claim_status(self, name: str, status: GPUNodeClaimStatus) -> RawObject:
        """Replace a GPUNodeClaim's status; the updated claim. Raises `NotFound` when it is gone."""

    def delete_claim(self, name: str) -> None:
        """Delete a GPUNodeClaim; one already gone counts as deleted."""

    def cordon_node(self, name: str) -> RawObject:
        """Mark a node unschedulable (before it is released); the updated node."""
