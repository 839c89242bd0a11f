"""The rolling utilisation average behind the Node annotation, and when to write it.

Who uses this: the agent loop (`gpupool.agent.run`), once per node it reports. Time is
passed in (seconds since the epoch), so tests drive both classes with a fake clock.

- `UtilizationWindow` keeps a node's samples of the last `window_seconds` and averages
  each GPU over the samples that include it (a plain mean: the agent samples at a fixed
  interval). `observed` is the span the kept samples stand for: from one sampling interval
  before the oldest (a sample reports the interval that led up to it) to now, so a window
  sampled all through counts as fully observed.
- `WritePolicy` decides whether a new summary goes to the API server: the first one at
  once; after that at most once per `min_interval_seconds`, and only when a GPU's rounded
  average changed or the window just became fully observed; and, even when nothing
  changed, once per `refresh_seconds` so that `at` says the agent is alive.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from gpupool.annotations.summary import DECIMALS, UtilizationSummary


class UtilizationWindow:
    """One node's GPU utilisation samples over a sliding window."""

    def __init__(self, window_seconds: int) -> None:
        if window_seconds <= 0:
            raise ValueError(f"the window must be positive, got {window_seconds}")
        self.window_seconds = window_seconds
        self._samples: deque[tuple[float, dict[int, float]]] = deque()

    def add(self, now: float, utilization: Mapping[int, float]) -> None:
        """Record one sample of every GPU (index -> ratio) and forget the expired ones."""
        self._samples.append((now, dict(utilization)))
        while self._samples and self._samples[0][0] < now - self.window_seconds:
            self._samples.popleft()

    def summary(self, now: float) -> UtilizationSummary | None:
        """The mean per GPU over the kept samples; None before the first sample."""
        kept = [(at, values) for at, values in self._samples if at >= now - self.window_seconds]
        if not kept:
            return None
        sums: dict[int, float] = {}
        counts: dict[int, int] = {}
        for _at, values in kept:
            for index, ratio in values.items():
                sums[index] = sums.get(index, 0.0) + ratio
                counts[index] = counts.get(index, 0) + 1
        interval = kept[1][0] - kept[0][0] if len(kept) > 1 else 0.0
        observed = min(self.window_seconds, round(now - kept[0][0] + interval))
        return UtilizationSummary(
            window_seconds=self.window_seconds,
            observed_seconds=max(0, observed),
            at=datetime.fromtimestamp(now, UTC),
            gpus={index: sums[index] / counts[index] for index in sorted(sums)},
        )


@dataclass(frozen=True)
class _Written:
    at: float
    gpus: dict[int, float]
    complete: bool


def _rounded(summary: UtilizationSummary) -> dict[int, float]:
    return {index: round(ratio, DECIMALS) for index, ratio in summary.gpus.items()}


class WritePolicy:
    """Rate limit for one node's annotation writes."""

    def __init__(self, min_interval_seconds: float, refresh_seconds: float) -> None:
        self.min_interval_seconds = min_interval_seconds
        self.refresh_seconds = refresh_seconds
        self._last: _Written | None = None

    def due(self, summary: UtilizationSummary, now: float) -> bool:
        """Whether `summary` should be written now."""
        last = self._last
        if last is None:
            return True
        elapsed = now - last.at
        if elapsed < self.min_interval_seconds:
            return False
        changed = _rounded(summary) != last.gpus or summary.covers_window != last.complete
        return changed or elapsed >= self.refresh_seconds

    def written(self, summary: UtilizationSummary, now: float) -> None:
        """Record a successful write (a failed one is retried at the next sample)."""
        self._last = _Written(at=now, gpus=_rounded(summary), complete=summary.covers_window)
