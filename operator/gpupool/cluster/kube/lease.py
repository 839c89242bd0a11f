"""The leader Lease in the API server: `KubeLeaseStore`, the `LeaseStore` the operator uses.

Who uses this: `gpupool.controllers.runner` hands it to `gpupool.cluster.kube.leader.LeaderElector`.
It reads, creates and replaces one `coordination.k8s.io/v1` Lease; a replace carries the
resourceVersion that was read, so the API server refuses it (409, `LeaseConflict`) when
another candidate wrote in between. Answers are read as raw JSON, so the MicroTime fields
stay the exact strings the API server holds.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from gpupool.cluster.kube.leader import LeaseConflict, LeaseRecord, StoredLease
from gpupool.cluster.kube.writer import call_api, read_json
from gpupool.cluster.writes.ports import Conflict, NotFound, RawObject


def record_of(lease: RawObject) -> StoredLease:
    """The record and resourceVersion of a Lease as the API server returned it."""
    spec = lease.get("spec") or {}
    record = LeaseRecord(
        holder=spec.get("holderIdentity") or None,
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=spec.get("acquireTime"),
        renew_time=spec.get("renewTime"),
        transitions=int(spec.get("leaseTransitions") or 0),
    )
    return StoredLease(record, str(lease["metadata"]["resourceVersion"]))


def lease_body(namespace: str, name: str, record: LeaseRecord, resource_version: str | None = None) -> RawObject:
    """The Lease object that stores `record` (with `resource_version` for a replace)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    spec = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_duration_seconds,
        "acquireTime": record.acquire_time,
        "renewTime": record.renew_time,
        "leaseTransitions": record.transitions,
    }
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {key: value for key, value in spec.items() if value is not None},
    }


class KubeLeaseStore:
    """One named Lease, read and written with the operator's API client."""

    def __init__(self, api_client: Any, namespace: str, name: str) -> None:
        # Typed against its model classes, the generated client accepts plain dicts: held as Any.
        self.api: Any = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name

    def get(self, timeout: float) -> StoredLease | None:
        what = f"read lease {self.namespace}/{self.name}"
        try:
            response = call_api(
                what,
                lambda: self.api.read_namespaced_lease(
                    self.name, self.namespace, _preload_content=False, _request_timeout=timeout
                ),
            )
        except NotFound:
            return None
        return record_of(read_json(response))

    def create(self, record: LeaseRecord, timeout: float) -> StoredLease:
        body = lease_body(self.namespace, self.name, record)
        what = f"create lease {self.namespace}/{self.name}"
        return self._write(
            what,
            lambda: self.api.create_namespaced_lease(
                self.namespace, body, _preload_content=False, _request_timeout=timeout
            ),
        )

    def replace(self, record: LeaseRecord, resource_version: str, timeout: float) -> StoredLease:
        body = lease_body(self.namespace, self.name, record, resource_version)
        what = f"replace lease {self.namespace}/{self.name}"
        return self._write(
            what,
            lambda: self.api.replace_namespaced_lease(
                self.name, self.namespace, body, _preload_content=False, _request_timeout=timeout
            ),
        )

    @staticmethod
    def _write(what: str, request: Any) -> StoredLease:
        try:
            response = call_api(what, request)
        except Conflict as error:
            raise LeaseConflict(str(error)) from error
        return record_of(read_json(response))
