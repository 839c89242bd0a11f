"""Build and check the gpupool container image without a Docker engine (`make image`, `make image-check`).

Who calls this: the Makefile (`python -m gpupool.devcluster.image build|check`) and the
integration test `tests/integration/test_image.py` (through `image_exists` and `check`).

No public registry is reached here, so the Dockerfile's base comes from this machine:

1. The tools: `buildah` and `mmdebstrap`, installed with apt-get when missing (as root).
2. The base: a minimal Debian rootfs (mmdebstrap, variant minbase, with python3 and
   python3-venv and without docs, man pages or locales), added to a `buildah from scratch`
   container and committed as `BASE_REPO:<suite>-<recipe hash>`, also tagged
   `BASE_REPO:<suite>` (the Dockerfile's default). The hash covers the suite, variant,
   packages and excludes, so a second build with the same recipe finds the base in local
   storage and skips this step.
3. The image: `buildah bud --isolation chroot` of the repository's Dockerfile with
   `--build-arg BASE=` the hashed tag, `--layers` (unchanged steps come from cache) and the
   machine's CA bundle as the build secret `pip-ca` (pip in the build stage trusts what the
   host trusts; a secret never lands in a layer).

Every buildah call uses the `vfs` storage driver: it needs no overlay or FUSE support,
which a sandboxed machine may not have. `check` runs commands inside the built image as
the image's own user (65532, not root): with `buildah run`, then (as root) on the image's
rootfs mounted read-only with a tmpfs on /tmp.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]

IMAGE = "localhost/gpupool:dev"
BASE_REPO = "localhost/gpupool-base"
STORAGE_DRIVER = "vfs"
ISOLATION = "chroot"
IMAGE_UID = 65532
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
INPUTS_LABEL = "org.gpupool.build-inputs"
# The binaries this module runs, and the Debian package of each.
TOOLS = {"buildah": "buildah", "mmdebstrap": "mmdebstrap"}


class ImageError(RuntimeError):
    """A step of building or checking the image failed; the message says which and why."""


@dataclass(frozen=True)
class BaseRecipe:
    """What goes into the Debian base image; its hash names the cached base."""

    suite: str = "bookworm"
    variant: str = "minbase"
    packages: tuple[str, ...] = ("python3", "python3-venv")
    # dpkg path excludes: documentation, man pages and translations are of no use in the image.
    excludes: tuple[str, ...] = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")

    def key(self) -> str:
        """A short hash of the whole recipe (order of packages and excludes does not matter)."""
        text = json.dumps(
            {
                "suite": self.suite,
                "variant": self.variant,
                "packages": sorted(self.packages),
                "excludes": sorted(self.excludes),
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def tag(self) -> str:
        """The base's tag pinned to this recipe, e.g. `localhost/gpupool-base:bookworm-1a2b3c4d5e6f`."""
        return f"{BASE_REPO}:{self.suite}-{self.key()}"

    def default_tag(self) -> str:
        """The tag the Dockerfile names by default, `localhost/gpupool-base:<suite>`."""
        return f"{BASE_REPO}:{self.suite}"

    def mmdebstrap_argv(self, target: Path) -> list[str]:
        """The mmdebstrap command that writes this base as a tarball at `target`."""
        argv = ["mmdebstrap", f"--variant={self.variant}", f"--include={','.join(self.packages)}"]
        argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in self.excludes]
        # Keep the copyright files, as Debian asks of anything redistributed.
        argv.append("--dpkgopt=path-include=/usr/share/doc/*/copyright")
        return [*argv, self.suite, str(target)]


# ---------------------------------------------------------------- build inputs


# What the Dockerfile copies from the context (keep in step with .dockerignore).
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
CONTEXT_TREES = ("operator",)
IGNORED_PARTS = ("__pycache__",)
IGNORED_SUFFIXES = (".pyc", ".egg-info")


def context_files(context: Path) -> list[Path]:
    """The files of `context` that go into the build, as paths relative to it, sorted."""
    found = [Path(name) for name in CONTEXT_FILES if (context / name).is_file()]
    for tree in CONTEXT_TREES:
        for path in (context / tree).rglob("*"):
            relative = path.relative_to(context)
            ignored = any(part in IGNORED_PARTS or part.endswith(IGNORED_SUFFIXES) for part in relative.parts)
            if path.is_file() and not ignored:
                found.append(relative)
    return sorted(found)


