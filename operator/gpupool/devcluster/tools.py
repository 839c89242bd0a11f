"""Where the dev cluster's own command-line tools are (kubectl built with the control plane).

Who calls this: the test fixtures, the demo, and `gpupool dev` itself, so every kubectl
call talks to a server of the same version (no version-skew warnings).
"""

from __future__ import annotations

import os
import shutil

from gpupool.devcluster.versions import binary_path


def kubectl_path() -> str:
    """The kubectl built with the control plane, else the one on PATH."""
    built = binary_path("kubectl")
    if built.is_file():
        return str(built)
    found = shutil.which("kubectl")
    if found is None:
        raise FileNotFoundError("kubectl not found; run `gpupool dev build` to build it with the control plane")
    return found


def env_with_tools(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment with the built kubectl first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{binary_path('kubectl').parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env
