"""`KubeWriter`: the `ClusterWriter` port over the Kubernetes Python client, plus the lists.

Who uses this: `gpupool.controllers.runner` builds one and hands it to the applier (for the
writes) and to its start-up and periodic re-lists (`list_custom`, `list_core`). Client
exceptions are turned into the typed errors of `gpupool.cluster.writes.ports` here and nowhere
else. Answers are read as JSON straight from the response (`_preload_content=False`):
building the client's model classes for every pod cost more CPU than the write itself.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpupool.api import (
    GROUP,
    VERSION,
    GPUJobStatus,
    GPUNodeClaimStatus,
    GPUNodePoolStatus,
    GPUQueueStatus,
    status_patch,
)
from gpupool.cluster.writes.ports import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ObjectRef,
    RawObject,
    Transient,
    WriteError,
)

log = logging.getLogger("gpupool.writer")

T = TypeVar("T")


def write_error(error: ApiException, what: str) -> WriteError:
    """The typed error for an API answer to the write `what` (e.g. "create pod ns/x")."""
    detail = f"{what}: HTTP {error.status} {error.reason}"
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    if message:
        detail = f"{detail}: {message}"
    status = error.status or 0
    if status == 404:
        return NotFound(detail)
    if status == 409:
        return Conflict(detail)
    if status in (401, 403):
        return Forbidden(detail)
    if status in (400, 422):
        return Invalid(detail)
    return Transient(detail)


def call_api(what: str, request: Callable[[], T]) -> T:
    """Run one API request; client exceptions become the port's typed errors (`write_error`).
    Also used by the ClusterAPI node provider."""
    try:
        return request()
    except ApiException as error:
        raise write_error(error, what) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise Transient(f"{what}: {error}") from error


def read_json(response: Any) -> RawObject:
    """The JSON body of a raw (`_preload_content=False`) response; the connection goes back
    to the pool (without `release_conn` every request would open a new TLS connection).
    Also used by the reflectors' lists."""
    try:
        body: RawObject = json.loads(response.data)
    finally:
        response.release_conn()
    return body


def drain(response: Any) -> None:
    """Read and drop a raw response's body, giving its connection back to the pool (an unread
    body must never go back to the pool). Also used by `gpupool bench e2e`."""
    try:
        response.data  # noqa: B018 - reading the body is the point
    finally:
        response.release_conn()


