"""Ask Prometheus, through an injected client, every query the report needs.

Who calls this: `gpupool.report.command`, with a `PrometheusClient`; the tests with a fake.
One instant query per measure per bucket (see `queries`), then the window's own queries;
`progress` is told before each bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gpupool.report.period import Window
from gpupool.report.prom import QueryClient, Sample
from gpupool.report.queries import bucket_query, measures, window_queries

EPSILON = 0.001
"""Queries are evaluated this long (seconds) before a bucket's end (see `queries`)."""


@dataclass(frozen=True)
class Bucket:
    """One bucket's query results: for each measure, the sums over its steps per group."""

    start: datetime
    end: datetime
    measures: dict[str, list[Sample]]


@dataclass(frozen=True)
class Gathered:
    """Everything Prometheus answered for one window."""

    window: Window
    buckets: tuple[Bucket, ...]
    window_results: dict[str, list[Sample]]
    source: str = ""
    queue: str | None = None


def gather(
    client: QueryClient,
    window: Window,
    *,
    queue: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Gathered:
    """Every bucket's measures and the window's queries, asked of `client`."""
    exprs = measures(queue)
    buckets = []
    spans = window.buckets()
    for number, (start, end) in enumerate(spans, 1):
        if progress:
            progress(f"querying {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC ({number}/{len(spans)})")
        seconds = int((end - start).total_seconds())
        at = end.timestamp() - EPSILON
        results = {
            name: client.instant(bucket_query(expr, seconds, window.step_seconds), at) for name, expr in exprs.items()
        }
        buckets.append(Bucket(start, end, results))
    at = window.end.timestamp() - EPSILON
    totals = {name: client.instant(q, at) for name, q in window_queries(window.seconds, queue).items()}
    return Gathered(window, tuple(buckets), totals, source=client.url, queue=queue)
