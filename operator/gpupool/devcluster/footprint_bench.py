"""`gpupool bench footprint`: the operator's memory and cycle time with many GPUJobs and
nodes on the real API server, most of the jobs pending.

Who calls this: `gpupool.cli` dispatches `gpupool bench footprint ARGS` to `main(ARGS)`;
people refresh the "Footprint" section of docs/benchmarks.md with it. It runs on a private
control plane (`gpupool.devcluster.private_cluster`) with the benches' shared set-up
(`gpupool.devcluster.bench_support.BenchCluster`: kwok nodes of 8 A100, one pool, one
queue whose quota holds every GPU), starts the operator with its
production settings, creates `--jobs` GPUJobs of `--gpus-per-job` GPUs (so with the defaults
2,000 run and 8,000 wait), waits until every job that fits is Running, then watches the
operator for `--settle` seconds:

- resident memory: VmRSS sampled every second (p50, p95, last) and VmHWM, the peak since
  start, read from /proc for the operator's process tree;
- cycle time: the operator's own `gpupool_scheduling_cycle_duration_seconds` histogram,
  scraped from its /metrics before and after the window (mean over the window, and the
  upper bound of the bucket holding the 95th percentile); the same for the admission burst.

    gpupool bench footprint [--jobs 10000] [--nodes 1000] [--gpus-per-node 8]
        [--gpus-per-job 4] [--settle 60] [--concurrency 16] [--timeout 1800] [--json FILE]

Progress goes to stderr, the figures to stdout; the cluster is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gpupool.cluster.writes.pods import DEFAULT_CONTAINER
from gpupool.devcluster.bench_support import (
    MODEL,
    NAMESPACE,
    QUEUE,
    BenchCluster,
    PhaseWatch,
    create_all,
    percentile,
    process_usage,
    wait_reporting,
)
from gpupool.devcluster.cluster import DevCluster, free_port
from gpupool.devcluster.operator_process import start_operator
from gpupool.devcluster.private_cluster import run_on_private_cluster, say_as

CYCLE_HISTOGRAM = "gpupool_scheduling_cycle_duration_seconds"


_say = say_as("gpupool bench footprint")


@dataclass(frozen=True)
class Histogram:
    """One scrape of a histogram: cumulative bucket counts by upper bound, sum and count."""

    buckets: tuple[tuple[float, float], ...]
    total: float
    count: float

    def since(self, earlier: Histogram) -> Histogram:
        """The observations made between `earlier` and this scrape."""
        before = dict(earlier.buckets)
        buckets = tuple((bound, value - before.get(bound, 0.0)) for bound, value in self.buckets)
        return Histogram(buckets, self.total - earlier.total, self.count - earlier.count)

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile_bound(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-quantile (a histogram knows no more)."""
        if not self.count:
            return None
        for bound, cumulative in self.buckets:
            if cumulative >= q * self.count:
                return bound
        return None


def parse_histogram(text: str, name: str) -> Histogram:
    """The histogram `name` (no labels) from a Prometheus text page; empty when absent."""
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{name}_sum":
                total = sample.value
            elif sample.name == f"{name}_count":
                count = sample.value
    return Histogram(tuple(sorted(buckets)), total, count)


