"""`gpupool bench cycle`: how many decisions one scheduling cycle makes per second.

Who calls this: `gpupool bench cycle ...` (dispatched from `gpupool.cli`), by people
checking that a change to the core keeps a large cluster's cycle fast, and when refreshing
`docs/benchmarks.md`. It builds one synthetic snapshot — by default 1,000 nodes x 8 GPUs and
10,000 pending jobs of mixed shapes (GPU shares, 1, 2, 4 and 8 GPUs, multi-node gangs) over
four queues in two cohorts — runs `gpupool.core.schedule` once over it and reports.

A *decision* is one pending job's outcome in the cycle: an admission with placements, or
a wait with its reason. Both count, since the cycle must produce one for every job; the
admissions alone are reported too. Timing uses the wall clock of this process (this is the
bench layer, not the core), and the snapshot is built before the clock starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpupool.core import (
    GpuNode,
    Job,
    PlacementPolicy,
    PoolClass,
    Queue,
    QueueingStrategy,
    Quota,
    SchedulerConfig,
    Snapshot,
    WorkerShape,
    schedule,
)

GIB = 1024**3

# (gpu milli per worker, workers, weight): the mix of pending work
_SHAPES: tuple[tuple[int, int, float], ...] = (
    (250, 1, 0.10),
    (500, 1, 0.15),
    (1000, 1, 0.25),
    (2000, 1, 0.15),
    (4000, 1, 0.12),
    (8000, 1, 0.12),
    (8000, 2, 0.06),
    (8000, 4, 0.05),
)


def build_snapshot(nodes: int, gpus_per_node: int, pending: int, seed: int) -> Snapshot:
    """The benchmark's snapshot: deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    node_list: list[GpuNode] = []
    for i in range(nodes):
        # 60% on-prem H100, 25% on-prem A100, 15% cloud H100 (a third of it spot)
        frac = i / max(1, nodes)
        if frac < 0.60:
            model, pool, pool_class, spot = "H100", "dgx-h100", PoolClass.ON_PREM, False
        elif frac < 0.85:
            model, pool, pool_class, spot = "A100", "dgx-a100", PoolClass.ON_PREM, False
        else:
            model, pool, pool_class = "H100", "cloud-h100", PoolClass.CLOUD
            spot = frac >= 0.95
        node_list.append(
            GpuNode(
                name=f"node-{i:05d}",
                gpu_model=model,
                gpus=gpus_per_node,
                cpu_milli=gpus_per_node * 16_000,
                memory_bytes=gpus_per_node * 128 * GIB,
                pool=pool,
                pool_class=pool_class,
                spot=spot,
            )
        )
    total = nodes * gpus_per_node
    h100_on_prem = int(total * 0.60)
    a100 = int(total * 0.25)
    cloud = total - h100_on_prem - a100

    def quotas(share: float) -> tuple[Quota, ...]:
        return (
            Quota(nominal_gpus=int(h100_on_prem * share), pool="dgx-h100", borrowing_limit_gpus=None),
            Quota(nominal_gpus=int(a100 * share), pool="dgx-a100", borrowing_limit_gpus=int(a100 * 0.2)),
            Quota(nominal_gpus=int(cloud * share), pool="cloud-h100"),
        )

    queues = (
        Queue("research", quotas(0.35), cohort="ml", weight=2.0, decayed_usage_gpu_seconds=5e6),
        Queue("training", quotas(0.35), cohort="ml", weight=1.0, allow_spot=True),
        Queue("inference", quotas(0.2), cohort="prod", max_priority=100),
        Queue(
            "batch",
            quotas(0.1),
            cohort="prod",
            strategy=QueueingStrategy.STRICT_FIFO,
            decayed_usage_gpu_seconds=1e6,
        ),
    )
    names = [q.name for q in queues]
    weights = np.array([w for _, _, w in _SHAPES])
    shape_pick = rng.choice(len(_SHAPES), size=pending, p=weights / weights.sum())
    queue_pick = rng.choice(len(names), size=pending, p=[0.35, 0.35, 0.2, 0.1])
    priority_pick = rng.choice([0, 10, 50, 100], size=pending, p=[0.5, 0.3, 0.15, 0.05])
    policy_pick = rng.choice(3, size=pending, p=[0.6, 0.3, 0.1])
    model_pick = rng.choice(3, size=pending, p=[0.6, 0.2, 0.2])
    policies = (PlacementPolicy.ON_PREM_ONLY, PlacementPolicy.CLOUD_ALLOWED, PlacementPolicy.SPOT_ALLOWED)
    models: tuple[tuple[str, ...], ...] = ((), ("H100",), ("A100",))
    jobs: list[Job] = []
    for k in range(pending):
        milli, workers, _ = _SHAPES[int(shape_pick[k])]
        gpus = max(1, milli // 1000)
        jobs.append(
            Job(
                key=f"bench/job-{k:06d}",
                queue=names[int(queue_pick[k])],
                shape=WorkerShape(gpu_milli=milli, cpu_milli=4_000 * gpus, memory_bytes=32 * GIB * gpus),
                workers=workers,
                priority=int(priority_pick[k]),
                gpu_models=models[int(model_pick[k])],
                placement_policy=policies[int(policy_pick[k])],
                submitted_at=float(k),
            )
        )
    return Snapshot(now=1e6, nodes=tuple(node_list), queues=queues, pending=tuple(jobs), seed=seed)


def busy_snapshot(base: Snapshot, seed: int) -> Snapshot:
    """`base` after one cycle: its admissions run (long enough to be preemptible), and a
    fresh set of pending jobs arrives with priorities raised by 60 (except in `inference`,
    whose maxPriority is 100), so the measured cycle exercises preemption."""
    first = schedule(base)
    by_key = {j.key: j for j in base.pending}
    running = tuple(
        dataclasses.replace(by_key[a.job_key], placements=a.placements, admitted_at=0.0) for a in first.admissions
    )
    fresh = build_snapshot(len(base.nodes), base.nodes[0].gpus if base.nodes else 0, len(base.pending), seed + 1)
    pending = tuple(
        dataclasses.replace(j, key=f"{j.key}-b", priority=j.priority + (0 if j.queue == "inference" else 60))
        for j in fresh.pending
    )
    return dataclasses.replace(base, running=running, pending=pending)


def main(argv: list[str]) -> int:
    """`gpupool bench cycle [--nodes N] [--gpus-per-node G] [--pending P] [--seed S] [--json FILE]`."""
    parser = argparse.ArgumentParser(prog="gpupool bench cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--policy", default="default", help="scoring policy name, `SchedulerConfig.scoring_policy` (default: default)"
    )
    parser.add_argument(
        "--busy",
        action="store_true",
        help="measure a second cycle: the first cycle's admissions run and higher-priority work arrives",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result as JSON to FILE")
    args = parser.parse_args(argv)
    snapshot = build_snapshot(args.nodes, args.gpus_per_node, args.pending, args.seed)
    if args.busy:
        snapshot = busy_snapshot(snapshot, args.seed)
    config = SchedulerConfig(scoring_policy=args.policy)
    started = time.perf_counter()
    decisions = schedule(snapshot, config)
    seconds = time.perf_counter() - started
    admitted = len(decisions.admissions)
    waiting = len(decisions.waiting)
    made = admitted + waiting
    result = {
        "nodes": args.nodes,
        "gpus_per_node": args.gpus_per_node,
        "pending": args.pending,
        "seed": args.seed,
        "busy": args.busy,
        "running": len(snapshot.running),
        "policy": args.policy,
        "seconds": round(seconds, 4),
        "admissions": admitted,
        "waiting": waiting,
        "preemptions": len(decisions.preemptions),
        "decisions_per_second": round(made / seconds, 1) if seconds > 0 else 0.0,
        "admissions_per_second": round(admitted / seconds, 1) if seconds > 0 else 0.0,
    }
    print(
        f"cycle over {args.nodes} nodes x {args.gpus_per_node} GPUs, {len(snapshot.running)} running, "
        f"{args.pending} pending: {made} decisions ({admitted} admitted, {waiting} waiting, "
        f"{len(decisions.preemptions)} preemptions) in {seconds:.3f} s = "
        f"{result['decisions_per_second']:.0f} decisions/s "
        f"({result['admissions_per_second']:.0f} admissions/s)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _entry(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - manual use
    return main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_entry())
