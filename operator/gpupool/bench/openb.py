"""Read the Alibaba openb trace (node list and pod list CSVs) into core values.

Who uses this: the trace benches (`gpupool bench placement` and `gpupool bench bound`,
through `placement_bench.load_inputs`), `gpupool.bench.variants` and their tests. The format
is the one published with the FGD paper (`alibaba/clusterdata`,
`cluster-trace-gpu-v2023/csv/`): nodes `sn,cpu_milli,memory_mib,gpu,model`; pods
`name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]`. Only the first five pod
columns are required: some published variants carry nothing else.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from gpupool.core.models import MILLI_PER_GPU, GpuNode, Job, WorkerShape

MIB = 1024 * 1024
REQUIRED_POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
REQUIRED_NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")


class TraceFormatError(ValueError):
    """A trace CSV is missing a column or holds a value that is not a number."""


@dataclass(frozen=True, slots=True)
class TracePod:
    """One pod of the trace, as the bench places it (a single worker)."""

    name: str
    cpu_milli: int
    memory_bytes: int
    num_gpu: int
    gpu_milli: int
    gpu_models: tuple[str, ...] = ()

    @property
    def requested_milli(self) -> int:
        """milli-GPU this pod asks for: whole GPUs x 1000, a share, or 0 for CPU-only."""
        if self.num_gpu <= 0:
            return 0
        if self.num_gpu > 1:
            return self.num_gpu * MILLI_PER_GPU
        # A single GPU: the gpu_milli column is the share (1000 = the whole GPU).
        return self.gpu_milli if 0 < self.gpu_milli <= MILLI_PER_GPU else MILLI_PER_GPU

    def shape(self) -> WorkerShape:
        """The worker shape the placement engine sees."""
        return WorkerShape(self.requested_milli, self.cpu_milli, self.memory_bytes)

    def to_job(self, name: str | None = None) -> Job:
        """This pod as a one-worker Job (optionally renamed, e.g. a tuned copy)."""
        return Job(
            key=name or self.name,
            queue="openb",
            shape=self.shape(),
            workers=1,
            gpu_models=self.gpu_models,
        )


def _int(row: dict[str, str], column: str, path: Path, line: int) -> int:
    raw = (row.get(column) or "").strip()
    if raw == "":
        return 0
    try:
        return int(float(raw))
    except ValueError:
        raise TraceFormatError(f"{path}:{line}: column {column!r} is not a number: {raw!r}") from None


def _check_columns(reader: csv.DictReader[str], required: tuple[str, ...], path: Path) -> None:
    have = set(reader.fieldnames or ())
    missing = [c for c in required if c not in have]
    if missing:
        raise TraceFormatError(
            f"{path}: missing column(s) {', '.join(missing)}; expected at least {', '.join(required)}"
        )


def load_pods(path: str | Path) -> list[TracePod]:
    """Pods of a trace pod list, in file order."""
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        _check_columns(reader, REQUIRED_POD_COLUMNS, path)
        pods = []
        for line, row in enumerate(reader, start=2):
            spec = (row.get("gpu_spec") or "").strip()
            pods.append(
                TracePod(
                    name=row["name"].strip(),
                    cpu_milli=_int(row, "cpu_milli", path, line),
                    memory_bytes=_int(row, "memory_mib", path, line) * MIB,
                    num_gpu=_int(row, "num_gpu", path, line),
                    gpu_milli=_int(row, "gpu_milli", path, line),
                    gpu_models=tuple(m.strip() for m in spec.split("|") if m.strip()),
                )
            )
    return pods


def load_nodes(path: str | Path) -> list[GpuNode]:
    """Nodes of a trace node list, in file order."""
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        _check_columns(reader, REQUIRED_NODE_COLUMNS, path)
        return [
            GpuNode(
                name=row["sn"].strip(),
                gpu_model=(row.get("model") or "").strip(),
                gpus=_int(row, "gpu", path, line),
                cpu_milli=_int(row, "cpu_milli", path, line),
                memory_bytes=_int(row, "memory_mib", path, line) * MIB,
            )
            for line, row in enumerate(reader, start=2)
        ]
