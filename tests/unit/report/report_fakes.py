"""A fake Prometheus for the report's unit tests: it answers exactly the queries
`gpupool.report.queries` writes, at the times `gather` asks them, from GPU holdings a test
describes (as Prometheus would: the sum of each measure at every step of the bucket).

The holdings of `SCENARIO` (window 2026-11-03 00:00 to 06:00 UTC, step 60 s, buckets of 1 h):
- train: team-a, namespace ml, pool rack (on-prem A100, 2.0 per GPU-hour), 2 GPUs from 00:00
  to 03:00, flagged idle from 02:00;
- tune: team-a, ml, rack, a 0.5 share from 01:00 to 02:00;
- render: team-b, namespace cv, pool aws (cloud H100, 10.0 per GPU-hour on demand), 1 GPU on a
  spot node (3.0 per GPU-hour) from 02:00 to 04:00.
train held GPU-r0 and GPU-r1, tune a share of GPU-r5; render's node reported no devices
(its series have no uuid).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gpupool.report import queries
from gpupool.report.prom import Sample

START = datetime(2026, 11, 3, tzinfo=UTC)
END = datetime(2026, 11, 3, 6, tzinfo=UTC)
STEP = 60
BUCKET = 3600


@dataclass(frozen=True)
class Holding:
    queue: str
    namespace: str
    job: str
    pool: str
    gpus: float
    price: float  # per GPU-hour on its node
    start_h: float  # hours after START
    end_h: float
    idle_from_h: float | None = None
    spot: bool = False
    on_demand: float = 0.0  # the pool's on-demand price per GPU-hour
    uuids: tuple[str, ...] = ()  # the physical GPUs it held (the allocation series' uuid label)

    def value(self, measure: str, hour: float) -> float:
        """The measure's instantaneous value at `hour` (what the PromQL expression gives)."""
        if not self.start_h <= hour < self.end_h:
            return 0.0
        idle = self.idle_from_h is not None and hour >= self.idle_from_h
        return {
            "gpus": self.gpus,
            "cost": self.gpus * self.price,
            "idle_gpus": self.gpus if idle else 0.0,
            "idle_cost": self.gpus * self.price if idle else 0.0,
            "spot_gpus": self.gpus if self.spot else 0.0,
            "spot_cost": self.gpus * self.price if self.spot else 0.0,
            "spot_on_demand_cost": self.gpus * self.on_demand if self.spot else 0.0,
        }[measure]


SCENARIO = (
    Holding("team-a", "ml", "train", "rack", 2, 2.0, 0, 3, idle_from_h=2, uuids=("GPU-r1", "GPU-r0")),
    Holding("team-a", "ml", "tune", "rack", 0.5, 2.0, 1, 2, uuids=("GPU-r5",)),
    Holding("team-b", "cv", "render", "aws", 1, 3.0, 2, 4, spot=True, on_demand=10.0),
)
POOLS = [
    ({"pool": "rack", "pool_class": "on_prem", "gpu_model": "A100"}, 1.0),
    ({"pool": "aws", "pool_class": "cloud", "gpu_model": "H100"}, 1.0),
]
BUDGETS = {
    "budget_amount": [({"queue": "team-a", "currency": "EUR"}, 100.0)],
    "budget_spent": [({"queue": "team-a", "currency": "EUR"}, 30.0)],
}
COUNTER = [({"queue": "team-a", "pool_class": "on_prem"}, 12.9), ({"queue": "team-b", "pool_class": "cloud"}, 5.95)]


class FakePrometheus:
    """Answers the report's queries from `holdings`; fails the test on any other query."""

    url = "http://fake-prometheus:9090"

    def __init__(self, holdings: tuple[Holding, ...] = SCENARIO, queue: str | None = None) -> None:
        self.holdings = [h for h in holdings if queue is None or h.queue == queue]
        self.queue = queue
        self.asked: list[tuple[str, float]] = []

    def instant(self, promql: str, at: float) -> list[Sample]:
        self.asked.append((promql, at))
        end = at + 0.001  # gather asks 1 ms before a bucket's (or the window's) end
        window = {name: q for name, q in queries.window_queries(int(end - START.timestamp()), self.queue).items()}
        if promql == window["pools"]:
            return POOLS
        if promql == window["counter_cost"]:
            return [s for s in COUNTER if self.queue in (None, s[0]["queue"])]
        if promql == window["gpu_uuids"]:
            return [
                ({"queue": h.queue, "namespace": h.namespace, "job": h.job, "uuid": uuid}, 1.0)
                for h in self.holdings
                for uuid in h.uuids
            ]
        for name in ("budget_amount", "budget_spent"):
            if promql == window[name]:
                return [s for s in BUDGETS[name] if self.queue in (None, s[0]["queue"])]
        for name, expr in queries.measures(self.queue).items():
            for seconds in (BUCKET, 600, 300):
                if promql == queries.bucket_query(expr, seconds, STEP):
                    return self.bucket(name, end - seconds, end)
        raise AssertionError(f"unexpected query {promql!r}")

    def bucket(self, measure: str, start: float, end: float) -> list[Sample]:
        """The sum of `measure` at every step in [start, end), per queue, namespace, job and pool."""
        steps = [start + i * STEP for i in range(round((end - start) / STEP))]
        out = []
        for h in self.holdings:
            total = sum(h.value(measure, (t - START.timestamp()) / 3600) for t in steps)
            if total:
                out.append(({"queue": h.queue, "namespace": h.namespace, "job": h.job, "pool": h.pool}, total))
        return out
