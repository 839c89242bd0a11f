"""Job record files of `gpupool sim` (`gpupool.whatif.workload`): good records and errors that
name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpupool.core import PlacementPolicy
from gpupool.whatif.workload import RecordError, load_records

HEADER = "name,arrival,duration,gpus,workers,queue,gpu_model,placement,priority,cpu,memory,profile\n"


def test_csv_records_become_timed_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(
        HEADER
        + "train,0,2h,8,2,research,H100|A100,SpotAllowed,5,32,256Gi,\n"
        + ",90m,600,0.5,,product,,,,,,\n"
        + 'tuned,60,60,1,,research,,,,,,"{""operationalIntensity"": 100, ""totalFlops"": 1e18}"\n'
    )
    train, share, tuned = load_records(path)
    assert (train.job.key, train.job.submitted_at, train.duration) == ("train", 0.0, 7200.0)
    assert (train.job.shape.gpu_milli, train.job.workers, train.job.gpu_models) == (8000, 2, ("H100", "A100"))
    assert (train.job.placement_policy, train.job.priority) == (PlacementPolicy.SPOT_ALLOWED, 5)
    assert (train.job.shape.cpu_milli, train.job.shape.memory_bytes) == (32_000, 256 * 1024**3)
    assert (share.job.key, share.job.submitted_at, share.job.shape.gpu_milli) == ("job-3", 5400.0, 500)
    assert share.job.placement_policy == PlacementPolicy.CLOUD_ALLOWED
    assert tuned.job.profile is not None and tuned.job.profile.total_flops == 1e18


def test_yaml_and_json_records(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(
        "jobs:\n- {name: a, arrival: 0, duration: 60, gpus: 1, queue: q}\n"
        "- name: b\n  arrival: 10\n  duration: 1h\n  gpus: 4\n  queue: q\n"
        "  profile: {operationalIntensity: 50, referenceRuntime: {model: A100, seconds: 3600}}\n"
    )
    (tmp_path / "jobs.json").write_text('[{"arrival": 5, "duration": 60, "gpus": 2, "queue": "q"}]')
    assert [t.job.key for t in load_records(tmp_path / "jobs.yaml")] == ["a", "b"]
    (only,) = load_records(tmp_path / "jobs.json")
    assert (only.job.key, only.job.shape.gpu_milli) == ("job-1", 2000)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a,,60,1,,q,,,,,,", "jobs.csv:2: field 'arrival' is required"),
        ("a,0,soon,1,,q,,,,,,", "jobs.csv:2: field 'duration': 'soon' is neither a number of seconds"),
        ("a,0,0,1,,q,,,,,,", "jobs.csv:2: field 'duration': a job runs for more than 0 seconds"),
        ("a,-5,60,1,,q,,,,,,", "jobs.csv:2: field 'arrival': -5.0 is before the start"),
        ("a,0,60,1.5,,q,,,,,,", "jobs.csv:2: field 'gpus': gpus=1.5: use a whole number"),
        ("a,0,60,0,,q,,,,,,", "jobs.csv:2: field 'gpus': '0': a job needs more than 0 GPUs"),
        ("a,0,60,1,two,q,,,,,,", "jobs.csv:2: field 'workers': 'two' is not a whole number"),
        ("a,0,60,1,,,,,,,,", "jobs.csv:2: field 'queue' is required"),
        ("a,0,60,1,,q,,Anywhere,,,,", "jobs.csv:2: field 'placement': 'Anywhere' is not a valid PlacementPolicy"),
        ("a,0,60,1,,q,,,,lots,,", "jobs.csv:2: field 'cpu': cpu: 'lots' is not a Kubernetes quantity"),
        ('a,0,60,1,,q,,,,,,"{""totalFlops"": 1}"', "jobs.csv:2: field 'profile': operationalIntensity: Field required"),
        ("a,0,60,1,,q,,,,,,,extra", "jobs.csv:2: more values than the header has fields"),
    ],
)
def test_a_bad_csv_record_names_its_line_and_field(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(HEADER + row + "\n")
    with pytest.raises(RecordError) as error:
        load_records(path)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- {arrival: 0, duration: 60, gpus: 1, queue: q}\n- {arrival: 0, gpus: 1, queue: q}\n",
            "jobs.yaml:2: field 'duration' is required",
        ),
        ("- {arrival: 0, duration: 60, gpus: 1, queue: q, colour: red}\n", "jobs.yaml:1: unknown field(s) colour"),
        (
            "- {name: a, arrival: 0, duration: 60, gpus: 1, queue: q}\n- {name: a, arrival: 0, duration: 60, gpus: 1, "
            "queue: q}\n",
            "jobs.yaml:2: field 'name': 'a' is already the name of line 1",
        ),
        ("- just a string\n", "jobs.yaml:1: a job is a mapping of fields"),
        ("name: a\n", "jobs.yaml:1: expected a list of jobs"),
    ],
)
def test_a_bad_yaml_record_names_its_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    with pytest.raises(RecordError) as error:
        load_records(path)
    assert message in str(error.value)
