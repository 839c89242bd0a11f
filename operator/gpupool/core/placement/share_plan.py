"""A packing plan for GPU shares: which share sizes should end up together on one GPU.

Who uses this: the `gpupool` scoring policy, to decide where a share goes. Greedy
rules (best fit, least fragmentation growth) look one placement ahead and pair shares
badly: a 0.32 share lands beside a 0.47 one (0.21 left, which almost nothing fills)
while a 0.65 share that would have completed it with 0.03 left arrives later. A plan
looks at the whole observed mix of share sizes instead.

How: the share sizes seen so far, with their counts, are packed offline with
best-fit-decreasing, the classic offline bin-packing heuristic. Each resulting
*pattern* (a multiset of sizes that share one GPU, e.g. 0.65 + 0.32) says which sizes
belong together. Online, shares arrive in any order,
so every partial fill of a pattern counts: a GPU with `f` milli free is a *planned home*
for a share of size `s` when some pattern has `s` among the shares it still lacks after
a subset of its other members took `1000 - f`. For example the pattern 0.47 + 0.47 makes
a GPU with 530 free the planned home of a 0.47 share, and 0.65 + 0.32 makes 350 free the
home of 0.32 and 680 free the home of 0.65.

The plan is a pure function of the counts (`SharePlan.from_counts`); `MixTables.share_plan`
(`memory.py`) builds it once per snapshot of the workload mix.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from gpupool.core.models import MILLI_PER_GPU

BoolArray = npt.NDArray[np.bool_]
Pattern = tuple[int, ...]  # share sizes (milli) on one GPU, largest first

# Counts are scaled down to about this many shares before packing: the plan only needs
# the proportions, and a bounded item count bounds the (already small) packing cost.
PLAN_SHARES = 4000


class SharePlan:
    """Patterns of share sizes that pack well together, and the homes they imply."""

    __slots__ = ("_homes", "min_share", "patterns")

    def __init__(self, patterns: Mapping[Pattern, int]) -> None:
        self.patterns: dict[Pattern, int] = {p: n for p, n in patterns.items() if n > 0}
        sizes = {s for p in self.patterns for s in p}
        # Smallest share size of the plan: a GPU left with less free than this is full
        # for every share we know of (0 when the plan is empty).
        self.min_share: int = min(sizes, default=0)
        self._homes: dict[int, BoolArray] = {}
        for pattern in self.patterns:
            for placed, missing in _partial_fills(pattern):
                free = MILLI_PER_GPU - sum(placed)
                for size in set(missing):
                    homes = self._homes.setdefault(size, np.zeros(MILLI_PER_GPU + 1, dtype=np.bool_))
                    homes[free] = True

    @classmethod
    def from_counts(cls, counts: Mapping[int, float]) -> SharePlan:
        """Best-fit-decreasing packing of shares with these counts (milli -> count)."""
        total = sum(c for s, c in counts.items() if 0 < s < MILLI_PER_GPU and c > 0)
        if total <= 0:
            return cls({})
        scale = min(1.0, PLAN_SHARES / total)
        # A size seen at all keeps at least one item: rare small shares are exactly the
        # ones that complete the gaps the large ones leave.
        items = {s: max(1, round(c * scale)) for s, c in counts.items() if 0 < s < MILLI_PER_GPU and c > 0}
        return cls(_best_fit_decreasing(items))

    @property
    def empty(self) -> bool:
        """True before any share was observed (then every partly used GPU is a home)."""
        return not self.patterns

    def homes(self, size: int) -> BoolArray:
        """`homes(size)[f]` is True when a GPU with `f` milli free is a planned home for `size`.

        Indexed by free milli 0..1000; read-only. A size the plan has never seen has no
        planned home at all.
        """
        found = self._homes.get(size)
        if found is None:
            found = np.zeros(MILLI_PER_GPU + 1, dtype=np.bool_)
        found.setflags(write=False)
        return found


def _best_fit_decreasing(items: Mapping[int, int]) -> Counter[Pattern]:
    """Pack `items` (size -> count), largest first, each into the fullest GPU it fits.

    GPUs are kept grouped by their pattern (GPUs with the same contents are
    interchangeable), so a whole run of equal items moves between groups at once and the
    cost grows with the number of distinct patterns, not of items.
    """
    groups: Counter[Pattern] = Counter()
    for size in sorted(items, reverse=True):
        left = items[size]
        while left > 0:
            fitting = [p for p, n in groups.items() if n > 0 and MILLI_PER_GPU - sum(p) >= size]
            if fitting:
                # Fullest fitting GPU; equal fill -> the lexicographically largest pattern.
                target: Pattern = max(fitting, key=lambda p: (sum(p), p))
                # If a GPU of the target group still fits another item after this one, it
                # is then the fullest fitting GPU: it takes the next item too (one at a time).
                room_after = MILLI_PER_GPU - sum(target) - size
                moved = 1 if room_after >= size else min(left, groups[target])
            else:
                target = ()
                moved = 1 if MILLI_PER_GPU - size >= size else left
            if target:
                groups[target] -= moved
            groups[tuple(sorted((*target, size), reverse=True))] += moved
            left -= moved
    return +groups


def _partial_fills(pattern: Pattern) -> list[tuple[Pattern, Pattern]]:
    """Every way to split `pattern` into (already placed, still missing), missing non-empty."""
    sizes = sorted(set(pattern))
    counts = [pattern.count(s) for s in sizes]
    fills = []
    for taken in itertools.product(*(range(c + 1) for c in counts)):
        placed = tuple(s for s, k in zip(sizes, taken, strict=True) for _ in range(k))
        missing = tuple(s for s, k, c in zip(sizes, taken, counts, strict=True) for _ in range(c - k))
        if missing:
            fills.append((placed, missing))
    return fills


__all__ = ["SharePlan"]
