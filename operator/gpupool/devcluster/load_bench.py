"""`gpupool bench load`: admission latency under a steady arrival of GPUJobs that finish,
on the real API server.

Who calls this: `gpupool.cli` dispatches `gpupool bench load ARGS` to `main(ARGS)`; people
refresh the "Admission under load" section of docs/benchmarks.md with it. It runs on a
private control plane (`gpupool.devcluster.private_cluster`) with the benches' shared
set-up (`gpupool.devcluster.bench_support.BenchCluster`), starts
the operator with its production settings and creates one-GPU GPUJobs at `--rate` per
second for `--minutes`, each running `--job-seconds` (kwok finishes its pod after the
`gpupool.io/sim-duration` annotation), so jobs arrive and leave at once. Each job's
admission latency is from its create returning to the first time a watch saw it Admitted
or Running; the run reports p50/p95/p99/max, how many finished, and whether the creates
kept to the rate (a client that falls behind would flatter the latency).

    gpupool bench load [--rate 10] [--minutes 10] [--job-seconds 30] [--nodes 125]
        [--gpus-per-node 8] [--concurrency 16] [--json FILE]

Progress goes to stderr, the figures to stdout; the cluster is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpupool.cluster.writes.pods import DEFAULT_CONTAINER
from gpupool.devcluster.bench_support import (
    MODEL,
    NAMESPACE,
    QUEUE,
    BenchCluster,
    PhaseWatch,
    percentile,
    process_usage,
)
from gpupool.devcluster.cluster import DevCluster
from gpupool.devcluster.operator_process import start_operator
from gpupool.devcluster.private_cluster import run_on_private_cluster, say_as

DRAIN_SECONDS = 120.0
"""How long after the last arrival the run waits for the last jobs to be admitted and finish."""


_say = say_as("gpupool bench load")


@dataclass
class LoadResult:
    """The figures of one run."""

    rate_per_s: float
    minutes: float
    job_seconds: float
    nodes: int
    gpus_per_node: int
    created: int = 0
    arrival_span_s: float = 0.0
    admitted: int = 0
    succeeded: int = 0
    admission_p50_s: float | None = None
    admission_p95_s: float | None = None
    admission_p99_s: float | None = None
    admission_max_s: float | None = None
    operator_cpu_s: float = 0.0
    operator_peak_rss_mib: float = 0.0


def format_table(result: LoadResult) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} s"

    rows = [
        ("arrivals", f"{result.rate_per_s:g}/s for {result.minutes:g} min, {result.job_seconds:g} s each"),
        ("cluster", f"{result.nodes} nodes x {result.gpus_per_node} GPUs"),
        ("created; over", f"{result.created}; {result.arrival_span_s:.1f} s"),
        ("admitted; succeeded", f"{result.admitted}; {result.succeeded}"),
        ("admission latency p50 / p95", f"{fmt(result.admission_p50_s)} / {fmt(result.admission_p95_s)}"),
        ("admission latency p99 / max", f"{fmt(result.admission_p99_s)} / {fmt(result.admission_max_s)}"),
        ("operator CPU; peak RSS", f"{result.operator_cpu_s:.1f} s; {result.operator_peak_rss_mib:.0f} MiB"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def run(args: argparse.Namespace, cluster: DevCluster) -> LoadResult:
    """Start `cluster`, set it up, feed the operator; the caller stops the cluster."""
    result = LoadResult(args.rate, args.minutes, args.job_seconds, args.nodes, args.gpus_per_node)
    total = int(args.rate * args.minutes * 60)
    _say(f"starting a private control plane in {cluster.state_dir}")
    cluster.up(progress=lambda _msg: None)
    pool = ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="create")
    try:
        bench = BenchCluster(cluster, pool, args.nodes, args.gpus_per_node, args.concurrency + 4)
        _say(f"creating {args.nodes} nodes of {args.gpus_per_node} {MODEL}, a GPUNodePool and a GPUQueue")
        bench.setup()
        record = start_operator(cluster)
        template = {
            "metadata": {"annotations": {"gpupool.io/sim-duration": f"{args.job_seconds:g}s"}},
            "spec": {"containers": [DEFAULT_CONTAINER]},
        }
        spec = {"queue": QUEUE, "gpus": 1, "gpuModels": [MODEL], "template": template}
        created: dict[str, float] = {}

        def create(name: str) -> None:
            bench.create_custom("gpujobs", bench.custom_object("GPUJob", name, spec, NAMESPACE), NAMESPACE)
            created[name] = time.monotonic()

        marks = {"admitted": {"Admitted", "Running", "Succeeded"}, "succeeded": {"Succeeded"}}
        watch = PhaseWatch(bench.list_gpujobs, marks)
        watch.start()
        try:
            _say(f"creating {total} GPUJobs at {args.rate:g}/s, each running {args.job_seconds:g}s")
            start = time.monotonic()
            futures: list[Future[None]] = []
            for index in range(total):
                time.sleep(max(0.0, start + index / args.rate - time.monotonic()))
                futures.append(pool.submit(create, f"job-{index:05d}"))
                if index and index % int(args.rate * 60) == 0:
                    _say(f"{index} created, {watch.count('admitted')} admitted, {watch.count('succeeded')} succeeded")
            for future in futures:
                future.result()
            result.arrival_span_s = time.monotonic() - start
            watch.wait(lambda w: len(w.first["succeeded"]) >= total, DRAIN_SECONDS + args.job_seconds)
            admitted = dict(watch.first["admitted"])
            result.succeeded = watch.count("succeeded")
        finally:
            watch.stop()
        latencies = [max(0.0, admitted[name] - at) for name, at in created.items() if name in admitted]
        result.created, result.admitted = len(created), len(latencies)
        result.admission_p50_s = percentile(latencies, 50)
        result.admission_p95_s = percentile(latencies, 95)
        result.admission_p99_s = percentile(latencies, 99)
        result.admission_max_s = max(latencies, default=None)
        usage = process_usage(record.pid)
        result.operator_cpu_s, result.operator_peak_rss_mib = usage.cpu_s, usage.peak_rss_mib
        return result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpupool bench load", description="Admission latency under a steady arrival of GPUJobs that finish."
    )
    p.add_argument("--rate", type=float, default=10.0, help="GPUJobs created per second")
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of arrivals")
    p.add_argument("--job-seconds", type=float, default=30.0, help="seconds each job runs")
    p.add_argument("--nodes", type=int, default=125, help="kwok GPU nodes")
    p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs (A100) per node")
    p.add_argument("--concurrency", type=int, default=16, help="client threads creating objects")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    return p


def main(argv: list[str]) -> int:
    """Run the benchmark; 0 when every job was admitted, 1 otherwise or on an error, 2 on bad flags."""
    args = build_parser().parse_args(argv)
    if min(args.rate, args.minutes, args.job_seconds) <= 0 or min(args.nodes, args.gpus_per_node) < 1:
        print(
            "gpupool bench load: --rate, --minutes, --job-seconds, --nodes and --gpus-per-node must be > 0",
            file=sys.stderr,
        )
        return 2
    if args.rate * args.job_seconds > args.nodes * args.gpus_per_node:
        print("gpupool bench load: the cluster cannot hold rate x job-seconds jobs at once", file=sys.stderr)
        return 2
    result = run_on_private_cluster("gpupool bench load", lambda cluster: run(args, cluster))
    if result is None:
        return 1
    print(format_table(result))
    if args.json:
        figures: dict[str, Any] = asdict(result)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if result.admitted == result.created else 1
