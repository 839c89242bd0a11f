"""Create simulated GPU nodes that kwok runs: the hardware of the dev cluster.

Who calls this: `gpupool dev nodes`, the demo, tests, and the Kwok node provider
(`gpupool.cluster.nodes.kwok_provider`), which makes the simulated cloud's nodes with it. A node gets capacity and
allocatable `nvidia.com/gpu`, cpu, memory and pods; labels for GPU model, pool, class
(on-prem or cloud) and instance type; optional taints; and the annotation that hands it to
kwok. The label keys are the ones `gpupool.cluster.translate.convert` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gpupool.api import GPUNodePool

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_GPU_MODEL = "gpupool.io/gpu-model"
LABEL_POOL = "gpupool.io/pool"
LABEL_CLASS = "gpupool.io/class"
LABEL_SPOT = "gpupool.io/spot"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
LABEL_CLAIM = "gpupool.io/claim"
"""On a node gpupool made for a GPUNodeClaim: the claim's name."""


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
        resources = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods)}
        if self.gpus > 0:  # a CPU-only node (a CPU pool's) has no nvidia.com/gpu at all
            resources[GPU_RESOURCE] = str(self.gpus)
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


def pool_node_spec(pool: GPUNodePool, name: str, *, spot: bool) -> GpuNodeSpec:
    """A node of `pool` as its provider makes it: the pool's GPUs, cpu, memory, labels and
    taints. The Kwok provider creates exactly this; the autoscale planner converts it to
    the template of a node it may request, so a plan and the node it gets agree."""
    spec = pool.spec
    defaults = GpuNodeSpec(name=name)
    return GpuNodeSpec(
        name=name,
        gpus=spec.gpus_per_node,
        gpu_model=spec.gpu_model,
        pool=str(pool.metadata.get("name", "")),
        node_class=spec.pool_class.value,
        cpu=str(spec.cpu_per_node or defaults.cpu),
        memory=str(spec.memory_per_node or defaults.memory),
        spot=spot,
        taints=tuple(NodeTaint(t.key, t.value, t.effect.value) for t in spec.taints),
        extra_labels={**spec.node_selector, LABEL_CLAIM: name},
    )
