"""gpupool.annotations: the formats of the Node annotations the node agent writes and the operator reads.

Who uses this: the node agent (`gpupool.agent.run`, `gpupool.agent.simulated`,
`gpupool.agent.rolling`, `gpupool.agent.podresources`) writes them; the operator's
translation layer (`gpupool.cluster.translate.snapshot`, `gpupool.cluster.translate.devices`)
reads them. Each module is one annotation: `summary` (`gpupool.io/gpu-utilization`, each
GPU's recent utilisation), `gpu_uuids` (`gpupool.io/gpu-uuids`, GPU index -> UUID) and
`pod_devices` (`gpupool.io/pod-devices`, which pod holds which GPUs). They import nothing but
the standard library, so this is the bottom layer: any gpupool package may import it, and
the operator never needs to import the agent.
"""
