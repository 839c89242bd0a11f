"""Install Debian packages the dev cluster runs (Prometheus; runc, the CNI plugins and
busybox of the real node), non-interactively and without starting their services.

Who calls this: `prometheus.ensure_installed` and `realnode.ensure_host_packages`, from
`gpupool dev build|up` and the test fixtures. A lock file serialises concurrent callers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from gpupool.devcluster.versions import cache_root

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


class DebianPackageError(RuntimeError):
    """A package could not be installed; the message says how to install it by hand."""


def apt_install(
    packages: Sequence[str], installed: Callable[[], bool], progress: Callable[[str], None] = print
) -> None:
    """Install `packages` with apt-get unless `installed()` already holds (checked again under the lock).

    Runs `apt-get install -y --no-install-recommends`, with an `apt-get update` and a second
    try when the first fails (a stale or missing package index). Needs root and apt-get.
    """
    if installed():
        return
    names = " ".join(packages)
    if shutil.which("apt-get") is None:
        raise DebianPackageError(f"apt-get is not available; install {names} by hand")
    if os.geteuid() != 0:
        raise DebianPackageError(f"run `sudo apt-get install -y --no-install-recommends {names}` (or run as root)")
    lock_path = cache_root() / "apt-install.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not installed():
                _install(packages, progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not installed():
        raise DebianPackageError(f"apt-get installed {names} but what they provide is still missing")


def _install(packages: Sequence[str], progress: Callable[[str], None]) -> None:
    names = " ".join(packages)
    progress(f"gpupool dev: installing {names} from Debian's packages (apt-get install) ...")
    start = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    with _services_kept_from_starting():
        result = _run(install, env)
        if result.returncode != 0:
            progress("gpupool dev: apt-get install failed; updating the package index and trying again")
            update = _run(["apt-get", "update"], env)
            if update.returncode != 0:
                raise DebianPackageError(f"apt-get update failed:\n{update.stdout[-2000:]}")
            result = _run(install, env)
    if result.returncode != 0:
        raise DebianPackageError(
            f"apt-get install {names} failed (exit {result.returncode}); install them by hand:\n{result.stdout[-2000:]}"
        )
    progress(f"gpupool dev: installed {names} in {time.monotonic() - start:.0f}s")


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@contextlib.contextmanager
def _services_kept_from_starting() -> Iterator[None]:
    """Keep package scripts from starting services (Debian's policy-rc.d, exit 101) while installing.

    An existing policy-rc.d is left as it is (container images ship one that says no).
    """
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text("#!/bin/sh\n# gpupool dev: no services during this install\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)
