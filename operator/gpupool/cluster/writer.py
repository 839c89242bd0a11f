"""Every write the operator makes to the API server, in one place.

Who uses this: the scheduling loop (`gpupool.controllers.loop`) only. Each write is
idempotent: creating a pod that exists is success (deterministic names), deleting one that
is gone is success, and status patches carry the whole new status. Each method returns the
object the API server answered with, so the loop can record it in the cache at once
("assume") and never decide on a state older than its own write.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gpupool.api import GROUP, VERSION

log = logging.getLogger("gpupool.writer")

RawObject = dict[str, Any]


class ClusterWriter:
    """Thin, typed wrapper over the Kubernetes client for the writes gpupool makes."""

    def __init__(self, api_client: client.ApiClient, component: str = "gpupool") -> None:
        # The generated client is typed against its model classes; gpupool passes plain
        # dicts (which it accepts), so the clients are held as Any.
        self._core: Any = client.CoreV1Api(api_client)
        self._custom: Any = client.CustomObjectsApi(api_client)
        self._serialize = api_client.sanitize_for_serialization
        self._component = component

    # ---------------------------------------------------------------- reads (start-up list)

    def list_custom(self, plural: str) -> list[RawObject]:
        """Every object of a gpupool kind, cluster-wide."""
        result = self._custom.list_cluster_custom_object(GROUP, VERSION, plural)
        return list(result.get("items", []))

    def list_core(self, what: str, **selector: str) -> list[RawObject]:
        """Every node, namespace, or (gpupool-labelled) pod."""
        if what == "nodes":
            items = self._core.list_node(**selector).items
        elif what == "namespaces":
            items = self._core.list_namespace(**selector).items
        else:
            items = self._core.list_pod_for_all_namespaces(**selector).items
        return [self._serialize(item) for item in items]

    # ---------------------------------------------------------------- pods

    def create_pod(self, manifest: RawObject) -> RawObject | None:
        """Create a worker pod; an existing pod of that name counts as created (returns None)."""
        namespace = manifest["metadata"]["namespace"]
        try:
            created = self._core.create_namespaced_pod(namespace, manifest)
        except ApiException as error:
            if error.status == 409:
                return None
            raise
        result: RawObject = self._serialize(created)
        return result

    def delete_pod(self, namespace: str, name: str, grace_seconds: int = 0) -> None:
        """Delete a pod; a pod that is already gone counts as deleted."""
        try:
            self._core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace_seconds)
        except ApiException as error:
            if error.status != 404:
                raise

    # ---------------------------------------------------------------- status

    def patch_job_status(self, namespace: str, name: str, status: RawObject) -> RawObject | None:
        """Merge-patch a GPUJob's status; None when the job is gone."""
        try:
            result: RawObject = self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, "gpujobs", name, {"status": status}
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return result

    def patch_cluster_status(self, plural: str, name: str, status: RawObject) -> RawObject | None:
        """Merge-patch the status of a cluster-scoped gpupool object (queue or pool)."""
        try:
            result: RawObject = self._custom.patch_cluster_custom_object_status(
                GROUP, VERSION, plural, name, {"status": status}
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return result

    # ---------------------------------------------------------------- events

    def emit_event(self, obj: RawObject, reason: str, message: str, event_type: str = "Normal") -> None:
        """Post a core/v1 Event about `obj` (a GPUJob); failures are logged, never raised."""
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace") or "default"
        now = datetime.datetime.now(datetime.UTC)
        body = {
            "metadata": {"generateName": f"{metadata.get('name', 'gpupool')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": metadata.get("name"),
                "namespace": namespace,
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": f"{self._component}-{uuid.getnode():x}",
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        try:
            self._core.create_namespaced_event(namespace, body)
        except ApiException as error:
            log.warning("could not post event", extra={"reason": reason, "status": error.status})
