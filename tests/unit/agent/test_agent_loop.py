"""One agent round after another on a fake clock: exported metrics, annotations written
when due, failures survived; without NVML the agent runs on (gauge, Node condition, pod
devices); and the settings, which name the bad variable."""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gpupool.agent.backend import GpuDevice, GpuSample
from gpupool.agent.exporter import GpuCollector, registry_with
from gpupool.agent.nvml import NO_DRIVER, NvmlUnavailable
from gpupool.agent.podresources import PodResourcesUnavailable
from gpupool.agent.run import Agent, _backend, main, parse_settings
from gpupool.agent.settings import AgentSettings
from gpupool.annotations.gpu_uuids import ANNOTATION as UUIDS_ANNOTATION
from gpupool.annotations.gpu_uuids import parse_uuids
from gpupool.annotations.pod_devices import ANNOTATION as POD_DEVICES
from gpupool.annotations.pod_devices import parse_pod_devices
from gpupool.annotations.summary import ANNOTATION, parse_summary

T0 = 1_750_000_000.0


def sample(node: str, index: int, util: float | None, **readings: float | int | None) -> GpuSample:
    values: dict[str, float | int | None] = {
        "memory_used_bytes": 1024,
        "memory_total_bytes": 4096,
        "power_watts": 100.0,
        "temperature_celsius": 50.0,
        "energy_joules": 1234.5,
        "processes": 1,
        **readings,
    }
    return GpuSample(device=GpuDevice(node, index, f"GPU-{node}-{index}", "H100"), utilization_ratio=util, **values)  # type: ignore[arg-type]


class FakeBackend:
    name = "simulated"

    def __init__(self) -> None:
        self.samples: list[GpuSample] = []
        self.error: Exception | None = None

    def devices(self) -> Sequence[GpuDevice]:
        return [s.device for s in self.samples]

    def sample(self, now: float) -> Sequence[GpuSample]:
        if self.error is not None:
            raise self.error
        return self.samples

    def close(self) -> None:
        pass


class FakeAnnotator:
    """Records every annotation write; `writes` holds the summary's only, `all_writes` all."""

    def __init__(self) -> None:
        self.all_writes: list[tuple[float, str, str, str]] = []
        self.conditions: list[tuple[str, dict[str, str]]] = []
        self.error: Exception | None = None
        self.condition_error: Exception | None = None
        self.clock = Clock()

    @property
    def writes(self) -> list[tuple[float, str, str, str]]:
        return [w for w in self.all_writes if w[2] == ANNOTATION]

    def uuid_writes(self) -> list[tuple[str, dict[int, str] | None]]:
        return [(node, parse_uuids(value)) for _at, node, key, value in self.all_writes if key == UUIDS_ANNOTATION]

    def annotate(self, node: str, key: str, value: str) -> None:
        if self.error is not None:
            raise self.error
        self.all_writes.append((self.clock.now, node, key, value))

    def set_condition(self, node: str, condition: Mapping[str, str]) -> None:
        if self.condition_error is not None:
            raise self.condition_error
        self.conditions.append((node, dict(condition)))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def rig(**settings: object) -> tuple[Agent, FakeBackend, FakeAnnotator, GpuCollector]:
    backend = FakeBackend()
    annotator = FakeAnnotator()
    collector = GpuCollector(backend.name)
    options = {"all_kwok_nodes": True, "backend": "simulated", "window_seconds": 60, **settings}
    agent = Agent(backend, collector, annotator, AgentSettings(**options), clock=annotator.clock)  # type: ignore[arg-type]
    return agent, backend, annotator, collector


def scrape(collector: GpuCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry_with(collector)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(node: str, index: int) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"node": node, "gpu": str(index), "uuid": f"GPU-{node}-{index}", "model": "H100"}.items()))


