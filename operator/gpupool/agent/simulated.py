"""The simulated GPU backend for kwok nodes: GPUs that are as busy as the workers on them.

Who uses this: `gpupool agent run --backend simulated` (on the dev cluster, in the demo
and in the integration tests). kwok nodes have no GPUs, so each reading is derived from
the gpupool worker pods the Kubernetes API shows on the node:

- **Which pods.** Pods labelled `gpupool.io/job`, in phase Running, bound to the node.
- **Which GPUs.** On a node whose agent publishes the kubelet's report of which pod holds
  which GPU (the Node annotation `gpupool.io/pod-devices`, the real node), a pod in the
  report holds the GPUs it names: the kubelet chose them, not gpupool. Otherwise a
  share's container environment (`NVIDIA_VISIBLE_DEVICES`: indices, or the UUIDs of the
  node's simulated GPUs, tokens such as `void` skipped; and `GPUPOOL_GPU_SHARE`), else,
  on a node without a report (kwok runs no device plugin), the pod's
  `gpupool.io/gpu-indices` / `gpupool.io/gpu-share` annotations, gpupool's plan. Reading
  the pod rather than the GPUJob's `status.placement` needs no access to GPUJobs and no join.
- **How busy.** The pod annotation `gpupool.io/sim-gpu-util` (a ratio 0..1, e.g.
  `"0.85"`; it comes from the job's pod template) is what the worker uses of what it
  holds; without it, or when it is not a number in 0..1, `DEFAULT_UTILIZATION` (0.9).
  A worker contributes `utilisation x share` to each of its GPUs and contributions add up
  on a shared GPU, capped at 1: a 0.5-share worker at 0.8 contributes 0.4.
- **Memory** used is proportional to what is held, not to how busy it is (a framework
  allocates its memory up front): `MEMORY_FILL x min(1, sum of shares) x total`.
- **Power** is linear in utilisation between `IDLE_WATTS` and `BUSY_WATTS` (an A100
  SXM's idle draw and TDP); **temperature** likewise between `IDLE_CELSIUS` and
  `BUSY_CELSIUS`.
- **Energy** integrates power over time from the agent's start: each sample adds the
  previous sample's power times the time since it.
- **Processes**: the number of workers on the GPU (simulated pods have no PIDs).

The arithmetic is pure (the functions and `SimulatedBackend` take plain dicts); the
Kubernetes reads are behind `ClusterSource`, so unit tests hand in lists of dicts.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gpupool.agent.backend import GpuDevice, GpuSample
from gpupool.annotations.pod_devices import ANNOTATION as POD_DEVICES_ANNOTATION
from gpupool.annotations.pod_devices import parse_pod_devices, pod_key
from gpupool.cluster.nodes.kwok_nodes import GPU_RESOURCE, KWOK_ANNOTATION, LABEL_GPU_MODEL
from gpupool.cluster.writes.pods import ANNOTATION_GPU_INDICES, ANNOTATION_GPU_SHARE

log = logging.getLogger("gpupool.agent.simulated")

ANNOTATION_SIM_UTIL = "gpupool.io/sim-gpu-util"
DEFAULT_UTILIZATION = 0.9
MEMORY_TOTAL_BYTES = 80 * 1024**3
MEMORY_FILL = 0.9
IDLE_WATTS = 60.0
BUSY_WATTS = 400.0
IDLE_CELSIUS = 30.0
BUSY_CELSIUS = 75.0
_UUID_NAMESPACE = uuid.UUID("5b0f3a52-6c1e-4d7e-9f3a-0a5e9b1c2d40")
_warned: set[str] = set()  # bad annotation values already logged (once each, not every round)


@dataclass(frozen=True)
class SimNode:
    """A node whose GPUs are simulated: its name, GPU count and model, and, where its agent
    publishes one, the kubelet's report of which pod holds which GPU (`namespace/name` ->
    UUIDs; None: no report)."""

    name: str
    gpus: int
    model: str
    pod_devices: Mapping[str, tuple[str, ...]] | None = None

    def index_of(self, device: str) -> int | None:
        """The index of the GPU a token of `NVIDIA_VISIBLE_DEVICES` names (an index or one
        of this node's simulated UUIDs); None for anything else (`void`, `none`, unknown)."""
        token = device.strip()
        if token.isascii() and token.isdigit():
            return int(token)
        for index in range(self.gpus):
            if simulated_uuid(self.name, index) == token:
                return index
        return None

    def indices_of(self, devices: Iterable[str]) -> tuple[int, ...]:
        """The indices of the GPUs `devices` name (see `index_of`), unknown ones left out."""
        return tuple(i for i in (self.index_of(d) for d in devices) if i is not None)


@dataclass(frozen=True)
class SimWorker:
    """One running worker pod as the simulation sees it."""

    node: str
    gpu_indices: tuple[int, ...]
    share: float
    utilization: float

    @property
    def contribution(self) -> float:
        """What this worker adds to each of its GPUs' utilisation."""
        return self.utilization * self.share


def sim_utilization(annotations: Mapping[str, str]) -> float:
    """The worker's `gpupool.io/sim-gpu-util`, or DEFAULT_UTILIZATION if absent or bad."""
    raw = annotations.get(ANNOTATION_SIM_UTIL)
    if raw is None:
        return DEFAULT_UTILIZATION
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        if raw not in _warned:
            _warned.add(raw)
            log.warning("%s=%r is not a ratio 0..1; using %s", ANNOTATION_SIM_UTIL, raw, DEFAULT_UTILIZATION)
        return DEFAULT_UTILIZATION
    return value


def visible_indices(value: str, node: SimNode | None = None) -> tuple[int, ...]:
    """GPU indices in an `NVIDIA_VISIBLE_DEVICES` value: the numbers and, given the `node`,
    the UUIDs of its simulated GPUs; `void`, `none` and other UUIDs are skipped."""
    tokens = [token.strip() for token in value.split(",")]
    if node is not None:
        return node.indices_of(tokens)
    return tuple(int(token) for token in tokens if token.isascii() and token.isdigit())


def _share(value: str | None) -> float:
    if value is None:
        return 1.0
    try:
        share = float(value)
    except ValueError:
        return 1.0
    return share if math.isfinite(share) and 0.0 < share <= 1.0 else 1.0


def sim_worker(pod: Mapping[str, Any], on: SimNode | None = None) -> SimWorker | None:
    """The worker a pod dict (as the API returns it) stands for; None if it holds no GPU.

    `on` is the pod's node, when the backend simulates it. A pod its report names holds
    the GPUs the kubelet gave it. Otherwise its GPUs are the indices of the first container
    whose `NVIDIA_VISIBLE_DEVICES` names some (a share: indices, or UUIDs of `on`'s GPUs),
    else, on a node without a report, gpupool's `gpupool.io/gpu-indices` annotation: a
    whole-GPU worker requests a count and its container's variable is the device plugin's
    to set, which on a kwok node nothing does, so gpupool's plan is what the simulation follows.
    """
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    spec = pod.get("spec") or {}
    node = spec.get("nodeName")
    if not node:
        return None
    if on is not None and on.pod_devices is not None:
        reported = on.pod_devices.get(pod_key(str(metadata.get("namespace")), str(metadata.get("name"))))
        if reported:
            return SimWorker(str(node), on.indices_of(reported), 1.0, sim_utilization(annotations))
    for container in spec.get("containers") or []:
        env = {e.get("name"): e.get("value") for e in container.get("env") or [] if isinstance(e, dict)}
        devices = env.get("NVIDIA_VISIBLE_DEVICES")
        if isinstance(devices, str) and visible_indices(devices, on):
            return SimWorker(
                node=str(node),
                gpu_indices=visible_indices(devices, on),
                share=_share(env.get("GPUPOOL_GPU_SHARE")),
                utilization=sim_utilization(annotations),
            )
    if on is not None and on.pod_devices is not None:
        return None  # the kubelet gave this pod no GPU: it holds none
    planned = annotations.get(ANNOTATION_GPU_INDICES)
    if isinstance(planned, str) and visible_indices(planned):
        return SimWorker(
            node=str(node),
            gpu_indices=visible_indices(planned),
            share=_share(annotations.get(ANNOTATION_GPU_SHARE)),
            utilization=sim_utilization(annotations),
        )
    return None


def sim_node(node: Mapping[str, Any]) -> SimNode | None:
    """A node dict with `nvidia.com/gpu` capacity as a SimNode; None without GPUs."""
    metadata = node.get("metadata") or {}
    capacity = (node.get("status") or {}).get("capacity") or {}
    try:
        gpus = int(capacity.get(GPU_RESOURCE, 0))
    except (TypeError, ValueError):
        gpus = 0
    if gpus <= 0 or not metadata.get("name"):
        return None
    model = (metadata.get("labels") or {}).get(LABEL_GPU_MODEL) or "simulated"
    report = parse_pod_devices((metadata.get("annotations") or {}).get(POD_DEVICES_ANNOTATION))
    return SimNode(name=str(metadata["name"]), gpus=gpus, model=str(model), pod_devices=report)


def is_kwok_node(node: Mapping[str, Any]) -> bool:
    """True for a node kwok runs (annotated `kwok.x-k8s.io/node: fake`)."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return annotations.get(KWOK_ANNOTATION) == "fake"


def gpu_utilization(node: SimNode, workers: Iterable[SimWorker]) -> dict[int, float]:
    """Each GPU of `node` -> the sum of its workers' contributions, capped at 1 (idle: 0)."""
    totals = dict.fromkeys(range(node.gpus), 0.0)
    for worker in workers:
        if worker.node != node.name:
            continue
        for index in worker.gpu_indices:
            if index in totals:
                totals[index] += worker.contribution
    return {index: min(1.0, total) for index, total in totals.items()}


def gpu_shares(node: SimNode, workers: Iterable[SimWorker]) -> dict[int, tuple[float, int]]:
    """Each GPU of `node` -> (sum of the shares held on it, number of workers on it)."""
    held = {index: (0.0, 0) for index in range(node.gpus)}
    for worker in workers:
        if worker.node != node.name:
            continue
        for index in worker.gpu_indices:
            if index in held:
                share, count = held[index]
                held[index] = (share + worker.share, count + 1)
    return held


def _between(low: float, high: float, ratio: float) -> float:
    return low + (high - low) * ratio


def power_watts(utilization: float) -> float:
    """Simulated power draw at a utilisation ratio."""
    return _between(IDLE_WATTS, BUSY_WATTS, utilization)


def temperature_celsius(utilization: float) -> float:
    """Simulated temperature at a utilisation ratio."""
    return _between(IDLE_CELSIUS, BUSY_CELSIUS, utilization)


def memory_used_bytes(shares_held: float) -> int:
    """Simulated memory in use when the workers on a GPU hold `shares_held` of it."""
    return int(MEMORY_FILL * min(1.0, shares_held) * MEMORY_TOTAL_BYTES)


def simulated_uuid(node: str, index: int) -> str:
    """A stable, made-up UUID for a simulated GPU (the same on every agent start)."""
    return f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{node}/{index}')}"


class ClusterSource(Protocol):
    """Where the simulated backend reads nodes and worker pods (API dicts)."""

    def nodes(self) -> Sequence[Mapping[str, Any]]:
        """The nodes to simulate GPUs for."""
        ...

    def worker_pods(self) -> Sequence[Mapping[str, Any]]:
        """Running gpupool worker pods on those nodes (others are ignored anyway)."""
        ...

    def close(self) -> None: ...


class SimulatedBackend:
    """GPUs of the nodes `source` lists, busy as their gpupool workers make them."""

    name = "simulated"

    def __init__(self, source: ClusterSource) -> None:
        self._source = source
        self._nodes: list[SimNode] = []
        # (node, index) -> (time of the last sample, its power, energy so far)
        self._energy: dict[tuple[str, int], tuple[float, float, float]] = {}

    def _refresh_nodes(self) -> list[SimNode]:
        nodes = [n for n in (sim_node(node) for node in self._source.nodes()) if n is not None]
        self._nodes = sorted(nodes, key=lambda n: n.name)
        return self._nodes

    def devices(self) -> Sequence[GpuDevice]:
        return [
            GpuDevice(node=n.name, index=i, uuid=simulated_uuid(n.name, i), model=n.model)
            for n in self._nodes or self._refresh_nodes()
            for i in range(n.gpus)
        ]

    def _energy_joules(self, key: tuple[str, int], now: float, power: float) -> float:
        last_at, last_power, joules = self._energy.get(key, (now, power, 0.0))
        joules += last_power * max(0.0, now - last_at)
        self._energy[key] = (now, power, joules)
        return joules

    def sample(self, now: float) -> Sequence[GpuSample]:
        nodes = self._refresh_nodes()
        by_name = {node.name: node for node in nodes}
        pods = self._source.worker_pods()
        found = (sim_worker(pod, by_name.get(str((pod.get("spec") or {}).get("nodeName")))) for pod in pods)
        workers = [w for w in found if w is not None]
        samples = []
        for node in nodes:
            utilization = gpu_utilization(node, workers)
            held = gpu_shares(node, workers)
            for index in range(node.gpus):
                util = utilization[index]
                shares, count = held[index]
                power = power_watts(util)
                samples.append(
                    GpuSample(
                        device=GpuDevice(node.name, index, simulated_uuid(node.name, index), node.model),
                        utilization_ratio=util,
                        memory_used_bytes=memory_used_bytes(shares),
                        memory_total_bytes=MEMORY_TOTAL_BYTES,
                        power_watts=power,
                        temperature_celsius=temperature_celsius(util),
                        energy_joules=self._energy_joules((node.name, index), now, power),
                        processes=count,
                    )
                )
        live = {(s.device.node, s.device.index) for s in samples}
        self._energy = {key: value for key, value in self._energy.items() if key in live}
        return samples

    def close(self) -> None:
        self._source.close()
