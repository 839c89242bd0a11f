"""`RecordingWriter`: an in-memory `ClusterWriter` that records every call and fails on demand;
`RecordingProvider`, the same for the `NodeProvider` port.

Who uses this: unit tests of the applier and the loop (and, later, fault tests) stand it in
for the API server's writes, in the shape of Karpenter's fake cloud provider: each call is
appended to `calls` as a `Call`, and `fail_next(verb, error)` makes the next call of that
verb raise `error` instead of writing; every event posted is also kept whole in
`events`. Answers look like the API server's: a created pod
or a patched status comes back with a fresh, increasing `resourceVersion`, built on the
object the fake last saw (seeded with `seed`).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

from gpupool.api import GPUJobStatus, GPUNodeClaimStatus, GPUNodePoolStatus, GPUQueueStatus, status_patch
from gpupool.cluster.nodes.providers import NodeLaunch, ProviderError
from gpupool.cluster.state.cache import object_key
from gpupool.cluster.writes.ports import Conflict, NotFound, ObjectRef, RawObject, WriteError


@dataclass(frozen=True)
class Call:
    """One recorded write: the verb, what it touched (`kind/namespace/name`) and a detail."""

    verb: str
    target: str
    detail: str = ""


class RecordingWriter:
    """Records calls; keeps the objects it wrote so answers carry increasing resourceVersions."""

    def __init__(self, start_version: int = 1000) -> None:
        self.calls: list[Call] = []
        # (target, reason, message) of every event posted, for tests that read the sentence.
        self.events: list[tuple[str, str, str]] = []
        self.objects: dict[str, RawObject] = {}
        self._failures: dict[str, list[WriteError]] = {}
        self._version = start_version - 1
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- test controls

    def seed(self, kind: str, obj: RawObject) -> None:
        """Make the fake know an existing object (so status writes to it succeed)."""
        self.objects[f"{kind}/{object_key(obj)}"] = copy.deepcopy(obj)

    def fail_next(self, verb: str, error: WriteError) -> None:
        """The next call of `verb` (e.g. "create_pod") raises `error` and writes nothing."""
        self._failures.setdefault(verb, []).append(error)

    # ---------------------------------------------------------------- internals

    def _record(self, verb: str, target: str, detail: str = "") -> None:
        with self._lock:
            self.calls.append(Call(verb, target, detail))
            pending = self._failures.get(verb)
            error = pending.pop(0) if pending else None
        if error is not None:
            raise error

    def _stamp(self, obj: RawObject) -> RawObject:
        """A new resourceVersion, above every one handed out and above the object's own (a
        seeded object may carry a higher one than this writer has handed out so far)."""
        metadata = obj.setdefault("metadata", {})
        own = str(metadata.get("resourceVersion") or "0")
        with self._lock:
            self._version = max(self._version, int(own) if own.isdigit() else 0) + 1
            metadata["resourceVersion"] = str(self._version)
        return copy.deepcopy(obj)

    def _patch(
        self, kind: str, key: str, status: GPUJobStatus | GPUQueueStatus | GPUNodePoolStatus | GPUNodeClaimStatus
    ) -> RawObject:
        current = self.objects.get(f"{kind}/{key}")
        if current is None:
            raise NotFound(f"{kind} {key} not found")
        body = status_patch(status)["status"]
        current["status"] = {k: v for k, v in body.items() if v is not None}
        return self._stamp(current)

    # ---------------------------------------------------------------- the port

    def create_pod(self, manifest: RawObject) -> RawObject | None:
        metadata = manifest["metadata"]
        key = f"{metadata['namespace']}/{metadata['name']}"
        self._record("create_pod", f"pods/{key}", manifest["spec"].get("nodeName", ""))
        if f"pods/{key}" in self.objects:
            return None
        pod = copy.deepcopy(manifest)
        pod["status"] = {"phase": "Pending"}
        self.objects[f"pods/{key}"] = pod
        return self._stamp(pod)

    def delete_pod(self, namespace: str, name: str) -> None:
        self._record("delete_pod", f"pods/{namespace}/{name}")
        self.objects.pop(f"pods/{namespace}/{name}", None)

    def patch_job_status(self, namespace: str, name: str, status: GPUJobStatus) -> RawObject:
        self._record("patch_job_status", f"gpujobs/{namespace}/{name}", str(status.phase or ""))
        return self._patch("gpujobs", f"{namespace}/{name}", status)

    def delete_job(self, namespace: str, name: str, uid: str | None) -> None:
        self._record("delete_job", f"gpujobs/{namespace}/{name}", uid or "")
        current = self.objects.get(f"gpujobs/{namespace}/{name}")
        if current is not None and uid is not None and current["metadata"].get("uid") not in (None, uid):
            raise Conflict(f"gpujob {namespace}/{name} has another uid")
        self.objects.pop(f"gpujobs/{namespace}/{name}", None)

    def patch_queue_status(self, name: str, status: GPUQueueStatus) -> RawObject:
        self._record("patch_queue_status", f"gpuqueues/{name}")
        return self._patch("gpuqueues", name, status)

    def patch_pool_status(self, name: str, status: GPUNodePoolStatus) -> RawObject:
        self._record("patch_pool_status", f"gpunodepools/{name}")
        return self._patch("gpunodepools", name, status)

    def emit_event(self, about: ObjectRef, reason: str, message: str, event_type: str = "Normal") -> None:
        target = f"{about.kind}/{about.namespace}/{about.name}"
        self._record("emit_event", target, reason)
        self.events.append((target, reason, message))

    def create_claim(self, manifest: RawObject) -> RawObject | None:
        name = manifest["metadata"]["name"]
        self._record("create_claim", f"gpunodeclaims/{name}", manifest["spec"].get("pool", ""))
        if f"gpunodeclaims/{name}" in self.objects:
            return None
        self.objects[f"gpunodeclaims/{name}"] = copy.deepcopy(manifest)
        return self._stamp(self.objects[f"gpunodeclaims/{name}"])

    def patch_claim_status(self, name: str, status: GPUNodeClaimStatus) -> RawObject:
        self._record("patch_claim_status", f"gpunodeclaims/{name}", str(status.phase))
        return self._patch("gpunodeclaims", name, status)

    def delete_claim(self, name: str) -> None:
        self._record("delete_claim", f"gpunodeclaims/{name}")
        self.objects.pop(f"gpunodeclaims/{name}", None)

    def cordon_node(self, name: str) -> RawObject:
        self._record("cordon_node", f"nodes/{name}")
        node = self.objects.get(f"nodes/{name}")
        if node is None:
            raise NotFound(f"node {name} not found")
        node.setdefault("spec", {})["unschedulable"] = True
        return self._stamp(node)


class RecordingProvider:
    """A `NodeProvider` for unit tests: records calls, launches at once, fails on demand.

    A launched node is only a name here; a test makes its Node object appear in the cache
    when it wants the claim to see it register.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.launched: set[str] = set()
        self._failures: dict[str, list[ProviderError]] = {}

    def fail_next(self, verb: str, error: ProviderError) -> None:
        """Make the next call of `verb` (create, delete, release) raise `error`."""
        self._failures.setdefault(verb, []).append(error)

    def _record(self, verb: str, target: str) -> None:
        self.calls.append(Call(verb, target))
        pending = self._failures.get(verb)
        if pending:
            raise pending.pop(0)

    def create(self, launch: NodeLaunch, now: float) -> str | None:
        self._record("create", launch.name)
        self.launched.add(launch.name)
        return f"fake://{launch.name}"

    def node_name(self, launch: NodeLaunch) -> str | None:
        return launch.name if launch.name in self.launched else None

    def delete(self, node: str) -> None:
        self._record("delete", node)
        self.launched.discard(node)

    def release(self, launch: NodeLaunch) -> None:
        self._record("release", launch.name)
        self.launched.discard(launch.name)

    def list(self, pool: str) -> list[str]:
        return sorted(self.launched)
