"""gpupool.agent: the node agent (`gpupool agent run`), one process per GPU node.

It reads each GPU through a backend (`nvml` on real nodes, `simulated` on kwok nodes),
serves the readings as `gpupool_gpu_*` Prometheus metrics and publishes on the Node a
rolling utilisation summary, its GPU index -> UUID map and which pod holds which GPUs, in
the formats of `gpupool.annotations` (which the operator reads; it imports nothing from
the agent).
"""
