"""The report in md, csv, json or html (pure: text in, text out; the plot comes in as bytes).

Who calls this: `gpupool.report.command`. md and html show rounded numbers (4 decimals,
2 from 100 up); csv and json carry them unrounded.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from gpupool.report.model import Budget, QueueTotal, Report, Usage
from gpupool.report.plot import bucket_words

FORMATS = ("md", "csv", "json", "html")

METHOD = (
    "GPU-hours: the share each worker holds of each GPU (gpupool_gpu_allocation_info, present while the job "
    "is Admitted or Running) summed at every step of the window, times step/3600.",
    "Cost: what the operator bills (gpupool_job_cost_per_hour, the rate the job's status.cost and its queue's "
    "budget spend accrue at): each worker's GPUs at its node's GPU-hour price (the pool's node-hour price over its "
    "GPUs, spot when the node is spot), or on a CPU-only node its requested cores at the core-hour price, from the "
    "attempt's start; unpriced pools cost 0.",
    "Idle: the GPU-hours held while the job is flagged idle (gpupool_job_gpu_idle, i.e. after its queue's "
    "idle.after; queues without an idle rule have none), and those GPUs at their node's GPU-hour price "
    "(node_gpu_hourly_cost).",
    "Spot savings: GPU time on spot nodes (kubecost_node_is_spot) at the pool's on-demand price "
    '(gpupool_pool_gpu_hourly_price{capacity="on_demand"}) minus what it cost at the spot price.',
    "Cloud / on-prem and GPU model: from each pool's gpupool_pool_info.",
    "GPUs: the UUID of every physical GPU a job held in the window (the uuid label of gpupool_gpu_allocation_info: "
    "the GPU its node reported the worker's pod holds, a share its reservation pod's; on nodes that report no "
    "devices, such as kwok nodes, the UUID of gpupool's planned index).",
    "Budget: the queue's own budget and its spend in its current budget period, as the operator last reported "
    "them in the window (gpupool_queue_budget_amount / _spent); used = spent / amount.",
    "Operator counter: increase(gpupool_queue_cost_total) over the window, the operator's own running total of the "
    "same bill (it restarts with the operator, so it can be lower after a restart).",
)

USAGE_COLUMNS: tuple[tuple[str, Callable[[Usage], float]], ...] = (
    ("GPU-hours", lambda u: u.gpu_hours),
    ("Cost", lambda u: u.cost),
    ("Idle GPU-hours", lambda u: u.idle_gpu_hours),
    ("Idle cost", lambda u: u.idle_cost),
    ("Spot GPU-hours", lambda u: u.spot_gpu_hours),
    ("Spot savings", lambda u: u.spot_savings),
)


def num(value: float | None) -> str:
    """A number for people: 4 decimals, 2 from 100 up; empty for None."""
    if value is None:
        return ""
    return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4f}"


def percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


# --------------------------------------------------------------------------- tables


def tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables, each (title, header, rows), as md and html show them."""
    queue_header = ["Queue", "GPU-hours", "Cost", "Cloud cost", "On-prem cost", "Idle GPU-hours", "Idle cost"]
    queue_header += ["Spot savings", "Budget", "Budget spent", "Budget used", "Operator counter"]
    queue_rows = [queue_row(q) for q in report.queues]
    if len(report.queues) > 1:
        total = report.total
        cloud = sum((q.cloud for q in report.queues), Usage())
        on_prem = sum((q.on_prem for q in report.queues), Usage())
        figures = [total.cost, cloud.cost, on_prem.cost, total.idle_gpu_hours, total.idle_cost, total.spot_savings]
        queue_rows.append(["**all**", num(total.gpu_hours), *(num(x) for x in figures), "", "", "", ""])
    usage_header = [name for name, _ in USAGE_COLUMNS]
    line_rows = [
        [line.queue, line.namespace, line.pool_class, line.gpu_model]
        + [num(get(line.usage)) for _, get in USAGE_COLUMNS]
        for line in report.lines
    ]
    job_rows = [
        [str(rank), job.queue, job.namespace, job.job]
        + [num(get(job.usage)) for _, get in USAGE_COLUMNS]
        + [", ".join(job.gpu_uuids)]
        for rank, job in enumerate(report.jobs, 1)
    ]
    return [
        ("Queues", queue_header, queue_rows),
        (
            "By queue, namespace, pool class and GPU model",
            ["Queue", "Namespace", "Pool class", "GPU model", *usage_header],
            line_rows,
        ),
        (
            f"Costliest jobs (top {len(report.jobs)} of {report.jobs_total})",
            ["#", "Queue", "Namespace", "Job", *usage_header, "GPUs (UUID)"],
            job_rows,
        ),
    ]


