"""The three dashboards as plain data: every panel's title, PromQL, legend and unit, once.

Who uses this: `gpupool.dashboards.grafana` turns these into Grafana dashboards (through
grafana-foundation-sdk), `gpupool.dashboards.render` draws the same queries with
matplotlib, and the tests run every query against a real Prometheus and check every metric
name against the declared families. Nothing here imports Grafana's SDK or matplotlib.

Queries use Grafana's template syntax: `$queue`, `$pool`, `$model`, `$class` (regex
matchers, `.*` for All), `$burn_window` (a custom interval), and Grafana's built-ins
`$__rate_interval` and `$__range`. `substitute` replaces them for anything that is not
Grafana.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    """Grafana unit ids the panels use (the renderer labels its axes from these)."""

    COUNT = "short"
    RATIO = "percentunit"
    SECONDS = "s"
    MONEY_PER_HOUR = "suffix:/h"
    MONEY = "none"


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and its legend (`{{label}}` picks a label's value)."""

    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A time-series panel: title, what it shows (shown as the panel's description), queries, unit."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: Unit = Unit.COUNT


@dataclass(frozen=True)
class Row:
    """A titled group of panels, laid out two to a line."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    """A template variable: a label's values from Prometheus (`label_values`), or a fixed list
    of `options` (the first is the default). Label variables allow many values and All (`.*`)."""

    name: str
    label: str
    metric: str = ""
    metric_label: str = ""
    options: tuple[str, ...] = ()

    @property
    def query(self) -> str:
        return f"label_values({self.metric}, {self.metric_label})" if self.metric else ",".join(self.options)


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: a stable uid (its file name too), title, variables and rows."""

    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    rows: tuple[Row, ...]

    @property
    def panels(self) -> tuple[Panel, ...]:
        return tuple(panel for row in self.rows for panel in row.panels)


# --------------------------------------------------------------------------- variables

QUEUE = Variable("queue", "Queue", "gpupool_queue_nominal_gpus", "queue")
POOL = Variable("pool", "Pool", "gpupool_pool_info", "pool")
MODEL = Variable("model", "GPU model", "gpupool_pool_info", "gpu_model")
CLASS = Variable("class", "Pool class", "gpupool_pool_info", "pool_class")
BURN_WINDOW = Variable("burn_window", "Burn-rate window", options=("1h", "6h", "1d", "15m"))

# The pools the pool, model and class variables select; `X and on(pool) POOLS` filters a
# per-pool series by them, `X * on(pool) group_left(gpu_model, pool_class) POOLS` labels it.
POOLS = 'gpupool_pool_info{pool=~"$pool", gpu_model=~"$model", pool_class=~"$class"}'
Q = 'queue=~"$queue"'
IDLE_UTILISATION = 0.05
"""An allocated GPU below this utilisation (0..1) counts as allocated but idle."""


def by_pool(metric: str) -> str:
    return f"sum by (pool) ({metric} and on(pool) {POOLS})"


def by_model_and_class(metric: str) -> str:
    return f"sum by (gpu_model, pool_class) ({metric} * on(pool) group_left(gpu_model, pool_class) {POOLS})"


# GPUs each allocated GPU's worker holds, only for the selected pools.
ALLOCATED = f"(gpupool_gpu_allocation_info and on(pool) {POOLS})"
BELOW_IDLE = f"(gpupool_gpu_utilization_ratio < {IDLE_UTILISATION})"

# --------------------------------------------------------------------------- GPU fleet

FLEET = Dashboard(
    uid="gpupool-fleet",
    title="gpupool / GPU fleet",
    description="Capacity, allocation and real utilisation of the GPU pools; fragmentation, idle "
    "allocated GPUs and cloud nodes.",
    variables=(POOL, MODEL, CLASS),
    rows=(
        Row(
            "Capacity and use",
            (
                Panel(
                    "GPUs per pool: capacity and allocated",
                    "GPUs on each pool's Ready nodes, and the GPUs admitted jobs hold there (shares as fractions).",
                    (
                        Query(by_pool("gpupool_pool_gpus"), "{{pool}} capacity"),
                        Query(by_pool("gpupool_pool_allocated_gpus"), "{{pool}} allocated"),
                    ),
                ),
                Panel(
                    "Allocated share by GPU model and class",
                    "Allocated GPUs over capacity, per GPU model and pool class (pools with no Ready GPU left out).",
                    (
                        Query(
                            f"{by_model_and_class('gpupool_pool_allocated_gpus')}"
                            f" / ({by_model_and_class('gpupool_pool_gpus')} > 0)",
                            "{{gpu_model}} {{pool_class}}",
                        ),
                    ),
                    Unit.RATIO,
                ),
                Panel(
                    "Real utilisation by GPU model",
                    "Mean utilisation of every GPU the node agents read, per model (gpupool_gpu_utilization_ratio).",
                    (Query('avg by (model) (gpupool_gpu_utilization_ratio{model=~"$model"})', "{{model}}"),),
                    Unit.RATIO,
                ),
                Panel(
                    "Real utilisation of allocated GPUs by pool",
                    "Mean utilisation of the GPUs jobs hold, per pool: the node agents' readings joined to "
                    "gpupool_gpu_allocation_info on node and GPU UUID.",
                    (
                        Query(
                            f"avg by (pool) ((max by (node, uuid, pool) {ALLOCATED} > bool 0)"
                            " * on(node, uuid) group_left gpupool_gpu_utilization_ratio)",
                            "{{pool}}",
                        ),
                    ),
                    Unit.RATIO,
                ),
            ),
        ),
        Row(
            "Waste",
            (
                Panel(
                    "Fragmented GPUs",
                    "Free GPU capacity on which no waiting job's worker fits (0 while no job waits).",
                    (Query(by_pool("gpupool_pool_fragmented_gpus"), "{{pool}}"),),
                ),
                Panel(
                    "Allocated but idle GPUs",
                    f"GPUs held by jobs while their utilisation is below {IDLE_UTILISATION:.0%}, and GPUs held by "
                    "jobs the operator flagged GPUIdle (below their queue's idle threshold for idle.after).",
                    (
                        Query(
                            f"sum by (pool) ({ALLOCATED} and on(node, uuid) {BELOW_IDLE})",
                            f"{{{{pool}}}} below {IDLE_UTILISATION:.0%}",
                        ),
                        Query(
                            f"sum by (pool) ({ALLOCATED} * on(namespace, job) group_left gpupool_job_gpu_idle)",
                            "{{pool}} flagged GPUIdle",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Cloud nodes",
            (
                Panel(
                    "Cloud nodes by state",
                    "Nodes of the selected cloud pools: claims provisioning, Ready nodes, nodes being given back.",
                    (
                        Query(
                            'sum by (state) (gpupool_pool_nodes{state=~"provisioning|ready|draining"}'
                            ' and on(pool) gpupool_pool_info{pool=~"$pool", gpu_model=~"$model", pool_class="cloud"})',
                            "{{state}}",
                        ),
                    ),
                ),
                Panel(
                    "Node provisioning latency",
                    "Seconds from a node claim to its Ready node, p50 and p95 over the dashboard's time range.",
                    tuple(
                        Query(
                            f"histogram_quantile({q}, sum by (le, pool) (increase("
                            'gpupool_node_provisioning_duration_seconds_bucket{pool=~"$pool"}[$__range])))',
                            f"{{{{pool}}}} p{round(q * 100)}",
                        )
                        for q in (0.5, 0.95)
                    ),
                    Unit.SECONDS,
                ),
            ),
        ),
    ),
)

# --------------------------------------------------------------------------- queues and teams

QUEUES = Dashboard(
    uid="gpupool-queues",
    title="gpupool / Queues and teams",
    description="Per queue: GPUs used against nominal quota, borrowing, waiting jobs and why, "
    "admission wait, preemptions and each queue's share of the GPUs in use.",
    variables=(QUEUE,),
    rows=(
        Row(
            "Quota",
            (
                Panel(
                    "GPUs used vs nominal quota",
                    "GPUs the queue's admitted jobs hold, and its nominal quota, over all its flavors.",
                    (
                        Query(f"sum by (queue) (gpupool_queue_used_gpus{{{Q}}})", "{{queue}} used"),
                        Query(f"sum by (queue) (gpupool_queue_nominal_gpus{{{Q}}})", "{{queue}} nominal"),
                    ),
                ),
                Panel(
                    "Borrowed GPUs",
                    "GPUs used beyond nominal quota, borrowed from the queue's cohort.",
                    (Query(f"sum by (queue) (gpupool_queue_borrowed_gpus{{{Q}}})", "{{queue}}"),),
                ),
                Panel(
                    "Share of the GPUs in use",
                    "Each queue's part of all GPUs held by gpupool jobs. gpupool exports no fair-share metric "
                    "(the decayed usage is in GPUQueue status only), so this shows the current split instead.",
                    (
                        Query(
                            f"sum by (queue) (gpupool_queue_used_gpus{{{Q}}})"
                            " / scalar(sum(gpupool_queue_used_gpus) > 0)",
                            "{{queue}}",
                        ),
                    ),
                    Unit.RATIO,
                ),
                Panel(
                    "Running jobs",
                    "GPUJobs in phase Running, per queue.",
                    (Query(f"sum by (queue) (gpupool_queue_running_jobs{{{Q}}})", "{{queue}}"),),
                ),
            ),
        ),
        Row(
            "Waiting",
            (
                Panel(
                    "Pending jobs by reason",
                    "Jobs waiting for admission, by the class of their wait reason (see docs/metrics.md).",
                    (Query(f"sum by (reason) (gpupool_queue_pending_jobs{{{Q}}})", "{{reason}}"),),
                ),
                Panel(
                    "Admission wait",
                    "Seconds from queued to admitted, p50 and p95 over the dashboard's time range.",
                    tuple(
                        Query(
                            f"histogram_quantile({q}, sum by (le, queue) "
                            f"(increase(gpupool_admission_wait_seconds_bucket{{{Q}}}[$__range])))",
                            f"{{{{queue}}}} p{round(q * 100)}",
                        )
                        for q in (0.5, 0.95)
                    ),
                    Unit.SECONDS,
                ),
                Panel(
                    "Preemptions",
                    "Jobs preempted per rate interval, by the victim's queue and why.",
                    (
                        Query(
                            f"sum by (queue, reason) (increase(gpupool_preemptions_total{{{Q}}}[$__rate_interval]))",
                            "{{queue}} {{reason}}",
                        ),
                    ),
                ),
                Panel(
                    "Admissions",
                    "Jobs admitted per rate interval, within nominal quota or borrowing.",
                    (
                        Query(
                            f"sum by (queue, reason) (increase(gpupool_admissions_total{{{Q}}}[$__rate_interval]))",
                            "{{queue}} {{reason}}",
                        ),
                    ),
                ),
            ),
        ),
    ),
)

# --------------------------------------------------------------------------- cost and budgets

SPENT = f"sum by (queue) (gpupool_queue_budget_spent{{{Q}}})"
BUDGET = f"sum by (queue) (gpupool_queue_budget_amount{{{Q}}})"
# Spend now plus the burn rate (the spend's slope over $burn_window, never negative) times
# the time left in the queue's budget period.
FORECAST = (
    f"{SPENT} + sum by (queue) (clamp_min(deriv(gpupool_queue_budget_spent{{{Q}}}[$burn_window]), 0))"
    f" * (max by (queue) (gpupool_queue_budget_period_end_timestamp_seconds{{{Q}}}) - time())"
)
COST = f'gpupool_queue_cost_total{{{Q}, pool_class=~"$class"}}'
SPOT_PRICE_GAP = (
    'gpupool_pool_gpu_hourly_price{capacity="on_demand"}'
    ' - ignoring(capacity) gpupool_pool_gpu_hourly_price{capacity="spot"}'
)

COSTS = Dashboard(
    uid="gpupool-cost",
    title="gpupool / Cost and budgets",
    description="Spend against budget with a forecast to the period's end, cloud vs on-prem cost, "
    "the cost of idle allocated GPUs and spot savings. Money is in the pools' price unit.",
    variables=(QUEUE, POOL, MODEL, CLASS, BURN_WINDOW),
    rows=(
        Row(
            "Budgets",
            (
                Panel(
                    "Budget: spent, amount and forecast at period end",
                    "Spend counted toward each queue's budget this period, the budget, and the spend forecast "
                    "at the period's end: spend now + burn rate (slope over $burn_window) x time left.",
                    (
                        Query(SPENT, "{{queue}} spent"),
                        Query(BUDGET, "{{queue}} budget"),
                        Query(FORECAST, "{{queue}} forecast"),
                    ),
                    Unit.MONEY,
                ),
                Panel(
                    "Budget used and forecast, share of budget",
                    "Spend and its forecast at the period's end over the budget; above 100% the budget runs out "
                    "before the period ends (new admissions then wait with BudgetExhausted).",
                    (
                        Query(f"{SPENT} / ({BUDGET} > 0)", "{{queue}} spent"),
                        Query(f"({FORECAST}) / ({BUDGET} > 0)", "{{queue}} forecast"),
                    ),
                    Unit.RATIO,
                ),
            ),
        ),
        Row(
            "Cost",
            (
                Panel(
                    "Spend rate: cloud vs on-prem",
                    "What the queues' jobs cost per hour, by the class of pool the GPUs are in "
                    "(gpupool_queue_cost_total, at the pools' GPU-hour prices).",
                    (Query(f"sum by (pool_class) (rate({COST}[$__rate_interval])) * 3600", "{{pool_class}}"),),
                    Unit.MONEY_PER_HOUR,
                ),
                Panel(
                    "Cost over the time range, by queue and class",
                    "What each queue's jobs cost within the dashboard's time range.",
                    (Query(f"sum by (queue, pool_class) (increase({COST}[$__range]))", "{{queue}} {{pool_class}}"),),
                    Unit.MONEY,
                ),
                Panel(
                    "Cost of idle allocated GPUs",
                    f"Per hour, at each node's GPU-hour price (OpenCost's node_gpu_hourly_cost): GPUs held while "
                    f"below {IDLE_UTILISATION:.0%} utilisation, and GPUs of jobs flagged GPUIdle.",
                    (
                        Query(
                            f'sum by (queue) ((gpupool_gpu_allocation_info{{{Q}, pool=~"$pool"}}'
                            f" and on(node, uuid) {BELOW_IDLE}) * on(node) group_left node_gpu_hourly_cost)",
                            f"{{{{queue}}}} below {IDLE_UTILISATION:.0%}",
                        ),
                        Query(
                            f'sum by (queue) ((gpupool_gpu_allocation_info{{{Q}, pool=~"$pool"}}'
                            " * on(namespace, job) group_left gpupool_job_gpu_idle)"
                            " * on(node) group_left node_gpu_hourly_cost)",
                            "{{queue}} flagged GPUIdle",
                        ),
                    ),
                    Unit.MONEY_PER_HOUR,
                ),
                Panel(
                    "Spot savings",
                    "Per hour: GPUs on Ready spot nodes x (the pool's on-demand minus its spot GPU-hour price), "
                    "what the same GPUs would cost more on demand. Pools without both prices are left out.",
                    (
                        Query(
                            f"sum by (pool) ((gpupool_pool_spot_gpus and on(pool) {POOLS})"
                            f" * on(pool) ({SPOT_PRICE_GAP}))",
                            "{{pool}}",
                        ),
                    ),
                    Unit.MONEY_PER_HOUR,
                ),
            ),
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (FLEET, QUEUES, COSTS)

# --------------------------------------------------------------------------- substitution

_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def variables_used(expr: str) -> set[str]:
    """The names of the template variables `expr` uses (`__range` included)."""
    return set(_VARIABLE.findall(expr))


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with each `$name` / `${name}` replaced from `values`; a KeyError names one missing."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def legend(template: str, labels: Mapping[str, str]) -> str:
    """A Grafana legend format (`{{queue}} used`) filled from a series' labels."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()
