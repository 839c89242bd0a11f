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
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from gpupool.api import crdgen
from gpupool.cluster.kwok_nodes import GpuNodeSpec
from gpupool.cluster.kwok_provider import create_gpu_node
from gpupool.devcluster.build import ensure_built, hack_dir
from gpupool.devcluster.cluster import DevCluster
from gpupool.devcluster.operator_process import start_operator, start_simulated_agent
from gpupool.devcluster.prometheus import ensure_installed as ensure_prometheus
from gpupool.devcluster.tools import install_crds, kubectl

DEMO_NODES = (
    GpuNodeSpec(name="onprem-a100-0", gpus=8, gpu_model="A100", pool="onprem-a100", cpu="96", memory="1Ti"),
    GpuNodeSpec(name="onprem-a100-1", gpus=8, gpu_model="A100", pool="onprem-a100", cpu="96", memory="1Ti"),
)
TERMINAL = {"Succeeded", "Failed"}


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
    args = parser.parse_args(argv)
    unattended = args.unattended or os.environ.get("GPUPOOL_DEMO_UNATTENDED") == "1" or not sys.stdout.isatty()

    repo = hack_dir().parent
    ensure_built()
    ensure_prometheus()
    cluster = DevCluster()
    print(f"gpupool demo: control plane in {cluster.state_dir}")
    cluster.up()
    kubeconfig = cluster.kubeconfig
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
    record = start_operator(cluster, {"GPUPOOL_SCHEDULE_INTERVAL_SECONDS": "1"})
    print(f"  operator ready (pid {record.pid}, log {record.log})")
    agent = start_simulated_agent(cluster)
    print(f"  simulated node agent for the kwok nodes (pid {agent.pid}, log {agent.log})")
    print("gpupool demo: applying examples/cluster.yaml (pool, queues) and examples/jobs.yaml (jobs)")
    kubectl(kubeconfig, "delete", "-f", str(repo / "examples" / "jobs.yaml"), "--ignore-not-found", "--wait=true")
    kubectl(kubeconfig, "apply", "-f", str(repo / "examples" / "cluster.yaml"))
    kubectl(kubeconfig, "apply", "-f", str(repo / "examples" / "jobs.yaml"))
    finished = _watch(kubeconfig, unattended, args.timeout)
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
