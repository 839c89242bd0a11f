"""gpupool.api."""
