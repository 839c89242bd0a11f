"""`gpupool bench e2e`: gpupool end to end on the real API server, against the server's own limit.

Who calls this: `gpupool.cli` dispatches `gpupool bench e2e ARGS` to `main(ARGS)`; people
refresh the "End to end" section of docs/benchmarks.md with it. It starts a private
control plane (a DevCluster in a temporary folder, so a developer's `gpupool dev` cluster
is never touched), installs the CRDs from `crds/`, creates kwok GPU nodes, one GPUNodePool
over them and one GPUQueue whose quota admits every job, then times three phases:

A. the physical limit: N pods asking for one `nvidia.com/gpu` each, bound straight to the
   nodes (`spec.nodeName`, round-robin) and created by a pool of client threads; from the
   first create until kwok has made all N Running. Then they are deleted.
S. the scripted floor (`Bench.scripted_writes`): the writes gpupool makes for N jobs
   (GPUJob, Admitted status, events, bound pod, Running status) made by the same threads
   with no scheduler; from the first create until the last job is written Running. Then
   the jobs and pods are deleted, before the operator starts.
B. gpupool: the operator runs as a child process (production settings; `GPUPOOL_*`
   variables set around this command reach it); N one-GPU GPUJobs are created by the same
   pool of threads; from the first create until all N are in phase Running, and each
   job's admission latency: its create returned -> first seen Admitted or Running. The
   operator's CPU seconds and peak RSS are read from /proc before it is stopped.

Phases are seen from watches (on pods in A and S, on gpujobs in B), so a time is when this client
first saw the change, not a poll interval later.

    gpupool bench e2e [--jobs 1000] [--nodes 125] [--gpus-per-node 8] [--concurrency 16]
        [--timeout 1800] [--json FILE] [--keep-logs]

Progress goes to stderr, the figures to stdout. The cluster and the operator are stopped
at the end, also on an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from gpupool.cluster.kube.writer import drain
from gpupool.cluster.nodes.kwok_nodes import GPU_RESOURCE
from gpupool.cluster.writes.pods import DEFAULT_CONTAINER
from gpupool.devcluster.bench_support import (
    GROUP,
    MODEL,
    NAMESPACE,
    QUEUE,
    VERSION,
    BenchCluster,
    PhaseWatch,
    create_all,
    percentile,
    process_usage,
    wait_reporting,
)
from gpupool.devcluster.build import BuildError, ensure_built
from gpupool.devcluster.cluster import ClusterError, DevCluster
from gpupool.devcluster.operator_process import start_operator

# The spec of every benchmark GPUJob: one GPU of the bench's model, in the bench's queue.
JOB_SPEC = {"queue": QUEUE, "gpus": 1, "gpuModels": [MODEL], "template": {"spec": {"containers": [DEFAULT_CONTAINER]}}}


# ---------------------------------------------------------------- pure helpers


def round_robin(count: int, nodes: Sequence[str], per_node: int) -> list[str]:
    """The node of each of `count` one-GPU pods: node i % len(nodes), at most `per_node` on one."""
    if count > len(nodes) * per_node:
        raise ValueError(f"{count} one-GPU pods do not fit {len(nodes)} nodes of {per_node} GPUs")
    return [nodes[i % len(nodes)] for i in range(count)]


@dataclass
class E2eResult:
    """The figures of one run; `None` seconds mean the phase timed out."""

    jobs: int
    nodes: int
    gpus_per_node: int
    concurrency: int
    timeout_s: float
    bound_create_s: float = 0.0
    bound_running_s: float | None = None
    bound_running: int = 0
    gpupool_create_s: float = 0.0
    gpupool_running_s: float | None = None
    gpupool_running: int = 0
    gpupool_phases: dict[str, int] = field(default_factory=dict)
    admitted: int = 0
    admission_p50_s: float | None = None
    admission_p99_s: float | None = None
    operator_cpu_s: float = 0.0
    operator_cpu_jobs_s: float = 0.0
    operator_peak_rss_mib: float = 0.0
    bound_control_plane_cpu_s: float = 0.0
    gpupool_control_plane_cpu_s: float = 0.0
    scripted_running_s: float | None = None
    scripted_control_plane_cpu_s: float = 0.0

    @property
    def ratio(self) -> float | None:
        """gpupool's all-Running time over the bound pods' (None when either timed out)."""
        if self.bound_running_s is None or self.gpupool_running_s is None or self.bound_running_s <= 0:
            return None
        return self.gpupool_running_s / self.bound_running_s

    @property
    def ratio_to_scripted(self) -> float | None:
        """gpupool's all-Running time over the same writes made by a script with no scheduler."""
        if self.scripted_running_s is None or self.gpupool_running_s is None or self.scripted_running_s <= 0:
            return None
        return self.gpupool_running_s / self.scripted_running_s

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio, "ratio_to_scripted": self.ratio_to_scripted}


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def format_table(result: E2eResult) -> str:
    """A one-row Markdown table of the run's figures (timeouts show progress instead)."""
    bound = _seconds(result.bound_running_s)
    if result.bound_running_s is None:
        bound = f"> {result.timeout_s:.0f} ({result.bound_running}/{result.jobs} Running)"
    gpupool = _seconds(result.gpupool_running_s)
    ratio = "—" if result.ratio is None else f"{result.ratio:.1f}x"
    if result.gpupool_running_s is None:
        gpupool = f"> {result.timeout_s:.0f} ({result.gpupool_running}/{result.jobs} Running)"
        if result.bound_running_s:
            ratio = f"> {result.timeout_s / result.bound_running_s:.1f}x"
    header = (
        "N",
        "bound pods all Running (s)",
        "gpupool all Running (s)",
        "ratio",
        "admission p50 (s)",
        "admission p99 (s)",
        "operator CPU (s)",
        "operator peak RSS (MiB)",
        "GPUJobs created (s)",
        "control-plane CPU, pods / GPUJobs (s)",
        "same writes, scripted (s)",
        "ratio to scripted",
    )
    row = (
        str(result.jobs),
        bound,
        gpupool,
        ratio,
        _seconds(result.admission_p50_s),
        _seconds(result.admission_p99_s),
        f"{result.operator_cpu_s:.1f}",
        f"{result.operator_peak_rss_mib:.0f}",
        _seconds(result.gpupool_create_s),
        f"{result.bound_control_plane_cpu_s:.1f} / {result.gpupool_control_plane_cpu_s:.1f}",
        _seconds(result.scripted_running_s),
        "—" if result.ratio_to_scripted is None else f"{result.ratio_to_scripted:.2f}x",
    )
    return "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|", "| " + " | ".join(row) + " |"]
    )


