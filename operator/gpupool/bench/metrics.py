"""The paper's figures from a replay: allocation against arrived workload.

Who uses this: the placement bench (numbers, and the JSON curves `gpupool.bench.plot`
draws) and the bound bench (`arrived_bucket`, `mean_sd`).
The figure at arrived = p% is the mean allocation % over the arrivals whose arrived %
rounds to p (halves round up); unallocated GPU % is 100 minus that.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def arrived_bucket(arrived_pct: FloatArray) -> npt.NDArray[np.int64]:
    """The whole arrived % each arrival counts towards (halves round up)."""
    return np.floor(arrived_pct + 0.5).astype(np.int64)


def allocation_curve(arrived_pct: FloatArray, allocated_pct: FloatArray, top: int) -> FloatArray:
    """Mean allocation % at arrived = 0..`top` %; NaN where no arrival rounds to p."""
    bucket = arrived_bucket(arrived_pct)
    keep = (bucket >= 0) & (bucket <= top)
    sums = np.bincount(bucket[keep], weights=allocated_pct[keep], minlength=top + 1)
    counts = np.bincount(bucket[keep], minlength=top + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve: FloatArray = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return curve


def unallocated_at(curve: FloatArray, pct: int) -> float:
    """100 - allocation % at arrived = `pct` (NaN when no arrival got there)."""
    if pct >= len(curve):
        return math.nan
    return float(100.0 - curve[pct])


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (sd 0 for a single value)."""
    arr = np.array(values, dtype=np.float64)
    if len(arr) == 0:
        return math.nan, math.nan
    sd = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return float(arr.mean()), sd
