"""An invariant checker over what the API server holds: pods, nodes and GPUJobs as plain dicts.

Who calls this: `gpupool chaos` (`devcluster/chaos.py`) after every operator restart and at
the end of a run, and the chaos tests. It is deliberately independent of the operator: it
imports nothing of `gpupool.api`, `gpupool.cluster` or `gpupool.core` (an import-linter
contract keeps it so) and reads the objects' JSON as the API server serves it, so a bug in
the operator's cache, parsing or ledger cannot hide itself here. The label and annotation
names below are the wire format gpupool's worker pods carry; they are restated, not imported.

`check` is a pure function of the object lists; `read_cluster` fetches them.

Violations, by kind:

- `lost`: a job the caller submitted is not in the API server.
- `unfinished`: with `expect_finished`, a job not in phase Succeeded or Failed.
- `duplicate`: more than one live worker pod for one job and worker index (any attempt).
- `over-allocated`: on a node, the `nvidia.com/gpu` requested by its live pods exceeds the
  node's allocatable.
- `gpu-shared`: one GPU index of a node handed out beyond one whole GPU (shares summed), in
  the live pods' annotations or in the placements of the jobs holding GPUs; or an index the
  node does not have. On a node that reports its pods' devices these are gpupool's plans,
  not what runs: there the pods' planned indices are left out, and of the placements only
  those whose `devices` is `Reported` count (the physical truth is the next rule's).
- `device-shared` (physical truth): from the nodes' `gpupool.io/pod-devices` reports (the
  kubelet's PodResources, published by the node agent), a GPU UUID held by two pods; or a
  live pod told a GPU in its spec's `NVIDIA_VISIBLE_DEVICES` (a UUID, or an index through
  the node's `gpupool.io/gpu-uuids` map) that the report gives another pod. The one
  exception is the shares of one reservation: a share names its reservation pod in its
  `gpupool.io/reservation` annotation and is told that pod's UUID, which the report gives
  to the reservation pod alone.
- `cost`: a finished job whose cost is not counted exactly once: `status.cost` or
  `status.gpuSeconds` differ from the sum of `status.usageHistory`, its entries hold more
  attempts than the job started, two entries overlap in time, or an attempt number repeats
  in its provenance record.

A live pod is one not in phase Succeeded or Failed, terminating or not: a pod being deleted
still runs its containers until it is gone.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_JOB = "gpupool.io/job"
LABEL_WORKER = "gpupool.io/worker"
ANNOTATION_GPU_INDICES = "gpupool.io/gpu-indices"
ANNOTATION_GPU_SHARE = "gpupool.io/gpu-share"
ANNOTATION_RESERVATION = "gpupool.io/reservation"
ANNOTATION_POD_DEVICES = "gpupool.io/pod-devices"
ANNOTATION_GPU_UUIDS = "gpupool.io/gpu-uuids"
ENV_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
NO_DEVICE_VALUES = frozenset({"", "void", "none", "all"})
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
HOLDING_PHASES = frozenset({"Admitted", "Running"})
TERMINAL_POD_PHASES = frozenset({"Succeeded", "Failed"})
KINDS = ("lost", "unfinished", "duplicate", "over-allocated", "gpu-shared", "device-shared", "cost")

# usageHistory rounds cost to 4 decimals and GPU-seconds to 3, each entry and the total.
COST_TOLERANCE = 1e-3
GPU_SECONDS_TOLERANCE = 1e-2
# usageHistory stores whole seconds: adjacent attempts may appear to overlap by under one.
OVERLAP_TOLERANCE_S = 1.0
SHARE_TOLERANCE = 1e-6

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    """One broken invariant: its kind (one of KINDS), what it concerns, and the evidence."""

    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class CheckReport:
    """The outcome of one check: what was looked at, job phases, and every violation found."""

    jobs: int
    pods: int
    nodes: int
    phases: Mapping[str, int] = field(default_factory=dict)
    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    def count(self, *kinds: str) -> int:
        """How many violations are of one of `kinds`."""
        return sum(1 for v in self.violations if v.kind in kinds)

    def summary(self) -> str:
        """One line: counts per kind, then the first few violations."""
        counts = ", ".join(f"{kind} {self.count(kind)}" for kind in KINDS)
        lines = [f"{self.jobs} jobs, {self.pods} pods, {self.nodes} nodes; {counts}"]
        lines += [f"  {v}" for v in self.violations[:20]]
        if len(self.violations) > 20:
            lines.append(f"  ... and {len(self.violations) - 20} more")
        return "\n".join(lines)


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _key(obj: Obj) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def quantity(value: object) -> float:
    """A Kubernetes quantity of a countable resource (`"8"`, `8`, `"500m"`) as a number; 0 when absent."""
    if value is None or value == "":
        return 0.0
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1]) / 1000.0
    return float(text)


def pod_gpu_request(pod: Obj) -> float:
    """The whole GPUs a pod requests: its containers' `nvidia.com/gpu` requests (limits when
    no request is given, as the API server defaults them), at least the largest init container's."""
    spec = pod.get("spec") or {}

    def of(container: Mapping[str, Any]) -> float:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        return quantity(requests.get(GPU_RESOURCE, limits.get(GPU_RESOURCE)))

    main = sum(of(c) for c in spec.get("containers") or [])
    init = max((of(c) for c in spec.get("initContainers") or []), default=0.0)
    return max(main, init)


