"""Grafana dashboards as code: the panels and their PromQL (`catalogue`), the Grafana JSON
built from them (`grafana`, `python -m gpupool.dashboards`) and PNGs drawn from the same
queries (`render`, `gpupool dashboards render`)."""
