"""Reading the test Prometheus from tests: instant queries and waiting for a series.

Who uses this: integration tests that check what the operator or the agent exports. The
session's Prometheus comes from the `prometheus` fixture (its base URL); what it scrapes
is registered with `gpupool.devcluster.prometheus.register_scrape_target` (the operator
fixture registers the operator's metrics port itself). It scrapes every 2 s.

    from prom_tools import query, wait_for_series
    series = wait_for_series(prometheus, 'gpupool_queue_pending_jobs{queue="q1"}')
    labels, value = series[0]
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

Series = tuple[dict[str, str], float]


class PrometheusQueryError(AssertionError):
    """Prometheus answered with an error (a bad PromQL expression, say)."""


def _get(prom_url: str, path: str, params: dict[str, str] | None = None) -> dict:
    url = f"{prom_url.rstrip('/')}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = json.loads(error.read() or b"{}")
    if body.get("status") != "success":
        raise PrometheusQueryError(f"{path} {params or ''}: {body.get('errorType')}: {body.get('error')}")
    return dict(body["data"])


def query(prom_url: str, promql: str) -> list[Series]:
    """An instant query: each series' labels (`__name__` included when kept) and its value.

    A scalar result comes back as one series with no labels.
    """
    data = _get(prom_url, "/api/v1/query", {"query": promql})
    if data["resultType"] == "vector":
        return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]
    if data["resultType"] == "scalar":
        return [({}, float(data["result"][1]))]
    raise PrometheusQueryError(f"{promql!r} gave a {data['resultType']}, not an instant vector")


def wait_for_series(
    prom_url: str,
    promql: str,
    timeout: float = 30.0,
    until: Callable[[list[Series]], bool] = bool,
) -> list[Series]:
    """Query until the result satisfies `until` (default: not empty); return that result.

    Fails with the last result after `timeout` seconds. Give `until` to wait for a value,
    e.g. `until=lambda s: s and s[0][1] >= 3`.
    """
    deadline = time.monotonic() + timeout
    last: list[Series] = []
    while True:
        last = query(prom_url, promql)
        if until(last):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"Prometheus: {promql!r} not as expected after {timeout:g}s; last result {last}")
        time.sleep(0.5)


def active_targets(prom_url: str, job: str | None = None) -> list[dict]:
    """The active scrape targets (`/api/v1/targets`), optionally of one job."""
    targets = _get(prom_url, "/api/v1/targets", {"state": "active"})["activeTargets"]
    return [t for t in targets if job is None or t["labels"].get("job") == job]