def queue_row(queue: QueueTotal) -> list[str]:
    u, budget = queue.usage, queue.budget
    return [
        queue.queue,
        num(u.gpu_hours),
        num(u.cost),
        num(queue.cloud.cost),
        num(queue.on_prem.cost),
        num(u.idle_gpu_hours),
        num(u.idle_cost),
        num(u.spot_savings),
        f"{num(budget.amount)} {budget.currency}" if budget else "",
        f"{num(budget.spent)} {budget.currency}" if budget else "",
        percent(budget.share) if budget else "",
        num(queue.counter_cost),
    ]


def heading(report: Report) -> list[str]:
    """The lines above the tables: window, source, sampling and the money unit."""
    unknown = ", ".join(report.unknown_pools)
    scope = f"queue {report.queue_filter}" if report.queue_filter else "all queues"
    return [
        f"Window: {when(report.start)} to {when(report.end)} ({scope}).",
        f"Source: Prometheus at {report.source}; sampled every {report.step_seconds} s, spend shown per "
        f"{bucket_words(report.bucket_seconds)}.",
        "Money is in the unit the GPUNodePools' prices are given in; budgets are in their own currency.",
        *([f"Pools without gpupool_pool_info in the window (class, model unknown): {unknown}."] if unknown else []),
    ]


# --------------------------------------------------------------------------- formats


def render(report: Report, fmt: str, *, png: bytes | None = None, png_name: str | None = None) -> str:
    """The report as `fmt`; md links `png_name` (a file next to it), html embeds `png`."""
    if fmt == "md":
        return render_md(report, png_name)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        return render_html(report, png)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def md_table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    cells = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in cells]
    return out


def render_md(report: Report, png_name: str | None) -> str:
    out = ["# GPU chargeback report", "", *heading(report)]
    for title, header, rows in tables(report):
        out += ["", f"## {title}", ""]
        out += md_table(header, rows) if rows else ["No GPU time in the window."]
    out += ["", "## Spend over time", ""]
    if png_name:
        out.append(f"![Spend per {bucket_words(report.bucket_seconds)}, per queue]({png_name})")
    else:
        out.append("No plot: it is written next to the report with --out (and needs matplotlib).")
    out += ["", "## How the figures are computed", ""]
    out += [f"- {line}" for line in METHOD]
    return "\n".join(out) + "\n"


CSV_COLUMNS = (
    "record",
    "queue",
    "namespace",
    "job",
    "pool_class",
    "gpu_model",
    "start",
    "end",
    "gpu_hours",
    "cost",
    "idle_gpu_hours",
    "idle_cost",
    "spot_gpu_hours",
    "spot_cost",
    "spot_on_demand_cost",
    "spot_savings",
    "budget_currency",
    "budget_amount",
    "budget_spent",
    "counter_cost",
    "gpu_uuids",
)


def usage_fields(usage: Usage) -> dict[str, Any]:
    return {**asdict(usage), "spot_savings": usage.spot_savings}


def budget_fields(budget: Budget | None) -> dict[str, Any]:
    if budget is None:
        return {}
    return {"budget_currency": budget.currency, "budget_amount": budget.amount, "budget_spent": budget.spent}


