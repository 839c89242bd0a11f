"""`gpupool agent run`: read GPUs, serve /metrics, publish a utilisation summary per node.

Who calls this: `gpupool.cli` (one process per GPU node, later a DaemonSet; or one
simulated process for every kwok node of a dev cluster). Start-up: settings (a bad one
stops the agent here, naming the variable), the backend, the Kubernetes client when
needed, then the /metrics server. Each round (`Agent.tick`) reads every GPU once, replaces
the exported samples, adds the utilisation to each node's rolling window and, when
`WritePolicy` allows, writes the node's `gpupool.io/gpu-utilization` annotation. The node's
GPU index -> UUID map (`gpupool.io/gpu-uuids`, `gpupool.annotations.gpu_uuids`) is written at the
first round and again only when it changes; so is, for one named node, the kubelet's report
of which pod holds which GPU (`gpupool.io/pod-devices`, read from the PodResources socket).
A failed read or write is logged and tried again next round; SIGTERM or SIGINT stops the loop.

Without NVML (`--backend nvml` where the container has no driver library) the agent does not
exit, which would crash-loop a DaemonSet pod: `NvmlWhenAvailable` reports no GPUs and keeps
trying, /metrics shows `gpupool_agent_nvml_available 0`, the Node condition
`GPUPoolAgentNVML` is False (reason `NVMLUnavailable`, the message says what to check) and
the pod devices are still published. The condition is True once NVML opens; like the
annotations it is written when it changes.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from kubernetes.config import ConfigException
from prometheus_client import start_http_server
from pydantic import ValidationError

from gpupool.agent import podresources
from gpupool.agent.backend import GpuBackend, GpuSample
from gpupool.agent.exporter import GpuCollector, registry_with
from gpupool.agent.kube import node_condition
from gpupool.agent.nvml import CONDITION, NVML_HINT, REASON_AVAILABLE, REASON_UNAVAILABLE
from gpupool.agent.podresources import PodResourcesUnavailable
from gpupool.agent.rolling import UtilizationWindow, WritePolicy
from gpupool.agent.settings import ENV_PREFIX, AgentSettings
from gpupool.annotations.gpu_uuids import ANNOTATION as UUIDS_ANNOTATION
from gpupool.annotations.gpu_uuids import format_uuids
from gpupool.annotations.pod_devices import ANNOTATION as POD_DEVICES_ANNOTATION
from gpupool.annotations.pod_devices import format_pod_devices
from gpupool.annotations.summary import ANNOTATION, format_summary
from gpupool.settings import settings_problems

log = logging.getLogger("gpupool.agent")


class Annotator(Protocol):
    """Sets an annotation on a Node (`gpupool.agent.kube.NodeAnnotator`, or a fake)."""

    def annotate(self, node: str, key: str, value: str) -> None: ...


class ConditionSetter(Protocol):
    """Sets one condition of a Node's status (`gpupool.agent.kube.NodeAnnotator`, or a fake)."""

    def set_condition(self, node: str, condition: Mapping[str, str]) -> None: ...


class NvmlStatus(Protocol):
    """Whether NVML is open (`gpupool.agent.nvml.NvmlWhenAvailable`): None, or why not."""

    @property
    def problem(self) -> str | None: ...


PodDeviceSource = Callable[[], Mapping[str, Sequence[str]]]
"""Which pod holds which GPU on this node (`gpupool.agent.podresources.pod_devices`, or a fake);
raises `PodResourcesUnavailable` when the kubelet cannot be asked."""


