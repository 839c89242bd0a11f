"""The real node's files: the OCI archives containerd imports, and the configuration the
kubelet and containerd read (what this machine needs is in them, and nothing leaves loopback)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from gpupool.devcluster import node_images, realnode


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.fixture
def recipe() -> node_images.ImageRecipe:
    return node_images.ImageRecipe(
        name="local/toolbox:1",
        files={"bin/busybox": (b"\x7fELF-not-really", 0o755)},
        symlinks={"bin/sh": "busybox", "bin/sleep": "busybox"},
        command=("/bin/sh",),
    )


def test_an_archive_is_an_oci_layout_whose_blobs_match_their_digests(
    tmp_path: Path, recipe: node_images.ImageRecipe
) -> None:
    members = _members(node_images.write_archive(recipe, tmp_path / "toolbox.tar"))
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(members["index.json"])
    (entry,) = index["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "docker.io/local/toolbox:1"
    for name, data in members.items():
        if name.startswith("blobs/sha256/") and data:
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(members[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    config = json.loads(members[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
    layer = members[f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"]
    raw = gzip.decompress(layer)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    assert config["config"]["Cmd"] == ["/bin/sh"]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        links = {m.name: m.linkname for m in tar.getmembers() if m.issym()}
    assert links == {"bin/sh": "busybox", "bin/sleep": "busybox"}


def test_the_same_inputs_write_the_same_bytes(tmp_path: Path, recipe: node_images.ImageRecipe) -> None:
    first = node_images.write_archive(recipe, tmp_path / "a.tar").read_bytes()
    assert node_images.write_archive(recipe, tmp_path / "b.tar").read_bytes() == first


@pytest.mark.parametrize(
    ("short", "qualified"),
    [
        ("local/toolbox:1", "docker.io/local/toolbox:1"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("registry.example/team/app:2", "registry.example/team/app:2"),
        ("localhost/app:1", "localhost/app:1"),
    ],
)
def test_short_image_names_are_qualified_as_the_kubelet_does(short: str, qualified: str) -> None:
    assert node_images.qualified(short) == qualified


def test_the_kubelet_serves_on_loopback_on_cgroup_v1_without_image_gc(tmp_path: Path) -> None:
    config = realnode.kubelet_config(realnode.RealNodeLayout(tmp_path), port=10350, healthz_port=10348)
    assert (config["address"], config["healthzBindAddress"], config["readOnlyPort"]) == ("127.0.0.1", "127.0.0.1", 0)
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["imageGCHighThresholdPercent"] == 100
    assert str(tmp_path / "realnode" / "containerd.sock") in str(config["containerRuntimeEndpoint"])


def test_containerd_keeps_oom_scores_and_pins_the_local_pause_image(tmp_path: Path) -> None:
    text = realnode.containerd_config(realnode.RealNodeLayout(tmp_path))
    assert "restrict_oom_score_adj = true" in text
    assert "sandbox = 'docker.io/local/pause:1'" in text
    assert f"Root = '{tmp_path / 'realnode' / 'runc'}'" in text
    assert "stream_server_address = '127.0.0.1'" in text


def test_the_node_carries_gpupools_and_gfds_labels() -> None:
    labels = realnode.RealNodeSpec(gpus=4).labels()
    assert labels[realnode.LABEL_NODE_KIND] == "real"
    assert labels["nvidia.com/gpu.present"] == "true" and labels["nvidia.com/gpu.count"] == "4"
    assert labels["gpupool.io/gpu-model"] == realnode.DEFAULT_GPU_MODEL
