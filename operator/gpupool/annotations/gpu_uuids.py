"""The Node annotation in which the node agent publishes which GPU index is which physical GPU.

Who uses this: the agent (`gpupool.agent.run`) writes it with `format_uuids` at start and
whenever the node's GPUs change; the operator reads it with `parse_uuids` to record, in a
GPUJob's provenance, the UUIDs of the GPUs each worker held. The module is pure (standard
library only) so that any layer may import it.

The annotation `gpupool.io/gpu-uuids` holds one JSON object, GPU index (a decimal string)
-> the GPU's UUID as the driver reports it (NVML: `GPU-8e2f...`; the simulated backend
makes stable fake ones from the node name and index):

    {"0":"GPU-8e2f6a34-...","1":"GPU-1b07c9d2-..."}

A GPU's index is the one `NVIDIA_VISIBLE_DEVICES` and gpupool's placements use; the UUID
is what stays the same when a node reboots and its GPUs are enumerated in another order,
so it is the one worth recording.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from gpupool.annotations.summary import json_object

ANNOTATION = "gpupool.io/gpu-uuids"
"""Key of the annotation on the Node."""

MAX_UUID_LENGTH = 128
"""Longer values are refused: no driver writes a UUID that long."""


def format_uuids(uuids: Mapping[int, str]) -> str:
    """The annotation's value: compact JSON, GPUs in index order."""
    return json.dumps({str(index): uuids[index] for index in sorted(uuids)}, separators=(",", ":"))


def parse_uuids(text: str | None) -> dict[int, str] | None:
    """Index -> UUID from an annotation's value, or None when it is missing or malformed.

    Never raises. Malformed means: not JSON, not an object, a key that is not a decimal
    index, or a value that is not a non-empty string of at most `MAX_UUID_LENGTH`
    characters. One bad entry refuses the whole map: a half-trusted map could pin the
    wrong GPU on a job's record.
    """
    data = json_object(text)
    if data is None:
        return None
    uuids: dict[int, str] = {}
    for key, value in data.items():
        if not (isinstance(key, str) and key.isascii() and key.isdigit()):
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_UUID_LENGTH:
            return None
        uuids[int(key)] = value
    return uuids
