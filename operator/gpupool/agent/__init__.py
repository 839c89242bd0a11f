"""gpupool.agent: the node agent (`gpupool agent run`), one process per GPU node.

It reads each GPU through a backend (`nvml` on real nodes, `simulated` on kwok nodes),
serves the readings as `gpupool_gpu_*` Prometheus metrics and publishes a rolling
utilisation summary on the Node (`summary`, the one module the operator imports).
"""
