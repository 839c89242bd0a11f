"""Leader election: the pure rule (`decide`), the elector against a fake Lease store with
a fake clock, the Lease's wire format and the settings that shape the election."""

from __future__ import annotations

import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gpupool.cluster.kube.leader import (
    Action,
    LeaderElector,
    LeaseConflict,
    LeaseRecord,
    LeaseTiming,
    Observation,
    StoredLease,
    decide,
    micro_time,
    still_leading,
)
from gpupool.cluster.kube.lease import lease_body, record_of
from gpupool.controllers import runner
from gpupool.controllers.health import HealthServer
from gpupool.settings import OperatorSettings

TIMING = LeaseTiming(lease_duration=15, renew_deadline=10.0, retry_period=2.0)
STAMP = "2030-01-01T00:00:00.000000Z"


def held_by(holder: str | None, renew: str = STAMP, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, 15, STAMP, renew, transitions)


# ---------------------------------------------------------------------- the rule


def test_a_missing_lease_is_created_with_us_as_holder() -> None:
    decision = decide(None, None, "me", now=0.0, stamp=STAMP, timing=TIMING)
    assert decision.action is Action.CREATE
    assert decision.write == LeaseRecord("me", 15, STAMP, STAMP, 0)


def test_our_own_lease_is_renewed_keeping_its_acquire_time_and_transitions() -> None:
    mine = LeaseRecord("me", 15, "2030-01-01T00:00:00.000000Z", "2030-01-01T00:00:04.000000Z", 3)
    decision = decide(mine, Observation(mine, 0.0), "me", now=100.0, stamp="2030-01-01T00:00:06.000000Z", timing=TIMING)
    assert decision.action is Action.RENEW
    assert decision.write == LeaseRecord("me", 15, mine.acquire_time, "2030-01-01T00:00:06.000000Z", 3)


def test_a_fresh_lease_of_another_holder_is_left_alone() -> None:
    theirs = held_by("other")
    first = decide(theirs, None, "me", now=50.0, stamp=STAMP, timing=TIMING)
    assert first.action is Action.STAND_BY and first.write is None and first.holder == "other"
    later = decide(theirs, first.observation, "me", now=64.9, stamp=STAMP, timing=TIMING)
    assert later.action is Action.STAND_BY


def test_a_lease_unchanged_for_its_duration_since_we_saw_it_is_taken_over() -> None:
    theirs = held_by("other", transitions=4)
    seen = decide(theirs, None, "me", now=50.0, stamp=STAMP, timing=TIMING).observation
    decision = decide(theirs, seen, "me", now=65.0, stamp="2030-01-01T00:01:00.000000Z", timing=TIMING)
    assert decision.action is Action.ACQUIRE
    stamp = "2030-01-01T00:01:00.000000Z"
    assert decision.write == LeaseRecord("me", 15, stamp, stamp, 5)


def test_each_renewal_by_the_holder_restarts_the_wait() -> None:
    seen = decide(held_by("other", renew="t1"), None, "me", now=0.0, stamp=STAMP, timing=TIMING).observation
    renewed = decide(held_by("other", renew="t2"), seen, "me", now=14.0, stamp=STAMP, timing=TIMING)
    assert renewed.observation == Observation(held_by("other", renew="t2"), 14.0)
    assert (
        decide(held_by("other", renew="t2"), renewed.observation, "me", 28.9, STAMP, TIMING).action is Action.STAND_BY
    )
    assert decide(held_by("other", renew="t2"), renewed.observation, "me", 29.0, STAMP, TIMING).action is Action.ACQUIRE


