"""`gpupool.devcluster.image` without buildah: the base recipe, command lines, build inputs, tool installs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gpupool.devcluster import image
from gpupool.devcluster.image import BaseRecipe, ImageError


def test_the_base_key_follows_the_recipe_not_the_order_of_its_packages() -> None:
    recipe = BaseRecipe()
    assert recipe.key() == BaseRecipe(packages=tuple(reversed(recipe.packages))).key()
    assert recipe.key() != BaseRecipe(packages=(*recipe.packages, "curl")).key()
    assert recipe.key() != BaseRecipe(suite="trixie").key()
    assert recipe.tag() == f"localhost/gpupool-base:bookworm-{recipe.key()}"
    assert recipe.default_tag() == "localhost/gpupool-base:bookworm"


def test_mmdebstrap_builds_a_minimal_tarball_with_python_and_venv(tmp_path: Path) -> None:
    argv = BaseRecipe().mmdebstrap_argv(tmp_path / "rootfs.tar")
    assert argv[0] == "mmdebstrap"
    assert "--variant=minbase" in argv
    assert "--include=python3,python3-venv" in argv
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv
    assert argv[-2:] == ["bookworm", str(tmp_path / "rootfs.tar")]


def test_bud_uses_chroot_vfs_the_pinned_base_and_passes_the_ca_bundle_as_a_secret(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    argv = image.bud_argv(tmp_path, "localhost/gpupool-base:bookworm-abc", "f00d", ca_bundle=bundle)
    assert argv[:3] == ["buildah", "--storage-driver", "vfs"]
    joined = " ".join(argv)
    assert "bud --isolation chroot --layers" in joined
    assert "--build-arg BASE=localhost/gpupool-base:bookworm-abc" in joined
    assert f"--label {image.INPUTS_LABEL}=f00d" in joined
    assert f"--secret id=pip-ca,src={bundle}" in joined
    assert argv[-3:] == ["-f", str(tmp_path / "Dockerfile"), str(tmp_path)]
    without = image.bud_argv(tmp_path, "b", "f00d", ca_bundle=tmp_path / "missing.crt")
    assert "--secret" not in without


def _context(root: Path) -> Path:
    (root / "operator" / "gpupool" / "__pycache__").mkdir(parents=True)
    (root / "operator" / "gpupool.egg-info").mkdir()
    (root / "Dockerfile").write_text("FROM x\n")
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "README.md").write_text("# r\n")
    (root / "operator" / "gpupool" / "cli.py").write_text("print(1)\n")
    (root / "operator" / "gpupool" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    (root / "operator" / "gpupool.egg-info" / "PKG-INFO").write_text("x")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("")
    return root


def test_build_inputs_are_the_copied_files_without_bytecode_or_egg_info(tmp_path: Path) -> None:
    context = _context(tmp_path)
    assert [str(p) for p in image.context_files(context)] == [
        "Dockerfile",
        "README.md",
        "operator/gpupool/cli.py",
        "pyproject.toml",
    ]


def test_the_inputs_hash_changes_with_content_and_base_but_not_with_bytecode(tmp_path: Path) -> None:
    context = _context(tmp_path)
    first = image.inputs_hash(context, "base-a")
    (context / "operator" / "gpupool" / "__pycache__" / "other.pyc").write_bytes(b"\1")
    (context / "tests" / "test_y.py").write_text("")
    assert image.inputs_hash(context, "base-a") == first
    assert image.inputs_hash(context, "base-b") != first
    (context / "operator" / "gpupool" / "cli.py").write_text("print(2)\n")
    assert image.inputs_hash(context, "base-a") != first


def _tools(monkeypatch: pytest.MonkeyPatch, present: set[str], apt_get: bool = True, root: bool = True) -> None:
    def which(name: str) -> str | None:
        if name == "apt-get":
            return "/usr/bin/apt-get" if apt_get else None
        return f"/usr/bin/{name}" if name in present else None

    monkeypatch.setattr(image.shutil, "which", which)
    monkeypatch.setattr(image.os, "geteuid", lambda: 0 if root else 1000)


def test_tools_already_on_path_install_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _tools(monkeypatch, {"buildah", "mmdebstrap"})
    monkeypatch.setattr(image, "_capture", lambda *a, **k: pytest.fail("apt-get ran"))
    image.ensure_tools(progress=lambda _: None)


def test_missing_tools_without_apt_or_root_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    _tools(monkeypatch, {"buildah"}, apt_get=False)
    with pytest.raises(ImageError, match=r"mmdebstrap not on PATH.*apt-get install -y mmdebstrap"):
        image.ensure_tools(progress=lambda _: None)
    _tools(monkeypatch, set(), root=False)
    with pytest.raises(ImageError, match=r"apt-get install -y buildah mmdebstrap` as root"):
        image.ensure_tools(progress=lambda _: None)


def test_a_failed_install_updates_the_index_and_tries_once_more(monkeypatch: pytest.MonkeyPatch) -> None:
    present: set[str] = set()
    _tools(monkeypatch, present)
    calls: list[list[str]] = []

    def fake(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        assert env is not None and env["DEBIAN_FRONTEND"] == "noninteractive"
        ok = argv[1] == "update" or len(calls) > 1
        if argv[1] == "install" and ok:
            present.update({"buildah", "mmdebstrap"})
        return subprocess.CompletedProcess(argv, 0 if ok else 100, "E: stale index\n")

    monkeypatch.setattr(image, "_capture", fake)
    image.ensure_tools(progress=lambda _: None)
    assert [argv[1] for argv in calls] == ["install", "update", "install"]
    assert calls[0][-2:] == ["buildah", "mmdebstrap"] and "-y" in calls[0]


def test_a_current_image_is_not_rebuilt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    context = _context(tmp_path)
    monkeypatch.setattr(image, "ensure_tools", lambda progress: None)
    monkeypatch.setattr(image, "ensure_base", lambda recipe, progress: "base-a")
    current = image.inputs_hash(context, "base-a")
    monkeypatch.setattr(image, "image_labels", lambda name: {image.INPUTS_LABEL: current})
    monkeypatch.setattr(image.subprocess, "run", lambda *a, **k: pytest.fail("buildah bud ran"))
    said: list[str] = []
    image.build(context, progress=said.append)
    assert "is current" in said[-1]


def test_the_read_only_run_uses_the_image_user_and_env_only(tmp_path: Path) -> None:
    config = {"User": "65532:65532", "Env": ["PATH=/opt/gpupool/bin:/usr/bin", "HOME=/tmp"]}
    argv = image.read_only_argv(tmp_path, config)
    assert argv[:3] == ["unshare", "--mount", "--"]
    assert argv[-5:] == [str(tmp_path), "65532:65532", image.CHECK_SCRIPT, *config["Env"]]
    script = argv[5]
    assert 'mount -o remount,bind,ro "$root"' in script and 'mount -t tmpfs tmpfs "$root/tmp"' in script
    assert 'chroot --userspec="$user"' in script and "env -i" in script
    assert image.read_only_argv(tmp_path, {"User": "1000"})[-2:] == ["1000:1000", image.CHECK_SCRIPT]


def test_the_check_needs_a_built_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "image_config", lambda name: None)
    with pytest.raises(ImageError, match="build it with `make image`"):
        image.check()
