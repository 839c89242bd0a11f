"""Create simulated GPU nodes that kwok runs: the hardware of the dev cluster.

Who calls this: `gpupool dev nodes`, the demo and tests. A node gets capacity and
allocatable `nvidia.com/gpu`, cpu, memory and pods; labels for GPU model, pool, class
(on-prem or cloud) and instance type; optional taints; and the annotation that hands it to
kwok. The label keys are the ones `gpupool.cluster.convert` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_GPU_MODEL = "gpupool.io/gpu-model"
LABEL_POOL = "gpupool.io/pool"
LABEL_CLASS = "gpupool.io/class"
LABEL_SPOT = "gpupool.io/spot"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass(frozen=True)
class NodeTaint:
    """A taint to put on a simulated node."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True)
class GpuNodeSpec:
    """What a simulated GPU node looks like; `manifest()` turns it into a Node object."""

    name: str
    gpus: int = 8
    gpu_model: str = "A100"
    pool: str = "onprem"
    node_class: str = "OnPrem"
    cpu: str = "64"
    memory: str = "512Gi"
    pods: int = 110
    instance_type: str = ""
    spot: bool = False
    taints: tuple[NodeTaint, ...] = ()
    extra_labels: dict[str, str] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        """The Node object to create (kwok fills in status conditions once it sees it)."""
        resources = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": str(self.pods),
            GPU_RESOURCE: str(self.gpus),
        }
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            LABEL_GPU_MODEL: self.gpu_model,
            LABEL_POOL: self.pool,
            LABEL_CLASS: self.node_class,
            LABEL_INSTANCE_TYPE: self.instance_type or f"{self.gpu_model.lower()}-x{self.gpus}",
            **self.extra_labels,
        }
        if self.spot:
            labels[LABEL_SPOT] = "true"
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": {
                "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in self.taints],
            },
            "status": {"capacity": dict(resources), "allocatable": dict(resources)},
        }


def create_gpu_node(api: Any, spec: GpuNodeSpec) -> dict[str, Any]:
    """Create the node through a `kubernetes.client.CoreV1Api`; an existing node is left as is.

    Node status set at creation is kept by the apiserver for capacity/allocatable, which is
    what the scheduler and gpupool read; kwok then marks the node Ready.
    """
    from kubernetes.client.exceptions import ApiException

    body = spec.manifest()
    try:
        created = api.create_node(body)
    except ApiException as error:
        if error.status != 409:
            raise
        created = api.read_node(spec.name)
    result: dict[str, Any] = api.api_client.sanitize_for_serialization(created)
    return result
