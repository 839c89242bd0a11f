"""Start, stop and inspect the local control plane: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok and Prometheus, each a process on loopback
ports.

Who calls this: `gpupool dev up|down|status` (through `command`), the demo script, the
pytest fixture in `tests/conftest.py`, and `gpupool chaos outage` (one component stopped and
started again). Everything lives under one state directory:
`pki/` (certificates), `etcd/` (data), `prometheus/` (config, data, scrape targets: see
`prometheus.py`), `logs/`, the kubeconfig, and `cluster.json`, which
records the pid and command line of every process started, so `down` stops exactly those
processes and a second `up` can tell that a cluster already runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from gpupool.devcluster import certs, prometheus, realnode
from gpupool.devcluster.build import Progress
from gpupool.devcluster.versions import KUBERNETES_VERSION, binary_path

SERVICE_CIDR = "10.96.0.0/16"
STATE_FILE = "cluster.json"
KUBECONFIG_FILE = "kubeconfig"


class ClusterError(RuntimeError):
    """The control plane could not be started or stopped; the message says what to check."""


@dataclass
class ProcessRecord:
    """A process this cluster started: enough to find it again and to stop only it."""

    name: str
    pid: int
    argv: list[str]
    log: str
    health_url: str
    """`http(s)://...` polled until 200, `unix://PATH` until the socket answers, empty: alive is enough."""
    env: dict[str, str] | None = None
    """Variables added to this process's environment (containerd finds its shim on PATH)."""


@dataclass
class ClusterState:
    """What `cluster.json` holds."""

    kubeconfig: str
    apiserver_url: str
    processes: list[ProcessRecord] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    extras: list[ProcessRecord] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "kubeconfig": self.kubeconfig,
                "apiserverUrl": self.apiserver_url,
                "ports": self.ports,
                "processes": [vars(p) for p in self.processes],
                "extras": [vars(p) for p in self.extras],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw = json.loads(text)
        return cls(
            kubeconfig=raw["kubeconfig"],
            apiserver_url=raw["apiserverUrl"],
            ports=raw.get("ports", {}),
            processes=[ProcessRecord(**p) for p in raw.get("processes", [])],
            extras=[ProcessRecord(**p) for p in raw.get("extras", [])],
        )


