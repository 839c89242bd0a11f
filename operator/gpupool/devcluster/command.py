"""`gpupool dev build|up|down|status|nodes|interrupt`: the local control plane from a shell.

`interrupt NODE` takes a node away at once, as a cloud's spot reclaim does (the Kwok
provider's `interrupt`), so the operator's handling of lost nodes can be watched.

`build` also installs Prometheus (Debian's package) when it is not on PATH; `up` starts
it with the control plane and prints its URL; `status` lists it with the other processes.

Who calls this: `gpupool.cli` (and through it the Makefile and the demo). `up` prints a
line `export KUBECONFIG=<path>` that scripts grep for; keep that line's format.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpupool.devcluster.build import BuildError, ensure_built
from gpupool.devcluster.cluster import ClusterError, DevCluster
from gpupool.devcluster.node_images import TOOLBOX_IMAGE
from gpupool.devcluster.prometheus import PrometheusError, ensure_installed
from gpupool.devcluster.realnode import LABEL_NODE_KIND, RealNodeSpec


def _parser(action: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"gpupool dev {action}")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="folder for this cluster's certificates, data, logs and kubeconfig "
        "(default: $GPUPOOL_DEV_STATE_DIR or ~/.local/state/gpupool/dev)",
    )
    if action == "nodes":
        parser.add_argument("--count", type=int, default=2, help="how many nodes to create")
        parser.add_argument("--prefix", default="gpu-node", help="node name prefix")
        parser.add_argument("--gpus", type=int, default=8, help="GPUs per node")
        parser.add_argument("--model", default="A100", help="GPU model label")
        parser.add_argument("--pool", default="onprem", help="pool label")
        parser.add_argument("--node-class", default="OnPrem", choices=["OnPrem", "Cloud"])
        parser.add_argument("--cpu", default="64")
        parser.add_argument("--memory", default="512Gi")
    if action == "up":
        parser.add_argument(
            "--real-node",
            action="store_true",
            help="also start a real node (kubelet, containerd, runc) with simulated GPUs behind gpupool's "
            "device plugin, labelled gpupool.io/node-kind=real; its pods use image local/toolbox:1 "
            "(imagePullPolicy: Never) and hostNetwork: true",
        )
        parser.add_argument("--real-node-gpus", type=int, default=8, help="simulated GPUs on the real node")
    if action == "interrupt":
        parser.add_argument("node", help="the node to take away (as a spot interruption does)")
    return parser


def main(action: str, argv: list[str]) -> int:
    """Run one `gpupool dev` action; errors print a sentence and exit 1."""
    args = _parser(action).parse_args(argv)
    cluster = DevCluster(args.state_dir)
    try:
        if action == "build":
            ensure_built()
            print("gpupool dev: control-plane binaries are built")
            print(f"gpupool dev: prometheus is {ensure_installed()}")
            return 0
        if action == "up":
            return _up(cluster, args.real_node_gpus if args.real_node else None)
        if action == "down":
            stopped = cluster.down()
            print(f"gpupool dev: stopped {stopped} process(es)")
            return 0
        if action == "status":
            return _status(cluster)
        if action == "nodes":
            return _nodes(cluster, args)
        if action == "interrupt":
            return _interrupt(cluster, args.node)
    except (BuildError, ClusterError, PrometheusError) as error:
        print(f"gpupool dev {action}: {error}", file=sys.stderr)
        return 1
    raise AssertionError(f"unknown action {action}")


def _up(cluster: DevCluster, real_node_gpus: int | None) -> int:
    if real_node_gpus is not None and not 1 <= real_node_gpus <= 64:
        print("gpupool dev up: --real-node-gpus must be between 1 and 64", file=sys.stderr)
        return 1
    if cluster.is_up():
        print(f"gpupool dev: a cluster is already running from {cluster.state_dir}; not starting another")
    else:
        ensure_built()
        ensure_installed()
        print(f"gpupool dev: starting the control plane in {cluster.state_dir}")
        state = cluster.up()
        print(f"gpupool dev: control plane ready at {state.apiserver_url}")
    if real_node_gpus is not None:
        print(f"gpupool dev: starting the real node with {real_node_gpus} simulated GPUs")
        name = cluster.add_real_node(RealNodeSpec(gpus=real_node_gpus))
        print(f"gpupool dev: real node {name} ready (label {LABEL_NODE_KIND}=real, image {TOOLBOX_IMAGE})")
    if cluster.prometheus_url():
        print(f"gpupool dev: Prometheus at {cluster.prometheus_url()}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def _status(cluster: DevCluster) -> int:
    records = cluster.running()
    if not records:
        print(f"gpupool dev: no cluster in {cluster.state_dir}")
        return 1
    for record, alive in records:
        print(f"{record.name:<24} pid {record.pid:<8} {'running' if alive else 'STOPPED'}  log {record.log}")
    healthy = all(alive for _, alive in records)
    print(f"kubeconfig: {cluster.kubeconfig}")
    url = cluster.prometheus_url()
    if url:
        print(f"prometheus: {url}")
    return 0 if healthy else 1


def _interrupt(cluster: DevCluster, node: str) -> int:
    from kubernetes import client, config

    from gpupool.cluster.nodes.kwok_provider import KwokProvider

    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    KwokProvider(api).interrupt(node)
    print(f"node/{node} interrupted (deleted at once, as a spot reclaim does)")
    return 0


def _nodes(cluster: DevCluster, args: argparse.Namespace) -> int:
    from kubernetes import client, config

    from gpupool.cluster.nodes.kwok_nodes import GpuNodeSpec
    from gpupool.cluster.nodes.kwok_provider import create_gpu_node

    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    for index in range(args.count):
        spec = GpuNodeSpec(
            name=f"{args.prefix}-{index}",
            gpus=args.gpus,
            gpu_model=args.model,
            pool=args.pool,
            node_class=args.node_class,
            cpu=args.cpu,
            memory=args.memory,
        )
        create_gpu_node(api, spec)
        print(f"node/{spec.name} created ({args.gpus}x {args.model}, pool {args.pool})")
    return 0
