"""The `gpupool` command: operator, node agent, dev cluster, benchmarks, chaos runs, what-if
planning (`gpupool sim`), reports, dashboards
(`gpupool dashboards render`) and provenance (`gpupool provenance NAMESPACE/JOB`).

Who calls this: people at a shell, the Makefile and the demo script. Each subcommand is a
thin shim that imports its implementation lazily, so `gpupool dev up` does not pay for
importing kopf and `gpupool bench` does not need a cluster.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _bench(args: argparse.Namespace, rest: list[str]) -> int:
    if args.what == "placement":
        from gpupool.bench import placement_bench

        return placement_bench.main(rest)
    if args.what == "bound":
        from gpupool.bench import bound_bench

        return bound_bench.main(rest)
    if args.what == "burst":
        from gpupool.bench import burst

        return burst.main(rest)
    if args.what == "e2e":
        from gpupool.devcluster import e2e_bench

        return e2e_bench.main(rest)
    if args.what == "footprint":
        from gpupool.devcluster import footprint_bench

        return footprint_bench.main(rest)
    if args.what == "load":
        from gpupool.devcluster import load_bench

        return load_bench.main(rest)
    from gpupool.bench import cycle_bench

    return cycle_bench.main(rest)


def _chaos(args: argparse.Namespace, rest: list[str]) -> int:
    from gpupool.devcluster import chaos_command

    return chaos_command.main(args.action, rest)


def _sim(args: argparse.Namespace, rest: list[str]) -> int:
    from gpupool.whatif import command

    return command.main(rest)


def _dev(args: argparse.Namespace, rest: list[str]) -> int:
    from gpupool.devcluster import command

    return command.main(args.action, rest)


def _operator(args: argparse.Namespace, rest: list[str]) -> int:
    from gpupool.controllers import runner

    return runner.main(rest)


def _agent(args: argparse.Namespace, rest: list[str]) -> int:
    from gpupool.agent import run

    return run.main(rest)


def _provenance(args: argparse.Namespace, rest: list[str]) -> int:
    from gpupool import provenance_cmd

    return provenance_cmd.main(rest)


def _demo(args: argparse.Namespace, rest: list[str]) -> int:
    from gpupool import demo

    return demo.main(rest)


def _report(args: argparse.Namespace, rest: list[str]) -> int:
    from gpupool.report import command

    return command.main(rest)


def _dashboards(args: argparse.Namespace, rest: list[str]) -> int:
    try:
        from gpupool.dashboards import render
    except ModuleNotFoundError as error:
        print(f"gpupool dashboards needs {error.name}: pip install 'gpupool[dashboards]'", file=sys.stderr)
        return 2

    return render.main(rest)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; subcommands own their own flags (passed through as `rest`)."""
    parser = argparse.ArgumentParser(prog="gpupool", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser(
        "bench", help="benchmarks over the scheduling core, and end to end on a local cluster", add_help=False
    )
    bench.add_argument("what", choices=["placement", "bound", "cycle", "burst", "e2e", "footprint", "load"])
    bench.set_defaults(handler=_bench)

    chaos = sub.add_parser(
        "chaos",
        help="fault runs on a local cluster: operator SIGKILLs, API server or etcd outages, node loss",
        add_help=False,
    )
    chaos.add_argument("action", choices=["crash", "outage", "nodes"])
    chaos.set_defaults(handler=_chaos)

    sim = sub.add_parser(
        "sim", help="what-if capacity planning: cluster scenarios compared over a workload", add_help=False
    )
    sim.set_defaults(handler=_sim)

    dev = sub.add_parser("dev", help="the local control plane (etcd, apiserver, ..., kwok)", add_help=False)
    dev.add_argument("action", choices=["build", "up", "down", "status", "nodes", "interrupt"])
    dev.set_defaults(handler=_dev)

    demo = sub.add_parser("demo", help="run the main job end to end on a local cluster", add_help=False)
    demo.set_defaults(handler=_demo)

    op = sub.add_parser("operator", help="run the operator", add_help=False)
    op.add_argument("action", choices=["run"])
    op.set_defaults(handler=_operator)

    agent = sub.add_parser(
        "agent", help="the node agent: GPU metrics and a utilisation summary per node", add_help=False
    )
    agent.add_argument("action", choices=["run"])
    agent.set_defaults(handler=_agent)

    report = sub.add_parser(
        "report", help="the chargeback report (cost per queue, namespace and job) from Prometheus", add_help=False
    )
    report.set_defaults(handler=_report)
    provenance = sub.add_parser(
        "provenance", help="a GPUJob's provenance record per attempt (NAMESPACE/JOB [-o json])", add_help=False
    )
    provenance.set_defaults(handler=_provenance)
    dashboards = sub.add_parser(
        "dashboards", help="draw the Grafana dashboards' panels to PNGs from a Prometheus", add_help=False
    )
    dashboards.add_argument("action", choices=["render"])
    dashboards.set_defaults(handler=_dashboards)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gpupool` console script."""
    parser = build_parser()
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    handler = args.handler
    return int(handler(args, rest))


if __name__ == "__main__":
    raise SystemExit(main())
