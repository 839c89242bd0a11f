"""The workload of `gpupool sim`: a file of job records, or the openb trace.

Who calls this: `gpupool.whatif.command` (`--workload FILE` and `--workload openb`); the
unit tests. Both give `gpupool.whatif.planning.TimedJob`s (a core `Job` whose `submitted_at`
is its arrival, and its duration).

A record file is CSV (a header row, then one job a row), or YAML / JSON (a list of
mappings, or a mapping whose `jobs` is that list), chosen by the file's suffix. Fields:

| field | required | meaning |
|---|---|---|
| name | no | the job's name (default `job-<line>`); names must be unique |
| arrival | yes | when it is submitted: seconds from the start, or a duration such as `90m` |
| duration | yes | how long it runs once started (seconds, or a duration); > 0 |
| gpus | yes | GPUs per worker: a whole number, or a share below 1 such as 0.5 |
| workers | no | gang size (default 1) |
| queue | yes | the GPUQueue it is submitted to |
| gpu_model | no | the GPU model(s) it may use, several separated by `\\|` |
| placement | no | OnPremOnly, CloudAllowed (default) or SpotAllowed |
| priority | no | an integer (default 0) |
| cpu, memory | no | per worker, Kubernetes quantities (`8`, `500m`, `64Gi`) |
| profile | no | a GPUJob's `spec.profile` (in CSV: as JSON text) |
| cpu_fallback | no | `spec.cpuFallback`: Never (default), Allowed or Preferred (CPU pool nodes, per core-hour) |

A job with a profile that the core places by its roofline choice runs for the choice's
estimate instead of `duration` (see `gpupool.whatif.planning`).

Errors name the file, the line and the field. The openb trace gives GPU pods only (CPU-only
pods ask nothing of a GPU capacity plan), each a one-worker CloudAllowed job in a queue
drawn with a seed from the queues given.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from gpupool.api import JobProfile
from gpupool.bench.burst_inputs import load_timed_pods
from gpupool.cluster.translate.convert import (
    ConversionError,
    gpu_milli,
    parse_cpu_milli,
    parse_duration_seconds,
    parse_memory_bytes,
    profile_from_api,
)
from gpupool.core import Job, PlacementPolicy, WorkerShape
from gpupool.core.models import CpuFallback
from gpupool.whatif.planning import TimedJob

FIELDS = (
    "name",
    "arrival",
    "duration",
    "gpus",
    "workers",
    "queue",
    "gpu_model",
    "placement",
    "priority",
    "cpu",
    "memory",
    "profile",
    "cpu_fallback",
)
REQUIRED = ("arrival", "duration", "gpus", "queue")


class RecordError(ValueError):
    """A workload record cannot be read; the message names the file, line and field."""


def _seconds(raw: object, field: str) -> float:
    if isinstance(raw, bool):
        raise ValueError("a number of seconds or a duration such as 90m, not a boolean")
    if isinstance(raw, int | float):
        return float(raw)
    text = str(raw).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_duration_seconds(text, what=field)
    except ConversionError:
        raise ValueError(f"{text!r} is neither a number of seconds nor a duration such as 90m or 1h30m") from None


def _int(raw: object) -> int:
    if isinstance(raw, bool) or (isinstance(raw, float) and raw != int(raw)):
        raise ValueError(f"{raw!r} is not a whole number")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None


def _gpus(raw: object) -> int:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a number of GPUs") from None
    if value <= 0:
        raise ValueError(f"{raw!r}: a job needs more than 0 GPUs")
    try:
        return gpu_milli(value)
    except ConversionError as error:
        raise ValueError(str(error)) from None


def _profile(raw: object) -> Any:
    data = json.loads(raw) if isinstance(raw, str) else raw
    try:
        return profile_from_api(JobProfile.model_validate(data))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}" if where else first["msg"]) from None


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "arrival": lambda raw: _seconds(raw, "arrival"),
    "duration": lambda raw: _seconds(raw, "duration"),
    "gpus": _gpus,
    "workers": _int,
    "priority": _int,
    "placement": lambda raw: PlacementPolicy(str(raw).strip()),
    "cpu": lambda raw: parse_cpu_milli(raw if isinstance(raw, int | float) else str(raw), what="cpu"),
    "memory": lambda raw: parse_memory_bytes(raw if isinstance(raw, int | float) else str(raw), what="memory"),
    "gpu_model": lambda raw: tuple(m.strip() for m in str(raw).split("|") if m.strip()),
    "queue": lambda raw: str(raw).strip(),
    "name": lambda raw: str(raw).strip(),
    "profile": _profile,
    "cpu_fallback": lambda raw: CpuFallback(str(raw).strip()),
}


def job_of(record: Mapping[str, Any], where: str) -> TimedJob:
    """One record (field -> raw value; empty values count as absent) as a timed core job.
    `where` (`FILE:LINE`) starts every error message."""
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise RecordError(f"{where}: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
    values: dict[str, Any] = {}
    for field in FIELDS:
        raw = record.get(field)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if field in REQUIRED:
                raise RecordError(f"{where}: field {field!r} is required")
            continue
        try:
            values[field] = _CONVERT[field](raw)
        except (ValueError, ConversionError, json.JSONDecodeError) as error:
            raise RecordError(f"{where}: field {field!r}: {error}") from None
    if values["arrival"] < 0:
        raise RecordError(f"{where}: field 'arrival': {values['arrival']} is before the start (0)")
    if values["duration"] <= 0:
        raise RecordError(f"{where}: field 'duration': a job runs for more than 0 seconds")
    if values.get("workers", 1) < 1:
        raise RecordError(f"{where}: field 'workers': a job has at least 1 worker")
    if not values["queue"]:
        raise RecordError(f"{where}: field 'queue' is required")
    job = Job(
        key=values.get("name") or f"job-{where.rsplit(':', 1)[-1]}",
        queue=values["queue"],
        shape=WorkerShape(values["gpus"], values.get("cpu", 0), values.get("memory", 0)),
        workers=values.get("workers", 1),
        priority=values.get("priority", 0),
        gpu_models=values.get("gpu_model", ()),
        placement_policy=values.get("placement", PlacementPolicy.CLOUD_ALLOWED),
        submitted_at=values["arrival"],
        profile=values.get("profile"),
        cpu_fallback=values.get("cpu_fallback", CpuFallback.NEVER),
    )
    return TimedJob(job, values["duration"])


def _csv_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise RecordError(f"{path}:1: no header row; the fields are {', '.join(FIELDS)}")
        out = []
        for row in reader:
            if None in row:
                raise RecordError(f"{path}:{reader.line_num}: more values than the header has fields")
            out.append((reader.line_num, {k.strip(): v for k, v in row.items()}))
        return out


def _yaml_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    loader = yaml.SafeLoader(path.read_text())
    try:
        root = loader.get_single_node()
        if root is None:
            return []
        if isinstance(root, yaml.MappingNode):
            items = [v for k, v in root.value if k.value == "jobs"]
            if not items:
                raise RecordError(f"{path}:{root.start_mark.line + 1}: expected a list of jobs, or a mapping `jobs:`")
            root = items[0]
        if not isinstance(root, yaml.SequenceNode):
            raise RecordError(f"{path}:{root.start_mark.line + 1}: expected a list of jobs")
        out = []
        for node in root.value:
            line = node.start_mark.line + 1
            data = loader.construct_object(node, deep=True)
            if not isinstance(data, dict):
                raise RecordError(f"{path}:{line}: a job is a mapping of fields, not {type(data).__name__}")
            out.append((line, {str(k): v for k, v in data.items()}))
        return out
    except yaml.YAMLError as error:
        raise RecordError(f"{path}: not YAML or JSON: {error}") from None
    finally:
        loader.dispose()


def load_records(path: str | Path) -> list[TimedJob]:
    """The jobs of a record file (CSV, YAML or JSON by suffix), in file order."""
    path = Path(path)
    records = _csv_records(path) if path.suffix.lower() == ".csv" else _yaml_records(path)
    jobs = [job_of(record, f"{path}:{line}") for line, record in records]
    seen: dict[str, int] = {}
    for (line, _), timed in zip(records, jobs, strict=True):
        if timed.job.key in seen:
            raise RecordError(
                f"{path}:{line}: field 'name': {timed.job.key!r} is already the name of line {seen[timed.job.key]}"
            )
        seen[timed.job.key] = line
    return jobs


def openb_workload(pod_list: str | Path, queues: Sequence[str], seed: int = 1) -> list[TimedJob]:
    """The GPU pods of an openb pod list (with its time columns) as one-worker CloudAllowed
    jobs, each in one of `queues` drawn with `seed`."""
    if not queues:
        raise RecordError("the openb workload needs at least one queue")
    pods = [p for p in load_timed_pods(pod_list) if p.pod.requested_milli > 0]
    picks = np.random.default_rng([seed, 18]).integers(len(queues), size=len(pods))
    out = []
    for i, (timed, pick) in enumerate(zip(pods, picks, strict=True)):
        job = timed.pod.to_job(f"{i:05d}-{timed.pod.name}")
        job = replace(
            job, queue=queues[int(pick)], placement_policy=PlacementPolicy.CLOUD_ALLOWED, submitted_at=timed.arrival
        )
        out.append(TimedJob(job, timed.duration))
    return out


__all__ = ["FIELDS", "RecordError", "job_of", "load_records", "openb_workload"]
