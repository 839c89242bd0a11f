"""Shared pytest fixtures: the real local control plane, brought up once per test session.

Who uses this: every test marked `cluster` (integration and e2e). The control plane is the
one `gpupool dev up` runs (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok, Prometheus), built once per machine and started here in a private state directory,
so a demo cluster a developer left running is never touched. CRDs from `crds/` are
installed before the first test. Each test that asks for `namespace` gets a fresh
namespace, deleted after. `prometheus` is the session Prometheus' base URL (query it with
`prom_tools`); the `operator` fixture registers its metrics port there.

`pytest --operator-as=chart` runs the session operator with the Helm chart's identity: the
chart is installed (`chart_release`) and the operator authenticates with a token of its
ServiceAccount instead of the admin certificate, so every test of the run proves the
chart's ClusterRole sufficient. `make test` runs the lifecycle and autoscaling tests so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from cluster_tools import AgentProcess, OperatorProcess, kubectl

REPO = Path(__file__).resolve().parents[1]

# Timing belongs to benchmarks, not tests: no per-example deadline, so a busy 2-core CI
# machine cannot turn a correct property into a flaky failure.
settings.register_profile("gpupool", deadline=None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--operator-as",
        choices=("admin", "chart"),
        default="admin",
        help="identity of the session operator: the admin certificate, or the Helm chart's ServiceAccount",
    )


settings.load_profile("gpupool")


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running DevCluster for the whole session (building binaries only if missing)."""
    from gpupool.devcluster.build import ensure_built
    from gpupool.devcluster.cluster import DevCluster
    from gpupool.devcluster.prometheus import ensure_installed

    ensure_built()
    ensure_installed()
    cluster = DevCluster(tmp_path_factory.mktemp("devcluster") / "state")
    cluster.up(progress=lambda _msg: None)
    try:
        yield cluster
    finally:
        cluster.down(progress=lambda _msg: None)


@pytest.fixture(scope="session")
def prometheus(dev_cluster: Any) -> str:
    """Base URL (`http://127.0.0.1:PORT`) of the session cluster's Prometheus, scraping every 2 s."""
    url = dev_cluster.prometheus_url()
    assert url, "the session cluster was started without Prometheus"
    return str(url)


@pytest.fixture(scope="session")
def kubeconfig(dev_cluster: Any) -> str:
    """Path of an admin kubeconfig for the session cluster, with gpupool's CRDs installed."""
    path = str(dev_cluster.kubeconfig)
    crds = sorted((REPO / "crds").glob("*.yaml"))
    if crds:
        kubectl(path, "apply", "--server-side", *[arg for crd in crds for arg in ("-f", str(crd))])
        waits = [arg for crd in crds for arg in ("-f", str(crd))]
        kubectl(path, "wait", "--for=condition=Established", "--timeout=60s", *waits)
    return path


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Any:
    """A `kubernetes.client.ApiClient` for the session cluster (admin identity)."""
    from kubernetes import config

    return config.new_client_from_config(kubeconfig)


@pytest.fixture
def core_api(api_client: Any) -> Any:
    """`kubernetes.client.CoreV1Api` bound to the session cluster."""
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core_api: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) when the test ends."""
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    core_api.create_namespace({"metadata": {"name": name, "labels": {"gpupool.io/test": "true"}}})
    # The service-account controller creates `default`; pods need it to be admitted.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if core_api.list_namespaced_service_account(name).items:
            break
        time.sleep(0.2)
    try:
        yield name
    finally:
        core_api.delete_namespace(name)


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str, dev_cluster: Any, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[OperatorProcess]:
    """The gpupool operator running against the session cluster, its metrics scraped by
    `prometheus`; with `--operator-as=chart`, as the installed chart's ServiceAccount."""
    identity = kubeconfig
    if request.config.getoption("--operator-as") == "chart":
        from chart_tools import install_for_out_of_cluster_operator, service_account_kubeconfig

        namespace, account = install_for_out_of_cluster_operator(kubeconfig)
        token_file = tmp_path_factory.mktemp("chart-identity") / "kubeconfig"
        identity = service_account_kubeconfig(kubeconfig, namespace, account, token_file)
    process = OperatorProcess(
        identity, tmp_path_factory.mktemp("operator") / "operator.log", state_dir=dev_cluster.state_dir
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
    if identity != kubeconfig:
        from chart_tools import permission_denials

        denials = permission_denials(process.log_path)
        assert denials == [], f"the chart's ClusterRole lacks a permission the operator used: {denials[0][:600]}"


@pytest.fixture
def agent(kubeconfig: str, dev_cluster: Any, tmp_path: Path) -> Iterator[AgentProcess]:
    """The simulated node agent for every kwok node (10 s summary window), scraped by `prometheus`."""
    from gpupool.devcluster.prometheus import AGENT_JOB, register_scrape_target, unregister_scrape_target

    process = AgentProcess(kubeconfig, tmp_path / "agent.log", "--window", "10")
    address = f"127.0.0.1:{process.port}"
    register_scrape_target(dev_cluster.state_dir, AGENT_JOB, address)
    try:
        yield process
    finally:
        unregister_scrape_target(dev_cluster.state_dir, AGENT_JOB, address)
        process.stop()
