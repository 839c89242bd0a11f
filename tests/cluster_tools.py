"""Helpers the cluster tests share: the real kubectl and the operator as a child process.

Kept out of `conftest.py` on purpose: several folders have a conftest, and Python caches
only one module named `conftest`, so tests import these from here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """`gpupool operator run` as a child process against the test cluster.

    Tests use one per session; the restart test kills it (SIGKILL) and starts it again, and
    the failover tests run a second one beside it, both with leader election.
    Given the cluster's `state_dir`, each start serves metrics on a free port
    (`GPUPOOL_METRICS_PORT`, in `metrics_port`) registered as the cluster Prometheus'
    `gpupool-operator` target, unregistered when it stops.
    """

    def __init__(self, kubeconfig: str, log_path: Path, state_dir: Path | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.state_dir = state_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.metrics_port = 0
        # GPUPOOL_* settings a test runs the operator with (see `restart_with`).
        self.extra_env: dict[str, str] = {}

    def start(self) -> None:
        import sys
        import urllib.request

        self._unregister_metrics()
        self.port = self.metrics_port = free_port()
        while self.metrics_port == self.port:
            self.metrics_port = free_port()
        env = {
            **os.environ,
            "GPUPOOL_HEALTH_HOST": "127.0.0.1",
            "GPUPOOL_HEALTH_PORT": str(self.port),
            "GPUPOOL_METRICS_HOST": "127.0.0.1",
            "GPUPOOL_METRICS_PORT": str(self.metrics_port),
            "GPUPOOL_SCHEDULE_INTERVAL_SECONDS": "1",
            "GPUPOOL_LOG_LEVEL": "INFO",
            # No test may rely on the periodic re-list to repair a lost update.
            "GPUPOOL_RESYNC_SECONDS": "3600",
            **self.extra_env,
        }
        self.metrics_port = int(env["GPUPOOL_METRICS_PORT"])  # a test's extra_env may pick its own
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gpupool.cli", "operator", "run", "--kubeconfig", self.kubeconfig],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        if self.state_dir is not None:
            from gpupool.devcluster.prometheus import OPERATOR_JOB, register_scrape_target

            register_scrape_target(self.state_dir, OPERATOR_JOB, f"127.0.0.1:{self.metrics_port}")
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

    def scrape(self) -> str:
        """The operator's /metrics page (Prometheus text format)."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def readyz(self) -> tuple[int, str]:
        """The status and body of /readyz (with leader election, the body names the leader)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=5) as response:
                return int(response.status), response.read().decode().strip()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode().strip()

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
        self._unregister_metrics()

    def _unregister_metrics(self) -> None:
        if self.state_dir is not None and self.metrics_port:
            from gpupool.devcluster.prometheus import OPERATOR_JOB, unregister_scrape_target

            unregister_scrape_target(self.state_dir, OPERATOR_JOB, f"127.0.0.1:{self.metrics_port}")

    @contextmanager
    def running_with(self, kubeconfig: str | None = None, **env: str) -> Iterator[None]:
        """Run the operator with extra GPUPOOL_* settings inside the block (over those it runs
        with), and with another identity's `kubeconfig` if given (a ServiceAccount's token);
        then as before."""
        admin, before = self.kubeconfig, self.extra_env
        self.stop()
        self.extra_env = {**before, **env}
        self.kubeconfig = kubeconfig or admin
        self.start()
        try:
            yield
        finally:
            self.stop()
            self.extra_env = before
            self.kubeconfig = admin
            self.start()


class AgentProcess:
    """`gpupool agent run --backend simulated --all-kwok-nodes` (or `--node NAME`) as a child
    process on a free port (`extra_args` are more flags, e.g. `--window 10`)."""

    def __init__(self, kubeconfig: str, log_path: Path, *extra_args: str, node: str | None = None) -> None:
        """`node`: report that one node (the real node) instead of every kwok node."""
        self.port = free_port()
        self.log_path = log_path
        env = {
            **os.environ,
            "GPUPOOL_AGENT_HOST": "127.0.0.1",
            "GPUPOOL_AGENT_SUMMARY_MIN_INTERVAL_SECONDS": "1",
        }
        scope = ["--node", node] if node else ["--all-kwok-nodes"]
        args = ["--backend", "simulated", *scope, "--kubeconfig", kubeconfig]
        args += ["--port", str(self.port), "--interval", "1", *extra_args]
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gpupool.cli", "agent", "run", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the agent exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return None
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the agent did not stop on SIGTERM:\n{self.log()}") from None
