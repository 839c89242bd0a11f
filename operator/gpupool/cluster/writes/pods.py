"""Worker pods of a GPUJob: deterministic names and the manifest of each worker.

Who uses this: the planner (`gpupool.cluster.writes.plan`) builds the pods of an admitted job from
its admission here; the snapshot and the planner find a job's pods by these labels. Names
depend only on (job, attempt, worker), so a restarted operator that creates the same pod
again gets AlreadyExists instead of a duplicate.

Pods are bound at creation (`spec.nodeName`) rather than through the Binding subresource:
one write instead of two, and no window in which a crash leaves an unbound pod that no
scheduler owns (`schedulerName: gpupool` keeps kube-scheduler away from it either way).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from gpupool.api import GPUJob, WorkerPlacementStatus
from gpupool.cluster.translate.convert import GPU_RESOURCE, gpu_milli
from gpupool.core.models import Taint, WorkerShape

LABEL_JOB = "gpupool.io/job"
LABEL_ATTEMPT = "gpupool.io/attempt"
LABEL_WORKER = "gpupool.io/worker"
ANNOTATION_GPU_INDICES = "gpupool.io/gpu-indices"
ANNOTATION_GPU_SHARE = "gpupool.io/gpu-share"
ANNOTATION_RESERVATION = "gpupool.io/reservation"
"""On a share pod: `namespace/name` of the reservation pod whose GPU it is given
(`gpupool.cluster.writes.reservations`)."""
ENV_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
ENV_DEVICE = "GPUPOOL_DEVICE"
"""Set for jobs with `spec.cpuFallback`: `cpu` on a CPU-only node, `gpu` otherwise."""
DEFAULT_CONTAINER = {"name": "main", "image": "busybox:1.36", "command": ["sleep", "infinity"]}


class PodTemplateError(ValueError):
    """The job's pod template cannot become a pod; the message names the field to fix."""


def pod_name(job_name: str, attempt: int, worker: int) -> str:
    """Deterministic worker pod name, e.g. `train-a0-w3` (attempt 0, worker 3)."""
    return f"{job_name}-a{attempt}-w{worker}"


def _visible_devices(
    shape: WorkerShape, worker: WorkerPlacementStatus, *, gpu_container: bool, share_device: str | None
) -> str | None:
    """What gpupool sets in a container's `NVIDIA_VISIBLE_DEVICES`, None for nothing.

    The container that requests whole GPUs gets nothing from gpupool: the kubelet's device
    manager chooses its GPUs and the device plugin sets the variable to their UUIDs (it
    replaces a value of the pod spec anyway). A share requests no device, so its container
    is told its GPU: the UUID of the GPU its reservation pod holds (`share_device`), or, on
    a node that reports no devices or with reservations off, the index gpupool chose (the
    fallback). Every other container (sidecars, CPU runs) gets `void`: CUDA images default
    to `all`, and a container that asked for no GPU must see none.
    """
    if gpu_container and shape.whole_gpus:
        return None
    if gpu_container and shape.is_fractional:
        return share_device or ",".join(str(i) for i in worker.gpu_indices) or "void"
    return "void"


def _tolerations_for(taints: Sequence[Taint]) -> list[dict[str, str]]:
    return [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in taints]