def inputs_hash(context: Path, base_tag: str) -> str:
    """A hash of the base tag and of every build input's path and content."""
    digest = hashlib.sha256(base_tag.encode())
    for relative in context_files(context):
        digest.update(b"\0" + str(relative).encode() + b"\0")
        digest.update((context / relative).read_bytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- commands


def buildah(*args: str) -> list[str]:
    """A buildah command line on the vfs storage driver."""
    return ["buildah", "--storage-driver", STORAGE_DRIVER, *args]


def bud_argv(
    context: Path, base_tag: str, inputs: str, tag: str = IMAGE, ca_bundle: Path | None = CA_BUNDLE
) -> list[str]:
    """The `buildah bud` command that builds the Dockerfile in `context` on `base_tag`.

    The image is labelled with `inputs` (see `inputs_hash`), so a later build can tell it is current."""
    argv = buildah("bud", "--isolation", ISOLATION, "--layers", "--build-arg", f"BASE={base_tag}")
    argv += ["--label", f"{INPUTS_LABEL}={inputs}", "-t", tag]
    if ca_bundle is not None and ca_bundle.is_file():
        argv += ["--secret", f"id=pip-ca,src={ca_bundle}"]
    return [*argv, "-f", str(context / "Dockerfile"), str(context)]


# The script `check` runs inside the image; it stops at the first failure and says which.
CHECK_SCRIPT = f"""fail() {{ echo "check failed: $*" >&2; exit 1; }}
[ "$(id -u)" = {IMAGE_UID} ] || fail "runs as uid $(id -u), not {IMAGE_UID}"
gpupool --help >/dev/null || fail "gpupool --help"
gpupool operator run --help >/dev/null || fail "gpupool operator run --help"
gpupool agent run --help >/dev/null || fail "gpupool agent run --help"
python3 -c 'import pynvml, kopf, kubernetes, numpy, pydantic' || fail "importing the runtime dependencies"
[ "$HOME" = /tmp ] || fail "HOME is $HOME, not /tmp"
[ "${{PYTHONDONTWRITEBYTECODE:-}}" = 1 ] || fail "PYTHONDONTWRITEBYTECODE is not 1"
! touch /opt/gpupool/.written 2>/dev/null || fail "the image user can write to /opt/gpupool"
touch /tmp/.gpupool-check && rm /tmp/.gpupool-check || fail "/tmp is not writable"
! command -v pip >/dev/null || fail "pip is in the runtime image"
echo "uid $(id -u): gpupool --help, operator run --help, agent run --help all ran"
"""


# ---------------------------------------------------------------- tools


def missing_tools() -> list[str]:
    """The binaries of TOOLS not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def ensure_tools(progress: Progress = print) -> None:
    """Install buildah and mmdebstrap with apt-get when they are missing; ImageError if that cannot be done."""
    missing = missing_tools()
    if not missing:
        return
    packages = [TOOLS[tool] for tool in missing]
    hint = f"install them with `apt-get install -y {' '.join(packages)}`"
    if shutil.which("apt-get") is None:
        raise ImageError(f"{', '.join(missing)} not on PATH and apt-get is not available; {hint} or the like")
    if os.geteuid() != 0:
        raise ImageError(f"{', '.join(missing)} not on PATH; {hint} as root (or run `make image` as root)")
    progress(f"gpupool image: installing {' '.join(packages)} with apt-get ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *packages]
    result = _capture(install, env)
    if result.returncode != 0:
        progress("gpupool image: apt-get install failed; updating the package index and trying again")
        _capture(["apt-get", "update", "-q"], env)
        result = _capture(install, env)
    if result.returncode != 0 or missing_tools():
        tail = result.stdout[-2000:]
        raise ImageError(f"apt-get install {' '.join(packages)} failed (exit {result.returncode}):\n{tail}")


# ---------------------------------------------------------------- base and image


def image_config(name: str) -> dict[str, Any] | None:
    """The OCI config (User, Env, Labels, ...) of image `name` in buildah's (vfs) storage; None when absent."""
    if shutil.which("buildah") is None:
        return None
    result = subprocess.run(
        buildah("inspect", "--type", "image", name), stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    if result.returncode != 0:
        return None
    config: dict[str, Any] = json.loads(result.stdout).get("OCIv1", {}).get("config", {})
    return config


def image_labels(name: str) -> dict[str, str] | None:
    """The labels of image `name`; None when there is no such image."""
    config = image_config(name)
    return None if config is None else dict(config.get("Labels") or {})


def image_exists(name: str) -> bool:
    """True when `name` is an image in buildah's (vfs) storage."""
    return image_labels(name) is not None


def ensure_base(recipe: BaseRecipe, progress: Progress = print) -> str:
    """The base image's pinned tag, building and importing it first unless storage has it."""
    tag = recipe.tag()
    if image_exists(tag):
        progress(f"gpupool image: base {tag} is in local storage (recipe unchanged)")
    else:
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="gpupool-base-") as folder:
            rootfs = Path(folder) / "rootfs.tar"
            included = ", ".join(recipe.packages)
            progress(f"gpupool image: building the {recipe.suite} rootfs with mmdebstrap ({included})")
            _run(recipe.mmdebstrap_argv(rootfs), "mmdebstrap")
            progress(f"gpupool image: importing it as {tag}")
            container = _run(buildah("from", "scratch"), "buildah from scratch").strip()
            try:
                _run(buildah("add", container, str(rootfs), "/"), "buildah add")
                _run(buildah("config", "--cmd", '["/usr/bin/python3"]', container), "buildah config")
                _run(buildah("commit", container, tag), "buildah commit")
            finally:
                subprocess.run(buildah("rm", container), capture_output=True, check=False)
        progress(f"gpupool image: base built in {time.monotonic() - start:.0f}s")
    _run(buildah("tag", tag, recipe.default_tag()), "buildah tag")
    return tag


def build(
    context: Path, recipe: BaseRecipe | None = None, tag: str = IMAGE, force: bool = False, progress: Progress = print
) -> None:
    """Build `tag` from the Dockerfile in `context`: tools, cached base, then `buildah bud`.

    When `tag` already carries the hash of these very inputs (and not `force`), nothing is run."""
    if not (context / "Dockerfile").is_file():
        raise ImageError(f"no Dockerfile in {context}")
    start = time.monotonic()
    ensure_tools(progress)
    base = ensure_base(recipe or BaseRecipe(), progress)
    inputs = inputs_hash(context, base)
    if not force and (image_labels(tag) or {}).get(INPUTS_LABEL) == inputs:
        progress(f"gpupool image: {tag} is current (build inputs {inputs} unchanged); `--force` rebuilds it")
        return
    progress(f"gpupool image: buildah bud -t {tag} (base {base}, build inputs {inputs})")
    argv = bud_argv(context, base, inputs, tag)
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise ImageError(f"buildah bud failed (exit {result.returncode}); its output is above")
    progress(f"gpupool image: built {tag} in {time.monotonic() - start:.0f}s ({image_size(tag)})")


def image_size(name: str) -> str:
    """The image's size as `buildah images` prints it, e.g. '512 MB'."""
    result = subprocess.run(
        buildah("images", "--format", "{{.Size}}", name), capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "size unknown"


# Run by `unshare --mount` as root: the image's rootfs bound read-only over itself, a tmpfs on
# /tmp and /proc, then CHECK_SCRIPT chrooted as the image's user with only the image's env.
# Arguments: rootfs, user, check script, then the image's NAME=value env entries.
READ_ONLY_RUN = """set -eu
root=$1 user=$2 check=$3
shift 3
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs tmpfs "$root/tmp"
mount -t proc proc "$root/proc"
exec chroot --userspec="$user" "$root" /usr/bin/env -i "$@" /bin/sh -c "cd /tmp && $check"
"""


def read_only_argv(rootfs: Path, config: dict[str, Any]) -> list[str]:
    """The command that runs CHECK_SCRIPT in `rootfs` mounted read-only, as the image config's user and env."""
    user = config.get("User") or "0"
    if ":" not in user:
        user = f"{user}:{user}"
    env = list(config.get("Env") or [])
    return [
        "unshare",
        "--mount",
        "--",
        "/bin/sh",
        "-c",
        READ_ONLY_RUN,
        "read-only-run",
        str(rootfs),
        user,
        CHECK_SCRIPT,
        *env,
    ]


def can_run_read_only() -> bool:
    """The read-only run needs root (to mount) and util-linux's unshare and chroot."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("chroot") is not None


def check(tag: str = IMAGE) -> list[str]:
    """Check `tag` from inside; one line per run that passed, or ImageError with the failing run's output.

    1. `buildah run` with the image's own configuration (its USER, ENV and WORKDIR).
    2. Where `can_run_read_only`: the same script on the image's rootfs mounted read-only,
       with only /tmp writable, as a Pod with readOnlyRootFilesystem and an emptyDir on /tmp runs it.
    """
    config = image_config(tag)
    if config is None:
        raise ImageError(f"no image {tag} in buildah's {STORAGE_DRIVER} storage; build it with `make image`")
    container = _run(buildah("from", tag), "buildah from").strip()
    try:
        run = buildah("run", "--isolation", ISOLATION, container, "--", "/bin/sh", "-c", CHECK_SCRIPT)
        passed = [f"buildah run: {_inside(run, 'buildah run')}"]
        if can_run_read_only():
            rootfs = Path(_run(buildah("mount", container), "buildah mount").strip())
            passed.append(f"read-only root: {_inside(read_only_argv(rootfs, config), 'the read-only run')}")
        else:
            passed.append("read-only root: not run (needs root, unshare and chroot)")
    finally:
        subprocess.run(buildah("umount", container), capture_output=True, check=False)
        subprocess.run(buildah("rm", container), capture_output=True, check=False)
    return passed


def _inside(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise ImageError(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def _capture(argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _run(argv: Sequence[str], what: str) -> str:
    result = _capture(argv)
    if result.returncode != 0:
        raise ImageError(f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}")
    return result.stdout


def repo_root() -> Path:
    """The checkout's root (where the Dockerfile is): next to this package's `operator/`, else the cwd."""
    here = Path(__file__).resolve().parents[3]
    return here if (here / "Dockerfile").is_file() else Path.cwd()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpupool.devcluster.image", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "check"])
    parser.add_argument("--tag", default=IMAGE, help=f"the image to build or check (default {IMAGE})")
    parser.add_argument("--context", type=Path, default=None, help="folder with the Dockerfile (default: the checkout)")
    parser.add_argument("--force", action="store_true", help="build: run buildah bud even when the image is current")
    args = parser.parse_args(argv)
    try:
        if args.action == "build":
            build(args.context or repo_root(), tag=args.tag, force=args.force)
        else:
            for line in check(args.tag):
                print(f"gpupool image check {args.tag}: {line}")
    except (ImageError, subprocess.TimeoutExpired) as error:
        print(f"gpupool image {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
