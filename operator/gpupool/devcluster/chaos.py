"""The chaos runs: a mixed workload on a real control plane while the operator is SIGKILLed
(`crash`) or a control-plane component is stopped (`outage`), checked by the independent
invariant checker (`devcluster/checker.py`) after every restart and at the end.

Who calls this: `gpupool chaos crash|outage` (`devcluster/chaos_command.py`, on a private
cluster) and `tests/integration/test_chaos.py` (on the session cluster). Both hand in how to
kill and start their operator (`OperatorControl`) and, for an outage, the `DevCluster`.

A run's world and workload come from `chaos_workload.py` (seeded). Each violation found is
counted once per run, however many checks see it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from gpupool.cluster.kube.writer import drain
from gpupool.cluster.nodes.kwok_nodes import GpuNodeSpec
from gpupool.cluster.nodes.kwok_provider import create_gpu_node
from gpupool.devcluster.chaos_workload import JobPlan, World, kill_points, workload
from gpupool.devcluster.checker import FINISHED_PHASES, HOLDING_PHASES, CheckReport, Violation, check_cluster

GROUP, VERSION = "gpupool.io", "v1alpha1"
POLL_SECONDS = 1.0
# A Kubernetes liveness probe's defaults: every 10 s, restart after 3 failures in a row.
LIVENESS_FAILURE_S = 30.0

Say = Callable[[str], None]


class OperatorControl(Protocol):
    """How a run kills and starts its operator, and asks whether it lives."""

    def kill(self) -> None:
        """SIGKILL the operator and wait until it is gone."""

    def start(self) -> None:
        """Start the operator and wait until it is ready."""

    def alive(self) -> bool:
        """The process still runs."""

    def healthy(self) -> bool:
        """Its /healthz answers 200."""


class Components(Protocol):
    """The part of `DevCluster` an outage uses."""

    def stop_component(self, name: str, timeout: float = ...) -> bool: ...

    def start_component(self, name: str, wait_seconds: float = ...) -> Any: ...


@dataclass
class Tally:
    """Violations over a run's checks, each (kind, subject) counted once."""

    checks: int = 0
    seen: dict[tuple[str, str], Violation] = field(default_factory=dict)

    def add(self, report: CheckReport) -> None:
        self.checks += 1
        for violation in report.violations:
            self.seen.setdefault((violation.kind, violation.subject), violation)

    def count(self, *kinds: str) -> int:
        return sum(1 for kind, _ in self.seen if kind in kinds)

    @property
    def violations(self) -> list[str]:
        return [str(v) for v in self.seen.values()]


@dataclass
class RunFigures:
    """What every chaos run reports."""

    jobs: int
    seed: int
    finished: int = 0
    failed: int = 0
    rerun_jobs: int = 0
    cloud_jobs: int = 0
    operator_restarts: int = 0
    wall_s: float = 0.0
    tally: Tally = field(default_factory=Tally)

    @property
    def lost(self) -> int:
        return self.tally.count("lost", "unfinished")

    @property
    def duplicates(self) -> int:
        return self.tally.count("duplicate")

    @property
    def over_allocations(self) -> int:
        return self.tally.count("over-allocated", "gpu-shared")

    @property
    def cost_violations(self) -> int:
        return self.tally.count("cost")

    @property
    def ok(self) -> bool:
        return not self.tally.seen


@dataclass
class CrashFigures(RunFigures):
    kills: int = 0


@dataclass
class OutageFigures(RunFigures):
    component: str = ""
    outage_s: float = 0.0
    operator: str = ""


def _row(header: Iterable[str], row: Iterable[str]) -> str:
    head, cells = list(header), list(row)
    return "\n".join(
        ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|", "| " + " | ".join(cells) + " |"]
    )


def _common(f: RunFigures) -> list[str]:
    return [
        str(f.jobs),
        f"{f.finished} ({f.failed} failed)",
        str(f.rerun_jobs),
        str(f.cloud_jobs),
        str(f.lost),
        str(f.duplicates),
        str(f.over_allocations),
        str(f.cost_violations),
        str(f.tally.checks),
        f"{f.wall_s:.0f}",
    ]


COMMON_HEADER = [
    "jobs",
    "finished",
    "jobs run again",
    "jobs on cloud",
    "lost",
    "duplicates",
    "over-allocations",
    "cost-once violations",
    "checks",
    "wall (s)",
]


