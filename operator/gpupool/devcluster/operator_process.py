"""Run `gpupool operator run` (and, for the demo, a simulated node agent) next to a dev
cluster, as the cluster's extras.

Who calls this: the demo, `gpupool bench e2e` and `gpupool chaos`. The operator is recorded in the
cluster's state, so `DevCluster.down` (and `gpupool dev down`) stops it with the control
plane. It gets a free loopback health port, and this returns once `/readyz` answers. It
also gets a free metrics port (`GPUPOOL_METRICS_PORT`, unless `env` sets one), registered
as the cluster Prometheus' only `gpupool-operator` target.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Mapping

from gpupool.devcluster.cluster import ClusterError, DevCluster, ProcessRecord, free_port, pid_alive
from gpupool.devcluster.prometheus import (
    AGENT_JOB,
    OPERATOR_JOB,
    register_scrape_target,
    scrape_targets,
    unregister_scrape_target,
)
from gpupool.devcluster.realnode import RealNodeLayout

OPERATOR_EXTRA = "gpupool-operator"
AGENT_EXTRA = "gpupool-agent"


def start_operator(
    cluster: DevCluster, env: Mapping[str, str] | None = None, wait_seconds: float = 60.0
) -> ProcessRecord:
    """Start the operator against `cluster` with `env` over this environment; wait until ready."""
    port = free_port()
    full_env = {
        **os.environ,
        "GPUPOOL_HEALTH_HOST": "127.0.0.1",
        "GPUPOOL_HEALTH_PORT": str(port),
        # A free loopback port too, so two operators (or a busy 8081) never collide.
        "GPUPOOL_METRICS_HOST": "127.0.0.1",
        "GPUPOOL_METRICS_PORT": str(free_port()),
        **(env or {}),
    }
    port = int(full_env["GPUPOOL_HEALTH_PORT"])  # `env` may choose it (gpupool chaos probes /healthz)
    argv = [sys.executable, "-m", "gpupool.cli", "operator", "run", "--kubeconfig", str(cluster.kubeconfig)]
    record = cluster.start_extra(OPERATOR_EXTRA, argv, full_env)
    # start_extra stopped any earlier operator of this cluster: its target goes with it.
    for old in scrape_targets(cluster.state_dir, OPERATOR_JOB):
        unregister_scrape_target(cluster.state_dir, OPERATOR_JOB, old)
    register_scrape_target(cluster.state_dir, OPERATOR_JOB, f"127.0.0.1:{full_env['GPUPOOL_METRICS_PORT']}")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if not pid_alive(record):
            raise ClusterError(f"the operator exited during start-up; see {record.log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return record
        except OSError:
            pass
        time.sleep(0.3)
    raise ClusterError(f"the operator did not become ready in {wait_seconds:g}s; see {record.log}")


def start_simulated_agent(cluster: DevCluster, node: str | None = None) -> ProcessRecord:
    """Start one simulated node agent for every kwok node of `cluster` (as the demo does), or
    with `node` for that one node, the real node: that agent also publishes the kubelet's
    PodResources report (`gpupool.io/pod-devices`). Recorded like the operator so `gpupool
    dev down` stops it, and registered as a Prometheus `gpupool-agent` target (the kwok
    agent as the only one of its kind: an earlier one's target goes)."""
    port = free_port()
    env = {**os.environ, "GPUPOOL_AGENT_HOST": "127.0.0.1"}
    argv = [sys.executable, "-m", "gpupool.cli", "agent", "run", "--backend", "simulated"]
    if node is None:
        argv.append("--all-kwok-nodes")
    else:
        socket_path = RealNodeLayout(cluster.state_dir).pod_resources_socket
        argv += ["--node", node, "--pod-resources-socket", str(socket_path)]
    argv += ["--kubeconfig", str(cluster.kubeconfig), "--port", str(port)]
    record = cluster.start_extra(AGENT_EXTRA if node is None else f"{AGENT_EXTRA}-{node}", argv, env)
    if node is None:
        for old in scrape_targets(cluster.state_dir, AGENT_JOB):
            unregister_scrape_target(cluster.state_dir, AGENT_JOB, old)
    register_scrape_target(cluster.state_dir, AGENT_JOB, f"127.0.0.1:{port}")
    return record
