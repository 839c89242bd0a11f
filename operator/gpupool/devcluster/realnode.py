"""The dev cluster's real node: a kubelet, containerd and runc on this machine, beside the kwok
nodes, with simulated GPUs behind gpupool's own NVIDIA-like device plugin.

Who calls this: `DevCluster.add_real_node` (from `gpupool dev up --real-node` and the tests'
`real_node` fixture) writes the configuration here and starts the processes this module
names, and `DevCluster.down` calls `clean_up` after stopping them. kwok proves scale; this
node proves what a container really gets: the kubelet's device manager, not gpupool,
chooses the GPUs of a pod that requests `nvidia.com/gpu`, and the device plugin hands the
container their UUIDs.

What is real and what is not: the kubelet (`k8s.io/kubernetes/cmd/kubelet`, the control
plane's version), containerd (its Go module), runc (Debian's) and the containers are real;
only the GPU hardware is simulated, by `gpupool.devcluster.device_plugin`.

Facts of this machine the configuration follows:
- cgroup v1 (`failCgroupV1: false`, the cgroupfs driver);
- root lacks CAP_SYS_RESOURCE, so containerd must not raise oom_score_adj
  (`restrict_oom_score_adj`), or every sandbox fails;
- only loopback may carry traffic: the CNI configuration is loopback-only, so pods on this
  node run with `hostNetwork: true`, the kubelet serves on 127.0.0.1, and the API server
  reaches it through the node's Hostname address (the host's name resolves to loopback);
- the device-plugin directory `/var/lib/kubelet/device-plugins` is fixed whatever
  `--root-dir` says, so one real kubelet runs per mount namespace: a second is refused;
- the kubelet changes the sysctls in `KUBELET_SYSCTLS`; they are saved before it starts
  and restored by `clean_up`.

Everything else lives under `<state dir>/realnode/`; `clean_up` removes containers left
running, unmounts what the kubelet mounted, and deletes the folder and the device-plugin
sockets, so `gpupool dev down` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from gpupool.devcluster import debian, node_images
from gpupool.devcluster.versions import binary_path

DEVICE_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
KUBELET_SOCKET = DEVICE_PLUGIN_DIR / "kubelet.sock"
KUBELET_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
RUNC = Path("/usr/sbin/runc")
CNI_BIN_DIR = Path("/usr/lib/cni")
HOST_PACKAGES = ("runc", "containernetworking-plugins", "busybox-static")
NAMESPACE = "k8s.io"
"""containerd's namespace for CRI (the kubelet's) containers and images."""

OPERATOR_ENV = {
    "GPUPOOL_SHARE_RESERVATION_IMAGE": node_images.TOOLBOX_IMAGE,
    "GPUPOOL_SHARE_RESERVATION_COMMAND": "sleep 1000000000",
    "GPUPOOL_SHARE_RESERVATION_HOST_NETWORK": "true",
}
"""The operator's settings for a cluster with this node (the demo's, the real-node tests'):
share reservation pods run the local toolbox (no registry) on the host network (no pod
network) and do nothing."""

LABEL_NODE_KIND = "gpupool.io/node-kind"
DEFAULT_GPU_MODEL = "A100"
DEFAULT_GPU_PRODUCT = "NVIDIA-A100-SXM4-80GB"


class RealNodeError(RuntimeError):
    """The real node cannot start here; the message says what to do."""


@dataclass(frozen=True)
class RealNodeSpec:
    """What the real node offers: its simulated GPUs and the labels gpupool and GFD would read."""

    gpus: int = 8
    gpu_model: str = DEFAULT_GPU_MODEL
    gpu_product: str = DEFAULT_GPU_PRODUCT
    pool: str = "real"

    def labels(self) -> dict[str, str]:
        """The node's labels: gpupool's kind, model, pool and class; GFD's product and presence."""
        return {
            LABEL_NODE_KIND: "real",
            "gpupool.io/gpu-model": self.gpu_model,
            "gpupool.io/pool": self.pool,
            "gpupool.io/class": "OnPrem",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": self.gpu_product,
            "nvidia.com/gpu.count": str(self.gpus),
        }


def node_name() -> str:
    """The real node's name: the host's (the kubelet's default, and the name its certificate carries)."""
    return socket.gethostname().lower()


