"""`gpupool sim`: compare cluster scenarios over one workload, side by side.

Who calls this: `gpupool.cli` dispatches `gpupool sim ARGS` to `main(ARGS)`; the unit tests
call `main` on small files.

    gpupool sim --workload openb|FILE --scenario NAME=CLUSTER.yaml [--scenario ...]
                [--months N] [--project-months M] [--out DIR] [--quiet]

Each scenario (`gpupool.whatif.scenario`) runs the workload (`gpupool.whatif.workload`)
through `gpupool.whatif.planning.simulate_plan`: the operator's scheduling, placement,
autoscale planner, budgets and prices in simulated time. Printed on stdout: per queue the
wait (arrival to first start) p50 / p95 and what its jobs were billed (the operator's
accrual rule: what their `status.cost` would sum to); per scenario GPU utilisation, on-prem cost per
month (amortised), cloud cost per month (simulated mean), the purchase price of its
on-prem nodes and the break-even month against the first scenario
(`gpupool.whatif.breakeven`). With `--out`, `whatif.json` (every figure) and `whatif.png`
(cumulative cost curves and waits). Progress goes to stderr unless `--quiet`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from gpupool.whatif.breakeven import break_even_month, cumulative_cost
from gpupool.whatif.planning import MONTH_SECONDS, PlanResult, Progress, SimCluster, TimedJob, simulate_plan
from gpupool.whatif.scenario import ScenarioError, load_scenario
from gpupool.whatif.workload import RecordError, load_records, openb_workload

OPENB_PODS = Path("../shared/traces/openb/openb_pod_list_default.csv")


def _scenario_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=CLUSTER.yaml")
    return name, Path(path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpupool sim", description=__doc__.splitlines()[0])
    p.add_argument("--workload", required=True, help="`openb` (the trace's GPU pods) or a job record file")
    p.add_argument(
        "--scenario",
        type=_scenario_arg,
        action="append",
        required=True,
        help="NAME=CLUSTER.yaml, repeated; the first is the baseline",
    )
    p.add_argument("--months", type=int, help="simulate the first N 30-day months (default: the whole workload)")
    p.add_argument("--project-months", type=int, default=60, help="cost curves and break-even up to this month")
    p.add_argument("--out", type=Path, help="folder for whatif.json and whatif.png")
    p.add_argument("--openb-pods", type=Path, default=OPENB_PODS, help="the openb pod list for --workload openb")
    p.add_argument(
        "--openb-queues",
        help="comma-separated queues the openb pods are drawn into (default: every queue of the first scenario)",
    )
    p.add_argument("--seed", type=int, default=1, help="draws each openb pod's queue")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _progress(name: str, stream: TextIO) -> Progress:
    tty = stream.isatty()
    last = [0.0]

    def report(now: float, finished: int, total: int) -> None:
        if not tty and time.monotonic() - last[0] < 10:
            return
        last[0] = time.monotonic()
        line = f"[{name}] day {now / 86_400:,.0f}: {finished:,} of {total:,} jobs done"
        stream.write(f"\r{line}" if tty else f"{line}\n")
        stream.flush()

    return report


def _wait(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def _month(month: int | None) -> str:
    return "never (within the projection)" if month is None else f"month {month}"


def tables(results: Sequence[PlanResult], curves: Sequence[Sequence[float]]) -> str:
    """The waits per queue and the cost per scenario, as Markdown tables."""
    lines = [
        "| scenario | queue | jobs started | never started | wait p50 | wait p95 | jobs billed $ |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for queue in sorted(r.waits):
            lines.append(
                f"| {r.scenario} | {queue} | {len(r.waits[queue]):,} | {r.never_started.get(queue, 0):,} "
                f"| {_wait(r.wait_pct(queue, 50))} | {_wait(r.wait_pct(queue, 95))} | {r.billed.get(queue, 0.0):,.2f} |"
            )
    lines += [
        "",
        "| scenario | months | GPU util | on-prem util | on-prem $/month | cloud $/month | total $/month "
        "| on-prem purchase $ | break-even vs first |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = curves[0]
    for i, (r, curve) in enumerate(zip(results, curves, strict=True)):
        even = "—" if i == 0 else _month(break_even_month(base, curve))
        purchase = sum(price for price, _ in r.purchases)
        onprem_util = "—" if math.isnan(r.onprem_utilisation) else f"{r.onprem_utilisation:.0%}"
        lines.append(
            f"| {r.scenario} | {r.months} | {r.utilisation:.0%} | {onprem_util} | {r.onprem_monthly:,.0f} "
            f"| {r.cloud_monthly:,.0f} | {r.onprem_monthly + r.cloud_monthly:,.0f} | {purchase:,.0f} | {even} |"
        )
    return "\n".join(lines)


def as_json(results: Sequence[PlanResult], curves: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
    out = []
    for i, (r, curve) in enumerate(zip(results, curves, strict=True)):
        out.append(
            {
                "scenario": r.scenario,
                "months": r.months,
                "waits": {
                    q: {
                        "started": len(w),
                        "never_started": r.never_started.get(q, 0),
                        "p50": r.wait_pct(q, 50),
                        "p95": r.wait_pct(q, 95),
                        "billed": r.billed.get(q, 0.0),
                    }
                    for q, w in sorted(r.waits.items())
                },
                "utilisation": r.utilisation,
                "onprem_utilisation": r.onprem_utilisation,
                "onprem_monthly": r.onprem_monthly,
                "cloud_by_month": list(r.cloud_by_month),
                "purchases": [list(p) for p in r.purchases],
                "cumulative_cost": list(curve),
                "break_even_month": None if i == 0 else break_even_month(curves[0], curve),
                "preemptions": r.preemptions,
                "scale_ups": r.scale_ups,
                "schedule_calls": r.schedule_calls,
            }
        )
    return out


def _workload(args: argparse.Namespace, first: SimCluster) -> list[TimedJob]:
    if args.workload != "openb":
        return load_records(args.workload)
    queues = args.openb_queues.split(",") if args.openb_queues else [q.name for q in first.queues]
    return openb_workload(args.openb_pods, queues, args.seed)


def main(argv: list[str]) -> int:
    """Run every scenario, print the tables, write the files; 2 on a bad input file."""
    args = build_parser().parse_args(argv)
    try:
        clusters = [load_scenario(path, name) for name, path in args.scenario]
        workload = _workload(args, clusters[0])
    except (ScenarioError, RecordError, OSError) as error:
        print(f"gpupool sim: {error}", file=sys.stderr)
        return 2
    results = []
    for cluster in clusters:
        started = time.monotonic()
        progress = None if args.quiet else _progress(cluster.name, sys.stderr)
        result = simulate_plan(cluster, workload, args.months, progress)
        results.append(result)
        if not args.quiet:
            sys.stderr.write(
                f"\r[{cluster.name}] done: {result.months} months simulated in {time.monotonic() - started:,.0f} s, "
                f"{result.schedule_calls:,} scheduling cycles\n"
            )
    horizon = max(args.project_months, max(r.months for r in results))
    curves = [cumulative_cost(r.purchases, r.cloud_by_month, horizon) for r in results]
    print(tables(results, curves))
    if args.out is not None:
        from gpupool.bench.plot import plot_whatif

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "whatif.json").write_text(json.dumps(as_json(results, curves), indent=2) + "\n")
        waits = {r.scenario: {q: r.wait_pct(q, 95) for q in sorted(r.waits)} for r in results}
        plot_whatif(
            {r.scenario: c for r, c in zip(results, curves, strict=True)},
            max(r.months for r in results),
            waits,
            args.out / "whatif.png",
        )
    return 0


__all__ = ["MONTH_SECONDS", "as_json", "build_parser", "main", "tables"]
