"""The chaos runs' world and workload: seeded, within every queue's reach, and mixed."""

from __future__ import annotations

from gpupool.devcluster.chaos import CrashFigures, Tally, format_crash
from gpupool.devcluster.chaos_workload import GPUS_PER_NODE, World, kill_points, workload
from gpupool.devcluster.checker import CheckReport, Violation


def test_the_workload_is_reproducible_and_mixed() -> None:
    jobs = workload(500, seed=3)
    assert jobs == workload(500, seed=3) and jobs != workload(500, seed=4)
    assert len({j.name for j in jobs}) == 500
    assert {j.workers > 1 for j in jobs} == {True, False}
    assert {j.gpus for j in jobs} == {0.5, 1.0, 2.0, 4.0}
    assert {j.priority for j in jobs} == {0, 10} and {j.cloud for j in jobs} == {True, False}
    assert any(j.fails for j in jobs) and all(2.0 <= j.duration_s <= 6.0 for j in jobs)


def test_every_job_fits_its_cohort_and_the_on_prem_nodes() -> None:
    """A job above its queue's nominal quota borrows from the cohort (no borrowing limit)."""
    world = World("M1", "ns", nodes=2)
    nominal = {q["metadata"]["name"]: q["spec"]["quotas"][0]["nominal"] for q in world.queue_manifests()}
    assert {q["spec"]["cohort"] for q in world.queue_manifests()} == {"m1-cohort"}
    for job in workload(300, seed=1):
        assert job.workers * job.gpus <= min(sum(nominal.values()), world.nodes * GPUS_PER_NODE)
        spec = job.manifest(world)["spec"]
        assert spec["queue"] in nominal and spec["gpuModels"] == ["M1"]


def test_kill_points_are_seeded_ordered_and_inside_the_run() -> None:
    points = kill_points(5, 2000, seed=1)
    assert points == kill_points(5, 2000, seed=1)
    finished = [p.finished for p in points]
    assert finished == sorted(finished) and all(100 <= f <= 1700 for f in finished)
    assert all(0 <= p.delay_s <= 2 for p in points)


def test_a_violation_seen_by_several_checks_counts_once() -> None:
    tally = Tally()
    duplicate = Violation("duplicate", "ns/a worker 0", "2 live pods")
    for _ in range(3):
        tally.add(CheckReport(1, 2, 1, violations=(duplicate,)))
    figures = CrashFigures(jobs=1, seed=1, kills=3, tally=tally)
    assert (tally.checks, figures.duplicates, figures.lost, figures.ok) == (3, 1, 0, False)
    assert format_crash(figures).splitlines()[2].startswith("| 3 | 1 | 1 |")
