"""`gpupool demo`: the main job end to end on a local cluster, then hand it over.

Who calls this: `make demo` (a person at a terminal) and CI-style scripts
(`--unattended`, or `GPUPOOL_DEMO_UNATTENDED=1`, or no terminal). Steps:

1. build the control plane if needed and start it (or reuse a running one);
2. install the CRDs (generated from `gpupool.api`), create two on-prem GPU nodes and the
   teams' namespaces;
3. start the operator, and a simulated node agent for the kwok nodes, next to the cluster
   (`gpupool dev down` stops them too);
4. apply `examples/cluster.yaml` (an on-prem pool, a simulated cloud pool, two teams'
   queues, one with a budget) and `examples/jobs.yaml`;
5. show `kubectl get gpujobs,gpunodeclaims` as the jobs move: on-prem fills, the job that
   may burst gets cloud nodes, runs there and finishes;
6. wait for the idle cloud nodes to be given back, and show the queues' spend;
7. print how to carry on by hand (kubectl, and Prometheus queries), leaving everything running.

With `--real-node` the cluster also gets the real kubelet node (8 simulated GPUs,
`gpupool.devcluster.realnode`) and its node agent, and after step 6 the demo applies
`examples/realnode.yaml` (a whole-GPU job and a share whose containers really run there)
and shows, per worker, the UUIDs `status.placement` records beside the
`NVIDIA_VISIBLE_DEVICES` its container really got (`kubectl exec ... env`). It is opt-in:
it needs root and a machine where no other kubelet runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gpupool.api import crdgen
from gpupool.cluster.nodes.kwok_nodes import GpuNodeSpec
from gpupool.cluster.nodes.kwok_provider import create_gpu_node
from gpupool.devcluster.build import ensure_built, hack_dir
from gpupool.devcluster.cluster import DevCluster
from gpupool.devcluster.operator_process import start_operator, start_simulated_agent
from gpupool.devcluster.prometheus import ensure_installed as ensure_prometheus
from gpupool.devcluster.realnode import OPERATOR_ENV as REAL_NODE_OPERATOR_ENV
from gpupool.devcluster.realnode import RealNodeSpec
from gpupool.devcluster.tools import install_crds, kubectl

DEMO_NODES = (
    GpuNodeSpec(name="onprem-a100-0", gpus=8, gpu_model="A100", pool="onprem-a100", cpu="96", memory="1Ti"),
    GpuNodeSpec(name="onprem-a100-1", gpus=8, gpu_model="A100", pool="onprem-a100", cpu="96", memory="1Ti"),
)
TERMINAL = {"Succeeded", "Failed"}
DEMO_REAL_NODE = RealNodeSpec(gpu_model="L4", gpu_product="NVIDIA-L4")
"""The demo's real node: L4s, so the kwok part's A100 jobs (whose images no registry here
serves) never land on it; examples/realnode.yaml's pool and queue are L4's."""
REAL_NODE_JOBS = (("team-a", "real-pair"), ("team-b", "real-half"))
"""The GPUJobs of examples/realnode.yaml, by namespace and name."""


def _phases(kubeconfig: Path) -> dict[str, str]:
    out = kubectl(
        kubeconfig,
        "get",
        "gpujobs",
        "-A",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.status.phase}{'\\n'}{end}",
    )
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _cloud_nodes(kubeconfig: Path) -> list[str]:
    out = kubectl(kubeconfig, "get", "nodes", "-l", "gpupool.io/claim", "-o", "name")
    return out.split()


def _watch(kubeconfig: Path, unattended: bool, timeout: float) -> bool:
    """Show jobs and node claims until every job finished and the cloud nodes were given
    back; True when that happened within `timeout`."""
    deadline = time.monotonic() + timeout
    last_table = ""
    while time.monotonic() < deadline:
        table = kubectl(kubeconfig, "get", "gpujobs", "-A") + "\n" + kubectl(kubeconfig, "get", "gpunodeclaims")
        if table != last_table:
            stamp = time.strftime("%H:%M:%S")
            if not unattended:
                print("\033[2J\033[H", end="")
            print(f"--- {stamp}  kubectl get gpujobs -A; kubectl get gpunodeclaims")
            print(table, flush=True)
            last_table = table
        phases = _phases(kubeconfig)
        if phases and all(p in TERMINAL for p in phases.values()) and not _cloud_nodes(kubeconfig):
            return True
        time.sleep(2)
    return False


def main(argv: list[str]) -> int:
    """Run the demo; exit 0 when every example job finished."""
    parser = argparse.ArgumentParser(prog="gpupool demo", description=__doc__.splitlines()[0])
    parser.add_argument("--unattended", action="store_true", help="plain log output, no screen redraws")
    parser.add_argument(
        "--timeout", type=float, default=420.0, help="seconds to wait for the jobs and the cloud nodes' release"
    )
    parser.add_argument(
        "--real-node",
        action="store_true",
        help="also run the real kubelet node and show what its containers get (needs root; one kubelet per machine)",
    )
    args = parser.parse_args(argv)
    unattended = args.unattended or os.environ.get("GPUPOOL_DEMO_UNATTENDED") == "1" or not sys.stdout.isatty()

    repo = hack_dir().parent
    ensure_built()
    ensure_prometheus()
    cluster = DevCluster()
    print(f"gpupool demo: control plane in {cluster.state_dir}")
    cluster.up()
    kubeconfig = cluster.kubeconfig
    real_node = None
    if args.real_node:
        print("gpupool demo: starting the real node (kubelet, containerd, runc, simulated device plugin)")
        real_node = cluster.add_real_node(DEMO_REAL_NODE)
    print("gpupool demo: installing CRDs, nodes and namespaces")
    with tempfile.TemporaryDirectory() as folder:
        install_crds(kubeconfig, crdgen.write(Path(folder)))
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    for spec in DEMO_NODES:
        create_gpu_node(api, spec)
    for namespace in ("team-a", "team-b"):
        kubectl(kubeconfig, "apply", "-f", "-", stdin=_namespace_yaml(namespace))
    print("gpupool demo: starting the operator")
    settings = {"GPUPOOL_SCHEDULE_INTERVAL_SECONDS": "1", **(REAL_NODE_OPERATOR_ENV if real_node else {})}
    record = start_operator(cluster, settings)
    print(f"  operator ready (pid {record.pid}, log {record.log})")
    agent = start_simulated_agent(cluster)
    print(f"  simulated node agent for the kwok nodes (pid {agent.pid}, log {agent.log})")
    if real_node:
        agent = start_simulated_agent(cluster, real_node)
        print(f"  node agent for the real node {real_node} (pid {agent.pid}, log {agent.log})")
        kubectl(
            kubeconfig, "delete", "-f", str(repo / "examples" / "realnode.yaml"), "--ignore-not-found", "--wait=true"
        )
    print("gpupool demo: applying examples/cluster.yaml (pool, queues) and examples/jobs.yaml (jobs)")
    kubectl(kubeconfig, "delete", "-f", str(repo / "examples" / "jobs.yaml"), "--ignore-not-found", "--wait=true")
    kubectl(kubeconfig, "apply", "-f", str(repo / "examples" / "cluster.yaml"))
    kubectl(kubeconfig, "apply", "-f", str(repo / "examples" / "jobs.yaml"))
    finished = _watch(kubeconfig, unattended, args.timeout)
    if real_node:
        finished = _show_real_node(kubeconfig, repo / "examples" / "realnode.yaml") and finished
    print(kubectl(kubeconfig, "get", "gpupool"))
    spend = "custom-columns=QUEUE:.metadata.name,SPENT:.status.spend.amount,CLOUD:.status.spend.cloudAmount,"
    spend += "CURRENCY:.status.spend.currency,BUDGET:.spec.budget.amount"
    print(kubectl(kubeconfig, "get", "gpuqueues", "-o", spend))
    print(
        "\nThe cluster and the operator keep running. Carry on by hand:\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        "  kubectl get gpujobs -A            # or: kubectl get gj -A\n"
        "  kubectl describe gpujob -n team-b eval\n"
        "  kubectl get gpupool               # jobs, queues and pools at once\n"
        "  kubectl get nodes -L gpupool.io/gpu-model,gpupool.io/pool\n"
        "  kubectl get gpunodeclaims,gpunodepools   # cloud nodes asked for, and the pools\n"
        "  kubectl apply -f examples/jobs.yaml   # after editing it\n"
        "Stop everything with: make down"
    )
    print(_prometheus_hint(cluster.prometheus_url()))
    if not finished:
        print("gpupool demo: not every job finished in time; see the operator log above", file=sys.stderr)
        return 1
    return 0


def _show_real_node(kubeconfig: Path, manifest: Path, timeout: float = 120.0) -> bool:
    """Apply the real node's jobs and print, per worker, the GPUs gpupool records and the
    GPUs its container got; True when every worker ran and the two agree."""
    print(f"gpupool demo: applying {manifest.name} (jobs whose containers run on the real node)")
    kubectl(kubeconfig, "apply", "-f", str(manifest))
    deadline = time.monotonic() + timeout
    rows: list[RealNodeRow] = []
    while time.monotonic() < deadline:
        try:
            rows = _real_node_rows(kubeconfig)
        except RuntimeError:  # a pod not created yet
            rows = []
        if len(rows) == len(REAL_NODE_JOBS) and all(row.recorded and row.seen for row in rows):
            break
        time.sleep(2)
    for row in rows:
        print(f"  {row.job}, pod {row.pod}{f' (its GPU held by {row.reservation})' if row.reservation else ''}")
        print(f"    recorded in status.placement: {row.recorded or '(not yet)'}")
        print(f"    its container's NVIDIA_VISIBLE_DEVICES: {row.seen or '(not yet)'}")
    agree = len(rows) == len(REAL_NODE_JOBS) and all(row.recorded and row.recorded == row.seen for row in rows)
    if not agree:
        print("gpupool demo: the real node's jobs did not run with the GPUs recorded in time", file=sys.stderr)
    return agree


@dataclass(frozen=True)
class RealNodeRow:
    """One worker of the real node's jobs: what gpupool records and what its container sees
    (UUIDs, comma-separated; empty until its devices are reported and its pod runs)."""

    job: str
    pod: str
    recorded: str
    seen: str
    reservation: str


def _real_node_rows(kubeconfig: Path) -> list[RealNodeRow]:
    """A row per worker of the real node's jobs (`REAL_NODE_JOBS`)."""
    rows = []
    for namespace, name in REAL_NODE_JOBS:
        job = json.loads(kubectl(kubeconfig, "get", "gpujob", name, "-n", namespace, "-o", "json"))
        for worker in (job.get("status") or {}).get("placement") or []:
            recorded = ",".join(sorted(worker.get("gpuUUIDs") or [])) if worker.get("devices") == "Reported" else ""
            seen = ""
            phase = kubectl(kubeconfig, "get", "pod", worker["pod"], "-n", namespace, "-o", "jsonpath={.status.phase}")
            if recorded and phase == "Running":
                env = kubectl(kubeconfig, "exec", "-n", namespace, worker["pod"], "--", "env")
                told = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
                seen = ",".join(sorted(told.get("NVIDIA_VISIBLE_DEVICES", "").split(",")))
            reservation = str(worker.get("reservation") or "")
            rows.append(RealNodeRow(f"{namespace}/{name}", worker["pod"], recorded, seen, reservation))
    return rows


def _namespace_yaml(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    team: {name}\n"


def _prometheus_hint(url: str | None) -> str:
    """Where the cluster's Prometheus is and a few queries to try there."""
    if url is None:
        return ""
    queries = (
        "gpupool_queue_pending_jobs",
        "gpupool_queue_budget_spent",
        "gpupool_gpu_utilization_ratio * on(node, uuid) group_right gpupool_gpu_allocation_info",
        'up{job=~"gpupool-.*"}',
    )
    lines = [f"\nPrometheus (scraping the operator and the node agent every 2s): {url}/graph", "  queries to try:"]
    lines += [f"    {query}" for query in queries]
    lines.append(f"  or from a shell: curl -s '{url}/api/v1/query' --data-urlencode 'query=up'")
    return "\n".join(lines)
