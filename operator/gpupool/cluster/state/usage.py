"""Each queue's decayed GPU usage, carried from cycle to cycle (and across restarts).

Who uses this: the scheduling loop (`gpupool.controllers.loop`) owns one `DecayedUsage` and
advances it once per cycle with the GPUs each queue holds now
(`gpupool.cluster.translate.snapshot.held_gpus`); the snapshot feeds the result to the core's fair
share, and the report step writes it to `GPUQueue.status.decayedUsageGpuSeconds`, from
which a restarted operator starts again. The decay rule itself is the core's
(`gpupool.core.fairshare.decay_usage`).
"""

from __future__ import annotations

from collections.abc import Mapping

from gpupool.core.fairshare import decay_usage


class DecayedUsage:
    """Decayed GPU-seconds per queue; starts from what the queues' status recorded."""

    def __init__(self, half_life_seconds: float) -> None:
        self.half_life_seconds = half_life_seconds
        self._usage: dict[str, float] = {}
        self._at: float | None = None

    def advance(self, held: Mapping[str, float], now: float, recorded: Mapping[str, float]) -> dict[str, float]:
        """Advance every queue to `now`, given the GPUs each holds; `recorded` (the queues'
        status) is read only on the first call, after a start or restart."""
        if self._at is None:
            self._usage = dict(recorded)
            self._at = now
        elapsed = now - self._at
        for name in set(self._usage) | set(held):
            self._usage[name] = decay_usage(
                self._usage.get(name, 0.0), elapsed, held.get(name, 0.0), self.half_life_seconds
            )
        self._at = now
        return dict(self._usage)

    def of(self, queue: str) -> float:
        """A queue's decayed usage as of the last `advance`."""
        return self._usage.get(queue, 0.0)
