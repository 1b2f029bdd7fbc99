"""Errors a job reports to the user without a traceback: they name the recipe line."""
from __future__ import annotations


class JobError(Exception):
    """A failure the user can act on (missing data, NaN loss, bad weights path)."""


class StopRequested(Exception):
    """Raised by long work that cannot checkpoint (generating a dataset) when a stop was requested
    (Ctrl-C, preemption): the job is recorded as stopped, not failed, and a rerun starts it again."""
