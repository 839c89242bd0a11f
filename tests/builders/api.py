"""Builders for Kubernetes and gpupool API objects as the API server returns them.

Who uses this: the unit tests of `gpupool.api`, `gpupool.cluster` and `gpupool.controllers`
(import with `from builders.api import ...`). Each builder gives a raw dict with sensible
defaults, so a test states only what matters to it; `gpujob` parses one into the model.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from gpupool.api import GPUJob, parse_gpujob
from gpupool.cluster.cache import CacheView, ClusterCache, Kind
from gpupool.cluster.parsing import parse_object_of
from gpupool.cluster.pods import LABEL_ATTEMPT, LABEL_JOB, LABEL_WORKER

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
        "metadata": _meta(name, labels=all_labels),
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
) -> RawObject:
    """A gpupool worker pod as the API server returns it, in `phase`; `reason` and `message`
    are its `status.reason` and `status.message` (a kubelet's admission rejection writes both)."""
    status: RawObject = {"phase": phase}
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            f"{job}-a{attempt}-w{worker}",
            namespace,
            labels={LABEL_JOB: job, LABEL_ATTEMPT: str(attempt), LABEL_WORKER: str(worker)},
        ),
        "spec": {"nodeName": node},
        "status": status,
    }


def cache_of(objects: Iterable[RawObject]) -> ClusterCache:
    """A cache (parsing as the operator's does) holding `objects`, each by its `kind`."""
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
        cache.upsert(kinds[str(obj["kind"])], obj)
    return cache


def view_of(**kinds: Mapping[str, RawObject]) -> CacheView:
    """A cache view from raw objects grouped by kind plural (`gpujobs={key: obj}`, ...)."""
    cache = ClusterCache(parse_object_of)
    for plural, objects in kinds.items():
        for obj in objects.values():
            cache.upsert(Kind(plural), obj)
    return cache.view()
