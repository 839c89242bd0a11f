"""`gpupool sim`: what-if capacity planning over the operator's own scheduling core.

Who uses this: `gpupool.cli` dispatches `gpupool sim ARGS` to `gpupool.whatif.command.main`.

Why the reading and the simulation sit apart: the simulation (`planning`, on the event loop
of `gpupool.bench.events`) and its buy-versus-rent curves (`breakeven`) are core values
only (an import-linter contract keeps them off the API models), but a scenario is the
GPUNodePool / GPUQueue YAML a platform team applies, read by the API models
(`gpupool.api`) and turned into core values by the operator's pure converters
(`gpupool.cluster.translate.convert`, `cluster.nodes.scaling.pool_template`,
`cluster.translate.snapshot.hardware_of`),
so that a pool, a queue or a budget means in the simulation exactly what it means in the
operator. `scenario` and `workload` do that reading and hand core values to `planning`. An
import-linter contract keeps the package off every Kubernetes client, the writer and the
controllers: it never talks to a cluster.

Modules: `workload` (job record files and the openb trace as timed core jobs),
`scenario` (a scenario YAML as a `planning.SimCluster`), `planning` (the simulation in
time), `breakeven` (cumulative cost curves and the month they cross), `command` (flags,
progress, the tables and the plot, drawn by `gpupool.bench.plot.plot_whatif`).
"""