@pytest.mark.parametrize("skew", [timedelta(hours=-3), timedelta(hours=3)], ids=["holder-behind", "holder-ahead"])
def test_expiry_is_measured_on_our_clock_whatever_the_holders_timestamps_say(skew: timedelta) -> None:
    """The holder's renewTime is never compared with our clock: a holder whose clock is hours
    off is neither taken over early nor waited for too long."""
    renew = micro_time(datetime(2030, 1, 1, tzinfo=UTC) + skew)
    theirs = held_by("other", renew=renew)
    seen = decide(theirs, None, "me", now=1000.0, stamp=STAMP, timing=TIMING).observation
    assert decide(theirs, seen, "me", now=1014.0, stamp=STAMP, timing=TIMING).action is Action.STAND_BY
    assert decide(theirs, seen, "me", now=1015.0, stamp=STAMP, timing=TIMING).action is Action.ACQUIRE


def test_a_released_lease_is_taken_at_once() -> None:
    released = LeaseRecord(None, 1, STAMP, STAMP, 2)
    decision = decide(released, None, "me", now=0.0, stamp=STAMP, timing=TIMING)
    assert decision.action is Action.ACQUIRE
    assert decision.write is not None and decision.write.transitions == 3


def test_leadership_lasts_until_the_renew_deadline_after_the_last_renewal() -> None:
    assert still_leading(100.0, 109.9, TIMING)
    assert not still_leading(100.0, 110.0, TIMING)
    assert not still_leading(None, 0.0, TIMING)


@pytest.mark.parametrize(
    ("timing", "complaint"),
    [
        (LeaseTiming(10, 10.0, 2.0), "greater than the renew deadline"),
        (LeaseTiming(15, 2.0, 2.0), "1.2 x the retry period"),
        (LeaseTiming(15, 10.0, 0.0), "greater than 0"),
    ],
    ids=["deadline-not-shorter-than-lease", "retry-too-long", "zero"],
)
def test_unusable_timings_are_refused(timing: LeaseTiming, complaint: str) -> None:
    assert any(complaint in problem for problem in timing.problems())


def test_client_gos_timings_are_usable() -> None:
    assert LeaseTiming().problems() == []


# ---------------------------------------------------------------------- the elector


@dataclass
class Lease:
    """One Lease "in the API server", shared by the candidates' stores."""

    stored: StoredLease | None = None
    version: int = 0
    writes: list[str] = field(default_factory=list)


@dataclass
class FakeStore:
    """A candidate's connection to `lease`; `down` makes every call fail like a lost API server."""

    lease: Lease
    who: str
    down: bool = False

    def get(self, timeout: float) -> StoredLease | None:
        self._check()
        return self.lease.stored

    def create(self, record: LeaseRecord, timeout: float) -> StoredLease:
        self._check()
        if self.lease.stored is not None:
            raise LeaseConflict("exists")
        return self._put(record)

    def replace(self, record: LeaseRecord, resource_version: str, timeout: float) -> StoredLease:
        self._check()
        if self.lease.stored is None or self.lease.stored.resource_version != resource_version:
            raise LeaseConflict("stale")
        return self._put(record)

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("connection refused")

    def _put(self, record: LeaseRecord) -> StoredLease:
        self.lease.version += 1
        self.lease.stored = StoredLease(record, str(self.lease.version))
        self.lease.writes.append(self.who)
        return self.lease.stored


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Candidate:
    elector: LeaderElector
    store: FakeStore
    events: list[str]


def candidate(lease: Lease, who: str, clock: Clock) -> Candidate:
    events: list[str] = []
    store = FakeStore(lease, who)
    elector = LeaderElector(
        store,
        who,
        TIMING,
        on_started_leading=lambda: events.append("started"),
        on_stopped_leading=lambda why: events.append(f"stopped: {why}"),
        clock=clock,
        wall=lambda: datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=clock.now),
        jitter=lambda: 0.0,
    )
    return Candidate(elector, store, events)


def test_the_first_candidate_leads_and_the_second_stands_by_naming_it() -> None:
    lease, clock = Lease(), Clock()
    a, b = candidate(lease, "a", clock), candidate(lease, "b", clock)
    a.elector.round()
    b.elector.round()
    assert a.events == ["started"] and a.elector.is_leader()
    assert b.events == [] and not b.elector.is_leader() and b.elector.holder == "a"
    assert lease.writes == ["a"]