def test_the_latest_samples_are_exported_in_base_units() -> None:
    agent, backend, _annotator, collector = rig()
    backend.samples = [sample("n1", 0, 0.75), sample("n1", 1, None, power_watts=None)]
    agent.tick()
    metrics = scrape(collector)
    assert metrics[("gpupool_gpu_utilization_ratio", labels("n1", 0))] == 0.75
    assert metrics[("gpupool_gpu_memory_used_bytes", labels("n1", 0))] == 1024
    assert metrics[("gpupool_gpu_memory_total_bytes", labels("n1", 0))] == 4096
    assert metrics[("gpupool_gpu_power_watts", labels("n1", 0))] == 100.0
    assert metrics[("gpupool_gpu_temperature_celsius", labels("n1", 0))] == 50.0
    assert metrics[("gpupool_gpu_energy_joules_total", labels("n1", 0))] == 1234.5
    assert metrics[("gpupool_gpu_processes", labels("n1", 0))] == 1
    # What a GPU could not report is left out, not zero.
    assert ("gpupool_gpu_utilization_ratio", labels("n1", 1)) not in metrics
    assert ("gpupool_gpu_power_watts", labels("n1", 1)) not in metrics
    assert metrics[("gpupool_agent_info", (("backend", "simulated"),))] == 1
    assert metrics[("gpupool_agent_last_sample_timestamp_seconds", ())] == T0
    assert metrics[("gpupool_agent_sample_errors_total", ())] == 0


def test_a_gpu_that_goes_away_leaves_no_stale_series() -> None:
    agent, backend, _annotator, collector = rig()
    backend.samples = [sample("n1", 0, 0.5), sample("n2", 0, 0.5)]
    agent.tick()
    backend.samples = [sample("n2", 0, 0.5)]
    agent.tick()
    nodes = {dict(key[1]).get("node") for key in scrape(collector) if key[0] == "gpupool_gpu_utilization_ratio"}
    assert nodes == {"n2"}
    assert set(agent.windows) == {"n2"}


def test_a_failed_read_is_counted_and_the_last_samples_stay() -> None:
    agent, backend, _annotator, collector = rig()
    backend.samples = [sample("n1", 0, 0.5)]
    agent.tick()
    backend.error = RuntimeError("API server unreachable")
    agent.tick()
    metrics = scrape(collector)
    assert metrics[("gpupool_agent_sample_errors_total", ())] == 1
    assert metrics[("gpupool_gpu_utilization_ratio", labels("n1", 0))] == 0.5


def test_each_node_gets_its_summary_at_most_every_min_interval() -> None:
    agent, backend, annotator, _collector = rig(summary_min_interval_seconds=30)
    clock = annotator.clock
    backend.samples = [sample("n1", 0, 1.0), sample("n1", 1, 0.0), sample("n2", 0, 0.2)]
    agent.tick()
    assert [(node, key) for _at, node, key, _value in annotator.writes] == [("n1", ANNOTATION), ("n2", ANNOTATION)]
    first = parse_summary(annotator.writes[0][3])
    assert first is not None and first.gpus == {0: 1.0, 1: 0.0} and first.window_seconds == 60

    backend.samples = [sample("n1", 0, 0.0), sample("n1", 1, 0.0), sample("n2", 0, 0.2)]
    for _ in range(5):  # every 5 s: n1's average falls, but the next write waits 30 s
        clock.now += 5
        agent.tick()
    assert len(annotator.writes) == 2
    clock.now += 5
    agent.tick()
    assert [node for _at, node, _key, _value in annotator.writes[2:]] == ["n1"]  # n2 unchanged
    latest = parse_summary(annotator.writes[2][3])
    assert latest is not None and latest.gpus == {0: pytest.approx(1 / 7, abs=0.01), 1: 0.0}
    assert latest.observed_seconds == 35  # seven samples 5 s apart stand for 35 s


def test_a_failed_annotation_is_retried_next_round() -> None:
    agent, backend, annotator, _collector = rig()
    backend.samples = [sample("n1", 0, 0.4)]
    annotator.error = RuntimeError("403 Forbidden")
    agent.tick()
    assert annotator.writes == []
    annotator.error = None
    annotator.clock.now += 5
    agent.tick()
    assert len(annotator.writes) == 1


