"""Reservation pods: one pod per shared GPU holds it whole, so shares cannot collide.

Who uses this: the cache parses each reservation pod into a `Reservation`
(`gpupool.cluster.state.parsing`); the snapshot (`gpupool.cluster.translate.snapshot`) builds the cycle's
`ReservationBook`; the planner (`gpupool.cluster.writes.plan`) names a share's reservation when it
admits the share (`ReservationBook.for_share`), gives the share pod its reservation's UUID,
interrupts shares whose reservation failed or moved (`share_trouble`) and writes the
reservation pods (`reservation_writes`, `new_reservations`). Pure: values in, manifests out.

A share requests no `nvidia.com/gpu` (Kubernetes cannot request fractions), so without more
the kubelet counts its GPU as free and may hand it to a whole-GPU pod or a foreign one. On a
node that reports its pods' devices (`gpupool.cluster.translate.devices`), each physical GPU that holds
shares is held by one reservation pod requesting `nvidia.com/gpu: 1`, in the operator's
namespace, named per node and slot (`reservation_name`): the kubelet gives it a GPU like any
pod, the node agent reports which, and the shares are told that GPU's UUID in
`NVIDIA_VISIBLE_DEVICES` (the NVIDIA container toolkit must accept the variable from
unprivileged containers, `accept-nvidia-visible-devices-envvar-when-unprivileged = true`,
its default; a node labelled `gpupool.io/share-envvar=false` says it does not, and gets no
share). gpupool chooses which shared GPU a share joins (the core's fragmentation-aware
placement picks the GPU index; the book maps that index to the reservation holding it).

Order of writes, so that a crash between two of them leaves nothing wrong:
1. the share's admission status names its reservation (`status.placement[].reservation`);
2. the reservation pod is created (after the admissions, or by the next lifecycle step for
   any named reservation that is missing: also when someone deleted it);
3. the share pod is created only once the node reports the reservation pod's UUID;
4. a reservation no holding job and no live share pod names is deleted.
A reservation is never created without a status naming it first, and a share never runs
without the UUID of the one pod that holds its GPU, so no GPU is promised twice.
"""

from __future__ import annotations

import hashlib
import itertools
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpupool.api import DeviceSource, GPUJob, WorkerPlacementStatus
from gpupool.cluster.translate.devices import NodeDevices
from gpupool.cluster.writes.pods import ANNOTATION_RESERVATION

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_RESERVATION = "gpupool.io/reservation"
"""On a reservation pod (value `gpu`): its reflector selects by it, the foreign pods' skips it."""
ANNOTATION_SLOT = "gpupool.io/gpu-slot"
"""On a reservation pod: its slot on the node (the number in its name)."""
NAME_PREFIX = "gpupool-reserve-"
MAX_NAME_LENGTH = 63
"""Reservation pod names stay DNS labels (so the pod's hostname is its name)."""
DEFAULT_IMAGE = "registry.k8s.io/pause:3.10"


@dataclass(frozen=True, slots=True)
class ReservationSettings:
    """How reservation pods are made (the operator's `GPUPOOL_SHARE_RESERVATION*` settings).

    `enabled` False keeps shares as they were before reservations: told their GPU by index,
    unprotected from the kubelet (kept for tests that must show the risk)."""

    enabled: bool = True
    namespace: str = "default"
    image: str = DEFAULT_IMAGE
    command: tuple[str, ...] = ()
    host_network: bool = False
    scheduler_name: str = "gpupool"

    @staticmethod
    def command_of(text: str) -> tuple[str, ...]:
        """A command line setting (`sleep infinity`) as the container's command (shell words)."""
        return tuple(shlex.split(text))


def reservation_name(node: str, slot: int) -> str:
    """`gpupool-reserve-<node>-g<slot>`; a node name too long for a DNS label is cut and a
    digest of the whole name added, so two nodes never share a name."""
    suffix = f"-g{slot}"
    name = f"{NAME_PREFIX}{node}{suffix}"
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(node.encode()).hexdigest()[:10]
    room = MAX_NAME_LENGTH - len(NAME_PREFIX) - len(suffix) - len(digest) - 1
    return f"{NAME_PREFIX}{node[:room].rstrip('-.')}-{digest}{suffix}"


