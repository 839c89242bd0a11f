"""Shared pytest fixtures: the real local control plane, brought up once per test session.

Who uses this: every test marked `cluster` (integration and e2e). The control plane is the
one `gpupool dev up` runs (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok), built once per machine and started here in a private state directory, so a demo
cluster a developer left running is never touched. CRDs from `crds/` are installed before
the first test. Each test that asks for `namespace` gets a fresh namespace, deleted after.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Timing belongs to benchmarks, not tests: no per-example deadline, so a busy 2-core CI
# machine cannot turn a correct property into a flaky failure.
settings.register_profile("gpupool", deadline=None)
settings.load_profile("gpupool")


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running DevCluster for the whole session (building binaries only if missing)."""
    from gpupool.devcluster.build import ensure_built
    from gpupool.devcluster.cluster import DevCluster

    ensure_built()
    cluster = DevCluster(tmp_path_factory.mktemp("devcluster") / "state")
    cluster.up(progress=lambda _msg: None)
    try:
        yield cluster
    finally:
        cluster.down(progress=lambda _msg: None)


def kubectl(
    kubeconfig: str, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl against the test cluster; returns the completed process."""
    from gpupool.devcluster.tools import kubectl_path

    result = subprocess.run(
        [kubectl_path(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": kubeconfig},
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result


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


class OperatorProcess:
    """`gpupool operator run` as a child process against the test cluster.

    Tests use one per session; the restart test kills it (SIGKILL) and starts it again.
    """

    def __init__(self, kubeconfig: str, log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        import socket
        import sys
        import urllib.request

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {
            **os.environ,
            "GPUPOOL_HEALTH_HOST": "127.0.0.1",
            "GPUPOOL_HEALTH_PORT": str(self.port),
            "GPUPOOL_SCHEDULE_INTERVAL_SECONDS": "1",
            "GPUPOOL_LOG_LEVEL": "INFO",
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gpupool.cli", "operator", "run", "--kubeconfig", self.kubeconfig],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"operator not ready in 60s; see {self.log_path}")

    def kill(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def operator(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The gpupool operator running against the session cluster."""
    process = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
