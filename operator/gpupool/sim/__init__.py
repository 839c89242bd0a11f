"""gpupool.sim."""