def test_the_leader_renews_and_the_standby_never_writes() -> None:
    lease, clock = Lease(), Clock()
    a, b = candidate(lease, "a", clock), candidate(lease, "b", clock)
    for _ in range(30):  # a minute of rounds
        a.elector.round()
        b.elector.round()
        clock.now += TIMING.retry_period
    assert set(lease.writes) == {"a"} and len(lease.writes) == 30
    assert a.events == ["started"] and b.events == []


def test_a_standby_takes_over_a_dead_leaders_lease_after_the_lease_duration() -> None:
    lease, clock = Lease(), Clock()
    a, b = candidate(lease, "a", clock), candidate(lease, "b", clock)
    a.elector.round()
    b.elector.round()  # sees a's lease at t = 1000
    # a dies: nobody renews.
    while not b.elector.leading:
        clock.now += TIMING.retry_period
        b.elector.round()
    assert clock.now - 1000.0 == pytest.approx(16.0)  # first 2 s round past 15 s
    assert b.events == ["started"] and lease.stored is not None
    assert lease.stored.record.holder == "b" and lease.stored.record.transitions == 1


def test_a_standby_tries_again_when_the_lease_it_watches_expires_not_a_retry_period_later() -> None:
    lease, clock = Lease(), Clock()
    a, b = candidate(lease, "a", clock), candidate(lease, "b", clock)
    a.elector.round()
    clock.now += 1.0
    b.elector.round()  # sees a's lease at t = 1001: it expires at 1016 unless renewed
    assert b.elector.wait_seconds() == TIMING.retry_period
    clock.now = 1015.5
    b.elector.round()
    assert b.elector.wait_seconds() == pytest.approx(0.55)
    clock.now += b.elector.wait_seconds()
    b.elector.round()
    assert b.elector.leading and clock.now - 1001.0 == pytest.approx(15.05)


def test_a_leader_that_cannot_renew_stops_at_the_renew_deadline_before_anyone_takes_over() -> None:
    lease, clock = Lease(), Clock()
    a, b = candidate(lease, "a", clock), candidate(lease, "b", clock)
    a.elector.round()
    b.elector.round()
    a.store.down = True  # a is cut off from the API server; b still reaches it
    stopped_at = None
    taken_at = None
    while taken_at is None:
        clock.now += TIMING.retry_period
        a.elector.round()
        if stopped_at is None and a.events[-1].startswith("stopped"):
            stopped_at = clock.now
            assert not a.elector.is_leader()
        b.elector.round()
        if b.elector.leading:
            taken_at = clock.now
    assert stopped_at is not None and stopped_at - 1000.0 == pytest.approx(10.0)
    assert stopped_at < taken_at
    assert a.events == ["started", f"stopped: the Lease was not renewed for {TIMING.renew_deadline}s"]
    a.store.down = False
    a.elector.round()  # a lost leader never writes again
    assert lease.writes == ["a", "b"]


def test_is_leader_turns_false_at_the_deadline_even_before_the_next_round() -> None:
    lease, clock = Lease(), Clock()
    a = candidate(lease, "a", clock)
    a.elector.round()
    clock.now += 9.9
    assert a.elector.is_leader()
    clock.now += 0.1  # e.g. the process was paused
    assert not a.elector.is_leader()


def test_a_leader_that_finds_another_holder_stops_at_once() -> None:
    lease, clock = Lease(), Clock()
    a = candidate(lease, "a", clock)
    a.elector.round()
    assert lease.stored is not None
    lease.stored = StoredLease(held_by("intruder"), "99")
    clock.now += TIMING.retry_period
    a.elector.round()
    assert a.events == ["started", "stopped: the Lease is held by intruder"]


