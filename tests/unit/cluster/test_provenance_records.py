"""Each attempt's provenance record: built from pods and nodes, bounded, checked against the
declared image digest, logged as one JSON line when the attempt ends; and the deletion of
finished jobs after `spec.ttlSecondsAfterFinished`, on the loop rig's movable clock."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from builders.api import (
    gpujob,
    gpujob_object,
    gpunodepool_object,
    gpuqueue_object,
    namespace_object,
    node_object,
    view_of,
    worker_pod_object,
)
from builders.loop import Rig, rig
from gpupool.annotations.gpu_uuids import ANNOTATION as UUIDS_ANNOTATION
from gpupool.annotations.gpu_uuids import format_uuids
from gpupool.api import AttemptOutcome, AttemptProvenance, ContainerRun, GPUJob, WorkerPlacementStatus, WorkerRun
from gpupool.cluster.state.cache import Kind
from gpupool.cluster.translate.snapshot import gpu_uuids
from gpupool.cluster.writes.provenance import (
    CONDITION,
    LOG_NAME,
    MAX_RECORDED_WORKER_RUNS,
    attempt_record,
    declared_digest,
    digest_of,
    expires_at,
    parameters_digest,
    render_text,
    verification,
    with_record,
)
from gpupool.controllers.logs import JsonFormatter
from gpupool.core.accounting import PriceUnit, Rate
from gpupool.core.budget import MAX_RECORDED_ATTEMPTS

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC).timestamp()
SHA_A = "sha256:" + "a" * 64
SHA_B = "sha256:" + "b" * 64


@dataclass
class Facts:
    gpu_uuids: dict[str, dict[int, str]] = field(default_factory=dict)
    price: float = 2.5

    reporting: frozenset[str] = frozenset()  # nodes that report their pods' devices

    def rate(self, pool: str, node: str) -> Rate:
        return Rate(self.price if pool else 0.0, PriceUnit.GPU, cloud=False)

    def reports_devices(self, node: str) -> bool:
        return node in self.reporting


def where(worker: int = 0, node: str = "n1", indices: tuple[int, ...] = (0, 1)) -> WorkerPlacementStatus:
    return WorkerPlacementStatus(
        worker=worker, pod=f"train-a1-w{worker}", node=node, pool="gpu", gpu_model="A100", gpu_indices=list(indices)
    )


def pod(
    worker: int = 0, *, image_id: str | None = None, exit_code: int | None = None, containers: int = 1
) -> dict[str, Any]:
    """A worker pod whose containers (`main`, then `sidecar-N`) all report `image_id` / `exit_code`."""
    raw = worker_pod_object("train", worker)
    names = ["main", *(f"sidecar-{i}" for i in range(1, containers))]
    raw["spec"]["containers"] = [{"name": n, "image": f"reg.io/{n}:v1"} for n in names]
    statuses = []
    for name in names:
        state: dict[str, Any] = {"running": {}} if exit_code is None else {"terminated": {"exitCode": exit_code}}
        status: dict[str, Any] = {"name": name, "image": f"reg.io/{name}:v1", "state": state}
        if image_id is not None:
            status["imageID"] = image_id
        statuses.append(status)
    raw["status"]["containerStatuses"] = statuses
    return raw


def record_of(job: GPUJob, pods: dict[int, Any], facts: Facts, placement: list[WorkerPlacementStatus]) -> Any:
    return attempt_record(
        job,
        attempt=1,
        placement=placement,
        pods_by_worker=pods,
        facts=facts,
        admitted_at=datetime.fromtimestamp(START, UTC),
        started_at=None,
    )


# --------------------------------------------------------------------------- digests


@pytest.mark.parametrize(
    ("image_id", "digest"),
    [
        (f"docker.io/library/busybox@{SHA_A}", SHA_A),
        (f"docker-pullable://busybox@{SHA_A}", SHA_A),
        (f"reg.io:5000/team/img@{SHA_A.upper().replace('SHA256', 'sha256')}", SHA_A),
        (SHA_A, None),  # the runtime's image ID, not a registry digest
        ("", None),
        (None, None),
        ("busybox@", None),
        ("busybox@sha256:", None),
    ],
)
def test_the_digest_is_the_part_after_the_at_sign(image_id: str | None, digest: str | None) -> None:
    assert digest_of(image_id) == digest


@pytest.mark.parametrize(
    ("declared", "comparable"),
    [(SHA_A, SHA_A), (f"busybox@{SHA_A}", SHA_A), (SHA_A.upper().replace("SHA256", "sha256"), SHA_A), ("", None)],
)
def test_a_declared_digest_may_be_bare_or_a_reference(declared: str, comparable: str | None) -> None:
    assert declared_digest(declared) == comparable


# --------------------------------------------------------------------------- building a record


@dataclass(frozen=True)
class RecordCase:
    pods: dict[int, dict[str, Any]]
    uuids: dict[str, dict[int, str]]
    digests: list[list[str | None]]  # per worker, per container
    image_ids: list[list[str | None]]
    exit_codes: list[list[int | None]]
    gpu_uuids: list[list[str | None]]


RECORD_CASES = {
    "digests, exit codes and UUIDs all reported": RecordCase(
        pods={0: pod(0, image_id=f"reg.io/main@{SHA_A}", exit_code=0), 1: pod(1, image_id=f"x@{SHA_B}", exit_code=137)},
        uuids={"n1": {0: "GPU-0", 1: "GPU-1"}, "n2": {0: "GPU-20", 1: "GPU-21"}},
        digests=[[SHA_A], [SHA_B]],
        image_ids=[[f"reg.io/main@{SHA_A}"], [f"x@{SHA_B}"]],
        exit_codes=[[0], [137]],
        gpu_uuids=[["GPU-0", "GPU-1"], ["GPU-20", "GPU-21"]],
    ),
    "kwok: no imageID, still running, no UUID annotation": RecordCase(
        pods={0: pod(0), 1: pod(1)},
        uuids={},
        digests=[[None], [None]],
        image_ids=[[None], [None]],
        exit_codes=[[None], [None]],
        gpu_uuids=[[None, None], [None, None]],
    ),
    "a bare image ID is kept but is no digest": RecordCase(
        pods={0: pod(0, image_id=SHA_A), 1: pod(1, image_id="")},
        uuids={"n1": {0: "GPU-0"}},  # GPU 1 of n1 is not in the map
        digests=[[None], [None]],
        image_ids=[[SHA_A], [None]],
        exit_codes=[[None], [None]],
        gpu_uuids=[["GPU-0", None], [None, None]],
    ),
    "a worker without its pod has no containers yet": RecordCase(
        pods={0: pod(0, image_id=f"a@{SHA_A}", containers=2)},
        uuids={"n2": {0: "GPU-20", 1: "GPU-21"}},
        digests=[[SHA_A, SHA_A], []],
        image_ids=[[f"a@{SHA_A}", f"a@{SHA_A}"], []],
        exit_codes=[[None, None], []],
        gpu_uuids=[[None, None], ["GPU-20", "GPU-21"]],
    ),
}


@pytest.mark.parametrize("case", list(RECORD_CASES.values()), ids=list(RECORD_CASES))
def test_a_record_is_built_from_the_pods_and_the_nodes(case: RecordCase) -> None:
    job = gpujob(workers=2, gpus=2, provenance={"imageDigest": SHA_A, "codeRevision": "c0ffee", "datasetRef": "s3://d"})
    record = record_of(job, case.pods, Facts(case.uuids), [where(0, "n1"), where(1, "n2")])
    assert [[c.digest for c in w.containers] for w in record.workers] == case.digests
    assert [[c.image_id for c in w.containers] for w in record.workers] == case.image_ids
    assert [[c.exit_code for c in w.containers] for w in record.workers] == case.exit_codes
    assert [[g.uuid for g in w.gpus] for w in record.workers] == case.gpu_uuids
    assert [(w.node, w.pool, w.gpu_model, w.price_per_gpu_hour) for w in record.workers] == [
        ("n1", "gpu", "A100", 2.5),
        ("n2", "gpu", "A100", 2.5),
    ]
    assert (record.image_digest, record.code_revision, record.dataset_ref) == (SHA_A, "c0ffee", "s3://d")
    assert record.outcome is None and record.ended_at is None


def test_what_was_seen_once_stays_when_the_pod_and_the_annotation_are_gone() -> None:
    job = gpujob(workers=1, gpus=2)
    first = record_of(
        job, {0: pod(0, image_id=f"a@{SHA_A}", exit_code=3)}, Facts({"n1": {0: "GPU-0", 1: "GPU-1"}}), [where()]
    )
    job = job.model_copy(update={"status": job.status.model_copy(update={"provenance": with_record(None, first)})})
    later = record_of(job, {}, Facts({}), [where()])  # the node lost, its pod deleted
    assert later.workers == first.workers
    again = record_of(job, {0: pod(0)}, Facts({}), [where()])  # the pod back without its statuses
    assert again.workers[0].containers[0] == ContainerRun(
        name="main", image="reg.io/main:v1", image_id=f"a@{SHA_A}", digest=SHA_A, exit_code=3
    )


def test_parameters_are_recorded_as_a_digest_of_their_canonical_json() -> None:
    assert parameters_digest({}) is None
    assert parameters_digest({"lr": 0.1, "layers": [1, 2]}) == parameters_digest({"layers": [1, 2], "lr": 0.1})
    assert parameters_digest({"lr": 0.1}) != parameters_digest({"lr": 0.2})
    job = gpujob(provenance={"parameters": {"lr": 0.1}})
    assert record_of(job, {}, Facts(), [where()]).parameters_digest == parameters_digest({"lr": 0.1})


def test_uuids_come_from_each_nodes_annotation_and_a_bad_one_counts_as_none() -> None:
    good = node_object("n1")
    good["metadata"]["annotations"] = {UUIDS_ANNOTATION: format_uuids({0: "GPU-a", 1: "GPU-b"})}
    bad = node_object("n2")
    bad["metadata"]["annotations"] = {UUIDS_ANNOTATION: '{"0": 7}'}
    view = view_of(nodes={"n1": good, "n2": bad, "n3": node_object("n3")})
    assert gpu_uuids(view) == {"n1": {0: "GPU-a", 1: "GPU-b"}}


# --------------------------------------------------------------------------- bounds


def _attempt(number: int, workers: int = 1) -> AttemptProvenance:
    return AttemptProvenance(
        attempt=number, workers=[WorkerRun(worker=w, pod=f"p{w}", node="n1") for w in range(workers)]
    )


def test_history_keeps_the_last_attempts_and_counts_the_rest() -> None:
    history = None
    for number in range(1, MAX_RECORDED_ATTEMPTS + 9):
        history = with_record(history, _attempt(number))
    assert history is not None
    assert [a.attempt for a in history.attempts] == list(range(9, MAX_RECORDED_ATTEMPTS + 9))
    assert history.omitted_attempts == 8
    # Refreshing the current attempt replaces it in place.
    again = with_record(history, _attempt(MAX_RECORDED_ATTEMPTS + 8, workers=2))
    assert len(again.attempts) == MAX_RECORDED_ATTEMPTS and len(again.attempts[-1].workers) == 2


def test_a_large_gang_keeps_fewer_attempts_but_always_the_current_one() -> None:
    gang = MAX_RECORDED_WORKER_RUNS // 2 + 1
    history = with_record(with_record(None, _attempt(1, gang)), _attempt(2, gang))
    assert [a.attempt for a in history.attempts] == [2] and history.omitted_attempts == 1
    largest = with_record(history, _attempt(3, MAX_RECORDED_WORKER_RUNS))
    assert [a.attempt for a in largest.attempts] == [3] and largest.omitted_attempts == 2


# --------------------------------------------------------------------------- the digest check


def _ran(*digests: str | None) -> AttemptProvenance:
    workers = [
        WorkerRun(worker=i, pod=f"train-a1-w{i}", node="n1", containers=[ContainerRun(name="main", digest=d)])
        for i, d in enumerate(digests)
    ]
    return AttemptProvenance(attempt=1, workers=workers)


@pytest.mark.parametrize(
    ("declared", "record", "holds", "reason", "in_message"),
    [
        (None, _ran(SHA_A), "absent", None, ()),
        (SHA_A, _ran(SHA_A, SHA_A), True, "DigestMatches", (SHA_A,)),
        (f"busybox@{SHA_A}", _ran(SHA_A), True, "DigestMatches", (SHA_A,)),
        (SHA_A, _ran(SHA_A, SHA_B), False, "ImageDigestMismatch", (SHA_A, SHA_B, "worker 1", "train-a1-w1")),
        (SHA_A, _ran(None, SHA_B), False, "ImageDigestMismatch", (SHA_A, SHA_B)),
        (SHA_A, _ran(None, SHA_A), None, "DigestNotReported", ("worker(s) 0", "kwok")),
        (SHA_A, AttemptProvenance(attempt=1, workers=[WorkerRun(worker=0, pod="p", node="n")]), None, None, ()),
    ],
    ids=["none-declared", "match", "declared-as-reference", "mismatch", "mismatch-beside-unknown", "unknown", "no-pod"],
)
def test_the_declared_digest_is_compared_with_each_workers_first_container(
    declared: str | None, record: AttemptProvenance, holds: Any, reason: str | None, in_message: tuple[str, ...]
) -> None:
    verdict = verification(gpujob(provenance={"imageDigest": declared} if declared else None), record)
    if holds == "absent":
        assert verdict is None
        return
    assert verdict is not None
    assert verdict[0] is holds
    if reason is not None:
        assert verdict[1] == reason
    for fragment in in_message:
        assert fragment in verdict[2]


# --------------------------------------------------------------------------- over the loop


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def cluster(**spec: Any) -> list[dict[str, Any]]:
    node = node_object("n1", model="A100", labels={"gpupool.io/pool": "gpu"})
    node["metadata"]["annotations"] = {UUIDS_ANNOTATION: format_uuids({i: f"GPU-n1-{i}" for i in range(8)})}
    return [
        namespace_object("ns"),
        gpunodepool_object("gpu", pricePerNodeHour={"amortised": 16.0}),  # 2 per GPU-hour
        gpuqueue_object("q"),
        node,
        gpujob_object("train", gpus=2, **spec),
    ]


def job_of(r: Rig) -> GPUJob:
    entry = r.cache.get(Kind.JOB, "ns/train")
    assert entry is not None
    return entry.parsed.api  # type: ignore[no-any-return]


_versions = iter(range(50_000, 60_000))


def pod_reports(r: Rig, phase: str, *, image_id: str | None = None, exit_code: int | None = None) -> None:
    """The kubelet's (or kwok's) status of the worker pod train-a1-w0."""
    entry = r.cache.get(Kind.POD, "ns/train-a1-w0")
    assert entry is not None
    raw = copy.deepcopy(dict(entry.raw))
    state: dict[str, Any] = {"running": {}} if exit_code is None else {"terminated": {"exitCode": exit_code}}
    status: dict[str, Any] = {"name": "main", "image": "busybox", "state": state}
    if image_id is not None:
        status["imageID"] = image_id
    raw["status"] = {"phase": phase, "containerStatuses": [status]}
    raw["metadata"]["resourceVersion"] = str(next(_versions))
    r.cache.upsert(Kind.POD, raw)


def step(r: Rig, clock: Clock, seconds: float = 10) -> None:
    clock.now += seconds
    r.loop.cycle()


def status_writes(r: Rig) -> list[str]:
    return [detail for verb, detail in r.job_calls() if verb == "patch_job_status"]


def test_a_record_opens_at_admission_fills_while_running_and_closes_with_a_json_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    declared = {"imageDigest": SHA_A, "codeRevision": "c0ffee", "datasetRef": "s3://d@v3", "parameters": {"lr": 1}}
    r = rig(cluster(provenance=declared), clock=clock)
    r.loop.cycle()  # admitted
    (opened,) = job_of(r).status.provenance.attempts  # type: ignore[union-attr]
    assert [g.uuid for g in opened.workers[0].gpus] == ["GPU-n1-0", "GPU-n1-1"]
    assert opened.workers[0].price_per_gpu_hour == 2.0
    assert opened.workers[0].containers == [ContainerRun(name="main", image="busybox")]
    assert opened.outcome is None and opened.code_revision == "c0ffee"

    step(r, clock)  # the pod exists, Pending: nothing new, nothing written
    assert status_writes(r) == ["Admitted"]
    pod_reports(r, "Running", image_id=f"docker.io/library/busybox@{SHA_A}")
    step(r, clock)  # Running, and the digest in the same write
    assert status_writes(r) == ["Admitted", "Running"]
    running = job_of(r).status
    assert running.provenance is not None and running.provenance.attempts[0].workers[0].containers[0].digest == SHA_A
    verified = {c.type: c for c in running.conditions}[CONDITION]
    assert (verified.status.value, verified.reason) == ("True", "DigestMatches")
    step(r, clock)  # nothing changed: no write
    assert status_writes(r) == ["Admitted", "Running"]

    pod_reports(r, "Succeeded", image_id=f"docker.io/library/busybox@{SHA_A}", exit_code=0)
    with caplog.at_level(logging.INFO, logger=LOG_NAME):
        step(r, clock)
    assert status_writes(r) == ["Admitted", "Running", "Succeeded"]
    (closed,) = job_of(r).status.provenance.attempts  # type: ignore[union-attr]
    assert closed.outcome == AttemptOutcome.SUCCEEDED and closed.workers[0].containers[0].exit_code == 0
    assert closed.ended_at is not None and closed.started_at is not None

    (line,) = [rec for rec in caplog.records if rec.name == LOG_NAME]
    logged = json.loads(JsonFormatter().format(line))  # one JSON object, as the operator writes it
    assert logged["logger"] == LOG_NAME
    body = logged["provenance"]
    assert body["job"] == "ns/train" and body["uid"] == "uid-train" and body["queue"] == "q"
    assert body["parameters"] == {"lr": 1}
    assert body["outcome"] == "Succeeded" and body["imageDigest"] == SHA_A and body["datasetRef"] == "s3://d@v3"
    worker = body["workers"][0]
    assert worker["node"] == "n1" and [g["uuid"] for g in worker["gpus"]] == ["GPU-n1-0", "GPU-n1-1"]
    assert worker["containers"][0] == {
        "name": "main",
        "image": "busybox",
        "imageID": f"docker.io/library/busybox@{SHA_A}",
        "digest": SHA_A,
        "exitCode": 0,
    }
    assert body == {
        **closed.model_dump(mode="json", by_alias=True, exclude_none=True),
        **{k: body[k] for k in ("job", "uid", "queue", "parameters")},
    }


def test_a_digest_mismatch_is_a_warning_event_once_and_a_false_condition() -> None:
    clock = Clock()
    r = rig(cluster(provenance={"imageDigest": SHA_A}), clock=clock)
    r.loop.cycle()
    pod_reports(r, "Running")  # no imageID yet (kwok never sends one)
    step(r, clock)
    verified = {c.type: c for c in job_of(r).status.conditions}[CONDITION]
    assert (verified.status.value, verified.reason) == ("Unknown", "DigestNotReported")
    pod_reports(r, "Running", image_id=f"busybox@{SHA_B}")
    step(r, clock)
    step(r, clock)
    verified = {c.type: c for c in job_of(r).status.conditions}[CONDITION]
    assert (verified.status.value, verified.reason) == ("False", "ImageDigestMismatch")
    assert SHA_A in (verified.message or "") and SHA_B in (verified.message or "")
    events = [detail for verb, detail in r.job_calls() if verb == "emit_event"]
    assert events.count("ImageDigestMismatch") == 1


def test_a_restart_closes_the_attempt_and_the_next_one_gets_its_own_record() -> None:
    clock = Clock()
    r = rig(cluster(), clock=clock)
    r.loop.cycle()
    pod_reports(r, "Running", image_id=f"busybox@{SHA_A}")
    step(r, clock)
    pod_reports(r, "Failed", image_id=f"busybox@{SHA_A}", exit_code=137)
    step(r, clock)  # restarted: queued again, then admitted again in the same cycle
    history = job_of(r).status.provenance
    assert history is not None
    assert [(a.attempt, a.outcome) for a in history.attempts] == [(1, AttemptOutcome.RESTARTED), (2, None)]
    assert history.attempts[0].workers[0].containers[0].exit_code == 137
    assert history.attempts[1].workers[0].pod == "train-a2-w0"


# --------------------------------------------------------------------------- time to live


def finished(ttl: int | None, finished_at: float = START, phase: str = "Succeeded") -> dict[str, Any]:
    at = datetime.fromtimestamp(finished_at, UTC).isoformat()
    spec = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    return gpujob_object("train", phase=phase, status={"attempts": 1, "finishedAt": at}, **spec)


@pytest.mark.parametrize(
    ("ttl", "phase", "after", "deleted"),
    [
        (60, "Succeeded", 59, False),
        (60, "Succeeded", 60, True),
        (60, "Failed", 61, True),
        (0, "Succeeded", 0, True),
        (None, "Succeeded", 7 * 24 * 3600 - 1, False),
        (None, "Failed", 7 * 24 * 3600, True),
        (0, "Running", 10_000, False),
        (0, "Queued", 10_000, False),
        (0, "Preempted", 10_000, False),
    ],
)
def test_a_finished_job_is_deleted_once_its_ttl_has_passed(
    ttl: int | None, phase: str, after: float, deleted: bool
) -> None:
    clock = Clock()
    objects = [*cluster()[:-1], finished(ttl, phase=phase)]
    if phase == "Running":  # a running job carries a placement; it must never expire
        objects[-1]["status"]["placement"] = [{"worker": 0, "pod": "train-a1-w0", "node": "n1", "gpuIndices": [0]}]
    r = rig(objects, clock=clock)
    clock.now = START + after
    r.loop.cycle()
    deletes = [c for c in r.writer.calls if c.verb == "delete_job"]
    assert [(c.target, c.detail) for c in deletes] == ([("gpujobs/ns/train", "uid-train")] if deleted else [])
    assert (r.cache.get(Kind.JOB, "ns/train") is None) == deleted


def test_a_ttl_shortened_after_the_job_finished_applies_at_the_next_cycle() -> None:
    clock = Clock()
    r = rig([*cluster()[:-1], finished(3600)], clock=clock)
    step(r, clock, 120)
    assert not any(c.verb == "delete_job" for c in r.writer.calls)
    edited = finished(60)
    edited["metadata"]["resourceVersion"] = "90000"
    r.cache.upsert(Kind.JOB, edited)
    step(r, clock, 1)
    assert [c.target for c in r.writer.calls if c.verb == "delete_job"] == ["gpujobs/ns/train"]


def test_ttl_zero_deletes_the_job_in_the_cycle_after_its_last_attempt_is_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    r = rig(cluster(ttlSecondsAfterFinished=0), clock=clock)
    r.loop.cycle()
    pod_reports(r, "Succeeded", exit_code=0)
    with caplog.at_level(logging.INFO, logger=LOG_NAME):
        step(r, clock)
    assert job_of(r).status.phase is not None and job_of(r).status.phase.value == "Succeeded"
    assert len([rec for rec in caplog.records if rec.name == LOG_NAME]) == 1
    step(r, clock, 0)
    assert r.cache.get(Kind.JOB, "ns/train") is None
    calls = [verb for verb, _detail in r.job_calls()]
    assert calls.index("delete_job") > calls.index("patch_job_status")


def test_expiry_is_none_until_the_job_finishes() -> None:
    assert expires_at(gpujob(phase="Running")) is None
    assert expires_at(gpujob(phase="Succeeded")) is None  # no finishedAt
    assert expires_at(gpujob(phase="Failed", status={"finishedAt": "2026-03-01T09:00:00Z"})) == START + 604800


# --------------------------------------------------------------------------- for people


def test_the_text_shows_a_block_per_attempt_and_says_what_is_unknown() -> None:
    job = gpujob(workers=1, gpus=2, provenance={"imageDigest": SHA_A})
    first = record_of(job, {0: pod(0, image_id=f"a@{SHA_A}", exit_code=1)}, Facts({"n1": {0: "GPU-0"}}), [where()])
    first = first.model_copy(update={"outcome": AttemptOutcome.RESTARTED})
    second = record_of(job, {0: pod(0)}, Facts(), [where()]).model_copy(update={"attempt": 2})
    status = {
        "phase": "Running",
        "provenance": with_record(with_record(None, first), second).model_dump(mode="json", by_alias=True),
        "conditions": [{"type": CONDITION, "status": "Unknown", "reason": "DigestNotReported", "message": "m"}],
    }
    text = render_text("ns/train", status)
    assert "attempt 1: Restarted" in text and "attempt 2: running" in text
    assert "GPUs 0=GPU-0, 1=uuid unknown" in text
    assert f"ran {SHA_A}" in text and "exit 1" in text
    assert "ran digest unknown" in text and "code      (not declared)" in text
    assert "ProvenanceVerified=Unknown (DigestNotReported)" in text
    assert render_text("ns/new", {}).endswith("no attempt recorded yet")


def test_the_json_output_carries_the_status_record_as_it_is() -> None:
    from gpupool.provenance_cmd import as_json

    record = {"attempts": [{"attempt": 1, "outcome": "Failed", "workers": []}], "omittedAttempts": 0}
    verified = {"type": CONDITION, "status": "False", "reason": "ImageDigestMismatch", "message": "m"}
    raw = gpujob_object(
        "train", phase="Failed", status={"provenance": record, "conditions": [verified], "finishedAt": "t"}
    )
    assert as_json("ns/train", raw) == {
        "job": "ns/train",
        "uid": "uid-train",
        "phase": "Failed",
        "finishedAt": "t",
        "ttlSecondsAfterFinished": None,  # the API server fills the default; this raw object has none
        "provenanceVerified": verified,
        "provenance": record,
    }
    empty = as_json("ns/new", gpujob_object("new"))
    assert empty["provenance"] == {"attempts": [], "omittedAttempts": 0} and empty["provenanceVerified"] is None