def format_crash(f: CrashFigures) -> str:
    """A one-row Markdown table of a crash run."""
    return _row(["kills", "seed", *COMMON_HEADER], [str(f.kills), str(f.seed), *_common(f)])


def format_outage(f: OutageFigures) -> str:
    """A one-row Markdown table of an outage run."""
    header = ["component", "outage (s)", "operator", "seed", *COMMON_HEADER]
    return _row(header, [f.component, f"{f.outage_s:.0f}", f.operator, str(f.seed), *_common(f)])


class Chaos:
    """One run's world on a cluster: set it up, submit jobs, watch phases, check, tear down."""

    def __init__(self, api_client: Any, world: World, say: Say) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core: Any = client.CoreV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.world = world
        self.say = say

    def setup(self, timeout: float = 120.0) -> None:
        """The on-prem nodes (waited for until Ready), both pools and the three queues."""
        world = self.world
        for name in world.node_names:
            create_gpu_node(self.core, GpuNodeSpec(name=name, gpus=8, gpu_model=world.model, pool=world.onprem_pool))
        deadline = time.monotonic() + timeout
        while not self._nodes_ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world.nodes} chaos nodes were not Ready in {timeout:.0f}s")
            time.sleep(0.5)
        for body in [*world.pool_manifests(), *world.queue_manifests()]:
            plural = "gpunodepools" if body["kind"] == "GPUNodePool" else "gpuqueues"
            drain(self.custom.create_cluster_custom_object(GROUP, VERSION, plural, body, _preload_content=False))

    def _nodes_ready(self) -> bool:
        from gpupool.devcluster.bench_support import node_ready

        selector = f"gpupool.io/pool={self.world.onprem_pool}"
        nodes = json.loads(self.core.list_node(label_selector=selector, _preload_content=False).data)["items"]
        return len(nodes) == self.world.nodes and all(node_ready(n) for n in nodes)

    def teardown(self) -> None:
        """Delete the run's jobs, queues, pools and nodes (best effort: a shared cluster
        stays usable)."""
        world, custom = self.world, self.custom
        pools = (world.onprem_pool, world.cloud_pool)
        calls: list[Callable[[], object]] = [
            partial(custom.delete_collection_namespaced_custom_object, GROUP, VERSION, world.namespace, "gpujobs"),
            *(partial(custom.delete_cluster_custom_object, GROUP, VERSION, "gpuqueues", q) for q in world.queues),
            *(partial(custom.delete_cluster_custom_object, GROUP, VERSION, "gpunodepools", p) for p in pools),
            *(partial(self.core.delete_collection_node, label_selector=f"gpupool.io/pool={p}") for p in pools),
        ]
        for call in calls:
            try:
                call()
            except Exception as error:  # cleanup goes on: the run's figures are what matter
                self.say(f"cleanup: {type(error).__name__}: {error}")

    def submit(self, plans: list[JobPlan], threads: int = 8) -> list[str]:
        """Create every job (in parallel); their `namespace/name`s."""

        def create(plan: JobPlan) -> str:
            body = plan.manifest(self.world)
            drain(
                self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.world.namespace, "gpujobs", body, _preload_content=False
                )
            )
            return f"{self.world.namespace}/{plan.name}"

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chaos-submit") as pool:
            return list(pool.map(create, plans))

    def jobs(self) -> list[dict[str, Any]] | None:
        """The run's GPUJobs as JSON, or None while the API server does not answer."""
        try:
            response = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.world.namespace, "gpujobs", _preload_content=False, _request_timeout=10
            )
            items: list[dict[str, Any]] = json.loads(response.data)["items"]
            return items
        except Exception:  # any failure means "not now" to a poller
            return None

    def count(self, phases: frozenset[str]) -> int | None:
        jobs = self.jobs()
        if jobs is None:
            return None
        return sum(1 for job in jobs if (job.get("status") or {}).get("phase") in phases)

    def check(self, tally: Tally, *, expected: Sequence[str] = (), final: bool = False) -> CheckReport:
        """Run the checker over the API server now and add what it found to `tally`."""
        report = check_cluster(self.api_client, self.world.namespace, expected=expected, expect_finished=final)
        tally.add(report)
        self.say(f"check {tally.checks}: {report.summary()}")
        return report

    def fill_outcome(self, figures: RunFigures) -> None:
        """Finished, failed, run-again and cloud job counts from the jobs' final status."""
        jobs = self.jobs() or []
        statuses = [job.get("status") or {} for job in jobs]
        figures.finished = sum(1 for s in statuses if s.get("phase") in FINISHED_PHASES)
        figures.failed = sum(1 for s in statuses if s.get("phase") == "Failed")
        figures.rerun_jobs = sum(1 for s in statuses if int(s.get("attempts") or 0) > 1)
        cloud = self.world.cloud_pool
        figures.cloud_jobs = sum(
            1
            for s in statuses
            if any(
                w.get("pool") == cloud
                for a in (s.get("provenance") or {}).get("attempts") or []
                for w in a.get("workers") or []
            )
        )

    def wait_count(
        self, phases: frozenset[str], target: int, timeout: float, operator: OperatorControl, figures: RunFigures
    ) -> bool:
        """Poll until `target` jobs are in `phases`; an operator that died meanwhile is started
        again (counted), as its Deployment would. False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.count(phases)
            if done is not None and done >= target:
                return True
            if not operator.alive():
                self.say("the operator exited on its own; starting it again")
                figures.operator_restarts += 1
                operator.start()
            time.sleep(POLL_SECONDS)
        return False


def run_crash(
    chaos: Chaos,
    operator: OperatorControl,
    *,
    jobs: int,
    kills: int,
    seed: int,
    timeout: float,
    duration_scale: float = 1.0,
) -> CrashFigures:
    """Submit the workload, SIGKILL and restart the operator at the seeded moments, checking
    after each restart, then wait for every job to finish and check once more."""
    figures = CrashFigures(jobs=jobs, seed=seed)
    began = time.monotonic()
    deadline = began + timeout
    chaos.say(f"submitting {jobs} jobs (seed {seed})")
    expected = chaos.submit(workload(jobs, seed, duration_scale))
    for point in kill_points(kills, jobs, seed):
        if not chaos.wait_count(FINISHED_PHASES, point.finished, deadline - time.monotonic(), operator, figures):
            chaos.say(f"timed out before {point.finished} jobs finished; no more kills")
            break
        time.sleep(point.delay_s)
        running = chaos.count(HOLDING_PHASES)
        chaos.say(f"kill {figures.kills + 1}: SIGKILL with {running} jobs holding GPUs")
        operator.kill()
        figures.kills += 1
        operator.start()
        chaos.check(figures.tally, expected=expected)
    chaos.wait_count(FINISHED_PHASES, jobs, deadline - time.monotonic(), operator, figures)
    chaos.check(figures.tally, expected=expected, final=True)
    figures.wall_s = time.monotonic() - began
    chaos.fill_outcome(figures)
    return figures


def run_outage(
    chaos: Chaos,
    operator: OperatorControl,
    cluster: Components,
    *,
    component: str,
    seconds: float,
    jobs: int,
    seed: int,
    timeout: float,
) -> OutageFigures:
    """Submit the workload; once a third of it holds GPUs or finished, stop `component` for
    `seconds`, then start it again. Meanwhile the operator may keep running or exit; after the
    outage a liveness probe's rule applies: an exited operator, or one whose /healthz fails
    for `LIVENESS_FAILURE_S`, is (killed and) started again. Every job must finish."""
    figures = OutageFigures(jobs=jobs, seed=seed, component=component)
    began = time.monotonic()
    deadline = began + timeout
    expected = chaos.submit(workload(jobs, seed, duration_scale=2.0))
    chaos.wait_count(HOLDING_PHASES | FINISHED_PHASES, max(1, jobs // 3), 120, operator, figures)
    chaos.check(figures.tally, expected=expected)
    chaos.say(f"stopping {component} for {seconds:g}s")
    cluster.stop_component(component)
    stopped = time.monotonic()
    exited_at: float | None = None
    while time.monotonic() < stopped + seconds:
        if exited_at is None and not operator.alive():
            exited_at = time.monotonic() - stopped
            chaos.say(f"the operator exited {exited_at:.1f}s into the outage")
        time.sleep(0.5)
    cluster.start_component(component)
    figures.outage_s = time.monotonic() - stopped  # until it answers its health check again
    chaos.say(f"{component} is back after {figures.outage_s:.1f}s")
    unhealthy_since: float | None = None
    killed_unhealthy = 0
    while time.monotonic() < deadline:
        done = chaos.count(FINISHED_PHASES)
        if done is not None and done >= jobs:
            break
        if not operator.alive():
            if exited_at is None:
                exited_at = time.monotonic() - stopped
            figures.operator_restarts += 1
            chaos.say("the operator is not running; starting it (as a Deployment would)")
            operator.start()
            unhealthy_since = None
        elif not operator.healthy():
            unhealthy_since = unhealthy_since or time.monotonic()
            if time.monotonic() - unhealthy_since > LIVENESS_FAILURE_S:
                chaos.say(f"/healthz failing for {LIVENESS_FAILURE_S:.0f}s: restarting the operator (liveness probe)")
                operator.kill()
                operator.start()
                killed_unhealthy += 1
                figures.operator_restarts += 1
                unhealthy_since = None
        else:
            unhealthy_since = None
        time.sleep(POLL_SECONDS)
    chaos.check(figures.tally, expected=expected, final=True)
    figures.wall_s = time.monotonic() - began
    chaos.fill_outcome(figures)
    if exited_at is None and not killed_unhealthy:
        figures.operator = "kept running"
    elif killed_unhealthy:
        figures.operator = f"unhealthy, restarted by the liveness rule x{killed_unhealthy}"
    else:
        figures.operator = f"exited after {exited_at:.0f}s, restarted x{figures.operator_restarts}"
    return figures


@dataclass
class NodeLossFigures(RunFigures):
    """A node-loss run: nodes taken away mid-run, how fast their gangs were requeued, and
    whether failing launches made the cloud pool run away."""

    failure_rate: float = 0.0
    nodes_lost: int = 0
    cloud_nodes_lost: int = 0
    jobs_hit: int = 0
    requeued: int = 0
    requeue_p50_s: float | None = None
    requeue_max_s: float | None = None
    claims_made: int = 0
    claims_failed: int = 0
    max_cloud_nodes: int = 0
    cloud_max_nodes: int = 0


def format_node_loss(f: NodeLossFigures) -> str:
    """A one-row Markdown table of a node-loss run."""

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    header = [
        "nodes lost (cloud)", "jobs hit", "requeued", "requeue p50 / max (s)", "launch failure rate",
        "claims (failed)", "most cloud nodes / maxNodes", "seed", *COMMON_HEADER,
    ]  # fmt: skip
    row = [
        f"{f.nodes_lost} ({f.cloud_nodes_lost})", str(f.jobs_hit), str(f.requeued),
        f"{seconds(f.requeue_p50_s)} / {seconds(f.requeue_max_s)}", f"{f.failure_rate:g}",
        f"{f.claims_made} ({f.claims_failed})", f"{f.max_cloud_nodes} / {f.cloud_max_nodes}", str(f.seed), *_common(f),
    ]  # fmt: skip
    return _row(header, row)


def nodes_of(job: dict[str, Any]) -> set[str]:
    """The nodes a job's current placement names."""
    return {str(p.get("node")) for p in (job.get("status") or {}).get("placement") or []}


