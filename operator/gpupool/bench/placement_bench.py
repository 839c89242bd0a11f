"""`gpupool bench placement`: placement quality and speed on the openb trace.

Who calls this: `gpupool.cli` dispatches `gpupool bench placement ARGS` to `main(ARGS)`;
scripts outside the project call it with exactly the flags below, so they are an
interface. The protocol is the FGD paper's (see `gpupool.bench.workload` and
`gpupool.bench.metrics`); placement goes through the operator's own `PlacementState.place`.
`--policy` names the scoring policy (`SchedulerConfig.scoring_policy`).

    gpupool bench placement --nodes CSV --pods CSV --policy NAME [--seeds 42-51]
        [--tune 1.3] [--json FILE] [--placements-out FILE] [--plot FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from gpupool.bench.metrics import allocation_curve, mean_sd, unallocated_at
from gpupool.bench.openb import TraceFormatError, TracePod, load_nodes, load_pods
from gpupool.bench.replay import ReplayResult, replay
from gpupool.bench.workload import arrival_sequence
from gpupool.core.models import DEFAULT_GPUPOOL_PARAMS, MILLI_PER_GPU, GpuNode, GpupoolParams, SchedulerConfig
from gpupool.core.placement import SCORING_POLICY_NAMES, WorkloadMix
from gpupool.core.placement.registry import DEFAULT_RESOLVES_TO, DEFAULT_SCORING_POLICY

# Policies that know the whole trace's request distribution in advance, as the paper's
# FGD does (its "typical pods" come from the full pod list before the run).
OFFLINE_MIX_POLICIES = frozenset({"fgd"})
# Policies that learn the distribution online from the pods seen so far.
ONLINE_MIX_POLICIES = frozenset({"gpupool"})


def parse_seeds(text: str) -> list[int]:
    """`42-51`, `42,43,50` or a mix (`42-44,50`) -> the seeds, in order, without repeats."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first, last = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad seed list {text!r}: use e.g. 42-51 or 42,43") from None
        if last < first:
            raise argparse.ArgumentTypeError(f"bad seed range {part!r}: the end is below the start")
        seeds.extend(s for s in range(first, last + 1) if s not in seeds)
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    """The bench's command line (the flags are an external interface: keep them stable)."""
    p = argparse.ArgumentParser(
        prog="gpupool bench placement",
        description="Replay the openb trace under the FGD paper's protocol through gpupool's placement.",
    )
    p.add_argument("--nodes", required=True, type=Path, help="node list CSV (sn,cpu_milli,memory_mib,gpu,model)")
    p.add_argument(
        "--pods", required=True, type=Path, help="pod list CSV (name,cpu_milli,memory_mib,num_gpu,gpu_milli,...)"
    )
    p.add_argument("--policy", required=True, choices=SCORING_POLICY_NAMES, help="placement (scoring) policy")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("42-51"), help="e.g. 42-51 or 42,43")
    p.add_argument("--tune", type=float, default=1.3, help="tune the workload to this x GPU capacity (<=0: off)")
    p.add_argument("--json", type=Path, help="write per-seed values, means and pods/s here")
    p.add_argument("--placements-out", type=Path, help="write seed,seq,pod,node,gpus rows here")
    p.add_argument("--plot", type=Path, help="write a PNG of unallocated GPU %% vs arrived workload here")
    return p


@dataclass(frozen=True, slots=True)
class SeedOutcome:
    """The figures of one seed."""

    seed: int
    result: ReplayResult
    curve: np.ndarray

    @property
    def unallocated_100(self) -> float:
        return unallocated_at(self.curve, 100)

    @property
    def unallocated_130(self) -> float:
        return unallocated_at(self.curve, 130)

    @property
    def first_share_failure_pct(self) -> float | None:
        """Arrived % when the first GPU share failed (None if none did): the policy placed
        every share before that, which is what `gpupool bench bound --placed-until` assumes."""
        milli = self.result.requested_milli
        failed = (~self.result.placed) & (milli > 0) & (milli < MILLI_PER_GPU)
        return float(self.result.arrived_pct[failed][0]) if failed.any() else None


def offline_mix(pods: Sequence[TracePod]) -> WorkloadMix:
    """The whole trace's request distribution (what the paper's FGD is given)."""
    mix = WorkloadMix()
    for pod in pods:
        mix.observe(pod.shape(), 1, pod.gpu_models)
    return mix


def run_seed(
    nodes: Sequence[GpuNode],
    pods: Sequence[TracePod],
    policy: str,
    seed: int,
    tune: float,
    gpupool_params: GpupoolParams = DEFAULT_GPUPOOL_PARAMS,
) -> SeedOutcome:
    """Shuffle and tune with `seed`, replay with scoring policy `policy`, and compute the curve."""
    capacity = sum(n.gpus for n in nodes) * 1000
    workload_rng = np.random.default_rng(seed)
    arrivals = arrival_sequence(pods, capacity, tune, workload_rng)
    resolved = DEFAULT_RESOLVES_TO if policy == DEFAULT_SCORING_POLICY else policy
    # A separate stream for the scheduler's tie-breaks, so the workload of a seed is the
    # same whichever policy runs.
    sched_rng = np.random.default_rng([seed, 1])
    static = offline_mix(pods) if resolved in OFFLINE_MIX_POLICIES else None
    config = SchedulerConfig(scoring_policy=policy, gpupool_params=gpupool_params)
    result = replay(nodes, arrivals, config, sched_rng, static, learn_online=resolved in ONLINE_MIX_POLICIES)
    top = max(130, int(np.ceil(result.arrived_pct[-1])) if len(arrivals) else 130)
    curve = allocation_curve(result.arrived_pct, result.allocated_pct, top)
    return SeedOutcome(seed, result, curve)


