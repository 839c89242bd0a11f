"""gpupool.bench."""
