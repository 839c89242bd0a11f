"""`gpupool dashboards render`: draw each dashboard's panels to one PNG with matplotlib.

Who calls this: people without a Grafana (and docs/dashboards/, whose pictures it made).
It runs the catalogue's queries, the same ones the Grafana JSON holds, as range queries
(`/api/v1/query_range`) against a Prometheus, with every label variable set to All (`.*`)
unless `--var name=value` says otherwise, `$__range` the time range and `$__rate_interval`
four steps (at least a minute). One PNG per dashboard, a grid of its panels, two a line.

    gpupool dashboards render --prometheus http://127.0.0.1:9090 --out /tmp/dash --range 1h
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.dates import DateFormatter, date2num

from gpupool.dashboards.catalogue import DASHBOARDS, Dashboard, Panel, Unit, legend, substitute

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RangeSeries = tuple[dict[str, str], list[tuple[float, float]]]
QueryRange = Callable[[str, float, float, float], list[RangeSeries]]
"""(promql, start, end, step seconds) -> each series' labels and its (time, value) points."""

POINTS = 240
"""About how many points each series gets across the time range."""
MAX_LEGEND = 8


def prometheus_query_range(url: str, timeout: float = 30.0) -> QueryRange:
    """A `QueryRange` over Prometheus' HTTP API at `url`; an error answer raises RuntimeError."""

    def query(promql: str, start: float, end: float, step: float) -> list[RangeSeries]:
        params = urllib.parse.urlencode({"query": promql, "start": start, "end": end, "step": step})
        request = urllib.request.Request(f"{url.rstrip('/')}/api/v1/query_range", data=params.encode())
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}")
        return [
            (dict(item["metric"]), [(float(t), float(v)) for t, v in item["values"]]) for item in body["data"]["result"]
        ]

    return query


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration: `90s`, `15m`, `1h`, `2d`, `1h30m`."""
    parts = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not text.strip() or parts is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 15m, 1h, 2d)")
    days, hours, minutes, seconds = (int(p or 0) for p in parts.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def defaults(spec: Dashboard, range_seconds: float, step: float) -> dict[str, str]:
    """Template values as Grafana would set them on opening the dashboard: All, the first option."""
    values = {v.name: (v.options[0] if v.options else ".*") for v in spec.variables}
    values["__range"] = f"{round(range_seconds)}s"
    values["__rate_interval"] = f"{round(max(4 * step, 60.0))}s"
    return values


def _scale(unit: Unit) -> tuple[float, str]:
    """Multiplier and y-axis label for a unit."""
    return {
        Unit.RATIO: (100.0, "%"),
        Unit.SECONDS: (1.0, "seconds"),
        Unit.MONEY_PER_HOUR: (1.0, "money / hour"),
        Unit.MONEY: (1.0, "money"),
    }.get(unit, (1.0, ""))


def draw_panel(
    axes: Axes, panel: Panel, query_range: QueryRange, values: Mapping[str, str], window: tuple[float, float, float]
) -> int:
    """Plot one panel's queries on `axes`; returns how many series it drew."""
    start, end, step = window
    factor, ylabel = _scale(panel.unit)
    drawn = 0
    problems = []
    for query in panel.queries:
        try:
            result = query_range(substitute(query.expr, values), start, end, step)
        except Exception as error:  # a panel that fails is shown failing; the others still draw
            problems.append(str(error)[:80])
            continue
        for labels, points in result:
            finite = [(t, v) for t, v in points if math.isfinite(v)]
            if not finite:
                continue
            times = [date2num(datetime.fromtimestamp(t, UTC)) for t, _ in finite]
            axes.plot(
                times, [v * factor for _, v in finite], linewidth=1.2, label=legend(query.legend, labels) or "value"
            )
            drawn += 1
    axes.set_title(panel.title, fontsize=9, loc="left")
    axes.set_ylabel(ylabel, fontsize=7)
    axes.tick_params(labelsize=7)
    axes.set_xlim(date2num(datetime.fromtimestamp(start, UTC)), date2num(datetime.fromtimestamp(end, UTC)))
    axes.grid(alpha=0.3)
    if drawn:
        handles, names = axes.get_legend_handles_labels()
        axes.legend(handles[:MAX_LEGEND], names[:MAX_LEGEND], fontsize=6, loc="upper left")
    else:
        message = "; ".join(problems) if problems else "no data"
        axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=8, transform=axes.transAxes, wrap=True)
    return drawn


def render_dashboard(
    spec: Dashboard,
    query_range: QueryRange,
    out: Path,
    *,
    end: float,
    range_seconds: float,
    overrides: Mapping[str, str] | None = None,
) -> Path:
    """Draw `spec` as `<out>/<uid>.png` (a grid of its panels) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step = max(1.0, round(range_seconds / POINTS))
    start = end - range_seconds
    values = {**defaults(spec, range_seconds, step), **(overrides or {})}
    panels = spec.panels
    rows = math.ceil(len(panels) / 2)
    figure, grid = plt.subplots(rows, 2, figsize=(12, 2.7 * rows + 0.6), squeeze=False)
    for index, axes in enumerate(grid.flat):
        if index >= len(panels):
            axes.set_visible(False)
            continue
        draw_panel(axes, panels[index], query_range, values, (start, end, step))
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M" if range_seconds >= 1800 else "%H:%M:%S"))
    stamp = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M UTC")
    figure.suptitle(f"{spec.title}  ({round(range_seconds / 60)} min to {stamp})", fontsize=11)
    figure.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{spec.uid}.png"
    figure.savefig(path, dpi=72)
    plt.close(figure)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `gpupool dashboards render`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="gpupool dashboards render", description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs (one per dashboard)")
    parser.add_argument("--range", default="1h", help="time range ending now (default 1h; 90s, 15m, 2d, ...)")
    parser.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="set a template variable (default: All)"
    )
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.var)
    query_range = prometheus_query_range(args.prometheus)
    range_seconds = parse_duration(args.range)
    now = time.time()
    for spec in DASHBOARDS:
        path = render_dashboard(spec, query_range, args.out, end=now, range_seconds=range_seconds, overrides=overrides)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0