class RealNodeLayout:
    """Paths of one real node under `<state dir>/realnode/`."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "realnode"
        self.containerd_root = self.root / "containerd" / "root"
        self.containerd_state = self.root / "containerd" / "state"
        self.containerd_config = self.root / "containerd.toml"
        self.containerd_socket = self.root / "containerd.sock"
        self.runc_root = self.root / "runc"
        self.cni_dir = self.root / "cni"
        self.cdi_dir = self.root / "cdi"
        self.kubelet_root = self.root / "kubelet"
        self.kubelet_config = self.root / "kubelet.yaml"
        self.kubelet_certs = self.root / "kubelet-pki"
        self.device_dir = self.root / "dev"
        self.images = self.root / "images"
        self.sysctls = self.root / "sysctls.json"
        self.created_plugin_dir = self.root / "created-var-lib-kubelet"

    @property
    def pod_resources_socket(self) -> Path:
        """The kubelet's PodResources socket (under its root dir), which the node agent reads."""
        return self.kubelet_root / "pod-resources" / "kubelet.sock"


def ensure_host_packages(progress: Callable[[str], None] = print) -> None:
    """Install runc, the CNI plugins and static busybox from Debian when any is missing."""

    def installed() -> bool:
        return RUNC.is_file() and (CNI_BIN_DIR / "loopback").is_file() and node_images.BUSYBOX.is_file()

    try:
        debian.apt_install(HOST_PACKAGES, installed, progress)
    except debian.DebianPackageError as error:
        raise RealNodeError(f"the real node needs {', '.join(HOST_PACKAGES)}: {error}") from error


def socket_answers(path: Path) -> bool:
    """True when something accepts connections on the unix socket `path`."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def refuse_second_kubelet() -> None:
    """Raise when a kubelet already serves the machine's one device-plugin directory."""
    if socket_answers(KUBELET_SOCKET):
        raise RealNodeError(
            f"another kubelet already serves {KUBELET_SOCKET}: one real node runs per machine (the device-plugin "
            "folder is fixed). Stop it first, e.g. `gpupool dev down` for the cluster that started it"
        )


def write_configuration(layout: RealNodeLayout, kubelet_port: int, healthz_port: int) -> None:
    """containerd's and the kubelet's configuration files, the CNI configuration and the two images."""
    for folder in (layout.root, layout.cni_dir, layout.cdi_dir, layout.kubelet_root, layout.device_dir):
        folder.mkdir(parents=True, exist_ok=True)
    (layout.cni_dir / "10-gpupool-loopback.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "gpupool-loopback", "plugins": [{"type": "loopback"}]})
    )
    layout.containerd_config.write_text(containerd_config(layout))
    layout.kubelet_config.write_text(yaml.safe_dump(kubelet_config(layout, kubelet_port, healthz_port)))
    node_images.write_archive(node_images.toolbox_recipe(), layout.images / "toolbox.tar")
    node_images.write_archive(node_images.pause_recipe(binary_path("pause")), layout.images / "pause.tar")


def containerd_config(layout: RealNodeLayout) -> str:
    """containerd 2.x configuration (version 3): private root, state and socket; CRI with runc and CDI."""
    runtime = "plugins.'io.containerd.cri.v1.runtime'"
    return "\n".join(
        [
            "version = 3",
            f"root = '{layout.containerd_root}'",
            f"state = '{layout.containerd_state}'",
            "[plugins.'io.containerd.cri.v1.images']",
            "  snapshotter = 'overlayfs'",
            "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
            f"  sandbox = '{node_images.qualified(node_images.PAUSE_IMAGE)}'",
            f"[{runtime}]",
            "  restrict_oom_score_adj = true",
            f"  cdi_spec_dirs = ['{layout.cdi_dir}']",
            f"[{runtime}.containerd.runtimes.runc]",
            "  runtime_type = 'io.containerd.runc.v2'",
            f"[{runtime}.containerd.runtimes.runc.options]",
            f"  BinaryName = '{RUNC}'",
            f"  Root = '{layout.runc_root}'",
            "  SystemdCgroup = false",
            f"[{runtime}.cni]",
            f"  bin_dirs = ['{CNI_BIN_DIR}']",
            f"  conf_dir = '{layout.cni_dir}'",
            "[plugins.'io.containerd.grpc.v1.cri']",
            "  stream_server_address = '127.0.0.1'",
            "  stream_server_port = '0'",
            "[plugins.'io.containerd.server.v1.grpc']",
            f"  address = '{layout.containerd_socket}'",
            "[plugins.'io.containerd.server.v1.ttrpc']",
            f"  address = '{layout.containerd_socket}.ttrpc'",
            "",
        ]
    )


