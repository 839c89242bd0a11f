"""Device truth: which physical GPUs each pod on a node holds, as the node reports it.

Who uses this: `gpupool.cluster.state.parsing` turns every Node into a `NodeDevices` once, when it
enters the cache (`node_devices`); the snapshot (`gpupool.cluster.translate.snapshot`) resolves each
running job's `status.placement` against it (`resolved_placement`), and from that resolved
placement the planner patches the status, the provenance record takes its UUIDs, idle
detection reads its GPUs and the metrics label their series; foreign pods' GPUs come from
the same report (`foreign_indices`). Pure: values in, values out.

On a device-plugin node gpupool asks the kubelet for a count of `nvidia.com/gpu`; the
kubelet's device manager and the plugin choose the GPUs. The node agent reads the kubelet's
PodResources API and publishes two annotations on the Node: `gpupool.io/pod-devices` (pod ->
GPU UUIDs, `gpupool.annotations.pod_devices`) and `gpupool.io/gpu-uuids` (index -> UUID,
`gpupool.annotations.gpu_uuids`). A node **reports devices** when both parse; then a worker's
GPUs are the ones the report gives its pod (a share: the ones it gives the share's
reservation pod), `devices: Reported`, indices through the UUID map.

**The fallback.** A node without both annotations (every kwok node, a real node whose
agent does not run) reports nothing: gpupool's planned indices stand (`devices: Planned`),
as before device truth; a foreign pod's GPUs are the node's first idle ones
(`gpupool.core.placement.state`); a share is told its GPU by index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gpupool.annotations.gpu_uuids import ANNOTATION as UUIDS_ANNOTATION
from gpupool.annotations.gpu_uuids import parse_uuids
from gpupool.annotations.pod_devices import ANNOTATION as POD_DEVICES_ANNOTATION
from gpupool.annotations.pod_devices import parse_pod_devices, pod_key
from gpupool.api import DeviceSource, WorkerPlacementStatus

LABEL_SHARE_ENVVAR = "gpupool.io/share-envvar"
"""A node labelled `gpupool.io/share-envvar=false` refuses `NVIDIA_VISIBLE_DEVICES` from
unprivileged containers (the NVIDIA container toolkit's
`accept-nvidia-visible-devices-envvar-when-unprivileged = false`, or a volume-mounts or
CDI-only device list strategy): a share cannot be given its GPU there, so none is placed."""


@dataclass(frozen=True, slots=True)
class NodeDevices:
    """What one Node says about its GPUs: the agent's two annotations, parsed once.

    `uuids` is the index -> UUID map (None: not published or malformed) and `indices` its
    inverse; `pods` is the PodResources report, `namespace/name` -> UUIDs (None: no report;
    empty: no pod holds a GPU). `accepts_shares` is False for a node labelled
    `gpupool.io/share-envvar=false`.
    """

    uuids: Mapping[int, str] | None = None
    pods: Mapping[str, tuple[str, ...]] | None = None
    accepts_shares: bool = True
    indices: Mapping[str, int] = field(default_factory=dict)

    @property
    def reports(self) -> bool:
        """True when the node reports which pod holds which GPU (both annotations parse)."""
        return self.pods is not None and self.uuids is not None

    def held_by(self, namespace: str, name: str) -> tuple[tuple[int, str], ...] | None:
        """`(index, UUID)` of each GPU the report gives pod `namespace/name`, by index; None when
        the node does not report, the report does not name the pod, or a UUID is not in the map."""
        if self.pods is None or self.uuids is None:
            return None
        uuids = self.pods.get(pod_key(namespace, name))
        if not uuids:
            return None
        pairs = []
        for uuid in uuids:
            index = self.indices.get(uuid)
            if index is None:
                return None
            pairs.append((index, uuid))
        return tuple(sorted(pairs))


NO_DEVICES = NodeDevices()


def node_devices(raw: Mapping[str, Any]) -> NodeDevices:
    """A raw Node -> its `NodeDevices` (never raises: anything malformed reads as not reported)."""
    metadata = raw.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    uuids = parse_uuids(annotations.get(UUIDS_ANNOTATION))
    pods = parse_pod_devices(annotations.get(POD_DEVICES_ANNOTATION))
    return NodeDevices(
        uuids=MappingProxyType(uuids) if uuids is not None else None,
        pods=MappingProxyType(pods) if pods is not None else None,
        accepts_shares=str(labels.get(LABEL_SHARE_ENVVAR, "")).lower() != "false",
        indices=MappingProxyType({uuid: index for index, uuid in (uuids or {}).items()}),
    )


def resolved_worker(where: WorkerPlacementStatus, namespace: str, node: NodeDevices) -> WorkerPlacementStatus:
    """One worker's placement with the devices its node reports: `where` itself when nothing
    new is reported (so an unchanged status compares equal and is never written again).

    A whole-GPU worker is held by its own pod; a share by its reservation pod (`reservation`,
    `namespace/name`). A worker whose pod the report does not name keeps what it has: a
    report only adds facts, and a pod that has finished is no longer in it."""
    if not where.gpu_indices:
        return where
    if where.reservation:
        holder_namespace, _, holder = where.reservation.partition("/")
    else:
        if where.gpu_share < 1:
            return where  # a share without a reservation holds no device of its own
        holder_namespace, holder = namespace, where.pod
    held = node.held_by(holder_namespace, holder)
    if held is None:
        return where
    indices = [index for index, _ in held]
    uuids = [uuid for _, uuid in held]
    if where.devices == DeviceSource.REPORTED and where.gpu_indices == indices and where.gpu_uuids == uuids:
        return where
    return where.model_copy(update={"gpu_indices": indices, "gpu_uuids": uuids, "devices": DeviceSource.REPORTED})


def resolved_placement(
    placement: Sequence[WorkerPlacementStatus], namespace: str, nodes: Mapping[str, NodeDevices]
) -> list[WorkerPlacementStatus]:
    """A job's `status.placement` with each worker's reported devices (see `resolved_worker`);
    the same list object when nothing changed (every worker on a node that reports nothing,
    the fallback, costs one lookup)."""
    resolved: list[WorkerPlacementStatus] | None = None
    for position, where in enumerate(placement):
        node = nodes.get(where.node)
        if node is None or node.pods is None:
            continue
        new = resolved_worker(where, namespace, node)
        if new is not where:
            if resolved is None:
                resolved = list(placement)
            resolved[position] = new
    if resolved is not None:
        return resolved
    return placement if isinstance(placement, list) else list(placement)


def judged_gpus(
    placement: Sequence[WorkerPlacementStatus], nodes: Mapping[str, NodeDevices]
) -> list[tuple[str, int]] | None:
    """`(node, index)` of every GPU the job's workers really hold, for idle detection and the
    like; None when one worker's GPUs are not known yet (its node reports devices, but not
    those of its pod). On a node that reports nothing, the planned indices (the fallback)."""
    gpus: list[tuple[str, int]] = []
    for where in placement:
        if not where.gpu_indices:
            continue
        if where.devices != DeviceSource.REPORTED and nodes.get(where.node, NO_DEVICES).reports:
            return None
        gpus.extend((where.node, index) for index in where.gpu_indices)
    return gpus


def gpu_uuid_of(where: WorkerPlacementStatus, position: int, node: NodeDevices) -> str | None:
    """The UUID of the `position`-th GPU of a worker: the reported one; on a node that reports
    nothing (the fallback), the UUID the node's map gives the planned index; never the UUID of
    a planned index on a node that reports devices (that GPU may belong to another pod)."""
    if where.devices == DeviceSource.REPORTED and position < len(where.gpu_uuids):
        return where.gpu_uuids[position]
    if node.reports or node.uuids is None or position >= len(where.gpu_indices):
        return None
    return node.uuids.get(where.gpu_indices[position])


def foreign_indices(node: NodeDevices, namespace: str, name: str) -> tuple[int, ...]:
    """The indices of the GPUs the report gives a pod gpupool does not manage; none when the
    node does not report them (its GPUs then count by the fallback rule: the core takes the
    node's first idle GPUs, `gpupool.core.placement.state`)."""
    held = node.held_by(namespace, name)
    return tuple(index for index, _ in held) if held is not None else ()
