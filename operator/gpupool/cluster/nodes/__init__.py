"""Node autoscaling: the GPUNodeClaim reconciler, the scaling inputs and the providers that create and remove nodes."""
