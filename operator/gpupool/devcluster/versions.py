"""Pinned versions of the local control plane and where their binaries are cached.

Who uses this: `build` (what to build and where to put it) and `cluster` (which binaries
to run). Bump a version here together with the matching `hack/<component>/go.mod`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.22.0"
CONTAINERD_VERSION = "v2.4.2"
PAUSE_VERSION = "v1"
"""gpupool's own sandbox process (`hack/pause`), versioned by hand when its source changes."""


@dataclass(frozen=True)
class Component:
    """One Go build: a module under `hack/`, the packages it builds and the binaries they make."""

    name: str
    version: str
    module: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    ldflags: str = "-s -w"
    tags: tuple[str, ...] = ()
    """Go build tags (`-tags`), e.g. the storage drivers containerd is built without."""


def _kube_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        [
            "-s -w",
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    )


COMPONENTS: tuple[Component, ...] = (
    Component(
        name="etcd",
        version=ETCD_VERSION,
        module="etcd",
        packages=(".",),
        binaries=("etcd",),
    ),
    Component(
        name="kubernetes",
        version=KUBERNETES_VERSION,
        module="kube",
        packages=(
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
            "k8s.io/kubernetes/cmd/kubectl",
        ),
        binaries=("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"),
        ldflags=_kube_ldflags(),
    ),
    Component(
        name="kubelet",
        version=KUBERNETES_VERSION,
        module="kube",
        packages=("k8s.io/kubernetes/cmd/kubelet",),
        binaries=("kubelet",),
        ldflags=_kube_ldflags(),
    ),
    Component(
        name="containerd",
        version=CONTAINERD_VERSION,
        module="containerd",
        packages=(
            "github.com/containerd/containerd/v2/cmd/containerd",
            "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
            "github.com/containerd/containerd/v2/cmd/ctr",
        ),
        binaries=("containerd", "containerd-shim-runc-v2", "ctr"),
        ldflags=f"-s -w -X github.com/containerd/containerd/v2/version.Version={CONTAINERD_VERSION}",
        # Snapshotters that need cgo or kernel features this node does not use.
        tags=("no_btrfs", "no_devmapper", "no_zfs"),
    ),
    Component(
        name="pause",
        version=PAUSE_VERSION,
        module="pause",
        packages=(".",),
        binaries=("pause",),
    ),
    Component(
        name="kwok",
        version=KWOK_VERSION,
        module="kwok",
        packages=("sigs.k8s.io/kwok/cmd/kwok",),
        binaries=("kwok",),
    ),
    Component(
        name="helm",
        version=HELM_VERSION,
        module="helm",
        packages=("helm.sh/helm/v3/cmd/helm",),
        binaries=("helm",),
        ldflags=f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
    ),
)


def cache_root() -> Path:
    """Root of gpupool's machine-wide cache (`$GPUPOOL_CACHE_DIR`, default ~/.cache/gpupool)."""
    configured = os.environ.get("GPUPOOL_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpupool"


def bin_dir(component: Component) -> Path:
    """Versioned folder holding one component's binaries, e.g. ~/.cache/gpupool/bin/etcd-v3.6.16."""
    return cache_root() / "bin" / f"{component.name}-{component.version}"


def binary_path(name: str) -> Path:
    """Absolute path of a cached binary by its name (`kube-apiserver`, `etcd`, `kwok`, ...)."""
    for component in COMPONENTS:
        if name in component.binaries:
            return bin_dir(component) / name
    raise KeyError(f"no component builds a binary named {name!r}")
