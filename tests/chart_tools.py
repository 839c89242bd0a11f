"""Helpers the chart tests share: the Helm built from Go modules, rendering and installing
`charts/gpupool`, and a kubeconfig that speaks as a ServiceAccount (its token, not the
admin certificate).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "gpupool"
KUBE_VERSION = "1.36.0"
"""The Kubernetes version `helm template` renders for: the local control plane's."""


def helm_binary() -> str:
    """Path of helm, building the cached Go binaries first when they are missing."""
    from gpupool.devcluster.build import ensure_built
    from gpupool.devcluster.tools import helm_path

    ensure_built(progress=lambda _msg: None)
    return helm_path()


def helm(*args: str, kubeconfig: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm; with `check`, a failure raises AssertionError with its output."""
    command = [helm_binary(), *args]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(*, values: Sequence[Path] = (), sets: Sequence[str] = (), release: str = "gpupool") -> str:
    """`helm template` of the chart for the local control plane's version, as text."""
    args = ["template", release, str(CHART), "--namespace", "gpupool-system", "--kube-version", KUBE_VERSION]
    for path in values:
        args += ["--values", str(path)]
    for assignment in sets:
        args += ["--set", assignment]
    return helm(*args).stdout


def documents(text: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest, skipping empty documents."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    """The one object of `kind` whose name ends with `name_suffix`."""
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, (
        f"expected one {kind} named *{name_suffix}, got {[o['metadata']['name'] for o in matches]}"
    )
    return matches[0]


def service_account_kubeconfig(admin_kubeconfig: str, namespace: str, account: str, out: Path) -> str:
    """A kubeconfig for the same server that authenticates with a fresh token of `account`
    (TokenRequest, one hour): requests made with it are authorised as the ServiceAccount."""
    from cluster_tools import kubectl

    token = kubectl(admin_kubeconfig, "create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": cluster["name"], "user": account}}],
        "current-context": account,
    }
    out.write_text(yaml.safe_dump(config))
    return str(out)


RELEASE = "gpupool"
RELEASE_NAMESPACE = "gpupool-system"
OPERATOR_ACCOUNT = "gpupool"
"""The operator's ServiceAccount for a release named `gpupool` (the chart's full name)."""


def install_for_out_of_cluster_operator(kubeconfig: str) -> tuple[str, str]:
    """Install the chart for an operator that runs outside the cluster as the chart's
    ServiceAccount: no replicas and no agent (no image can be pulled here), Node create and
    delete for the Kwok provider, and no admission policy (the tests themselves create the
    foreign pods it would refuse). Returns (namespace, ServiceAccount name)."""
    helm(
        "upgrade", "--install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--create-namespace",
        "--set", "operator.replicas=0", "--set", "agent.enabled=false",
        "--set", "rbac.kwokNodes=true", "--set", "admissionPolicy.enabled=false",
        kubeconfig=kubeconfig,
    )  # fmt: skip
    return RELEASE_NAMESPACE, OPERATOR_ACCOUNT


def permission_denials(log_path: Path, offset: int = 0) -> list[str]:
    """Lines of an operator log, from byte `offset`, where the API server refused the chart's
    operator ServiceAccount an action: a permission the chart's ClusterRole lacks."""
    user = f"system:serviceaccount:{RELEASE_NAMESPACE}:{OPERATOR_ACCOUNT}"
    with log_path.open() as log:
        log.seek(offset)
        return [line for line in log if f'User \\"{user}\\" cannot' in line]
