"""gpupool.agent."""
