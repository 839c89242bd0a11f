"""The ClusterAPI node provider: a pool's nodes are the Machines of one MachineDeployment.

Who uses this: the operator (`gpupool.controllers.runner`) serves every GPUNodePool with
`provider: ClusterAPI` through it; the claim reconciler calls it. gpupool never creates a
Machine itself. It changes the MachineDeployment's replicas through the scale subresource
and lets Cluster API's MachineSet controller make or remove Machines, and its Machine
controller bring up each Node and point `status.nodeRef` at it. What each call does:

- `create(launch)` raises replicas by one for the claim, once. Retries must not add a second
  replica, so the MachineDeployment carries a ledger, the annotation `gpupool.io/claims`,
  a JSON map of claim name to its last step and the MachineDeployment generation when that
  step was recorded (`{"pool-3f9a2c": "up@7"}`). The step is written to the ledger first
  (optimistic concurrency on resourceVersion), then replicas are changed through the scale
  subresource with the resourceVersion that ledger write returned. Annotation writes leave
  `metadata.generation` alone and a replicas change bumps it, so a retry sees at once
  whether its scale went through: still at the recorded generation, the scale is still due.
  If someone else changed the spec between the two writes, gpupool takes the scale as done.
  So it can miss a replica, and the claim then fails as NodeNeverRegistered, but it never
  adds one twice. create returns `clusterapi://<namespace>/<machineDeployment>/<claim>`.
- `node_name(launch)` adopts a Machine for the claim: the oldest Machine of the
  MachineDeployment that no claim holds, that is not being deleted and that was made no
  earlier than the claim. It labels that Machine `gpupool.io/claim` and `gpupool.io/pool`
  and returns `status.nodeRef.name` once the Node has registered.
- `delete(node)` finds the claim's Machine by its nodeRef, sets Cluster API's
  `cluster.x-k8s.io/delete-machine` annotation on it (the MachineSet deletes marked Machines
  first when replicas go down) and lowers replicas by one, once, through the same ledger.
- `list(pool)` names the Nodes of the Machines adopted for the pool.

A finished scale-down leaves the ledger at the next ledger write (a retried delete then
finds no entry and does nothing). An "up" entry stays until its claim's node is released.

API errors become the provider's typed errors (`provider_error`). A missing
MachineDeployment (or missing Cluster API CRDs) is a ProviderError that names the pool and
`spec.clusterAPI`. 5xx, 429, timeouts and repeated conflicts are ProviderTransient. A 403
for an exceeded ResourceQuota is ProviderQuotaExceeded, and any other 401/403 is a
ProviderError that names the RBAC the operator needs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gpupool.api import ClusterAPIRef, GPUNodePool
from gpupool.cluster.kube.writer import call_api, read_json
from gpupool.cluster.nodes.kwok_nodes import LABEL_CLAIM, LABEL_POOL
from gpupool.cluster.nodes.providers import (
    NodeLaunch,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderTransient,
)
from gpupool.cluster.translate.convert import parse_timestamp
from gpupool.cluster.writes.ports import Conflict, Forbidden, NotFound, RawObject, Transient, WriteError

log = logging.getLogger("gpupool.clusterapi")

GROUP = "cluster.x-k8s.io"
VERSION = "v1beta2"
DEPLOYMENTS = "machinedeployments"
MACHINES = "machines"
DELETE_MACHINE_ANNOTATION = "cluster.x-k8s.io/delete-machine"
"""Cluster API's mark on a Machine: delete this one first when the MachineSet scales down."""
DEPLOYMENT_LABEL = "cluster.x-k8s.io/deployment-name"
"""Cluster API's label on each Machine of a MachineDeployment: the MachineDeployment's name."""
LEDGER_ANNOTATION = "gpupool.io/claims"
"""gpupool's ledger on a MachineDeployment: claim name -> "up@<generation>" / "down@<generation>"."""
CONFLICT_RETRIES = 3
REQUEST_TIMEOUT_SECONDS = 30
RBAC_HINT = (
    "gpupool's service account needs get and patch on machinedeployments.cluster.x-k8s.io, "
    "get and update on machinedeployments/scale, and list and patch on machines.cluster.x-k8s.io"
)


