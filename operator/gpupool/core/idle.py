"""Idle GPUs: is a job that holds GPUs doing any work on them?

Who calls this: the planner's lifecycle step (`gpupool.cluster.writes.plan`), once per cycle for
each running job, with the utilisation the node agents published on their Nodes (the
`gpupool.io/gpu-utilization` summaries, so no decision depends on Prometheus being up).
Pure: values in, a verdict out; what must outlive a cycle (since when the job has been
below its queue's threshold) is passed in and written back to the job's status by the
caller.

A job is below the threshold when every GPU it holds averaged less than the threshold over
the summary's window: on a shared GPU the per-GPU figure bounds each sharer's use from
above, so a low GPU means a low job, while a busy shared GPU says nothing about which
sharer is busy — such a job is not called idle. A GPU without a fresh, full-window reading
makes the verdict unknown, and an unknown verdict changes nothing. A job below the
threshold for the queue's `after` is idle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class IdleAction(StrEnum):
    """What happens to a job found idle (mirrors the API's `IdleAction`)."""

    WARN = "Warn"
    STOP = "Stop"


@dataclass(frozen=True, slots=True)
class IdlePolicy:
    """A queue's idle rule: below `threshold` (0..1) for `after_seconds` is idle."""

    threshold: float = 0.05
    after_seconds: float = 1800.0
    action: IdleAction = IdleAction.WARN


@dataclass(frozen=True, slots=True)
class IdleVerdict:
    """`below`: the job is below the threshold now (None: no reading for some GPU).
    `since`: since when it has been below (carry it to the next cycle). `idle`: it has
    been below for the policy's `after`."""

    below: bool | None
    since: float | None
    idle: bool


def job_utilization(gpus: Iterable[tuple[str, int]], readings: Mapping[tuple[str, int], float]) -> float | None:
    """The busiest of the job's GPUs `(node, index)` by `readings`; None when one has none
    (or the job holds no GPU)."""
    values = []
    for gpu in gpus:
        value = readings.get(gpu)
        if value is None:
            return None
        values.append(value)
    return max(values) if values else None


def judge_idle(utilization: float | None, policy: IdlePolicy, below_since: float | None, now: float) -> IdleVerdict:
    """The job's verdict this cycle, given its busiest GPU's utilisation and since when it
    has been below the threshold (None: it was not)."""
    if utilization is None:
        idle = below_since is not None and now - below_since >= policy.after_seconds
        return IdleVerdict(below=None, since=below_since, idle=idle)
    if utilization >= policy.threshold:
        return IdleVerdict(below=False, since=None, idle=False)
    since = below_since if below_since is not None else now
    return IdleVerdict(below=True, since=since, idle=now - since >= policy.after_seconds)


__all__ = ["IdleAction", "IdlePolicy", "IdleVerdict", "job_utilization", "judge_idle"]
