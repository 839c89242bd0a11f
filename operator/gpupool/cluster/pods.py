"""Worker pods of a GPUJob: deterministic names and the manifest of each worker.

Who uses this: the planner (`gpupool.cluster.plan`) builds the pods of an admitted job from
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
from gpupool.cluster.convert import GPU_RESOURCE, gpu_milli
from gpupool.core.models import Taint, WorkerShape

LABEL_JOB = "gpupool.io/job"
LABEL_ATTEMPT = "gpupool.io/attempt"
LABEL_WORKER = "gpupool.io/worker"
ANNOTATION_GPU_INDICES = "gpupool.io/gpu-indices"
ANNOTATION_GPU_SHARE = "gpupool.io/gpu-share"
ENV_DEVICE = "GPUPOOL_DEVICE"
"""Set for jobs with `spec.cpuFallback`: `cpu` on a CPU-only node, `gpu` otherwise."""
DEFAULT_CONTAINER = {"name": "main", "image": "busybox:1.36", "command": ["sleep", "infinity"]}


class PodTemplateError(ValueError):
    """The job's pod template cannot become a pod; the message names the field to fix."""


def pod_name(job_name: str, attempt: int, worker: int) -> str:
    """Deterministic worker pod name, e.g. `train-a0-w3` (attempt 0, worker 3)."""
    return f"{job_name}-a{attempt}-w{worker}"


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
) -> dict[str, Any]:
    """The Pod manifest of one worker, bound to `worker.node`.

    Whole GPUs are requested as `nvidia.com/gpu`; a share of a GPU (the core's
    `WorkerShape.is_fractional`, the one place that rule lives) is accounted by gpupool
    only (Kubernetes cannot request fractions) and reaches the container as the chosen
    GPU index in `NVIDIA_VISIBLE_DEVICES` plus `GPUPOOL_GPU_SHARE`. `on_cpu` (an attempt on
    a CPU-only node, `status.device` CPU) requests no GPU at all; a job with
    `spec.cpuFallback` other than Never tells its containers where they run in
    `GPUPOOL_DEVICE` (`cpu` or `gpu`).
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
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": ",".join(str(i) for i in worker.gpu_indices) or "void"},
    ]
    if shape.is_fractional:
        env.append({"name": "GPUPOOL_GPU_SHARE", "value": f"{worker.gpu_share:g}"})
    if job.spec.falls_back:
        env.append({"name": ENV_DEVICE, "value": "cpu" if on_cpu else "gpu"})
    for container in containers:
        names = {e.get("name") for e in container.get("env") or []}
        container["env"] = [*(container.get("env") or []), *(e for e in env if e["name"] not in names)]

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
