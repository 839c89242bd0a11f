"""Synthetic variants of a trace pod list, for checking that a policy generalises.

Who uses this: developers validating placement policies beyond the four published openb
variants (docs/benchmarks.md). A variant resamples the pods of a trace by class (CPU-only,
GPU share, one whole GPU, multi-GPU) with new class proportions, and can pin a fraction
of GPU pods to a random pair of GPU models, like the paper's `gpuspec` variants.

    python -m gpupool.bench.variants --pods IN.csv --out OUT.csv --seed 7 \
        --cpu 0.2 --share 0.5 --whole 0.25 --multi 0.05 --spec 0.2 --models V100M16,G2,T4

Instead of random pairs, `--spec-sets-from TRACE.csv` draws each pinned pod's model set
from the pinned pods of another trace (e.g. the published `gpuspec10`), so the variant
keeps the real mix of single-model pins and wider sets at a higher pinned fraction.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpupool.bench.openb import MIB, TracePod, load_pods

CLASSES = ("cpu", "share", "whole", "multi")


def pod_class(pod: TracePod) -> str:
    """Which class a pod belongs to."""
    milli = pod.requested_milli
    if milli == 0:
        return "cpu"
    if milli < 1000:
        return "share"
    return "whole" if milli == 1000 else "multi"


def resample(
    pods: Sequence[TracePod],
    proportions: dict[str, float],
    rng: np.random.Generator,
    spec_fraction: float = 0.0,
    models: Sequence[str] = (),
    spec_sets: Sequence[tuple[str, ...]] = (),
) -> list[TracePod]:
    """As many pods as `pods`, drawn by class with `proportions` (normalised).

    A fraction `spec_fraction` of the GPU pods is pinned: to one of `spec_sets` when
    given, else to a random pair of `models`.
    """
    pools = {c: [p for p in pods if pod_class(p) == c] for c in CLASSES}
    names = [c for c in CLASSES if proportions.get(c, 0) > 0 and pools[c]]
    weights = np.array([proportions[c] for c in names], dtype=np.float64)
    weights /= weights.sum()
    out = []
    for i, c in enumerate(rng.choice(len(names), size=len(pods), p=weights)):
        pool = pools[names[c]]
        src = pool[int(rng.integers(len(pool)))]
        spec = src.gpu_models
        if (models or spec_sets) and src.requested_milli > 0 and rng.random() < spec_fraction:
            if spec_sets:
                spec = spec_sets[int(rng.integers(len(spec_sets)))]
            else:
                spec = tuple(sorted(rng.choice(list(models), size=min(2, len(models)), replace=False)))
        out.append(TracePod(f"synth-{i:05d}", src.cpu_milli, src.memory_bytes, src.num_gpu, src.gpu_milli, spec))
    return out


def write_pods(path: Path, pods: Sequence[TracePod]) -> None:
    """Write pods in the trace's column layout (first six columns)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec"])
        for p in pods:
            w.writerow([p.name, p.cpu_milli, p.memory_bytes // MIB, p.num_gpu, p.gpu_milli, "|".join(p.gpu_models)])


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write one synthetic variant."""
    ap = argparse.ArgumentParser(prog="python -m gpupool.bench.variants", description=__doc__)
    ap.add_argument("--pods", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    for c in CLASSES:
        ap.add_argument(f"--{c}", type=float, default=0.0, help=f"proportion of {c} pods")
    ap.add_argument("--spec", type=float, default=0.0, help="fraction of GPU pods pinned to two GPU models")
    ap.add_argument("--models", default="", help="comma-separated GPU models to pin to")
    ap.add_argument("--spec-sets-from", type=Path, help="draw pinned model sets from this trace's pinned pods")
    args = ap.parse_args(argv)
    proportions = {c: getattr(args, c) for c in CLASSES}
    models = [m for m in args.models.split(",") if m]
    spec_sets = [p.gpu_models for p in load_pods(args.spec_sets_from) if p.gpu_models] if args.spec_sets_from else []
    if args.spec_sets_from and not spec_sets:
        ap.error(f"{args.spec_sets_from} has no pinned pods (empty gpu_spec everywhere)")
    rng = np.random.default_rng(args.seed)
    pods = resample(load_pods(args.pods), proportions, rng, args.spec, models, spec_sets)
    write_pods(args.out, pods)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
