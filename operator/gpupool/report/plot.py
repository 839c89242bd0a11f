"""The spend-over-time plot: each queue's cost per bucket, as a PNG (matplotlib, imported lazily).

Who calls this: `gpupool.report.command` (the md format writes the PNG next to the report,
the html format embeds it). Without matplotlib (`pip install 'gpupool[report]'`) there is
no plot and the report says so.
"""

from __future__ import annotations

import io
from typing import Any

from gpupool.report.model import Report


def spend_png(report: Report) -> bytes | None:
    """The plot as PNG bytes; None when matplotlib is not installed or there is nothing to plot."""
    if not report.spend:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=100)
    try:
        for queue, points in sorted(report.spend.items()):
            if not points:
                continue
            starts: list[Any] = [p.start for p in points] + [points[-1].end]  # matplotlib takes datetimes
            costs = [p.cost for p in points] + [points[-1].cost]
            axes.step(starts, costs, where="post", label=queue)
        axes.set_title(f"Spend per {bucket_words(report.bucket_seconds)}, per queue")
        axes.set_xlabel("UTC")
        axes.set_ylabel("cost (pool price unit)")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
        figure.autofmt_xdate()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def bucket_words(seconds: int) -> str:
    """`day`, `hour`, or `30 s`."""
    if seconds == 86_400:
        return "day"
    if seconds == 3_600:
        return "hour"
    return f"{seconds} s"
