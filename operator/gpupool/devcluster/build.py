"""Build the control-plane binaries from Go modules, once per machine.

Who calls this: `gpupool dev build` and `gpupool dev up` (through `ensure_built`), and the
test fixture. Each component is a tiny module under `hack/` whose go.mod pins a published
version; `go build` runs with the machine's toolchain (`GOTOOLCHAIN=local`,
`CGO_ENABLED=0`) through the module proxy. Binaries land in a versioned cache folder
outside the repository; a second run finds them there and returns in well under a second.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from gpupool.devcluster.versions import COMPONENTS, Component, bin_dir, cache_root

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A component failed to build; the message carries the tail of the Go output."""


def hack_dir() -> Path:
    """The repository's `hack/` folder (the Go build modules live there)."""
    configured = os.environ.get("GPUPOOL_HACK_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(Path(__file__).resolve().parents[3] / "hack")
    candidates.append(Path.cwd() / "hack")
    for candidate in candidates:
        if (candidate / "kube" / "go.mod").is_file():
            return candidate
    raise BuildError(
        "cannot find the hack/ folder with the Go build modules; run gpupool from a checkout of "
        "the repository or set GPUPOOL_HACK_DIR to its hack/ folder"
    )


def is_built(component: Component) -> bool:
    """True when every binary of `component` is already in its cache folder."""
    folder = bin_dir(component)
    return all((folder / name).is_file() for name in component.binaries)


def _go_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"})
    # Keep Go's build cache outside the repository and stable across runs.
    env.setdefault("GOCACHE", str(cache / "go-build"))
    return env


def _report_while_running(proc: subprocess.Popen[bytes], name: str, progress: Progress) -> None:
    start = time.monotonic()
    while proc.poll() is None:
        time.sleep(1)
        elapsed = int(time.monotonic() - start)
        if elapsed and elapsed % 30 == 0:
            progress(f"  ... still building {name}: {elapsed // 60}m{elapsed % 60:02d}s elapsed")


def build_component(component: Component, progress: Progress = print) -> Path:
    """Build one component into its cache folder (atomically: a half build is never used)."""
    target = bin_dir(component)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    module_dir = hack_dir() / component.module
    log_path = target.parent / f"{target.name}.build.log"
    command = [
        "go",
        "build",
        "-trimpath",
        *(["-tags", ",".join(component.tags)] if component.tags else []),
        "-ldflags",
        component.ldflags,
        "-o",
        str(staging) + os.sep,
        *component.packages,
    ]
    if len(component.packages) == 1 and len(component.binaries) == 1:
        command[command.index("-o") + 1] = str(staging / component.binaries[0])
    start = time.monotonic()
    progress(f"building {component.name} {component.version} ({', '.join(component.binaries)}) ...")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=module_dir, env=_go_env(target.parent.parent), stdout=log, stderr=subprocess.STDOUT
        )
        ticker = threading.Thread(target=_report_while_running, args=(proc, component.name, progress))
        ticker.start()
        code = proc.wait()
        ticker.join()
    if code != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise BuildError(f"building {component.name} failed (exit {code}); full log: {log_path}\n{tail}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    progress(f"built {component.name} in {time.monotonic() - start:.0f}s -> {target}")
    return target


def ensure_built(progress: Progress = print) -> None:
    """Build whatever is missing from the cache; say up front when that takes a while.

    A lock file serialises concurrent callers (a demo and a test run, say): the second
    waits for the first and then finds the binaries built.
    """
    if all(is_built(c) for c in COMPONENTS):
        return
    if shutil.which("go") is None:
        raise BuildError("the Go toolchain is not on PATH; install Go 1.26 (the control plane is built from source)")
    lock_path = cache_root() / "bin" / ".build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        if not _try_lock(lock):
            progress("gpupool dev: another process is building the control plane; waiting for it ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _build_missing(progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _try_lock(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _build_missing(progress: Progress) -> None:
    missing = [c for c in COMPONENTS if not is_built(c)]
    if not missing:
        return
    progress(
        "gpupool dev: building the local control plane from Go modules "
        f"({', '.join(c.name for c in missing)}). This happens once per machine and takes "
        "about 10 minutes on 2 cores; later runs reuse the binaries."
    )
    for component in missing:
        build_component(component, progress)