# ---------------------------------------------------------------- the operator's usage


def control_plane_cpu_s(cluster: DevCluster) -> float:
    """CPU seconds used so far by the cluster's own processes (etcd, API server, kwok, ...)."""
    return sum(process_usage(record.pid).cpu_s for record, alive in cluster.running() if alive)


# ---------------------------------------------------------------- watching phases


# ---------------------------------------------------------------- the run


def bound_pod(name: str, node: str) -> dict[str, Any]:
    """A pod asking for one GPU, bound to `node` by `spec.nodeName` (no scheduler involved)."""
    gpu = {GPU_RESOURCE: "1"}
    container = {**DEFAULT_CONTAINER, "resources": {"requests": gpu, "limits": gpu}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"nodeName": node, "containers": [container], "restartPolicy": "Never"},
    }


def _say(message: str) -> None:
    print(f"gpupool bench e2e: {message}", file=sys.stderr, flush=True)


def _when(seconds: float | None, timeout: float) -> str:
    return f"after {seconds:.2f}s" if seconds is not None else f"when cut short at {timeout:.0f}s"


def _last_time(watch: PhaseWatch, mark: str, start: float) -> float:
    return max(watch.first[mark].values()) - start


class Bench(BenchCluster):
    """One run's cluster objects, clients and figures; `setup`, then `bound_pods`,
    `scripted_writes` and `gpupool`."""

    def __init__(self, cluster: DevCluster, args: argparse.Namespace, pool: ThreadPoolExecutor) -> None:
        super().__init__(cluster, pool, args.nodes, args.gpus_per_node, args.concurrency + 4)
        self.args = args
        self.result = E2eResult(
            jobs=args.jobs,
            nodes=args.nodes,
            gpus_per_node=args.gpus_per_node,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
        )

    def bound_pods(self) -> None:
        """Phase A: N one-GPU pods bound by nodeName, first create -> all Running; then delete them."""
        count, result = self.args.jobs, self.result
        placement = round_robin(count, self.node_names, self.args.gpus_per_node)

        def create(index: int) -> None:
            body = bound_pod(f"pod-{index:05d}", placement[index])
            drain(self.core.create_namespaced_pod(NAMESPACE, body, _preload_content=False))

        watch = PhaseWatch(lambda **kw: self.core.list_namespaced_pod(NAMESPACE, **kw), {"running": {"Running"}})
        watch.start()
        try:
            _say(f"phase A: creating {count} pods bound to {len(self.node_names)} nodes")
            control_plane = control_plane_cpu_s(self.cluster)
            start = time.monotonic()
            result.bound_create_s = max(create_all(self.pool, create, count)) - start
            done = self._wait_reporting(watch, "running", count, start, "pods Running")
            result.bound_control_plane_cpu_s = control_plane_cpu_s(self.cluster) - control_plane
            result.bound_running = watch.count("running")
            if done:
                result.bound_running_s = _last_time(watch, "running", start)
            _say(f"phase A: {result.bound_running}/{count} Running {_when(result.bound_running_s, self.args.timeout)}")
            self._delete_pods(watch, "A")
        finally:
            watch.stop()

    def _wait_reporting(self, watch: PhaseWatch, mark: str, count: int, start: float, what: str) -> bool:
        return wait_reporting(watch, mark, count, start, self.args.timeout, what, _say)

    def _delete_pods(self, watch: PhaseWatch, phase: str) -> None:
        """Delete every pod of the bench namespace and wait until `watch` sees none left."""
        drain(self.core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0, _preload_content=False))
        if not watch.wait(lambda w: not w.phases, self.args.timeout):
            raise ClusterError(f"the phase {phase} pods were not all gone after {self.args.timeout:.0f}s")

    def scripted_writes(self) -> None:
        """Phase S: gpupool's writes for N jobs made by a script, with no scheduler and no watch
        of its own: create the GPUJob, write it Admitted (one status write), post Queued and
        Admitted events, create its pod bound to a node; when the pod runs, write the job
        Running and post Started. The time from the first create until the last job is
        written Running is the floor for any operator that makes these writes; then the
        jobs and pods are deleted (before the operator starts, so it never sees them)."""
        count, result = self.args.jobs, self.result
        placement = round_robin(count, self.node_names, self.args.gpus_per_node)

        def status(name: str, phase: str) -> None:
            body = {"status": {"phase": phase, "message": f"{phase.lower()} by the scripted phase", "attempts": 1}}
            drain(
                self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, NAMESPACE, "gpujobs", name, body, _preload_content=False
                )
            )

        def event(name: str, reason: str) -> None:
            body = {
                "metadata": {"generateName": f"{name}.", "namespace": NAMESPACE},
                "involvedObject": {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "GPUJob",
                    "name": name,
                    "namespace": NAMESPACE,
                },
                "reason": reason,
                "message": f"{reason} (scripted)",
                "type": "Normal",
            }
            drain(self.core.create_namespaced_event(NAMESPACE, body, _preload_content=False))

        def admit(index: int) -> None:
            name = f"script-{index:05d}"
            self.create_custom("gpujobs", self.custom_object("GPUJob", name, JOB_SPEC, NAMESPACE), NAMESPACE)
            status(name, "Admitted")
            event(name, "Queued")
            event(name, "Admitted")
            pod = bound_pod(f"{name}-w0", placement[index])
            drain(self.core.create_namespaced_pod(NAMESPACE, pod, _preload_content=False))

        def start(pod_name: str) -> None:
            job = pod_name.removesuffix("-w0")
            status(job, "Running")
            event(job, "Started")

        watch = PhaseWatch(lambda **kw: self.core.list_namespaced_pod(NAMESPACE, **kw), {"running": {"Running"}})
        watch.start()
        try:
            _say(f"phase S: the same writes for {count} jobs, scripted")
            control_plane = control_plane_cpu_s(self.cluster)
            began = time.monotonic()
            admitting = [self.pool.submit(admit, index) for index in range(count)]
            started: set[str] = set()
            starting = []
            deadline = began + self.args.timeout
            while len(started) < count and time.monotonic() < deadline:
                failed = next((f for f in admitting if f.done() and f.exception()), None)
                if failed is not None:
                    raise ClusterError(f"phase S: a scripted write failed: {failed.exception()}")
                watch.wait(lambda w: len(w.first["running"]) > len(started), 0.5)
                ready = watch.reached("running") - started
                started.update(ready)
                starting += [self.pool.submit(start, name) for name in ready]
            for future in [*admitting, *starting]:
                future.result()
            if len(started) == count:
                result.scripted_running_s = time.monotonic() - began
            result.scripted_control_plane_cpu_s = control_plane_cpu_s(self.cluster) - control_plane
            _say(
                f"phase S: {len(started)}/{count} written Running {_when(result.scripted_running_s, self.args.timeout)}"
            )
            drain(
                self.custom.delete_collection_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, "gpujobs", _preload_content=False
                )
            )
            self._delete_pods(watch, "S")
        finally:
            watch.stop()

    def gpupool(self) -> None:
        """Phase B: the operator, N one-GPU GPUJobs, first create -> all Running, admission latency."""
        count, result = self.args.jobs, self.result
        _say("phase B: starting the operator")
        record = start_operator(self.cluster)
        baseline = process_usage(record.pid)

        def create(index: int) -> None:
            self.create_custom(
                "gpujobs", self.custom_object("GPUJob", f"job-{index:05d}", JOB_SPEC, NAMESPACE), NAMESPACE
            )

        marks = {"admitted": {"Admitted", "Running"}, "running": {"Running"}}
        watch = PhaseWatch(self.list_gpujobs, marks)
        watch.start()
        try:
            _say(f"phase B: creating {count} GPUJobs")
            control_plane = control_plane_cpu_s(self.cluster)
            start = time.monotonic()
            created = create_all(self.pool, create, count)
            result.gpupool_create_s = max(created) - start
            done = self._wait_reporting(watch, "running", count, start, "GPUJobs Running")
            result.gpupool_control_plane_cpu_s = control_plane_cpu_s(self.cluster) - control_plane
            usage = process_usage(record.pid)
            result.gpupool_running = watch.count("running")
            result.gpupool_phases = watch.phase_counts()
            if done:
                result.gpupool_running_s = _last_time(watch, "running", start)
            admitted = dict(watch.first["admitted"])
        finally:
            watch.stop()
        latencies = [
            max(0.0, admitted[name] - created[index])
            for index in range(count)
            if (name := f"job-{index:05d}") in admitted
        ]
        result.admitted = len(latencies)
        result.admission_p50_s = percentile(latencies, 50)
        result.admission_p99_s = percentile(latencies, 99)
        result.operator_cpu_s = usage.cpu_s
        result.operator_cpu_jobs_s = usage.cpu_s - baseline.cpu_s
        result.operator_peak_rss_mib = usage.peak_rss_mib
        _say(f"phase B: {result.gpupool_running}/{count} Running {_when(result.gpupool_running_s, self.args.timeout)}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpupool bench e2e",
        description="gpupool end to end on a private local control plane, against pods bound straight to nodes.",
    )
    p.add_argument("--jobs", type=int, default=1000, help="pods in phase A and one-GPU GPUJobs in phase B (N)")
    p.add_argument("--nodes", type=int, default=125, help="kwok GPU nodes")
    p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs (A100) per node")
    p.add_argument("--concurrency", type=int, default=16, help="client threads creating objects")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds each phase may take before it is cut short")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.add_argument("--keep-logs", action="store_true", help="keep the private cluster's folder (component logs)")
    return p


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """No Ctrl-C or SIGTERM while cleaning up, so the cluster is always stopped."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace, cluster: DevCluster) -> E2eResult:
    """Start `cluster`, run the three phases on it; the caller stops it."""
    _say(f"starting a private control plane in {cluster.state_dir}")
    cluster.up(progress=lambda _msg: None)
    pool = ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="create")
    try:
        bench = Bench(cluster, args, pool)
        _say(f"creating {args.nodes} nodes of {args.gpus_per_node} {MODEL}, a GPUNodePool and a GPUQueue")
        bench.setup()
        bench.bound_pods()
        bench.scripted_writes()
        bench.gpupool()
        return bench.result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str]) -> int:
    """Run the benchmark; 0 when phases A and B finished, 1 on a timeout or error, 2 on bad flags."""
    args = build_parser().parse_args(argv)
    if min(args.jobs, args.nodes, args.gpus_per_node, args.concurrency) < 1 or args.timeout <= 0:
        print(
            "gpupool bench e2e: --jobs, --nodes, --gpus-per-node, --concurrency and --timeout must be > 0",
            file=sys.stderr,
        )
        return 2
    if args.jobs > args.nodes * args.gpus_per_node:
        print(
            f"gpupool bench e2e: {args.jobs} one-GPU jobs do not fit {args.nodes}x{args.gpus_per_node} GPUs",
            file=sys.stderr,
        )
        return 2
    try:
        ensure_built(progress=_say)
    except BuildError as error:
        print(f"gpupool bench e2e: {error}", file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="gpupool-e2e-"))
    # No Prometheus: the bench sums the control plane's CPU, and Prometheus is no part of it.
    cluster = DevCluster(folder / "state", with_prometheus=False)
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    result: E2eResult | None = None
    try:
        result = run(args, cluster)
    except KeyboardInterrupt:
        _say("interrupted")
    except Exception as error:  # a ClusterError, or an ApiException from the client: say it, then clean up
        _say(f"failed: {type(error).__name__}: {error}")
    finally:
        with _signals_ignored():
            cluster.down(progress=lambda _msg: None)
            if args.keep_logs:
                _say(f"logs kept in {cluster.logs}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous_term)
    if result is None:
        return 1
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0 if result.gpupool_running_s is not None and result.bound_running_s is not None else 1
