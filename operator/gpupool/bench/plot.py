"""The benches' plots: unallocated GPU % against arrived workload (one line per policy), and
the what-if comparison of `gpupool sim` (`plot_whatif`).

Who uses this: `gpupool bench placement --plot FILE` (one policy) and, for the
docs figure with every policy, `python -m gpupool.bench.plot --out PNG RESULT.json ...`
over the bench's `--json` outputs; `gpupool.whatif.command` (`gpupool sim --out DIR`).
matplotlib is a dev dependency, imported lazily, with the Agg backend so it runs headless.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path


def plot_unallocated(
    curves: Mapping[str, Sequence[float | None]],
    out: Path,
    title: str = "openb trace: unallocated GPU vs arrived workload",
) -> None:
    """Write a PNG: x = arrived workload 0..130 %, y = unallocated GPU % (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    styles = ["-", "--", "-.", ":"]
    for k, (label, ys) in enumerate(curves.items()):
        points = [(x, y) for x, y in enumerate(ys) if y is not None]
        xs, vals = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, vals, styles[k % len(styles)], label=label, linewidth=1.8)
    ax.axvline(100, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlim(0, 130)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("arrived workload (% of cluster GPU capacity)")
    ax.set_ylabel("unallocated GPU (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_whatif(
    curves: Mapping[str, Sequence[float]],
    simulated_months: int,
    p95_waits: Mapping[str, Mapping[str, float]],
    out: Path,
) -> None:
    """Write a PNG: left, each scenario's cumulative cost by month (solid where simulated,
    dashed where projected); right, the p95 wait of each queue per scenario, in hours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cost, wait) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120, gridspec_kw={"width_ratios": [3, 2]})
    for k, (label, ys) in enumerate(curves.items()):
        color = f"C{k}"
        upto = min(simulated_months, len(ys) - 1)
        cost.plot(range(upto + 1), [y / 1000 for y in ys[: upto + 1]], "-", color=color, label=label, linewidth=1.8)
        cost.plot(range(upto, len(ys)), [y / 1000 for y in ys[upto:]], "--", color=color, linewidth=1.2)
    cost.axvline(simulated_months, color="grey", linewidth=0.8, linestyle=":")
    cost.set_xlabel("month (dashed: projected at the simulated mean cloud cost)")
    cost.set_ylabel("cumulative cost, thousand $ (on-prem bought at month 0)")
    cost.set_title("buy vs rent: cumulative cost")
    cost.grid(alpha=0.3)
    cost.legend()
    queues = sorted({q for waits in p95_waits.values() for q in waits})
    width = 0.8 / max(1, len(p95_waits))
    for k, (label, waits) in enumerate(p95_waits.items()):
        xs = [i + k * width for i in range(len(queues))]
        wait.bar(xs, [waits.get(q, 0.0) / 3600 for q in queues], width, label=label, color=f"C{k}")
    wait.set_xticks([i + width * (len(p95_waits) - 1) / 2 for i in range(len(queues))], queues)
    wait.set_ylim(bottom=0)
    wait.set_ylabel("p95 wait (hours)")
    wait.set_title("p95 wait per queue")
    wait.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: plot the `curve_unallocated_pct` of several bench JSON files into one PNG."""
    p = argparse.ArgumentParser(prog="python -m gpupool.bench.plot", description=__doc__)
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p.add_argument("--title", default="openb default trace: unallocated GPU vs arrived workload")
    p.add_argument("results", nargs="+", type=Path, help="JSON files written by the bench's --json")
    args = p.parse_args(argv)
    curves: dict[str, list[float | None]] = {}
    for path in args.results:
        doc = json.loads(path.read_text())
        label = doc["policy"]
        if doc.get("resolved_policy") and doc["resolved_policy"] != label:
            label = f"{label} ({doc['resolved_policy']})"
        curves[label] = doc["curve_unallocated_pct"]
    plot_unallocated(curves, args.out, args.title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
