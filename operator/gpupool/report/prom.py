"""The Prometheus HTTP API client the report uses: instant queries, nothing else.

Who calls this: `gpupool.report.command` builds one and hands it to `gather`; the tests
hand `gather` a fake with the same `instant` method instead.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

Sample = tuple[dict[str, str], float]
"""One series of an instant vector: its labels and its value."""


class PrometheusError(Exception):
    """Prometheus could not be asked, or refused a query; the message says what to check."""


class QueryClient(Protocol):
    """What `gather` needs of Prometheus."""

    url: str

    def instant(self, promql: str, at: float) -> list[Sample]:
        """The instant vector `promql` gives at `at` (seconds since the epoch)."""
        ...


class PrometheusClient:
    """Instant queries against the Prometheus at `url` (`http://host:9090`, a path prefix allowed)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def instant(self, promql: str, at: float) -> list[Sample]:
        params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
        request = urllib.request.Request(f"{self.url}/api/v1/query?{params}", headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = _json_or_none(error.read())
            if body is None:
                raise PrometheusError(
                    f"{self.url} answered HTTP {error.code} and no Prometheus API reply: check that --prometheus "
                    "is the Prometheus server's base URL (e.g. http://localhost:9090)"
                ) from error
        except (TimeoutError, urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url}: {reason}. Check the URL given to --prometheus, that "
                "Prometheus is running, and that this machine can reach it (e.g. kubectl port-forward)"
            ) from error
        except ValueError as error:
            raise PrometheusError(f"{self.url} did not answer with JSON: is it a Prometheus server?") from error
        if body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus at {self.url} refused a query: {body.get('errorType')}: {body.get('error')}"
            )
        data = body["data"]
        if data.get("resultType") != "vector":
            raise PrometheusError(f"Prometheus at {self.url} gave a {data.get('resultType')} for {promql!r}")
        return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]


def _json_or_none(raw: bytes) -> dict | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
