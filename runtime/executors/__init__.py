"""Executors run a plan's selected jobs in dependency order: `local` (subprocesses) and `slurm`."""
