"""Errors a job reports to the user without a traceback: they name the recipe line."""
from __future__ import annotations


class JobError(Exception):
    """A failure the user can act on (missing data, NaN loss, bad weights path)."""
