"""An upper bound on the milli-GPU any scheduler can allocate to a set of GPU requests.

Who uses this: `gpupool.bench.bound_bench` (`gpupool bench bound`), to tell how far a
placement policy is from the best any policy could do on a trace, and so whether a
target such as "3.8% unallocated on the openb default trace" can be reached at all.

The bound relaxes the real problem to the GPU dimension alone: every GPU is a bin of
1,000 milli; a share of s milli is an item of size s; a job asking for k whole GPUs is k
items of size 1,000. cpu, memory, GPU models and node boundaries are dropped, and so is
the arrival order, so a real scheduler can only do worse. Some items can be *forced*:
they must be packed (a policy that places every pod that fits until the cluster is
nearly full packs all the early ones). The relaxation is solved as the configuration
linear program of bin packing (Gilmore and Gomory, "A linear programming approach to
the cutting-stock problem", Operations Research 9(6), 1961): a variable per packing
pattern of one GPU, with patterns generated on demand by a bounded knapsack over the
1,000 milli of a GPU. Its optimum bounds the best integer packing from above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gpupool.core.models import MILLI_PER_GPU

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# A forced item left unpacked costs this much per milli in the linear program's
# objective, far more than packing anything else can gain, so forced items are packed
# whenever they can be (and a left-over means they cannot: see `ForcedItemsDoNotFit`).
_FORCED_PENALTY = 10.0
# A pattern enters the program only if it gains more than this (milli-GPU).
_GAIN_TOLERANCE = 1e-6
_MAX_ROUNDS = 20_000


class ForcedItemsDoNotFit(ValueError):
    """The forced items alone need more GPUs than the cluster has."""


def best_pattern(
    sizes: IntArray, limits: IntArray, values: FloatArray, capacity: int = MILLI_PER_GPU
) -> tuple[float, IntArray]:
    """The most valuable packing of one GPU: item i at most `limits[i]` times, sizes <= capacity.

    A bounded knapsack by dynamic programming over the capacity; each item's copies are
    split into chunks of 1, 2, 4, ... so every count up to its limit is reachable.
    Returns the value and the count of each item in the pattern.
    """
    best = np.zeros(capacity + 1)
    chunks: list[tuple[int, int]] = []  # (item, copies)
    taken: list[npt.NDArray[np.bool_]] = []
    for i, (size, limit, value) in enumerate(zip(sizes, limits, values, strict=True)):
        copies = min(int(limit), capacity // int(size))
        if value <= 0 or copies <= 0:
            continue
        chunk = 1
        while copies > 0:
            m = min(chunk, copies)
            weight, gain = int(size) * m, float(value) * m
            candidate = np.full(capacity + 1, -np.inf)
            candidate[weight:] = best[: capacity + 1 - weight] + gain
            take = candidate > best
            best = np.where(take, candidate, best)
            chunks.append((i, m))
            taken.append(take)
            copies -= m
            chunk *= 2
    pattern = np.zeros(len(sizes), dtype=np.int64)
    w = int(np.argmax(best))
    top = float(best[w])
    for (i, m), take in zip(reversed(chunks), reversed(taken), strict=True):
        if take[w]:
            pattern[i] += m
            w -= int(sizes[i]) * m
    return top, pattern


@dataclass
class PackingBound:
    """The configuration LP over one growing set of items, solved by column generation.

    Who calls this: `bound_bench`, once per arrival near the point it measures; the
    patterns found for one arrival stay valid for the next (item counts only grow), so
    each solve starts from the previous one's patterns.
    """

    sizes: IntArray  # distinct item sizes, milli (1 to 1,000)
    patterns: list[IntArray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sizes = np.asarray(self.sizes, dtype=np.int64)
        if len(self.sizes) and (self.sizes.min() < 1 or self.sizes.max() > MILLI_PER_GPU):
            raise ValueError(f"item sizes must be 1..{MILLI_PER_GPU} milli, got {self.sizes.tolist()}")

    def max_packed_milli(self, counts: IntArray, forced: IntArray, gpus: int) -> float:
        """Most milli-GPU that `gpus` GPUs can hold of `counts` items, packing all `forced` ones.

        Raises `ForcedItemsDoNotFit` when the forced items alone do not fit.
        """
        from scipy.optimize import linprog  # imported here: only the bound needs scipy

        counts = np.asarray(counts, dtype=np.int64)
        forced = np.asarray(forced, dtype=np.int64)
        n = len(self.sizes)
        if n == 0 or gpus <= 0:
            if forced.sum() > 0:
                raise ForcedItemsDoNotFit("forced items but no GPU to hold them")
            return 0.0
        if np.any(forced > counts):
            raise ValueError("forced counts exceed the item counts")
        for i in range(n):  # one single-item pattern each, so the program starts feasible
            single = np.zeros(n, dtype=np.int64)
            single[i] = min(int(counts[i]), MILLI_PER_GPU // int(self.sizes[i]))
            if single[i] and not any(np.array_equal(single, p) for p in self.patterns):
                self.patterns.append(single)
        size_f = self.sizes.astype(np.float64)
        for _ in range(_MAX_ROUNDS):
            a = np.array(self.patterns, dtype=np.float64).T  # items x patterns
            k = a.shape[1]
            # Variables: one per pattern, then one slack per item for unpacked forced ones.
            cost = np.concatenate([-(size_f @ a), _FORCED_PENALTY * size_f])
            a_ub = np.vstack(
                [
                    np.hstack([a, np.zeros((n, n))]),  # packed <= count
                    np.hstack([-a, -np.eye(n)]),  # packed + slack >= forced
                    np.concatenate([np.ones(k), np.zeros(n)])[None, :],  # patterns <= GPUs
                ]
            )
            b_ub = np.concatenate([counts, -forced, [gpus]]).astype(np.float64)
            res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
            if res.status != 0:
                raise RuntimeError(f"the packing LP did not solve: {res.message}")
            dual = -np.asarray(res.ineqlin.marginals)
            per_item, forced_dual, per_gpu = dual[:n], dual[n : 2 * n], float(dual[2 * n])
            limits = np.minimum(counts, MILLI_PER_GPU // self.sizes)
            gain, pattern = best_pattern(self.sizes, limits, size_f - per_item + forced_dual)
            if gain <= per_gpu + _GAIN_TOLERANCE:
                slack = res.x[k:]
                if np.any(slack * size_f > _GAIN_TOLERANCE * 1000):
                    raise ForcedItemsDoNotFit(f"the forced items need more than {gpus} GPUs even packed perfectly")
                return float(size_f @ a @ res.x[:k])
            self.patterns.append(pattern)
        raise RuntimeError(f"the packing LP did not converge in {_MAX_ROUNDS} rounds")


def item_counts(requests: Mapping[int, int], sizes: IntArray) -> IntArray:
    """Counts aligned with `sizes` from a {size: count} map (sizes absent count 0)."""
    return np.array([requests.get(int(s), 0) for s in sizes], dtype=np.int64)
