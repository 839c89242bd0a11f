"""`gpupool bench burst`: what bursting a timed trace to the cloud costs, against a bound.

Who calls this: `gpupool.cli` dispatches `gpupool bench burst ARGS` to `main(ARGS)`; the
unit tests drive `simulate` on hand-made traces.

A discrete-event simulation over the openb trace's arrival and completion times that
decides with the operator's own core: at every event time that can change a decision
(arrivals; completions, nodes turning Ready and nominations while jobs wait) it builds a
`Snapshot` — on-prem nodes and Ready cloud nodes, running jobs with their placements,
pending jobs, `offers` for the cloud pools, `in_flight` for nodes requested and not Ready,
`nominations` for Ready nodes requested for jobs that still wait — and calls
`gpupool.core.schedule`. Admissions start jobs, which run for their trace duration;
`Decisions.node_requests` become in-flight nodes that turn Ready after
`--provisioning-delay`; cloud nodes idle for `--scale-down-after` are given back as
`gpupool.core.autoscale.nodes_to_release` picks them. Nothing runs per second: between
events nothing changes.

The event loop is `gpupool.bench.events.EventSim`, shared with `gpupool sim`.

Policies (`--policy` of the run, all in one command):

- `planner`: the core's autoscale planner, as above.
- `onprem`: no offers: what waiting costs without the cloud.
- `naive`: a baseline in this module, not in the core: `schedule` sees no offers; every
  pending pod that may burst and has no node coming gets one on-demand node of the
  cheapest type that holds it; a node is given back after 10 idle minutes.

Jobs: each pod is one single-worker job of one queue. GPU pods are CloudAllowed, a
seeded `--spot-share` of them SpotAllowed; CPU-only pods are OnPremOnly (a GPU node
bought for a CPU pod would be waste the bound does not count). Spot nodes are never
interrupted here. A cloud node is paid from its request to its release (boot included).
Waits are creation to start, over GPU pods; pods that never start (no on-prem or cloud
node can hold them) are counted apart.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gpupool.bench.burst_bound import lower_bound
from gpupool.bench.burst_inputs import (
    DEFAULT_CATALOGUE,
    CloudType,
    TimedPod,
    load_catalogue,
    load_timed_pods,
    offers_of,
    onprem_cluster,
)
from gpupool.bench.events import EventSim
from gpupool.bench.openb import load_nodes
from gpupool.core import Job, PlacementPolicy, Queue, Quota, Snapshot
from gpupool.core.models import Admission, Decisions, GpuNode

POLICIES = ("planner", "onprem", "naive")
NAIVE_SCALE_DOWN_SECONDS = 600.0
QUEUE = "openb"


@dataclass(frozen=True, slots=True)
class BurstConfig:
    """Knobs of one simulation."""

    policy: str = "planner"
    provisioning_delay: float = 180.0
    scale_down_after: float = 300.0
    headroom: int = 1000


@dataclass(frozen=True, slots=True)
class BurstResult:
    """What one simulation paid and how long its jobs waited."""

    policy: str
    cost: float
    waits: tuple[float, ...]  # creation to start, GPU pods that started
    never_started: int
    paid_gpu_hours: float
    idle_gpu_hours: float
    scale_ups: int  # nodes requested
    scale_downs: int  # nodes given back
    schedule_calls: int
    cost_by_pool: dict[str, float] = field(default_factory=dict)

    def wait_pct(self, q: float) -> float:
        return float(np.percentile(self.waits, q)) if self.waits else math.nan


def make_jobs(pods: Sequence[TimedPod], spot: Sequence[bool]) -> list[Job]:
    """One job per pod: GPU pods may burst (spot where `spot[i]`), CPU-only pods may not."""
    out = []
    for i, (tp, may_spot) in enumerate(zip(pods, spot, strict=True)):
        if tp.pod.requested_milli <= 0:
            policy = PlacementPolicy.ON_PREM_ONLY
        else:
            policy = PlacementPolicy.SPOT_ALLOWED if may_spot else PlacementPolicy.CLOUD_ALLOWED
        job = tp.pod.to_job(f"{i:05d}-{tp.pod.name}")
        out.append(replace(job, queue=QUEUE, placement_policy=policy, submitted_at=tp.arrival))
    return out


def spot_choice(pods: Sequence[TimedPod], share: float, seed: int) -> list[bool]:
    """Which GPU pods may use spot: a `share` of them, drawn with `seed`."""
    rng = np.random.default_rng([seed, 7])
    draws = rng.random(len(pods))
    return [bool(d < share) and p.pod.requested_milli > 0 for d, p in zip(draws, pods, strict=True)]


def _queue(models: set[str]) -> Queue:
    # Quota is not what this bench measures: one flavor per model, larger than any demand.
    quotas = tuple(Quota(nominal_gpus=10**7, gpu_model=m) for m in sorted(models))
    return Queue(QUEUE, quotas=quotas, allow_cloud=True, allow_spot=True)


class _Sim(EventSim):
    """One run of `simulate`: the shared event loop (`gpupool.bench.events`) with one queue, the
    bench's delays and, under `naive`, the baseline's own node requests."""

    def __init__(
        self,
        pods: Sequence[TimedPod],
        jobs: Sequence[Job],
        onprem: Sequence[GpuNode],
        types: Sequence[CloudType],
        config: BurstConfig,
    ) -> None:
        offers = offers_of(types, config.headroom) if config.policy == "planner" else ()
        queue = _queue({n.gpu_model for n in onprem} | {t.model for t in types})
        super().__init__(jobs, onprem, (queue,), offers)
        self.config = config
        self.pods = {j.key: p for j, p in zip(jobs, pods, strict=True)}
        self.types = list(types)
        self.naive_for: dict[str, str] = {}  # naive: pending job -> its node in flight

    def duration(self, job: Job, admission: Admission) -> float:
        return self.pods[job.key].duration

    def provisioning_delay(self, pool: str) -> float:
        return self.config.provisioning_delay

    def scale_down_after(self, pool: str) -> float:
        return NAIVE_SCALE_DOWN_SECONDS if self.config.policy == "naive" else self.config.scale_down_after

    def snapshot(self, now: float) -> Snapshot:
        snapshot = super().snapshot(now)
        if self.config.policy == "planner":
            return snapshot
        return replace(snapshot, in_flight=(), nominations={})

    def ready(self, claim: str, now: float) -> None:
        super().ready(claim, now)
        for key in [k for k, c in self.naive_for.items() if c == claim]:
            del self.naive_for[key]

    def after_decide(self, now: float, decisions: Decisions) -> None:
        for key in [k for k in self.naive_for if k not in self.pending]:
            del self.naive_for[key]
        if self.config.policy == "naive":
            self._naive_requests(now)

    def _naive_requests(self, now: float) -> None:
        for key, job in self.pending.items():
            if key in self.naive_for or job.placement_policy == PlacementPolicy.ON_PREM_ONLY:
                continue
            fitting = [t for t in self.types if t.holds(self.pods[key].pod)]
            if not fitting:
                continue
            best = min(fitting, key=lambda t: (t.node_price(False), t.model))
            self.naive_for[key] = self.request(best.node(False), best.node_price(False), (), now)

    def result(self) -> BurstResult:
        assert not self.in_flight and not self.cloud, "every cloud node is given back by the end"
        cost_by_pool: dict[str, float] = {}
        paid = used = 0.0
        for node in self.gone:
            assert node.released_at is not None
            hours = (node.released_at - node.requested_at) / 3600
            cost_by_pool[node.node.pool] = cost_by_pool.get(node.node.pool, 0.0) + node.price_per_hour * hours
            paid += node.node.gpus * hours
            used += node.used_gpu_seconds / 3600
        waits = tuple(
            self.started[k] - self.pods[k].arrival for k in self.started if self.pods[k].pod.requested_milli > 0
        )
        return BurstResult(
            policy=self.config.policy,
            cost=sum(cost_by_pool.values()),
            waits=waits,
            never_started=len(self.pending),
            paid_gpu_hours=paid,
            idle_gpu_hours=paid - used,
            scale_ups=self.claims,
            scale_downs=self.released,
            schedule_calls=self.calls,
            cost_by_pool=dict(sorted(cost_by_pool.items())),
        )


def simulate(
    pods: Sequence[TimedPod],
    spot: Sequence[bool],
    onprem: Sequence[GpuNode],
    types: Sequence[CloudType],
    config: BurstConfig,
) -> BurstResult:
    """Run `pods` (pod i may use spot when `spot[i]`) on `onprem` plus, by `config.policy`,
    cloud nodes of `types`; see the module docstring."""
    if config.policy not in POLICIES:
        raise ValueError(f"unknown policy {config.policy!r}; expected one of {', '.join(POLICIES)}")
    sim = _Sim(pods, make_jobs(pods, spot), onprem, types, config)
    sim.run()
    return sim.result()


@dataclass(frozen=True, slots=True)
class TraceRun:
    """One trace's bound and its simulations."""

    trace: str
    onprem_gpus: int
    bound: float
    bound_gpu_hours: float
    results: tuple[BurstResult, ...]
    seconds: float


