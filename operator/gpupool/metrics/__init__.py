"""gpupool.metrics."""
