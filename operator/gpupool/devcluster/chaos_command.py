"""`gpupool chaos crash|outage|nodes`: the chaos runs of `devcluster/chaos.py` on a private control plane.

Who calls this: `gpupool.cli` dispatches `gpupool chaos ACTION ARGS` to `main(ACTION, ARGS)`;
people refresh docs/reliability.md with it. Like `gpupool bench e2e`, it starts a DevCluster
in a temporary folder (no Prometheus), installs the CRDs, runs the operator as a child
process (`GPUPOOL_*` variables set around this command reach it), and stops everything at
the end, also on an error or Ctrl-C.

    gpupool chaos crash [--jobs 2000] [--kills 5] [--seed 1] [--nodes N] [--timeout S] [--json FILE]
    gpupool chaos outage [--component kube-apiserver|etcd] [--seconds 30] [--jobs 12] [--seed 1] ...
    gpupool chaos nodes [--jobs 400] [--lose 3] [--failure-rate 0.3] [--seed 1] [--nodes N] ...

Progress (and every check's summary) goes to stderr, the table to stdout. Exit 0 when the run
found no violation, 1 when it found one or could not run, 2 on bad flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from gpupool.devcluster.build import BuildError, ensure_built, hack_dir
from gpupool.devcluster.chaos import (
    Chaos,
    CrashFigures,
    NodeLossFigures,
    OutageFigures,
    RunFigures,
    format_crash,
    format_node_loss,
    format_outage,
    run_crash,
    run_node_loss,
    run_outage,
)
from gpupool.devcluster.chaos_workload import CLOUD_MAX_NODES, GPUS_PER_NODE, World
from gpupool.devcluster.cluster import DevCluster, ProcessRecord, free_port, pid_alive
from gpupool.devcluster.operator_process import start_operator
from gpupool.devcluster.tools import install_crds

NAMESPACE = "gpupool-chaos"
MODEL = "CHAOS1"
COMPONENTS = ("kube-apiserver", "etcd")


def _say(message: str) -> None:
    print(f"gpupool chaos: {message}", file=sys.stderr, flush=True)


class ClusterOperator:
    """The operator as an extra of a DevCluster (`start_operator`), killed by its pid."""

    def __init__(self, cluster: DevCluster, env: dict[str, str] | None = None) -> None:
        self.cluster = cluster
        self.port = free_port()
        self.env = {**(env or {}), "GPUPOOL_HEALTH_PORT": str(self.port)}
        self.record: ProcessRecord | None = None

    def start(self) -> None:
        self.record = start_operator(self.cluster, env=self.env)

    def kill(self) -> None:
        assert self.record is not None
        if pid_alive(self.record):
            os.kill(self.record.pid, signal.SIGKILL)
        while pid_alive(self.record):
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.record is not None and pid_alive(self.record)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=3) as response:
                return bool(response.status == 200)
        except OSError:
            return False


def build_parser(action: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"gpupool chaos {action}", description=__doc__.splitlines()[0])
    crash = action == "crash"
    jobs = {"crash": 2000, "outage": 12, "nodes": 400}[action]
    p.add_argument("--jobs", type=int, default=jobs, help="GPUJobs in the workload")
    p.add_argument("--seed", type=int, default=1, help="seeds the workload and the kill moments")
    p.add_argument("--nodes", type=int, default=None, help="on-prem kwok nodes of 8 GPUs (default: from --jobs)")
    p.add_argument("--timeout", type=float, default=None, help="seconds the run may take (default: from --jobs)")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.add_argument("--keep-logs", action="store_true", help="keep the private cluster's folder (component logs)")
    if crash:
        p.add_argument("--kills", type=int, default=5, help="times the operator is SIGKILLed and restarted")
    elif action == "nodes":
        p.add_argument("--lose", type=int, default=3, help="on-prem nodes taken away (every cloud node goes too)")
        p.add_argument("--failure-rate", type=float, default=0.3, help="fraction of cloud node launches that fail")
    else:
        p.add_argument("--component", choices=COMPONENTS, default="kube-apiserver", help="what to stop")
        p.add_argument("--seconds", type=float, default=30.0, help="how long it stays stopped")
    return p


def default_nodes(jobs: int) -> int:
    """Enough on-prem nodes that the workload drains in minutes: about one per 40 jobs, 2 to 16."""
    return max(2, min(16, jobs // 40))


def run(action: str, args: argparse.Namespace, cluster: DevCluster) -> RunFigures:
    """Start `cluster`, set up the world, run; the caller stops the cluster."""
    from kubernetes import config

    _say(f"starting a private control plane in {cluster.state_dir}")
    cluster.up(progress=lambda _msg: None)
    install_crds(cluster.kubeconfig, sorted((hack_dir().parent / "crds").glob("*.yaml")))
    api_client = config.new_client_from_config(str(cluster.kubeconfig))
    api_client.configuration.connection_pool_maxsize = 16
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    world = World(MODEL, NAMESPACE, args.nodes or default_nodes(args.jobs))
    chaos = Chaos(api_client, world, _say)
    _say(f"creating {world.nodes} nodes of {GPUS_PER_NODE} GPUs, two pools, three queues")
    chaos.setup()
    failure_rate = getattr(args, "failure_rate", 0.0)
    operator = ClusterOperator(cluster, {"GPUPOOL_KWOK_FAILURE_RATE": str(failure_rate)} if failure_rate else None)
    operator.start()
    timeout = args.timeout or 600.0 + 2.0 * args.jobs
    if action == "nodes":
        return run_node_loss(
            chaos,
            operator,
            jobs=args.jobs,
            lose=args.lose,
            seed=args.seed,
            timeout=timeout,
            failure_rate=failure_rate,
            cloud_max_nodes=CLOUD_MAX_NODES,
        )
    if action == "crash":
        return run_crash(chaos, operator, jobs=args.jobs, kills=args.kills, seed=args.seed, timeout=timeout)
    return run_outage(
        chaos,
        operator,
        cluster,
        component=args.component,
        seconds=args.seconds,
        jobs=args.jobs,
        seed=args.seed,
        timeout=timeout,
    )


def main(action: str, argv: list[str]) -> int:
    """Run one chaos action; see the module docstring for the exit codes."""
    args = build_parser(action).parse_args(argv)
    bad = (
        args.jobs < 1
        or (action == "crash" and args.kills < 0)
        or (action == "outage" and args.seconds <= 0)
        or (action == "nodes" and (args.lose < 1 or not 0 <= args.failure_rate < 1))
    )
    if bad:
        print(
            f"gpupool chaos {action}: --jobs must be > 0, --kills >= 0, --seconds > 0, --lose >= 1, "
            "0 <= --failure-rate < 1",
            file=sys.stderr,
        )
        return 2
    try:
        ensure_built(progress=_say)
    except BuildError as error:
        print(f"gpupool chaos: {error}", file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="gpupool-chaos-"))
    cluster = DevCluster(folder / "state", with_prometheus=False)
    figures: RunFigures | None = None
    try:
        figures = run(action, args, cluster)
    except KeyboardInterrupt:
        _say("interrupted")
    except Exception as error:  # a ClusterError, a timeout or an ApiException: say it, then clean up
        _say(f"failed: {type(error).__name__}: {error}")
    finally:
        cluster.down(progress=lambda _msg: None)
        if args.keep_logs:
            _say(f"logs kept in {cluster.logs}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if figures is None:
        return 1
    if isinstance(figures, CrashFigures):
        print(format_crash(figures))
    elif isinstance(figures, NodeLossFigures):
        print(format_node_loss(figures))
    elif isinstance(figures, OutageFigures):
        print(format_outage(figures))
    for line in figures.tally.violations:
        print(f"  {line}")
    if args.json:
        body = {**dataclasses.asdict(figures), "violations": figures.tally.violations}
        body.pop("tally", None)
        args.json.write_text(json.dumps(body, indent=2) + "\n")
    return 0 if figures.ok else 1
