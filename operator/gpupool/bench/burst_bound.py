"""The least cloud cost any scheduler could pay for a timed trace: the burst bench's bound.

Who uses this: `gpupool.bench.burst` (`gpupool bench burst`) and its tests.

Every pod runs from its arrival for its duration, with no wait; on-prem GPUs are a fluid
of `capacity` milli-GPU per model (no packing loss, shares pack perfectly, cpu and memory
ignored); what does not fit on-prem runs in the cloud at the cheapest price per GPU-hour
the pod may use, with no boot delay, no idle tail and no whole-node rounding. The price a
pod may use is the lowest per-GPU-hour price over the catalogue's node types that could
host it alone (`CloudType.holds`: its model constraint, its GPUs, cpu and memory), spot
only for pods allowed on spot. A pod that no node type holds can only wait: its demand
costs nothing here, which keeps the figure a lower bound.

Within each interval between two arrivals or completions the on-prem share is chosen to
save the most: demand of pods with dearer cloud prices goes on-prem first. The demand that
may use each on-prem model forms a transportation problem whose savings weigh only the
demand side, so taking groups from the dearest down and giving each as much on-prem
capacity as a max-flow allows (augmenting paths) is optimal (the served amounts form a
polymatroid, where the greedy order is exact). Everything is integer milli-GPU.

This is the issue's bound: it assumes jobs start on arrival. A scheduler that let jobs
wait for on-prem capacity could pay less than it; the bench's scheduler does not do that.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpupool.bench.burst_inputs import CloudType, TimedPod
from gpupool.core.models import GpuNode

Group = tuple[frozenset[str], float]
"""(on-prem models the pods may use, their cheapest cloud price per GPU-hour; 0: none)"""


@dataclass(frozen=True, slots=True)
class Bound:
    """The bound: dollars, and the GPU-hours above on-prem capacity it prices."""

    cost: float
    gpu_hours: float


def cheapest_rate(pod: TimedPod, spot: bool, types: Sequence[CloudType]) -> float:
    """The lowest price per GPU-hour of a node type that holds `pod` (0: none does)."""
    rates = []
    for t in types:
        if not t.holds(pod.pod):
            continue
        rates.append(t.on_demand_per_gpu_hour)
        if spot and t.spot_per_gpu_hour is not None:
            rates.append(t.spot_per_gpu_hour)
    return min(rates) if rates else 0.0


def onprem_capacity(nodes: Sequence[GpuNode]) -> dict[str, int]:
    """milli-GPU per GPU model of `nodes`."""
    out: dict[str, int] = defaultdict(int)
    for n in nodes:
        if n.gpus > 0:
            out[n.gpu_model] += n.gpus * 1000
    return dict(out)


def unserved_cost_rate(capacity: Mapping[str, int], demand: Mapping[Group, int]) -> tuple[float, int]:
    """Dollars per hour and milli-GPU above on-prem, for one interval's demand per group,
    when on-prem capacity goes where it saves most (see the module docstring)."""
    groups = sorted(((g, d) for g, d in demand.items() if d > 0), key=lambda gd: (-gd[0][1], sorted(gd[0][0])))
    left = {m: c for m, c in capacity.items() if c > 0}
    flow: list[dict[str, int]] = []
    dollars = 0.0
    above = 0
    for index, ((_, rate), need) in enumerate(groups):
        flow.append({})
        remaining = need
        while remaining > 0:
            path = _augmenting_path(index, [g[0][0] for g in groups], flow, left)
            if path is None:
                break
            remaining -= _augment(path, remaining, flow, left)
        if rate > 0:
            dollars += rate * remaining / 1000
            above += remaining
    return dollars, above


def _augmenting_path(
    start: int, sets: list[frozenset[str]], flow: list[dict[str, int]], left: Mapping[str, int]
) -> list[tuple[int, str]] | None:
    """Steps (group, model) from group `start` to a model with capacity left: each step
    sends flow from the group to the model; a model reached is left by taking flow back
    from an earlier group that holds some of it. None when there is no such path."""
    parent: dict[str, tuple[int, str | None]] = {}
    frontier: list[tuple[int, str | None]] = [(start, None)]
    while frontier:
        nxt: list[tuple[int, str | None]] = []
        for group, via in frontier:
            for model in sorted(sets[group]):
                if model in parent or model not in left:
                    continue
                parent[model] = (group, via)
                if left[model] > 0:
                    path: list[tuple[int, str]] = []
                    at: str | None = model
                    while at is not None:
                        g, back = parent[at]
                        path.append((g, at))
                        at = back
                    return path[::-1]
                for other in range(start):
                    if flow[other].get(model, 0) > 0:
                        nxt.append((other, model))
        frontier = nxt
    return None


def _augment(path: list[tuple[int, str]], limit: int, flow: list[dict[str, int]], left: dict[str, int]) -> int:
    amount = min(limit, left[path[-1][1]])
    for (group, _), (_, model) in zip(path[1:], path[:-1], strict=True):
        amount = min(amount, flow[group][model])  # flow taken back from `group` on `model`
    for i, (group, model) in enumerate(path):
        flow[group][model] = flow[group].get(model, 0) + amount
        if i > 0:
            back = path[i - 1][1]
            flow[group][back] -= amount
    left[path[-1][1]] -= amount
    return amount


def lower_bound(
    pods: Sequence[TimedPod], spot: Sequence[bool], onprem: Sequence[GpuNode], types: Sequence[CloudType]
) -> Bound:
    """The bound for `pods` (with `spot[i]` True where pod i may use spot) next to `onprem`."""
    capacity = onprem_capacity(onprem)
    everything = frozenset(capacity)
    events: list[tuple[float, int, Group, int]] = []
    for i, (pod, may_spot) in enumerate(zip(pods, spot, strict=True)):
        milli = pod.pod.requested_milli
        if milli <= 0:
            continue
        models = frozenset(pod.pod.gpu_models) & everything if pod.pod.gpu_models else everything
        group = (models, cheapest_rate(pod, may_spot, types))
        events.append((pod.arrival, i, group, milli))
        events.append((pod.arrival + pod.duration, i, group, -milli))
    events.sort(key=lambda e: (e[0], e[3]))
    demand: dict[Group, int] = defaultdict(int)
    dollars = 0.0
    milli_seconds = 0.0
    k = 0
    while k < len(events):
        now = events[k][0]
        while k < len(events) and events[k][0] == now:
            demand[events[k][2]] += events[k][3]
            k += 1
        if k == len(events):
            break
        span = events[k][0] - now
        rate, above = unserved_cost_rate(capacity, demand)
        dollars += rate * span / 3600
        milli_seconds += above * span
    return Bound(cost=dollars, gpu_hours=milli_seconds / 1000 / 3600)


__all__ = ["Bound", "cheapest_rate", "lower_bound", "onprem_capacity", "unserved_cost_rate"]