def test_each_nodes_gpu_uuids_are_published_once_and_again_when_they_change() -> None:
    agent, backend, annotator, _collector = rig()
    backend.samples = [sample("n1", 0, 0.1), sample("n1", 1, 0.1), sample("n2", 0, 0.1)]
    agent.tick()
    assert annotator.uuid_writes() == [("n1", {0: "GPU-n1-0", 1: "GPU-n1-1"}), ("n2", {0: "GPU-n2-0"})]
    for _ in range(3):  # the same GPUs: nothing more is written
        annotator.clock.now += 5
        agent.tick()
    assert len(annotator.uuid_writes()) == 2
    # n1 loses a GPU (a reboot with one GPU fewer): n1 is written again, n2 is not.
    backend.samples = [sample("n1", 0, 0.1), sample("n2", 0, 0.1)]
    annotator.clock.now += 5
    agent.tick()
    assert annotator.uuid_writes()[2:] == [("n1", {0: "GPU-n1-0"})]


def test_a_failed_uuid_write_is_retried_next_round() -> None:
    agent, backend, annotator, _collector = rig()
    backend.samples = [sample("n1", 0, 0.4)]
    annotator.error = RuntimeError("403 Forbidden")
    agent.tick()
    annotator.error = None
    annotator.clock.now += 5
    agent.tick()
    assert annotator.uuid_writes() == [("n1", {0: "GPU-n1-0"})]


def test_without_an_annotator_only_metrics() -> None:
    backend = FakeBackend()
    backend.samples = [sample("n1", 0, 0.4)]
    settings = AgentSettings(node="n1", backend="nvml", publish_summary=False)
    agent = Agent(backend, GpuCollector("nvml"), None, settings, clock=Clock())
    agent.tick()
    assert "n1" in agent.windows


def test_flags_override_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUPOOL_AGENT_PORT", "9500")
    monkeypatch.setenv("GPUPOOL_AGENT_INTERVAL_SECONDS", "7")
    settings, kubeconfig = parse_settings(
        ["--backend", "simulated", "--all-kwok-nodes", "--port", "9600", "--kubeconfig", "/k"]
    )
    assert (settings.port, settings.interval_seconds, settings.all_kwok_nodes, kubeconfig) == (9600, 7.0, True, "/k")
    assert settings.publish_summary and settings.window_seconds == 300


