"""`gpupool provenance NAMESPACE/JOB`: a GPUJob's provenance record, for a person or a tool.

Who calls this: `gpupool.cli`. It reads the GPUJob once from the API server (the record
lives in its status: `status.provenance`, kept by the operator) and prints a readable
block per attempt (`gpupool.cluster.writes.provenance.render_text`) or, with `-o json`, one
JSON object: `job`, `uid`, `phase`, `finishedAt`, `ttlSecondsAfterFinished`, the
`ProvenanceVerified` condition (null when the job declares no image digest) and
`provenance` (`attempts`, `omittedAttempts`) exactly as the status holds it. A job
already deleted (its time to live after finishing passed) is gone from the API: its
records are in the operator's log, on the `gpupool.provenance` logger.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gpupool.api import GROUP, VERSION
from gpupool.cluster.writes.provenance import CONDITION, LOG_NAME, render_text


def as_json(key: str, job: dict[str, Any]) -> dict[str, Any]:
    """The `-o json` document of a raw GPUJob."""
    status = job.get("status") or {}
    verified = next((c for c in status.get("conditions") or [] if c.get("type") == CONDITION), None)
    return {
        "job": key,
        "uid": (job.get("metadata") or {}).get("uid"),
        "phase": status.get("phase"),
        "finishedAt": status.get("finishedAt"),
        "ttlSecondsAfterFinished": (job.get("spec") or {}).get("ttlSecondsAfterFinished"),
        "provenanceVerified": verified,
        "provenance": status.get("provenance") or {"attempts": [], "omittedAttempts": 0},
    }


def main(argv: list[str]) -> int:
    """Print the record; 2 on a malformed argument, 1 when the job cannot be read."""
    parser = argparse.ArgumentParser(prog="gpupool provenance", description=__doc__.splitlines()[0])
    parser.add_argument("job", metavar="NAMESPACE/JOB", help="the GPUJob, e.g. team-a/train")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig (default: in-cluster, else $KUBECONFIG)")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text", help="text (default) or json")
    args = parser.parse_args(argv)
    namespace, _, name = str(args.job).partition("/")
    if not namespace or not name or "/" in name:
        parser.error(f"expected NAMESPACE/JOB, got {args.job!r}")

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException

    from gpupool.cluster.kube.kubeclient import api_client

    try:
        api = api_client(args.kubeconfig)
    except ConfigException as error:
        print(f"gpupool provenance: no Kubernetes credentials ({error}); pass --kubeconfig", file=sys.stderr)
        return 1
    try:
        custom: Any = client.CustomObjectsApi(api)
        job: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "gpujobs", name)
    except ApiException as error:
        if error.status == 404:
            print(
                f"gpupool provenance: GPUJob {args.job} not found; a deleted job's records are in the operator's "
                f"log (logger {LOG_NAME})",
                file=sys.stderr,
            )
        else:
            print(
                f"gpupool provenance: cannot read GPUJob {args.job}: HTTP {error.status} {error.reason}",
                file=sys.stderr,
            )
        return 1
    finally:
        api.close()
    key = f"{namespace}/{name}"
    if args.output == "json":
        print(json.dumps(as_json(key, job), indent=2))
    else:
        print(render_text(key, job.get("status") or {}))
    return 0