def write_placements(out: TextIO, outcomes: Sequence[SeedOutcome]) -> None:
    """CSV `seed,seq,pod,node,gpus`: one row per arrival, `gpus` as `index:milli;...`."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["seed", "seq", "pod", "node", "gpus"])
    for o in outcomes:
        for seq, (name, p) in enumerate(zip(o.result.names, o.result.placements, strict=True)):
            if p is None:
                w.writerow([o.seed, seq, name, "", ""])
            else:
                w.writerow([o.seed, seq, name, p.node, ";".join(f"{s.index}:{s.milli}" for s in p.gpus)])


def summary(args: argparse.Namespace, outcomes: Sequence[SeedOutcome]) -> dict[str, Any]:
    """The JSON document: inputs, per-seed values, means and speed."""
    u100 = [o.unallocated_100 for o in outcomes]
    u130 = [o.unallocated_130 for o in outcomes]
    arrivals = sum(len(o.result.names) for o in outcomes)
    seconds = sum(o.result.seconds for o in outcomes)
    m100, sd100 = mean_sd(u100)
    m130, sd130 = mean_sd(u130)
    curves = np.array([o.curve[:131] for o in outcomes])
    with warnings.catch_warnings():
        # A tiny trace may never reach some arrived % in any seed: NaN there, no warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_curve = 100.0 - np.nanmean(curves, axis=0) if len(curves) else np.array([])
    return {
        "nodes": str(args.nodes),
        "pods": str(args.pods),
        "policy": args.policy,
        "resolved_policy": DEFAULT_RESOLVES_TO if args.policy == DEFAULT_SCORING_POLICY else args.policy,
        "tune": args.tune,
        "seeds": [o.seed for o in outcomes],
        "per_seed": [
            {
                "seed": o.seed,
                "unallocated_pct_at_100": o.unallocated_100,
                "unallocated_pct_at_130": o.unallocated_130,
                "arrivals": len(o.result.names),
                "failed": int((~o.result.placed).sum()),
                "first_share_failure_arrived_pct": o.first_share_failure_pct,
                "seconds": o.result.seconds,
                "pods_per_second": len(o.result.names) / o.result.seconds if o.result.seconds else None,
            }
            for o in outcomes
        ],
        "mean": {"unallocated_pct_at_100": m100, "unallocated_pct_at_130": m130},
        "sd": {"unallocated_pct_at_100": sd100, "unallocated_pct_at_130": sd130},
        "pods_per_second": arrivals / seconds if seconds else None,
        # Mean over seeds of unallocated GPU % at arrived = 0..130 % (for plots).
        "curve_unallocated_pct": [None if np.isnan(v) else float(v) for v in mean_curve],
    }


def json_safe(value: Any) -> Any:
    """`value` with every NaN float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return None if np.isnan(value) else value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def load_inputs(prog: str, nodes_csv: Path, pods_csv: Path) -> tuple[list[GpuNode], list[TracePod]] | None:
    """The trace's nodes and pods, or None after telling stderr what is wrong (callers exit 2).

    Shared by the benches over the trace (`placement`, `bound`), so bad input reads the same.
    """
    try:
        nodes = load_nodes(nodes_csv)
        pods = load_pods(pods_csv)
    except (OSError, TraceFormatError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return None
    if not any(n.gpus for n in nodes):
        print(f"{prog}: {nodes_csv} has no GPU nodes", file=sys.stderr)
        return None
    return nodes, pods


def main(argv: list[str]) -> int:
    """Run the bench; print one line per seed and the mean; 0 on success, 2 on bad input."""
    args = build_parser().parse_args(argv)
    inputs = load_inputs("gpupool bench placement", args.nodes, args.pods)
    if inputs is None:
        return 2
    nodes, pods = inputs
    outcomes = []
    for seed in args.seeds:
        o = run_seed(nodes, pods, args.policy, seed, args.tune, DEFAULT_GPUPOOL_PARAMS)
        outcomes.append(o)
        n = len(o.result.names)
        print(
            f"seed {seed}: unallocated GPU {o.unallocated_100:.2f}% at arrived 100%, "
            f"{o.unallocated_130:.2f}% at 130%; {n} arrivals, {int((~o.result.placed).sum())} failed, "
            f"{n / o.result.seconds:.0f} pods/s",
            flush=True,
        )
    doc = summary(args, outcomes)
    print(
        f"{args.policy}: unallocated GPU at arrived 100%: {doc['mean']['unallocated_pct_at_100']:.2f} "
        f"± {doc['sd']['unallocated_pct_at_100']:.2f}%  (130%: {doc['mean']['unallocated_pct_at_130']:.2f} "
        f"± {doc['sd']['unallocated_pct_at_130']:.2f}%), {doc['pods_per_second']:.0f} pods/s "
        f"over {len(outcomes)} seed(s)"
    )
    if args.json:
        args.json.write_text(json.dumps(json_safe(doc), indent=2, allow_nan=False) + "\n")
    if args.placements_out:
        with args.placements_out.open("w", newline="") as f:
            write_placements(f, outcomes)
    if args.plot:
        from gpupool.bench.plot import plot_unallocated

        plot_unallocated({args.policy: doc["curve_unallocated_pct"]}, args.plot)
    return 0
