"""The two images the dev cluster's real node runs, written as OCI archives without a registry.

Who calls this: `realnode.write_configuration` writes both archives when the dev cluster
adds its real node (`cluster.DevCluster.add_real_node`), and `realnode.import_images` imports them into
containerd's `k8s.io` namespace with `ctr images import` before the kubelet starts. No registry can be
reached here, so the images are built from files on this machine:

- `local/toolbox:1` — Debian's static busybox (`busybox-static`) with a link per applet
  under /bin (`sh`, `env`, `sleep`, `cat`, `nc`, ...), entrypoint-free: pods name their
  command. Pods use it with `imagePullPolicy: Never`.
- `local/pause:1` — gpupool's own sandbox process (`hack/pause`, built with the control
  plane), containerd's pinned sandbox image.

An archive is an OCI image layout in a tar: `oci-layout`, `index.json` (with the
`io.containerd.image.name` annotation that names the image on import) and the blobs — one
gzip'd layer, the config and the manifest — all content-addressed. The bytes depend only
on the input files (fixed mtimes, sorted entries), so a rebuild of unchanged inputs is the
same image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOOLBOX_IMAGE = "local/toolbox:1"
PAUSE_IMAGE = "local/pause:1"
BUSYBOX = Path("/bin/busybox")
_EPOCH = 0


class ImageBuildError(RuntimeError):
    """An image could not be written; the message says what is missing."""


@dataclass(frozen=True)
class ImageRecipe:
    """What goes into one single-layer image: files (path in the image -> bytes, mode), links, entrypoint."""

    name: str
    files: dict[str, tuple[bytes, int]]
    symlinks: dict[str, str]
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()


def qualified(name: str) -> str:
    """The name containerd and the kubelet use for a short image name (`docker.io/local/toolbox:1`)."""
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"


def busybox_applets(busybox: Path = BUSYBOX) -> list[str]:
    """The applets this busybox binary provides (`busybox --list`)."""
    if not busybox.is_file():
        raise ImageBuildError(f"{busybox} is missing; install Debian's busybox-static package")
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout
    return sorted(line.strip() for line in listed.splitlines() if line.strip() and "/" not in line)


def toolbox_recipe(busybox: Path = BUSYBOX) -> ImageRecipe:
    """`local/toolbox:1`: static busybox at /bin/busybox, every applet a link beside it."""
    links = {f"bin/{applet}": "busybox" for applet in busybox_applets(busybox) if applet != "busybox"}
    return ImageRecipe(
        name=TOOLBOX_IMAGE,
        files={"bin/busybox": (busybox.read_bytes(), 0o755), "tmp/.keep": (b"", 0o644)},
        symlinks=links,
        command=("/bin/sh",),
    )


def pause_recipe(pause_binary: Path) -> ImageRecipe:
    """`local/pause:1`: gpupool's pause binary as /pause, the entrypoint."""
    if not pause_binary.is_file():
        raise ImageBuildError(f"{pause_binary} is missing; run `gpupool dev build`")
    return ImageRecipe(
        name=PAUSE_IMAGE, files={"pause": (pause_binary.read_bytes(), 0o755)}, symlinks={}, entrypoint=("/pause",)
    )


def _layer(recipe: ImageRecipe) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders = sorted({str(Path(p).parent) for p in [*recipe.files, *recipe.symlinks]} - {"."})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _EPOCH
            tar.addfile(info)
        for path, (data, mode) in sorted(recipe.files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, _EPOCH
            tar.addfile(info, io.BytesIO(data))
        for path, target in sorted(recipe.symlinks.items()):
            info = tarfile.TarInfo(path)
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, _EPOCH
            tar.addfile(info)
    return buffer.getvalue()


def _blob(content: bytes, media_type: str) -> tuple[dict[str, Any], str, bytes]:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    return {"mediaType": media_type, "digest": digest, "size": len(content)}, digest, content


def write_archive(recipe: ImageRecipe, path: Path) -> Path:
    """Write `recipe` as an OCI image-layout tar at `path` (replaced atomically); return `path`."""
    raw = _layer(recipe)
    compressed = gzip.compress(raw, mtime=_EPOCH)
    layer, layer_digest, _ = _blob(compressed, "application/vnd.oci.image.layer.v1.tar+gzip")
    config_doc: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
    }
    if recipe.entrypoint:
        config_doc["config"]["Entrypoint"] = list(recipe.entrypoint)
    if recipe.command:
        config_doc["config"]["Cmd"] = list(recipe.command)
    config, config_digest, config_bytes = _blob(
        json.dumps(config_doc, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json"
    )
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    }
    manifest, manifest_digest, manifest_bytes = _blob(
        json.dumps(manifest_doc, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json"
    )
    tag = recipe.name.rsplit(":", 1)[1]
    manifest["annotations"] = {
        "io.containerd.image.name": qualified(recipe.name),
        "org.opencontainers.image.ref.name": tag,
    }
    manifest["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest]}
    entries = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
        f"blobs/sha256/{layer_digest.split(':')[1]}": compressed,
        f"blobs/sha256/{config_digest.split(':')[1]}": config_bytes,
        f"blobs/sha256/{manifest_digest.split(':')[1]}": manifest_bytes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".partial")
    with tarfile.open(staging, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _EPOCH
            tar.addfile(info)
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, _EPOCH
            tar.addfile(info, io.BytesIO(data))
    staging.replace(path)
    return path