class KubeWriter:
    """Every write gpupool makes, through the generated Kubernetes client."""

    def __init__(self, api_client: client.ApiClient, component: str = "gpupool") -> None:
        # The generated client is typed against its model classes; gpupool passes plain
        # dicts (which it accepts), so the clients are held as Any.
        self._core: Any = client.CoreV1Api(api_client)
        self._custom: Any = client.CustomObjectsApi(api_client)
        self._component = component
        self._instance = f"{component}-{uuid.getnode():x}"

    # ---------------------------------------------------------------- reads (start-up and re-list)

    def list_custom(self, plural: str) -> tuple[list[RawObject], int]:
        """Every object of a gpupool kind, cluster-wide, and the list's resourceVersion."""
        result = read_json(self._custom.list_cluster_custom_object(GROUP, VERSION, plural, _preload_content=False))
        return list(result.get("items", [])), list_version(result)

    def list_core(self, what: str) -> tuple[list[RawObject], int]:
        """Every node or namespace, and the list's resourceVersion."""
        calls = {"nodes": self._core.list_node, "namespaces": self._core.list_namespace}
        result = read_json(calls[what](_preload_content=False))
        return list(result.get("items", [])), list_version(result)

    # ---------------------------------------------------------------- pods

    def create_pod(self, manifest: RawObject) -> RawObject | None:
        """Create a worker pod; an existing pod of that name counts as created (returns None)."""
        namespace = manifest["metadata"]["namespace"]
        what = f"create pod {namespace}/{manifest['metadata']['name']}"
        try:
            return call_api(
                what, lambda: read_json(self._core.create_namespaced_pod(namespace, manifest, _preload_content=False))
            )
        except Conflict:
            return None

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a pod at once; a pod that is already gone counts as deleted."""
        try:
            call_api(
                f"delete pod {namespace}/{name}",
                lambda: drain(
                    self._core.delete_namespaced_pod(name, namespace, grace_period_seconds=0, _preload_content=False)
                ),
            )
        except NotFound:
            return

    # ---------------------------------------------------------------- status

    def patch_job_status(self, namespace: str, name: str, status: GPUJobStatus) -> RawObject:
        """Replace a GPUJob's status (merge patch with every field); raises `NotFound` if gone."""
        return self._patch_status(f"gpujobs/{namespace}/{name}", "gpujobs", name, status_patch(status), namespace)

    def delete_job(self, namespace: str, name: str, uid: str | None) -> None:
        """Delete a GPUJob in the background (the garbage collector takes its pods), only while
        its uid is `uid`; one that is already gone counts as deleted."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            call_api(
                f"delete gpujob {namespace}/{name}",
                lambda: drain(
                    self._custom.delete_namespaced_custom_object(
                        GROUP, VERSION, namespace, "gpujobs", name, body=body, _preload_content=False
                    )
                ),
            )
        except NotFound:
            return

    def patch_queue_status(self, name: str, status: GPUQueueStatus) -> RawObject:
        """Replace a GPUQueue's status."""
        return self._patch_status(f"gpuqueues/{name}", "gpuqueues", name, status_patch(status))

    def patch_pool_status(self, name: str, status: GPUNodePoolStatus) -> RawObject:
        """Replace a GPUNodePool's status."""
        return self._patch_status(f"gpunodepools/{name}", "gpunodepools", name, status_patch(status))

    # ---------------------------------------------------------------- node claims and nodes

    def create_claim(self, manifest: RawObject) -> RawObject | None:
        """Create a GPUNodeClaim; an existing claim of that name counts as created (returns None)."""
        name = manifest["metadata"]["name"]
        try:
            return call_api(
                f"create gpunodeclaim {name}",
                lambda: read_json(
                    self._custom.create_cluster_custom_object(
                        GROUP, VERSION, "gpunodeclaims", manifest, _preload_content=False
                    )
                ),
            )
        except Conflict:
            return None

    def patch_claim_status(self, name: str, status: GPUNodeClaimStatus) -> RawObject:
        """Replace a GPUNodeClaim's status; raises `NotFound` if it is gone."""
        return self._patch_status(f"gpunodeclaims/{name}", "gpunodeclaims", name, status_patch(status))

    def delete_claim(self, name: str) -> None:
        """Delete a GPUNodeClaim; one that is already gone counts as deleted."""
        try:
            call_api(
                f"delete gpunodeclaim {name}",
                lambda: drain(
                    self._custom.delete_cluster_custom_object(
                        GROUP, VERSION, "gpunodeclaims", name, _preload_content=False
                    )
                ),
            )
        except NotFound:
            return

    def cordon_node(self, name: str) -> RawObject:
        """Mark node `name` unschedulable."""
        body = {"spec": {"unschedulable": True}}
        return call_api(
            f"cordon node {name}", lambda: read_json(self._core.patch_node(name, body, _preload_content=False))
        )

    def _patch_status(
        self, what: str, plural: str, name: str, body: RawObject, namespace: str | None = None
    ) -> RawObject:
        if namespace is None:
            request = lambda: self._custom.patch_cluster_custom_object_status(  # noqa: E731
                GROUP, VERSION, plural, name, body, _preload_content=False
            )
        else:
            request = lambda: self._custom.patch_namespaced_custom_object_status(  # noqa: E731
                GROUP, VERSION, namespace, plural, name, body, _preload_content=False
            )
        return call_api(f"patch status of {what}", lambda: read_json(request()))

    # ---------------------------------------------------------------- events

    def emit_event(self, about: ObjectRef, reason: str, message: str, event_type: str = "Normal") -> None:
        """Post a core/v1 Event about `about`; one about a cluster-scoped object (no namespace)
        goes to namespace default, where the API server accepts it."""
        now = datetime.datetime.now(datetime.UTC).isoformat()
        namespace = about.namespace or "default"
        body = {
            "metadata": {"generateName": f"{about.name or 'gpupool'}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": about.api_version,
                "kind": about.kind,
                "name": about.name,
                "namespace": about.namespace,
                "uid": about.uid,
                "resourceVersion": about.resource_version,
            },
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        call_api(
            f"post event {reason} about {about.namespace}/{about.name}",
            lambda: drain(self._core.create_namespaced_event(namespace, body, _preload_content=False)),
        )


def list_version(result: RawObject) -> int:
    """The resourceVersion of a list answer as a number (0 when absent or odd)."""
    try:
        return int((result.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0
