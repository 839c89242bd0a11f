"""gpupool.controllers."""
