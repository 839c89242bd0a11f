"""Serving the operator's metrics registry over HTTP for Prometheus to scrape.

Who calls this: `gpupool.controllers.runner` when `GPUPOOL_METRICS_PORT` is not 0. The
server is its own (prometheus-client's WSGI server in a daemon thread), next to the health
server, so a probe and a scrape never share a port or a thread. It answers `GET /metrics`
(any path but /favicon.ico, as prometheus-client does) in the text exposition format.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, start_http_server


def operator_registry() -> CollectorRegistry:
    """A fresh registry with the process, Python platform and GC collectors (never the global
    default registry: the operator's metrics are passed where they are needed)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class MetricsServer:
    """`/metrics` of `registry` on `host:port` in a daemon thread; port 0 picks a free port."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        self._server, self._thread = start_http_server(port, host, registry)
        self.port = int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
