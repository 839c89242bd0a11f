"""The Kwok node provider: a simulated cloud on the real API server.

Who uses this: the operator (`gpupool.controllers.runner`) serves every GPUNodePool with
`provider: Kwok` through it; the claim reconciler calls it. Like Karpenter's kwok provider
it makes real Node objects, which kwok then runs: a node appears `provisioningDelay` after
its claim was made, with the pool's GPUs, cpu, memory, labels and taints, and is deleted
when released. `failure_rate` (GPUPOOL_KWOK_FAILURE_RATE) makes that fraction of launches
fail, alternately as capacity-unavailable and transient, deterministically per (claim,
attempt) so a run can be repeated; a pool's `gpupool.io/kwok-failure-rate` annotation
overrides it for that pool (a zone that has run out of a GPU type). `interrupt` (used by
`gpupool dev interrupt`) deletes a node at once, as a spot reclaim does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubernetes.client.exceptions import ApiException

from gpupool.cluster.nodes.kwok_nodes import LABEL_CLAIM, LABEL_POOL, GpuNodeSpec, pool_node_spec
from gpupool.cluster.nodes.providers import CapacityUnavailable, NodeLaunch, ProviderTransient
from gpupool.cluster.translate.convert import parse_duration_seconds

FAILURE_RATE_ANNOTATION = "gpupool.io/kwok-failure-rate"
"""On a Kwok GPUNodePool: the fraction of its launches that fail (overrides the setting)."""


def create_gpu_node(api: Any, spec: GpuNodeSpec) -> dict[str, Any]:
    """Create the node through a `kubernetes.client.CoreV1Api`; an existing node is left as is.

    Node status set at creation is kept by the apiserver for capacity/allocatable, which is
    what the scheduler and gpupool read; kwok then marks the node Ready.
    """
    body = spec.manifest()
    try:
        created = api.create_node(body)
    except ApiException as error:
        if error.status != 409:
            raise
        created = api.read_node(spec.name)
    result: dict[str, Any] = api.api_client.sanitize_for_serialization(created)
    return result


class KwokProvider:
    """Nodes of Kwok pools as real Node objects (see the module docstring)."""

    def __init__(self, core_api: Any, *, failure_rate: float = 0.0, seed: int = 0) -> None:
        self._core = core_api
        self._failure_rate = failure_rate
        self._seed = seed

    def create(self, launch: NodeLaunch, now: float) -> str | None:
        delay = parse_duration_seconds(launch.pool.spec.provisioning_delay, what="spec.provisioningDelay")
        if now - launch.requested_at < delay:
            return None
        self._maybe_fail(launch)
        create_gpu_node(self._core, pool_node_spec(launch.pool, launch.name, spot=launch.spot))
        return f"kwok://{launch.name}"

    def node_name(self, launch: NodeLaunch) -> str | None:
        return launch.name

    def delete(self, node: str) -> None:
        try:
            self._core.delete_node(node, grace_period_seconds=0)
        except ApiException as error:
            if error.status != 404:
                raise

    def release(self, launch: NodeLaunch) -> None:
        self.delete(launch.name)

    def list(self, pool: str) -> list[str]:
        nodes = self._core.list_node(label_selector=f"{LABEL_POOL}={pool},{LABEL_CLAIM}")
        return sorted(n.metadata.name for n in nodes.items)

    def interrupt(self, node: str) -> None:
        """Take a node away now, as a spot reclaim or a hardware loss does."""
        self.delete(node)

    def _maybe_fail(self, launch: NodeLaunch) -> None:
        annotations = launch.pool.metadata.get("annotations") or {}
        try:
            rate = float(annotations.get(FAILURE_RATE_ANNOTATION, self._failure_rate))
        except ValueError:
            rate = self._failure_rate  # an unreadable annotation simulates nothing
        if rate <= 0:
            return
        digest = hashlib.sha256(f"{self._seed}:{launch.name}:{launch.attempt}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= rate:
            return
        pool = launch.pool.metadata.get("name", "")
        if digest[8] % 2 == 0:
            raise CapacityUnavailable(f"simulated: no {launch.pool.spec.gpu_model} capacity in pool {pool} now")
        raise ProviderTransient(f"simulated: the provider timed out launching {launch.name}")
