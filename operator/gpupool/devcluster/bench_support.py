"""What more than one benchmark on a private control plane uses: the bench's cluster objects,
the phase watch, the timed creates, percentiles and a process tree's CPU and memory.

Who uses this: `gpupool bench e2e` (`e2e_bench`, whose `Bench` adds its phases to
`BenchCluster`), `gpupool bench footprint` (`footprint_bench`) and `gpupool bench load`
(`load_bench`), each on a cluster `private_cluster` (or, for e2e, its own `main`) starts;
`gpupool chaos` (`chaos`) reads its nodes' readiness with `node_ready`. Every bench sets up
the same world: `--nodes` kwok nodes of `MODEL` in the pool `POOL`, one GPUNodePool over
them, one GPUQueue (`QUEUE`) whose quota holds every GPU, and its GPUJobs in `NAMESPACE`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gpupool.cluster.kube.reflector import stop_watch_thread, watch_events
from gpupool.cluster.kube.writer import drain
from gpupool.cluster.nodes.kwok_nodes import LABEL_POOL, GpuNodeSpec
from gpupool.cluster.nodes.kwok_provider import create_gpu_node
from gpupool.devcluster.build import hack_dir
from gpupool.devcluster.cluster import ClusterError, DevCluster
from gpupool.devcluster.tools import install_crds

GROUP = "gpupool.io"
VERSION = "v1alpha1"
NAMESPACE = "gpupool-e2e"
"""The namespace of every bench's GPUJobs (and of the e2e bench's bound pods)."""
MODEL = "A100"
POOL = "e2e-a100"
QUEUE = "e2e"
PROGRESS_SECONDS = 60.0
"""How often `wait_reporting` says how far a phase got."""


# ---------------------------------------------------------------- pure helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation between ranks), or None without values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def cpu_seconds_of(stat: str, clock_ticks: int) -> float:
    """User + system CPU seconds of a process and its waited-for children, from /proc/<pid>/stat."""
    # After "(comm)": state is field 3 of proc(5), utime..cstime are fields 14-17.
    fields = stat.rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / clock_ticks


def peak_rss_mib_of(status: str) -> float:
    """VmHWM (peak resident set) in MiB, from /proc/<pid>/status; 0 when absent."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def node_ready(node: Mapping[str, Any]) -> bool:
    """Ready and without the node.kubernetes.io/* taints a node carries until it is."""
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    taints = (node.get("spec") or {}).get("taints") or []
    return ready and not any(str(t.get("key", "")).startswith("node.kubernetes.io/") for t in taints)


# ---------------------------------------------------------------- a process tree's usage


@dataclass(frozen=True)
class ProcUsage:
    """CPU seconds and peak RSS of a process tree at one moment."""

    cpu_s: float
    peak_rss_mib: float


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(p) for p in children.read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *_descendants(kid)]
    return found


def process_usage(pid: int) -> ProcUsage:
    """User + system CPU seconds and VmHWM of `pid` and its live descendants, summed."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = rss = 0.0
    for each in [pid, *_descendants(pid)]:
        try:
            cpu += cpu_seconds_of(Path(f"/proc/{each}/stat").read_text(), ticks)
            rss += peak_rss_mib_of(Path(f"/proc/{each}/status").read_text())
        except OSError:
            continue
    return ProcUsage(cpu, rss)


# ---------------------------------------------------------------- watching phases


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class PhaseWatch:
    """A watch on one namespaced list: each object's phase now, and when it first reached some phases.

    `marks` names sets of phases, e.g. {"admitted": {"Admitted", "Running"}}; `first[mark]`
    maps an object's name to the monotonic time this client first saw it in one of them.
    `list_call` is a namespaced list method of the kubernetes client, bound to its
    namespace (and group/version/plural for custom objects). Events are read as raw JSON
    lines, so the client's own deserialisation does not slow the measurement down.
    """

    def __init__(self, list_call: Callable[..., Any], marks: Mapping[str, Collection[str]]) -> None:
        self._list = list_call
        self._marks = {mark: frozenset(phases) for mark, phases in marks.items()}
        self.first: dict[str, dict[str, float]] = {mark: {} for mark in marks}
        self.phases: dict[str, str | None] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._resource_version = ""
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name="phase-watch", daemon=True)

    def start(self) -> None:
        self._relist()
        self._thread.start()

    def stop(self) -> None:
        stop_watch_thread(self._stop, self._response, self._thread)

    def wait(self, predicate: Callable[[PhaseWatch], bool], timeout: float) -> bool:
        """Block until `predicate(self)` holds or `timeout` seconds pass; whether it holds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout=max(0.0, timeout))

    def count(self, mark: str) -> int:
        with self._changed:
            return len(self.first[mark])

    def reached(self, mark: str) -> set[str]:
        """The names of the objects seen in one of `mark`'s phases so far."""
        with self._changed:
            return set(self.first[mark])

    def phase_counts(self) -> dict[str, int]:
        with self._changed:
            return dict(Counter(phase or "none" for phase in self.phases.values()))

    def _see(self, obj: Mapping[str, Any], now: float, deleted: bool = False) -> None:
        name = obj["metadata"]["name"]
        if deleted:
            self.phases.pop(name, None)
            return
        phase = (obj.get("status") or {}).get("phase")
        self.phases[name] = phase
        for mark, phases in self._marks.items():
            if phase in phases:
                self.first[mark].setdefault(name, now)

    def _relist(self) -> None:
        doc = json.loads(self._list(_preload_content=False).data)
        now = time.monotonic()
        with self._changed:
            self.phases = {}
            for item in doc.get("items") or []:
                self._see(item, now)
            self._resource_version = doc["metadata"]["resourceVersion"]
            self._changed.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._stream()
            except Exception:
                if self._stop.is_set():
                    return
                time.sleep(0.2)
                try:
                    self._relist()
                except Exception:
                    time.sleep(1.0)

    def _stream(self) -> None:
        for event in watch_events(self._list, self._resource_version, self._hold):
            if self._stop.is_set():
                return
            self._event(event)

    def _hold(self, response: Any) -> None:
        self._response = response

    def _event(self, event: Mapping[str, Any]) -> None:
        kind, obj = event["type"], event["object"]
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone(obj.get("message", ""))
            raise RuntimeError(f"watch error: {obj.get('message')}")
        if kind != "BOOKMARK":
            now = time.monotonic()
            with self._changed:
                self._see(obj, now, deleted=kind == "DELETED")
                self._changed.notify_all()
        self._resource_version = obj["metadata"]["resourceVersion"]


