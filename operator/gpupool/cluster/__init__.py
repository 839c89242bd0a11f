"""gpupool.cluster."""