def render_csv(report: Report) -> str:
    """One table, a row per record: `queue` totals, `line` (queue, namespace, pool class,
    GPU model), `job` (the costliest) and `spend` (a queue's cost in one bucket)."""
    window = {"start": report.start.isoformat(), "end": report.end.isoformat()}
    rows: list[dict[str, Any]] = []
    for q in report.queues:
        rows.append(
            {"record": "queue", "queue": q.queue, **window, **usage_fields(q.usage)}
            | budget_fields(q.budget)
            | {"counter_cost": q.counter_cost}
        )
    for line in report.lines:
        keys = {"queue": line.queue, "namespace": line.namespace, "pool_class": line.pool_class}
        rows.append({"record": "line", **keys, "gpu_model": line.gpu_model, **window, **usage_fields(line.usage)})
    for job in report.jobs:
        keys = {"queue": job.queue, "namespace": job.namespace, "job": job.job}
        rows.append(
            {"record": "job", **keys, **window, **usage_fields(job.usage), "gpu_uuids": " ".join(job.gpu_uuids)}
        )
    for queue, points in sorted(report.spend.items()):
        for p in points:
            rows.append(
                {
                    "record": "spend",
                    "queue": queue,
                    "start": p.start.isoformat(),
                    "end": p.end.isoformat(),
                    "cost": p.cost,
                }
            )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def to_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON values (times in ISO 8601)."""

    def usage(u: Usage) -> dict[str, Any]:
        return usage_fields(u)

    def budget(b: Budget | None) -> dict[str, Any] | None:
        return None if b is None else {**asdict(b), "share": b.share}

    return {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "step_seconds": report.step_seconds,
        "bucket_seconds": report.bucket_seconds,
        "source": report.source,
        "queue_filter": report.queue_filter,
        "total": usage(report.total),
        "queues": [
            {
                "queue": q.queue,
                **usage(q.usage),
                "cloud": usage(q.cloud),
                "on_prem": usage(q.on_prem),
                "budget": budget(q.budget),
                "counter_cost": q.counter_cost,
            }
            for q in report.queues
        ],
        "lines": [
            {"queue": x.queue, "namespace": x.namespace, "pool_class": x.pool_class, "gpu_model": x.gpu_model}
            | usage(x.usage)
            for x in report.lines
        ],
        "jobs": [
            {"queue": j.queue, "namespace": j.namespace, "job": j.job}
            | usage(j.usage)
            | {"gpu_uuids": list(j.gpu_uuids)}
            for j in report.jobs
        ],
        "jobs_total": report.jobs_total,
        "spend": {
            queue: [{"start": p.start.isoformat(), "end": p.end.isoformat(), "cost": p.cost} for p in points]
            for queue, points in sorted(report.spend.items())
        },
        "unknown_pools": list(report.unknown_pools),
        "method": list(METHOD),
    }


def render_json(report: Report) -> str:
    return json.dumps(to_json(report), indent=2) + "\n"


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em}td{text-align:right}"
    "td:first-child,th{text-align:left}"
)


def render_html(report: Report, png: bytes | None) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>GPU chargeback report</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>GPU chargeback report</h1>",
    ]
    out += [f"<p>{e(line)}</p>" for line in heading(report)]
    for title, header, rows in tables(report):
        out.append(f"<h2>{e(title)}</h2>")
        if not rows:
            out.append("<p>No GPU time in the window.</p>")
            continue
        out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td>{e(cell.strip('*'))}</td>" for cell in row) + "</tr>")
        out.append("</table>")
    out.append("<h2>Spend over time</h2>")
    if png:
        data = base64.b64encode(png).decode()
        out.append(f'<img alt="Spend per queue over time" src="data:image/png;base64,{data}">')
    else:
        out.append("<p>No plot (matplotlib is not installed, or nothing to plot).</p>")
    out.append("<h2>How the figures are computed</h2><ul>")
    out += [f"<li>{e(line)}</li>" for line in METHOD]
    out.append("</ul></body></html>")
    return "\n".join(out) + "\n"
