"""`gpupool bench bound`: the least unallocated GPU any policy can reach on a trace.

Who calls this: `gpupool.cli` dispatches `gpupool bench bound ARGS` to `main(ARGS)`.
It takes the same arrival sequences as `gpupool bench placement` (same shuffle, tuning
and seeds) and, for every arrival whose arrived % rounds to the measured point, bounds
the GPU that could be allocated by then with `gpupool.bench.packing_bound`. The mean over
those arrivals, as in the paper's figure, gives a floor for unallocated GPU %:

- with `--placed-until 0` (the default), for any policy at all, even one that knows
  the whole sequence and may turn pods away;
- with `--placed-until P`, for policies that place every share (a pod asking for part
  of one GPU) arriving before arrived = P%; the placement bench's JSON gives the
  arrived % of each seed's first failed share, so a run shows whether a policy is in
  that class. Shares are where packing loses GPU, so these are the items forced.

    gpupool bench bound --nodes CSV --pods CSV [--seeds 42-51] [--tune 1.3]
        [--at 100] [--placed-until 0] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gpupool.bench.metrics import arrived_bucket, mean_sd
from gpupool.bench.openb import TracePod
from gpupool.bench.packing_bound import ForcedItemsDoNotFit, PackingBound, item_counts
from gpupool.bench.placement_bench import json_safe, load_inputs, parse_seeds
from gpupool.bench.workload import arrival_sequence
from gpupool.core.models import MILLI_PER_GPU


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpupool bench bound",
        description="Lower bound on unallocated GPU % for any placement policy (GPU dimension only).",
    )
    p.add_argument("--nodes", required=True, type=Path, help="node list CSV (sn,cpu_milli,memory_mib,gpu,model)")
    p.add_argument("--pods", required=True, type=Path, help="pod list CSV in the openb format")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("42-51"), help="e.g. 42-51 or 42,43")
    p.add_argument("--tune", type=float, default=1.3, help="tune the workload to this x GPU capacity (<=0: off)")
    p.add_argument("--at", type=int, default=100, help="the arrived workload %% to bound unallocated GPU at")
    p.add_argument(
        "--placed-until",
        type=float,
        default=0.0,
        help="bound only policies that place every GPU share arriving before this arrived %% (0: any policy)",
    )
    p.add_argument("--json", type=Path, help="write per-seed bounds and their mean here")
    return p


def items_of(pod: TracePod) -> tuple[int, int]:
    """(item size, copies) of one pod: a share is one item, k whole GPUs are k items of 1,000."""
    milli = pod.requested_milli
    if milli >= MILLI_PER_GPU:
        return MILLI_PER_GPU, milli // MILLI_PER_GPU
    return milli, 1 if milli > 0 else 0


def seed_floor(pods: Sequence[TracePod], gpus: int, seed: int, tune: float, at: int, placed_until: float) -> float:
    """Least unallocated GPU % at arrived = `at`% for one seed's arrival sequence (NaN if never reached)."""
    capacity = gpus * MILLI_PER_GPU
    arrivals = arrival_sequence(pods, capacity, tune, np.random.default_rng(seed))
    requested = np.array([a.pod.requested_milli for a in arrivals], dtype=np.int64)
    arrived_pct = np.cumsum(requested) * 100.0 / capacity
    window = np.flatnonzero(arrived_bucket(arrived_pct) == at)
    if len(window) == 0:
        return float("nan")
    sizes = np.array(sorted({items_of(a.pod)[0] for a in arrivals if a.pod.requested_milli > 0}), dtype=np.int64)
    bound = PackingBound(sizes)
    seen: Counter[int] = Counter()
    forced: Counter[int] = Counter()
    best_pct = np.full(len(window), np.nan)
    for k, arrival in enumerate(arrivals[: window[-1] + 1]):
        size, copies = items_of(arrival.pod)
        seen[size] += copies
        if size < MILLI_PER_GPU and arrived_pct[k] < placed_until:
            forced[size] += copies
        if k >= window[0]:
            packed = bound.max_packed_milli(item_counts(seen, sizes), item_counts(forced, sizes), gpus)
            best_pct[k - window[0]] = packed * 100.0 / capacity
    # Every arrival of the window counts towards `at`: the figure is their mean.
    return float(100.0 - best_pct.mean())


def main(argv: list[str]) -> int:
    """Print one line per seed and the mean; 0 on success, 2 on bad input."""
    args = build_parser().parse_args(argv)
    inputs = load_inputs("gpupool bench bound", args.nodes, args.pods)
    if inputs is None:
        return 2
    nodes, pods = inputs
    gpus = sum(n.gpus for n in nodes)
    try:
        import scipy  # noqa: F401
    except ImportError:
        print("gpupool bench bound needs scipy: pip install scipy (make venv installs it)", file=sys.stderr)
        return 2
    who = "any policy" if args.placed_until <= 0 else f"policies placing every share until {args.placed_until:g}%"
    floors: list[float] = []
    for seed in args.seeds:
        try:
            floor = seed_floor(pods, gpus, seed, args.tune, args.at, args.placed_until)
        except ForcedItemsDoNotFit as err:
            print(f"gpupool bench bound: seed {seed}: {err}; lower --placed-until", file=sys.stderr)
            return 2
        floors.append(floor)
        print(f"seed {seed}: at least {floor:.2f}% unallocated GPU at arrived {args.at}% ({who})", flush=True)
    mean, sd = mean_sd(floors)
    print(f"bound ({who}): at least {mean:.2f} ± {sd:.2f}% unallocated GPU at arrived {args.at}%")
    if args.json:
        doc: dict[str, Any] = {
            "nodes": str(args.nodes),
            "pods": str(args.pods),
            "tune": args.tune,
            "at_pct": args.at,
            "placed_until_pct": args.placed_until,
            "per_seed": [{"seed": s, "min_unallocated_pct": f} for s, f in zip(args.seeds, floors, strict=True)],
            "mean": mean,
            "sd": sd,
        }
        args.json.write_text(json.dumps(json_safe(doc), indent=2, allow_nan=False) + "\n")
    return 0
