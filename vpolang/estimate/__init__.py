"""Estimates for `vpo plan`: FLOPs, time, GPU-hours, dollars and peak memory per GPU (standard library only)."""
