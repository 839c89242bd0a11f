"""The NVML backend: how pynvml's readings become samples (against a fake pynvml module),
and one test on the real pynvml that runs only where an NVIDIA driver is loaded; the stand-in
that keeps the agent running without NVML and opens it when it can."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gpupool.agent.backend import milli_to_base, percent_to_ratio
from gpupool.agent.nvml import NO_DRIVER, NvmlBackend, NvmlUnavailable, NvmlWhenAvailable


@pytest.mark.parametrize(
    ("milli", "base"), [(0, 0.0), (1, 0.001), (250_000, 250.0), (61_234, 61.234), (123_456_789_012, 123_456_789.012)]
)
def test_milliwatts_and_millijoules_to_watts_and_joules(milli: int, base: float) -> None:
    assert milli_to_base(milli) == pytest.approx(base)


@pytest.mark.parametrize(("percent", "ratio"), [(0, 0.0), (37, 0.37), (100, 1.0), (101, 1.0), (-1, 0.0)])
def test_utilization_percent_to_ratio(percent: int, ratio: float) -> None:
    assert percent_to_ratio(percent) == pytest.approx(ratio)


class FakeNVMLError(Exception):
    pass


class NotSupported(FakeNVMLError):
    pass


class FakeNvml:
    """The pynvml functions the backend calls, over a list of GPUs (dicts of readings)."""

    NVMLError = FakeNVMLError
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, gpus: list[dict[str, Any]], init_error: Exception | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.shut_down = False

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return self.gpus[index]

    def _get(self, handle: dict[str, Any], key: str) -> Any:
        value = handle[key]
        if isinstance(value, Exception):
            raise value
        return value

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> Any:
        return self._get(handle, "name")

    def nvmlDeviceGetUUID(self, handle: dict[str, Any]) -> Any:
        return self._get(handle, "uuid")

    def nvmlDeviceGetUtilizationRates(self, handle: dict[str, Any]) -> Any:
        return SimpleNamespace(gpu=self._get(handle, "util_percent"), memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: dict[str, Any]) -> Any:
        used, total = self._get(handle, "memory")
        return SimpleNamespace(used=used, total=total, free=total - used)

    def nvmlDeviceGetPowerUsage(self, handle: dict[str, Any]) -> Any:
        return self._get(handle, "power_mw")

    def nvmlDeviceGetTemperature(self, handle: dict[str, Any], sensor: int) -> Any:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._get(handle, "temperature")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: dict[str, Any]) -> Any:
        return self._get(handle, "energy_mj")

    def nvmlDeviceGetComputeRunningProcesses(self, handle: dict[str, Any]) -> Any:
        return [SimpleNamespace(pid=pid, usedGpuMemory=1) for pid in self._get(handle, "compute_pids")]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: dict[str, Any]) -> Any:
        return [SimpleNamespace(pid=pid, usedGpuMemory=1) for pid in self._get(handle, "graphics_pids")]


def gpu(**readings: Any) -> dict[str, Any]:
    base = {
        "name": b"NVIDIA H100 80GB HBM3",  # older pynvml versions return bytes
        "uuid": "GPU-11111111-2222-3333-4444-555555555555",
        "util_percent": 87,
        "memory": (40 * 1024**3, 80 * 1024**3),
        "power_mw": 312_500,
        "temperature": 64,
        "energy_mj": 9_876_543_210,
        "compute_pids": [4242, 17],
        "graphics_pids": [17],
    }
    return {**base, **readings}


def test_readings_are_mapped_to_base_units() -> None:
    nvml = FakeNvml([gpu(), gpu(name="NVIDIA A100-SXM4-40GB", uuid=b"GPU-b", util_percent=0, compute_pids=[])])
    backend = NvmlBackend("gpu-node-1", nvml=nvml)
    devices = backend.devices()
    assert [(d.node, d.index, d.uuid, d.model) for d in devices] == [
        ("gpu-node-1", 0, "GPU-11111111-2222-3333-4444-555555555555", "NVIDIA H100 80GB HBM3"),
        ("gpu-node-1", 1, "GPU-b", "NVIDIA A100-SXM4-40GB"),
    ]
    first, second = backend.sample(0.0)
    assert first.utilization_ratio == pytest.approx(0.87)
    assert (first.memory_used_bytes, first.memory_total_bytes) == (40 * 1024**3, 80 * 1024**3)
    assert first.power_watts == pytest.approx(312.5)
    assert first.temperature_celsius == 64.0
    assert first.energy_joules == pytest.approx(9_876_543.21)
    assert (first.processes, first.pids) == (2, (17, 4242))  # a PID in both lists counts once
    assert (second.utilization_ratio, second.processes, second.pids) == (0.0, 1, (17,))
    backend.close()
    assert nvml.shut_down


def test_a_reading_the_gpu_does_not_support_is_none_not_an_error() -> None:
    nvml = FakeNvml([gpu(energy_mj=NotSupported("Not Supported"), power_mw=NotSupported("Not Supported"))])
    (sample,) = NvmlBackend("n", nvml=nvml).sample(0.0)
    assert sample.energy_joules is None and sample.power_watts is None
    assert sample.utilization_ratio == pytest.approx(0.87)


def test_processes_unknown_when_neither_list_can_be_read() -> None:
    nvml = FakeNvml([gpu(compute_pids=NotSupported(), graphics_pids=NotSupported())])
    (sample,) = NvmlBackend("n", nvml=nvml).sample(0.0)
    assert (sample.processes, sample.pids) == (None, ())


def test_no_driver_says_to_use_the_simulated_backend() -> None:
    nvml = FakeNvml([], init_error=FakeNVMLError("NVML Shared Library Not Found"))
    with pytest.raises(NvmlUnavailable, match="--backend simulated") as raised:
        NvmlBackend("n", nvml=nvml)
    assert str(raised.value).startswith(NO_DRIVER)
    assert "Shared Library Not Found" in str(raised.value)


def test_a_failure_listing_gpus_releases_nvml() -> None:
    nvml = FakeNvml([gpu(uuid=FakeNVMLError("GPU is lost"))])
    with pytest.raises(NvmlUnavailable, match="GPU is lost"):
        NvmlBackend("n", nvml=nvml)
    assert nvml.shut_down


def test_without_nvml_no_gpus_the_reason_and_one_warning_then_a_try_each_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml = FakeNvml([gpu(uuid="GPU-0000")], init_error=FakeNVMLError("NVML Shared Library Not Found"))
    tries: list[float] = []

    def open_backend() -> NvmlBackend:
        tries.append(0.0)
        return NvmlBackend("n", nvml=nvml)

    lazy = NvmlWhenAvailable(open_backend, retry_seconds=60)
    assert lazy.problem is not None and lazy.problem.startswith(NO_DRIVER)
    assert (lazy.name, lazy.devices(), lazy.sample(1000.0)) == ("nvml", [], [])
    for now in (1010.0, 1030.0, 1059.0):  # within a minute of the first try: not again
        assert lazy.sample(now) == []
    assert len(tries) == 1
    assert lazy.sample(1060.0) == [] and len(tries) == 2
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "runtimeClassName nvidia" in warnings[0].getMessage()
    assert "Shared Library Not Found" in warnings[0].getMessage()

    nvml.init_error = None  # the driver is there now
    (sample,) = lazy.sample(1120.0)
    assert lazy.problem is None and len(tries) == 3
    assert sample.device.uuid == "GPU-0000" and [d.index for d in lazy.devices()] == [0]
    lazy.close()
    assert nvml.shut_down


def test_nvml_that_opens_at_once_is_the_backend_itself() -> None:
    nvml = FakeNvml([gpu(uuid="GPU-0000"), gpu(uuid="GPU-0001")])
    lazy = NvmlWhenAvailable(lambda: NvmlBackend("n", nvml=nvml))
    assert lazy.problem is None
    assert [s.device.uuid for s in lazy.sample(0.0)] == ["GPU-0000", "GPU-0001"]


def test_real_nvml_backend_reads_this_machines_gpus() -> None:
    """On a machine with an NVIDIA driver: every GPU read for real, values in range."""
    pynvml = pytest.importorskip("pynvml", reason="the nvidia-ml-py package is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        pytest.skip(f"no NVIDIA driver on this machine (nvmlInit: {error}); the real NVML backend cannot run here")
    try:
        count = pynvml.nvmlDeviceGetCount()
    finally:
        pynvml.nvmlShutdown()
    if count == 0:
        pytest.skip("NVML is loaded but this machine has no NVIDIA GPU")

    backend = NvmlBackend("this-node")
    try:
        devices = backend.devices()
        samples = backend.sample(0.0)
    finally:
        backend.close()
    assert [d.index for d in devices] == list(range(count))
    assert all(d.uuid.startswith(("GPU-", "MIG-")) and d.model for d in devices)
    for sample in samples:
        assert sample.utilization_ratio is not None and 0.0 <= sample.utilization_ratio <= 1.0
        assert sample.memory_total_bytes is not None and sample.memory_total_bytes > 1024**3
        assert sample.memory_used_bytes is not None and 0 <= sample.memory_used_bytes <= sample.memory_total_bytes
        assert sample.temperature_celsius is not None and 0.0 < sample.temperature_celsius < 120.0
        if sample.power_watts is not None:  # some boards do not report power
            assert 0.0 < sample.power_watts < 2000.0
        if sample.energy_joules is not None:  # Volta and later
            assert sample.energy_joules > 0.0