@pytest.mark.parametrize(
    ("env", "argv", "named"),
    [
        ({"GPUPOOL_AGENT_PORT": "http"}, ["--node", "n1"], "GPUPOOL_AGENT_PORT"),
        ({"GPUPOOL_AGENT_INTERVAL_SECONDS": "0"}, ["--node", "n1"], "GPUPOOL_AGENT_INTERVAL_SECONDS"),
        ({}, ["--node", "n1", "--port", "70000"], "GPUPOOL_AGENT_PORT"),
        ({"GPUPOOL_AGENT_BACKEND": "dcgm"}, ["--node", "n1"], "GPUPOOL_AGENT_BACKEND"),
        ({}, [], "GPUPOOL_AGENT_NODE"),
        ({}, ["--all-kwok-nodes"], "GPUPOOL_AGENT_BACKEND=simulated"),
        ({}, ["--backend", "simulated", "--all-kwok-nodes", "--node", "n1"], "not both"),
    ],
)
def test_bad_settings_stop_the_agent_naming_the_variable(
    env: dict[str, str],
    argv: list[str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(argv) == 2
    assert named in capsys.readouterr().err


def test_on_this_machine_without_a_driver_the_nvml_backend_says_why_instead_of_failing() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        backend, api, nvml = _backend(AgentSettings(node="n1", publish_summary=False), None)
        assert api is None and nvml is backend and backend.name == "nvml"
        assert nvml is not None and nvml.problem is not None and nvml.problem.startswith(NO_DRIVER)
        assert backend.sample(T0) == []
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")


def test_without_nvml_the_agent_runs_on_and_serves_the_gauge(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_driver(node: str) -> None:
        raise NvmlUnavailable(f"{NO_DRIVER} (nvmlInit failed: NVML Shared Library Not Found)")

    ran: list[Agent] = []

    def one_round(self: Agent, stop: object) -> None:
        self.tick()
        ran.append(self)

    monkeypatch.setattr("gpupool.agent.nvml.NvmlBackend", no_driver)
    monkeypatch.setattr(Agent, "run", one_round)
    monkeypatch.setattr(signal, "signal", lambda *_args: None)  # keep pytest's handlers
    argv = ["--node", "n1", "--no-summary", "--host", "127.0.0.1", "--port", "0", "--pod-resources-socket", ""]
    assert main(argv) == 0
    (agent,) = ran
    metrics = scrape(agent.collector)
    assert metrics[("gpupool_agent_nvml_available", ())] == 0
    assert metrics[("gpupool_agent_info", (("backend", "nvml"),))] == 1
    assert ("gpupool_agent_last_sample_timestamp_seconds", ()) not in metrics
    assert sum("runtimeClassName nvidia" in r.getMessage() for r in caplog.records) == 1


class FakeNvmlState:
    """What `NvmlWhenAvailable` tells the agent: `problem` None (open) or the reason."""

    def __init__(self, problem: str | None) -> None:
        self.problem = problem


def nvml_rig(problem: str | None) -> tuple[Agent, FakeBackend, FakeAnnotator, GpuCollector, FakeNvmlState]:
    backend, annotator, state = FakeBackend(), FakeAnnotator(), FakeNvmlState(problem)
    backend.name = "nvml"
    collector = GpuCollector("nvml")
    settings = AgentSettings(node="n1", window_seconds=60)
    agent = Agent(
        backend,
        collector,
        annotator,
        settings,
        clock=annotator.clock,
        pod_devices=FakeKubelet(),
        nvml=state,
        conditions=annotator,
    )  # type: ignore[arg-type]
    return agent, backend, annotator, collector, state


def test_without_nvml_the_node_condition_says_what_to_check_and_pod_devices_are_still_published() -> None:
    agent, backend, annotator, collector, state = nvml_rig("no NVIDIA driver on this node (nvmlInit failed)")
    assert isinstance(agent.pod_devices, FakeKubelet)
    agent.pod_devices.report = {"a/p": ["GPU-1"]}
    for _ in range(3):
        annotator.clock.now += 5
        agent.tick()
    ((node, condition),) = annotator.conditions  # written once, not every round
    assert node == "n1"
    assert {k: condition[k] for k in ("type", "status", "reason")} == {
        "type": "GPUPoolAgentNVML",
        "status": "False",
        "reason": "NVMLUnavailable",
    }
    assert "nvmlInit failed" in condition["message"]
    assert "runtimeClassName nvidia" in condition["message"] and "NVIDIA container toolkit" in condition["message"]
    assert condition["lastTransitionTime"] == condition["lastHeartbeatTime"] == "2025-06-15T15:06:45Z"
    assert scrape(collector)[("gpupool_agent_nvml_available", ())] == 0
    assert pod_device_writes(annotator) == [("n1", {"a/p": ("GPU-1",)})]
    assert annotator.uuid_writes() == [] and annotator.writes == []

    state.problem = None  # NVML opened on a later try
    backend.samples = [sample("n1", 0, 0.5)]
    for _ in range(2):
        annotator.clock.now += 5
        agent.tick()
    assert [(c["status"], c["reason"]) for _node, c in annotator.conditions] == [
        ("False", "NVMLUnavailable"),
        ("True", "NVMLAvailable"),
    ]
    metrics = scrape(collector)
    assert metrics[("gpupool_agent_nvml_available", ())] == 1
    assert metrics[("gpupool_gpu_utilization_ratio", labels("n1", 0))] == 0.5
    assert annotator.uuid_writes() == [("n1", {0: "GPU-n1-0"})]


def test_a_failed_condition_write_is_logged_once_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    agent, _backend, annotator, _collector, _state = nvml_rig(None)
    annotator.condition_error = RuntimeError("403 Forbidden: nodes/status")
    for _ in range(3):
        annotator.clock.now += 5
        agent.tick()
    assert annotator.conditions == []
    assert sum("could not set condition GPUPoolAgentNVML" in r.getMessage() for r in caplog.records) == 1
    annotator.condition_error = None
    annotator.clock.now += 5
    agent.tick()
    assert [(c["status"], c["reason"]) for _node, c in annotator.conditions] == [("True", "NVMLAvailable")]


def test_a_failed_gpu_read_still_publishes_the_pod_devices() -> None:
    agent, backend, annotator, collector, _state = nvml_rig(None)
    assert isinstance(agent.pod_devices, FakeKubelet)
    agent.pod_devices.report = {"a/p": ["GPU-1"]}
    backend.error = RuntimeError("NVML: GPU is lost")
    agent.tick()
    assert scrape(collector)[("gpupool_agent_sample_errors_total", ())] == 1
    assert pod_device_writes(annotator) == [("n1", {"a/p": ("GPU-1",)})]


def test_the_simulated_backend_has_no_nvml_gauge_and_sets_no_condition() -> None:
    agent, backend, annotator, collector = rig()
    backend.samples = [sample("n1", 0, 0.1)]
    agent.tick()
    assert not any(name == "gpupool_agent_nvml_available" for name, _labels in scrape(collector))
    assert annotator.conditions == []


class FakeKubelet:
    """The PodResources answers a test scripts: a report, or `PodResourcesUnavailable`."""

    def __init__(self) -> None:
        self.report: dict[str, list[str]] | None = {}
        self.calls = 0

    def __call__(self) -> dict[str, list[str]]:
        self.calls += 1
        if self.report is None:
            raise PodResourcesUnavailable("no PodResources socket at /x: is the kubelet running here?")
        return self.report


def pod_device_writes(annotator: FakeAnnotator) -> list[tuple[str, dict[str, tuple[str, ...]] | None]]:
    return [(node, parse_pod_devices(value)) for _at, node, key, value in annotator.all_writes if key == POD_DEVICES]


def test_the_kubelets_pod_devices_are_published_when_they_change_and_kept_while_it_is_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kubelet = FakeKubelet()
    backend = FakeBackend()
    annotator = FakeAnnotator()
    settings = AgentSettings(backend="simulated", node="n1", window_seconds=60)
    agent = Agent(backend, GpuCollector("fake"), annotator, settings, clock=annotator.clock, pod_devices=kubelet)  # type: ignore[arg-type]
    backend.samples = [sample("n1", 0, 0.1)]
    steps: list[dict[str, list[str]] | None] = [
        {"a/p": ["GPU-2", "GPU-1"]},
        {"a/p": ["GPU-1", "GPU-2"]},  # the same report: no write
        None,  # the kubelet restarts: nothing written, logged once
        None,
        {"a/p": ["GPU-1", "GPU-2"], "b/q": ["GPU-3"]},
    ]
    for report in steps:
        kubelet.report = report
        annotator.clock.now += 5
        agent.tick()
    assert pod_device_writes(annotator) == [
        ("n1", {"a/p": ("GPU-1", "GPU-2")}),
        ("n1", {"a/p": ("GPU-1", "GPU-2"), "b/q": ("GPU-3",)}),
    ]
    assert sum("cannot ask the kubelet" in r.message for r in caplog.records) == 1
    assert kubelet.calls == len(steps)


def test_pod_devices_are_not_read_for_every_kwok_node_at_once() -> None:
    kubelet = FakeKubelet()
    agent, backend, annotator, _collector = rig()
    agent.pod_devices = kubelet
    backend.samples = [sample("n1", 0, 0.1)]
    agent.tick()
    assert kubelet.calls == 0 and pod_device_writes(annotator) == []
