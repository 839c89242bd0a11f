"""Turn lifecycle steps and core decisions into `JobChange`s: what to write, per job, in order.

Who calls this: the scheduling loop (`gpupool.controllers.loop`) at step 1 (lifecycle:
`plan_lifecycle`) and step 4 (`plan_decisions`); the applier (`gpupool.cluster.writes.apply`)
carries the changes out. Everything here is pure: the job's next status comes from
`gpupool.cluster.writes.status`, its worker pods from `gpupool.cluster.writes.pods`, built from the
decision itself (the admission's placements), never from a re-read status.

A `JobChange` is written in this order: the status (when there is one), then its events,
then pod deletions, then pod creations. When the status write fails, the rest is skipped
and the next cycle decides again from the API server's truth.

A job new to gpupool (no phase yet) is queued by the same status write that admits it or
says why it waits, with a `Queued` event before the others: one write instead of two for
every new job, and the same status and events a person sees.

Each attempt's provenance record (`gpupool.cluster.writes.provenance`) rides on these writes: it
is opened by the admission's status, refreshed by whatever status the lifecycle step
writes (or by a write of its own, only when the record or its digest check changed) and
closed by the write that ends the attempt, whose change also carries the record's log
line. A finished job whose `spec.ttlSecondsAfterFinished` has passed is deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from gpupool.api import (
    API_VERSION,
    AdmissionRejectionStatus,
    AttemptOutcome,
    GPUJob,
    GPUJobStatus,
    IdleSpec,
    JobPhase,
    WorkerPlacementStatus,
)
from gpupool.cluster.translate.convert import HOLDING_PHASES, parse_duration_seconds, parse_timestamp, placement_status
from gpupool.cluster.translate.devices import judged_gpus
from gpupool.cluster.translate.snapshot import ClusterSnapshot
from gpupool.cluster.translate.spend import ended_attempt_fields
from gpupool.cluster.writes import pods as podlib
from gpupool.cluster.writes.lifecycle import LifecycleStep, Step, next_step, pods_of_attempt
from gpupool.cluster.writes.ports import EventNote, ObjectRef
from gpupool.cluster.writes.provenance import attempt_record, expired, log_record, recorded, stored_record
from gpupool.cluster.writes.reservations import (
    ReservationSettings,
    refused_message,
    reservation_manifest,
    reservation_writes,
    reserved_uuid,
    share_trouble,
    slot_of,
)
from gpupool.cluster.writes.status import (
    generation_of,
    has_condition,
    job_status,
    model_choice_message,
    model_choice_status,
    timestamp,
)
from gpupool.core.idle import IdleAction, IdlePolicy, job_utilization, judge_idle
from gpupool.core.models import Admission, Decisions, Device, GpuNode

log = logging.getLogger("gpupool.plan")

RawObject = Mapping[str, Any]


class ChangeKind(StrEnum):
    """Why a job is written to (the applier logs it; tests match on it)."""

    INVALID = "Invalid"
    CREATE_PODS = "CreatePods"
    START = "Start"
    FINISH = "Finish"
    FAIL = "Fail"
    RESTART = "Restart"
    STRAY_PODS = "StrayPods"
    PREEMPT = "Preempt"
    ADMIT = "Admit"
    WAIT = "Wait"
    IDLE = "Idle"
    PROVENANCE = "Provenance"
    DEVICES = "Devices"
    RESERVE = "Reserve"  # a share reservation pod created or deleted (`gpupool.cluster.writes.reservations`)
    EXPIRE = "Expire"


# Changes whose status ends the attempt (and closes its provenance record).
ENDING = frozenset({ChangeKind.FINISH, ChangeKind.FAIL, ChangeKind.RESTART, ChangeKind.PREEMPT})


@dataclass(frozen=True)
class JobChange:
    """Writes for one job: `status` first, then `events` and `log_records`, then `delete_pods`,
    then `create_pods`; or, with `delete_job`, only the deletion of the GPUJob itself.

    `events_without_status` posts the events even when the status write fails (used for
    jobs gpupool cannot read, whose status the API server may also refuse). `log_records`
    are the provenance records of the attempts this status ends, logged once it is written.
    """

    kind: ChangeKind
    namespace: str
    name: str
    about: ObjectRef
    status: GPUJobStatus | None = None
    events: tuple[EventNote, ...] = ()
    delete_pods: tuple[str, ...] = ()
    create_pods: tuple[dict[str, Any], ...] = ()
    events_without_status: bool = False
    log_records: tuple[dict[str, Any], ...] = ()
    delete_job: bool = False

    @property
    def key(self) -> str:
        """The job's `namespace/name`."""
        return f"{self.namespace}/{self.name}"


