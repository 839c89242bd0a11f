"""Builders for Kubernetes and gpupool API objects as the API server returns them.

Who uses this: the unit tests of `gpupool.api`, `gpupool.cluster` and `gpupool.controllers`
(import with `from builders.api import ...`). Each builder gives a raw dict with sensible
defaults, so a test states only what matters to it; `gpujob` parses one into the model.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gpupool.annotations.gpu_uuids import ANNOTATION as UUIDS_ANNOTATION
from gpupool.annotations.gpu_uuids import format_uuids
from gpupool.annotations.pod_devices import ANNOTATION as POD_DEVICES_ANNOTATION
from gpupool.annotations.pod_devices import format_pod_devices
from gpupool.api import GPUJob, parse_gpujob
from gpupool.cluster.state.cache import CacheView, ClusterCache, Kind
from gpupool.cluster.state.parsing import compact_foreign_pod, parse_object_of
from gpupool.cluster.writes.pods import LABEL_ATTEMPT, LABEL_JOB, LABEL_WORKER
from gpupool.cluster.writes.reservations import LABEL_RESERVATION, ReservationSettings, reservation_manifest

RawObject = dict[str, Any]
CREATED = "2026-01-01T00:00:00Z"
_versions = itertools.count(1)


def _meta(name: str, namespace: str | None = None, **fields: Any) -> RawObject:
    metadata: RawObject = {"name": name, "resourceVersion": str(next(_versions)), **fields}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def node_object(
    name: str = "n1",
    *,
    model: str | None = "A100",
    gpus: str | None = "8",
    labels: Mapping[str, str] | None = None,
    ready: str = "True",
    unschedulable: bool = False,
    taints: list[dict[str, str]] | None = None,
    cpu: str = "64",
    memory: str = "512Gi",
    pods: str | None = "110",
    resources: Mapping[str, str] | None = None,
    capacity_gpus: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> RawObject:
    """A Node; `model` becomes the gpupool.io/gpu-model label (None: no label), `pods` its
    allocatable pod count (None: not reported), `resources` more allocatable resources
    (`nvidia.com/mig-1g.10gb`), `capacity_gpus` a `nvidia.com/gpu` capacity other than the
    allocatable `gpus` (a device plugin reporting unhealthy GPUs)."""
    allocatable = {"cpu": cpu, "memory": memory}
    if pods is not None:
        allocatable["pods"] = pods
    if gpus is not None:
        allocatable["nvidia.com/gpu"] = gpus
    allocatable.update(resources or {})
    capacity = {**allocatable, "cpu": str(int(cpu) + 1)}
    if capacity_gpus is not None:
        capacity["nvidia.com/gpu"] = capacity_gpus
    all_labels = {**({"gpupool.io/gpu-model": model} if model else {}), **(labels or {})}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(name, labels=all_labels, **({"annotations": dict(annotations)} if annotations else {})),
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}],
        },
    }


def gfd_labels(
    product: str,
    *,
    replicas: int | str | None = None,
    sharing: str | None = None,
    mig_strategy: str | None = None,
    **more: str,
) -> dict[str, str]:
    """The labels NVIDIA's GPU feature discovery puts on a GPU node: `nvidia.com/gpu.product`
    and, when given, `nvidia.com/gpu.replicas`, `nvidia.com/gpu.sharing-strategy` and
    `nvidia.com/mig.strategy`; `more` adds other labels."""
    labels = {"nvidia.com/gpu.product": product, **more}
    if replicas is not None:
        labels["nvidia.com/gpu.replicas"] = str(replicas)
    if sharing is not None:
        labels["nvidia.com/gpu.sharing-strategy"] = sharing
    if mig_strategy is not None:
        labels["nvidia.com/mig.strategy"] = mig_strategy
    return labels


def gpu_uuid(node: str, index: int) -> str:
    """The UUID the device builders give GPU `index` of `node` (`GPU-<node>-<index>`)."""
    return f"GPU-{node}-{index}"


def device_annotations(
    node: str, gpus: int = 8, pods: Mapping[str, Sequence[int]] | None = None, *, uuids: bool = True
) -> dict[str, str]:
    """The node agent's two annotations on `node`: the index -> UUID map of its `gpus` GPUs
    (`gpu_uuid`; none with `uuids=False`) and, unless `pods` is None (no report: the
    fallback), the PodResources report of `namespace/name` -> the indices each pod holds."""
    out: dict[str, str] = {}
    if uuids:
        out[UUIDS_ANNOTATION] = format_uuids({i: gpu_uuid(node, i) for i in range(gpus)})
    if pods is not None:
        out[POD_DEVICES_ANNOTATION] = format_pod_devices(
            {key: [gpu_uuid(node, i) for i in indices] for key, indices in pods.items()}
        )
    return out


def reporting_node(
    name: str = "n1", pods: Mapping[str, Sequence[int]] | None = None, *, gpus: int = 8, **fields: Any
) -> RawObject:
    """A Node (see `node_object`) whose agent reports its pods' devices: `pods` maps
    `namespace/name` to the GPU indices the kubelet gave it (empty: no pod holds a GPU)."""
    return node_object(name, gpus=str(gpus), annotations=device_annotations(name, gpus, pods or {}), **fields)


def pool_node_object(
    report: Mapping[str, Sequence[int]] | None,
    *,
    version: int = 1,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> RawObject:
    """Node n1 of pool `gpu` (8 A100s) whose agent publishes its UUID map and, unless `report`
    is None (kwok: the fallback), which pod holds which GPU; `version` orders republished
    copies (a higher one replaces a lower one in the cache)."""
    merged = {**device_annotations("n1", 8, report), **dict(annotations or {})}
    raw = node_object("n1", labels={"gpupool.io/pool": "gpu", **dict(labels or {})}, annotations=merged)
    raw["metadata"]["resourceVersion"] = str(10_000 + version)
    return raw


def placement_entry(
    worker: int = 0,
    *,
    job: str = "train",
    attempt: int = 1,
    node: str = "n1",
    indices: Sequence[int] = (0,),
    share: float = 1.0,
    pool: str = "gpu",
    **fields: Any,
) -> RawObject:
    """One `status.placement[]` entry as the API server stores it (camelCase extra fields:
    `devices`, `gpuUUIDs`, `reservation`)."""
    return {
        "worker": worker,
        "pod": f"{job}-a{attempt}-w{worker}",
        "node": node,
        "pool": pool,
        "gpuModel": "A100",
        "gpuIndices": list(indices),
        "gpuShare": share,
        **fields,
    }


def running_gpujob_object(
    name: str = "train",
    placement: Sequence[Mapping[str, Any]] | None = None,
    *,
    phase: str = "Running",
    attempt: int = 1,
    started: str = CREATED,
    status: Mapping[str, Any] | None = None,
    **fields: Any,
) -> RawObject:
    """A GPUJob holding GPUs (phase Running unless said) with `placement` (default: worker 0
    on n1, GPU 0) in attempt `attempt`; other arguments as for `gpujob_object`."""
    entries = [dict(p) for p in placement] if placement is not None else [placement_entry(job=name, attempt=attempt)]
    body = {"attempts": attempt, "placement": entries, "admittedAt": started, **dict(status or {})}
    if phase == "Running":
        body.setdefault("startedAt", started)
    workers = fields.pop("workers", len(entries))
    return gpujob_object(name, phase=phase, workers=workers, status=body, **fields)


def gpujob_object(
    name: str = "train",
    *,
    namespace: str = "ns",
    queue: str = "q",
    gpus: float | str = 1,
    workers: int = 1,
    phase: str | None = None,
    status: Mapping[str, Any] | None = None,
    template_spec: Mapping[str, Any] | None = None,
    template_metadata: Mapping[str, Any] | None = None,
    uid: str | None = None,
    **spec: Any,
) -> RawObject:
    """A GPUJob; extra keyword arguments are spec fields by their camelCase names."""
    body_status = dict(status or {})
    if phase is not None:
        body_status["phase"] = phase
    template: RawObject = {"spec": dict(template_spec or {"containers": [{"name": "main", "image": "busybox"}]})}
    if template_metadata is not None:
        template["metadata"] = dict(template_metadata)
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUJob",
        "metadata": _meta(name, namespace, uid=uid or f"uid-{name}", generation=1, creationTimestamp=CREATED),
        "spec": {"queue": queue, "workers": workers, "gpus": gpus, "template": template, **spec},
        "status": body_status,
    }


def gpujob(name: str = "train", **fields: Any) -> GPUJob:
    """A parsed GPUJob (see `gpujob_object` for the arguments)."""
    return parse_gpujob(gpujob_object(name, **fields))


def gpuqueue_object(name: str = "q", *, quotas: list[dict[str, Any]] | None = None, **spec: Any) -> RawObject:
    """A GPUQueue with, by default, 8 nominal A100 GPUs."""
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUQueue",
        "metadata": _meta(name, generation=1),
        "spec": {"quotas": quotas if quotas is not None else [{"gpuModel": "A100", "nominal": 8}], **spec},
    }


def gpunodepool_object(name: str = "gpu", *, model: str = "A100", gpus_per_node: int = 8, **spec: Any) -> RawObject:
    """A static on-prem GPUNodePool selecting nodes labelled gpupool.io/pool=<name>."""
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUNodePool",
        "metadata": _meta(name, generation=1),
        "spec": {
            "class": "OnPrem",
            "gpuModel": model,
            "gpusPerNode": gpus_per_node,
            "provider": "Static",
            "nodeSelector": {"gpupool.io/pool": name},
            **spec,
        },
    }


def namespace_object(name: str = "ns", **labels: str) -> RawObject:
    """A Namespace with `labels`."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, labels=dict(labels))}


