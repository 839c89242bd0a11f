"""The Node annotation in which the node agent publishes each GPU's recent utilisation.

Who uses this: the agent (`gpupool.agent.run`) writes it with `format_summary`; the
operator's idle-GPU detection reads it with `parse_summary`. The module is pure (standard
library only) so that any layer may import it.

The annotation `gpupool.io/gpu-utilization` holds one JSON object:

    {"window":"5m","observed":"5m","at":"2025-06-01T12:00:00Z","gpus":{"0":0.93,"1":0.02}}

- `window`: the averaging window the agent is configured with, a duration.
- `observed`: how much of that window the average really covers (at most `window`); it
  is shorter just after the agent starts, so a reader can refuse to call a GPU idle on a
  few seconds of evidence.
- `at`: when the average was computed, RFC 3339 in UTC with a `Z`.
- `gpus`: GPU index (a decimal string) -> mean utilisation ratio over the samples taken
  in the window, 0..1, rounded to two decimals.

A duration is a whole number followed by `s`, `m` or `h` (`"90s"`, `"5m"`, `"1h"`);
`format_duration` writes the largest unit that divides it exactly. Unknown keys are
ignored, so a later agent may add fields without breaking older readers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ANNOTATION = "gpupool.io/gpu-utilization"
"""Key of the annotation on the Node."""

DECIMALS = 2
"""Utilisation ratios are rounded to this many decimals: small, and stable enough that an
unchanged GPU does not cause a write."""

_DURATION = re.compile(r"^([0-9]{1,9})([smh])$")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class UtilizationSummary:
    """One node's GPUs, averaged over a recent window."""

    window_seconds: int
    observed_seconds: int
    at: datetime
    gpus: Mapping[int, float]

    @property
    def covers_window(self) -> bool:
        """True when the average spans the whole window (not just an agent's first seconds)."""
        return self.observed_seconds >= self.window_seconds


def format_duration(seconds: int) -> str:
    """`300` -> `"5m"`, `90` -> `"90s"`, `7200` -> `"2h"`, `0` -> `"0s"`."""
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {seconds}")
    for unit, size in _UNIT_SECONDS.items():
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_duration(text: str) -> int | None:
    """`"5m"` -> 300; anything that is not `<digits><s|m|h>` -> None."""
    match = _DURATION.match(text)
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_summary(summary: UtilizationSummary) -> str:
    """The annotation's value: compact JSON, GPUs in index order."""
    at = summary.at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = {
        "window": format_duration(summary.window_seconds),
        "observed": format_duration(summary.observed_seconds),
        "at": at,
        "gpus": {str(index): round(summary.gpus[index], DECIMALS) for index in sorted(summary.gpus)},
    }
    return json.dumps(payload, separators=(",", ":"))


def _ratio(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    ratio = float(value)
    if not math.isfinite(ratio) or not 0.0 <= ratio <= 1.0:
        return None
    return ratio


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    return at.astimezone(UTC)


def _gpus(value: Any) -> dict[int, float] | None:
    if not isinstance(value, dict):
        return None
    gpus: dict[int, float] = {}
    for key, raw in value.items():
        ratio = _ratio(raw)
        if not (isinstance(key, str) and key.isascii() and key.isdigit()) or ratio is None:
            return None
        gpus[int(key)] = ratio
    return gpus


def json_object(text: str | None) -> dict[str, Any] | None:
    """The JSON object in an annotation's value; None when it is missing, not JSON or not an
    object (never raises, however deep the nesting)."""
    if not isinstance(text, str):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def parse_summary(text: str | None) -> UtilizationSummary | None:
    """The summary in an annotation's value, or None when it is missing or malformed.

    Never raises: a reader deciding whether a GPU is idle treats None as "no evidence".
    Malformed means anything other than the format above: not JSON, not an object, a
    missing or bad `window` / `observed` / `at` (a timestamp without a time zone is bad),
    a GPU key that is not a decimal index, or a ratio outside 0..1. `observed` longer
    than `window` is read as `window`.
    """
    data = json_object(text)
    if data is None:
        return None
    window = data.get("window")
    observed = data.get("observed")
    window_seconds = parse_duration(window) if isinstance(window, str) else None
    observed_seconds = parse_duration(observed) if isinstance(observed, str) else None
    at = _timestamp(data.get("at"))
    gpus = _gpus(data.get("gpus"))
    if window_seconds is None or observed_seconds is None or at is None or gpus is None:
        return None
    return UtilizationSummary(
        window_seconds=window_seconds,
        observed_seconds=min(observed_seconds, window_seconds),
        at=at,
        gpus=gpus,
    )
