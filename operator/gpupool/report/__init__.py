"""`gpupool report`: the chargeback report, read from Prometheus.

The parts: `period` (the window and its buckets), `queries` (the PromQL, as text), `prom`
(the HTTP client, the only part that touches the network), `gather` (asks an injected
client every query, bucket by bucket), `build` (query results to a `Report`, pure),
`render` and `plot` (the formats), `command` (the CLI). Everything but `prom` and `command`
runs in unit tests without Prometheus.
"""
