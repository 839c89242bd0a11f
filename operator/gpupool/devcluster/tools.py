"""Where the dev cluster's own command-line tools are (kubectl and helm, built with the control plane).

Who calls this: the test fixtures, the demo, `gpupool bench e2e` and `gpupool dev` itself,
so every kubectl call talks to a server of the same version (no version-skew warnings).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from gpupool.devcluster.versions import binary_path


def _built_or_on_path(name: str) -> str:
    built = binary_path(name)
    if built.is_file():
        return str(built)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found; run `gpupool dev build` to build it from Go modules")
    return found


def kubectl_path() -> str:
    """The kubectl built with the control plane, else the one on PATH."""
    return _built_or_on_path("kubectl")


def helm_path() -> str:
    """The helm built from Go modules with the control plane (`gpupool dev build`), else the one on PATH."""
    return _built_or_on_path("helm")


def env_with_tools(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment with the built kubectl first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{binary_path('kubectl').parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    """Run the built kubectl against `kubeconfig`; its stdout, or RuntimeError with its stderr."""
    result = subprocess.run(
        [kubectl_path(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def install_crds(kubeconfig: Path, paths: Sequence[Path]) -> None:
    """Apply the CRD files (server-side) and wait until every one is Established."""
    files = [arg for path in paths for arg in ("-f", str(path))]
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", *files)
    kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", *files)
