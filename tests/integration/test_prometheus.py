"""The session cluster's Prometheus scrapes whatever is registered through its target files,
without a restart, and answers queries over its HTTP API."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from cluster_tools import OperatorProcess
from gpupool.devcluster.cluster import free_port
from gpupool.devcluster.prometheus import AGENT_JOB, OPERATOR_JOB, register_scrape_target, unregister_scrape_target
from kube_helpers import wait_for
from prom_tools import active_targets, query, wait_for_series

pytestmark = pytest.mark.cluster


@pytest.fixture
def exporter() -> Iterator[tuple[str, Gauge]]:
    """A tiny /metrics server on loopback with one gauge; its address and the gauge."""
    registry = CollectorRegistry()
    gauge = Gauge("gpupool_test_probe_value", "A value the test sets and reads back.", ["probe"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", gauge
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_prometheus_runs_with_the_cluster_on_loopback_with_both_jobs(prometheus: str, dev_cluster: Any) -> None:
    assert prometheus.startswith("http://127.0.0.1:")
    assert any(record.name == "prometheus" and alive for record, alive in dev_cluster.running())
    with urllib.request.urlopen(f"{prometheus}/api/v1/status/config", timeout=10) as response:
        config = yaml.safe_load(json.loads(response.read())["data"]["yaml"])
    assert config["global"]["scrape_interval"] == "2s"
    assert {c["job_name"] for c in config["scrape_configs"]} == {"gpupool-operator", "gpupool-agent"}
    assert query(prometheus, "vector(1)") == [({}, 1.0)]


def test_a_registered_target_is_scraped_and_its_value_read_back_then_dropped(
    prometheus: str, dev_cluster: Any, exporter: tuple[str, Gauge]
) -> None:
    address, gauge = exporter
    probe = uuid.uuid4().hex[:8]
    gauge.labels(probe=probe).set(42.5)
    register_scrape_target(dev_cluster.state_dir, AGENT_JOB, address, {"node": "it-prom-node"})
    try:
        series = wait_for_series(prometheus, f'gpupool_test_probe_value{{probe="{probe}"}}', timeout=30)
        ((labels, value),) = series
        assert value == 42.5
        assert (labels["job"], labels["instance"], labels["node"]) == (AGENT_JOB, address, "it-prom-node")
        gauge.labels(probe=probe).set(7)
        wait_for_series(
            prometheus, f'gpupool_test_probe_value{{probe="{probe}"}}', until=lambda s: bool(s) and s[0][1] == 7
        )
        assert query(prometheus, f'up{{job="{AGENT_JOB}",instance="{address}"}}')[0][1] == 1
    finally:
        unregister_scrape_target(dev_cluster.state_dir, AGENT_JOB, address)
    wait_for(
        lambda: all(t["labels"]["instance"] != address for t in active_targets(prometheus, AGENT_JOB)),
        30,
        "Prometheus to drop the unregistered target",
    )


def test_the_operator_fixture_is_registered_as_the_operator_target(prometheus: str, operator: OperatorProcess) -> None:
    address = f"127.0.0.1:{operator.metrics_port}"
    wait_for(
        lambda: [t["labels"]["instance"] for t in active_targets(prometheus, OPERATOR_JOB)] == [address],
        30,
        f"Prometheus to list the operator's metrics port {address} as its only {OPERATOR_JOB} target",
    )