def worker_pod_object(
    job: str = "train",
    worker: int = 0,
    *,
    attempt: int = 1,
    phase: str = "Running",
    namespace: str = "ns",
    node: str = "n1",
    reason: str | None = None,
    message: str | None = None,
    annotations: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    gpus: int = 0,
) -> RawObject:
    """A gpupool worker pod as the API server returns it, in `phase`; `reason` and `message`
    are its `status.reason` and `status.message` (a kubelet's admission rejection writes
    both); with `annotations`, a `main` container with `env` and requesting `gpus` whole
    GPUs when either is given."""
    metadata = _meta(
        f"{job}-a{attempt}-w{worker}",
        namespace,
        labels={LABEL_JOB: job, LABEL_ATTEMPT: str(attempt), LABEL_WORKER: str(worker)},
    )
    if annotations:
        metadata["annotations"] = dict(annotations)
    spec: RawObject = {"nodeName": node}
    if env or gpus:
        container: RawObject = {"name": "main", "image": "busybox"}
        if env:
            container["env"] = [{"name": k, "value": v} for k, v in env.items()]
        if gpus:
            container["resources"] = {
                "requests": {"nvidia.com/gpu": str(gpus)},
                "limits": {"nvidia.com/gpu": str(gpus)},
            }
        spec["containers"] = [container]
    status: RawObject = {"phase": phase}
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def reservation_pod_object(
    node: str = "n1", slot: int = 0, *, phase: str = "Running", namespace: str = "default", **status: Any
) -> RawObject:
    """A share reservation pod as the API server returns it (`reservation_manifest`), in `phase`."""
    pod = reservation_manifest(ReservationSettings(namespace=namespace), node, slot)
    pod["metadata"]["resourceVersion"] = str(next(_versions))
    pod["status"] = {"phase": phase, **status}
    return pod


