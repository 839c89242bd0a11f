"""Inputs of the burst benchmark: timed trace pods, the cloud catalogue, the on-prem cluster.

Who uses this: `gpupool.bench.burst` (the discrete-event simulation and `gpupool bench
burst`) and `gpupool.bench.burst_bound` (the lower bound on cloud cost), and their tests.

- `load_timed_pods` reads an openb pod list with its time columns. A pod runs for
  `deletion_time - scheduled_time` seconds, what it ran in the traced cluster; a pod the
  trace never scheduled (phase Pending, no `scheduled_time`) runs for
  `deletion_time - creation_time`, the only duration the trace gives for it (897 pods of
  the default list, 28 GPU-hours of its 51,500).
- `load_catalogue` reads the cloud node types (`cloud_catalogue.yaml` next to this file by
  default): per GPU model one node type, its GPUs, cpu and memory, and its on-demand and
  spot price per GPU-hour with their sources.
- `onprem_cluster` draws the on-prem share of the trace's nodes with a seed.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from gpupool.bench.openb import TraceFormatError, TracePod, load_pods
from gpupool.core.accounting import NodeHourPrices, PoolPricing
from gpupool.core.models import MILLI_PER_GPU, GpuNode, NodeOffer, PoolClass

GIB = 1024**3
DEFAULT_CATALOGUE = Path(__file__).with_name("cloud_catalogue.yaml")
TIME_COLUMNS = ("creation_time", "deletion_time", "scheduled_time")


@dataclass(frozen=True, slots=True)
class TimedPod:
    """A trace pod with when it arrives and how long it runs (seconds)."""

    pod: TracePod
    arrival: float
    duration: float


def load_timed_pods(path: str | Path) -> list[TimedPod]:
    """Pods of an openb pod list with their times, in file order.

    Raises `TraceFormatError` when the list has no time columns (the published
    `multigpu20` variant, for one, carries only the first five columns).
    """
    path = Path(path)
    pods = load_pods(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in TIME_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise TraceFormatError(f"{path}: no time column(s) {', '.join(missing)}; the burst bench needs them")
        rows = list(reader)
    out = []
    for line, (pod, row) in enumerate(zip(pods, rows, strict=True), start=2):
        try:
            created = float(row["creation_time"])
            deleted = float(row["deletion_time"])
            started = float(row["scheduled_time"]) if row["scheduled_time"].strip() else created
        except ValueError:
            raise TraceFormatError(f"{path}:{line}: a time column is not a number") from None
        out.append(TimedPod(pod, created, max(1.0, deleted - started)))
    return out


@dataclass(frozen=True, slots=True)
class CloudType:
    """One rentable node type: `gpus` GPUs of `model` at a price per GPU-hour."""

    model: str
    instance: str
    gpus: int
    cpu_milli: int
    memory_bytes: int
    on_demand_per_gpu_hour: float
    spot_per_gpu_hour: float | None
    source: str

    def pool(self) -> str:
        return f"cloud-{self.model.lower()}"

    def node(self, spot: bool) -> GpuNode:
        """The template of one node of this type."""
        return GpuNode(
            name=f"{self.pool()}-template",
            gpu_model=self.model,
            gpus=self.gpus,
            cpu_milli=self.cpu_milli,
            memory_bytes=self.memory_bytes,
            pool=self.pool(),
            pool_class=PoolClass.CLOUD,
            spot=spot,
        )

    def pricing(self) -> PoolPricing:
        """This type as a cloud pool in the operator's price book (`gpupool.core.accounting`):
        its per-GPU prices times its GPUs are the node-hour prices."""
        spot = None if self.spot_per_gpu_hour is None else self.spot_per_gpu_hour * self.gpus
        prices = NodeHourPrices(on_demand=self.on_demand_per_gpu_hour * self.gpus, spot=spot)
        return PoolPricing(self.pool(), cloud=True, gpus_per_node=self.gpus, prices=prices)

    def node_price(self, spot: bool) -> float:
        """Price of one node-hour (spot or on-demand), by the operator's price rule."""
        return self.pricing().node_hour(spot=spot)

    def holds(self, pod: TracePod) -> bool:
        """Could one node of this type host `pod` alone (model, GPUs, cpu, memory)?"""
        if pod.gpu_models and self.model not in pod.gpu_models:
            return False
        gpus = math.ceil(pod.requested_milli / MILLI_PER_GPU)
        return gpus <= self.gpus and pod.cpu_milli <= self.cpu_milli and pod.memory_bytes <= self.memory_bytes


def load_catalogue(path: str | Path = DEFAULT_CATALOGUE) -> list[CloudType]:
    """The node types of a catalogue file (see `cloud_catalogue.yaml`)."""
    data = yaml.safe_load(Path(path).read_text())
    out = []
    for entry in data["types"]:
        spot = entry.get("spot_per_gpu_hour")
        out.append(
            CloudType(
                model=str(entry["model"]),
                instance=str(entry["instance"]),
                gpus=int(entry["gpus"]),
                cpu_milli=int(float(entry["cpu"]) * 1000),
                memory_bytes=int(float(entry["memory_gib"]) * GIB),
                on_demand_per_gpu_hour=float(entry["on_demand_per_gpu_hour"]),
                spot_per_gpu_hour=None if spot is None else float(spot),
                source=str(entry["source"]),
            )
        )
    return out


def offers_of(types: Sequence[CloudType], headroom: int) -> tuple[NodeOffer, ...]:
    """One on-demand offer per type, and a spot offer where the type has a spot price."""
    out = []
    for t in types:
        out.append(NodeOffer(t.pool(), t.node(False), t.node_price(False), headroom))
        if t.spot_per_gpu_hour is not None:
            out.append(NodeOffer(t.pool(), t.node(True), t.node_price(True), headroom))
    return tuple(out)


def onprem_cluster(
    gpu_nodes: Sequence[GpuNode], cpu_nodes: Sequence[GpuNode], share: float, seed: int
) -> list[GpuNode]:
    """`share` of the GPU nodes and of the CPU-only nodes (at least one of each when the
    share is above 0), drawn without replacement with `seed`, in their file order."""

    def draw(nodes: Sequence[GpuNode], rng: np.random.Generator) -> list[GpuNode]:
        if share <= 0 or not nodes:
            return []
        count = min(len(nodes), max(1, round(share * len(nodes))))
        picked = sorted(rng.choice(len(nodes), size=count, replace=False).tolist())
        return [nodes[i] for i in picked]

    rng = np.random.default_rng(seed)
    return draw(gpu_nodes, rng) + draw(cpu_nodes, rng)


__all__ = [
    "DEFAULT_CATALOGUE",
    "CloudType",
    "TimedPod",
    "load_catalogue",
    "load_timed_pods",
    "offers_of",
    "onprem_cluster",
]
