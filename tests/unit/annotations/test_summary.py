"""The Node annotation's format: what the agent writes parses back, and what parse_summary
refuses (it returns None for anything malformed and never raises)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gpupool.annotations.summary import (
    UtilizationSummary,
    format_duration,
    format_summary,
    parse_duration,
    parse_summary,
)

AT = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_the_documented_example_parses() -> None:
    text = '{"window":"5m","observed":"5m","at":"2025-06-01T12:00:00Z","gpus":{"0":0.93,"1":0.02}}'
    summary = parse_summary(text)
    assert summary == UtilizationSummary(window_seconds=300, observed_seconds=300, at=AT, gpus={0: 0.93, 1: 0.02})
    assert summary.covers_window


def test_format_writes_compact_rounded_json_that_parses_back() -> None:
    summary = UtilizationSummary(
        window_seconds=300, observed_seconds=90, at=AT + timedelta(microseconds=700), gpus={1: 0.123456, 0: 1.0}
    )
    text = format_summary(summary)
    assert text == '{"window":"5m","observed":"90s","at":"2025-06-01T12:00:00Z","gpus":{"0":1.0,"1":0.12}}'
    parsed = parse_summary(text)
    assert parsed == UtilizationSummary(300, 90, AT, {0: 1.0, 1: 0.12})
    assert parsed is not None and not parsed.covers_window


def test_format_writes_utc_whatever_the_time_zone() -> None:
    local = AT.astimezone(timezone(timedelta(hours=2)))
    assert '"at":"2025-06-01T12:00:00Z"' in format_summary(UtilizationSummary(60, 60, local, {}))


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45, "45s"), (90, "90s"), (300, "5m"), (7200, "2h")])
def test_durations(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def valid(**changes: object) -> str:
    payload: dict[str, object] = {"window": "5m", "observed": "5m", "at": "2025-06-01T12:00:00Z", "gpus": {"0": 0.5}}
    payload.update(changes)
    return json.dumps({k: v for k, v in payload.items() if v is not DROP})


DROP = object()

MALFORMED = [
    ("missing annotation", None),
    ("empty", ""),
    ("not JSON", "{window: 5m"),
    ("JSON but not an object", "[1, 2]"),
    ("a number", "0.5"),
    ("null", "null"),
    ("deeply nested", "[" * 100_000 + "]" * 100_000),
    ("no window", valid(window=DROP)),
    ("window without unit", valid(window="300")),
    ("window in days", valid(window="1d")),
    ("window a number", valid(window=300)),
    ("negative window", valid(window="-5m")),
    ("no observed", valid(observed=DROP)),
    ("no timestamp", valid(at=DROP)),
    ("timestamp without zone", valid(at="2025-06-01T12:00:00")),
    ("timestamp not a date", valid(at="yesterday")),
    ("timestamp a number", valid(at=1717243200)),
    ("no gpus", valid(gpus=DROP)),
    ("gpus a list", valid(gpus=[0.5])),
    ("gpu key not an index", valid(gpus={"gpu0": 0.5})),
    ("negative gpu key", valid(gpus={"-1": 0.5})),
    ("non-ASCII digit key", valid(gpus={"\u0661": 0.5})),
    ("ratio above 1", valid(gpus={"0": 1.5})),
    ("ratio below 0", valid(gpus={"0": -0.1})),
    ("ratio a string", valid(gpus={"0": "0.5"})),
    ("ratio a bool", valid(gpus={"0": True})),
    ("ratio null", valid(gpus={"0": None})),
    ("ratio NaN", valid().replace("0.5", "NaN")),
    ("ratio Infinity", valid().replace("0.5", "Infinity")),
]


@pytest.mark.parametrize("text", [row[1] for row in MALFORMED], ids=[row[0] for row in MALFORMED])
def test_malformed_summaries_are_none(text: str | None) -> None:
    assert parse_summary(text) is None


def test_a_non_string_is_none() -> None:
    assert parse_summary(b'{"window":"5m"}') is None  # type: ignore[arg-type]


def test_unknown_keys_are_ignored_and_observed_is_capped_at_the_window() -> None:
    summary = parse_summary(valid(observed="1h", source="a later agent"))
    assert summary is not None and summary.observed_seconds == 300 and summary.gpus == {0: 0.5}


def test_no_gpus_is_a_valid_summary() -> None:
    summary = parse_summary(valid(gpus={}))
    assert summary is not None and summary.gpus == {}