def foreign_pod_object(
    name: str = "tenant", *, namespace: str = "other", node: str = "n1", gpus: int = 1, phase: str = "Running"
) -> RawObject:
    """A pod gpupool did not create, bound to `node`, requesting `gpus` whole GPUs."""
    container: RawObject = {"name": "c", "image": "busybox"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, namespace),
        "spec": {"nodeName": node, "containers": [container]},
        "status": {"phase": phase},
    }


def cache_of(objects: Iterable[RawObject]) -> ClusterCache:
    """A cache (parsing as the operator's does) holding `objects`, each by its `kind` (a
    share reservation pod in its own map, as its reflector stores it)."""
    kinds = {
        "GPUJob": Kind.JOB,
        "GPUQueue": Kind.QUEUE,
        "GPUNodePool": Kind.POOL,
        "Node": Kind.NODE,
        "Pod": Kind.POD,
        "Namespace": Kind.NAMESPACE,
    }
    cache = ClusterCache(parse_object_of)
    for obj in objects:
        reservation = LABEL_RESERVATION in ((obj.get("metadata") or {}).get("labels") or {})
        cache.upsert(Kind.RESERVATION if reservation else kinds[str(obj["kind"])], obj)
    return cache


def view_of(**kinds: Mapping[str, RawObject]) -> CacheView:
    """A cache view from raw objects grouped by kind plural (`gpujobs={key: obj}`, ...);
    `foreignpods` are stored compact, as their reflector stores them."""
    cache = ClusterCache(parse_object_of)
    for plural, objects in kinds.items():
        for obj in objects.values():
            kind = Kind(plural)
            cache.upsert(kind, compact_foreign_pod(obj) if kind == Kind.FOREIGN_POD else obj)
    return cache.view()
