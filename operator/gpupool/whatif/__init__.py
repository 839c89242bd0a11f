"""`gpupool sim`: what-if capacity planning over the operator's own scheduling core.

Who uses this: `gpupool.cli` dispatches `gpupool sim ARGS` to `gpupool.whatif.command.main`.

Why a package of its own: the simulation (`gpupool.sim.planning`, on the event loop of
`gpupool.sim.events`) may depend only on `gpupool.core`, but a scenario is the
GPUNodePool / GPUQueue YAML a platform team applies, read by the API models
(`gpupool.api`) and turned into core values by the operator's pure converters
(`gpupool.cluster.translate.convert`, `cluster.scaling.pool_template`, `cluster.snapshot.hardware_of`),
so that a pool, a queue or a budget means in the simulation exactly what it means in the
operator. This package does that reading and hands core values to `gpupool.sim`. An
import-linter contract keeps it off every Kubernetes client, the writer and the
controllers: it never talks to a cluster.

Modules: `workload` (job record files and the openb trace as timed core jobs),
`scenario` (a scenario YAML as a `gpupool.sim.planning.SimCluster`), `command` (flags,
progress, the tables and the plot).
"""