def job_ref(metadata: Mapping[str, Any]) -> ObjectRef:
    """The Event reference of a GPUJob from its metadata."""
    return ObjectRef.of(metadata, api_version=API_VERSION, kind="GPUJob")


def _change(job: GPUJob, kind: ChangeKind, **fields: Any) -> JobChange:
    metadata = job.metadata
    return JobChange(
        kind=kind,
        namespace=str(metadata["namespace"]),
        name=str(metadata["name"]),
        about=job_ref(metadata),
        **fields,
    )


SHARE_CONDITION = "ShareDeviceSelection"
"""A share job's condition: False while the nodes it could use refuse to give a share its GPU."""


@dataclass(frozen=True)
class Planner:
    """Builds `JobChange`s; holds the settings pods need (the scheduler name, how share
    reservation pods are made)."""

    scheduler_name: str = "gpupool"
    reservations: ReservationSettings = field(default_factory=ReservationSettings)

    # ------------------------------------------------------------------ step 1: lifecycle

    def plan_lifecycle(self, snap: ClusterSnapshot, now: float) -> list[JobChange]:
        """Advance jobs holding GPUs by their pods, delete stray pods (new jobs are queued by
        their first decision, in `plan_decisions`)."""
        changes: list[JobChange] = []
        for _key, job in sorted(snap.jobs.items()):
            if job.status.phase in HOLDING_PHASES and not job.metadata.get("deletionTimestamp"):
                change = self.advance(job, snap, now)
                if change is not None:
                    changes.append(change)
            elif expired(job, now):
                changes.append(_change(job, ChangeKind.EXPIRE, delete_job=True))
        changes.extend(self.stray_pods(snap))
        changes.extend(self.reservation_pods(snap))
        return changes

    @staticmethod
    def entering(job: GPUJob, now: float) -> tuple[tuple[EventNote, ...], dict[str, Any]]:
        """For a job new to gpupool, the `Queued` event and the status fields that queue it."""
        if job.status.phase is not None:
            return (), {}
        return (EventNote("Queued", f"queued in queue {job.spec.queue}"),), {"queued_at": timestamp(now)}

    def advance(self, job: GPUJob, snap: ClusterSnapshot, now: float) -> JobChange | None:
        """The next lifecycle step of a job holding GPUs (`gpupool.cluster.writes.lifecycle`)."""
        key = f"{job.metadata['namespace']}/{job.metadata['name']}"
        attempt = job.status.attempts
        max_runtime = (
            parse_duration_seconds(job.spec.max_runtime, what="spec.maxRuntime") if job.spec.max_runtime else None
        )
        pods = pods_of_attempt(snap.pods_by_job.get(key, []), attempt)
        step = next_step(
            job,
            pods,
            now,
            started_at=parse_timestamp(job.status.started_at),
            max_runtime_seconds=max_runtime,
            failures=job.status.failures,
            lost_nodes={w.node for w in job.status.placement if snap.node_lost(w.node, now)},
            admission_rejections=job.status.admission_rejections,
        )
        if step.step in (Step.SUCCEED, Step.FAIL, Step.RETRY, Step.INTERRUPT, Step.REQUEUE):
            return self.stop_attempt(job, step, snap, now)
        trouble = share_trouble(job, snap.placement_of(job), pods, snap.reservations, snap.node_devices)
        if trouble is not None:
            return self.stop_attempt(job, LifecycleStep(Step.INTERRUPT, *trouble), snap, now)
        change = self._running_step(job, step, snap, now)
        if change is not None and change.kind in ENDING:
            return change
        return self.observed(job, change, snap, pods, now)

    def _running_step(self, job: GPUJob, step: LifecycleStep, snap: ClusterSnapshot, now: float) -> JobChange | None:
        """The change of a lifecycle step that does not end the attempt."""
        if step.step == Step.CREATE_PODS:
            placement = job.status.placement
            on_cpu = job.status.device == Device.CPU
            manifests = self.worker_pods(job, placement, job.status.attempts, snap, step.missing_workers, on_cpu=on_cpu)
            if manifests:
                return _change(job, ChangeKind.CREATE_PODS, create_pods=manifests)
            return self._waiting_for_reservation(job, step.missing_workers, snap, now)
        if step.step == Step.MARK_RUNNING:
            nodes = sorted({p.node for p in job.status.placement})
            status = job_status(
                job,
                now,
                [("Running", True, step.reason, step.message)],
                phase=JobPhase.RUNNING,
                started_at=timestamp(now),
                message=f"running {job.spec.workers} worker(s) on {', '.join(nodes)}",
                admission_rejections=0,
                last_admission_rejection=None,
            )
            return _change(job, ChangeKind.START, status=status, events=(EventNote("Started", step.message),))
        if job.status.phase == JobPhase.RUNNING:
            return self.idle_check(job, snap, now)
        return None

    def observed(
        self,
        job: GPUJob,
        change: JobChange | None,
        snap: ClusterSnapshot,
        pods: Mapping[int, RawObject],
        now: float,
    ) -> JobChange | None:
        """`change` with the running attempt's provenance record refreshed from its pods and
        nodes; a status write of its own when only the record (or its digest check) changed."""
        if not pods and stored_record(job.status, job.status.attempts) is None:
            return change  # admitted without a record (by an older operator): begun once a pod shows
        written = change.status if change is not None and change.status is not None else job.status
        placement = snap.placement_of(job)
        base = written if placement == written.placement else written.model_copy(update={"placement": placement})
        record = attempt_record(
            job,
            attempt=job.status.attempts,
            placement=placement,
            pods_by_worker=pods,
            facts=snap,
            admitted_at=base.admitted_at,
            started_at=base.started_at,
        )
        status, events = recorded(job, base, record, now, generation_of(job.metadata))
        if status == written:
            return change
        if change is None:
            kind = ChangeKind.DEVICES if base is not written else ChangeKind.PROVENANCE
            return _change(job, kind, status=status, events=events)
        return replace(change, status=status, events=(*change.events, *events))

    def idle_check(self, job: GPUJob, snap: ClusterSnapshot, now: float) -> JobChange | None:
        """A running job's idle verdict (`gpupool.core.idle`) made durable: `idleSince` and the
        `GPUIdle` condition are written only when they change; a job newly idle gets an
        event, and under its queue's `idle.action: Stop` fails with reason GPUIdle."""
        queue = snap.queues.get(job.spec.queue)
        spec = (queue.spec.idle if queue is not None else None) or IdleSpec()
        policy = IdlePolicy(
            threshold=spec.threshold,
            after_seconds=parse_duration_seconds(spec.after, what="spec.idle.after"),
            action=IdleAction(spec.action.value),
        )
        # The GPUs the job's pods really hold (device truth); unknown while a reporting node
        # has not shown them yet, which leaves the verdict as it was.
        gpus = judged_gpus(snap.placement_of(job), snap.node_devices)
        utilization = job_utilization(gpus, snap.gpu_readings) if gpus is not None else None
        verdict = judge_idle(utilization, policy, parse_timestamp(job.status.idle_since), now)
        was_idle = any(c.type == "GPUIdle" and c.status.value == "True" for c in job.status.conditions)
        since = timestamp(verdict.since) if verdict.since is not None else None
        if verdict.idle and not was_idle:
            message = (
                f"every GPU of the job stayed below {policy.threshold:.0%} utilisation for {spec.after} "
                f"(queue {job.spec.queue}'s idle rule)"
            )
            if policy.action == IdleAction.STOP:
                return self.stop_attempt(job, LifecycleStep(Step.FAIL, "GPUIdle", f"{message}; stopped"), snap, now)
            status = job_status(job, now, [("GPUIdle", True, "GPUIdle", message)], idle_since=since)
            return _change(job, ChangeKind.IDLE, status=status, events=(EventNote("GPUIdle", message, "Warning"),))
        if was_idle and verdict.below is False:
            status = job_status(
                job, now, [("GPUIdle", False, "Busy", "the job's GPUs are busy again")], idle_since=None
            )
            return _change(job, ChangeKind.IDLE, status=status)
        if verdict.since != parse_timestamp(job.status.idle_since):
            return _change(job, ChangeKind.IDLE, status=job_status(job, now, idle_since=since))
        return None

    def stop_attempt(self, job: GPUJob, step: LifecycleStep, snap: ClusterSnapshot, now: float) -> JobChange:
        """The attempt ends: it succeeded, failed for good, or the gang restarts.

        In each case the attempt's GPU time is accounted and the Running condition cleared;
        a failure deletes the unfinished pods, a restart all of the attempt's pods. A gang a
        kubelet refused at admission (`Step.REQUEUE`) is queued again like a restart, with
        neither a failure counted nor a preemption, and an `AdmissionRejected` event; every
        rejection, free or counted, is recorded in `admissionRejections` and
        `lastAdmissionRejection`.
        """
        usage = self.attempt_usage(job, snap, now)
        running = ("Running", False, step.reason, step.message)
        outcome = {
            Step.RETRY: AttemptOutcome.RESTARTED,
            Step.INTERRUPT: AttemptOutcome.INTERRUPTED,
            Step.REQUEUE: AttemptOutcome.ADMISSION_REJECTED,
            Step.SUCCEED: AttemptOutcome.SUCCEEDED,
        }.get(step.step, AttemptOutcome.FAILED)
        rejected = _rejection_fields(job, step, now)
        if step.step in (Step.RETRY, Step.INTERRUPT, Step.REQUEUE):
            free = step.step != Step.RETRY
            reason = {Step.INTERRUPT: "Interrupted", Step.REQUEUE: "AdmissionRejected"}.get(step.step, "Restarting")
            kind, event, only_unfinished = ChangeKind.RESTART, EventNote(reason, step.message, "Warning"), False
            condition = ("Admitted", False, step.reason, step.message)
            fields: dict[str, Any] = {
                "phase": JobPhase.QUEUED,
                "placement": [],
                "started_at": None,
                "admitted_at": None,
                "failures": job.status.failures + (0 if free else 1),
                # A requeued gang's message is the one its hold repeats (`snapshot.admission_hold`), so
                # the wait writes nothing new.
                "message": step.message if step.step == Step.REQUEUE else f"queued again: {step.message}",
                **rejected,
            }
        else:
            succeeded = step.step == Step.SUCCEED
            kind = ChangeKind.FINISH if succeeded else ChangeKind.FAIL
            event = EventNote("Finished", step.message) if succeeded else EventNote("Failed", step.message, "Warning")
            only_unfinished = True
            condition = ("Finished", True, "Succeeded" if succeeded else step.reason, step.message)
            fields = {
                "phase": JobPhase.SUCCEEDED if succeeded else JobPhase.FAILED,
                "finished_at": timestamp(now),
                "message": f"{'succeeded' if succeeded else 'failed'}: {step.message}",
                **rejected,
            }
        status = job_status(job, now, [running, condition], **usage, **fields)
        status, noted, logged = self.closed(job, status, outcome, snap, now)
        pods = () if kind == ChangeKind.FINISH else self.job_pods(job, snap, only_unfinished=only_unfinished)
        return _change(job, kind, status=status, events=(event, *noted), delete_pods=pods, log_records=logged)

    def closed(
        self, job: GPUJob, status: GPUJobStatus, outcome: AttemptOutcome, snap: ClusterSnapshot, now: float
    ) -> tuple[GPUJobStatus, tuple[EventNote, ...], tuple[dict[str, Any], ...]]:
        """`status` with the ending attempt's record closed (outcome, end, the last the pods
        showed), the events that go with it, and the record's log line."""
        key = f"{job.metadata['namespace']}/{job.metadata['name']}"
        placement = snap.placement_of(job)
        if status.placement == job.status.placement and placement != status.placement:
            status = status.model_copy(update={"placement": placement})  # ends with the devices it held
        record = attempt_record(
            job,
            attempt=job.status.attempts,
            placement=placement,
            pods_by_worker=pods_of_attempt(snap.pods_by_job.get(key, []), job.status.attempts),
            facts=snap,
            admitted_at=job.status.admitted_at,
            started_at=job.status.started_at,
            outcome=outcome,
            ended_at=timestamp(now),
        )
        status, events = recorded(job, status, record, now, generation_of(job.metadata))
        return status, events, (log_record(job, record),)

    def stray_pods(self, snap: ClusterSnapshot) -> list[JobChange]:
        """Pods of deleted jobs, of jobs no longer holding GPUs, or of an older attempt."""
        changes: list[JobChange] = []
        for key, pods in sorted(snap.pods_by_job.items()):
            job = snap.jobs.get(key)
            stray = tuple(
                str(pod["metadata"]["name"])
                for pod in pods
                if not pod["metadata"].get("deletionTimestamp") and _is_stray(pod, job)
            )
            if stray:
                namespace, _, name = key.partition("/")
                about = job_ref(job.metadata) if job else ObjectRef(API_VERSION, "GPUJob", namespace, name)
                changes.append(JobChange(ChangeKind.STRAY_PODS, namespace, name, about, delete_pods=stray))
        return changes

    # ------------------------------------------------------------------ step 4: decisions

    def plan_decisions(self, snap: ClusterSnapshot, decisions: Decisions, now: float) -> list[JobChange]:
        """Preemptions, then admissions, then the reasons of waiting jobs."""
        changes: list[JobChange] = []
        for preemption in decisions.preemptions:
            job = snap.jobs.get(preemption.victim_key)
            if job is not None:
                changes.append(self.preempted(job, preemption.message, snap, now))
        for admission in decisions.admissions:
            job = snap.jobs.get(admission.job_key)
            if job is not None:
                changes.append(self.admitted(job, admission, snap, now))
        waits = [(w.job_key, str(w.code), w.message) for w in decisions.waiting]
        waits += [(key, reason.code, reason.message) for key, reason in snap.unschedulable.items()]
        refusing = [(name, node.gpu_model) for name, node in sorted(snap.nodes.items()) if refuses_shares(node)]
        for key, code, message in waits:
            job = snap.jobs.get(key)
            refused = refusing_nodes(job, refusing) if job is not None and refusing else []
            change = self.waiting(job, code, message, now, refused) if job is not None else None
            if change is not None:
                changes.append(change)
        return changes

    def admitted(self, job: GPUJob, admission: Admission, snap: ClusterSnapshot, now: float) -> JobChange:
        """Status Admitted with the placement, then the workers' pods built from it."""
        attempt = job.status.attempts + 1
        job_name = str(job.metadata["name"])
        workers = placement_status(admission.placements, snap.nodes, lambda w: podlib.pod_name(job_name, attempt, w))
        on_cpu = admission.device == Device.CPU
        if not on_cpu:
            workers = self._reserved(workers, snap)
        where = ", ".join(
            f"{w.node} (CPU)" if on_cpu else f"{w.node} (GPU {','.join(map(str, w.gpu_indices)) or '-'})"
            for w in workers
        )
        borrowed = admission.borrowed_gpus
        borrowed_note = f", borrowing {borrowed:g} GPU(s) from the cohort" if borrowed else ""
        message = f"admitted to {job.spec.queue}{borrowed_note}; starting {job.spec.workers} worker(s) on {where}"
        conditions = [("Admitted", True, "Admitted", message)]
        if has_condition(job.status, "Preempted"):
            conditions.append(("Preempted", False, "Readmitted", message))
        if has_condition(job.status, SHARE_CONDITION):
            conditions.append((SHARE_CONDITION, True, "Placed", message))
        queued_events, queued_fields = self.entering(job, now)
        choice_events: tuple[EventNote, ...] = ()
        if admission.model_choice is not None:
            queued_fields["model_choice"] = model_choice_status(admission.model_choice)
            queue = snap.queues.get(job.spec.queue)
            budget = queue.spec.budget if queue is not None else None
            note = model_choice_message(admission.model_choice, budget.currency if budget is not None else None)
            choice_events = (EventNote("ModelChosen", note),)
        if job.spec.falls_back:
            queued_fields["device"] = admission.device
            queued_fields["device_reason"] = admission.device_reason if on_cpu else None
        if on_cpu:
            choice_events = (*choice_events, EventNote("RunningOnCPU", admission.device_reason))
        status = job_status(
            job,
            now,
            conditions,
            **queued_fields,
            phase=JobPhase.ADMITTED,
            admitted_at=timestamp(now),
            started_at=None,
            attempts=attempt,
            placement=workers,
            message=message,
        )
        pods = self.worker_pods(job, workers, attempt, snap, tuple(range(job.spec.workers)), on_cpu=on_cpu)
        record = attempt_record(
            job,
            attempt=attempt,
            placement=workers,
            pods_by_worker=pods_of_attempt(pods, attempt),  # the containers they will run
            facts=snap,
            admitted_at=status.admitted_at,
            started_at=None,
            on_cpu=on_cpu,
        )
        status, noted = recorded(job, status, record, now, generation_of(job.metadata))
        events = (*queued_events, EventNote("Admitted", message), *choice_events, *noted)
        return _change(job, ChangeKind.ADMIT, status=status, events=events, create_pods=pods)

    def preempted(self, job: GPUJob, message: str, snap: ClusterSnapshot, now: float) -> JobChange:
        """Status Preempted (its GPU time accounted), then its pods go."""
        usage = self.attempt_usage(job, snap, now)
        status = job_status(
            job,
            now,
            [("Admitted", False, "Preempted", message), ("Preempted", True, "Preempted", message)],
            phase=JobPhase.PREEMPTED,
            placement=[],
            admitted_at=None,
            started_at=None,
            message=f"preempted and queued again: {message}",
            **usage,
        )
        status, noted, logged = self.closed(job, status, AttemptOutcome.PREEMPTED, snap, now)
        return _change(
            job,
            ChangeKind.PREEMPT,
            status=status,
            events=(EventNote("Preempted", message, "Warning"), *noted),
            delete_pods=self.job_pods(job, snap, only_unfinished=False),
            log_records=logged,
        )

    def waiting(
        self, job: GPUJob, code: str, message: str, now: float, refused: Sequence[str] = ()
    ) -> JobChange | None:
        """The reason a job waits, written only when it changed. A share that nodes of its
        models refuse (`refused`, labelled `gpupool.io/share-envvar=false`) also gets the
        `ShareDeviceSelection=False` condition and, when it is new, a Warning event."""
        pending = job.status.phase in (JobPhase.QUEUED, JobPhase.PREEMPTED)
        note = refused_message(refused) if refused else None
        said = any(
            c.type == SHARE_CONDITION and c.status.value == "False" and c.message == note for c in job.status.conditions
        )
        if job.status.message == message and pending and (note is None or said):
            return None
        queued_events, queued_fields = self.entering(job, now)
        conditions = [("Admitted", False, code, message)]
        events = queued_events
        if note is not None:
            conditions.append((SHARE_CONDITION, False, "EnvVarRefused", note))
            if not said:
                events = (*events, EventNote("ShareDeviceRefused", note, "Warning"))
        status = job_status(
            job,
            now,
            conditions,
            **queued_fields,
            message=message,
            phase=job.status.phase or JobPhase.QUEUED,
        )
        return _change(job, ChangeKind.WAIT, status=status, events=events)

    @staticmethod
    def invalid(key: str, raw: RawObject, reason: str) -> JobChange:
        """A GPUJob gpupool cannot read: phase Failed with the reason, and a Warning event."""
        message = f"gpupool cannot read this GPUJob and will not schedule it: {reason}"
        namespace, _, name = key.partition("/")
        return JobChange(
            ChangeKind.INVALID,
            namespace,
            name,
            ObjectRef.of(raw, api_version=str(raw.get("apiVersion") or API_VERSION), kind="GPUJob"),
            status=GPUJobStatus(phase=JobPhase.FAILED, message=message[:1000]),
            events=(EventNote("Invalid", message, "Warning"),),
            events_without_status=True,
        )

    # ------------------------------------------------------------------ helpers

    def worker_pods(
        self,
        job: GPUJob,
        placement: Sequence[Any],
        attempt: int,
        snap: ClusterSnapshot,
        workers: tuple[int, ...],
        *,
        on_cpu: bool = False,
    ) -> tuple[dict[str, Any], ...]:
        """The manifests of `workers` (those with a placement); none when the template is unusable.
        `on_cpu`: the attempt runs on a CPU-only node (no GPU requested)."""
        by_worker = {p.worker: p for p in placement}
        manifests = []
        try:
            for worker in workers:
                where = by_worker.get(worker)
                if where is None:
                    continue
                info = snap.pools.get(where.pool)
                device = reserved_uuid(where, snap.node_devices) if not on_cpu else None
                if where.reservation and device is None and not on_cpu:
                    continue  # created once the node reports the GPU its reservation pod holds
                manifests.append(
                    podlib.worker_pod(
                        job,
                        where,
                        attempt=attempt,
                        pool_taints=info.taints if info else (),
                        scheduler_name=self.scheduler_name,
                        on_cpu=on_cpu,
                        share_device=device,
                    )
                )
        except podlib.PodTemplateError as error:
            log.warning("cannot build worker pod", extra={"job": job.metadata.get("name"), "error": str(error)})
            return ()
        return tuple(manifests)

    def _reserved(self, workers: list[WorkerPlacementStatus], snap: ClusterSnapshot) -> list[WorkerPlacementStatus]:
        """A share's workers, each naming the reservation pod that holds its GPU (on nodes that
        report their pods' devices, with reservations on): the one its GPU's shares already
        name, else a new one (`ReservationBook.for_share`). Other workers as they are."""
        if not self.reservations.enabled:
            return workers
        out = []
        for where in workers:
            node = snap.nodes.get(where.node)
            if where.gpu_share < 1 and len(where.gpu_indices) == 1 and node and snap.reports_devices(where.node):
                key = snap.reservations.for_share(where.node, where.gpu_indices[0], node.gpus)
                where = where.model_copy(update={"reservation": key})
            out.append(where)
        return out

    def _waiting_for_reservation(
        self, job: GPUJob, missing: Sequence[int], snap: ClusterSnapshot, now: float
    ) -> JobChange | None:
        """The message of an admitted share whose pod waits for its reservation pod's GPU to
        be reported, written when it changes; None when no worker waits for that."""
        waiting = [
            w
            for w in snap.placement_of(job)
            if w.worker in missing and w.reservation and reserved_uuid(w, snap.node_devices) is None
        ]
        if not waiting:
            return None
        first = waiting[0]
        message = (
            f"waiting for the node agent on {first.node} to report the GPU that reservation pod {first.reservation} "
            "holds; the share's pod is created once it does"
        )
        if job.status.message == message:
            return None
        return _change(job, ChangeKind.CREATE_PODS, status=job_status(job, now, message=message))

    def reservation_pods(self, snap: ClusterSnapshot) -> list[JobChange]:
        """Reservation pods to create (named by a holding share, missing: also one someone
        deleted) and to delete (named by nothing any more, or finished), as changes of their
        own (`ChangeKind.RESERVE`, written after the jobs' own)."""
        writes = reservation_writes(snap.reservations)
        changes = [self._reserve(manifest=m) for m in writes.create]
        changes += [self._reserve(key=key) for key in writes.delete]
        return changes

    def new_reservations(self, applied: Sequence[JobChange], snap: ClusterSnapshot) -> list[JobChange]:
        """The reservation pods this cycle's admissions named that do not exist yet, created
        right after the admissions' status writes (else the next lifecycle step creates them)."""
        wanted: dict[str, str] = {}
        for change in applied:
            if change.kind != ChangeKind.ADMIT or change.status is None:
                continue
            for where in change.status.placement:
                if where.reservation and where.reservation not in snap.reservations.pods:
                    wanted.setdefault(where.reservation, where.node)
        changes = []
        for key, node in sorted(wanted.items()):
            slot = slot_of(key)
            if slot is not None and key.partition("/")[0] == self.reservations.namespace:
                changes.append(self._reserve(manifest=reservation_manifest(self.reservations, node, slot)))
        return changes

    @staticmethod
    def _reserve(*, manifest: dict[str, Any] | None = None, key: str | None = None) -> JobChange:
        if manifest is not None:
            namespace, name = str(manifest["metadata"]["namespace"]), str(manifest["metadata"]["name"])
        else:
            assert key is not None
            namespace, _, name = key.partition("/")
        about = ObjectRef("v1", "Pod", namespace, name)
        if manifest is not None:
            return JobChange(ChangeKind.RESERVE, namespace, name, about, create_pods=(manifest,))
        return JobChange(ChangeKind.RESERVE, namespace, name, about, delete_pods=(name,))

    @staticmethod
    def job_pods(job: GPUJob, snap: ClusterSnapshot, *, only_unfinished: bool) -> tuple[str, ...]:
        """Names of the job's pods (all attempts), leaving finished ones when asked."""
        key = f"{job.metadata['namespace']}/{job.metadata['name']}"
        return tuple(
            str(pod["metadata"]["name"])
            for pod in snap.pods_by_job.get(key, [])
            if not (only_unfinished and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"))
        )

    @staticmethod
    def attempt_usage(job: GPUJob, snap: ClusterSnapshot, now: float) -> dict[str, Any]:
        """Status fields accounting the attempt that ends now: `gpuSeconds`, `cost` and the
        attempt recorded in `usageHistory` (its accrual to now, `ClusterSnapshot.accrual_of`:
        the cycle's one accrual of it when `now` is the snapshot's); none when the attempt
        never started."""
        return ended_attempt_fields(job, snap.accrual_of(job, now))


def _rejection_fields(job: GPUJob, step: LifecycleStep, now: float) -> dict[str, Any]:
    """The status fields recording a step's kubelet admission rejection (none without one)."""
    rejection = step.rejection
    if rejection is None:
        return {}
    return {
        "admission_rejections": job.status.admission_rejections + 1,
        "last_admission_rejection": AdmissionRejectionStatus(
            pod=rejection.pod,
            node=rejection.node,
            reason=rejection.reason[:256],
            message=rejection.message[:1024] or None,
            at=timestamp(now),
        ),
    }


def refuses_shares(node: GpuNode) -> bool:
    """A ready node that refuses to give a share its GPU (`GpuNode.accepts_shares`)."""
    return node.ready and not node.accepts_shares


def refusing_nodes(job: GPUJob, refusing: Sequence[tuple[str, str]]) -> list[str]:
    """Of the `refusing` nodes (name, GPU model), those of a share job's GPU models; none for
    a job that is not a share."""
    if not 0 < job.spec.gpus < 1:
        return []
    models = set(job.spec.gpu_models)
    return [name for name, model in refusing if not models or model in models]


def _is_stray(pod: RawObject, job: GPUJob | None) -> bool:
    labels = pod["metadata"].get("labels") or {}
    phase = (pod.get("status") or {}).get("phase")
    return (
        job is None
        or job.metadata.get("deletionTimestamp") is not None
        or job.status.phase in (JobPhase.QUEUED, JobPhase.PREEMPTED)
        or (job.status.phase in HOLDING_PHASES and labels.get(podlib.LABEL_ATTEMPT) != str(job.status.attempts))
        or (job.status.phase == JobPhase.FAILED and phase not in ("Succeeded", "Failed"))
    )