class Step(StrEnum):
    """What gpupool did to a MachineDeployment's replicas for a claim."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A claim's last step and the MachineDeployment's generation when it was recorded."""

    step: Step
    generation: int

    def due(self, generation: int) -> bool:
        """True while the step's replicas change has not been applied (no spec change since)."""
        return generation <= self.generation

    def __str__(self) -> str:
        return f"{self.step.value}@{self.generation}"


def read_ledger(deployment: Mapping[str, Any]) -> dict[str, LedgerEntry]:
    """The ledger of a raw MachineDeployment; entries that do not parse are dropped with a warning."""
    raw = ((deployment.get("metadata") or {}).get("annotations") or {}).get(LEDGER_ANNOTATION)
    if not raw:
        return {}
    try:
        entries = json.loads(raw)
        return {
            str(claim): LedgerEntry(Step(step), int(generation))
            for claim, value in entries.items()
            for step, generation in [str(value).split("@", 1)]
        }
    except (ValueError, AttributeError, TypeError) as error:
        log.warning("ignoring an unreadable claim ledger", extra={"annotation": LEDGER_ANNOTATION, "error": str(error)})
        return {}


def ledger_annotation(ledger: Mapping[str, LedgerEntry]) -> str:
    """The annotation value of `ledger` (sorted, so equal ledgers write equal text)."""
    return json.dumps({claim: str(entry) for claim, entry in sorted(ledger.items())}, separators=(",", ":"))