def test_of_two_candidates_writing_against_the_same_version_one_wins() -> None:
    lease, clock = Lease(), Clock()
    a, b = candidate(lease, "a", clock), candidate(lease, "b", clock)
    lease.stored = StoredLease(LeaseRecord(None, 1, STAMP, STAMP, 0), "7")
    read = lease.stored
    a.store.get = lambda timeout: read  # type: ignore[method-assign]
    b.store.get = lambda timeout: read  # type: ignore[method-assign]
    a.elector.round()
    b.elector.round()  # read version 7 too, but a's write made it 8
    assert a.elector.leading and not b.elector.leading
    assert b.events == [] and lease.writes == ["a"]


def test_release_lets_the_standby_lead_at_its_next_round() -> None:
    lease, clock = Lease(), Clock()
    a, b = candidate(lease, "a", clock), candidate(lease, "b", clock)
    a.elector.round()
    b.elector.round()
    assert a.elector.release()
    assert lease.stored is not None and lease.stored.record.holder is None
    clock.now += TIMING.retry_period
    b.elector.round()
    assert b.elector.leading and lease.stored.record.holder == "b"
    assert not candidate(lease, "c", clock).elector.release()  # not the holder: nothing written


def test_run_stops_with_the_stop_event() -> None:
    lease, clock = Lease(), Clock()
    a = candidate(lease, "a", clock)
    stop = threading.Event()
    stop.set()
    a.elector.run(stop)  # returns at once
    assert lease.writes == []


# ---------------------------------------------------------------------- wire format and settings


def test_a_lease_round_trips_through_its_api_object() -> None:
    record = LeaseRecord("op_1_abc", 15, "2030-01-01T00:00:00.000001Z", "2030-01-01T00:00:02.500000Z", 2)
    body = lease_body("gpupool", "gpupool-leader", record, "41")
    assert body["metadata"] == {"name": "gpupool-leader", "namespace": "gpupool", "resourceVersion": "41"}
    assert body["spec"]["holderIdentity"] == "op_1_abc" and body["spec"]["leaseTransitions"] == 2
    assert record_of(body) == StoredLease(record, "41")
    released = lease_body("ns", "l", LeaseRecord(None, 1, STAMP, STAMP, 2))
    assert "holderIdentity" not in released["spec"] and "resourceVersion" not in released["metadata"]


def test_micro_time_always_has_six_fraction_digits_in_utc() -> None:
    assert micro_time(datetime(2030, 1, 1, tzinfo=UTC)) == "2030-01-01T00:00:00.000000Z"
    two_hours_east = timezone(timedelta(hours=2))
    assert micro_time(datetime(2030, 1, 1, 4, 0, 0, 5, tzinfo=two_hours_east)) == "2030-01-01T02:00:00.000005Z"


def test_election_is_off_by_default_with_client_gos_timings() -> None:
    settings = OperatorSettings()
    assert not settings.leader_election
    assert (settings.leader_election_namespace, settings.leader_election_lease_name) == ("default", "gpupool-leader")
    assert settings.lease_timing == LeaseTiming(15, 10.0, 2.0)


def test_a_renew_deadline_not_shorter_than_the_lease_stops_the_operator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GPUPOOL_LEADER_ELECTION_RENEW_DEADLINE_SECONDS", "20")
    assert runner.main([]) == 2
    error = capsys.readouterr().err
    assert "GPUPOOL_LEADER_ELECTION_" in error and "greater than the renew deadline" in error


def test_election_identities_differ_within_one_process() -> None:
    first, second = runner.election_identity(), runner.election_identity()
    assert first != second and first.split("_")[:2] == second.split("_")[:2]


def test_the_health_server_answers_a_checks_own_text() -> None:
    server = HealthServer("127.0.0.1", 0, lambda: True, lambda: (True, "standby: leader is op_1_abc"))
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/readyz", timeout=5) as response:
            assert response.status == 200 and response.read() == b"standby: leader is op_1_abc\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as response:
            assert response.read() == b"ok\n"
    finally:
        server.stop()
