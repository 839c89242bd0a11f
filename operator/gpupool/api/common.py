"""Building blocks shared by the four gpupool CRDs: base models, quantity and duration
types, conditions, label selectors, taints and CEL rule helpers.

Who uses this: the kind modules (`gpujob`, `gpuqueue`, `gpunodepool`, `gpunodeclaim`) build their spec and
status models from these pieces; `gpupool.api.schema` reads the JSON-schema hints attached
here (patterns, `x-kubernetes-*` markers, CEL rules) when it writes the CRDs; the operator
reads the parsed values.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "gpupool.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "gpupool"

# Caps that keep one object from asking for something no cluster has; the CRDs enforce them
# and the error messages name them.
MAX_WORKERS = 1024
MAX_GPUS_PER_WORKER = 16
MAX_GPUS_PER_NODE = 16
MAX_NODES_PER_POOL = 10_000
MAX_PRIORITY = 1_000_000_000
MAX_LIST_ITEMS = 64
MAX_NAME_LENGTH = 253

# A Kubernetes quantity without a sign: "500m", "2", "1.5", "16Gi", "1G", "1e3".
QUANTITY_PATTERN = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"  # the number
    r"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"  # suffix or exponent
)
# A duration of whole hours, minutes and seconds in that order: "30s", "90m", "2h", "1h30m".
DURATION_PATTERN = r"^([0-9]+h([0-9]+m)?([0-9]+s)?|[0-9]+m([0-9]+s)?|[0-9]+s)$"
# A Kubernetes object name (DNS subdomain).
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"

_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_DURATION_RE = re.compile(DURATION_PATTERN)


def _check_quantity(value: str | int) -> str | int:
    """Reject quantities the API server would reject, with the accepted forms in the message."""
    if isinstance(value, bool):
        raise ValueError("expected a quantity such as 4, 500m, 16Gi or 512Mi, not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"quantity {value} is negative; use a value >= 0")
        return value
    if not _QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity; use forms such as 4, 500m, 16Gi or 512Mi")
    return value


def _check_duration(value: str) -> str:
    """Reject durations outside the `1h30m` form the CRD accepts."""
    if not _DURATION_RE.match(value):
        raise ValueError(
            f"{value!r} is not a duration; use whole hours, minutes, seconds such as 30s, 90m, 2h or 1h30m"
        )
    return value


Quantity = Annotated[
    str | int,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "minimum": 0,
        }
    ),
]
"""A Kubernetes quantity (`4`, `500m`, `16Gi`); stored as given, parsed by `gpupool.cluster.translate.convert`."""

Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "maxLength": 32}),
]
"""A duration such as `30s`, `90m`, `2h` or `1h30m`; parsed by `gpupool.cluster.translate.convert`."""


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry; kind modules call this to declare a cross-field rule.

    `message` must name the field a person has to change (the API server shows it as is);
    `field_path` (relative to the object carrying the rule, e.g. `.gpus`) makes the API
    server report the error at that field instead of at the object.
    """
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


class SpecModel(BaseModel):
    """Base of every spec model: camelCase names as in the manifests, unknown fields refused.

    The API server already rejects unknown fields (structural schema); forbidding them here
    too means the operator notices if it reads an object written by a newer CRD version.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )


class StatusModel(BaseModel):
    """Base of every status model: camelCase names, unknown fields ignored.

    Status is written by the operator; ignoring fields it does not know lets an older
    operator read the status a newer one wrote (during a rolling upgrade) without failing.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ConditionStatus(StrEnum):
    """The three values of a Kubernetes condition's `status`."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One observation of the object's state, following Kubernetes conventions (metav1.Condition)."""

    type: str = Field(description="Kind of condition in CamelCase, e.g. Admitted, Running, Finished.", max_length=316)
    status: ConditionStatus = Field(description="Whether the condition holds: True, False or Unknown.")
    reason: str = Field(
        default="",
        description="One CamelCase word a program can match on, e.g. QuotaExhausted.",
        max_length=1024,
    )
    message: str = Field(default="", description="A sentence for a person: what happened and what to do next.")
    last_transition_time: datetime | None = Field(
        default=None, description="When the condition last changed from one status to another (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was computed from."
    )


class LabelSelectorOperator(StrEnum):
    """Operators of a label selector requirement."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(SpecModel):
    """One `matchExpressions` entry of a label selector."""

    key: str = Field(description="Label key the requirement applies to.", max_length=317)
    operator: LabelSelectorOperator = Field(
        description="How the key relates to values: In, NotIn, Exists, DoesNotExist."
    )
    values: list[str] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Label values; required for In and NotIn, must be empty for Exists and DoesNotExist.",
    )


class LabelSelector(SpecModel):
    """A standard Kubernetes label selector; all of its terms must match (AND)."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels that must be present with exactly these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Requirements on labels that must all hold.",
    )

    def matches(self, labels: dict[str, str]) -> bool:
        """True when `labels` satisfy every term; the operator calls this to check who may
        submit to a GPUQueue (an empty selector matches every label set)."""
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator is LabelSelectorOperator.IN and (not present or labels[req.key] not in req.values):
                return False
            if req.operator is LabelSelectorOperator.NOT_IN and present and labels[req.key] in req.values:
                return False
            if req.operator is LabelSelectorOperator.EXISTS and not present:
                return False
            if req.operator is LabelSelectorOperator.DOES_NOT_EXIST and present:
                return False
        return True


class TaintEffect(StrEnum):
    """Effect of a node taint."""

    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class TaintSpec(SpecModel):
    """A taint carried by every node of a pool; jobs need a matching toleration to land there."""

    key: str = Field(description="Taint key, e.g. gpupool.io/spot.", min_length=1, max_length=317)
    value: str = Field(default="", description="Taint value; empty for a key-only taint.", max_length=63)
    effect: TaintEffect = Field(
        default=TaintEffect.NO_SCHEDULE,
        description="NoSchedule, PreferNoSchedule or NoExecute (default NoSchedule).",
    )


Metadata = dict[str, Any]
"""Object metadata as the API server returns it (name, namespace, labels, uid, ...)."""
