"""The order in which one cycle considers pending jobs.

Who calls this: `gpupool.core.schedule` asks `QueueTurns` for the next pending job, again
and again, and tells it which jobs a blocked StrictFIFO queue leaves waiting.

Rules:

* **Priority cap.** A job whose priority is above its queue's `max_priority` is not capped
  silently: it waits with `PRIORITY_ABOVE_QUEUE_MAX` and a message saying how to fix it,
  so nobody can jump a queue by writing a large number (`priority_allowed`).
* **Within a queue**: higher priority first, then earlier `submitted_at`, then the key
  (only so that ties are deterministic).
* **Across queues**: each queue offers its head; the head with the higher priority goes
  first; on equal priority the queue with the lower fair share (`gpupool.core.fairshare`)
  goes first, with the share re-read after every turn so that queues take turns; then
  the earlier submission; then the queue name.

Head-of-line policy (StrictFIFO blocks the queue; BestEffortFIFO backfills around a
reservation) is applied by the caller, which knows about capacity.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence

from gpupool.core.models import Job, Queue


def priority_allowed(job: Job, queue: Queue) -> bool:
    """False when the job asks for more priority than its queue allows."""
    return queue.max_priority is None or job.priority <= queue.max_priority


def within_queue_key(job: Job) -> tuple[int, float, str]:
    """Sort key of jobs inside one queue: priority, then FIFO, then key."""
    return (-job.priority, job.submitted_at, job.key)


class QueueTurns:
    """Hands out the pending jobs of many queues one at a time, in scheduling order.

    `share_of(queue_name)` is called whenever a queue re-enters the line, so the caller's
    bookkeeping of what each queue was granted this cycle takes effect on the next turn.
    """

    def __init__(self, jobs: Iterable[Job], share_of: Callable[[str], float]) -> None:
        lanes: dict[str, list[Job]] = {}
        for job in jobs:
            lanes.setdefault(job.queue, []).append(job)
        self._lanes: dict[str, list[Job]] = {}
        for name in sorted(lanes):
            self._lanes[name] = sorted(lanes[name], key=within_queue_key)
        self._next: dict[str, int] = dict.fromkeys(self._lanes, 0)
        self._share_of = share_of
        self._heap: list[tuple[int, float, float, str, str]] = []
        self._returning: str | None = None
        for name in self._lanes:
            self._push(name)

    def _push(self, name: str) -> None:
        position = self._next[name]
        lane = self._lanes[name]
        if position >= len(lane):
            return
        head = lane[position]
        entry = (-head.priority, self._share_of(name), head.submitted_at, head.key, name)
        heapq.heappush(self._heap, entry)

    def pop(self) -> Job | None:
        """The next job to consider, or None when every queue is done."""
        if self._returning is not None:
            self._push(self._returning)
            self._returning = None
        if not self._heap:
            return None
        name = heapq.heappop(self._heap)[-1]
        job = self._lanes[name][self._next[name]]
        self._next[name] += 1
        self._returning = name
        return job

    def drain(self, queue_name: str) -> Sequence[Job]:
        """Take every job still waiting in `queue_name` out of the line (a blocked queue)."""
        lane = self._lanes.get(queue_name, [])
        position = self._next.get(queue_name, 0)
        rest = lane[position:]
        self._next[queue_name] = len(lane)
        if self._returning == queue_name:
            self._returning = None
        else:
            self._heap = [e for e in self._heap if e[-1] != queue_name]
            heapq.heapify(self._heap)
        return rest
