"""gpupool.bench: the benchmarks over the scheduling core, `gpupool bench placement|bound|burst|cycle`.

Who uses this: `gpupool.cli` dispatches each command to its module's `main`
(`placement_bench`, `bound_bench`, `burst`, `cycle_bench`); people refresh
docs/benchmarks.md with them. They replay the openb trace (`openb`, `workload`, `replay`,
`metrics`, `plot`, `variants`) or simulate it in time (`burst` on the discrete-event loop
`events`, which `gpupool.whatif.planning` also runs) through the same core code the operator
runs, and import nothing but `gpupool.core` (an import-linter contract). The benchmarks on a
real API server (`gpupool bench e2e|footprint|load`) live in `gpupool.devcluster`.
"""