def reservation_manifest(settings: ReservationSettings, node: str, slot: int) -> dict[str, Any]:
    """The pod that holds one shared GPU of `node`: bound to it, requesting one whole GPU,
    doing nothing (a pause-like image), restarted in place by the kubelet if it exits (a pod
    that keeps its name keeps its device), tolerating every taint (it lives where its shares
    live), with no API token; in the node's network with `settings.host_network`."""
    container: dict[str, Any] = {
        "name": "reserve",
        "image": settings.image,
        "resources": {"requests": {GPU_RESOURCE: "1"}, "limits": {GPU_RESOURCE: "1"}},
    }
    if settings.command:
        container["command"] = list(settings.command)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": reservation_name(node, slot),
            "namespace": settings.namespace,
            "labels": {LABEL_RESERVATION: "gpu", "app.kubernetes.io/managed-by": "gpupool"},
            "annotations": {ANNOTATION_SLOT: str(slot)},
        },
        "spec": {
            "nodeName": node,
            "schedulerName": settings.scheduler_name,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "tolerations": [{"operator": "Exists"}],
            "containers": [container],
            **({"hostNetwork": True} if settings.host_network else {}),
        },
    }


@dataclass(frozen=True, slots=True)
class Reservation:
    """A reservation pod as the cache holds it."""

    key: str
    node: str
    slot: int
    phase: str
    deleting: bool
    reason: str = ""

    @property
    def namespace(self) -> str:
        return self.key.partition("/")[0]

    @property
    def name(self) -> str:
        return self.key.partition("/")[2]

    @property
    def failed(self) -> bool:
        """Finished (Failed or Succeeded): it holds nothing, and its name blocks a new one."""
        return self.phase in ("Failed", "Succeeded")


def reservation_of(raw: Mapping[str, Any]) -> Reservation:
    """A raw reservation pod -> `Reservation` (slot -1 when its annotation is unreadable)."""
    metadata = raw.get("metadata") or {}
    status = raw.get("status") or {}
    try:
        slot = int((metadata.get("annotations") or {}).get(ANNOTATION_SLOT, "-1"))
    except ValueError:
        slot = -1
    reason = " ".join(str(status.get(k)) for k in ("reason", "message") if status.get(k))
    return Reservation(
        key=f"{metadata.get('namespace') or ''}/{metadata.get('name') or ''}",
        node=str((raw.get("spec") or {}).get("nodeName") or ""),
        slot=slot,
        phase=str(status.get("phase") or "Pending"),
        deleting=bool(metadata.get("deletionTimestamp")),
        reason=reason,
    )


def slot_of(key: str) -> int | None:
    """The slot in a reservation's name (`...-g3` -> 3), None when it has none."""
    head, _, number = key.rpartition("-g")
    return int(number) if head and number.isdigit() else None


@dataclass
class ReservationBook:
    """This cycle's reservations: the pods, what each holding share names, and the names
    admissions choose (`for_share`), so that two shares admitted onto one GPU in one cycle
    name one reservation. Built by the snapshot; the planner adds to it while it admits."""

    settings: ReservationSettings
    pods: dict[str, Reservation] = field(default_factory=dict)
    # (node, GPU index as the core sees it) -> the reservation its shares name.
    holders: dict[tuple[str, int], str] = field(default_factory=dict)
    # Every reservation a holding job names, with its node.
    named: dict[str, str] = field(default_factory=dict)
    # Live share pods (not finished) by the reservation their annotation names.
    live_shares: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)

    def for_share(self, node: str, index: int, gpus: int) -> str:
        """The reservation (`namespace/name`) of a share placed on GPU `index` of `node`: the
        one its GPU's shares already name, else a new one in the first free slot (the index
        itself when free, else past the node's GPUs)."""
        found = self.holders.get((node, index))
        if found is not None:
            return found
        taken = {*self.pods, *self.named}
        for slot in itertools.chain((index,), itertools.count(max(gpus, index + 1))):
            key = f"{self.settings.namespace}/{reservation_name(node, slot)}"
            if key not in taken:
                self.holders[(node, index)] = key
                self.named[key] = node
                return key
        raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends


def book_of(
    settings: ReservationSettings,
    pods: Iterable[Reservation],
    placements: Mapping[str, list[WorkerPlacementStatus]],
    pods_by_job: Mapping[str, list[Mapping[str, Any]]],
) -> ReservationBook:
    """The cycle's book from the reservation pods, the holding jobs' placements and the
    worker pods (grouped by job; read only when some reservation pod exists: a live share pod
    keeps its reservation from being deleted, but does not make a missing one)."""
    book = ReservationBook(settings, pods={r.key: r for r in pods})
    if book.pods:
        book.live_shares = share_pods_naming(pods_by_job)
    for placement in placements.values():
        for where in placement:
            if where.reservation:
                book.named.setdefault(where.reservation, where.node)
                for index in where.gpu_indices:
                    book.holders.setdefault((where.node, index), where.reservation)
    return book


