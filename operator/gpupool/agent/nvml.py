"""The real GPU backend: NVML through `pynvml` (the nvidia-ml-py package).

Who uses this: `gpupool agent run --backend nvml` on a node with NVIDIA GPUs and their
driver. `pynvml` is imported when the backend is made, not when this module is, so the
rest of the agent (and its tests) run where the package or the driver is missing. A test
may hand in any object with pynvml's functions (`nvml=`), which is how the mapping below
is tested without a GPU.

Units: NVML reports utilisation in percent, power in milliwatts, energy in millijoules
(since the driver was loaded), memory in bytes and temperature in degrees Celsius; the
sample carries ratio, watts, joules, bytes and degrees. A reading the GPU does not
support (NVML raises NVMLError, e.g. NOT_SUPPORTED for energy before Volta) is None.

Without NVML (no driver library in the container, no GPU) the agent does not stop:
`NvmlWhenAvailable` stands in for the backend, reports no GPUs and the reason
(`problem`), and tries to open NVML again every minute. The agent turns that into the
gauge `gpupool_agent_nvml_available` and the Node condition `GPUPoolAgentNVML`
(`CONDITION`, reasons `NVMLAvailable` / `NVMLUnavailable`, the message saying what to
check: `NVML_HINT`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from gpupool.agent.backend import GpuBackend, GpuDevice, GpuSample, milli_to_base, percent_to_ratio

log = logging.getLogger("gpupool.agent.nvml")

NO_DRIVER = "no NVIDIA driver on this node: run the agent with --backend simulated on kwok nodes"

CONDITION = "GPUPoolAgentNVML"
"""Type of the Node condition the agent sets: True when it reads the node's GPUs through NVML."""
REASON_AVAILABLE = "NVMLAvailable"
REASON_UNAVAILABLE = "NVMLUnavailable"
NVML_HINT = (
    "check that the agent pod runs with runtimeClassName nvidia (chart value agent.runtimeClassName) "
    "and that the NVIDIA container toolkit is installed and configured on this node, so that the "
    "driver's NVML library is mounted into the container"
)
RETRY_SECONDS = 60.0
"""How often `NvmlWhenAvailable` tries to open NVML again while it cannot."""

T = TypeVar("T")


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used here; the message says what to do instead."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class NvmlBackend:
    """Reads every GPU of this node through NVML; `node` names the node in the labels."""

    name = "nvml"

    def __init__(self, node: str, nvml: Any = None) -> None:
        if nvml is None:
            try:
                import pynvml
            except ImportError as error:
                raise NvmlUnavailable(f"{NO_DRIVER} (the pynvml package is not installed)") from error
            nvml = pynvml
        self._nvml = nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            raise NvmlUnavailable(f"{NO_DRIVER} (nvmlInit failed: {error})") from error
        self._handles: list[Any] = []
        self._devices: list[GpuDevice] = []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = _text(nvml.nvmlDeviceGetUUID(handle))
                model = _text(nvml.nvmlDeviceGetName(handle))
                self._handles.append(handle)
                self._devices.append(GpuDevice(node=node, index=index, uuid=uuid, model=model))
        except nvml.NVMLError as error:
            nvml.nvmlShutdown()
            raise NvmlUnavailable(f"NVML could not list this node's GPUs: {error}") from error

    def devices(self) -> Sequence[GpuDevice]:
        return list(self._devices)

    def _read(self, what: str, call: Callable[..., T], *args: Any) -> T | None:
        try:
            return call(*args)
        except self._nvml.NVMLError as error:
            log.debug("NVML reading unavailable", extra={"reading": what, "error": str(error)})
            return None

    def _pids(self, handle: Any) -> tuple[int, ...] | None:
        nvml = self._nvml
        compute = self._read("compute processes", nvml.nvmlDeviceGetComputeRunningProcesses, handle)
        graphics = self._read("graphics processes", nvml.nvmlDeviceGetGraphicsRunningProcesses, handle)
        if compute is None and graphics is None:
            return None
        return tuple(sorted({int(p.pid) for p in [*(compute or []), *(graphics or [])]}))

    def _sample(self, device: GpuDevice, handle: Any) -> GpuSample:
        nvml = self._nvml
        rates = self._read("utilization", nvml.nvmlDeviceGetUtilizationRates, handle)
        memory = self._read("memory", nvml.nvmlDeviceGetMemoryInfo, handle)
        power = self._read("power", nvml.nvmlDeviceGetPowerUsage, handle)
        temperature = self._read("temperature", nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
        energy = self._read("energy", nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
        pids = self._pids(handle)
        return GpuSample(
            device=device,
            utilization_ratio=None if rates is None else percent_to_ratio(rates.gpu),
            memory_used_bytes=None if memory is None else int(memory.used),
            memory_total_bytes=None if memory is None else int(memory.total),
            power_watts=None if power is None else milli_to_base(power),
            temperature_celsius=None if temperature is None else float(temperature),
            energy_joules=None if energy is None else milli_to_base(energy),
            processes=None if pids is None else len(pids),
            pids=pids or (),
        )

    def sample(self, now: float) -> Sequence[GpuSample]:
        return [self._sample(device, handle) for device, handle in zip(self._devices, self._handles, strict=True)]

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            log.warning("nvmlShutdown failed", exc_info=True)


class NvmlWhenAvailable:
    """The NVML backend once it opens; until then no GPUs, and `problem` says why.

    Who uses this: `gpupool.agent.run` for `--backend nvml`, so that an agent whose container
    lacks the driver's library keeps running (a DaemonSet pod that exits would crash-loop): it
    still serves /metrics and publishes the kubelet's pod devices, and shows the problem as
    `gpupool_agent_nvml_available 0` and the Node condition `GPUPoolAgentNVML=False`.
    `open_backend` makes the real backend (raises `NvmlUnavailable`); it is tried once here and
    again at the first `sample` at least `retry_seconds` after the last try. The first failure
    is logged as a warning, later ones at debug level.
    """

    name = "nvml"

    def __init__(self, open_backend: Callable[[], GpuBackend], retry_seconds: float = RETRY_SECONDS) -> None:
        self._open = open_backend
        self._retry_seconds = retry_seconds
        self._backend: GpuBackend | None = None
        self._tried_at: float | None = None
        self.problem: str | None = None
        """Why NVML cannot be used (the `NvmlUnavailable` message); None once it is open."""
        self._try()

    def _try(self) -> None:
        try:
            self._backend = self._open()
        except NvmlUnavailable as error:
            if self.problem is None:
                log.warning(
                    "NVML unavailable (%s): %s; serving /metrics without GPUs, trying again every %.0f s",
                    error,
                    NVML_HINT,
                    self._retry_seconds,
                )
            else:
                log.debug("NVML still unavailable: %s", error)
            self.problem = str(error)
            return
        if self.problem is not None:
            log.info("NVML opened: %d GPUs", len(self._backend.devices()))
        self.problem = None

    def devices(self) -> Sequence[GpuDevice]:
        return [] if self._backend is None else self._backend.devices()

    def sample(self, now: float) -> Sequence[GpuSample]:
        if self._backend is None:
            if self._tried_at is None:
                self._tried_at = now  # the first try was at start-up
            elif now - self._tried_at >= self._retry_seconds:
                self._tried_at = now
                self._try()
        if self._backend is None:
            return []
        return self._backend.sample(now)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
