"""A big gang is not starved by a stream of small jobs (reservation-based backfill).

Several cycles are simulated: each cycle two running jobs finish, four new one-GPU jobs
arrive, and admissions become running jobs. The 8-GPU job, first in line, must start
once the node it reserved has drained, while small jobs keep backfilling elsewhere.
"""

from __future__ import annotations

import dataclasses

import pytest

from builders import make_job, make_node, make_queue, make_snapshot
from gpupool.core import Job, schedule


@pytest.mark.parametrize("strict", [False, True], ids=["BestEffortFIFO", "StrictFIFO"])
def test_big_job_starts_despite_a_stream_of_small_jobs(strict: bool) -> None:
    nodes = [make_node("n1"), make_node("n2")]
    queue = make_queue(strict=strict)
    running: list[Job] = [
        make_job(f"r-{node}-{g}", on=(node,), first_gpu=g, admitted_at=float(g))
        for node in ("n1", "n2")
        for g in range(8)
    ]
    pending: list[Job] = [make_job("big", gpus=8, submitted_at=0.0)]
    small_started = 0
    for cycle in range(1, 12):
        # the two oldest running jobs finish
        running.sort(key=lambda j: (j.admitted_at or 0.0, j.key))
        running = running[2:]
        pending += [make_job(f"s{cycle}-{i}", gpus=1, submitted_at=float(cycle)) for i in range(4)]
        decisions = schedule(make_snapshot(nodes, [queue], pending, running, now=100.0 * cycle))
        admitted = {a.job_key: a for a in decisions.admissions}
        if "big" in admitted:
            break
        by_key = {j.key: j for j in pending}
        for key, a in admitted.items():
            running.append(dataclasses.replace(by_key[key], placements=a.placements, admitted_at=100.0 * cycle + 50))
            small_started += 1
        pending = [j for j in pending if j.key not in admitted]
    else:
        pytest.fail("the 8-GPU job never started")
    assert cycle <= 8
    if not strict:
        assert small_started > 0, "small jobs should have backfilled around the reservation"
