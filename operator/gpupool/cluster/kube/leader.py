"""Leader election on a `coordination.k8s.io/v1` Lease: the rules, pure, and the elector.

Who uses this: `gpupool.controllers.runner`, when `GPUPOOL_LEADER_ELECTION` is on, runs a
`LeaderElector` in a thread; only the process that holds the Lease runs the scheduling
loop (and so writes). The Lease is read and written through a `LeaseStore`
(`gpupool.cluster.kube.lease` is the Kubernetes one; unit tests use a fake), so nothing here
imports the Kubernetes client.

The semantics are client-go's (`k8s.io/client-go/tools/leaderelection`):

- `decide` is the whole rule, a pure function of the Lease as read, what we saw of it
  before, who we are and the local clock. A missing Lease is created with us as holder;
  a Lease we hold is renewed; a Lease another holds is left alone until it has not
  changed for its `leaseDurationSeconds`, measured on *our* monotonic clock from the
  moment *we* first saw its current content. The holder's timestamps are written for
  people and never compared with our clock, so clock skew between machines does not
  matter (only the rate at which clocks run).
- Every write carries the `resourceVersion` that was read, so of two candidates only one
  write succeeds; the other gets a conflict and reads again next round.
- The leader renews every `retry_period`. When no renewal has succeeded for
  `renew_deadline` (shorter than the lease duration, so this happens before any other
  candidate may take over), or a read shows someone else holds the Lease, leadership is
  lost: `on_stopped_leading` runs (the operator exits, as client-go's callers do, so a
  restart joins again as a fresh candidate).
- `release` (on a graceful stop, after the loop has stopped writing) clears the holder
  so a standby takes over at its next round instead of waiting out the lease.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Protocol

log = logging.getLogger("gpupool.leader")

# client-go waits retry_period plus up to this fraction of it between attempts, and requires
# renew_deadline > retry_period * JITTER_FACTOR.
JITTER_FACTOR = 1.2


@dataclass(frozen=True)
class LeaseTiming:
    """The three durations of an election, in seconds (client-go's defaults: 15, 10, 2)."""

    lease_duration: int = 15
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problems(self) -> list[str]:
        """What is wrong with these durations (empty when they are usable)."""
        out = []
        if self.lease_duration <= 0 or self.renew_deadline <= 0 or self.retry_period <= 0:
            out.append("the lease duration, renew deadline and retry period must all be greater than 0")
        if self.lease_duration <= self.renew_deadline:
            out.append(
                f"the lease duration ({self.lease_duration}s) must be greater than the renew deadline "
                f"({self.renew_deadline}s), or a standby could take over while the leader still writes"
            )
        if self.renew_deadline <= self.retry_period * JITTER_FACTOR:
            out.append(
                f"the renew deadline ({self.renew_deadline}s) must be greater than {JITTER_FACTOR} x the retry "
                f"period ({self.retry_period}s), so the leader gets more than one try to renew"
            )
        return out


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec as gpupool reads and writes it. Times are RFC 3339 strings with
    microseconds (the API's MicroTime), kept as text: they inform people, never decisions."""

    holder: str | None
    lease_duration_seconds: int
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0


@dataclass(frozen=True)
class StoredLease:
    """A Lease as the API server holds it: its record and the resourceVersion to write against."""

    record: LeaseRecord
    resource_version: str


@dataclass(frozen=True)
class Observation:
    """The Lease content we last saw change, and when we saw it (our monotonic clock)."""

    record: LeaseRecord
    seen_at: float


class Action(Enum):
    CREATE = "create"  # no Lease yet: create it, holding it
    RENEW = "renew"  # we hold it: write a fresh renew time
    ACQUIRE = "acquire"  # free, released or expired: take it
    STAND_BY = "stand-by"  # another holds a fresh one: write nothing


@dataclass(frozen=True)
class Decision:
    """What one round does: the action, the record to write (None when standing by), the
    observation to keep for the next round and who holds the Lease if we stand by."""

    action: Action
    write: LeaseRecord | None
    observation: Observation | None
    holder: str | None
    # Standing by: when (our monotonic clock) the holder's Lease expires unless it changes.
    expires_at: float | None = None


def micro_time(moment: datetime) -> str:
    """`moment` as the API's MicroTime: RFC 3339 in UTC with exactly six fraction digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decide(
    current: LeaseRecord | None,
    previous: Observation | None,
    me: str,
    now: float,
    stamp: str,
    timing: LeaseTiming,
) -> Decision:
    """The election rule for one round (see the module docstring).

    `current` is the Lease as just read (None: it does not exist), `previous` what the last
    round observed, `now` our monotonic clock and `stamp` the wall time to write.
    """
    if current is None:
        mine = LeaseRecord(me, timing.lease_duration, stamp, stamp, 0)
        return Decision(Action.CREATE, mine, None, me)
    # Expiry counts from when *we* first saw this content, never from its timestamps.
    unchanged = previous is not None and previous.record == current
    observation = previous if unchanged and previous is not None else Observation(current, now)
    if current.holder == me:
        return Decision(Action.RENEW, replace(current, renew_time=stamp), observation, me)
    duration = current.lease_duration_seconds if current.lease_duration_seconds > 0 else timing.lease_duration
    if current.holder and now < observation.seen_at + duration:
        return Decision(Action.STAND_BY, None, observation, current.holder, observation.seen_at + duration)
    taken = LeaseRecord(me, timing.lease_duration, stamp, stamp, current.transitions + 1)
    return Decision(Action.ACQUIRE, taken, observation, me)


def still_leading(renewed_at: float | None, now: float, timing: LeaseTiming) -> bool:
    """True while our last successful write of the Lease is younger than the renew deadline."""
    return renewed_at is not None and now - renewed_at < timing.renew_deadline


class LeaseConflict(Exception):
    """The Lease changed (or was created) since we read it: HTTP 409."""


class LeaseStore(Protocol):
    """One Lease in the API server. Each call gives up after `timeout` seconds; failures
    other than a conflict raise any exception (the elector logs it and tries again)."""

    def get(self, timeout: float) -> StoredLease | None: ...

    def create(self, record: LeaseRecord, timeout: float) -> StoredLease: ...

    def replace(self, record: LeaseRecord, resource_version: str, timeout: float) -> StoredLease: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    """Runs rounds of `decide` against a `LeaseStore` until stopped or leadership is lost.

    `on_started_leading` runs (in the elector's thread) when a write makes us the holder;
    `on_stopped_leading` runs once when we lose it (and the elector stops).
    """

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: LeaseTiming,
        *,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utc_now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.identity = identity
        self.timing = timing
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.clock = clock
        self.wall = wall
        self.jitter = jitter
        self.observation: Observation | None = None
        # Who holds the Lease as of the last read (None: not known yet).
        self.holder: str | None = None
        self.leading = False
        self.lost = False
        self.renewed_at: float | None = None
        self.last_round_at: float | None = None
        self.expires_at: float | None = None

    # ------------------------------------------------------------------ state

    def is_leader(self) -> bool:
        """True while we hold the Lease and renewed it within the renew deadline: the gate
        for every write (checked again before each scheduling cycle)."""
        return self.leading and still_leading(self.renewed_at, self.clock(), self.timing)

    # ------------------------------------------------------------------ rounds

    def round(self) -> None:
        """Read the Lease, decide, write if the decision says so; then check the deadline."""
        try:
            self._attempt()
        finally:
            self.last_round_at = self.clock()
        if self.leading and not still_leading(self.renewed_at, self.clock(), self.timing):
            self._lose(f"the Lease was not renewed for {self.timing.renew_deadline}s")

    def _timeout(self) -> float:
        """A request never outlasts the renew deadline: as leader, the time left before it."""
        if self.leading and self.renewed_at is not None:
            left = self.renewed_at + self.timing.renew_deadline - self.clock()
            return max(0.5, min(left, self.timing.renew_deadline))
        return self.timing.renew_deadline

    def _attempt(self) -> None:
        try:
            stored = self.store.get(self._timeout())
        except Exception as error:  # the API server may be briefly unreachable
            log.warning("could not read the leader Lease", extra={"error": str(error)})
            return
        now = self.clock()
        decision = decide(
            stored.record if stored else None,
            self.observation,
            self.identity,
            now,
            micro_time(self.wall()),
            self.timing,
        )
        self.observation = decision.observation
        self.holder = decision.holder
        self.expires_at = decision.expires_at
        if decision.action is Action.STAND_BY:
            if self.leading:
                self._lose(f"the Lease is held by {decision.holder}")
            return
        assert decision.write is not None
        try:
            if decision.action is Action.CREATE or stored is None:
                written = self.store.create(decision.write, self._timeout())
            else:
                written = self.store.replace(decision.write, stored.resource_version, self._timeout())
        except LeaseConflict:
            log.info("the leader Lease changed under us; reading it again", extra={"action": decision.action.value})
            return
        except Exception as error:
            log.warning(
                "could not write the leader Lease", extra={"action": decision.action.value, "error": str(error)}
            )
            return
        self.observation = Observation(written.record, now)
        self.renewed_at = now
        self.holder = self.identity
        if not self.leading and not self.lost:
            self.leading = True
            log.info("became the leader", extra={"identity": self.identity, "action": decision.action.value})
            self.on_started_leading()

    def _lose(self, why: str) -> None:
        if self.lost:
            return
        self.leading = False
        self.lost = True
        log.error("lost leadership; stopping", extra={"identity": self.identity, "reason": why})
        self.on_stopped_leading(why)

    def wait_seconds(self) -> float:
        """The pause before the next round: the retry period, plus jitter while standing by
        (so candidates do not all knock at once; the leader renews on the beat), but no
        longer than until the watched Lease expires: a standby tries at that moment rather
        than up to a retry period later (client-go waits; this saves up to 2.4 s)."""
        if self.leading:
            return self.timing.retry_period
        pause = self.timing.retry_period * (1 + 0.2 * self.jitter())
        if self.expires_at is not None:
            pause = min(pause, max(0.05, self.expires_at - self.clock() + 0.05))
        return pause

    def run(self, stop: threading.Event) -> None:
        """Rounds until `stop` is set or leadership is lost."""
        while not stop.is_set() and not self.lost:
            try:
                self.round()
            except Exception:
                log.exception("leader election round failed; retrying")
            stop.wait(self.wait_seconds())

    def release(self) -> bool:
        """Give the Lease up (holder cleared, 1 s duration) if we hold it; True when written.
        Call only after everything that writes has stopped."""
        if not self.leading:
            return False
        self.leading = False
        try:
            stored = self.store.get(self.timing.retry_period)
            if stored is None or stored.record.holder != self.identity:
                return False
            freed = replace(stored.record, holder=None, lease_duration_seconds=1, renew_time=micro_time(self.wall()))
            self.store.replace(freed, stored.resource_version, self.timing.retry_period)
        except Exception as error:
            log.warning("could not release the leader Lease; it will expire", extra={"error": str(error)})
            return False
        log.info("released the leader Lease", extra={"identity": self.identity})
        return True