def share_pods_naming(pods_by_job: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, list[Mapping[str, Any]]]:
    """Live share pods (not Succeeded or Failed) by the reservation their annotation names."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for pods in pods_by_job.values():
        for pod in pods:
            key = ((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_RESERVATION)
            if key and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                out.setdefault(str(key), []).append(pod)
    return out


@dataclass(frozen=True)
class ReservationWrites:
    """The reservation pods to create (manifests) and to delete (keys) this cycle."""

    create: tuple[dict[str, Any], ...] = ()
    delete: tuple[str, ...] = ()


def reservation_writes(book: ReservationBook) -> ReservationWrites:
    """What makes the pods match what is named: a reservation a holding share names that is
    missing is created (also one someone deleted); a finished one is deleted (its shares are
    queued again by `share_trouble`, and the next cycle may create it afresh); one that no
    holding job and no live share pod names is deleted (a share pod still running after its
    job ended keeps its reservation, but never makes a new one); one being deleted is left
    to go."""
    create = []
    delete = []
    for key, node in sorted(book.named.items()):
        pod = book.pods.get(key)
        if pod is None:
            slot = slot_of(key)
            if slot is not None and node and key.partition("/")[0] == book.settings.namespace:
                create.append(reservation_manifest(book.settings, node, slot))
        elif pod.failed and not pod.deleting:
            delete.append(key)
    for key, pod in sorted(book.pods.items()):
        if key not in book.named and (key not in book.live_shares or pod.failed) and not pod.deleting:
            delete.append(key)
    return ReservationWrites(tuple(create), tuple(delete))


def visible_devices(pod: Mapping[str, Any]) -> str | None:
    """The `NVIDIA_VISIBLE_DEVICES` the pod spec gives its first container, None when unset."""
    containers = (pod.get("spec") or {}).get("containers") or []
    first = containers[0] if containers and isinstance(containers[0], Mapping) else {}
    for variable in first.get("env") or []:
        if isinstance(variable, Mapping) and variable.get("name") == "NVIDIA_VISIBLE_DEVICES":
            return str(variable.get("value") or "")
    return None


def share_trouble(
    job: GPUJob,
    placement: list[WorkerPlacementStatus],
    pods_by_worker: Mapping[int, Mapping[str, Any]],
    book: ReservationBook,
    nodes: Mapping[str, NodeDevices],
) -> tuple[str, str] | None:
    """Why a share's attempt cannot go on, `(reason, message)`, or None: its node refuses to
    give a share its GPU and its pod is not created yet; its reservation pod finished (the
    kubelet refused it, or it was evicted); or its reservation now holds another GPU than the
    one its pod was told (the pod was deleted and created again while the share ran). Each
    queues the share again without counting a failure."""
    for where in placement:
        if where.gpu_share >= 1 or not where.gpu_indices:
            continue
        node = nodes.get(where.node)
        pod = pods_by_worker.get(where.worker)
        if pod is None and node is not None and not node.accepts_shares:
            return "ShareDeviceRefused", refused_message([where.node])
        if not where.reservation:
            continue
        reservation = book.pods.get(where.reservation)
        if reservation is not None and reservation.failed:
            why = f" ({reservation.reason})" if reservation.reason else ""
            return (
                "ReservationFailed",
                f"the pod {where.reservation} that holds the share's GPU on {where.node} ended {reservation.phase}"
                f"{why}; the share is queued again (no failure counted)",
            )
        told = visible_devices(pod) if pod is not None else None
        if (
            told
            and where.devices == DeviceSource.REPORTED
            and where.gpu_uuids
            and told != where.gpu_uuids[0]
            and reservation is not None
        ):
            return (
                "ReservationMoved",
                f"the reservation pod {where.reservation} now holds GPU {where.gpu_uuids[0]}, not {told} that "
                f"worker {where.worker} was given (the pod was deleted and created again); the share restarts "
                "on the GPU it holds (no failure counted)",
            )
    return None


def refused_message(nodes: Iterable[str]) -> str:
    """Why no share runs on `nodes` (labelled `gpupool.io/share-envvar=false`)."""
    listed = ", ".join(sorted(set(nodes)))
    return (
        f"node(s) {listed} refuse NVIDIA_VISIBLE_DEVICES from unprivileged containers (label "
        "gpupool.io/share-envvar=false), so a share cannot be given its GPU there and none is placed on them; "
        "set accept-nvidia-visible-devices-envvar-when-unprivileged = true (the NVIDIA container toolkit's "
        "default, with the envvar device list strategy) and remove the label, or ask for whole GPUs"
    )


def reserved_uuid(where: WorkerPlacementStatus, nodes: Mapping[str, NodeDevices]) -> str | None:
    """The UUID of the GPU a share's reservation pod holds, as its node reports it; None
    until reported (the share pod then waits)."""
    if not where.reservation:
        return None
    node = nodes.get(where.node)
    if node is None:
        return None
    namespace, _, name = where.reservation.partition("/")
    held = node.held_by(namespace, name)
    return held[0][1] if held else None