def kubelet_config(layout: RealNodeLayout, port: int, healthz_port: int) -> dict[str, object]:
    """The KubeletConfiguration: loopback only, cgroup v1, no image GC or disk eviction to surprise a test."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        # The API server dials in anonymously (exec, logs): the dev cluster has no kubelet client cert.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "serializeImagePulls": False,
        "registerNode": True,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
    }


def containerd_argv(layout: RealNodeLayout) -> list[str]:
    return [str(binary_path("containerd")), f"--config={layout.containerd_config}"]


def kubelet_argv(layout: RealNodeLayout, kubeconfig: Path, spec: RealNodeSpec) -> list[str]:
    labels = ",".join(f"{key}={value}" for key, value in sorted(spec.labels().items()))
    return [
        str(binary_path("kubelet")),
        f"--config={layout.kubelet_config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={layout.kubelet_root}",
        f"--cert-dir={layout.kubelet_certs}",
        f"--node-labels={labels}",
        "--v=1",
    ]


def device_plugin_argv(layout: RealNodeLayout, spec: RealNodeSpec) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gpupool.devcluster.device_plugin",
        f"--node={node_name()}",
        f"--gpus={spec.gpus}",
        f"--plugin-dir={DEVICE_PLUGIN_DIR}",
        f"--device-dir={layout.device_dir}",
    ]


def import_images(layout: RealNodeLayout) -> None:
    """Import the toolbox and pause archives into containerd's CRI namespace (`ctr images import`)."""
    for archive in sorted(layout.images.glob("*.tar")):
        result = subprocess.run(
            [
                str(binary_path("ctr")),
                f"--address={layout.containerd_socket}",
                f"--namespace={NAMESPACE}",
                "images",
                "import",
                str(archive),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RealNodeError(f"ctr images import {archive.name} failed: {result.stderr[-1500:]}")


def save_sysctls(layout: RealNodeLayout) -> None:
    """Record the sysctls the kubelet will change (once: a restarted kubelet must not record its own values)."""
    if layout.sysctls.exists():
        return
    values = {name: (Path("/proc/sys") / name).read_text().strip() for name in KUBELET_SYSCTLS}
    layout.sysctls.write_text(json.dumps(values))


def note_plugin_dir() -> bool:
    """Create the device-plugin folder if missing; True when this call created /var/lib/kubelet."""
    created = not DEVICE_PLUGIN_DIR.parent.exists()
    DEVICE_PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
    return created


def clean_up(layout: RealNodeLayout) -> list[str]:
    """Undo what the real node left on this machine; return what was done (for the log).

    Called after its processes stopped. Order: containers still running (runc, by the
    state folder containerd gave it), shims of our containerd, mounts under the node's
    folder (deepest first), the sysctls, the device-plugin sockets, the folder itself.
    """
    done: list[str] = []
    if not layout.root.exists():
        return done
    runc_state = layout.runc_root / NAMESPACE
    if runc_state.is_dir() and RUNC.is_file():
        listed = subprocess.run(
            [str(RUNC), f"--root={runc_state}", "list", "--quiet"], capture_output=True, text=True
        ).stdout.split()
        for container in listed:
            subprocess.run([str(RUNC), f"--root={runc_state}", "delete", "--force", container], capture_output=True)
        if listed:
            done.append(f"removed {len(listed)} container(s)")
    shims = _our_shims(layout)
    for pid in shims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if shims:
        done.append(f"stopped {len(shims)} shim(s)")
    mounts = _mounts_under(layout.root)
    for mount_point in mounts:
        subprocess.run(["umount", "--lazy", mount_point], capture_output=True)
    if mounts:
        done.append(f"unmounted {len(mounts)} mount(s)")
    if layout.sysctls.is_file():
        for name, value in json.loads(layout.sysctls.read_text()).items():
            try:
                (Path("/proc/sys") / name).write_text(value)
            except OSError:
                done.append(f"could not restore {name.replace('/', '.')}={value}")
        done.append("restored the kubelet's sysctls")
    if not socket_answers(KUBELET_SOCKET):
        created_var_lib_kubelet = layout.created_plugin_dir.exists()
        for leftover in DEVICE_PLUGIN_DIR.glob("*") if DEVICE_PLUGIN_DIR.is_dir() else []:
            if leftover.is_socket() or leftover.name == "kubelet_internal_checkpoint":
                leftover.unlink(missing_ok=True)
        if created_var_lib_kubelet:
            shutil.rmtree(DEVICE_PLUGIN_DIR.parent, ignore_errors=True)
    shutil.rmtree(layout.root, ignore_errors=True)
    done.append(f"deleted {layout.root}")
    return done


def _our_shims(layout: RealNodeLayout) -> list[int]:
    shim = str(binary_path("containerd-shim-runc-v2"))
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and argv[0].decode(errors="replace") == shim
            and str(layout.containerd_socket).encode() in b" ".join(argv)
        ):
            found.append(int(proc.name))
    return found


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(root)
    points: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))
