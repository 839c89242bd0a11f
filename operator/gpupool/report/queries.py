"""The PromQL the report asks, as text (pure; `gather` sends it, the tests read it).

Every per-job GPU figure starts from `gpupool_gpu_allocation_info`: one series per GPU a
worker holds, valued with the share held, present while the job is Admitted or Running.
The bill (`cost`) is `gpupool_job_cost_per_hour`: the rate the operator's own spend and
`status.cost` accrue at (`gpupool.core.accounting`), present while the attempt accrues, so
the report bills exactly what the operator bills, CPU runs included. A bucket's
figure is a left Riemann sum over the bucket's steps,

    sum_over_time((sum by (queue, namespace, job, pool) (EXPR))[<bucket>s:<step>s])

evaluated at 1 ms before the bucket's end, so the subquery's points (aligned to multiples of
the step) are the bucket's start, start + step, ..., end - step: each stands for one step,
and a point at a bucket boundary belongs to the later bucket only (in Prometheus 2 and 3,
whose range ends differ). Times `step / 3600` it is in GPU-hours (EXPR in GPUs) or money
(EXPR in money per hour).
"""

from __future__ import annotations

ALLOCATION = "gpupool_gpu_allocation_info"
COST_RATE = "gpupool_job_cost_per_hour"
GROUP = ("queue", "namespace", "job", "pool")
PRICE = "max by (node) (node_gpu_hourly_cost)"
"""Price of one GPU-hour on each node (the gpupool or OpenCost exporter's; spot when spot)."""
IDLE = "max by (namespace, job) (gpupool_job_gpu_idle)"
SPOT = "max by (node) (kubecost_node_is_spot == 1)"
ON_DEMAND = 'max by (pool) (gpupool_pool_gpu_hourly_price{capacity="on_demand"})'


def measures(queue: str | None = None) -> dict[str, str]:
    """The instantaneous expressions the report integrates, by name: GPUs held, the job's
    billed money per hour (`COST_RATE`), and per GPU held the money per hour at the node's
    price while the job is flagged idle, and on spot nodes at the spot price and at the
    pool's on-demand price."""
    matcher = f"{{queue={quote(queue)}}}" if queue else ""
    alloc = ALLOCATION + matcher
    idle = f"{alloc} * on (namespace, job) group_left {IDLE}"
    spot = f"{alloc} * on (node) group_left {SPOT}"
    return {
        "gpus": alloc,
        "cost": COST_RATE + matcher,
        "idle_gpus": idle,
        "idle_cost": f"{idle} * on (node) group_left {PRICE}",
        "spot_gpus": spot,
        "spot_cost": f"{spot} * on (node) group_left {PRICE}",
        "spot_on_demand_cost": f"{spot} * on (pool) group_left {ON_DEMAND}",
    }


def bucket_query(expr: str, bucket_seconds: int, step_seconds: int) -> str:
    """The sum over a bucket's steps of `expr`, per queue, namespace, job and pool."""
    inner = f"sum by ({', '.join(GROUP)}) ({expr})"
    return f"sum_over_time(({inner})[{bucket_seconds}s:{step_seconds}s])"


def window_queries(window_seconds: int, queue: str | None = None) -> dict[str, str]:
    """Asked once, at the window's end: each pool's class and model, each budget's amount and
    spend (the last values in the window), the operator's own cost counter's increase, and
    the UUID of every physical GPU each job held in the window (the `uuid` label: the GPU its
    node reported the worker's pod holds; kwok nodes, the UUID of the planned index)."""
    matcher = f"{{queue={quote(queue)}}}" if queue else ""
    uuids = f'{{queue={quote(queue)}, uuid!=""}}' if queue else '{uuid!=""}'
    r = f"[{window_seconds}s]"
    return {
        "pools": f"max by (pool, pool_class, gpu_model) (last_over_time(gpupool_pool_info{r}))",
        "budget_spent": f"max by (queue, currency) (last_over_time(gpupool_queue_budget_spent{matcher}{r}))",
        "budget_amount": f"max by (queue, currency) (last_over_time(gpupool_queue_budget_amount{matcher}{r}))",
        "counter_cost": f"sum by (queue, pool_class) (increase(gpupool_queue_cost_total{matcher}{r}))",
        "gpu_uuids": f"count by (queue, namespace, job, uuid) (last_over_time({ALLOCATION}{uuids}{r}))",
    }


def quote(value: str) -> str:
    """`value` as a PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
