"""A scheduling loop over a parsing cache and the recording writer, wired as the operator wires them.

Who uses this: unit tests that run whole cycles without an API server (the applier's write
order, budgets over time), as `from builders.loop import rig`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from builders.api import cache_of, gpunodepool_object, gpuqueue_object, namespace_object, pool_node_object
from gpupool.api import GPUJob, JobPhase, Provider
from gpupool.cluster.nodes.claims import ClaimReconciler
from gpupool.cluster.state.cache import ClusterCache, Kind
from gpupool.cluster.writes.apply import Applier
from gpupool.cluster.writes.recording import RecordingProvider, RecordingWriter
from gpupool.controllers.loop import SchedulingLoop
from gpupool.metrics.collect import OperatorMetrics
from gpupool.settings import OperatorSettings

PLURALS = {"GPUJob": "gpujobs", "GPUQueue": "gpuqueues", "GPUNodePool": "gpunodepools"}

RESTART_WRITES = [
    ("patch_job_status", "Queued"),
    ("emit_event", "Restarting"),
    ("delete_pod", ""),
    ("patch_job_status", "Admitted"),
    ("emit_event", "Admitted"),
    ("create_pod", "n1"),
]
"""`Rig.job_calls()` of one cycle in which a gang on node n1 restarts after a counted failure
and is admitted there again."""


@dataclass
class Rig:
    """A cache, the recording writer and a loop over them, as the operator wires them."""

    cache: ClusterCache
    writer: RecordingWriter
    loop: SchedulingLoop
    # The loop's metrics registry (a fresh one per rig).
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float | None:
        """The current value of one series (`_total`, `_count`, `_sum` names included)."""
        return self.registry.get_sample_value(name, labels)

    def job_calls(self, name: str = "train") -> list[tuple[str, str]]:
        """(verb, detail) of every write about one job or its pods, in order."""
        return [
            (c.verb, c.detail)
            for c in self.writer.calls
            if c.target.endswith(f"/ns/{name}") or c.target.startswith(f"pods/ns/{name}-")
        ]

    def phase(self, name: str = "train") -> JobPhase | None:
        return self.job(name).status.phase

    def job(self, name: str = "train") -> GPUJob:
        """The GPUJob `ns/<name>` as the cache holds it now (parsed)."""
        entry = self.cache.get(Kind.JOB, f"ns/{name}")
        assert entry is not None
        return entry.parsed.api  # type: ignore[no-any-return]

    def pod(self, name: str = "train", worker: int = 0, attempt: int = 1) -> dict[str, Any] | None:
        """The worker pod of `ns/<name>` as the cache holds it, None when there is none."""
        entry = self.cache.get(Kind.POD, f"ns/{name}-a{attempt}-w{worker}")
        return dict(entry.raw) if entry is not None else None

    def writes(self, *verbs: str) -> list[tuple[str, str]]:
        """(verb, target) of every write of `verbs` (default: status patches, pod creations
        and deletions), in order."""
        wanted = verbs or ("patch_job_status", "create_pod", "delete_pod")
        return [(c.verb, c.target) for c in self.writer.calls if c.verb in wanted]


def device_world(
    report: dict[str, list[int]] | None,
    *objects: dict[str, Any],
    clock: float | Callable[[], float],
    settings: OperatorSettings | None = None,
    queue: dict[str, Any] | None = None,
    node: dict[str, Any] | None = None,
) -> Rig:
    """A rig of namespace `ns`, pool `gpu`, queue `q` (or `queue`) and node n1 whose agent
    reports `report` (`pool_node_object`; or `node` itself), plus `objects`."""
    base = [namespace_object("ns"), gpunodepool_object("gpu"), queue or gpuqueue_object("q")]
    return rig([*base, node or pool_node_object(report), *objects], clock=clock, settings=settings)


def rig(
    objects: Iterable[dict[str, Any]],
    *,
    clock: float | Callable[[], float],
    provider: RecordingProvider | None = None,
    settings: OperatorSettings | None = None,
) -> Rig:
    """A rig whose cache holds `objects` and whose writer knows the gpupool ones (so their
    status writes succeed); `clock` is the loop's time, fixed or a callable a test advances.
    With `provider`, the loop scales Kwok pools through it (claims go through the writer).
    The loop collects metrics into the rig's own registry (`Rig.metric`); `settings` are the
    operator's (default: every default)."""
    objects = list(objects)
    cache = cache_of(objects)
    writer = RecordingWriter()
    for obj in objects:
        if obj["kind"] in PLURALS:
            writer.seed(PLURALS[obj["kind"]], obj)
    applier = Applier(writer, cache, concurrency=1)
    claims = None if provider is None else ClaimReconciler(writer, cache, {Provider.KWOK: provider})
    registry = CollectorRegistry()
    loop = SchedulingLoop(
        cache,
        applier,
        settings or OperatorSettings(),
        clock=clock if callable(clock) else lambda: clock,
        claims=claims,
        metrics=OperatorMetrics(registry),
    )
    return Rig(cache, writer, loop, registry)