def pod_is_live(pod: Obj) -> bool:
    """Not finished: its containers may still run (a terminating pod included)."""
    return _status(pod).get("phase") not in TERMINAL_POD_PHASES


def _indices(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _gpu_claims_of_pods(pods: Iterable[Obj], reporting: Collection[str] = ()) -> list[tuple[str, int, float, str]]:
    """(node, GPU index, share, who) for every GPU index a live gpupool worker pod names,
    on nodes that do not report their pods' devices (elsewhere the indices are plans)."""
    claims = []
    for pod in pods:
        annotations = _meta(pod).get("annotations") or {}
        node = (pod.get("spec") or {}).get("nodeName")
        if ANNOTATION_GPU_INDICES not in annotations or not node or not pod_is_live(pod) or node in reporting:
            continue
        share = float(annotations.get(ANNOTATION_GPU_SHARE) or 1.0)
        for index in _indices(str(annotations[ANNOTATION_GPU_INDICES])):
            claims.append((str(node), index, share, f"pod {_key(pod)}"))
    return claims


def _gpu_claims_of_jobs(jobs: Iterable[Obj], reporting: Collection[str] = ()) -> list[tuple[str, int, float, str]]:
    """(node, GPU index, share, who) for every GPU in the placement of a job holding GPUs (on
    a node that reports its pods' devices, only the placements it reported)."""
    claims = []
    for job in jobs:
        status = _status(job)
        if status.get("phase") not in HOLDING_PHASES:
            continue
        for worker in status.get("placement") or []:
            if worker.get("node") in reporting and worker.get("devices") != "Reported":
                continue
            share = float(worker.get("gpuShare", 1.0))
            for index in worker.get("gpuIndices") or []:
                who = f"job {_key(job)} worker {worker.get('worker')}"
                claims.append((str(worker.get("node")), int(index), share, who))
    return claims


def _shared_gpus(
    claims: Sequence[tuple[str, int, float, str]], allocatable: Mapping[str, float], view: str
) -> list[Violation]:
    by_gpu: dict[tuple[str, int], list[tuple[float, str]]] = defaultdict(list)
    for node, index, share, who in claims:
        by_gpu[(node, index)].append((share, who))
    found = []
    for (node, index), holders in sorted(by_gpu.items()):
        total = sum(share for share, _ in holders)
        names = ", ".join(sorted(who for _, who in holders))
        if total > 1.0 + SHARE_TOLERANCE:
            found.append(Violation("gpu-shared", f"{node} GPU {index}", f"{view}: {total:g} GPUs handed to {names}"))
        if node in allocatable and index >= allocatable[node]:
            detail = f"{view}: index beyond the node's {allocatable[node]:g} GPUs, held by {names}"
            found.append(Violation("gpu-shared", f"{node} GPU {index}", detail))
    return found


def _duplicates(pods: Iterable[Obj]) -> list[Violation]:
    workers: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for pod in pods:
        labels = _meta(pod).get("labels") or {}
        if LABEL_JOB in labels and LABEL_WORKER in labels and pod_is_live(pod):
            ident = (str(_meta(pod).get("namespace", "")), str(labels[LABEL_JOB]), str(labels[LABEL_WORKER]))
            workers[ident].append(str(_meta(pod).get("name")))
    return [
        Violation("duplicate", f"{ns}/{job} worker {worker}", f"{len(names)} live pods: {', '.join(sorted(names))}")
        for (ns, job, worker), names in sorted(workers.items())
        if len(names) > 1
    ]


def _over_allocated(pods: Iterable[Obj], allocatable: Mapping[str, float]) -> list[Violation]:
    requested: dict[str, float] = defaultdict(float)
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and pod_is_live(pod):
            requested[str(node)] += pod_gpu_request(pod)
    return [
        Violation("over-allocated", node, f"live pods request {used:g} GPUs, allocatable {allocatable[node]:g}")
        for node, used in sorted(requested.items())
        if node in allocatable and used > allocatable[node] + SHARE_TOLERANCE
    ]


def _json_object(text: object) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def device_reports(nodes: Iterable[Obj]) -> dict[str, dict[str, list[str]]]:
    """Per node that reports its pods' devices: `namespace/name` -> the GPU UUIDs the
    kubelet gave the pod (the `gpupool.io/pod-devices` annotation; a malformed one is no report)."""
    out: dict[str, dict[str, list[str]]] = {}
    for node in nodes:
        data = _json_object((_meta(node).get("annotations") or {}).get(ANNOTATION_POD_DEVICES))
        pods = data.get("pods") if data is not None and data.get("resource", GPU_RESOURCE) == GPU_RESOURCE else None
        if isinstance(pods, dict):
            out[str(_meta(node).get("name"))] = {
                str(key): [str(u) for u in uuids] for key, uuids in pods.items() if isinstance(uuids, list)
            }
    return out


def gpu_uuid_maps(nodes: Iterable[Obj]) -> dict[str, dict[str, str]]:
    """Per node, GPU index (as text) -> UUID from its `gpupool.io/gpu-uuids` annotation."""
    out: dict[str, dict[str, str]] = {}
    for node in nodes:
        data = _json_object((_meta(node).get("annotations") or {}).get(ANNOTATION_GPU_UUIDS))
        if data is not None:
            out[str(_meta(node).get("name"))] = {str(k): str(v) for k, v in data.items()}
    return out


def told_devices(pod: Obj, uuids: Mapping[str, str]) -> list[str]:
    """The GPUs a pod's spec tells its containers in `NVIDIA_VISIBLE_DEVICES`, as UUIDs (an
    index through its node's map; one the map lacks stays as the index's text)."""
    told: list[str] = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for variable in container.get("env") or []:
            if variable.get("name") != ENV_VISIBLE_DEVICES:
                continue
            for part in str(variable.get("value") or "").split(","):
                part = part.strip()
                if part.lower() not in NO_DEVICE_VALUES:
                    told.append(uuids.get(part, part))
    return told


def device_violations(pods: Iterable[Obj], nodes: Sequence[Obj]) -> list[Violation]:
    """The physical-truth rule (the module's `device-shared`): no GPU UUID held by two pods,
    from the nodes' reports, but for the shares of one reservation."""
    reports = device_reports(nodes)
    holders: dict[str, list[tuple[str, str]]] = defaultdict(list)  # UUID -> (pod, node)
    for node, report in sorted(reports.items()):
        for key, uuids in sorted(report.items()):
            for uuid in uuids:
                holders[uuid].append((key, node))
    found = [
        Violation(
            "device-shared", f"GPU {uuid}", "the nodes report it held by " + ", ".join(f"{k} (on {n})" for k, n in who)
        )
        for uuid, who in sorted(holders.items())
        if len(who) > 1
    ]
    maps = gpu_uuid_maps(nodes)
    for pod in pods:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if not pod_is_live(pod) or node not in reports:
            continue
        key = _key(pod)
        reservation = (_meta(pod).get("annotations") or {}).get(ANNOTATION_RESERVATION)
        for uuid in told_devices(pod, maps.get(node, {})):
            others = [holder for holder, _ in holders.get(uuid, []) if holder not in (key, reservation)]
            if others:
                why = f" (its reservation is {reservation})" if reservation else ""
                detail = f"pod {key} is told it in {ENV_VISIBLE_DEVICES}{why}, but the node reports it held by "
                found.append(Violation("device-shared", f"GPU {uuid}", detail + ", ".join(others)))
    return found


def _time(text: object) -> float:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def cost_violations(job: Obj) -> list[Violation]:
    """Whether a finished job's cost is counted once (see the module's `cost` kind)."""
    status = _status(job)
    if status.get("phase") not in FINISHED_PHASES:
        return []
    subject, found = f"job {_key(job)}", []
    history = list(status.get("usageHistory") or [])
    cost = float(status.get("cost") or 0.0)
    gpu_seconds = float(status.get("gpuSeconds") or 0.0)
    history_cost = sum(float(e.get("cost") or 0.0) for e in history)
    history_seconds = sum(float(e.get("gpuSeconds") or 0.0) for e in history)
    if abs(cost - history_cost) > COST_TOLERANCE * max(1, len(history)):
        found.append(Violation("cost", subject, f"cost {cost:g} but usageHistory sums to {history_cost:g}"))
    if abs(gpu_seconds - history_seconds) > GPU_SECONDS_TOLERANCE * max(1, len(history)):
        detail = f"gpuSeconds {gpu_seconds:g} but usageHistory sums to {history_seconds:g}"
        found.append(Violation("cost", subject, detail))
    recorded = sum(int(e.get("attempts") or 1) for e in history)
    if recorded > int(status.get("attempts") or 0):
        detail = f"usageHistory holds {recorded} attempts, the job started {status.get('attempts') or 0}"
        found.append(Violation("cost", subject, detail))
    spans = sorted((_time(e["startedAt"]), _time(e["endedAt"])) for e in history)
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end - OVERLAP_TOLERANCE_S:
            found.append(Violation("cost", subject, f"two usageHistory entries overlap ({start:.0f} < {end:.0f})"))
    numbers = Counter(a.get("attempt") for a in (status.get("provenance") or {}).get("attempts") or [])
    repeated = sorted(str(n) for n, count in numbers.items() if count > 1)
    if repeated:
        found.append(Violation("cost", subject, f"attempt(s) {', '.join(repeated)} recorded twice in provenance"))
    return found


def check(
    jobs: Sequence[Obj],
    pods: Sequence[Obj],
    nodes: Sequence[Obj],
    *,
    expected: Collection[str] = (),
    expect_finished: bool = False,
) -> CheckReport:
    """Every violation among `jobs`, `pods` and `nodes` (API objects as dicts).

    `expected` names the jobs the caller submitted (`namespace/name`); each must exist. With
    `expect_finished`, every job in `jobs` must have succeeded or failed.
    """
    allocatable = {
        str(_meta(n).get("name")): quantity((_status(n).get("allocatable") or {}).get(GPU_RESOURCE)) for n in nodes
    }
    present = {_key(job) for job in jobs}
    found = [Violation("lost", name, "submitted but not in the API server") for name in sorted(set(expected) - present)]
    if expect_finished:
        found += [
            Violation("unfinished", _key(job), f"phase {_status(job).get('phase') or 'unset'}")
            for job in jobs
            if _status(job).get("phase") not in FINISHED_PHASES
        ]
    found += _duplicates(pods)
    found += _over_allocated(pods, allocatable)
    reporting = set(device_reports(nodes))
    found += _shared_gpus(_gpu_claims_of_pods(pods, reporting), allocatable, "pods")
    found += _shared_gpus(_gpu_claims_of_jobs(jobs, reporting), allocatable, "job placements")
    found += device_violations(pods, nodes)
    for job in jobs:
        found += cost_violations(job)
    phases = Counter(str(_status(job).get("phase") or "unset") for job in jobs)
    return CheckReport(len(jobs), len(pods), len(nodes), dict(sorted(phases.items())), tuple(found))


def _list(call: Any, *args: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(call(*args, _preload_content=False).data)["items"]
    return items


def read_cluster(
    api_client: Any, namespace: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(GPUJobs, pods, nodes) as the API server serves them, raw JSON: jobs and pods of
    `namespace` (every namespace when None), every node."""
    from kubernetes import client

    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    if namespace is None:
        jobs = _list(custom.list_cluster_custom_object, "gpupool.io", "v1alpha1", "gpujobs")
        pods = _list(core.list_pod_for_all_namespaces)
    else:
        jobs = _list(custom.list_namespaced_custom_object, "gpupool.io", "v1alpha1", namespace, "gpujobs")
        pods = _list(core.list_namespaced_pod, namespace)
    return jobs, pods, _list(core.list_node)


def check_cluster(
    api_client: Any, namespace: str | None = None, *, expected: Collection[str] = (), expect_finished: bool = False
) -> CheckReport:
    """`check` over what the API server holds now (see `read_cluster`)."""
    jobs, pods, nodes = read_cluster(api_client, namespace)
    return check(jobs, pods, nodes, expected=expected, expect_finished=expect_finished)
