"""The agent's Prometheus metrics: the latest reading of every GPU, in base units.

Who uses this: `gpupool.agent.run` hands each round of samples to `GpuCollector.update`
and serves the collector's registry on `/metrics`. A custom collector (rather than
labelled Gauges) exports exactly the GPUs of the latest round, so a GPU or node that goes
away leaves no stale series behind. A reading a backend could not take (None) is left out.

Per GPU, labels `node`, `gpu` (index), `uuid`, `model`:

    gpupool_gpu_utilization_ratio        0..1
    gpupool_gpu_memory_used_bytes
    gpupool_gpu_memory_total_bytes
    gpupool_gpu_power_watts
    gpupool_gpu_temperature_celsius
    gpupool_gpu_energy_joules_total      counter (NVML: since driver load; simulated: since agent start)
    gpupool_gpu_processes                processes (NVML) or workers (simulated) on the GPU

Per agent: `gpupool_agent_info{backend}` (1), `gpupool_agent_last_sample_timestamp_seconds`,
`gpupool_agent_sample_errors_total` (rounds that failed to read) and, with the NVML backend,
`gpupool_agent_nvml_available` (1 when NVML is open, 0 while the agent runs without it; see
`gpupool.agent.nvml.NvmlWhenAvailable`). Per-job views join
these with the operator's `gpupool_gpu_allocation_info` in PromQL; the agent knows GPUs,
not jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from gpupool.agent.backend import GpuSample

GPU_LABELS = ("node", "gpu", "uuid", "model")


@dataclass(frozen=True)
class _Series:
    name: str
    help: str
    read: Callable[[GpuSample], float | int | None]
    counter: bool = False


GPU_SERIES = (
    _Series("gpupool_gpu_utilization_ratio", "GPU utilisation, 0..1.", lambda s: s.utilization_ratio),
    _Series("gpupool_gpu_memory_used_bytes", "GPU memory in use.", lambda s: s.memory_used_bytes),
    _Series("gpupool_gpu_memory_total_bytes", "GPU memory in total.", lambda s: s.memory_total_bytes),
    _Series("gpupool_gpu_power_watts", "GPU power draw.", lambda s: s.power_watts),
    _Series("gpupool_gpu_temperature_celsius", "GPU temperature.", lambda s: s.temperature_celsius),
    _Series("gpupool_gpu_energy_joules", "GPU energy used.", lambda s: s.energy_joules, counter=True),
    _Series("gpupool_gpu_processes", "Processes (or simulated workers) on the GPU.", lambda s: s.processes),
)


class GpuCollector(Collector):
    """Collects the latest round of samples; thread-safe against the sampling loop."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._samples: tuple[GpuSample, ...] = ()
        self._sampled_at: float | None = None
        self._errors = 0
        self._nvml_available: bool | None = None

    def update(self, samples: Sequence[GpuSample], now: float) -> None:
        with self._lock:
            self._samples = tuple(samples)
            self._sampled_at = now

    def nvml_available(self, available: bool) -> None:
        """Whether NVML is open (exported from the first call on; backends without NVML never call it)."""
        with self._lock:
            self._nvml_available = available

    def failed(self) -> None:
        """Count a round that could not be read (the previous samples stay exported)."""
        with self._lock:
            self._errors += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            samples, sampled_at, errors = self._samples, self._sampled_at, self._errors
            nvml_available = self._nvml_available
        for series in GPU_SERIES:
            family: GaugeMetricFamily | CounterMetricFamily
            if series.counter:
                family = CounterMetricFamily(series.name, series.help, labels=GPU_LABELS)
            else:
                family = GaugeMetricFamily(series.name, series.help, labels=GPU_LABELS)
            for sample in samples:
                value = series.read(sample)
                if value is not None:
                    device = sample.device
                    family.add_metric([device.node, str(device.index), device.uuid, device.model], float(value))
            yield family
        info = GaugeMetricFamily("gpupool_agent_info", "The node agent and its GPU backend.", labels=["backend"])
        info.add_metric([self.backend], 1.0)
        yield info
        if sampled_at is not None:
            yield GaugeMetricFamily(
                "gpupool_agent_last_sample_timestamp_seconds", "When the GPUs were last read.", value=sampled_at
            )
        yield CounterMetricFamily(
            "gpupool_agent_sample_errors", "Rounds in which the GPUs could not be read.", value=errors
        )
        if nvml_available is not None:
            yield GaugeMetricFamily(
                "gpupool_agent_nvml_available",
                "1 when the agent reads the GPUs through NVML, 0 while NVML cannot be opened.",
                value=1.0 if nvml_available else 0.0,
            )


def registry_with(collector: GpuCollector) -> CollectorRegistry:
    """A registry of its own (not the process-wide default) holding just `collector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
