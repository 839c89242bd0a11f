"""Hypothesis strategies for `test_fuzz_objects.py`: valid GPUJob, GPUQueue and GPUNodePool
manifests with one field mutated (a wrong type, a negative or huge number, an unknown enum
value, the field removed, an odd string), and a reader of the operator's log for errors.

A `Fuzzed` names the field it mutated as the API server's error message names it
(`spec.quotas[0].nominal`), so a rejection can be checked to point at it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

# Each kind's mutable fields: the path as the API server prints it, and the keys to reach it.
JOB_FIELDS = [
    "queue",
    "priority",
    "workers",
    "gpus",
    "cpu",
    "memory",
    "gpuModels",
    "placement",
    "maxRuntime",
    "preemptible",
    "backoffLimit",
    "ttlSecondsAfterFinished",
    "template",
]
QUEUE_FIELDS = [
    "quotas[0].gpuModel",
    "quotas[0].nominal",
    "quotas[0].borrowingLimit",
    "cohort",
    "weight",
    "maxPriority",
    "queueingStrategy",
    "preemption.minRuntime",
    "budget.amount",
    "budget.period",
    "allowCloud",
]
POOL_FIELDS = [
    "class",
    "gpuModel",
    "gpusPerNode",
    "nodeSelector",
    "pricePerNodeHour.amortised",
    "minNodes",
    "maxNodes",
    "provider",
    "scaleDownAfter",
]
ODD_STRINGS = ["", " ", "ünïcødé-名前", "a" * 300, "../../etc", "-1", "null", "1e309", "💥", "Queue With Spaces"]
MUTATIONS = ["wrong-type", "negative", "huge", "unknown-enum", "missing", "odd-string"]


@dataclass(frozen=True)
class Fuzzed:
    """One manifest to send, and what was done to it."""

    kind: str
    body: dict[str, Any]
    field: str  # as the API server names it, e.g. "spec.quotas[0].nominal"
    mutation: str
    value: Any

    def __str__(self) -> str:
        return f"{self.kind} {self.field} {self.mutation} {self.value!r}"


def base(kind: str, name: str, namespace: str, model: str, queue: str) -> dict[str, Any]:
    """A valid manifest of `kind` that the operator can act on (a job waits on `queue`)."""
    if kind == "GPUJob":
        spec: dict[str, Any] = {
            "queue": queue,
            "priority": 1,
            "workers": 2,
            "gpus": 1,
            "cpu": "2",
            "memory": "4Gi",
            "gpuModels": [model],
            "placement": "OnPremOnly",
            "maxRuntime": "1h",
            "preemptible": True,
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 600,
            "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        }
        metadata = {"name": name, "namespace": namespace}
    elif kind == "GPUQueue":
        spec = {
            "quotas": [{"gpuModel": model, "nominal": 4, "borrowingLimit": 2}],
            "cohort": f"{name}-cohort",
            "weight": 1.5,
            "maxPriority": 100,
            "queueingStrategy": "BestEffortFIFO",
            "preemption": {"minRuntime": "5m"},
            "budget": {"amount": 100, "period": "Daily"},
            "allowCloud": False,
        }
        metadata = {"name": name}
    else:
        spec = {
            "class": "OnPrem",
            "gpuModel": model,
            "gpusPerNode": 8,
            "nodeSelector": {"gpupool.io/pool": name},
            "pricePerNodeHour": {"amortised": 10},
            "minNodes": 0,
            "maxNodes": 4,
            "provider": "Static",
            "scaleDownAfter": "10m",
        }
        metadata = {"name": name}
    return {"apiVersion": "gpupool.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def _keys(field: str) -> list[str | int]:
    keys: list[str | int] = []
    for part in field.split("."):
        if part.endswith("]"):
            name, index = part[:-1].split("[")
            keys += [name, int(index)]
        else:
            keys.append(part)
    return keys


def _replacement(current: Any, mutation: str, pick: int) -> Any:
    if mutation == "wrong-type":
        if isinstance(current, bool):
            options: list[Any] = ["yes", 1, [True]]
        elif isinstance(current, int | float):
            options = ["seven", True, [1], {"a": 1}]
        elif isinstance(current, str):
            options = [12345, True, ["x"], {"nested": "object"}]
        else:
            options = ["x", 1, True]
        return options[pick % len(options)]
    if mutation == "negative":
        return [-1, -1000, -0.5, -(2**40)][pick % 4]
    if mutation == "huge":
        return [2**31, 2**53, 10**18, 1e300][pick % 4]
    if mutation == "unknown-enum":
        return ["Sometimes", "ONPREM", "onprem", "Legacy"][pick % 4]
    return ODD_STRINGS[pick % len(ODD_STRINGS)]


@st.composite
def fuzzed_objects(draw: st.DrawFn, kind: str, name: str, namespace: str, model: str, queue: str) -> Fuzzed:
    """A valid `kind` manifest with one of its fields mutated."""
    fields = {"GPUJob": JOB_FIELDS, "GPUQueue": QUEUE_FIELDS, "GPUNodePool": POOL_FIELDS}[kind]
    field = draw(st.sampled_from(fields))
    mutation = draw(st.sampled_from(MUTATIONS))
    pick = draw(st.integers(min_value=0, max_value=99))
    body = copy.deepcopy(base(kind, name, namespace, model, queue))
    keys = _keys(field)
    holder: Any = body["spec"]
    for key in keys[:-1]:
        holder = holder[key]
    value: Any = None
    if mutation == "missing":
        del holder[keys[-1]]
    else:
        value = _replacement(holder[keys[-1]], mutation, pick)
        holder[keys[-1]] = value
    return Fuzzed(kind, body, f"spec.{field}", mutation, value)


def operator_errors(log: Path, offset: int) -> list[str]:
    """Lines logged at error or critical by gpupool or kopf's handlers since byte `offset`, and
    any traceback; kopf's own API-client retries (`kopf._cogs.clients`) are not errors of gpupool."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    found = []
    for line in text.splitlines():
        if "Traceback" in line:
            found.append(line)
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        logger = str(record.get("logger", ""))
        if record.get("level") in ("error", "critical") and not logger.startswith("kopf._cogs.clients"):
            found.append(line)
    return found