class Agent:
    """One sampling round after another over `backend`; the clock is injectable."""

    def __init__(
        self,
        backend: GpuBackend,
        collector: GpuCollector,
        annotator: Annotator | None,
        settings: AgentSettings,
        clock: Callable[[], float] = time.time,
        pod_devices: PodDeviceSource | None = None,
        nvml: NvmlStatus | None = None,
        conditions: ConditionSetter | None = None,
    ) -> None:
        self.backend = backend
        self.collector = collector
        self.annotator = annotator
        self.settings = settings
        self.clock = clock
        self.windows: dict[str, UtilizationWindow] = {}
        self.policies: dict[str, WritePolicy] = {}
        # node -> the `gpupool.io/gpu-uuids` value last written there by this process.
        self.uuids_written: dict[str, str] = {}
        self.pod_devices = pod_devices
        # The `gpupool.io/pod-devices` value last written; whether the kubelet's absence was logged.
        self.pod_devices_written: str | None = None
        self.pod_devices_warned = False
        # NVML's state for the gauge and the Node condition (None: not the NVML backend).
        self.nvml = nvml
        self.conditions = conditions
        self.condition_written: tuple[str, str] | None = None  # (reason, message) last set
        self.condition_warned = False

    def tick(self) -> None:
        """Read every GPU once, export, and publish what is due. A failed read skips the GPU
        part of the round; NVML's state and the kubelet's pod devices are published anyway."""
        now = self.clock()
        self._gpu_round(now)
        if self.nvml is not None:
            self.collector.nvml_available(self.nvml.problem is None)
            self._publish_nvml_condition(now)
        if self.annotator is not None:
            self._publish_pod_devices()

    def _gpu_round(self, now: float) -> None:
        try:
            samples = self.backend.sample(now)
        except Exception:
            log.exception("reading the GPUs failed; will retry")
            self.collector.failed()
            return
        if self.nvml is not None and self.nvml.problem is not None:
            return  # no GPUs were read: the last-sample time stays as it was
        self.collector.update(samples, now)
        by_node: dict[str, dict[int, float]] = {}
        for sample in samples:
            readings = by_node.setdefault(sample.device.node, {})
            if sample.utilization_ratio is not None:
                readings[sample.device.index] = sample.utilization_ratio
        for gone in set(self.windows) - set(by_node):
            del self.windows[gone]
            self.policies.pop(gone, None)
            self.uuids_written.pop(gone, None)
        for node, readings in by_node.items():
            window = self.windows.setdefault(node, UtilizationWindow(self.settings.window_seconds))
            window.add(now, readings)
        if self.annotator is not None:
            self._publish_uuids(samples)
            self._publish(now)

    def _publish_nvml_condition(self, now: float) -> None:
        """`GPUPoolAgentNVML` on the named node, set when its reason or message changed (and at
        the first round). A failed write is logged once and retried next round."""
        assert self.nvml is not None
        if self.conditions is None or not self.settings.node:
            return
        problem = self.nvml.problem
        if problem is None:
            reason, message = REASON_AVAILABLE, "the agent reads this node's GPUs through NVML"
        else:
            reason, message = REASON_UNAVAILABLE, f"NVML cannot be opened ({problem}); {NVML_HINT}"
        if self.condition_written == (reason, message):
            return
        condition = node_condition(CONDITION, problem is None, reason, message, now)
        try:
            self.conditions.set_condition(self.settings.node, condition)
        except Exception as error:
            if not self.condition_warned:
                log.warning(
                    "could not set condition %s on node %s: %s; will retry", CONDITION, self.settings.node, error
                )
                self.condition_warned = True
            return
        self.condition_written, self.condition_warned = (reason, message), False
        log.info("node %s: condition %s=%s (%s)", self.settings.node, CONDITION, condition["status"], reason)

    def _publish_pod_devices(self) -> None:
        """The kubelet's pod -> GPUs report on the named node, written when it changed. Without
        the kubelet (no socket, no answer) it is logged once and the annotation left as it was."""
        assert self.annotator is not None
        if self.pod_devices is None or not self.settings.node:
            return
        try:
            held = self.pod_devices()
        except PodResourcesUnavailable as error:
            if not self.pod_devices_warned:
                log.warning("cannot ask the kubelet which pod holds which GPU: %s; will keep trying", error)
                self.pod_devices_warned = True
            return
        self.pod_devices_warned = False
        value = format_pod_devices(held)
        if value == self.pod_devices_written:
            return
        try:
            self.annotator.annotate(self.settings.node, POD_DEVICES_ANNOTATION, value)
        except Exception as error:
            log.warning("could not publish the pod devices of node %s: %s; will retry", self.settings.node, error)
            return
        self.pod_devices_written = value

    def _publish_uuids(self, samples: Sequence[GpuSample]) -> None:
        """Each node's index -> UUID map, written when it differs from what this process
        last wrote there (so once at start, then only when the GPUs change)."""
        assert self.annotator is not None
        by_node: dict[str, dict[int, str]] = {}
        for sample in samples:
            by_node.setdefault(sample.device.node, {})[sample.device.index] = sample.device.uuid
        for node, uuids in sorted(by_node.items()):
            value = format_uuids(uuids)
            if self.uuids_written.get(node) == value:
                continue
            try:
                self.annotator.annotate(node, UUIDS_ANNOTATION, value)
            except Exception as error:
                log.warning("could not publish the GPU UUIDs of node %s: %s; will retry", node, error)
                continue
            self.uuids_written[node] = value

    def _publish(self, now: float) -> None:
        assert self.annotator is not None
        for node, window in self.windows.items():
            summary = window.summary(now)
            policy = self.policies.setdefault(
                node,
                WritePolicy(self.settings.summary_min_interval_seconds, self.settings.summary_refresh_seconds),
            )
            if summary is None or not policy.due(summary, now):
                continue
            try:
                self.annotator.annotate(node, ANNOTATION, format_summary(summary))
            except Exception as error:
                log.warning("could not annotate node %s: %s; will retry", node, error)
                continue
            policy.written(summary, now)

    def run(self, stop: threading.Event) -> None:
        """Tick every `interval_seconds` until `stop` is set."""
        while not stop.is_set():
            started = time.monotonic()
            self.tick()
            stop.wait(max(0.0, self.settings.interval_seconds - (time.monotonic() - started)))


