"""gpupool.devcluster."""
