"""The Helm chart's generated files (`charts/gpupool`): CRDs, alert rules and values schema.

`python -m gpupool.chart --out charts/gpupool` writes them and `--check` checks them
(`make chart`, `make lint`). The CRDs come from the same generator as `crds/`
(`gpupool.api.crdgen`) and the rules from `gpupool.metrics.alerts`, so the chart carries
no second hand-kept copy; the templates and `values.yaml` are written by hand.
"""