def worker_pod(
    job: GPUJob,
    worker: WorkerPlacementStatus,
    *,
    attempt: int,
    pool_taints: Sequence[Taint] = (),
    scheduler_name: str = "gpupool",
    on_cpu: bool = False,
    share_device: str | None = None,
) -> dict[str, Any]:
    """The Pod manifest of one worker, bound to `worker.node`.

    Whole GPUs are requested as `nvidia.com/gpu` and nothing else: the kubelet picks them
    (see `_visible_devices`); the indices of `status.placement` are gpupool's plan, kept in
    the `gpupool.io/gpu-indices` annotation. A share of a GPU (the core's
    `WorkerShape.is_fractional`, the one place that rule lives) is accounted by gpupool
    only (Kubernetes cannot request fractions) and reaches the container as the chosen
    GPU index in `NVIDIA_VISIBLE_DEVICES` plus `GPUPOOL_GPU_SHARE`. `on_cpu` (an attempt on
    a CPU-only node, `status.device` CPU) requests no GPU at all; a job with
    `spec.cpuFallback` other than Never tells its containers where they run in
    `GPUPOOL_DEVICE` (`cpu` or `gpu`). A share held by a reservation pod
    (`worker.reservation`, `gpupool.cluster.writes.reservations`) is given the UUID of that pod's GPU
    (`share_device`) instead of an index, and names the reservation in its
    `gpupool.io/reservation` annotation.

    The template's own environment wins: a variable a container already sets is never
    replaced by gpupool's. A template cannot set `NVIDIA_*` variables, CDI annotations or
    GPU resources at all (the API model refuses them, `api.gpujob.device_selection_fields`),
    and for whole GPUs the device plugin replaces the value at container creation anyway.
    """
    metadata: Mapping[str, Any] = job.metadata
    job_name = str(metadata["name"])
    template = job.spec.template
    spec: dict[str, Any] = copy.deepcopy(dict(template.spec))
    containers = spec.get("containers") or [dict(DEFAULT_CONTAINER)]
    if not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers):
        raise PodTemplateError("spec.template.spec.containers must be a list of containers")
    spec["containers"] = containers

    shape = WorkerShape(gpu_milli=0 if on_cpu else gpu_milli(job.spec.gpus))
    first = containers[0]
    resources = first.setdefault("resources", {})
    requests = resources.setdefault("requests", {})
    limits = resources.setdefault("limits", {})
    if shape.whole_gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(shape.whole_gpus)
    if job.spec.cpu is not None:
        requests["cpu"] = str(job.spec.cpu)
    if job.spec.memory is not None:
        requests["memory"] = str(job.spec.memory)

    env = [
        {"name": "GPUPOOL_JOB", "value": job_name},
        {"name": "GPUPOOL_WORKERS", "value": str(job.spec.workers)},
        {"name": "GPUPOOL_WORKER_INDEX", "value": str(worker.worker)},
        {"name": "GPUPOOL_ATTEMPT", "value": str(attempt)},
    ]
    if shape.is_fractional:
        env.append({"name": "GPUPOOL_GPU_SHARE", "value": f"{worker.gpu_share:g}"})
    if job.spec.falls_back:
        env.append({"name": ENV_DEVICE, "value": "cpu" if on_cpu else "gpu"})
    for position, container in enumerate(containers):
        names = {e.get("name") for e in container.get("env") or []}
        devices = _visible_devices(shape, worker, gpu_container=position == 0, share_device=share_device)
        extra = [*env, *([{"name": ENV_VISIBLE_DEVICES, "value": devices}] if devices is not None else [])]
        container["env"] = [*(container.get("env") or []), *(e for e in extra if e["name"] not in names)]

    spec["tolerations"] = [*(spec.get("tolerations") or []), *_tolerations_for(pool_taints)]
    spec["nodeName"] = worker.node
    spec["schedulerName"] = scheduler_name
    spec.setdefault("restartPolicy", "Never")

    template_meta = dict(template.metadata or {})
    labels = {
        **dict(template_meta.get("labels") or {}),
        LABEL_JOB: job_name,
        LABEL_ATTEMPT: str(attempt),
        LABEL_WORKER: str(worker.worker),
    }
    annotations = {
        **dict(template_meta.get("annotations") or {}),
        ANNOTATION_GPU_INDICES: ",".join(str(i) for i in worker.gpu_indices),
        ANNOTATION_GPU_SHARE: f"{worker.gpu_share:g}",
    }
    if worker.reservation and shape.is_fractional:
        annotations[ANNOTATION_RESERVATION] = worker.reservation
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": worker.pod,
            "namespace": metadata["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": job.api_version,
                    "kind": "GPUJob",
                    "name": job_name,
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