def default_state_dir() -> Path:
    """`$GPUPOOL_DEV_STATE_DIR`, else ~/.local/state/gpupool/dev."""
    configured = os.environ.get("GPUPOOL_DEV_STATE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gpupool" / "dev"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(record: ProcessRecord) -> bool:
    """True when `record.pid` still runs the binary we started (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not cmdline or not cmdline[0]:
        return False
    try:
        stat = Path(f"/proc/{record.pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return cmdline[0].decode(errors="replace") == record.argv[0]


class DevCluster:
    """One local control plane rooted at `state_dir`."""

    def __init__(self, state_dir: Path | None = None, with_prometheus: bool = True) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        # Benchmarks that measure the control plane's own CPU leave Prometheus out.
        self.with_prometheus = with_prometheus
        self.pki = self.state_dir / "pki"
        self.logs = self.state_dir / "logs"
        self.kubeconfig = self.state_dir / KUBECONFIG_FILE

    # ---------------------------------------------------------------- inspection

    def load_state(self) -> ClusterState | None:
        """The recorded state, or None when no cluster was started here."""
        path = self.state_dir / STATE_FILE
        if not path.is_file():
            return None
        return ClusterState.from_json(path.read_text())

    def running(self) -> list[tuple[ProcessRecord, bool]]:
        """Each recorded process with whether it is alive."""
        state = self.load_state()
        if state is None:
            return []
        return [(record, pid_alive(record)) for record in state.processes]

    def is_up(self) -> bool:
        """True when a cluster was started here and all its processes still run."""
        records = self.running()
        return bool(records) and all(alive for _, alive in records)

    def prometheus_url(self) -> str | None:
        """Base URL of this cluster's Prometheus (`http://127.0.0.1:PORT`), None when it has none."""
        state = self.load_state()
        if state is None or "prometheus" not in state.ports:
            return None
        return f"http://127.0.0.1:{state.ports['prometheus']}"

    # ---------------------------------------------------------------- up

    def up(self, wait_seconds: float = 120.0, progress: Progress = print) -> ClusterState:
        """Start every component, wait until each is healthy, write the kubeconfig.

        A second call while this cluster runs returns its state without starting anything.
        A half-dead cluster (some processes gone) is stopped and started afresh.
        """
        existing = self.load_state()
        if existing is not None:
            if self.is_up():
                progress(f"gpupool dev: a cluster is already running from {self.state_dir}")
                return existing
            progress("gpupool dev: found a partly stopped cluster; stopping what is left and starting afresh")
            self.down(progress=lambda _msg: None)

        prometheus_binary = prometheus.find_prometheus() if self.with_prometheus else None
        if self.with_prometheus and prometheus_binary is None:
            raise ClusterError(
                "prometheus is not on PATH; run `gpupool dev build` (installs Debian's prometheus package) "
                "or install Prometheus 2.x by hand"
            )
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.logs.mkdir(parents=True)
        certs.write_pki(self.pki)
        names = ["etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok"]
        if prometheus_binary is not None:
            names.append("prometheus")
        ports = {name: free_port() for name in names}
        apiserver_url = f"https://127.0.0.1:{ports['apiserver']}"
        for identity in certs.CLIENT_IDENTITIES:
            self._write_kubeconfig(self.state_dir / f"{identity.file_stem}.kubeconfig", apiserver_url, identity)
        shutil.copyfile(self.state_dir / "admin.kubeconfig", self.kubeconfig)
        stages = self.state_dir / "kwok.yaml"
        stages.write_text(resources.files("gpupool.devcluster").joinpath("kwok-stages.yaml").read_text())

        state = ClusterState(kubeconfig=str(self.kubeconfig), apiserver_url=apiserver_url, ports=ports)
        deadline = time.monotonic() + wait_seconds
        try:
            commands = self._commands(ports, stages)
            if prometheus_binary is not None:
                prometheus.write_config(self.state_dir)
                commands.append(
                    (
                        "prometheus",
                        prometheus.command(prometheus_binary, self.state_dir, ports["prometheus"]),
                        f"http://127.0.0.1:{ports['prometheus']}/-/ready",
                    )
                )
            for name, argv, health in commands:
                record, proc = self._start(name, argv, health)
                state.processes.append(record)
                self._save(state)
                self._wait_healthy(record, proc, deadline)
                progress(f"  {name} ready (pid {record.pid})")
            self._wait_default_namespace(deadline)
        except BaseException:
            self._save(state)
            self.down(progress=lambda _msg: None)
            raise
        return state

    def _commands(self, ports: dict[str, int], stages: Path) -> list[tuple[str, list[str], str]]:
        pki = self.pki
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        apiserver = [
            str(binary_path("kube-apiserver")),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--anonymous-auth=true",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--watch-cache=true",
            "--event-ttl=1h",
            # The real node's kubelet serves on loopback; its Hostname address resolves there
            # (its InternalIP, which may not be loopback, is never dialled).
            "--kubelet-preferred-address-types=Hostname,InternalIP",
        ]
        controller_manager = [
            str(binary_path("kube-controller-manager")),
            f"--kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller-manager']}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
        ]
        scheduler = [
            str(binary_path("kube-scheduler")),
            f"--kubeconfig={self.state_dir / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={self.state_dir / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={self.state_dir / 'scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            "--leader-elect=false",
        ]
        kwok = [
            str(binary_path("kwok")),
            f"--kubeconfig={self.state_dir / 'admin.kubeconfig'}",
            f"--config={stages}",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        ]
        etcd = [
            str(binary_path("etcd")),
            "--name=gpupool-dev",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=gpupool-dev={peer_url}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ]
        return [
            ("etcd", etcd, f"{etcd_url}/health"),
            ("kube-apiserver", apiserver, f"https://127.0.0.1:{ports['apiserver']}/readyz"),
            ("kube-controller-manager", controller_manager, f"https://127.0.0.1:{ports['controller-manager']}/healthz"),
            ("kube-scheduler", scheduler, f"https://127.0.0.1:{ports['scheduler']}/healthz"),
            ("kwok", kwok, f"http://127.0.0.1:{ports['kwok']}/healthz"),
        ]

    def _start(
        self, name: str, argv: list[str], health_url: str, env: dict[str, str] | None = None
    ) -> tuple[ProcessRecord, subprocess.Popen[bytes]]:
        if not Path(argv[0]).is_file():
            raise ClusterError(f"{argv[0]} is missing; run `gpupool dev build` first")
        log_path = self.logs / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.state_dir,
                env={**os.environ, **env} if env else None,
            )
        record = ProcessRecord(name=name, pid=proc.pid, argv=argv, log=str(log_path), health_url=health_url, env=env)
        return record, proc

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return context

    def _probe(self, url: str) -> bool:
        if not url:
            return True
        if url.startswith("unix://"):
            return realnode.socket_answers(Path(url.removeprefix("unix://")))
        context: ssl.SSLContext | None = None
        if url.startswith("https://"):
            context = self._ssl_context()
            if "/readyz" not in url:
                # Components other than the apiserver serve self-signed certificates.
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(url, timeout=3, context=context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    def _wait_healthy(self, record: ProcessRecord, proc: subprocess.Popen[bytes], deadline: float) -> None:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = Path(record.log).read_text(errors="replace")[-2000:]
                raise ClusterError(f"{record.name} exited during start-up; see {record.log}:\n{tail}")
            if self._probe(record.health_url):
                return
            time.sleep(0.25)
        raise ClusterError(f"{record.name} did not become healthy in time; see {record.log}")

    def _wait_default_namespace(self, deadline: float) -> None:
        """The apiserver is ready before its bootstrap controllers create `default`; wait for it."""
        url = self.load_state_apiserver() + "/api/v1/namespaces/default"
        while time.monotonic() < deadline:
            if self._probe(url):
                return
            time.sleep(0.25)
        raise ClusterError("the default namespace did not appear in time; see the kube-apiserver log")

    def load_state_apiserver(self) -> str:
        state = self.load_state()
        if state is None:
            raise ClusterError(f"no cluster state in {self.state_dir}")
        return state.apiserver_url

    def _save(self, state: ClusterState) -> None:
        (self.state_dir / STATE_FILE).write_text(state.to_json())

    def _write_kubeconfig(self, path: Path, server: str, identity: certs.Identity) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "gpupool-dev",
                    "cluster": {"server": server, "certificate-authority": str(self.pki / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": identity.user,
                    "user": {
                        "client-certificate": str(self.pki / f"{identity.file_stem}.crt"),
                        "client-key": str(self.pki / f"{identity.file_stem}.key"),
                    },
                }
            ],
            "contexts": [{"name": "gpupool-dev", "context": {"cluster": "gpupool-dev", "user": identity.user}}],
            "current-context": "gpupool-dev",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def start_extra(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ProcessRecord:
        """Start a process that belongs with this cluster (the demo's operator): `down` stops it too.

        A running extra of the same name is stopped first, so the demo can be re-run.
        """
        state = self.load_state()
        if state is None:
            raise ClusterError(f"no cluster in {self.state_dir}; run `gpupool dev up` first")
        for old in [e for e in state.extras if e.name == name]:
            _stop(old, timeout=15.0)
        state.extras = [e for e in state.extras if e.name != name]
        log_path = self.logs / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        record = ProcessRecord(name=name, pid=proc.pid, argv=argv, log=str(log_path), health_url="")
        state.extras.append(record)
        self._save(state)
        return record

    # ---------------------------------------------------------------- the real node

    def add_real_node(
        self, spec: realnode.RealNodeSpec | None = None, wait_seconds: float = 180.0, progress: Progress = print
    ) -> str:
        """Start the real node (containerd, kubelet, simulated device plugin) beside the kwok nodes.

        Returns the node's name once it is Ready with `spec.gpus` allocatable `nvidia.com/gpu`.
        A second call while it runs returns at once. Its processes are recorded with the
        control plane's, so `down` stops them and then undoes what they left (`realnode.clean_up`).
        """
        spec = spec or realnode.RealNodeSpec()
        state = self.load_state()
        if state is None or not self.is_up():
            raise ClusterError(f"no running cluster in {self.state_dir}; run `gpupool dev up` first")
        name = realnode.node_name()
        if any(r.name == "kubelet" for r in state.processes):
            return name
        try:
            realnode.ensure_host_packages(progress)
            realnode.refuse_second_kubelet()
        except realnode.RealNodeError as error:
            raise ClusterError(str(error)) from error
        layout = realnode.RealNodeLayout(self.state_dir)
        kubelet_port, healthz_port = free_port(), free_port()
        realnode.write_configuration(layout, kubelet_port, healthz_port)
        if realnode.note_plugin_dir():
            layout.created_plugin_dir.touch()
        bin_path = str(binary_path("containerd-shim-runc-v2").parent)
        deadline = time.monotonic() + wait_seconds
        steps: list[tuple[str, list[str], str, dict[str, str] | None]] = [
            (
                "containerd",
                realnode.containerd_argv(layout),
                f"unix://{layout.containerd_socket}",
                {"PATH": f"{bin_path}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
            ),
            (
                "kubelet",
                realnode.kubelet_argv(layout, self.state_dir / "kubelet.kubeconfig", spec),
                f"http://127.0.0.1:{healthz_port}/healthz",
                None,
            ),
            ("device-plugin", realnode.device_plugin_argv(layout, spec), "", None),
        ]
        try:
            for component, argv, health, env in steps:
                if component == "kubelet":
                    realnode.import_images(layout)
                    realnode.save_sysctls(layout)
                record, proc = self._start(component, argv, health, env)
                state.processes.append(record)
                self._save(state)
                self._wait_healthy(record, proc, deadline)
                progress(f"  {component} ready (pid {record.pid})")
            self.wait_node_gpus(name, spec.gpus, deadline - time.monotonic())
        except realnode.RealNodeError as error:
            raise ClusterError(str(error)) from error
        progress(f"  node/{name} Ready with {spec.gpus} simulated GPUs")
        return name

    def wait_node_gpus(self, name: str, gpus: int, wait_seconds: float) -> None:
        """Wait until node `name` is Ready and advertises `gpus` allocatable nvidia.com/gpu
        (after `add_real_node`, and in the tests after restarting the kubelet or the plugin)."""
        deadline = time.monotonic() + wait_seconds
        url = f"{self.load_state_apiserver()}/api/v1/nodes/{name}"
        seen = "the node was never registered"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=3, context=self._ssl_context()) as response:
                    node = json.loads(response.read())
            except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
                time.sleep(0.5)
                continue
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in node.get("status", {}).get("conditions", [])
            )
            allocatable = node.get("status", {}).get("allocatable", {}).get("nvidia.com/gpu", "0")
            if ready and allocatable == str(gpus):
                return
            seen = f"Ready={ready}, allocatable nvidia.com/gpu={allocatable}"
            time.sleep(0.5)
        raise ClusterError(
            f"the real node {name} did not become Ready with {gpus} GPUs in time ({seen}); see the kubelet and "
            f"device-plugin logs in {self.logs}"
        )

    # ---------------------------------------------------------------- one component

    def _record(self, name: str) -> tuple[ClusterState, ProcessRecord]:
        state = self.load_state()
        if state is None:
            raise ClusterError(f"no cluster in {self.state_dir}; run `gpupool dev up` first")
        for record in state.processes:
            if record.name == name:
                return state, record
        known = ", ".join(r.name for r in state.processes)
        raise ClusterError(f"this cluster has no component {name!r} (it has {known})")

    def stop_component(self, name: str, timeout: float = 15.0) -> bool:
        """Stop one control-plane process (e.g. `kube-apiserver` or `etcd`: SIGTERM, then SIGKILL
        after `timeout`), keeping its record so `start_component` can bring it back; False when
        it was not running. Who calls this: `gpupool chaos outage` and its test."""
        _, record = self._record(name)
        return _stop(record, timeout)

    def start_component(self, name: str, wait_seconds: float = 60.0) -> ProcessRecord:
        """Start one stopped control-plane process again, with its recorded command line (same
        ports, same data), and wait until it is healthy; a running one is left as it is."""
        state, record = self._record(name)
        if pid_alive(record):
            return record
        fresh, proc = self._start(name, record.argv, record.health_url, record.env)
        state.processes = [fresh if r.name == name else r for r in state.processes]
        self._save(state)
        self._wait_healthy(fresh, proc, time.monotonic() + wait_seconds)
        return fresh

    # ---------------------------------------------------------------- down

    def down(self, timeout: float = 15.0, progress: Progress = print) -> int:
        """Stop exactly the processes this cluster started (newest first); return how many."""
        state = self.load_state()
        if state is None:
            progress(f"gpupool dev: no cluster recorded in {self.state_dir}")
            return 0
        stopped = 0
        for record in [*reversed(state.extras), *reversed(state.processes)]:
            if _stop(record, timeout):
                stopped += 1
                progress(f"  stopped {record.name} (pid {record.pid})")
        for step in realnode.clean_up(realnode.RealNodeLayout(self.state_dir)):
            progress(f"  real node: {step}")
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / "etcd", ignore_errors=True)
        shutil.rmtree(prometheus.prometheus_dir(self.state_dir) / "data", ignore_errors=True)
        return stopped


def _stop(record: ProcessRecord, timeout: float) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; False when the process was not running."""
    if not pid_alive(record):
        return False
    os.kill(record.pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while pid_alive(record) and time.monotonic() < end:
        time.sleep(0.1)
    if pid_alive(record):
        os.kill(record.pid, signal.SIGKILL)
    return True


def kubernetes_version() -> str:
    """The Kubernetes version this dev cluster runs."""
    return KUBERNETES_VERSION
