"""Builders and waits shared by the integration and e2e tests.

Every scenario gets a unique GPU model name, so its nodes, queues and jobs never mix with
another test's on the shared session cluster: queues only hold quota for that model and
jobs only accept it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from cluster_tools import kubectl
from gpupool.cluster.nodes.kwok_nodes import GpuNodeSpec
from gpupool.cluster.nodes.kwok_provider import create_gpu_node
from gpupool.core.models import CPU_MODEL

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll `predicate` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def job_manifest(
    name: str,
    namespace: str,
    queue: str,
    *,
    gpus: float = 1,
    workers: int = 1,
    models: list[str] | None = None,
    duration: str | None = "30s",
    fail_after: str | None = None,
    priority: int = 0,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A GPUJob manifest; `duration` / `fail_after` drive the simulated pods, `annotations`
    go on the pod template as they are (e.g. `gpupool.io/sim-gpu-util`)."""
    template_annotations = {}
    if duration:
        template_annotations["gpupool.io/sim-duration"] = duration
    if fail_after:
        template_annotations = {"gpupool.io/sim-fail-after": fail_after}
    template_annotations.update(annotations or {})
    body: dict[str, Any] = {
        "queue": queue,
        "gpus": gpus,
        "workers": workers,
        "priority": priority,
        "template": {
            "metadata": {"annotations": template_annotations},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]},
        },
        **spec,
    }
    if models:
        body["gpuModels"] = models
    return {
        "apiVersion": "gpupool.io/v1alpha1",
        "kind": "GPUJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


@dataclass
class Scenario:
    """One test's private world: a GPU model, its nodes and queues, in one namespace."""

    kubeconfig: str
    core_api: Any
    namespace: str
    model: str = field(default_factory=lambda: f"T{uuid.uuid4().hex[:6].upper()}")

    def apply(self, *manifests: dict[str, Any]) -> None:
        kubectl(self.kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))

    def nodes(
        self,
        count: int,
        gpus: int = 8,
        cpu: str = "64",
        memory: str = "512Gi",
        prefix: str = "n",
        pods: int = 110,
        pool: str | None = None,
    ) -> list[str]:
        """`count` Ready nodes of this scenario's GPU model in its pool; with `gpus=0`, CPU-only
        nodes (model CPU) for the CPU pool `pool`."""
        names = []
        for index in range(count):
            name = f"{self.model.lower()}-{prefix}{index}"
            create_gpu_node(
                self.core_api,
                GpuNodeSpec(
                    name=name,
                    gpus=gpus,
                    gpu_model=self.model if gpus else CPU_MODEL,
                    pool=pool or f"pool-{self.model.lower()}",
                    cpu=cpu,
                    memory=memory,
                    pods=pods,
                ),
            )
            names.append(name)
        for name in names:
            wait_for(lambda n=name: self._node_ready(n), 60, f"node {name} to be Ready without taints")
        return names

    def _node_ready(self, name: str) -> bool:
        node = self.core_api.read_node(name)
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        return ready and not any(t.key.startswith("node.kubernetes.io/") for t in node.spec.taints or [])

    def pool(self, gpus_per_node: int = 8, amortised_price: float = 16.0, **extra: Any) -> str:
        """A GPUNodePool selecting this scenario's nodes (on-prem, amortised price per node-hour);
        `extra` are more spec fields (e.g. gpuModelSpec)."""
        name = f"pool-{self.model.lower()}"
        spec = {
            "class": "OnPrem",
            "gpuModel": self.model,
            "gpusPerNode": gpus_per_node,
            "nodeSelector": {"gpupool.io/pool": name},
            "pricePerNodeHour": {"amortised": amortised_price},
            "provider": "Static",
            **extra,
        }
        self.apply(
            {"apiVersion": "gpupool.io/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": name}, "spec": spec}
        )
        return name

    def cpu_pool(self, amortised_price: float, cpu: str = "64") -> tuple[str, str]:
        """A CPU pool (gpuModel CPU, gpusPerNode 0) with one CPU-only node: (pool, node)."""
        name = f"cpu-{self.model.lower()}"
        (node,) = self.nodes(1, gpus=0, cpu=cpu, prefix="cpu", pool=name)
        spec = {
            "class": "OnPrem",
            "gpuModel": CPU_MODEL,
            "gpusPerNode": 0,
            "nodeSelector": {"gpupool.io/pool": name},
            "pricePerNodeHour": {"amortised": amortised_price},
        }
        self.apply(
            {"apiVersion": "gpupool.io/v1alpha1", "kind": "GPUNodePool", "metadata": {"name": name}, "spec": spec}
        )
        return name, node

    def cloud_pool(
        self,
        suffix: str,
        *,
        on_demand: float | None = 32.0,
        spot: float | None = None,
        gpus_per_node: int = 8,
        delay: str = "2s",
        scale_down_after: str = "8s",
        annotations: dict[str, str] | None = None,
        **spec: Any,
    ) -> str:
        """A Kwok (simulated cloud) GPUNodePool of this scenario's model; prices per node-hour."""
        name = f"cloud-{self.model.lower()}-{suffix}"
        price = {k: v for k, v in (("onDemand", on_demand), ("spot", spot)) if v is not None}
        body = {
            "class": "Cloud",
            "gpuModel": self.model,
            "gpusPerNode": gpus_per_node,
            "cpuPerNode": "64",
            "memoryPerNode": "512Gi",
            "nodeSelector": {"gpupool.io/pool": name},
            "pricePerNodeHour": price,
            "provider": "Kwok",
            "provisioningDelay": delay,
            "scaleDownAfter": scale_down_after,
            **spec,
        }
        metadata = {"name": name, "annotations": annotations or {}}
        self.apply({"apiVersion": "gpupool.io/v1alpha1", "kind": "GPUNodePool", "metadata": metadata, "spec": body})
        return name

    def claims(self, pool: str | None = None) -> list[dict[str, Any]]:
        """GPUNodeClaims of this scenario's cloud pools (or of one pool)."""
        out = kubectl(self.kubeconfig, "get", "gpunodeclaims", "-o", "json").stdout
        prefix = pool or f"cloud-{self.model.lower()}-"
        return [c for c in json.loads(out)["items"] if c["spec"]["pool"].startswith(prefix)]

    def cloud_nodes(self) -> list[str]:
        """Nodes the Kwok provider made for this scenario's pools."""
        nodes = self.core_api.list_node(label_selector="gpupool.io/claim").items
        return sorted(
            n.metadata.name
            for n in nodes
            if n.metadata.labels.get("gpupool.io/pool", "").startswith(f"cloud-{self.model.lower()}-")
        )

    def queue(
        self, name: str, nominal: int, *, cohort: str | None = None, borrowing_limit: int | None = None, **spec: Any
    ) -> str:
        full = f"{name}-{self.model.lower()}"
        quota: dict[str, Any] = {"gpuModel": self.model, "nominal": nominal}
        if borrowing_limit is not None:
            quota["borrowingLimit"] = borrowing_limit
        body: dict[str, Any] = {"quotas": [quota], **spec}
        if cohort:
            body["cohort"] = f"{cohort}-{self.model.lower()}"
        self.apply({"apiVersion": "gpupool.io/v1alpha1", "kind": "GPUQueue", "metadata": {"name": full}, "spec": body})
        return full

    def job(self, name: str, queue: str, **kwargs: Any) -> str:
        kwargs.setdefault("models", [self.model])
        self.apply(job_manifest(name, self.namespace, queue, **kwargs))
        return name

    def get_job(self, name: str) -> dict[str, Any]:
        out = kubectl(self.kubeconfig, "get", "gpujob", name, "-n", self.namespace, "-o", "json").stdout
        result: dict[str, Any] = json.loads(out)
        return result

    def status(self, name: str) -> dict[str, Any]:
        return self.get_job(name).get("status") or {}

    def phase(self, name: str) -> str | None:
        return self.status(name).get("phase")

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.status(name)).get("phase") == phase and s, timeout, f"job {name} to reach {phase}"
        )

    def pods(self, job: str | None = None) -> list[dict[str, Any]]:
        selector = f"gpupool.io/job={job}" if job else "gpupool.io/job"
        out = kubectl(self.kubeconfig, "get", "pods", "-n", self.namespace, "-l", selector, "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    def events(self, name: str) -> list[str]:
        return event_reasons(self.kubeconfig, self.namespace, name)


def event_reasons(kubeconfig: str, namespace: str, name: str) -> list[str]:
    """The reasons of the events about object `name` in `namespace`, oldest first."""
    out = kubectl(
        kubeconfig, "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    return [e["reason"] for e in sorted(json.loads(out)["items"], key=lambda e: e["metadata"]["creationTimestamp"])]