def vm_rss_mib(pid: int) -> float:
    """VmRSS of one process in MiB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


@dataclass
class FootprintResult:
    """The figures of one run; None where a phase did not finish."""

    jobs: int
    nodes: int
    gpus_per_node: int
    gpus_per_job: int
    running_expected: int
    create_s: float | None = None
    all_running_s: float | None = None
    running: int = 0
    burst_cycles: int = 0
    burst_cycle_mean_s: float | None = None
    burst_cycle_p95_bound_s: float | None = None
    settle_s: float = 0.0
    settle_cycles: int = 0
    settle_cycle_mean_s: float | None = None
    settle_cycle_p95_bound_s: float | None = None
    rss_samples_mib: list[float] = field(default_factory=list)
    peak_rss_mib: float = 0.0
    operator_cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        figures = {k: v for k, v in asdict(self).items() if k != "rss_samples_mib"}
        figures["rss_p50_mib"] = percentile(self.rss_samples_mib, 50)
        figures["rss_p95_mib"] = percentile(self.rss_samples_mib, 95)
        return figures


def format_table(result: FootprintResult) -> str:
    figures = result.summary()

    def fmt(value: Any, unit: str = "") -> str:
        if value is None:
            return "-"
        return f"{value:.3f}{unit}" if isinstance(value, float) else f"{value}{unit}"

    rows = [
        ("GPUJobs / nodes x GPUs", f"{result.jobs} / {result.nodes} x {result.gpus_per_node}"),
        ("GPUs per job; Running when settled", f"{result.gpus_per_job}; {result.running}/{result.running_expected}"),
        ("created in", fmt(result.create_s, " s")),
        ("all that fit Running after", fmt(result.all_running_s, " s")),
        ("cycles during the burst; mean; p95 <=", f"{result.burst_cycles}; {fmt(result.burst_cycle_mean_s, ' s')}; "
         f"{fmt(result.burst_cycle_p95_bound_s, ' s')}"),
        ("cycles while settled; mean; p95 <=", f"{result.settle_cycles}; {fmt(result.settle_cycle_mean_s, ' s')}; "
         f"{fmt(result.settle_cycle_p95_bound_s, ' s')}"),
        ("operator RSS settled p50 / p95",
         f"{fmt(figures['rss_p50_mib'], ' MiB')} / {fmt(figures['rss_p95_mib'], ' MiB')}"),
        ("operator peak RSS (VmHWM)", fmt(result.peak_rss_mib, " MiB")),
        ("operator CPU", fmt(result.operator_cpu_s, " s")),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def run(args: argparse.Namespace, cluster: DevCluster) -> FootprintResult:
    """Start `cluster`, set it up, run the operator over the jobs; the caller stops the cluster."""
    capacity = args.nodes * args.gpus_per_node // args.gpus_per_job
    result = FootprintResult(
        args.jobs, args.nodes, args.gpus_per_node, args.gpus_per_job, running_expected=min(args.jobs, capacity)
    )
    _say(f"starting a private control plane in {cluster.state_dir}")
    cluster.up(progress=lambda _msg: None)
    pool = ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="create")
    try:
        bench = BenchCluster(cluster, pool, args.nodes, args.gpus_per_node, args.concurrency + 4)
        _say(f"creating {args.nodes} nodes of {args.gpus_per_node} {MODEL}, a GPUNodePool and a GPUQueue")
        bench.setup(ready_timeout=max(120.0, 0.6 * args.nodes))  # kwok readies ~1,000 nodes in minutes here
        metrics_port = free_port()
        record = start_operator(cluster, {"GPUPOOL_METRICS_PORT": str(metrics_port)})
        spec = {
            "queue": QUEUE,
            "gpus": args.gpus_per_job,
            "gpuModels": [MODEL],
            "template": {"spec": {"containers": [DEFAULT_CONTAINER]}},
        }

        def create(index: int) -> None:
            body = bench.custom_object("GPUJob", f"job-{index:05d}", spec, NAMESPACE)
            bench.create_custom("gpujobs", body, NAMESPACE)

        watch = PhaseWatch(bench.list_gpujobs, {"running": {"Running"}})
        watch.start()
        try:
            before_burst = parse_histogram(scrape(metrics_port), CYCLE_HISTOGRAM)
            _say(f"creating {args.jobs} GPUJobs of {args.gpus_per_job} GPUs ({result.running_expected} fit)")
            start = time.monotonic()
            result.create_s = max(create_all(pool, create, args.jobs)) - start
            expected = result.running_expected
            if wait_reporting(watch, "running", expected, start, args.timeout, "GPUJobs Running", _say):
                result.all_running_s = time.monotonic() - start
            burst = parse_histogram(scrape(metrics_port), CYCLE_HISTOGRAM)
            _say(f"settling for {args.settle:.0f}s with {args.jobs - result.running_expected} jobs pending")
            settle_start = time.monotonic()
            while time.monotonic() - settle_start < args.settle:
                result.rss_samples_mib.append(vm_rss_mib(record.pid))
                time.sleep(1.0)
            settled = parse_histogram(scrape(metrics_port), CYCLE_HISTOGRAM)
            result.settle_s = time.monotonic() - settle_start
            result.running = watch.count("running")
        finally:
            watch.stop()
        in_burst, in_settle = burst.since(before_burst), settled.since(burst)
        result.burst_cycles, result.settle_cycles = int(in_burst.count), int(in_settle.count)
        result.burst_cycle_mean_s, result.burst_cycle_p95_bound_s = in_burst.mean(), in_burst.quantile_bound(0.95)
        result.settle_cycle_mean_s, result.settle_cycle_p95_bound_s = in_settle.mean(), in_settle.quantile_bound(0.95)
        usage = process_usage(record.pid)
        result.peak_rss_mib, result.operator_cpu_s = usage.peak_rss_mib, usage.cpu_s
        return result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpupool bench footprint",
        description="The operator's memory and cycle time with many GPUJobs (most pending) on a private control plane.",
    )
    p.add_argument("--jobs", type=int, default=10000, help="GPUJobs to create")
    p.add_argument("--nodes", type=int, default=1000, help="kwok GPU nodes")
    p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs (A100) per node")
    p.add_argument("--gpus-per-job", type=int, default=4, help="GPUs of each job (one worker)")
    p.add_argument("--settle", type=float, default=60.0, help="seconds to watch the operator once all that fit run")
    p.add_argument("--concurrency", type=int, default=16, help="client threads creating objects")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds the jobs may take to start")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    return p


def main(argv: list[str]) -> int:
    """Run the benchmark; 0 when every job that fits ran, 1 on a timeout or error, 2 on bad flags."""
    args = build_parser().parse_args(argv)
    numbers = (args.jobs, args.nodes, args.gpus_per_node, args.gpus_per_job, args.concurrency)
    if min(numbers) < 1 or args.settle <= 0 or args.timeout <= 0 or args.gpus_per_job > args.gpus_per_node:
        print("gpupool bench footprint: every count must be > 0 and a job must fit one node", file=sys.stderr)
        return 2
    result = run_on_private_cluster("gpupool bench footprint", lambda cluster: run(args, cluster))
    if result is None:
        return 1
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result.summary(), indent=2) + "\n")
    return 0 if result.all_running_s is not None else 1
