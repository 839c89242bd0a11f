"""The report's window: a UTC month, a UTC day, or two timestamps; its step and its buckets.

Who calls this: `gpupool.report.command` (from the flags) and the tests. Times are UTC,
as budget periods are (`gpupool.core.budget.period_bounds`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAY = 86_400
HOUR = 3_600
DURATION = re.compile(r"^(\d+)([smhd]?)$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": HOUR, "d": DAY}


class PeriodError(ValueError):
    """A period, timestamp or duration the report cannot use (the message says why)."""


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC, sampled every `step_seconds`, reported per `bucket_seconds`.

    `start` and `end` are multiples of the step (seconds since the epoch), and the bucket a
    multiple of the step, so every bucket holds whole steps; the last bucket may be shorter.
    """

    start: datetime
    end: datetime
    step_seconds: int
    bucket_seconds: int

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def buckets(self) -> list[tuple[datetime, datetime]]:
        """The buckets, in order, covering the window exactly."""
        out = []
        at = self.start
        while at < self.end:
            until = min(at + timedelta(seconds=self.bucket_seconds), self.end)
            out.append((at, until))
            at = until
        return out


def parse_duration(text: str) -> int:
    """`60`, `60s`, `5m`, `1h` or `1d` as whole seconds (at least 1)."""
    match = DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise PeriodError(f"{text!r} is not a duration: use seconds, or a number with s, m, h or d (e.g. 60s, 5m)")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def parse_period(text: str) -> tuple[datetime, datetime]:
    """A UTC month `YYYY-MM` or day `YYYY-MM-DD` as [start, end)."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}", text):
            start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
            year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
            return start, start.replace(year=year, month=month)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            start = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
    except ValueError as error:
        raise PeriodError(f"--period {text!r}: {error}") from error
    raise PeriodError(f"--period {text!r}: give a month YYYY-MM or a day YYYY-MM-DD (UTC), or --from/--to")


def parse_timestamp(text: str) -> datetime:
    """Seconds since the epoch, or ISO 8601 (`2026-11-03T12:00:00Z`; no offset means UTC)."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise PeriodError(f"{text!r} is not a timestamp: use ISO 8601 or seconds since the epoch") from error
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def default_bucket(span: int) -> int:
    """A day for spans of two days or more, an hour for two hours or more, else a twelfth."""
    if span >= 2 * DAY:
        return DAY
    if span >= 2 * HOUR:
        return HOUR
    return max(1, span // 12)


def make_window(start: datetime, end: datetime, step: int, bucket: int | None = None) -> Window:
    """The window from `start` (rounded down to a multiple of `step`) to `end` (rounded up),
    with buckets of `bucket` seconds (default: `default_bucket`) rounded up to whole steps."""
    first = math.floor(start.timestamp() / step) * step
    last = math.ceil(end.timestamp() / step) * step
    if last <= first:
        raise PeriodError(f"the window is empty: {start.isoformat()} is not before {end.isoformat()}")
    size = bucket or default_bucket(last - first)
    size = max(step, math.ceil(size / step) * step)
    return Window(datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC), step, size)