def requeued(job: dict[str, Any], lost: set[str]) -> bool:
    """A job hit by a node loss counts as requeued once it no longer holds GPUs on a lost node:
    back in the queue, admitted elsewhere, or finished."""
    status = job.get("status") or {}
    return status.get("phase") not in HOLDING_PHASES or not (nodes_of(job) & lost)


class NodeLossRun:
    """The sampling side of `run_node_loss`: which jobs the loss hit and when each was
    requeued, and the cloud pool's claims and nodes over the run."""

    def __init__(self, chaos: Chaos, figures: NodeLossFigures) -> None:
        self.chaos = chaos
        self.figures = figures
        self.claims_seen: set[str] = set()
        self.claims_failed: set[str] = set()
        self.lost_at = 0.0
        self.lost: set[str] = set()
        self.waiting: set[str] = set()
        self.delays: list[float] = []

    def sample(self) -> list[dict[str, Any]] | None:
        """Read jobs, claims and cloud nodes once; mark the hit jobs requeued by now."""
        chaos, world = self.chaos, self.chaos.world
        try:
            claims = json.loads(
                chaos.custom.list_cluster_custom_object(GROUP, VERSION, "gpunodeclaims", _preload_content=False).data
            )["items"]
            selector = f"gpupool.io/pool={world.cloud_pool}"
            cloud = json.loads(chaos.core.list_node(label_selector=selector, _preload_content=False).data)["items"]
        except Exception:  # a sample missed is a sample missed
            return None
        for claim in claims:
            if (claim.get("spec") or {}).get("pool") != world.cloud_pool:
                continue
            self.claims_seen.add(claim["metadata"]["name"])
            if (claim.get("status") or {}).get("phase") == "Failed":
                self.claims_failed.add(claim["metadata"]["name"])
        self.figures.max_cloud_nodes = max(self.figures.max_cloud_nodes, len(cloud))
        jobs = chaos.jobs()
        if jobs is not None and self.waiting:
            now = time.monotonic()
            for job in jobs:
                name = job["metadata"]["name"]
                if name in self.waiting and requeued(job, self.lost):
                    self.waiting.discard(name)
                    self.delays.append(now - self.lost_at)
        return jobs

    def take_away(self, jobs: list[dict[str, Any]], onprem: list[str], cloud: list[str]) -> None:
        """Delete the nodes (a spot reclaim or a dead machine) and note the jobs they held."""
        self.lost = set(onprem) | set(cloud)
        self.waiting = {
            job["metadata"]["name"]
            for job in jobs
            if (job.get("status") or {}).get("phase") in HOLDING_PHASES and nodes_of(job) & self.lost
        }
        self.figures.jobs_hit = len(self.waiting)
        self.lost_at = time.monotonic()
        for node in sorted(self.lost):
            try:
                self.chaos.core.delete_node(node, _preload_content=False)
            except Exception as error:  # already gone: the operator may have released it
                self.chaos.say(f"delete node {node}: {type(error).__name__}")
        self.figures.nodes_lost, self.figures.cloud_nodes_lost = len(self.lost), len(cloud)

    def finish(self) -> None:
        figures = self.figures
        figures.requeued = len(self.delays)
        figures.requeue_p50_s = float(sorted(self.delays)[len(self.delays) // 2]) if self.delays else None
        figures.requeue_max_s = max(self.delays, default=None)
        figures.claims_made, figures.claims_failed = len(self.claims_seen), len(self.claims_failed)


def run_node_loss(
    chaos: Chaos,
    operator: OperatorControl,
    *,
    jobs: int,
    lose: int,
    seed: int,
    timeout: float,
    failure_rate: float,
    cloud_max_nodes: int,
) -> NodeLossFigures:
    """Submit the workload (jobs run longer, so many hold GPUs); once a third of it holds GPUs
    or finished, take away `lose` on-prem nodes picked by `seed` and every cloud node there is,
    at once. Measure how soon each job they held no longer holds GPUs there, watch the cloud
    pool's claims and nodes (its launches fail at `failure_rate`, set on the operator), and
    check at the end that every job finished with nothing lost, duplicated or double-booked."""
    import random

    figures = NodeLossFigures(jobs=jobs, seed=seed, failure_rate=failure_rate, cloud_max_nodes=cloud_max_nodes)
    run = NodeLossRun(chaos, figures)
    began = time.monotonic()
    deadline = began + timeout
    expected = chaos.submit(workload(jobs, seed, duration_scale=4.0))
    target = max(1, jobs // 3)
    current: list[dict[str, Any]] | None = None
    while time.monotonic() < deadline:
        current = run.sample()
        holding = sum(1 for j in current or [] if (j.get("status") or {}).get("phase") in HOLDING_PHASES)
        done = sum(1 for j in current or [] if (j.get("status") or {}).get("phase") in FINISHED_PHASES)
        if current is not None and holding + done >= target and holding > 0:
            break
        time.sleep(0.5)
    chaos.check(figures.tally, expected=expected)
    onprem = random.Random(seed).sample(chaos.world.node_names, min(lose, chaos.world.nodes - 1))
    selector = f"gpupool.io/pool={chaos.world.cloud_pool}"
    listed_cloud = json.loads(chaos.core.list_node(label_selector=selector, _preload_content=False).data)["items"]
    cloud = sorted(node["metadata"]["name"] for node in listed_cloud)
    chaos.say(f"taking away {len(onprem)} on-prem and {len(cloud)} cloud nodes")
    run.take_away(current or [], onprem, cloud)
    while time.monotonic() < deadline:
        listed = run.sample()
        done = sum(1 for j in listed or [] if (j.get("status") or {}).get("phase") in FINISHED_PHASES)
        if listed is not None and done >= jobs and not run.waiting:
            break
        if not operator.alive():
            figures.operator_restarts += 1
            operator.start()
        time.sleep(0.5)
    run.finish()
    chaos.check(figures.tally, expected=expected, final=True)
    figures.wall_s = time.monotonic() - began
    chaos.fill_outcome(figures)
    return figures