def generation_of(obj: Mapping[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def provider_error(error: WriteError, pool: str) -> ProviderError:
    """The provider error for an API failure while serving `pool` (see the module docstring)."""
    if isinstance(error, NotFound):
        return ProviderError(
            f"GPUNodePool {pool}: {error}. Fix the pool's spec.clusterAPI (namespace, machineDeployment) "
            f"to name an existing MachineDeployment, and check that Cluster API's {GROUP}/{VERSION} CRDs "
            "are installed"
        )
    if isinstance(error, Conflict | Transient):
        return ProviderTransient(f"GPUNodePool {pool}: {error}")
    if isinstance(error, Forbidden):
        if "exceeded quota" in str(error):
            return ProviderQuotaExceeded(f"GPUNodePool {pool}: {error}")
        return ProviderError(f"GPUNodePool {pool}: {error}. {RBAC_HINT}")
    return ProviderError(f"GPUNodePool {pool}: {error}")


def pick_machine(machines: Sequence[Mapping[str, Any]], claim: str, requested_at: float) -> RawObject | None:
    """The Machine `claim` holds, else the one it may adopt (see the module docstring), else None."""
    free: list[tuple[float, str, RawObject]] = []
    for machine in machines:
        metadata = machine.get("metadata") or {}
        labels = metadata.get("labels") or {}
        if labels.get(LABEL_CLAIM) == claim:
            return dict(machine)
        created = parse_timestamp(metadata.get("creationTimestamp"))
        if (
            LABEL_CLAIM in labels
            or metadata.get("deletionTimestamp")
            or DELETE_MACHINE_ANNOTATION in (metadata.get("annotations") or {})
            or created is None
            or created < int(requested_at)
        ):
            continue
        free.append((created, str(metadata.get("name", "")), dict(machine)))
    return min(free, key=lambda item: item[:2])[2] if free else None


def node_of(machine: Mapping[str, Any]) -> str | None:
    """The Node a Machine became (`status.nodeRef.name`), or None before it registered."""
    ref = (machine.get("status") or {}).get("nodeRef") or {}
    name = ref.get("name")
    return str(name) if name else None


def provider_id(ref: ClusterAPIRef, claim: str) -> str:
    """gpupool's id for a claim's node while Cluster API makes it (the Machine is not known yet)."""
    return f"clusterapi://{ref.namespace}/{ref.machine_deployment}/{claim}"


class ClusterAPIProvider:
    """Nodes of ClusterAPI pools as Machines of a MachineDeployment (see the module docstring)."""

    def __init__(self, custom_api: Any) -> None:
        # A `kubernetes.client.CustomObjectsApi`; held as Any, it is typed against models.
        self._custom = custom_api

    # ------------------------------------------------------------------ the provider contract

    def create(self, launch: NodeLaunch, now: float) -> str | None:
        pool, ref = self._pool_ref(launch.pool)
        self._step(pool, ref.namespace, ref.machine_deployment, launch.name, Step.UP)
        return provider_id(ref, launch.name)

    def node_name(self, launch: NodeLaunch) -> str | None:
        pool, ref = self._pool_ref(launch.pool)
        try:
            machines = self._machines(ref.namespace, f"{DEPLOYMENT_LABEL}={ref.machine_deployment}")
            machine = pick_machine(machines, launch.name, launch.requested_at)
            if machine is None:
                return None
            if (machine["metadata"].get("labels") or {}).get(LABEL_CLAIM) != launch.name:
                machine = self._adopt(machine, launch.name, pool)
        except Conflict:
            return None  # someone else changed the Machine; pick again next cycle
        except WriteError as error:
            raise provider_error(error, pool) from error
        return node_of(machine)

    def delete(self, node: str) -> None:
        try:
            machine = next((m for m in self._machines(None, LABEL_CLAIM) if node_of(m) == node), None)
        except WriteError as error:
            raise provider_error(error, f"of node {node}") from error
        if machine is None:
            return  # no Machine of gpupool's has this node (any more): released
        metadata = machine["metadata"]
        labels = metadata.get("labels") or {}
        pool, namespace, name = labels.get(LABEL_POOL, ""), metadata["namespace"], metadata["name"]
        deployment = labels.get(DEPLOYMENT_LABEL)
        if not deployment:
            raise ProviderError(f"Machine {namespace}/{name} of node {node} has no {DEPLOYMENT_LABEL} label")
        try:
            if DELETE_MACHINE_ANNOTATION not in (metadata.get("annotations") or {}):
                self._patch_machine(namespace, name, {"annotations": {DELETE_MACHINE_ANNOTATION: "gpupool"}})
        except NotFound:
            return  # the Machine went meanwhile
        except WriteError as error:
            raise provider_error(error, pool) from error
        self._step(pool, namespace, deployment, labels[LABEL_CLAIM], Step.DOWN)

    def release(self, launch: NodeLaunch) -> None:
        """Lower replicas for a claim that ended without `delete`, marking its Machine (if it
        adopted one) so the MachineSet removes that one."""
        pool, ref = self._pool_ref(launch.pool)
        try:
            adopted = self._machines(ref.namespace, f"{LABEL_CLAIM}={launch.name}")
            for machine in adopted:
                metadata = machine["metadata"]
                if DELETE_MACHINE_ANNOTATION not in (metadata.get("annotations") or {}):
                    annotations = {DELETE_MACHINE_ANNOTATION: "gpupool"}
                    self._patch_machine(metadata["namespace"], metadata["name"], {"annotations": annotations})
        except NotFound:
            pass  # the Machine went meanwhile
        except WriteError as error:
            raise provider_error(error, pool) from error
        self._step(pool, ref.namespace, ref.machine_deployment, launch.name, Step.DOWN)

    def list(self, pool: str) -> list[str]:
        try:
            machines = self._machines(None, f"{LABEL_POOL}={pool},{LABEL_CLAIM}")
        except WriteError as error:
            raise provider_error(error, pool) from error
        return sorted(name for m in machines if (name := node_of(m)))

    # ------------------------------------------------------------------ replicas, once per claim and step

    def _step(self, pool: str, namespace: str, deployment: str, claim: str, step: Step) -> None:
        """Record `step` for `claim` in the ledger and change replicas by one, exactly once."""
        for _attempt in range(CONFLICT_RETRIES):
            try:
                if self._try_step(namespace, deployment, claim, step):
                    return
            except Conflict:
                continue
            except WriteError as error:
                raise provider_error(error, pool) from error
        raise ProviderTransient(
            f"GPUNodePool {pool}: MachineDeployment {namespace}/{deployment} kept changing; will retry"
        )

    def _try_step(self, namespace: str, deployment: str, claim: str, step: Step) -> bool:
        """One optimistic attempt; True when done, False (or Conflict) to try again."""
        md = self._read(namespace, deployment)
        ledger = read_ledger(md)
        entry = ledger.get(claim)
        if entry is None and step is Step.DOWN:
            return True  # no replica counted for the claim (or its scale-down is done and pruned)
        generation = generation_of(md)
        if entry is None or entry.step is not step:
            entry = LedgerEntry(step, generation)
            kept = {c: e for c, e in ledger.items() if e.step is Step.UP or e.due(generation)}
            md = self._write_ledger(namespace, deployment, md, {**kept, claim: entry})
        if not entry.due(generation_of(md)):
            return True
        scale = self._scale(namespace, deployment)
        if scale["metadata"].get("resourceVersion") != md["metadata"].get("resourceVersion"):
            return False  # changed between the two reads
        replicas = int((scale.get("spec") or {}).get("replicas") or 0)
        scale["spec"] = {"replicas": replicas + 1 if step is Step.UP else max(replicas - 1, 0)}
        self._write_scale(namespace, deployment, scale)
        log.info(
            "scaled a MachineDeployment",
            extra={"machineDeployment": f"{namespace}/{deployment}", "claim": claim, "replicas": scale["spec"]},
        )
        return True

    # ------------------------------------------------------------------ API calls (raise WriteError)

    @staticmethod
    def _pool_ref(pool: GPUNodePool) -> tuple[str, ClusterAPIRef]:
        name = str(pool.metadata.get("name", ""))
        if pool.spec.cluster_api is None:
            raise ProviderError(f"GPUNodePool {name} has provider ClusterAPI but no spec.clusterAPI: set it")
        return name, pool.spec.cluster_api

    def _json(self, what: str, request: Callable[..., Any], *args: Any, **kwargs: Any) -> RawObject:
        return call_api(
            what,
            lambda: read_json(
                request(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_SECONDS, **kwargs)
            ),
        )

    def _read(self, namespace: str, name: str) -> RawObject:
        api = self._custom.get_namespaced_custom_object
        return self._json(
            f"read MachineDeployment {namespace}/{name}", api, GROUP, VERSION, namespace, DEPLOYMENTS, name
        )

    def _write_ledger(self, namespace: str, name: str, md: RawObject, ledger: Mapping[str, LedgerEntry]) -> RawObject:
        body = {
            "metadata": {
                "resourceVersion": md["metadata"]["resourceVersion"],
                "annotations": {LEDGER_ANNOTATION: ledger_annotation(ledger)},
            }
        }
        api = self._custom.patch_namespaced_custom_object
        what = f"record claims on MachineDeployment {namespace}/{name}"
        return self._json(
            what, api, GROUP, VERSION, namespace, DEPLOYMENTS, name, body, _content_type="application/merge-patch+json"
        )

    def _scale(self, namespace: str, name: str) -> RawObject:
        api = self._custom.get_namespaced_custom_object_scale
        return self._json(
            f"read scale of MachineDeployment {namespace}/{name}", api, GROUP, VERSION, namespace, DEPLOYMENTS, name
        )

    def _write_scale(self, namespace: str, name: str, scale: RawObject) -> RawObject:
        api = self._custom.replace_namespaced_custom_object_scale
        what = f"scale MachineDeployment {namespace}/{name}"
        return self._json(what, api, GROUP, VERSION, namespace, DEPLOYMENTS, name, scale)

    def _machines(self, namespace: str | None, selector: str) -> Sequence[RawObject]:
        if namespace is None:
            listed = self._json(
                "list Machines",
                self._custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                MACHINES,
                label_selector=selector,
            )
        else:
            api = self._custom.list_namespaced_custom_object
            listed = self._json(
                f"list Machines in {namespace}", api, GROUP, VERSION, namespace, MACHINES, label_selector=selector
            )
        items: list[RawObject] = listed.get("items") or []
        return items

    def _adopt(self, machine: RawObject, claim: str, pool: str) -> RawObject:
        metadata = machine["metadata"]
        body = {"resourceVersion": metadata["resourceVersion"], "labels": {LABEL_CLAIM: claim, LABEL_POOL: pool}}
        adopted = self._patch_machine(metadata["namespace"], metadata["name"], body)
        log.info("adopted a Machine for a claim", extra={"claim": claim, "machine": metadata["name"]})
        return adopted

    def _patch_machine(self, namespace: str, name: str, metadata: RawObject) -> RawObject:
        api = self._custom.patch_namespaced_custom_object
        return self._json(
            f"patch Machine {namespace}/{name}",
            api,
            GROUP,
            VERSION,
            namespace,
            MACHINES,
            name,
            {"metadata": metadata},
            _content_type="application/merge-patch+json",
        )
