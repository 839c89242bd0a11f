"""API objects and the cache into core values: converters, the ClusterSnapshot, device truth, budget spend."""
