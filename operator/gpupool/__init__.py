"""gpupool: one GPU queue over a hybrid pool of on-prem and cloud GPU nodes."""

__version__ = "0.1.0"
