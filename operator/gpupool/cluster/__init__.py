"""gpupool.cluster: the Kubernetes adapters, in five packages named by their role.

- `kube`: the only modules that talk to the API server (the client, the `KubeWriter`, the
  reflector's list and watch, the leader lease) and the leader-election rules.
- `state`: the typed, watch-fed cache, what each kind becomes in it, and each queue's
  decayed usage kept between cycles.
- `translate`: API objects and the cache into core values (the converters, the
  `ClusterSnapshot`, device truth, budget spend).
- `writes`: what the operator writes and how (pod lifecycle rules, the planner, statuses,
  pod and reservation manifests, provenance, the writer port, the applier, the recording
  fake).
- `nodes`: node autoscaling (the claim reconciler, scaling inputs) and the node providers.
"""
