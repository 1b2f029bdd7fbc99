"""Quiet, local-only `from_pretrained`: rewards never download, and their loads do not flood job logs."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def quiet_transformers():
    """Silences transformers' progress bars and info logs inside the block."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def from_local(cls, path: str | Path, **kwargs):
    """`cls.from_pretrained(path, local_files_only=True)` with transformers' progress bars and load
    reports silenced (an LM checkpoint loaded without its LM head reports the head as unexpected)."""
    with quiet_transformers():
        return cls.from_pretrained(str(path), local_files_only=True, **kwargs)