def run_trace(
    path: Path,
    gpu_nodes: Sequence[GpuNode],
    cpu_nodes: Sequence[GpuNode],
    types: Sequence[CloudType],
    args: argparse.Namespace,
) -> TraceRun:
    """The bound and every policy's simulation for one pod list."""
    pods = load_timed_pods(path)
    onprem = onprem_cluster(gpu_nodes, cpu_nodes, args.onprem_share, args.seed)
    spot = spot_choice(pods, args.spot_share, args.seed)
    started = time.perf_counter()
    bound = lower_bound(pods, spot, onprem, types)
    results = []
    for policy in args.policies:
        config = BurstConfig(
            policy=policy, provisioning_delay=args.provisioning_delay, scale_down_after=args.scale_down_after
        )
        results.append(simulate(pods, spot, onprem, types, config))
    return TraceRun(
        trace=path.name,
        onprem_gpus=sum(n.gpus for n in onprem),
        bound=bound.cost,
        bound_gpu_hours=bound.gpu_hours,
        results=tuple(results),
        seconds=time.perf_counter() - started,
    )


def table(runs: Sequence[TraceRun]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| trace | on-prem GPUs | policy | cloud cost $ | bound $ | cost / bound | p50 wait s | p95 wait s "
        "| idle cloud GPU-h | scale-ups | scale-downs | never started |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for r in run.results:
            ratio = f"{r.cost / run.bound:.3f}" if run.bound > 0 and r.policy != "onprem" else "—"
            lines.append(
                f"| {run.trace} | {run.onprem_gpus} | {r.policy} | {r.cost:,.0f} | {run.bound:,.0f} | {ratio} "
                f"| {r.wait_pct(50):,.0f} | {r.wait_pct(95):,.0f} | {r.idle_gpu_hours:,.0f} | {r.scale_ups} "
                f"| {r.scale_downs} | {r.never_started} |"
            )
    return "\n".join(lines)


def _as_json(run: TraceRun) -> dict[str, Any]:
    return {
        "trace": run.trace,
        "onprem_gpus": run.onprem_gpus,
        "bound": run.bound,
        "bound_gpu_hours": run.bound_gpu_hours,
        "seconds": run.seconds,
        "results": [
            {
                "policy": r.policy,
                "cost": r.cost,
                "cost_by_pool": r.cost_by_pool,
                "p50_wait": r.wait_pct(50),
                "p95_wait": r.wait_pct(95),
                "p99_wait": r.wait_pct(99),
                "paid_gpu_hours": r.paid_gpu_hours,
                "idle_gpu_hours": r.idle_gpu_hours,
                "scale_ups": r.scale_ups,
                "scale_downs": r.scale_downs,
                "never_started": r.never_started,
                "schedule_calls": r.schedule_calls,
            }
            for r in run.results
        ],
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpupool bench burst", description=__doc__.splitlines()[0])
    trace = Path("../shared/traces/openb")
    p.add_argument(
        "--pods",
        type=Path,
        nargs="+",
        default=[trace / "openb_pod_list_default.csv"],
        help="timed pod lists (openb format with creation/deletion/scheduled times); one table row group each",
    )
    p.add_argument("--nodes", type=Path, default=trace / "openb_node_list_gpu_node.csv", help="GPU node list CSV")
    p.add_argument(
        "--all-nodes",
        type=Path,
        default=trace / "openb_node_list_all_node.csv",
        help="node list with CPU-only nodes (those with 0 GPUs are drawn with the same share)",
    )
    p.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE, help="cloud node types and prices (YAML)")
    p.add_argument("--onprem-share", type=float, default=0.005, help="share of the trace's nodes kept on-prem")
    p.add_argument("--spot-share", type=float, default=0.25, help="share of GPU pods allowed on spot")
    p.add_argument("--seed", type=int, default=1, help="draws the on-prem nodes and the spot pods")
    p.add_argument("--provisioning-delay", type=float, default=180.0, help="seconds from node request to Ready")
    p.add_argument("--scale-down-after", type=float, default=300.0, help="idle seconds before the planner's release")
    p.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    p.add_argument("--json", type=Path, help="write every figure here")
    return p


def main(argv: list[str]) -> int:
    """`gpupool bench burst [--pods CSV...] [--onprem-share S] ...`: print the table."""
    args = build_parser().parse_args(argv)
    gpu_nodes = load_nodes(args.nodes)
    cpu_nodes = [n for n in load_nodes(args.all_nodes) if n.gpus == 0] if args.all_nodes else []
    types = load_catalogue(args.catalogue)
    runs = []
    for path in args.pods:
        run = run_trace(path, gpu_nodes, cpu_nodes, types, args)
        runs.append(run)
        print(f"{path.name}: {run.seconds:.0f} s, bound {run.bound_gpu_hours:,.0f} GPU-h above on-prem", flush=True)
    print(table(runs))
    if args.json is not None:
        args.json.write_text(json.dumps([_as_json(r) for r in runs], indent=2) + "\n")
    return 0


def _entry(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - manual use
    return main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_entry())
