"""The report's window: months, days and timestamps in UTC, aligned to the step, in buckets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gpupool.report.period import PeriodError, make_window, parse_duration, parse_period, parse_timestamp


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-11", utc(2026, 11, 1), utc(2026, 12, 1)),
        ("2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),
        ("2028-02", utc(2028, 2, 1), utc(2028, 3, 1)),
        ("2026-11-03", utc(2026, 11, 3), utc(2026, 11, 4)),
        ("2026-12-31", utc(2026, 12, 31), utc(2027, 1, 1)),
    ],
)
def test_a_month_or_a_day_in_utc(text: str, start: datetime, end: datetime) -> None:
    assert parse_period(text) == (start, end)


@pytest.mark.parametrize("text", ["2026", "2026-13", "2026-02-30", "november", "2026-11-03T00:00"])
def test_other_periods_are_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(PeriodError, match="--period"):
        parse_period(text)


def test_timestamps_iso_with_or_without_offset_or_epoch_seconds() -> None:
    assert parse_timestamp("2026-11-03T12:00:00Z") == utc(2026, 11, 3, 12)
    assert parse_timestamp("2026-11-03T12:00:00") == utc(2026, 11, 3, 12)
    assert parse_timestamp("2026-11-03T14:00:00+02:00") == utc(2026, 11, 3, 12)
    assert parse_timestamp("1793707200") == utc(2026, 11, 3, 12)
    with pytest.raises(PeriodError, match="not a timestamp"):
        parse_timestamp("yesterday")


def test_durations() -> None:
    assert [parse_duration(t) for t in ("60", "60s", "5m", "1h", "1d")] == [60, 60, 300, 3600, 86400]
    for bad in ("0s", "1w", "-5", "1.5m"):
        with pytest.raises(PeriodError, match="not a duration"):
            parse_duration(bad)


def test_a_month_is_cut_into_days_of_whole_steps() -> None:
    window = make_window(*parse_period("2026-11"), step=60)
    buckets = window.buckets()
    assert (window.bucket_seconds, len(buckets)) == (86400, 30)
    assert buckets[0] == (utc(2026, 11, 1), utc(2026, 11, 2))
    assert buckets[-1][1] == utc(2026, 12, 1)


def test_a_day_is_cut_into_hours_and_a_short_window_into_twelfths() -> None:
    assert make_window(*parse_period("2026-11-03"), step=60).bucket_seconds == 3600
    short = make_window(utc(2026, 11, 3, 12), utc(2026, 11, 3, 12, 2), step=1)
    assert short.bucket_seconds == 10 and len(short.buckets()) == 12


def test_free_bounds_widen_to_whole_steps_and_the_last_bucket_may_be_short() -> None:
    window = make_window(utc(2026, 11, 3, 12, 0, 30), utc(2026, 11, 3, 13, 10, 1), step=60, bucket=1800)
    assert (window.start, window.end) == (utc(2026, 11, 3, 12, 0), utc(2026, 11, 3, 13, 11))
    assert [int((b - a).total_seconds()) for a, b in window.buckets()] == [1800, 1800, 660]
    assert make_window(utc(2026, 11, 3), utc(2026, 11, 4), step=7, bucket=3600).bucket_seconds == 3605
    with pytest.raises(PeriodError, match="empty"):
        make_window(utc(2026, 11, 4), utc(2026, 11, 3), step=60)
