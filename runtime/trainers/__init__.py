"""Trainers: one flat file per job kind, each `run(ctx)`; shared plumbing lives in common.py."""