def _backend(settings: AgentSettings, kubeconfig: str | None) -> tuple[GpuBackend, Any, NvmlStatus | None]:
    """The backend, an API client when anything needs Kubernetes, and NVML's state (the NVML
    backend only). NVML is tried first: on a node without a driver its warning comes first."""
    backend: GpuBackend | None = None
    nvml: NvmlStatus | None = None
    if settings.backend == "nvml":
        from gpupool.agent.nvml import NvmlBackend, NvmlWhenAvailable

        backend = nvml = NvmlWhenAvailable(partial(NvmlBackend, settings.node))
    api = None
    if settings.backend == "simulated" or settings.publish_summary:
        from gpupool.cluster.kube.kubeclient import api_client

        api = api_client(kubeconfig)
    if backend is None:
        from gpupool.agent.kube import KubeSource
        from gpupool.agent.simulated import SimulatedBackend

        backend = SimulatedBackend(KubeSource(api, None if settings.all_kwok_nodes else settings.node))
    return backend, api, nvml


def parse_settings(argv: list[str]) -> tuple[AgentSettings, str | None]:
    """Flags over `GPUPOOL_AGENT_*` variables; raises ValidationError on a bad value."""
    parser = argparse.ArgumentParser(prog="gpupool agent run", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["nvml", "simulated"], help="GPU source (default nvml)")
    parser.add_argument("--node", help="the node reported on (default $GPUPOOL_AGENT_NODE)")
    parser.add_argument(
        "--all-kwok-nodes", action="store_true", default=None, help="simulated backend: report every kwok node"
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig (default: in-cluster, else $KUBECONFIG)")
    parser.add_argument("--host", help="address /metrics binds (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port of /metrics (default 9401; 0: any free port)")
    parser.add_argument("--interval", dest="interval_seconds", type=float, help="seconds between readings (5)")
    parser.add_argument("--window", dest="window_seconds", type=int, help="averaging window in seconds (300)")
    parser.add_argument("--pod-resources-socket", help="the kubelet's PodResources socket ('': not read)")
    parser.add_argument(
        "--no-summary", dest="publish_summary", action="store_false", default=None, help="do not annotate nodes"
    )
    args = vars(parser.parse_args(argv))
    kubeconfig = args.pop("kubeconfig")
    overrides = {key: value for key, value in args.items() if value is not None}
    return AgentSettings(**overrides), kubeconfig


def main(argv: list[str]) -> int:
    """Run the agent until SIGTERM/SIGINT; 2 on bad settings, 1 without Kubernetes credentials.
    Without NVML it runs on (see the module's docstring)."""
    try:
        settings, kubeconfig = parse_settings(argv)
    except ValidationError as error:
        problems = settings_problems(error, ENV_PREFIX)
        print(f"gpupool agent: invalid settings (variables or their flags):\n{problems}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.WARNING)

    try:
        backend, api, nvml = _backend(settings, kubeconfig)
    except ConfigException as error:
        hint = "pass --kubeconfig" + (", or --no-summary" if settings.backend == "nvml" else "")
        print(f"gpupool agent: no Kubernetes credentials ({error}); {hint}", file=sys.stderr)
        return 1
    annotator = None
    if settings.publish_summary:
        from gpupool.agent.kube import NodeAnnotator

        annotator = NodeAnnotator(api)

    collector = GpuCollector(backend.name)
    server, _thread = start_http_server(settings.port, addr=settings.host, registry=registry_with(collector))
    log.info("serving /metrics on %s:%d (backend %s)", settings.host, server.server_port, backend.name)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    pod_devices: PodDeviceSource | None = None
    if settings.pod_resources_socket and not settings.all_kwok_nodes:
        socket_path = Path(settings.pod_resources_socket)
        pod_devices = partial(podresources.pod_devices, socket_path)
    agent = Agent(backend, collector, annotator, settings, pod_devices=pod_devices, nvml=nvml, conditions=annotator)
    try:
        agent.run(stop)
    finally:
        server.shutdown()
        backend.close()
    return 0
