"""The Kubernetes side: the API client, the KubeWriter, the reflector's list and watch, the
leader lease and the leader-election rules; the only cluster modules that import the client."""