# ---------------------------------------------------------------- the bench's cluster objects


def _api_client(kubeconfig: Path, pool_size: int) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


def create_all(pool: ThreadPoolExecutor, create: Callable[[int], object], count: int) -> list[float]:
    """create(i) for every i on the pool; the monotonic time each create returned, by i."""

    def one(index: int) -> float:
        create(index)
        return time.monotonic()

    return list(pool.map(one, range(count)))


def wait_reporting(
    watch: PhaseWatch, mark: str, count: int, start: float, timeout: float, what: str, say: Callable[[str], None]
) -> bool:
    """Wait until `count` objects reached `mark` (`timeout` seconds from `start`, a monotonic
    time), saying through `say` how many did every minute; whether they all did."""
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        if watch.wait(lambda w: len(w.first[mark]) >= count, min(left, PROGRESS_SECONDS)):
            return True
        if time.monotonic() >= deadline:
            return False
        say(f"{watch.count(mark)}/{count} {what} after {time.monotonic() - start:.0f}s")


class BenchCluster:
    """The bench's world on a started DevCluster: clients, `setup`, and typed creates.

    `pool` is the bench's thread pool (the nodes are created on it); `connections` sizes the
    client's connection pool (the bench's threads and a few spare). `core` and `custom` are
    the kubernetes client's CoreV1Api and CustomObjectsApi, called with
    `_preload_content=False` (bodies go in as dicts, answers come back raw).
    """

    def __init__(
        self, cluster: DevCluster, pool: ThreadPoolExecutor, nodes: int, gpus_per_node: int, connections: int
    ) -> None:
        from kubernetes import client

        self.cluster = cluster
        self.pool = pool
        self.gpus_per_node = gpus_per_node
        api_client = _api_client(cluster.kubeconfig, connections)
        # Any: bodies go in as dicts and answers come back raw (`_preload_content=False`).
        self.core: Any = client.CoreV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.node_names = [f"e2e-gpu-{i}" for i in range(nodes)]

    def create_custom(self, plural: str, body: dict[str, Any], namespace: str | None = None) -> None:
        """Create one gpupool object (cluster-scoped without `namespace`), not reading the answer."""
        if namespace is None:
            response = self.custom.create_cluster_custom_object(GROUP, VERSION, plural, body, _preload_content=False)
        else:
            response = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body, _preload_content=False
            )
        drain(response)

    @staticmethod
    def custom_object(kind: str, name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """The body of a gpupool object of `kind` with `spec`."""
        metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata, "spec": spec}

    def list_gpujobs(self, **kwargs: Any) -> Any:
        """The bench namespace's GPUJobs: the list call a `PhaseWatch` over them is given."""
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "gpujobs", **kwargs)

    def setup(self, ready_timeout: float = 120.0) -> None:
        """CRDs, the kwok nodes (waited for until Ready, up to `ready_timeout`), the pool and the queue."""
        crds = sorted((hack_dir().parent / "crds").glob("*.yaml"))
        if not crds:
            raise ClusterError("no CRDs in crds/; run `make crds`")
        install_crds(self.cluster.kubeconfig, crds)
        gpus = self.gpus_per_node
        specs = [GpuNodeSpec(name=name, gpus=gpus, gpu_model=MODEL, pool=POOL) for name in self.node_names]
        list(self.pool.map(lambda spec: create_gpu_node(self.core, spec), specs))
        self._wait_nodes_ready(ready_timeout)
        self.core.create_namespace({"metadata": {"name": NAMESPACE}}, _preload_content=False)
        self._wait_default_service_account()
        pool_spec = {
            "class": "OnPrem",
            "gpuModel": MODEL,
            "gpusPerNode": gpus,
            "nodeSelector": {LABEL_POOL: POOL},
            "pricePerNodeHour": {"amortised": 12.0},
            "provider": "Static",
        }
        self.create_custom("gpunodepools", self.custom_object("GPUNodePool", POOL, pool_spec))
        quota = {"gpuModel": MODEL, "nominal": len(self.node_names) * gpus}
        self.create_custom("gpuqueues", self.custom_object("GPUQueue", QUEUE, {"quotas": [quota]}))

    def _wait_nodes_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.core.list_node(label_selector=f"{LABEL_POOL}={POOL}", _preload_content=False)
            nodes = json.loads(response.data)["items"]
            if len(nodes) == len(self.node_names) and all(node_ready(n) for n in nodes):
                return
            time.sleep(0.5)
        raise ClusterError(f"the {len(self.node_names)} kwok nodes were not Ready in {timeout:.0f}s")

    def _wait_default_service_account(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if json.loads(self.core.list_namespaced_service_account(NAMESPACE, _preload_content=False).data)["items"]:
                return
            time.sleep(0.2)
        raise ClusterError(f"namespace {NAMESPACE} got no default service account in {timeout:.0f}s")
