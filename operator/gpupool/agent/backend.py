"""What the node agent reads from GPUs: the backend protocol and its values.

Who uses this: the two backends (`gpupool.agent.nvml` for real GPUs,
`gpupool.agent.simulated` for kwok nodes) implement `GpuBackend`; the agent loop
(`gpupool.agent.run`) and the exporter (`gpupool.agent.exporter`) only see these types.
Every value is in base units (ratio, bytes, watts, joules, degrees Celsius); a backend
converts its source's units before filling a `GpuSample`. A reading the GPU does not
support is None, and the exporter leaves that series out rather than inventing a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GpuDevice:
    """One GPU: the node it is on, its index there, its UUID and its model name."""

    node: str
    index: int
    uuid: str
    model: str


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU, in base units; None where the GPU cannot say."""

    device: GpuDevice
    utilization_ratio: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    power_watts: float | None
    temperature_celsius: float | None
    energy_joules: float | None
    """Energy used since a backend-specific origin (NVML: driver load; simulated: agent
    start). A counter: it only grows while the origin stays the same."""
    processes: int | None
    pids: tuple[int, ...] = ()


class GpuBackend(Protocol):
    """A source of GPU readings for the nodes one agent reports on."""

    name: str
    """`nvml` or `simulated`: the `backend` label of `gpupool_agent_info`."""

    def devices(self) -> Sequence[GpuDevice]:
        """The GPUs this agent reports, across its nodes, in (node, index) order."""
        ...

    def sample(self, now: float) -> Sequence[GpuSample]:
        """One reading per GPU, taken at `now` (seconds since the epoch)."""
        ...

    def close(self) -> None:
        """Release what the backend holds (NVML handle, API connections)."""
        ...


def milli_to_base(value: int | float) -> float:
    """NVML reports power in milliwatts and energy in millijoules: mW -> W, mJ -> J."""
    return float(value) / 1000.0


def percent_to_ratio(value: int | float) -> float:
    """NVML's utilisation percent (0..100) -> a ratio 0..1, clamped."""
    return min(1.0, max(0.0, float(value) / 100.0))
